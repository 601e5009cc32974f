//! Queries on `snapshot_schedules`. The slot claim (`claim`) is the conditional update that makes
//! "exactly one capture per slot" hold across processes sharing the database (docs/design.md §7).
//! Every query runs on both back-ends (`with_pool!`); the offline watch's look has one text per
//! back-end, each matching its own expression index (migration 0017).

use chrono::{DateTime, Utc};

use super::{parse_opt_ts, parse_ts, step, with_pool, Cols, DbError, Pool};
use crate::models::{fmt_ts, CameraId, Page, Position, Schedule, SkipReason, Stream};

const COLUMNS: &str = "id, camera_id, interval_seconds, enabled, last_fired_at, next_due_at, \
     created_at, updated_at, calendar, skip_dark, dark_threshold, skip_unchanged, stream, \
     retention_hours, last_skipped_at, last_skip_reason";

/// A skipped slot (binds: the frame's time, the reason, the schedule id): it fired (its
/// `last_fired_at` moves as a stored frame's would) and was skipped. Run by the writer.
pub(crate) const RECORD_SKIP_SQL: &str = "UPDATE snapshot_schedules SET last_fired_at = $1, \
     last_skipped_at = $1, last_skip_reason = $2 WHERE id = $3";

/// The `calendar` column: the calendar as JSON, NULL for the plain interval schedule.
fn calendar_json(s: &Schedule) -> Option<String> {
    s.calendar()
        .map(|c| serde_json::to_string(&c).expect("a calendar serialises"))
}

fn from_row(row: &impl Cols) -> Result<Schedule, DbError> {
    let camera = row.text("camera_id")?;
    let calendar = match row.opt_text("calendar")? {
        None => None,
        Some(json) => Some(
            serde_json::from_str(&json)
                .map_err(|_| DbError::Corrupt(format!("snapshot_schedules.calendar = {json:?}")))?,
        ),
    };
    let mut s = Schedule {
        id: row.text("id")?,
        camera_id: CameraId::parse(&camera)
            .map_err(|_| DbError::Corrupt(format!("snapshot_schedules.camera_id = {camera:?}")))?,
        interval_seconds: row.int("interval_seconds")?,
        enabled: row.int("enabled")? != 0,
        last_fired_at: parse_opt_ts(row.opt_text("last_fired_at")?)?,
        next_due_at: parse_opt_ts(row.opt_text("next_due_at")?)?,
        created_at: parse_ts(&row.text("created_at")?)?,
        updated_at: parse_ts(&row.text("updated_at")?)?,
        timezone: String::new(),
        align: false,
        at: None,
        weekdays: None,
        active_from: None,
        active_to: None,
        daylight: None,
        skip_dark: row.int("skip_dark")? != 0,
        dark_threshold: row.opt_int("dark_threshold")?,
        skip_unchanged: row.int("skip_unchanged")? != 0,
        stream: match row.opt_text("stream")? {
            None => None,
            Some(v) => {
                Some(Stream::parse(&v).ok_or_else(|| {
                    DbError::Corrupt(format!("snapshot_schedules.stream = {v:?}"))
                })?)
            }
        },
        retention_hours: row.opt_int("retention_hours")?,
        last_skipped_at: parse_opt_ts(row.opt_text("last_skipped_at")?)?,
        // Written only by Heldar; an unknown word (a later version's) reads as none.
        last_skip_reason: row
            .opt_text("last_skip_reason")?
            .and_then(|r| SkipReason::parse(&r)),
    };
    s.set_calendar(calendar);
    Ok(s)
}

/// Insert one schedule. Its camera gone (the foreign key) is a [`DbError::NoParent`].
pub async fn insert(pool: &Pool, s: &Schedule) -> Result<(), DbError> {
    insert_many(pool, std::slice::from_ref(s))
        .await
        .map_err(|e| match e {
            DbError::Sqlx {
                source: sqlx::Error::Database(ref d),
                ..
            } if d.is_foreign_key_violation() => {
                DbError::NoParent(format!("no camera with id {:?}", s.camera_id.as_str()))
            }
            other => other,
        })
}

