//! Queries on `snapshot_schedules`. The slot claim (`claim`) is the conditional update that makes
//! "exactly one capture per slot" hold across processes sharing the database (docs/design.md §7).

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{parse_opt_ts, parse_ts, step, DbError, Pool};
use crate::models::{fmt_ts, CameraId, Page, Position, Schedule, SkipReason, Stream};

const COLUMNS: &str = "id, camera_id, interval_seconds, enabled, last_fired_at, next_due_at, \
     created_at, updated_at, calendar, skip_dark, dark_threshold, skip_unchanged, stream, \
     retention_hours, last_skipped_at, last_skip_reason";

/// A skipped slot (binds: the frame's time, the reason, the schedule id): it fired (its
/// `last_fired_at` moves as a stored frame's would) and was skipped. Run by the writer.
pub(crate) const RECORD_SKIP_SQL: &str = "UPDATE snapshot_schedules SET last_fired_at = ?1, \
     last_skipped_at = ?1, last_skip_reason = ?2 WHERE id = ?3";

/// The `calendar` column: the calendar as JSON, NULL for the plain interval schedule.
fn calendar_json(s: &Schedule) -> Option<String> {
    s.calendar()
        .map(|c| serde_json::to_string(&c).expect("a calendar serialises"))
}

fn from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Schedule, DbError> {
    let camera: String = row.get("camera_id");
    let calendar = match row.get::<Option<String>, _>("calendar") {
        None => None,
        Some(json) => Some(
            serde_json::from_str(&json)
                .map_err(|_| DbError::Corrupt(format!("snapshot_schedules.calendar = {json:?}")))?,
        ),
    };
    let mut s = Schedule {
        id: row.get("id"),
        camera_id: CameraId::parse(&camera)
            .map_err(|_| DbError::Corrupt(format!("snapshot_schedules.camera_id = {camera:?}")))?,
        interval_seconds: row.get("interval_seconds"),
        enabled: row.get::<i64, _>("enabled") != 0,
        last_fired_at: parse_opt_ts(row.get("last_fired_at"))?,
        next_due_at: parse_opt_ts(row.get("next_due_at"))?,
        created_at: parse_ts(row.get("created_at"))?,
        updated_at: parse_ts(row.get("updated_at"))?,
        timezone: String::new(),
        align: false,
        at: None,
        weekdays: None,
        active_from: None,
        active_to: None,
        daylight: None,
        skip_dark: row.get::<i64, _>("skip_dark") != 0,
        dark_threshold: row.get("dark_threshold"),
        skip_unchanged: row.get::<i64, _>("skip_unchanged") != 0,
        stream: match row.get::<Option<String>, _>("stream") {
            None => None,
            Some(v) => {
                Some(Stream::parse(&v).ok_or_else(|| {
                    DbError::Corrupt(format!("snapshot_schedules.stream = {v:?}"))
                })?)
            }
        },
        retention_hours: row.get("retention_hours"),
        last_skipped_at: parse_opt_ts(row.get("last_skipped_at"))?,
        // Written only by Heldar; an unknown word (a later version's) reads as none.
        last_skip_reason: row
            .get::<Option<String>, _>("last_skip_reason")
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
    let r = sqlx::query(
        "UPDATE snapshot_schedules SET interval_seconds = ?, enabled = ?, next_due_at = ?, \
         calendar = ?, skip_dark = ?, dark_threshold = ?, skip_unchanged = ?, stream = ?, \
         retention_hours = ?, updated_at = ? WHERE id = ?",
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
    .execute(pool)
    .await
    .map_err(step("updating a schedule"))?;
    Ok(r.rows_affected() > 0)
}

pub async fn get(pool: &Pool, id: &str) -> Result<Option<Schedule>, DbError> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM snapshot_schedules WHERE id = ?"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await
    .map_err(step("reading a schedule"))?;
    row.as_ref().map(from_row).transpose()
}

pub async fn list_for_camera(pool: &Pool, camera: &CameraId) -> Result<Vec<Schedule>, DbError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM snapshot_schedules WHERE camera_id = ? ORDER BY created_at, id"
    ))
    .bind(camera.as_str())
    .fetch_all(pool)
    .await
    .map_err(step("listing schedules"))?;
    rows.iter().map(from_row).collect()
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
    // `camera = ?` (an `? IS NULL OR camera_id = ?` form would scan every row).
    let mut filters = Vec::new();
    if camera.is_some() {
        filters.push("camera_id = ?");
    }
    if enabled.is_some() {
        filters.push("enabled = ?");
    }
    let filtered = |extra: Option<&str>| {
        let all: Vec<&str> = filters.iter().copied().chain(extra).collect();
        if all.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", all.join(" AND "))
        }
    };
    let count_sql = format!("SELECT COUNT(*) FROM snapshot_schedules{}", filtered(None));
    let page_sql = format!(
        "SELECT {COLUMNS} FROM snapshot_schedules{} ORDER BY created_at, id LIMIT ?",
        filtered(Some("(created_at > ? OR (created_at = ? AND id > ?))"))
    );
    let (cursor_at, cursor_id) = match after {
        Some(p) => (fmt_ts(p.at), p.id.clone()),
        None => (String::new(), String::new()),
    };
    let mut tx = pool.begin().await.map_err(step("starting a read"))?;
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
        .bind(&cursor_at)
        .bind(&cursor_id)
        .bind(limit + 1)
        .fetch_all(&mut *tx)
        .await
        .map_err(step("listing schedules"))?;
    tx.commit().await.map_err(step("ending a read"))?;
    let mut items = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
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
    decode_each(sqlx::query(&sql), pool, "loading enabled schedules").await
}

