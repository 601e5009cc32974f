//! Queries on `snapshots`: recording a stored frame (with its schedule's `last_fired_at`, in one
//! transaction), browsing, and what retention and reconciliation need.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{parse_ts, step, DbError, Pool};
use crate::models::{fmt_ts, CameraId, Page, Position, Snapshot};

macro_rules! columns {
    () => {
        "id, camera_id, schedule_id, path, taken_at, size_bytes, width, height, created_at, tag"
    };
}
const COLUMNS: &str = columns!();

/// A frame's row; binds in [`COLUMNS`] order. Rows are written by the writer only
/// (`db::writer`), which holds the one binder of this row type.
pub(crate) const INSERT_SQL: &str = concat!(
    "INSERT INTO snapshots (",
    columns!(),
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
);

/// A scheduled frame also moves its schedule's `last_fired_at` (binds: taken_at, schedule id).
pub(crate) const SET_LAST_FIRED_SQL: &str =
    "UPDATE snapshot_schedules SET last_fired_at = ?1 WHERE id = ?2";

fn from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Snapshot, DbError> {
    let camera: String = row.get("camera_id");
    Ok(Snapshot {
        id: row.get("id"),
        camera_id: CameraId::parse(&camera)
            .map_err(|_| DbError::Corrupt(format!("snapshots.camera_id = {camera:?}")))?,
        schedule_id: row.get("schedule_id"),
        path: row.get("path"),
        taken_at: parse_ts(row.get("taken_at"))?,
        size_bytes: row.get("size_bytes"),
        width: row.get("width"),
        height: row.get("height"),
        created_at: parse_ts(row.get("created_at"))?,
        tag: row.get("tag"),
    })
}

/// A camera's frames in `[from, to]`, newest first.
pub async fn list(
    pool: &Pool,
    camera: &CameraId,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    limit: i64,
) -> Result<Vec<Snapshot>, DbError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM snapshots WHERE camera_id = ? AND taken_at >= ? AND taken_at <= ? \
         ORDER BY taken_at DESC, id DESC LIMIT ?"
    ))
    .bind(camera.as_str())
    .bind(from.map(fmt_ts).unwrap_or_default())
    .bind(to.map(fmt_ts).unwrap_or_else(|| "9999".into()))
    .bind(limit)
    .fetch_all(pool)
    .await
    .map_err(step("listing snapshots"))?;
    rows.iter().map(from_row).collect()
}

/// One page of a camera's frames in `[from, to]`, newest first: at most `limit` frames taken
/// before `after` (or, at the same millisecond, with a smaller id), the number of frames in
/// `[from, to]` in all, and the position after the last frame when more remain.
///
/// Both reads run in one read transaction (one WAL snapshot), so the total and the page agree
/// although the writer keeps adding frames. The cursor bound is folded into the upper bound of
/// the `(camera_id, taken_at)` index range, so a deep page starts at its position in the index
/// instead of skipping the newer rows one by one.
///
/// With `tag`, only the frames carrying that tag (total included).
#[allow(clippy::too_many_arguments)]
pub async fn page(
    pool: &Pool,
    camera: &CameraId,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    tag: Option<&str>,
    after: Option<&Position>,
    limit: i64,
) -> Result<Page<Snapshot>, DbError> {
    let lower = from.map(fmt_ts).unwrap_or_default();
    let upper = to.map(fmt_ts).unwrap_or_else(|| "9999".into());
    let (cursor_at, cursor_id) = match after {
        Some(p) => (fmt_ts(p.at), p.id.clone()),
        None => ("9999".into(), String::new()),
    };
    let first = upper.clone().min(cursor_at.clone());
    // The tag's condition only when filtering: `(? IS NULL OR tag = ?)` would make every
    // untagged count read the table instead of the covering `(camera_id, taken_at)` index. With
    // a tag, the partial index `(camera_id, tag, taken_at)` serves both reads.
    let tagged = if tag.is_some() { " AND tag = ?7" } else { "" };
    let mut tx = pool.begin().await.map_err(step("starting a read"))?;
    let count_sql = format!(
        "SELECT COUNT(*) FROM snapshots WHERE camera_id = ?1 AND taken_at >= ?2 \
         AND taken_at <= ?3{}",
        tagged.replace("?7", "?4")
    );
    let mut count = sqlx::query_scalar::<_, i64>(&count_sql)
        .bind(camera.as_str())
        .bind(&lower)
        .bind(&upper);
    if let Some(t) = tag {
        count = count.bind(t);
    }
    let total: i64 = count
        .fetch_one(&mut *tx)
        .await
        .map_err(step("counting snapshots"))?;
    let rows_sql = format!(
        "SELECT {COLUMNS} FROM snapshots WHERE camera_id = ?1 AND taken_at >= ?2 \
         AND taken_at <= ?3 AND (taken_at < ?4 OR id < ?5){tagged} \
         ORDER BY taken_at DESC, id DESC LIMIT ?6"
    );
    let mut rows = sqlx::query(&rows_sql)
        .bind(camera.as_str())
        .bind(&lower)
        .bind(&first)
        .bind(&cursor_at)
        .bind(&cursor_id)
        .bind(limit + 1);
    if let Some(t) = tag {
        rows = rows.bind(t);
    }
    let rows = rows
        .fetch_all(&mut *tx)
        .await
        .map_err(step("listing snapshots"))?;
    tx.commit().await.map_err(step("ending a read"))?;
    let mut items = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
    let more = items.len() as i64 > limit;
    items.truncate(limit as usize);
    let next = more.then(|| items.last()).flatten().map(|s| Position {
        at: s.taken_at,
        id: s.id.clone(),
    });
    Ok(Page { items, total, next })
}

