//! The database: the pool, the migrations, and every query Heldar runs (the one place that knows
//! SQL). SQLite by default, in WAL mode so captures, the API and retention read and write side by
//! side; foreign keys on, so deleting a camera cascades to its status, schedules and rows.
//! PostgreSQL (`postgres://…`) is the second back-end, for several nodes on separate machines
//! (docs/scale-out.md "Database back-ends"): [`Pool`] is one or the other, and a query module
//! written for both runs the same SQL text on either through [`with_pool!`]. Every query module
//! runs on both (the hot-path writer, `db::writer`, is written per engine).
//!
//! Migrations are the versioned files in `migrations/` (SQLite) and `migrations-postgres/` (the
//! same schema, same version numbers, PostgreSQL's dialect), run at start-up: a database written
//! by an older Heldar upgrades in place.

pub mod cameras;
pub mod jobs;
pub mod meta;
pub mod nodes;
pub mod outages;
pub mod schedules;
pub mod snapshots;
pub mod timelapse_rules;
pub mod tokens;
pub mod transfer;
pub mod webhooks;
pub mod writer;

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

/// Which database engine a URL or pool is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The back-end a `HELDAR_DATABASE_URL` names by its scheme: `sqlite:`, or `postgres://` /
    /// `postgresql://` (libpq's two spellings). Anything else: none.
    pub fn of_url(url: &str) -> Option<Backend> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