/// Write what an edit may change of an existing schedule: interval, enabled, calendar,
/// next_due_at and the frame rules (not its last fire or skip, which the writer owns).
pub async fn update(pool: &Pool, s: &Schedule) -> Result<bool, DbError> {
    let n = with_pool!(pool, p => {
        sqlx::query(
            "UPDATE snapshot_schedules SET interval_seconds = $1, enabled = $2, \
             next_due_at = $3, calendar = $4, skip_dark = $5, dark_threshold = $6, \
             skip_unchanged = $7, stream = $8, retention_hours = $9, updated_at = $10 \
             WHERE id = $11",
        )
        .bind(s.interval_seconds)
        .bind(i64::from(s.enabled))
        .bind(s.next_due_at.map(fmt_ts))
        .bind(calendar_json(s))
        .bind(i64::from(s.skip_dark))
        .bind(s.dark_threshold)
        .bind(i64::from(s.skip_unchanged))
        .bind(s.stream.map(Stream::as_str))
        .bind(s.retention_hours)
        .bind(fmt_ts(s.updated_at))
        .bind(&s.id)
        .execute(p)
        .await
        .map(|r| r.rows_affected())
    })
    .map_err(step("updating a schedule"))?;
    Ok(n > 0)
}

pub async fn get(pool: &Pool, id: &str) -> Result<Option<Schedule>, DbError> {
    let sql = format!("SELECT {COLUMNS} FROM snapshot_schedules WHERE id = $1");
    with_pool!(pool, p => {
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(p)
            .await
            .map_err(step("reading a schedule"))?;
        row.as_ref().map(from_row).transpose()
    })
}

pub async fn list_for_camera(pool: &Pool, camera: &CameraId) -> Result<Vec<Schedule>, DbError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM snapshot_schedules WHERE camera_id = $1 ORDER BY created_at, id"
    );
    with_pool!(pool, p => {
        sqlx::query(&sql)
            .bind(camera.as_str())
            .fetch_all(p)
            .await
            .map_err(step("listing schedules"))?
            .iter()
            .map(from_row)
            .collect()
    })
}

/// One page of every schedule, optionally only one camera's and only enabled (or disabled)
/// ones, oldest first (`created_at`, then id): at most `limit` after `after`, the number
/// matching the filters in all, and the position after the last one when more remain. One read
/// transaction, so the total and the page agree.
pub async fn page_all(
    pool: &Pool,
    camera: Option<&CameraId>,
    enabled: Option<bool>,
    after: Option<&Position>,
    limit: i64,
) -> Result<Page<Schedule>, DbError> {
    // The filters are written into the SQL only when given, so the camera index serves
    // `camera = ?` (an `? IS NULL OR camera_id = ?` form would scan every row). Numbered
    // placeholders, counted as the filters are added.
    let mut filters = Vec::new();
    if camera.is_some() {
        filters.push(format!("camera_id = ${}", filters.len() + 1));
    }
    if enabled.is_some() {
        filters.push(format!("enabled = ${}", filters.len() + 1));
    }
    let n = filters.len();
    let cursor = format!(
        "(created_at > ${a} OR (created_at = ${a} AND id > ${b}))",
        a = n + 1,
        b = n + 2
    );
    let filtered = |extra: Option<&str>| {
        let all: Vec<&str> = filters.iter().map(String::as_str).chain(extra).collect();
        if all.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", all.join(" AND "))
        }
    };
    let count_sql = format!("SELECT COUNT(*) FROM snapshot_schedules{}", filtered(None));
    let page_sql = format!(
        "SELECT {COLUMNS} FROM snapshot_schedules{} ORDER BY created_at, id LIMIT ${}",
        filtered(Some(&cursor)),
        n + 3
    );
    let (cursor_at, cursor_id) = match after {
        Some(p) => (fmt_ts(p.at), p.id.clone()),
        None => (String::new(), String::new()),
    };
    let (total, mut items) = with_pool!(pool, p => {
        let mut tx = p.begin().await.map_err(step("starting a read"))?;
        let mut count = sqlx::query_scalar::<_, i64>(&count_sql);
        let mut rows = sqlx::query(&page_sql);
        if let Some(c) = camera {
            count = count.bind(c.as_str());
            rows = rows.bind(c.as_str());
        }
        if let Some(e) = enabled {
            count = count.bind(i64::from(e));
            rows = rows.bind(i64::from(e));
        }
        let total = count
            .fetch_one(&mut *tx)
            .await
            .map_err(step("counting schedules"))?;
        let rows = rows
            .bind(&cursor_at)
            .bind(&cursor_id)
            .bind(limit + 1)
            .fetch_all(&mut *tx)
            .await
            .map_err(step("listing schedules"))?;
        tx.commit().await.map_err(step("ending a read"))?;
        (total, rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?)
    });
    let more = items.len() as i64 > limit;
    items.truncate(limit as usize);
    let next = more.then(|| items.last()).flatten().map(|s| Position {
        at: s.created_at,
        id: s.id.clone(),
    });
    Ok(Page { items, total, next })
}

