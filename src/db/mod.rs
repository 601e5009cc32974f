//! The database: the pool, the migrations, and every query Heldar runs (the one place that knows
//! SQL). SQLite by default, in WAL mode so captures, the API and retention read and write side by
//! side; foreign keys on, so deleting a camera cascades to its status, schedules and rows.
//!
//! Migrations are the versioned files in `migrations/`, run at start-up: a database written by an
//! older Heldar upgrades in place.

pub mod cameras;
pub mod jobs;
pub mod meta;
pub mod nodes;
pub mod outages;
pub mod schedules;
pub mod snapshots;
pub mod timelapse_rules;
pub mod tokens;
pub mod webhooks;
pub mod writer;

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

pub type Pool = SqlitePool;

/// A database failure, with the step that failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database error while {step}: {source}")]
    Sqlx {
        step: &'static str,
        #[source]
        source: sqlx::Error,
    },
    /// From the writer's own connection (`db::writer`), which is synchronous SQLite.
    #[error("database error while {step}: {source}")]
    Sqlite {
        step: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error("a row already exists: {0}")]
    Conflict(String),
    /// The row a foreign key names is gone (e.g. a schedule's camera was deleted meanwhile).
    #[error("{0}")]
    NoParent(String),
    #[error("database row is corrupt: {0}")]
    Corrupt(String),
}

pub(crate) fn step(step: &'static str) -> impl FnOnce(sqlx::Error) -> DbError {
    move |source| DbError::Sqlx { step, source }
}

pub(crate) fn sqlite_step(step: &'static str) -> impl FnOnce(rusqlite::Error) -> DbError {
    move |source| DbError::Sqlite { step, source }
}

/// The file behind a `sqlite:` URL: the writer opens its own connection to it. An in-memory
/// database would be a different one per connection, so it is refused.
pub fn file_of(url: &str) -> anyhow::Result<std::path::PathBuf> {
    anyhow::ensure!(
        !is_in_memory(url),
        "an in-memory database cannot be used: Heldar needs a database file"
    );
    Ok(SqliteConnectOptions::from_str(url)?
        .get_filename()
        .to_path_buf())
}

/// Does this `sqlite:` URL name an in-memory database? (Config refuses those up front.)
pub fn is_in_memory(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

/// Open (creating if missing) the database at `url` and run the migrations.
pub async fn connect(url: &str) -> anyhow::Result<Pool> {
    let opts = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // NORMAL in WAL mode: a power cut can lose the last commits, never corrupt the file.
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10));
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .connect_with(opts)
        .await?;
    sqlx::migrate!("./migrations").run(&pool).await?;
    Ok(pool)
}

/// Is the database answering?
pub async fn ping(pool: &Pool) -> Result<(), DbError> {
    sqlx::query("SELECT 1")
        .execute(pool)
        .await
        .map(|_| ())
        .map_err(step("checking the database"))
}

pub(crate) fn parse_ts(s: &str) -> Result<DateTime<Utc>, DbError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| DbError::Corrupt(format!("bad timestamp {s:?}: {e}")))
}

pub(crate) fn parse_opt_ts(s: Option<String>) -> Result<Option<DateTime<Utc>>, DbError> {
    s.as_deref().map(parse_ts).transpose()
}