/// The connection pool, of either back-end. An enum rather than sqlx's `Any` driver: SQLite keeps
/// its own driver, connection options and types exactly as before (it stays the default and the
/// hot path), PostgreSQL gets its native driver (its SQLSTATE codes tell an outage from a bad
/// statement), and a query written for both is checked by the compiler against each
/// (docs/scale-out.md "Database back-ends" has the comparison).
#[derive(Debug, Clone)]
pub enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Pool {
    pub fn backend(&self) -> Backend {
        match self {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Close every connection (shutdown).
    pub async fn close(&self) {
        match self {
            Pool::Sqlite(p) => p.close().await,
            Pool::Postgres(p) => p.close().await,
        }
    }

    /// The SQLite pool, if this is one (SQLite-only tools and tests: `PRAGMA`, raw SQL).
    pub fn sqlite(&self) -> Option<&SqlitePool> {
        match self {
            Pool::Sqlite(p) => Some(p),
            Pool::Postgres(_) => None,
        }
    }

    /// The PostgreSQL pool, if this is one.
    pub fn postgres(&self) -> Option<&PgPool> {
        match self {
            Pool::Postgres(p) => Some(p),
            Pool::Sqlite(_) => None,
        }
    }
}

/// Run `$body` with `$p` bound to the back-end's own pool: the body is compiled once per
/// back-end, so its SQL text must suit both (numbered `$1` placeholders, which SQLite also reads
/// by number; standard SQL; integers as `i64`, booleans as 0/1, times as RFC 3339 text) and its
/// rows are read through [`Cols`].
macro_rules! with_pool {
    ($pool:expr, $p:ident => $body:expr) => {
        match $pool {
            $crate::db::Pool::Sqlite($p) => $body,
            $crate::db::Pool::Postgres($p) => $body,
        }
    };
}
pub(crate) use with_pool;

/// Reading a column of a row of either back-end, with the types Heldar stores. A value of the
/// wrong type is a [`DbError::Corrupt`] naming the column, not a panic.
pub(crate) trait Cols {
    fn text(&self, col: &str) -> Result<String, DbError>;
    fn opt_text(&self, col: &str) -> Result<Option<String>, DbError>;
    fn int(&self, col: &str) -> Result<i64, DbError>;
    fn opt_int(&self, col: &str) -> Result<Option<i64>, DbError>;
    fn bytes(&self, col: &str) -> Result<Vec<u8>, DbError>;
}

macro_rules! impl_cols {
    ($row:ty) => {
        impl Cols for $row {
            fn text(&self, col: &str) -> Result<String, DbError> {
                sqlx::Row::try_get(self, col).map_err(|e| corrupt_col(col, e))
            }
            fn opt_text(&self, col: &str) -> Result<Option<String>, DbError> {
                sqlx::Row::try_get(self, col).map_err(|e| corrupt_col(col, e))
            }
            fn int(&self, col: &str) -> Result<i64, DbError> {
                sqlx::Row::try_get(self, col).map_err(|e| corrupt_col(col, e))
            }
            fn opt_int(&self, col: &str) -> Result<Option<i64>, DbError> {
                sqlx::Row::try_get(self, col).map_err(|e| corrupt_col(col, e))
            }
            fn bytes(&self, col: &str) -> Result<Vec<u8>, DbError> {
                sqlx::Row::try_get(self, col).map_err(|e| corrupt_col(col, e))
            }
        }
    };
}
impl_cols!(sqlx::sqlite::SqliteRow);
impl_cols!(sqlx::postgres::PgRow);

fn corrupt_col(col: &str, e: sqlx::Error) -> DbError {
    DbError::Corrupt(format!("column {col}: {e}"))
}

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
    #[error("{} while {step}: {reason}", unavailable())]
    Unavailable { step: &'static str, reason: String },
    /// A frame taken for a slot claimed during an outage whose claim did not win when the
    /// database returned (another process took the slot first): its row is not written.
    #[error("the slot's claim did not win when the database returned; its frame is not kept")]
    ClaimNotWon,
    /// The writer has stopped (shutdown) or could not start.
    #[error("{0}")]
    Writer(String),
}

/// The start of every outage sentence, in errors, logs and the health check; [`unavailable`]
/// adds what it means on the back-end in use.
pub const UNAVAILABLE: &str = "the database is unavailable";

/// The back-end the process connected to last ([`connect`]): 0 none yet, 1 SQLite, 2
/// PostgreSQL. A Heldar process uses one database, so the outage sentence can be worded for it
/// without threading the back-end through every error (a process that opens both, such as
/// `heldar migrate` or a test, gets the last one's words).
static BACKEND_IN_USE: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// The outage, in the words of the back-end in use: SQLite is "unavailable" when another
/// process holds its write lock; a PostgreSQL server when it cannot be reached, restarts or
/// refuses connections (a lock there is a row lock, which the writer's own timeouts report).
pub fn unavailable() -> &'static str {
    match BACKEND_IN_USE.load(std::sync::atomic::Ordering::Relaxed) {
        1 => "the database is unavailable (locked by another process)",
        2 => {
            "the database is unavailable (the PostgreSQL server cannot be reached or refuses \
              connections: down, starting up or failing over)"
        }
        _ => "the database is unavailable (locked by another process, or unreachable)",
    }
}

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

/// PostgreSQL's SQLSTATE codes for "the server is away", not "the statement is wrong": class
/// 08 (the connection failed or broke), the server shutting down or starting up (57P01-57P03),
/// no connection slot free (53300), and a read-only transaction (25006: after a fail-over, a
/// connection left on a server that became a standby); and, from the writer's own time bounds
/// (`db::writer`'s PostgreSQL engine), a row lock not granted within `lock_timeout` (55P03) or
/// a statement cancelled by `statement_timeout` (57014): like SQLite's busy lock, someone else
/// holds what the batch needs, and the batch is held and tried again.
fn pg_code_is_unavailable(code: &str) -> bool {
    code.starts_with("08")
        || matches!(
            code,
            "57P01" | "57P02" | "57P03" | "53300" | "25006" | "55P03" | "57014"
        )
}

/// The start of the reason of an outage that is a refused login (see [`pg_auth_refused`]), as
/// the health check and the writer's outage line name it.
pub const PASSWORD_REFUSED: &str = "the database refuses Heldar's password";

/// PostgreSQL refusing Heldar's login once it has run (28P01: the password is wrong, after an
/// operator's `ALTER ROLE … PASSWORD`; 28000: no `pg_hba.conf` entry lets it in any more). An
/// operator changing credentials is fixing or rotating them, not a bad statement of Heldar's:
/// the node holds its writes as in any outage (docs/design.md §8.1) rather than fail its
/// services, and every error and log line names the cause. Start-up's first connection
/// (`connect_postgres`) does not come through here and still refuses to start.
fn pg_auth_refused(code: &str, message: &str) -> Option<String> {
    match code {
        "28P01" => Some(format!("{PASSWORD_REFUSED} ({message})")),
        "28000" => Some(format!("the database refuses Heldar's login ({message})")),
        _ => None,
    }
}

pub(crate) fn step(step: &'static str) -> impl FnOnce(sqlx::Error) -> DbError {
    move |source| {
        if let sqlx::Error::Database(d) = &source {
            if let Some(pg) = d.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                if let Some(reason) = pg_auth_refused(pg.code(), pg.message()) {
                    return DbError::Unavailable { step, reason };
                }
            }
        }
        let away = match &source {
            sqlx::Error::Database(d) => {
                match d.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                    Some(pg) => pg_code_is_unavailable(pg.code()),
                    None => d
                        .code()
                        .and_then(|c| c.parse::<i32>().ok())
                        .is_some_and(sqlite_code_is_lock),
                }
            }
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
        Backend::of_url(url) != Some(Backend::Postgres),
        "a PostgreSQL database has no file"
    );
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

/// Open the database at `url` (a SQLite file is created if missing) and run the migrations.
pub async fn connect(url: &str) -> anyhow::Result<Pool> {
    let postgres = matches!(Backend::of_url(url), Some(Backend::Postgres));
    BACKEND_IN_USE.store(
        if postgres { 2 } else { 1 },
        std::sync::atomic::Ordering::Relaxed,
    );
    match postgres {
        true => connect_postgres(url).await,
        false => connect_sqlite(url).await,
    }
}

async fn connect_sqlite(url: &str) -> anyhow::Result<Pool> {
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
    Ok(Pool::Sqlite(pool))
}

/// The database must exist (an operator's `CREATE DATABASE`; Heldar does not ask for the right
/// to create databases). Several nodes starting at once are safe: sqlx holds an advisory lock
/// while it migrates.
///
/// One connection is opened on its own before the pool: a pool that cannot connect only says
/// "pool timed out" after its whole acquire timeout, while a single attempt fails at once with
/// the real cause (connection refused, password refused, no such database, a TLS failure), and
/// the error names the server (`host:port` or the socket; never the password).
async fn connect_postgres(url: &str) -> anyhow::Result<Pool> {
    use sqlx::Connection;
    let opts = PgConnectOptions::from_str(url)?.application_name("heldar");
    check_tls_files(url)?;
    let server = match opts.get_socket() {
        Some(socket) => format!("the PostgreSQL server at the socket {}", socket.display()),
        None => format!(
            "the PostgreSQL server at {}:{}",
            opts.get_host(),
            opts.get_port()
        ),
    };
    let cannot = |cause: String| anyhow::anyhow!("cannot connect to {server}: {cause}");
    // Bounded like the pool's wait below: a host that drops packets would otherwise hold the
    // first attempt for the operating system's TCP timeout (minutes).
    match tokio::time::timeout(CONNECT_WAIT, sqlx::PgConnection::connect_with(&opts)).await {
        Err(_) => return Err(cannot(format!("no answer within {CONNECT_WAIT:?}"))),
        Ok(Err(e)) => return Err(cannot(connect_cause(&e))),
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
        }
    }
    let pool = PgPoolOptions::new()
        .max_connections(8)
        // As SQLite's busy timeout: a request waits this long for a connection, then the
        // database counts as unavailable (`step`).
        .acquire_timeout(CONNECT_WAIT)
        .connect_with(opts)
        .await
        .map_err(|e| cannot(connect_cause(&e)))?;
    sqlx::migrate!("./migrations-postgres").run(&pool).await?;
    Ok(Pool::Postgres(pool))
}