/// Every enabled schedule: what the scheduler keeps in its timer structure.
pub async fn list_enabled(pool: &Pool) -> Result<Vec<Schedule>, DbError> {
    let sql = format!("SELECT {COLUMNS} FROM snapshot_schedules WHERE enabled = 1");
    decode_each(pool, &sql, None, "loading enabled schedules").await
}

/// The query of [`watched_intervals`] on SQLite (its own item so a test can check SQLite's plan
/// for it).
const WATCHED_SQL: &str = "SELECT camera_id, MIN(interval_seconds) AS shortest FROM ( \
           SELECT camera_id, interval_seconds, calendar FROM snapshot_schedules \
             WHERE enabled = 1 AND next_due_at IS NULL \
           UNION ALL \
           SELECT camera_id, interval_seconds, calendar FROM snapshot_schedules \
             WHERE enabled = 1 \
               AND julianday(next_due_at) * 86400.0 - interval_seconds \
                   <= julianday(?1) * 86400.0 \
         ) WHERE calendar IS NULL OR json_extract(calendar, '$.at') IS NULL \
         GROUP BY camera_id";

/// [`WATCHED_SQL`] on PostgreSQL: `heldar_epoch()` (migration 0017) in place of julianday(), the
/// expression of PostgreSQL's `snapshot_schedules_watch` index, written exactly as there; the
/// calendar's `at` read with PostgreSQL's JSON operator (`->>` is NULL for a missing key and for
/// a JSON null, as SQLite's json_extract is).
const WATCHED_SQL_POSTGRES: &str = "SELECT camera_id, MIN(interval_seconds) AS shortest FROM ( \
           SELECT camera_id, interval_seconds, calendar FROM snapshot_schedules \
             WHERE enabled = 1 AND next_due_at IS NULL \
           UNION ALL \
           SELECT camera_id, interval_seconds, calendar FROM snapshot_schedules \
             WHERE enabled = 1 \
               AND heldar_epoch(next_due_at) - interval_seconds <= heldar_epoch($1) \
         ) AS w WHERE calendar IS NULL OR (calendar::jsonb ->> 'at') IS NULL \
         GROUP BY camera_id";

/// The text of [`watched_intervals`]'s query on `backend` (binds: now), for a test to ask the
/// engine for its plan.
pub fn watched_sql(backend: super::Backend) -> &'static str {
    match backend {
        super::Backend::Sqlite => WATCHED_SQL,
        super::Backend::Postgres => WATCHED_SQL_POSTGRES,
    }
}

