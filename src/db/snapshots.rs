//! Queries on `snapshots`: recording a stored frame (with its schedule's `last_fired_at`, in one
//! transaction), browsing, and what retention and reconciliation need. Every query runs on both
//! back-ends (`with_pool!`).

use chrono::{DateTime, Utc};

use super::{parse_opt_ts, parse_ts, step, with_pool, Cols, DbError, Pool};
use crate::models::{fmt_ts, CameraId, Page, Position, Snapshot};

macro_rules! columns {
    () => {
        "id, camera_id, schedule_id, path, taken_at, size_bytes, width, height, created_at, tag"
    };
}
const COLUMNS: &str = columns!();

/// A frame's row; binds in [`COLUMNS`] order. Rows are written by the writer only
/// (`db::writer`), which holds the one binder of this row type.
///
/// A row whose id or path is already there is left as it is, and the frame counts as recorded:
/// the file is indexed either way. That happens when a batch is replayed after a commit whose
/// answer was lost, or when another node's reconciliation indexed the file while its row waited
/// in this node's batch. Failing instead would make the caller delete a file that has a row.
pub(crate) const INSERT_SQL: &str = concat!(
    "INSERT INTO snapshots (",
    columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING"
);

/// A scheduled frame also moves its schedule's `last_fired_at` (binds: taken_at, schedule id).
pub(crate) const SET_LAST_FIRED_SQL: &str =
    "UPDATE snapshot_schedules SET last_fired_at = $1 WHERE id = $2";

fn from_row(row: &impl Cols) -> Result<Snapshot, DbError> {
    let camera = row.text("camera_id")?;
    Ok(Snapshot {
        id: row.text("id")?,
        camera_id: CameraId::parse(&camera)
            .map_err(|_| DbError::Corrupt(format!("snapshots.camera_id = {camera:?}")))?,
        schedule_id: row.opt_text("schedule_id")?,
        path: row.text("path")?,
        taken_at: parse_ts(&row.text("taken_at")?)?,
        size_bytes: row.int("size_bytes")?,
        width: row.opt_int("width")?,
        height: row.opt_int("height")?,
        created_at: parse_ts(&row.text("created_at")?)?,
        tag: row.opt_text("tag")?,
    })
}

/// Fetch the frames `$query` selects (its binds made) on either back-end: the query's text is
/// pasted into each back-end's arm, so it is typed for that back-end.
macro_rules! fetch_frames {
    ($pool:expr, $what:expr, $query:expr) => {
        with_pool!($pool, p => {
            $query
                .fetch_all(p)
                .await
                .map_err(step($what))?
                .iter()
                .map(from_row)
                .collect::<Result<Vec<Snapshot>, DbError>>()
        })
    };
}

/// A camera's frames in `[from, to]`, newest first.
pub async fn list(
    pool: &Pool,
    camera: &CameraId,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    limit: i64,
) -> Result<Vec<Snapshot>, DbError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM snapshots WHERE camera_id = $1 AND taken_at >= $2 \
         AND taken_at <= $3 ORDER BY taken_at DESC, id DESC LIMIT $4"
    );
    fetch_frames!(
        pool,
        "listing snapshots",
        sqlx::query(&sql)
            .bind(camera.as_str())
            .bind(from.map(fmt_ts).unwrap_or_default())
            .bind(to.map(fmt_ts).unwrap_or_else(|| "9999".into()))
            .bind(limit)
    )
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
    let tagged = if tag.is_some() { " AND tag = $7" } else { "" };
    let count_sql = format!(
        "SELECT COUNT(*) FROM snapshots WHERE camera_id = $1 AND taken_at >= $2 \
         AND taken_at <= $3{}",
        tagged.replace("$7", "$4")
    );
    let rows_sql = format!(
        "SELECT {COLUMNS} FROM snapshots WHERE camera_id = $1 AND taken_at >= $2 \
         AND taken_at <= $3 AND (taken_at < $4 OR id < $5){tagged} \
         ORDER BY taken_at DESC, id DESC LIMIT $6"
    );
    let (total, mut items) = with_pool!(pool, p => {
        let mut tx = p.begin().await.map_err(step("starting a read"))?;
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
        (total, rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?)
    });
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
    let sql = format!(
        "SELECT {COLUMNS} FROM snapshots WHERE schedule_id = $1 ORDER BY taken_at DESC, id DESC \
         LIMIT 1"
    );
    Ok(fetch_frames!(
        pool,
        "finding a schedule's newest frame",
        sqlx::query(&sql).bind(schedule)
    )?
    .into_iter()
    .next())
}

pub async fn by_path(pool: &Pool, path: &str) -> Result<Option<Snapshot>, DbError> {
    let sql = format!("SELECT {COLUMNS} FROM snapshots WHERE path = $1");
    Ok(
        fetch_frames!(pool, "finding a snapshot", sqlx::query(&sql).bind(path))?
            .into_iter()
            .next(),
    )
}

/// The oldest frames, optionally only those taken before `before`, skipping the first `skip`
/// (rows retention could not delete in this sweep stay at the front).
pub async fn oldest(
    pool: &Pool,
    before: Option<DateTime<Utc>>,
    skip: i64,
    limit: i64,
) -> Result<Vec<Snapshot>, DbError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM snapshots WHERE taken_at < $1 ORDER BY taken_at, id \
         LIMIT $2 OFFSET $3"
    );
    fetch_frames!(
        pool,
        "finding the oldest snapshots",
        sqlx::query(&sql)
            .bind(before.map(fmt_ts).unwrap_or_else(|| "9999".into()))
            .bind(limit)
            .bind(skip)
    )
}