pub async fn latest(pool: &Pool, camera: &CameraId) -> Result<Option<Snapshot>, DbError> {
    Ok(list(pool, camera, None, None, 1).await?.into_iter().next())
}

/// The newest frame `schedule` stored.
pub async fn newest_of_schedule(pool: &Pool, schedule: &str) -> Result<Option<Snapshot>, DbError> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM snapshots WHERE schedule_id = ? ORDER BY taken_at DESC, id DESC \
         LIMIT 1"
    ))
    .bind(schedule)
    .fetch_optional(pool)
    .await
    .map_err(step("finding a schedule's newest frame"))?;
    row.as_ref().map(from_row).transpose()
}

pub async fn by_path(pool: &Pool, path: &str) -> Result<Option<Snapshot>, DbError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM snapshots WHERE path = ?"))
        .bind(path)
        .fetch_optional(pool)
        .await
        .map_err(step("finding a snapshot"))?;
    row.as_ref().map(from_row).transpose()
}

/// The oldest frames, optionally only those taken before `before`, skipping the first `skip`
/// (rows retention could not delete in this sweep stay at the front).
pub async fn oldest(
    pool: &Pool,
    before: Option<DateTime<Utc>>,
    skip: i64,
    limit: i64,
) -> Result<Vec<Snapshot>, DbError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM snapshots WHERE taken_at < ? ORDER BY taken_at, id LIMIT ? OFFSET ?"
    ))
    .bind(before.map(fmt_ts).unwrap_or_else(|| "9999".into()))
    .bind(limit)
    .bind(skip)
    .fetch_all(pool)
    .await
    .map_err(step("finding the oldest snapshots"))?;
    rows.iter().map(from_row).collect()
}

/// [`oldest`] taken before `before`, only of frames that follow the global age limit: kept
/// through the API (no schedule) or by a schedule without its own `retention_hours`.
pub async fn oldest_by_global_age(
    pool: &Pool,
    before: DateTime<Utc>,
    skip: i64,
    limit: i64,
) -> Result<Vec<Snapshot>, DbError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM snapshots WHERE taken_at < ? AND (schedule_id IS NULL OR \
         schedule_id NOT IN (SELECT id FROM snapshot_schedules WHERE retention_hours IS NOT NULL)) \
         ORDER BY taken_at, id LIMIT ? OFFSET ?"
    ))
    .bind(fmt_ts(before))
    .bind(limit)
    .bind(skip)
    .fetch_all(pool)
    .await
    .map_err(step("finding the oldest snapshots"))?;
    rows.iter().map(from_row).collect()
}

/// The oldest frames of one schedule taken before `before` (its own retention).
pub async fn oldest_of_schedule(
    pool: &Pool,
    schedule: &str,
    before: DateTime<Utc>,
    skip: i64,
    limit: i64,
) -> Result<Vec<Snapshot>, DbError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM snapshots WHERE schedule_id = ? AND taken_at < ? \
         ORDER BY taken_at, id LIMIT ? OFFSET ?"
    ))
    .bind(schedule)
    .bind(fmt_ts(before))
    .bind(limit)
    .bind(skip)
    .fetch_all(pool)
    .await
    .map_err(step("finding a schedule's oldest snapshots"))?;
    rows.iter().map(from_row).collect()
}

