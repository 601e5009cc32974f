//! Queries on `outages`: opening one (at most one open per camera, enforced by a partial unique
//! index), noting further failures on the open one, closing it, the open ones at start-up, and
//! the paged lists of the API (newest first, keyset-paged by `started_at` and id). Every query
//! runs on both back-ends (`with_pool!`).

use chrono::{DateTime, Utc};

use super::{parse_opt_ts, parse_ts, step, with_pool, Cols, DbError, Pool};
use crate::models::integrations::Outage;
use crate::models::{fmt_ts, CameraId, Page, Position};

const COLUMNS: &str = "id, camera_id, started_at, ended_at, first_error, last_error, failures";

fn from_row(row: &impl Cols) -> Result<Outage, DbError> {
    let camera = row.text("camera_id")?;
    let started_at = parse_ts(&row.text("started_at")?)?;
    let ended_at = parse_opt_ts(row.opt_text("ended_at")?)?;
    Ok(Outage {
        id: row.text("id")?,
        camera_id: CameraId::parse(&camera)
            .map_err(|_| DbError::Corrupt(format!("outages.camera_id = {camera:?}")))?,
        started_at,
        ended_at,
        first_error: row.opt_text("first_error")?,
        last_error: row.opt_text("last_error")?,
        failures: row.int("failures")?,
        duration_s: ended_at.map(|e| (e - started_at).num_milliseconds() as f64 / 1000.0),
    })
}

/// Open an outage. A camera that already has an open one is a conflict (the caller keeps
/// that one); a camera deleted meanwhile is `NoParent`.
pub async fn open(pool: &Pool, o: &Outage) -> Result<(), DbError> {
    let r = with_pool!(pool, p => {
        sqlx::query(
            "INSERT INTO outages (id, camera_id, started_at, first_error, last_error, failures) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&o.id)
        .bind(o.camera_id.as_str())
        .bind(fmt_ts(o.started_at))
        .bind(&o.first_error)
        .bind(&o.last_error)
        .bind(o.failures)
        .execute(p)
        .await
        .map(|_| ())
    });
    match r {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(DbError::Conflict(
            format!("camera {} already has an open outage", o.camera_id),
        )),
        Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => Err(DbError::NoParent(
            format!("camera {} no longer exists", o.camera_id),
        )),
        Err(e) => Err(step("opening an outage")(e)),
    }
}

/// Note the latest failure of an open outage (a closed one is left as it is).
pub async fn note_failure(
    pool: &Pool,
    id: &str,
    error: &str,
    failures: i64,
) -> Result<(), DbError> {
    // CASE rather than SQLite's two-argument MAX(), which PostgreSQL calls GREATEST().
    with_pool!(pool, p => {
        sqlx::query(
            "UPDATE outages SET last_error = $1, \
             failures = CASE WHEN failures > $2 THEN failures ELSE $2 END \
             WHERE id = $3 AND ended_at IS NULL",
        )
        .bind(error)
        .bind(failures)
        .bind(id)
        .execute(p)
        .await
        .map(|_| ())
    })
    .map_err(step("noting an outage's failure"))
}

/// Close an open outage at `at`; false when it was not open.
pub async fn close(
    pool: &Pool,
    id: &str,
    at: DateTime<Utc>,
    last_error: Option<&str>,
    failures: i64,
) -> Result<bool, DbError> {
    let n = with_pool!(pool, p => {
        sqlx::query(
            "UPDATE outages SET ended_at = $1, last_error = COALESCE($2, last_error), \
             failures = CASE WHEN failures > $3 THEN failures ELSE $3 END \
             WHERE id = $4 AND ended_at IS NULL",
        )
        .bind(fmt_ts(at))
        .bind(last_error)
        .bind(failures)
        .bind(id)
        .execute(p)
        .await
        .map(|r| r.rows_affected())
    })
    .map_err(step("closing an outage"))?;
    Ok(n == 1)
}

/// Every open outage (start-up).
pub async fn open_ones(pool: &Pool) -> Result<Vec<Outage>, DbError> {
    let sql = format!("SELECT {COLUMNS} FROM outages WHERE ended_at IS NULL");
    with_pool!(pool, p => {
        sqlx::query(&sql)
            .fetch_all(p)
            .await
            .map_err(step("reading open outages"))?
            .iter()
            .map(from_row)
            .collect()
    })
}

pub async fn get(pool: &Pool, id: &str) -> Result<Option<Outage>, DbError> {
    let sql = format!("SELECT {COLUMNS} FROM outages WHERE id = $1");
    with_pool!(pool, p => {
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(p)
            .await
            .map_err(step("reading an outage"))?;
        row.as_ref().map(from_row).transpose()
    })
}

/// The filters of the outage list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub camera: Option<CameraId>,
    /// Outages that overlap `[from, to]`: ended at or after `from` (or still open), started at
    /// or before `to`.
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Only open ones (true) or only closed ones (false).
    pub open: Option<bool>,
}

/// One page of outages, newest first.
pub async fn page(
    pool: &Pool,
    f: &Filter,
    after: Option<&Position>,
    limit: i64,
) -> Result<Page<Outage>, DbError> {
    let camera = f.camera.as_ref().map(|c| c.as_str().to_string());
    let from = f.from.map(fmt_ts);
    let to = f.to.map(fmt_ts);
    let open = f.open.map(i64::from);
    let (cursor_at, cursor_id) = match after {
        Some(p) => (fmt_ts(p.at), p.id.clone()),
        None => ("9999".into(), String::new()),
    };
    // $1 camera, $2 from, $3 to, $4 open (1 open only, 0 closed only).
    let filter = "($1 IS NULL OR camera_id = $1) \
         AND ($2 IS NULL OR ended_at IS NULL OR ended_at >= $2) \
         AND ($3 IS NULL OR started_at <= $3) \
         AND ($4 IS NULL OR (ended_at IS NULL) = ($4 = 1))";
    let count_sql = format!("SELECT COUNT(*) FROM outages WHERE {filter}");
    let rows_sql = format!(
        "SELECT {COLUMNS} FROM outages WHERE {filter} \
         AND (started_at < $5 OR (started_at = $5 AND id < $6)) \
         ORDER BY started_at DESC, id DESC LIMIT $7"
    );
    let (total, mut items) = with_pool!(pool, p => {
        let mut tx = p.begin().await.map_err(step("starting a read"))?;
        let total: i64 = sqlx::query_scalar(&count_sql)
            .bind(&camera)
            .bind(&from)
            .bind(&to)
            .bind(open)
            .fetch_one(&mut *tx)
            .await
            .map_err(step("counting outages"))?;
        let rows = sqlx::query(&rows_sql)
            .bind(&camera)
            .bind(&from)
            .bind(&to)
            .bind(open)
            .bind(&cursor_at)
            .bind(&cursor_id)
            .bind(limit + 1)
            .fetch_all(&mut *tx)
            .await
            .map_err(step("listing outages"))?;
        tx.commit().await.map_err(step("ending a read"))?;
        (total, rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?)
    });
    let more = items.len() as i64 > limit;
    items.truncate(limit as usize);
    let next = more.then(|| items.last()).flatten().map(|o| Position {
        at: o.started_at,
        id: o.id.clone(),
    });
    Ok(Page { items, total, next })
}