/// Each camera's shortest interval among its enabled interval schedules (not fixed times of
/// day) that are active at `now`: their next slot is at most one interval away (outside its
/// window or weekdays, a schedule's next slot is the window's opening, further off). One row per
/// such camera, worked out by SQLite: the offline watch asks every few seconds, and reading
/// 100,000 idle schedules into memory each time would cost an idle server its CPU.
///
/// "Due within one interval" is written as `julianday(next_due_at) * 86400.0 -
/// interval_seconds <= julianday(now) * 86400.0`, the expression of the index
/// `snapshot_schedules_watch` (migration 0017), so SQLite range-scans the index rather than
/// computing julianday() and json_extract() for every row: 250-300 ms of CPU per look at
/// 100,000 idle windowed schedules before, 2-6 ms after. Unscheduled rows (a null
/// `next_due_at`) are the other arm of the UNION ALL, on `snapshot_schedules_due`.
pub async fn watched_intervals(
    pool: &Pool,
    now: DateTime<Utc>,
) -> Result<Vec<(String, i64)>, DbError> {
    let sql = watched_sql(pool.backend());
    with_pool!(pool, p => {
        sqlx::query(sql)
            .bind(fmt_ts(now))
            .fetch_all(p)
            .await
            .map_err(step("reading the cameras to watch for silence"))?
            .iter()
            .map(|r| Ok((r.text("camera_id")?, r.int("shortest")?)))
            .collect()
    })
}

/// Decode rows as they stream in. `fetch_all` would hold every row as sqlx keeps it (about
/// 1.5 kB each) until the last arrived: 150 MB more resident for 100,000 schedules, measured
/// as the bench's peak RSS. Streaming holds only the decoded schedules.
/// `sql` takes at most one text bind, `arg`.
async fn decode_each(
    pool: &Pool,
    sql: &str,
    arg: Option<String>,
    what: &'static str,
) -> Result<Vec<Schedule>, DbError> {
    use futures_util::TryStreamExt;
    with_pool!(pool, p => {
        let mut query = sqlx::query(sql);
        if let Some(a) = arg {
            query = query.bind(a);
        }
        let mut rows = query.fetch(p);
        let mut out = Vec::new();
        while let Some(row) = rows.try_next().await.map_err(step(what))? {
            out.push(from_row(&row)?);
        }
        Ok(out)
    })
}

/// Every schedule (enabled or not) whose row changed at or after `since`: the scheduler's
/// incremental re-read, which sees edits made by other processes without reloading them all.
pub async fn list_changed_since(
    pool: &Pool,
    since: DateTime<Utc>,
) -> Result<Vec<Schedule>, DbError> {
    let sql = format!("SELECT {COLUMNS} FROM snapshot_schedules WHERE updated_at >= $1");
    decode_each(pool, &sql, Some(fmt_ts(since)), "loading changed schedules").await
}

pub async fn delete(pool: &Pool, id: &str) -> Result<bool, DbError> {
    let n = with_pool!(pool, p => {
        sqlx::query("DELETE FROM snapshot_schedules WHERE id = $1")
            .bind(id)
            .execute(p)
            .await
            .map(|r| r.rows_affected())
    })
    .map_err(step("deleting a schedule"))?;
    Ok(n > 0)
}

/// Claim a slot (binds: next, id, slot): move the schedule's `next_due_at` from the slot to the
/// next one. One row changed only for the caller whose view of the slot was current: a second
/// process, or a stale copy after a restart, changes none and does not capture. Run by the
/// writer (`db::writer`), which owns every hot-path write.
pub(crate) const CLAIM_SQL: &str = "UPDATE snapshot_schedules SET next_due_at = $1 \
     WHERE id = $2 AND enabled = 1 AND next_due_at = $3";

/// One slot claim: move schedule `id`'s `next_due_at` from `slot` to `next` ([`CLAIM_SQL`]);
/// `next` is `None` when a calendar schedule has no window within 400 days (it idles).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub id: String,
    pub slot: DateTime<Utc>,
    pub next: Option<DateTime<Utc>>,
}