/// [`oldest`] taken before `before`, only of frames that follow the global age limit: kept
/// through the API (no schedule) or by a schedule without its own `retention_hours`.
pub async fn oldest_by_global_age(
    pool: &Pool,
    before: DateTime<Utc>,
    skip: i64,
    limit: i64,
) -> Result<Vec<Snapshot>, DbError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM snapshots WHERE taken_at < $1 AND (schedule_id IS NULL OR \
         schedule_id NOT IN (SELECT id FROM snapshot_schedules WHERE retention_hours IS NOT NULL)) \
         ORDER BY taken_at, id LIMIT $2 OFFSET $3"
    );
    fetch_frames!(
        pool,
        "finding the oldest snapshots",
        sqlx::query(&sql)
            .bind(fmt_ts(before))
            .bind(limit)
            .bind(skip)
    )
}

/// The oldest frames of one schedule taken before `before` (its own retention).
pub async fn oldest_of_schedule(
    pool: &Pool,
    schedule: &str,
    before: DateTime<Utc>,
    skip: i64,
    limit: i64,
) -> Result<Vec<Snapshot>, DbError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM snapshots WHERE schedule_id = $1 AND taken_at < $2 \
         ORDER BY taken_at, id LIMIT $3 OFFSET $4"
    );
    fetch_frames!(
        pool,
        "finding a schedule's oldest snapshots",
        sqlx::query(&sql)
            .bind(schedule)
            .bind(fmt_ts(before))
            .bind(limit)
            .bind(skip)
    )
}

/// The oldest frames of one camera (its own size cap).
pub async fn oldest_of_camera(
    pool: &Pool,
    camera: &CameraId,
    skip: i64,
    limit: i64,
) -> Result<Vec<Snapshot>, DbError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM snapshots WHERE camera_id = $1 ORDER BY taken_at, id \
         LIMIT $2 OFFSET $3"
    );
    fetch_frames!(
        pool,
        "finding a camera's oldest snapshots",
        sqlx::query(&sql)
            .bind(camera.as_str())
            .bind(limit)
            .bind(skip)
    )
}

/// Total bytes of one camera's stored frames, by their rows.
pub async fn camera_bytes(pool: &Pool, camera: &CameraId) -> Result<i64, DbError> {
    // SUM of a BIGINT is NUMERIC on PostgreSQL: cast back to the integer both read.
    let v: Option<i64> = with_pool!(pool, p => {
        sqlx::query_scalar(
            "SELECT CAST(SUM(size_bytes) AS BIGINT) FROM snapshots WHERE camera_id = $1",
        )
        .bind(camera.as_str())
        .fetch_one(p)
        .await
    })
    .map_err(step("summing a camera's snapshot sizes"))?;
    Ok(v.unwrap_or(0))
}

pub async fn delete(pool: &Pool, id: &str) -> Result<(), DbError> {
    with_pool!(pool, p => {
        sqlx::query("DELETE FROM snapshots WHERE id = $1")
            .bind(id)
            .execute(p)
            .await
            .map(|_| ())
    })
    .map_err(step("deleting a snapshot row"))
}

/// Total bytes of all stored frames, by their rows.
pub async fn total_bytes(pool: &Pool) -> Result<i64, DbError> {
    let v: Option<i64> = with_pool!(pool, p => {
        sqlx::query_scalar("SELECT CAST(SUM(size_bytes) AS BIGINT) FROM snapshots")
            .fetch_one(p)
            .await
    })
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
    with_pool!(pool, p => {
        sqlx::query_as(
            "SELECT id, path FROM snapshots WHERE camera_id = $1 AND taken_at >= $2 \
             AND taken_at < $3",
        )
        .bind(camera.as_str())
        .bind(from.map(fmt_ts).unwrap_or_default())
        .bind(to.map(fmt_ts).unwrap_or_else(|| "9999".into()))
        .fetch_all(p)
        .await
    })
    .map_err(step("listing a camera's snapshot paths"))
}

/// Every stored path (tests).
pub async fn all_paths(pool: &Pool) -> Result<Vec<(String, String)>, DbError> {
    with_pool!(pool, p => sqlx::query_as("SELECT id, path FROM snapshots").fetch_all(p).await)
        .map_err(step("listing snapshot paths"))
}

/// `(taken_at, size_bytes)` of every frame of one schedule (benchmark counting).
pub async fn times_for_schedule(
    pool: &Pool,
    schedule: &str,
) -> Result<Vec<(DateTime<Utc>, i64)>, DbError> {
    let rows: Vec<(String, i64)> = with_pool!(pool, p => {
        sqlx::query_as("SELECT taken_at, size_bytes FROM snapshots WHERE schedule_id = $1")
            .bind(schedule)
            .fetch_all(p)
            .await
    })
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
    fn from_row(r: &impl Cols) -> Result<CameraFrames, DbError> {
        Ok(CameraFrames {
            camera_id: r.text("camera_id")?,
            frames: r.int("frames")?,
            bytes: r.int("bytes")?,
            newest_at: parse_opt_ts(r.opt_text("newest")?)?,
        })
    }
    with_pool!(pool, p => {
        sqlx::query(
            "SELECT camera_id, COUNT(*) AS frames, \
             CAST(COALESCE(SUM(size_bytes), 0) AS BIGINT) AS bytes, \
             MAX(taken_at) AS newest FROM snapshots GROUP BY camera_id",
        )
        .fetch_all(p)
        .await
        .map_err(step("counting snapshots per camera"))?
        .iter()
        .map(from_row)
        .collect()
    })
}
