//! The `heldar` command line (clap). One file per command; `heldar serve` runs everything.

pub mod bench;
pub mod fake_cameras;
pub mod serve;
pub mod token;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "heldar",
    version,
    about = "Snapshot kernel for IP cameras: capture, schedule, store and serve JPEG frames."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API and the background services.
    Serve(Box<serve::Serve>),
    /// Measure the scheduler, capture and storage against in-process fake cameras.
    Bench(bench::Bench),
    /// Create, list and revoke API tokens (roles: viewer, operator, admin).
    Token(token::Token),
    /// Serve fake HTTP cameras for `heldar bench` from a process of their own.
    #[command(hide = true)]
    FakeCameras(fake_cameras::FakeCameras),
}

/// Entry point: read `.env` if present, parse the command line, run the command.
pub fn run() -> ExitCode {
    // A missing .env is normal; a malformed one is worth saying.
    if let Err(e) = dotenvy::dotenv() {
        if !e.not_found() {
            eprintln!("heldar: cannot read .env: {e}");
            return ExitCode::from(2);
        }
    }
    match Cli::parse().command {
        Command::Serve(args) => serve::run(*args),
        Command::Bench(args) => bench::run(args),
        Command::FakeCameras(args) => fake_cameras::run(args),
        Command::Token(args) => token::run(args),
    }
}
