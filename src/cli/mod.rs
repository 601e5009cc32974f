//! The `heldar` command line (clap). One file per command; `heldar serve` runs everything.
//!
//! The client commands (`camera`, `snap`, `schedule`, `frames`, `events`, `status`) talk to a
//! running Heldar over its HTTP API through [`client`] (where, who, errors and exit codes),
//! print through [`output`] (tables, `--json`), read times through [`when`], and exit with the
//! codes of [`exit`]. `token` works on the database directly, as before.

pub mod bench;
pub mod camera;
pub mod client;
pub mod completions;
pub mod events;
pub mod exit;
pub mod fake_cameras;
pub mod frames;
pub mod output;
pub mod schedule;
pub mod serve;
pub mod snap;
pub mod status;
pub mod token;
pub mod when;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

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
    /// Cameras of a running Heldar: add, list, show, edit, rm, test.
    Camera(camera::Camera),
    /// Save a live JPEG from a camera, grabbed now.
    Snap(snap::Snap),
    /// Interval snapshot schedules: add, list, set, rm.
    Schedule(schedule::Schedule),
    /// List a camera's stored frames; `frames get` downloads one.
    Frames(frames::Frames),
    /// Follow what happens (frames stored, captures failed, state changes) as it happens.
    Events(events::Events),
    /// Health, disk, retention and every camera's state.
    Status(status::Status),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(completions::Completions),
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
    let cli = Cli::from_arg_matches(&command().get_matches()).unwrap_or_else(|e| e.exit());
    match cli.command {
        Command::Serve(args) => serve::run(*args),
        Command::Bench(args) => bench::run(args),
        Command::FakeCameras(args) => fake_cameras::run(args),
        Command::Token(args) => token::run(args),
        Command::Camera(args) => camera::run(args),
        Command::Snap(args) => snap::run(args),
        Command::Schedule(args) => schedule::run(args),
        Command::Frames(args) => frames::run(args),
        Command::Events(args) => events::run(args),
        Command::Status(args) => status::run(args),
        Command::Completions(args) => completions::run(args),
    }
}

/// The whole command line, with the exit codes after the help (from [`exit::CODES`]).
pub fn command() -> clap::Command {
    Cli::command().after_help(exit::help())
}