/// How long a PostgreSQL connection is waited for (the first one at start-up, and any one the
/// pool hands out later).
const CONNECT_WAIT: Duration = Duration::from_secs(10);

/// Why a connection could not be made, as one clause without sqlx's prefix repeated: "connection
/// refused (nothing listens there)" rather than "error communicating with database: Connection
/// refused (os error 111)".
fn connect_cause(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            "connection refused (nothing listens there, or a firewall refuses it)".to_string()
        }
        sqlx::Error::Io(io) => io.to_string(),
        sqlx::Error::Database(d) => d.message().to_string(),
        sqlx::Error::Tls(t) => format!("TLS failed: {t}"),
        sqlx::Error::Configuration(c) => c.to_string(),
        other => other.to_string(),
    }
}

/// The certificate and key files a `postgres://` URL names (`sslrootcert`, `sslcert`,
/// `sslkey` and sqlx's other spellings of them) must be readable: sqlx reads them only during
/// the TLS handshake, and its error there does not say which file is missing.
fn check_tls_files(url: &str) -> anyhow::Result<()> {
    let Ok(parsed) = url::Url::parse(url) else {
        return Ok(());
    };
    for (key, value) in parsed.query_pairs() {
        let what = match &*key {
            "sslrootcert" | "ssl-root-cert" | "ssl-ca" => "the CA certificate",
            "sslcert" | "ssl-cert" => "the client certificate",
            "sslkey" | "ssl-key" => "the client key",
            _ => continue,
        };
        let value = value.trim();
        // sqlx also takes the PEM text itself in place of a file name.
        if value.starts_with("-----BEGIN") {
            continue;
        }
        if let Err(e) = std::fs::File::open(value) {
            anyhow::bail!(
                "cannot read {what} file {value} ({key} in the database URL): {}",
                io_sentence(&e)
            );
        }
    }
    Ok(())
}

/// An I/O error as a clause, without the "(os error N)" tail.
fn io_sentence(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    }
}

