//! The exit codes of the client commands (`heldar camera`, `snap`, `schedule`, `frames`,
//! `events`, `status`, `timelapse`, `jobs`), defined once: [`Exit`] is what a command returns, [`CODES`] is the table
//! that `heldar --help` prints after the command list and docs/cli.md repeats (a test checks the
//! two agree). A script can branch on the kind of failure without reading the sentence.
//!
//! Code 2 is clap's own for a command line it cannot read; Heldar's own usage errors (a time it
//! cannot read, `-o -` to a terminal) use it too.

use std::process::ExitCode;

/// What a client command's exit status says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    Ok = 0,
    Other = 1,
    Usage = 2,
    NotFound = 3,
    Auth = 4,
    Camera = 5,
    Unreachable = 6,
    Rejected = 7,
    Server = 8,
    /// Ctrl-C (or SIGTERM) while `heldar timelapse` waited: it cancelled its job. 128 + SIGINT,
    /// as a shell reports a command that Ctrl-C ended.
    Interrupted = 130,
}

/// Every code with its meaning, in order: the after-help of `heldar --help` and docs/cli.md.
pub const CODES: &[(Exit, &str)] = &[
    (Exit::Ok, "done"),
    (
        Exit::Other,
        "other failure: an answer that cannot be read, a file that cannot be written, a \
         confirmation answered no",
    ),
    (
        Exit::Usage,
        "usage: the command line cannot be read (unknown flag, bad time, missing argument)",
    ),
    (
        Exit::NotFound,
        "not found (404): no such camera, schedule or frame",
    ),
    (
        Exit::Auth,
        "not allowed (401/403): no token, a wrong or revoked token, or a role too low",
    ),
    (
        Exit::Camera,
        "the camera failed: unreachable, refused the credentials, no JPEG, TLS, timeout (502/504)",
    ),
    (
        Exit::Unreachable,
        "Heldar cannot be reached: connection refused, no such host, or no answer in --timeout",
    ),
    (
        Exit::Rejected,
        "rejected: invalid input or a conflict (400/409/413/415/422)",
    ),
    (
        Exit::Server,
        "the server cannot do it: disk full (507), an internal error (5xx), `heldar status` \
         found it degraded, or `heldar nodes` found a node unhealthy",
    ),
    (
        Exit::Interrupted,
        "interrupted: Ctrl-C while `heldar timelapse` waited (its job is cancelled on the server)",
    ),
];

impl Exit {
    pub fn code(self) -> u8 {
        self as u8
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e.code())
    }
}

/// The after-help text: the exit codes, one a line.
pub fn help() -> String {
    let mut s = String::from("Exit codes of the client commands:\n");
    for (exit, meaning) in CODES {
        s.push_str(&format!("  {}  {meaning}\n", exit.code()));
    }
    s.push_str(
        "\nThe client commands talk to a running Heldar: --url or HELDAR_URL (default: this \
         machine's Heldar), --token or HELDAR_TOKEN. Every command: docs/cli.md (in the Debian package: \
         /usr/share/doc/heldar/cli.md).",
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lists_every_code_once_in_order() {
        let codes: Vec<u8> = CODES.iter().map(|(e, _)| e.code()).collect();
        let mut expected: Vec<u8> = (0..=8).collect();
        expected.push(130);
        assert_eq!(codes, expected);
    }
}
