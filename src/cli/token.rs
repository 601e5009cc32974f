//! `heldar token create | list | revoke`: API tokens with roles (docs/design.md §11), kept in the
//! database as hashes. `create` prints the token once, on stdout alone, so it can be captured
//! (`TOKEN=$(heldar token create --role viewer --name grafana)`); everything else goes to stderr:
//! what the token is, and in plain words whether authentication is now on, how to sign in to
//! the dashboard with it, and how to turn authentication off again. `revoke` warns when it took
//! the last live token while authentication stays on. The server sees new and revoked tokens at
//! once (it reads the table on each request) and the switch within a second.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::DbArgs;
use crate::clock::SystemClock;
use crate::db;
use crate::error::OpError;
use crate::models::Role;
use crate::ops;

#[derive(Args, Debug)]
pub struct Token {
    #[command(flatten)]
    db: DbArgs,
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand, Debug)]
enum Action {
    /// Create a token and print it (once). The first token turns authentication on.
    Create {
        /// viewer (read), operator (+ live snapshots, schedules) or admin (+ cameras, tokens).
        #[arg(long)]
        role: String,
        /// A name to recognise it by (unique among live tokens).
        #[arg(long)]
        name: String,
    },
    /// List tokens (never their secrets).
    List {
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by id or name; requests using it fail from then on.
    Revoke { id_or_name: String },
}

pub fn run(args: Token) -> ExitCode {
    let role = match &args.action {
        Action::Create { role, .. } => match Role::parse(role) {
            Ok(r) => Some(r),
            Err(e) => {
                eprintln!("heldar token create: {e}");
                return ExitCode::from(2);
            }
        },
        _ => None,
    };
    super::with_db(&args.db, "heldar token", move |pool| async move {
        act(&pool, args.action, role).await
    })
}

/// What `token create` says about authentication after creating a token.
pub fn auth_note(on: bool, turned_on: bool, why: &str) -> String {
    if !on {
        return format!(
            "Authentication is OFF ({why}): requests need no token, so this one is not needed \
             until you turn authentication on with `heldar auth on`."
        );
    }
    let head = if turned_on {
        "Authentication is now ON (this was the first token)"
    } else {
        "Authentication is ON"
    };
    let metrics = if super::metrics_open_in_env() {
        " (/metrics stays open: HELDAR_METRICS_AUTH=none)"
    } else {
        ""
    };
    format!(
        "{head}: the API, the dashboard, /media and /metrics need a token{metrics}. A running \
         server applies this within a second.\n\
         - Dashboard: open it in a browser and paste the token on the sign-in page.\n\
         - API and scripts: send the header `Authorization: Bearer <token>`.\n\
         - Prometheus: give it a viewer token, or start the server with HELDAR_METRICS_AUTH=none \
         to leave /metrics open.\n\
         - To turn authentication off again: `heldar auth off`."
    )
}

/// What `token revoke` warns when no live token is left and authentication stays on.
pub fn last_token_warning() -> String {
    let bootstrap = if super::bootstrap_token_in_env() {
        "Only HELDAR_API_TOKEN can use the API and the dashboard now."
    } else {
        "Nobody can use the API or sign in to the dashboard now (unless the server was started \
         with HELDAR_API_TOKEN)."
    };
    format!(
        "Warning: that was the last live token, and authentication stays ON. {bootstrap} To get \
         back in, create a token (`heldar token create --role admin --name NAME`) and sign in \
         with it, or turn authentication off (`heldar auth off`)."
    )
}

async fn act(pool: &db::Pool, action: Action, role: Option<Role>) -> ExitCode {
    match action {
        Action::Create { name, .. } => {
            let role = role.expect("parsed above");
            let before = match ops::auth_switch::status(pool).await {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("heldar token create: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match ops::tokens::create(pool, &SystemClock, &name, role).await {
                Ok((view, token)) => {
                    eprintln!(
                        "created token {} ({:?}, {}); it is shown once, now:",
                        view.id,
                        view.name,
                        view.role.as_str()
                    );
                    println!("{token}");
                    match ops::auth_switch::status(pool).await {
                        Ok(after) => eprintln!(
                            "\n{}",
                            auth_note(after.on, after.on && !before.on, &after.why)
                        ),
                        Err(e) => eprintln!("heldar token create: cannot read the switch: {e}"),
                    }
                    ExitCode::SUCCESS
                }
                Err(OpError::Invalid(m)) => {
                    eprintln!("heldar token create: {m}");
                    ExitCode::from(2)
                }
                Err(e) => {
                    eprintln!("heldar token create: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Action::List { json } => match ops::tokens::list(pool).await {
            Ok(all) if json => {
                println!("{}", serde_json::to_string(&all).expect("serialises"));
                ExitCode::SUCCESS
            }
            Ok(all) => {
                println!(
                    "{:<12}  {:<24}  {:<8}  {:<24}  revoked",
                    "id", "name", "role", "created"
                );
                for t in all {
                    println!(
                        "{:<12}  {:<24}  {:<8}  {:<24}  {}",
                        t.id,
                        t.name,
                        t.role.as_str(),
                        t.created_at,
                        t.revoked_at.as_deref().unwrap_or("-")
                    );
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("heldar token list: {e}");
                ExitCode::FAILURE
            }
        },
        Action::Revoke { id_or_name } => {
            match ops::tokens::revoke(pool, &SystemClock, &id_or_name).await {
                Ok(v) => {
                    eprintln!("revoked token {} ({:?})", v.id, v.name);
                    if let Ok(st) = ops::auth_switch::status(pool).await {
                        if st.on && st.live_tokens == 0 {
                            eprintln!("{}", last_token_warning());
                        }
                    }
                    ExitCode::SUCCESS
                }
                Err(e @ (OpError::NotFound(_) | OpError::Invalid(_))) => {
                    eprintln!("heldar token revoke: {e}");
                    ExitCode::from(2)
                }
                Err(e) => {
                    eprintln!("heldar token revoke: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