/// The oldest frames of one camera (its own size cap).
pub async fn oldest_of_camera(
    pool: &Pool,
    camera: &CameraId,
    skip: i64,
    limit: i64,
) -> Result<Vec<Snapshot>, DbError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM snapshots WHERE camera_id = ? ORDER BY taken_at, id \
         LIMIT ? OFFSET ?"
    ))
    .bind(camera.as_str())
    .bind(limit)
    .bind(skip)
    .fetch_all(pool)
    .await
    .map_err(step("finding a camera's oldest snapshots"))?;
    rows.iter().map(from_row).collect()
}

/// Total bytes of one camera's stored frames, by their rows.
pub async fn camera_bytes(pool: &Pool, camera: &CameraId) -> Result<i64, DbError> {
    let v: Option<i64> =
        sqlx::query_scalar("SELECT SUM(size_bytes) FROM snapshots WHERE camera_id = ?")
            .bind(camera.as_str())
            .fetch_one(pool)
            .await
            .map_err(step("summing a camera's snapshot sizes"))?;
    Ok(v.unwrap_or(0))
}

pub async fn delete(pool: &Pool, id: &str) -> Result<(), DbError> {
    sqlx::query("DELETE FROM snapshots WHERE id = ?")
        .bind(id)
        .execute(pool)
        .await
        .map_err(step("deleting a snapshot row"))?;
    Ok(())
}

/// Total bytes of all stored frames, by their rows.
pub async fn total_bytes(pool: &Pool) -> Result<i64, DbError> {
    let v: Option<i64> = sqlx::query_scalar("SELECT SUM(size_bytes) FROM snapshots")
        .fetch_one(pool)
        .await
        .map_err(step("summing snapshot sizes"))?;
    Ok(v.unwrap_or(0))
}

/// `(id, path)` of one camera's rows taken in `[from, to)` (reconciliation, one camera at a
/// time; `None` is unbounded).
pub async fn camera_paths(
    pool: &Pool,
    camera: &CameraId,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<Vec<(String, String)>, DbError> {
    sqlx::query_as(
        "SELECT id, path FROM snapshots WHERE camera_id = ? AND taken_at >= ? AND taken_at < ?",
    )
    .bind(camera.as_str())
    .bind(from.map(fmt_ts).unwrap_or_default())
    .bind(to.map(fmt_ts).unwrap_or_else(|| "9999".into()))
    .fetch_all(pool)
    .await
    .map_err(step("listing a camera's snapshot paths"))
}

/// Every stored path (tests).
pub async fn all_paths(pool: &Pool) -> Result<Vec<(String, String)>, DbError> {
    sqlx::query_as("SELECT id, path FROM snapshots")
        .fetch_all(pool)
        .await
        .map_err(step("listing snapshot paths"))
}

/// `(taken_at, size_bytes)` of every frame of one schedule (benchmark counting).
pub async fn times_for_schedule(
    pool: &Pool,
    schedule: &str,
) -> Result<Vec<(DateTime<Utc>, i64)>, DbError> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT taken_at, size_bytes FROM snapshots WHERE schedule_id = ?")
            .bind(schedule)
            .fetch_all(pool)
            .await
            .map_err(step("reading a schedule's frames"))?;
    rows.into_iter()
        .map(|(t, s)| Ok((parse_ts(&t)?, s)))
        .collect()
}

/// Stored frames of one camera: how many, how many bytes, and the newest one's time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraFrames {
    pub camera_id: String,
    pub frames: i64,
    pub bytes: i64,
    pub newest_at: Option<DateTime<Utc>>,
}

/// [`CameraFrames`] of every camera that has stored frames (the system page).
pub async fn per_camera(pool: &Pool) -> Result<Vec<CameraFrames>, DbError> {
    let rows = sqlx::query(
        "SELECT camera_id, COUNT(*) AS frames, COALESCE(SUM(size_bytes), 0) AS bytes, \
         MAX(taken_at) AS newest FROM snapshots GROUP BY camera_id",
    )
    .fetch_all(pool)
    .await
    .map_err(step("counting snapshots per camera"))?;
    rows.iter()
        .map(|r| {
            Ok(CameraFrames {
                camera_id: r.get("camera_id"),
                frames: r.get("frames"),
                bytes: r.get("bytes"),
                newest_at: super::parse_opt_ts(r.get("newest"))?,
            })
        })
        .collect()
}
