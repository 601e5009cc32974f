//! `heldar completions bash|zsh|fish|elvish|powershell`: the shell completion script for every
//! command and flag (clap_complete), printed to stdout. docs/cli.md says where each shell wants
//! it. Nothing here talks to a server.

use std::process::ExitCode;

use clap::Args;
use clap_complete::Shell;

#[derive(Args, Debug)]
pub struct Completions {
    /// The shell to complete for.
    shell: Shell,
}

pub fn run(args: Completions) -> ExitCode {
    let mut cmd = super::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "heldar", &mut out);
    super::output::line(String::from_utf8_lossy(&out).trim_end());
    ExitCode::SUCCESS
}