/// A PostgreSQL database of its own for `heldar bench --postgres` (never for an install): made
/// on the server of `server_url` (whose role needs CREATEDB) as `heldar_bench_<16 hex>`.
/// Returns the new database's URL and its name, for [`drop_scratch_database`].
pub async fn create_scratch_database(server_url: &str) -> anyhow::Result<(String, String)> {
    use sqlx::Connection;
    let name = format!("heldar_bench_{:016x}", rand::random::<u64>());
    let mut conn = sqlx::PgConnection::connect(server_url).await?;
    // The name is ours (hex digits), never an operator's value: safe to write into the DDL,
    // which takes no bind parameters.
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    let mut url = url::Url::parse(server_url)?;
    url.set_path(&format!("/{name}"));
    Ok((url.to_string(), name))
}

/// Drop a database [`create_scratch_database`] made (and only such a one: the name is checked).
pub async fn drop_scratch_database(server_url: &str, name: &str) -> anyhow::Result<()> {
    use sqlx::Connection;
    anyhow::ensure!(
        name.strip_prefix("heldar_bench_")
            .is_some_and(|h| h.len() == 16 && h.bytes().all(|b| b.is_ascii_hexdigit())),
        "not a bench database: {name}"
    );
    let mut conn = sqlx::PgConnection::connect(server_url).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(())
}

/// Is the database answering?
pub async fn ping(pool: &Pool) -> Result<(), DbError> {
    with_pool!(pool, p => sqlx::query("SELECT 1").execute(p).await.map(|_| ()))
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

/// What the query-plan tests of the modules share: a migrated SQLite file with some cameras,
/// and SQLite's plan for a query.
#[cfg(test)]
pub(crate) mod plan_test {
    use sqlx::Row;

    /// A migrated SQLite database in `dir` holding the cameras `ids` (created at `at`).
    pub async fn pool_with_cameras(dir: &std::path::Path, ids: &[&str], at: &str) -> super::Pool {
        let url = format!("sqlite://{}", dir.join("heldar.db").display());
        let pool = super::connect(&url).await.unwrap();
        for id in ids {
            sqlx::query(
                "INSERT INTO cameras (id, name, vendor, created_at, updated_at) \
                 VALUES (?1, ?1, 'generic', ?2, ?2)",
            )
            .bind(id)
            .bind(at)
            .execute(pool.sqlite().unwrap())
            .await
            .unwrap();
        }
        pool
    }

    /// The `detail` lines of `EXPLAIN QUERY PLAN sql`, with `bind` for its one parameter.
    pub async fn plan(pool: &super::Pool, sql: &str, bind: &str) -> Vec<String> {
        sqlx::query(&format!("EXPLAIN QUERY PLAN {sql}"))
            .bind(bind)
            .fetch_all(pool.sqlite().unwrap())
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<String, _>("detail"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_names_its_back_end_by_scheme() {
        assert_eq!(Backend::of_url("sqlite://x.db"), Some(Backend::Sqlite));
        assert_eq!(Backend::of_url("sqlite:x.db"), Some(Backend::Sqlite));
        assert_eq!(
            Backend::of_url("postgres://u:p@h/db"),
            Some(Backend::Postgres)
        );
        assert_eq!(
            Backend::of_url("postgresql://h/db"),
            Some(Backend::Postgres)
        );
        assert_eq!(Backend::of_url("mysql://h/db"), None);
        assert!(file_of("postgres://u:p@h/db").is_err());
    }

    /// A PostgreSQL outage is told from a bad statement by its SQLSTATE.
    #[test]
    fn postgres_outage_codes_are_unavailable_and_data_errors_are_not() {
        for away in ["08006", "08001", "57P01", "57P03", "53300", "25006"] {
            assert!(pg_code_is_unavailable(away), "{away}");
        }
        for wrong in ["23505", "23503", "42P01", "22P02", "40001"] {
            assert!(!pg_code_is_unavailable(wrong), "{wrong}");
        }
    }

    /// A login refused at run time is an outage named for what it is; other codes are not.
    #[test]
    fn a_refused_login_is_named_as_such() {
        let msg = "password authentication failed for user \"heldar\"";
        let reason = pg_auth_refused("28P01", msg).unwrap();
        assert!(reason.starts_with(PASSWORD_REFUSED), "{reason}");
        assert!(reason.contains(msg), "{reason}");
        assert!(pg_auth_refused("28000", "no pg_hba.conf entry")
            .unwrap()
            .contains("refuses Heldar's login"));
        assert_eq!(pg_auth_refused("23505", "duplicate key"), None);
    }
}