/// Insert many schedules in one transaction (benchmark seeding, imports).
pub async fn insert_many(pool: &Pool, all: &[Schedule]) -> Result<(), DbError> {
    let sql = format!(
        "INSERT INTO snapshot_schedules ({COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
    );
    with_pool!(pool, p => {
    let mut tx = p.begin().await.map_err(step("starting a transaction"))?;
    for s in all {
        sqlx::query(&sql)
        .bind(&s.id)
        .bind(s.camera_id.as_str())
        .bind(s.interval_seconds)
        .bind(i64::from(s.enabled))
        .bind(s.last_fired_at.map(fmt_ts))
        .bind(s.next_due_at.map(fmt_ts))
        .bind(fmt_ts(s.created_at))
        .bind(fmt_ts(s.updated_at))
        .bind(calendar_json(s))
        .bind(i64::from(s.skip_dark))
        .bind(s.dark_threshold)
        .bind(i64::from(s.skip_unchanged))
        .bind(s.stream.map(Stream::as_str))
        .bind(s.retention_hours)
        .bind(s.last_skipped_at.map(fmt_ts))
        .bind(s.last_skip_reason.map(SkipReason::as_str))
        .execute(&mut *tx)
        .await
        .map_err(step("inserting a schedule"))?;
    }
    tx.commit().await.map_err(step("committing schedules"))
    })
}

/// `(id, retention_hours)` of every schedule with its own retention.
pub async fn retention_overrides(pool: &Pool) -> Result<Vec<(String, i64)>, DbError> {
    with_pool!(pool, p => {
        sqlx::query_as(
            "SELECT id, retention_hours FROM snapshot_schedules WHERE retention_hours IS NOT NULL",
        )
        .fetch_all(p)
        .await
    })
    .map_err(step("listing schedules with their own retention"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// The offline watch's look: active interval schedules count, idle windowed ones, fixed
    /// times and disabled ones do not; and SQLite answers it from the expression index, which
    /// a change to the query's expression would silently lose.
    #[tokio::test]
    async fn watched_intervals_reads_the_due_rows_through_the_watch_index() {
        let dir = tempfile::tempdir().unwrap();
        let now = Utc.with_ymd_and_hms(2026, 11, 29, 22, 0, 0).unwrap();
        let ts = |secs: i64| fmt_ts(now + chrono::Duration::seconds(secs));
        let pool =
            crate::db::plan_test::pool_with_cameras(dir.path(), &["a", "b", "c", "d", "e"], &ts(0))
                .await;
        let window = r#"{"zone":"UTC","active_from":"03:00","active_to":"04:00"}"#;
        let at = r#"{"zone":"UTC","at":["12:00"]}"#;
        // (id, camera, interval, enabled, next_due_at, calendar)
        type Row<'a> = (&'a str, &'a str, i64, i64, Option<String>, Option<&'a str>);
        let rows: [Row; 7] = [
            ("s1", "a", 5, 1, Some(ts(3)), None), // due within its interval
            ("s2", "a", 30, 1, Some(ts(20)), None), // longer: a keeps 5
            ("s3", "b", 60, 1, None, None),       // not yet scheduled: watched
            ("s4", "c", 5, 1, Some(ts(5 * 3600)), Some(window)), // idle until its window
            ("s5", "d", 5, 0, Some(ts(1)), None), // disabled
            ("s6", "e", 86_400, 1, Some(ts(600)), Some(at)), // fixed times: never watched
            ("s7", "c", 10, 1, Some(ts(11)), None), // just beyond one interval
        ];
        for (id, cam, interval, enabled, due, calendar) in rows {
            sqlx::query(
                "INSERT INTO snapshot_schedules (id, camera_id, interval_seconds, enabled, \
                 next_due_at, created_at, updated_at, calendar) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7)",
            )
            .bind(id)
            .bind(cam)
            .bind(interval)
            .bind(enabled)
            .bind(due)
            .bind(ts(-3600))
            .bind(calendar)
            .execute(pool.sqlite().unwrap())
            .await
            .unwrap();
        }
        let mut got = watched_intervals(&pool, now).await.unwrap();
        got.sort();
        assert_eq!(got, vec![("a".to_string(), 5), ("b".to_string(), 60)]);

        let plan = crate::db::plan_test::plan(&pool, WATCHED_SQL, &ts(0)).await;
        assert!(
            plan.iter().any(|d| d.contains("snapshot_schedules_watch")),
            "the watch query no longer uses its index: {plan:?}"
        );
        assert!(
            !plan
                .iter()
                .any(|d| d.starts_with("SCAN snapshot_schedules")),
            "the watch query scans every schedule: {plan:?}"
        );
    }
}