/// The query of [`watched_intervals`] (its own item so a test can check SQLite's plan for it).
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
    let rows = sqlx::query(WATCHED_SQL)
        .bind(fmt_ts(now))
        .fetch_all(pool)
        .await
        .map_err(step("reading the cameras to watch for silence"))?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get::<String, _>("camera_id")
                    .map_err(step("reading the cameras to watch for silence"))?,
                r.try_get::<i64, _>("shortest")
                    .map_err(step("reading the cameras to watch for silence"))?,
            ))
        })
        .collect()
}

/// Decode rows as they stream in. `fetch_all` would hold every row as sqlx keeps it (about
/// 1.5 kB each) until the last arrived: 150 MB more resident for 100,000 schedules, measured
/// as the bench's peak RSS. Streaming holds only the decoded schedules.
async fn decode_each<'q>(
    query: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    pool: &Pool,
    what: &'static str,
) -> Result<Vec<Schedule>, DbError> {
    use futures_util::TryStreamExt;
    let mut rows = query.fetch(pool);
    let mut out = Vec::new();
    while let Some(row) = rows.try_next().await.map_err(step(what))? {
        out.push(from_row(&row)?);
    }
    Ok(out)
}

/// Every schedule (enabled or not) whose row changed at or after `since`: the scheduler's
/// incremental re-read, which sees edits made by other processes without reloading them all.
pub async fn list_changed_since(
    pool: &Pool,
    since: DateTime<Utc>,
) -> Result<Vec<Schedule>, DbError> {
    let sql = format!("SELECT {COLUMNS} FROM snapshot_schedules WHERE updated_at >= ?");
    let query = sqlx::query(&sql).bind(fmt_ts(since));
    decode_each(query, pool, "loading changed schedules").await
}

pub async fn delete(pool: &Pool, id: &str) -> Result<bool, DbError> {
    let r = sqlx::query("DELETE FROM snapshot_schedules WHERE id = ?")
        .bind(id)
        .execute(pool)
        .await
        .map_err(step("deleting a schedule"))?;
    Ok(r.rows_affected() > 0)
}

/// Claim a slot (binds: next, id, slot): move the schedule's `next_due_at` from the slot to the
/// next one. One row changed only for the caller whose view of the slot was current: a second
/// process, or a stale copy after a restart, changes none and does not capture. Run by the
/// writer (`db::writer`), which owns every hot-path write.
pub(crate) const CLAIM_SQL: &str = "UPDATE snapshot_schedules SET next_due_at = ?1 \
     WHERE id = ?2 AND enabled = 1 AND next_due_at = ?3";

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
    let mut tx = pool.begin().await.map_err(step("starting a transaction"))?;
    for s in all {
        sqlx::query(&format!(
            "INSERT INTO snapshot_schedules ({COLUMNS}) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
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
}

/// `(id, retention_hours)` of every schedule with its own retention.
pub async fn retention_overrides(pool: &Pool) -> Result<Vec<(String, i64)>, DbError> {
    sqlx::query_as(
        "SELECT id, retention_hours FROM snapshot_schedules WHERE retention_hours IS NOT NULL",
    )
    .fetch_all(pool)
    .await
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
        let url = format!("sqlite://{}", dir.path().join("heldar.db").display());
        let pool = crate::db::connect(&url).await.unwrap();
        let now = Utc.with_ymd_and_hms(2026, 11, 29, 22, 0, 0).unwrap();
        let ts = |secs: i64| fmt_ts(now + chrono::Duration::seconds(secs));
        for cam in ["a", "b", "c", "d", "e"] {
            sqlx::query(
                "INSERT INTO cameras (id, name, vendor, created_at, updated_at) \
                 VALUES (?1, ?1, 'generic', ?2, ?2)",
            )
            .bind(cam)
            .bind(ts(0))
            .execute(&pool)
            .await
            .unwrap();
        }
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
            .execute(&pool)
            .await
            .unwrap();
        }
        let mut got = watched_intervals(&pool, now).await.unwrap();
        got.sort();
        assert_eq!(got, vec![("a".to_string(), 5), ("b".to_string(), 60)]);

        let plan: Vec<String> = sqlx::query(&format!("EXPLAIN QUERY PLAN {WATCHED_SQL}"))
            .bind(ts(0))
            .fetch_all(&pool)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<String, _>("detail"))
            .collect();
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
