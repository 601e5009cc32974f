//! `heldar serve`: build the app from the environment and flags, run it until SIGINT/SIGTERM.

use std::process::ExitCode;

use clap::Args;
use tokio_util::sync::CancellationToken;

use crate::app::{Application, BuildOptions};
use crate::config::{Config, ServeArgs};

#[derive(Args)]
pub struct Serve {
    #[command(flatten)]
    settings: ServeArgs,
    /// Register a built-in demo camera that serves a moving test pattern.
    #[arg(long)]
    demo: bool,
}

pub fn run(args: Serve) -> ExitCode {
    // Before the configuration: `HELDAR_CAPTURE_CONCURRENCY=auto` and the HTTP connection limit
    // are sized from this limit. Logged once the log is set up.
    let nofile = crate::fd_limit::raise_nofile();
    let (config, warnings) = match Config::from_args(&args.settings) {
        Ok(c) => c,
        Err(e) => {
            // A misspelt variable is often why a setting is missing: said before the refusal.
            let names = std::env::vars_os().filter_map(|(k, _)| k.into_string().ok());
            for w in crate::cli::unknown_settings(names) {
                eprintln!("heldar: {w}");
            }
            eprintln!("heldar: {e}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&config.log))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // Names only: a value may be a secret, and one that is not UTF-8 is still a name to check.
    let names = std::env::vars_os().filter_map(|(k, _)| k.into_string().ok());
    for w in warnings
        .into_iter()
        .chain(crate::cli::unknown_settings(names))
    {
        tracing::warn!("{w}");
    }
    log_nofile(nofile);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("heldar: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        // Handlers are installed before anything can log "listening": a SIGTERM that arrives
        // right after start-up is a clean shutdown, not the default kill.
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate())?;
        let int = signal(SignalKind::interrupt())?;
        let app = Application::build(
            config,
            BuildOptions {
                demo: args.demo,
                ..BuildOptions::default()
            },
            shutdown.clone(),
        )
        .await?;
        tokio::spawn(wait_for_signal(term, int, shutdown));
        app.run_until_stopped().await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // One line, once: the log and the terminal are the same stderr.
        Err(e) => {
            eprintln!("heldar: {}", crate::error::report(&*e));
            ExitCode::FAILURE
        }
    }
}

/// Cancel `shutdown` on the first SIGINT or SIGTERM; a second one during the shutdown grace
/// (an operator pressing Ctrl-C again) exits at once, with status 130.
async fn wait_for_signal(
    mut term: tokio::signal::unix::Signal,
    mut int: tokio::signal::unix::Signal,
    shutdown: CancellationToken,
) {
    tokio::select! {
        _ = int.recv() => tracing::info!("SIGINT received; shutting down (again to exit at once)"),
        _ = term.recv() => tracing::info!("SIGTERM received; shutting down (again to exit at once)"),
        _ = shutdown.cancelled() => return,
    }
    shutdown.cancel();
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    tracing::warn!("second signal during shutdown: exiting now, without waiting for captures");
    std::process::exit(130);
}

/// Say what the file-descriptor limit is now, and whether it was raised.
fn log_nofile(limit: std::io::Result<crate::fd_limit::NofileLimit>) {
    match limit {
        Ok(l) if l.soft > l.soft_before => tracing::info!(
            soft = l.soft,
            hard = l.hard,
            was = l.soft_before,
            "raised the open-file limit (RLIMIT_NOFILE) from {} to {}",
            l.soft_before,
            l.soft
        ),
        Ok(l) => tracing::info!(
            soft = l.soft,
            hard = l.hard,
            "open-file limit (RLIMIT_NOFILE) is {}; the hard limit does not allow more",
            l.soft
        ),
        Err(e) => tracing::warn!(error = %e, "cannot read the open-file limit (RLIMIT_NOFILE)"),
    }
}
