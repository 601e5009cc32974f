//! `heldar auth status | on | off`: the authentication switch (`auth::mode`), recorded in the
//! database, so it works whether or not a server runs; a running server applies a change within
//! a second and logs it. `off` is refused by nothing: it is how an operator of a loopback-only
//! install opens it again. A server started with HELDAR_API_TOKEN (required on any non-loopback
//! address) keeps authentication on whatever the switch says, and these commands say so when
//! that variable is set in their environment.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::{bootstrap_token_in_env, metrics_open_in_env, DbArgs};
use crate::clock::SystemClock;
use crate::ops;

#[derive(Args, Debug)]
pub struct AuthCmd {
    #[command(flatten)]
    db: DbArgs,
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand, Debug, Clone, Copy)]
enum Action {
    /// Say whether authentication is on, why, and how many live tokens there are.
    Status,
    /// Require a token for the API, the dashboard, /media and /metrics.
    On,
    /// Stop requiring tokens: every request is treated as admin.
    Off,
}

pub fn run(args: AuthCmd) -> ExitCode {
    let action = args.action;
    super::with_db(&args.db, "heldar auth", move |pool| async move {
        match action {
            Action::Status => status(&pool).await,
            Action::On => switch(&pool, true).await,
            Action::Off => switch(&pool, false).await,
        }
    })
}

fn bootstrap_note() -> Option<&'static str> {
    bootstrap_token_in_env().then_some(
        "HELDAR_API_TOKEN is set in this environment: a server started with it keeps \
         authentication on, whatever the switch says.",
    )
}

async fn status(pool: &crate::db::Pool) -> ExitCode {
    let st = match ops::auth_switch::status(pool).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("heldar auth status: {e}");
            return ExitCode::FAILURE;
        }
    };
    let metrics = if metrics_open_in_env() {
        "/metrics: open (HELDAR_METRICS_AUTH=none in this environment)"
    } else {
        "/metrics: needs a token while authentication is on (HELDAR_METRICS_AUTH=none leaves it open)"
    };
    println!(
        "authentication: {} ({})",
        if st.on { "ON" } else { "OFF" },
        st.why
    );
    println!("live tokens: {}", st.live_tokens);
    println!("{metrics}");
    if let Some(n) = bootstrap_note() {
        println!("{n}");
    }
    if st.on && st.live_tokens == 0 && !bootstrap_token_in_env() {
        println!(
            "nobody can use the API: create a token with `heldar token create --role admin \
             --name NAME`, or turn authentication off with `heldar auth off`"
        );
    }
    ExitCode::SUCCESS
}

async fn switch(pool: &crate::db::Pool, on: bool) -> ExitCode {
    let by = if on {
        "heldar auth on"
    } else {
        "heldar auth off"
    };
    let changed = match ops::auth_switch::set(pool, &SystemClock, on, by).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{by}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let already = if changed { "now" } else { "already" };
    if on {
        println!(
            "Authentication is {already} ON: the API, the dashboard, /media and /metrics need a \
             token (/metrics not if the server runs with HELDAR_METRICS_AUTH=none). A running \
             server applies this within a second. Sign in to the dashboard by pasting a token on \
             its sign-in page; `heldar auth off` turns authentication off again."
        );
        let live = ops::auth_switch::status(pool)
            .await
            .map_or(1, |s| s.live_tokens);
        if live == 0 && !bootstrap_token_in_env() {
            println!(
                "Warning: no live token exists, so nobody can use the API yet: create one with \
                 `heldar token create --role admin --name NAME`."
            );
        }
    } else {
        println!(
            "Authentication is {already} OFF: requests need no token and every request is \
             treated as admin. A running server applies this within a second. Only a server \
             listening on loopback can run like this. `heldar auth on` turns it back on."
        );
    }
    if let Some(n) = bootstrap_note() {
        println!("{n}");
    }
    ExitCode::SUCCESS
}
