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
    /// The database cannot be written (or reached) right now: another process holds SQLite's
    /// write lock past the busy timeout, or the server is gone. Not the data's fault: the same
    /// write may succeed in a moment (the writer holds its writes meanwhile, `db::writer`).
    #[error("{UNAVAILABLE} while {step}: {reason}")]
    Unavailable { step: &'static str, reason: String },
    /// A frame taken for a slot claimed during an outage whose claim did not win when the
    /// database returned (another process took the slot first): its row is not written.
    #[error("the slot's claim did not win when the database returned; its frame is not kept")]
    ClaimNotWon,
    /// The writer has stopped (shutdown) or could not start.
    #[error("{0}")]
    Writer(String),
}

/// The start of every outage sentence, in errors, logs and the health check.
pub const UNAVAILABLE: &str =
    "the database is unavailable (locked by another process / unreachable)";

impl DbError {
    /// Is this the database being away (locked, unreachable), not a bad statement or row?
    pub fn is_unavailable(&self) -> bool {
        matches!(self, DbError::Unavailable { .. })
    }
}

/// SQLite's result codes for "someone else holds the lock" (the primary code of any extended
/// one): SQLITE_BUSY (5) and SQLITE_LOCKED (6).
fn sqlite_code_is_lock(code: i32) -> bool {
    matches!(code & 0xff, 5 | 6)
}

pub(crate) fn step(step: &'static str) -> impl FnOnce(sqlx::Error) -> DbError {
    move |source| {
        let away = match &source {
            sqlx::Error::Database(d) => d
                .code()
                .and_then(|c| c.parse::<i32>().ok())
                .is_some_and(sqlite_code_is_lock),
            // No connection to be had: the pool's wait ran out, or the socket/file failed.
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) => true,
            _ => false,
        };
        match away {
            true => DbError::Unavailable {
                step,
                reason: source.to_string(),
            },
            false => DbError::Sqlx { step, source },
        }
    }
}

pub(crate) fn sqlite_step(step: &'static str) -> impl FnOnce(rusqlite::Error) -> DbError {
    move |source| match &source {
        rusqlite::Error::SqliteFailure(e, _) if sqlite_code_is_lock(e.extended_code) => {
            DbError::Unavailable {
                step,
                reason: source.to_string(),
            }
        }
        _ => DbError::Sqlite { step, source },
    }
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
