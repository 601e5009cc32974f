//! `heldar token create | list | revoke`: API tokens with roles (DESIGN.md §11), kept in the
//! database as hashes. `create` prints the token once, on stdout alone, so it can be captured
//! (`TOKEN=$(heldar token create --role viewer --name grafana)`); everything else goes to stderr.
//! The server sees new and revoked tokens at once: it reads the table on each request.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::clock::SystemClock;
use crate::db;
use crate::error::OpError;
use crate::models::Role;
use crate::ops;

#[derive(Args, Debug)]
pub struct Token {
    /// Root for the database (as `heldar serve`).
    #[arg(long, env = "HELDAR_DATA_DIR", default_value = "./data", global = true)]
    data_dir: String,
    /// Database URL [default: sqlite://$HELDAR_DATA_DIR/heldar.db].
    #[arg(long, env = "HELDAR_DATABASE_URL", global = true)]
    database_url: Option<String>,
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand, Debug)]
enum Action {
    /// Create a token and print it (once).
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
    let url = args.database_url.clone().unwrap_or_else(|| {
        format!(
            "sqlite://{}",
            PathBuf::from(&args.data_dir).join("heldar.db").display()
        )
    });
    if url.starts_with("sqlite://") {
        if let Err(e) = std::fs::create_dir_all(&args.data_dir) {
            eprintln!("heldar token: cannot create {}: {e}", args.data_dir);
            return ExitCode::FAILURE;
        }
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("heldar token: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let pool = match db::connect(&url).await {
            Ok(p) => p,
            Err(e) => {
                eprintln!("heldar token: cannot open the database: {e:#}");
                return ExitCode::FAILURE;
            }
        };
        let code = act(&pool, args.action, role).await;
        pool.close().await;
        code
    })
}

async fn act(pool: &db::Pool, action: Action, role: Option<Role>) -> ExitCode {
    match action {
        Action::Create { name, .. } => {
            let role = role.expect("parsed above");
            match ops::tokens::create(pool, &SystemClock, &name, role).await {
                Ok((view, token)) => {
                    eprintln!(
                        "created token {} ({:?}, {}); it is shown once, now:",
                        view.id,
                        view.name,
                        view.role.as_str()
                    );
                    println!("{token}");
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
