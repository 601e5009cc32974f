//! The `heldar` command line (clap). One file per command; `heldar serve` runs everything.
//!
//! The client commands (`camera`, `snap`, `schedule`, `frames`, `events`, `status`,
//! `timelapse`, `jobs`, `outages`) talk to a running Heldar over its HTTP API through [`client`] (where,
//! who, errors and exit codes), print through [`output`] (tables, `--json`), read times through
//! [`when`], and exit with the codes of [`exit`]. `token` and `auth` work on the database directly: no server needs to run,
//! and a running one sees their changes; [`DbArgs`] and [`with_db`] are what they share.
//! `migrate` reads this box's database and files and writes a fleet's (docs/scale-out.md).

pub mod auth;
pub mod bench;
pub mod camera;
pub mod client;
pub mod completions;
pub mod discover;
pub mod events;
pub mod exit;
pub mod fake_cameras;
pub mod frames;
pub mod jobs;
pub mod migrate;
pub mod nodes;
pub mod onvif;
pub mod outages;
pub mod output;
pub mod schedule;
pub mod serve;
pub mod snap;
pub mod status;
pub mod timelapse;
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
    /// Show, or turn on or off, authentication for the API, dashboard, /media and /metrics.
    Auth(auth::AuthCmd),
    /// Cameras of a running Heldar: add, list, show, edit, rm, test.
    Camera(Box<camera::Camera>),
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
    /// The Heldar nodes sharing the database and the cameras each holds.
    Nodes(nodes::Nodes),
    /// Export a timelapse video of a camera's stored frames, follow the job, download it.
    Timelapse(timelapse::Timelapse),
    /// Background jobs (timelapse exports): list; `jobs show ID`; `jobs cancel ID`.
    Jobs(jobs::Jobs),
    /// Copy this box's database (and with --storage its frames) into a fleet's PostgreSQL and
    /// bucket: resumable, verified.
    Migrate(Box<migrate::Migrate>),
    /// When cameras were offline (outages), newest first; `--open` for those still going on.
    Outages(outages::Outages),
    /// Find ONVIF cameras on the server's local network (WS-Discovery).
    Discover(discover::Discover),
    /// Ask one ONVIF camera for its profiles (`probe`), or add it from one (`add`).
    Onvif(onvif::Onvif),
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
            // dotenvy's parse error quotes the rest of the file from the bad line on, secrets
            // included: say where, not what.
            let why = match e {
                dotenvy::Error::LineParse(_, at) => format!(
                    "a line cannot be parsed (at character {at} of the rest of the file; an \
                     unclosed quote?)"
                ),
                dotenvy::Error::Io(io) => io.to_string(),
                _ => "it cannot be parsed".to_string(),
            };
            eprintln!("heldar: cannot read .env: {why}");
            return ExitCode::from(2);
        }
    }
    let cli = Cli::from_arg_matches(&command().get_matches()).unwrap_or_else(|e| e.exit());
    match cli.command {
        Command::Serve(args) => serve::run(*args),
        Command::Bench(args) => bench::run(args),
        Command::FakeCameras(args) => fake_cameras::run(args),
        Command::Token(args) => token::run(args),
        Command::Auth(args) => auth::run(args),
        Command::Camera(args) => camera::run(*args),
        Command::Snap(args) => snap::run(args),
        Command::Schedule(args) => schedule::run(args),
        Command::Frames(args) => frames::run(args),
        Command::Events(args) => events::run(args),
        Command::Status(args) => status::run(args),
        Command::Nodes(args) => nodes::run(args),
        Command::Timelapse(args) => timelapse::run(args),
        Command::Jobs(args) => jobs::run(args),
        Command::Migrate(args) => migrate::run(*args),
        Command::Outages(args) => outages::run(args),
        Command::Discover(args) => discover::run(args),
        Command::Onvif(args) => onvif::run(args),
        Command::Completions(args) => completions::run(args),
    }
}

/// Variables named `HELDAR_*` that are not settings: the ones the project's own scripts and
/// tests read, and the one Heldar sets for the ffmpeg processes it starts. Not reported as
/// misspelt.
const NOT_SETTINGS: &[&str] = &[
    "HELDAR_BINARY",
    "HELDAR_CAMERA_ID",
    "HELDAR_DOCS_SCREENSHOTS",
    "HELDAR_FUZZ_SECONDS",
    "HELDAR_FUZZ_SEED",
    "HELDAR_SKIP_DEB",
    "HELDAR_TEST_BACKEND",
];

/// The variables among `names` that look like Heldar settings (`HELDAR_…`) but that no command
/// reads: a misspelt setting is otherwise silently ignored and its default used. One sentence
/// each, naming the variable (never its value, which may be a secret) and, when a setting is
/// within three edits of it, that setting. The settings are every command's variables.
pub fn unknown_settings(names: impl IntoIterator<Item = String>) -> Vec<String> {
    fn settings(cmd: &clap::Command, out: &mut Vec<String>) {
        out.extend(
            cmd.get_arguments()
                .filter_map(|a| a.get_env())
                .map(|e| e.to_string_lossy().into_owned()),
        );
        for sub in cmd.get_subcommands() {
            settings(sub, out);
        }
    }
    let mut known = Vec::new();
    settings(&command(), &mut known);
    let mut unknown: Vec<String> = names
        .into_iter()
        .filter(|n| n.starts_with("HELDAR_"))
        .filter(|n| !known.contains(n) && !NOT_SETTINGS.contains(&n.as_str()))
        .collect();
    unknown.sort();
    unknown
        .into_iter()
        .map(|name| {
            let closest = known
                .iter()
                .map(|k| (strsim::damerau_levenshtein(&name, k), k))
                .filter(|(d, _)| *d <= 3)
                .min();
            match closest {
                Some((_, k)) => format!(
                    "{name} is set but is not a Heldar setting, so it is ignored; did you mean {k}?"
                ),
                None => format!(
                    "{name} is set but is not a Heldar setting, so it is ignored (`heldar serve \
                     --help` lists the settings)"
                ),
            }
        })
        .collect()
}

/// The whole command line, with the exit codes after the help (from [`exit::CODES`]).
pub fn command() -> clap::Command {
    Cli::command().after_help(exit::help())
}

/// Where the database is, as `heldar serve` finds it.
#[derive(clap::Args, Debug, Clone)]
pub struct DbArgs {
    /// Root for the database (as `heldar serve`).
    #[arg(long, env = "HELDAR_DATA_DIR", default_value = "./data", global = true)]
    pub data_dir: String,
    /// Database URL [default: sqlite://$HELDAR_DATA_DIR/heldar.db].
    // Its value is not shown in --help: a postgres:// URL carries a password.
    #[arg(
        long,
        env = "HELDAR_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    pub database_url: Option<String>,
}

/// Open the database `args` name (creating the data dir for a SQLite file), run `f` on it on a
/// small runtime, close it. `cmd` names the command in error lines (`heldar token`).
pub fn with_db<F, Fut>(args: &DbArgs, cmd: &str, f: F) -> ExitCode
where
    F: FnOnce(crate::db::Pool) -> Fut,
    Fut: std::future::Future<Output = ExitCode>,
{
    let url = args.database_url.clone().unwrap_or_else(|| {
        format!(
            "sqlite://{}",
            std::path::PathBuf::from(&args.data_dir)
                .join("heldar.db")
                .display()
        )
    });
    if url.starts_with("sqlite://") {
        if let Err(e) = std::fs::create_dir_all(&args.data_dir) {
            eprintln!("{cmd}: cannot create {}: {e}", args.data_dir);
            return ExitCode::FAILURE;
        }
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{cmd}: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let pool = match crate::db::connect(&url).await {
            Ok(p) => p,
            Err(e) => {
                // The URL may carry a password, and the driver's error may quote it.
                eprintln!(
                    "{cmd}: cannot open the database {}: {}",
                    crate::camera::mask::mask_url(&url),
                    crate::camera::mask::mask_url(&crate::error::report(&*e))
                );
                return ExitCode::FAILURE;
            }
        };
        let code = f(pool.clone()).await;
        pool.close().await;
        code
    })
}

/// Whether HELDAR_API_TOKEN is set (non-empty) in this command's environment (or `.env`): a
/// server started with the same environment keeps authentication on whatever the switch says.
pub fn bootstrap_token_in_env() -> bool {
    std::env::var("HELDAR_API_TOKEN").is_ok_and(|t| !t.trim().is_empty())
}

/// Whether HELDAR_METRICS_AUTH=none in this command's environment (or `.env`).
pub fn metrics_open_in_env() -> bool {
    std::env::var("HELDAR_METRICS_AUTH").is_ok_and(|v| v.trim().eq_ignore_ascii_case("none"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unknown_heldar_variables_are_reported() {
        let names = [
            "PATH",
            "HELDAR_API_PORT",
            "HELDAR_MQTT_URL",
            "HELDAR_MIGRATE_TO",
            "HELDAR_URL",
            "HELDAR_TEST_BACKEND",
            "HELDAR_LOGG",
        ];
        assert_eq!(
            unknown_settings(names.map(String::from)),
            [
                "HELDAR_LOGG is set but is not a Heldar setting, so it is ignored; did you mean \
              HELDAR_LOG?"
            ]
        );
    }
}
