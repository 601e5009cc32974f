//! Queries on `jobs` and `timelapses`: queuing an export, the worker's claim of the oldest
//! queued job, its outcome (a finished job and its video are written in one transaction, only if
//! the job is still running — a cancel that won the race leaves no video row), and what
//! retention and start-up recovery need.
//!
//! Every change of a job's state is a conditional update on the state it is expected to be in,
//! so a cancel and the worker's own outcome can never both win. Every query runs on both
//! back-ends (`with_pool!`); only `claim_next` has one text per engine (its comment says why).

use chrono::{DateTime, Utc};

use super::{parse_opt_ts, parse_ts, step, with_pool, Cols, DbError, Pool};
use crate::models::timelapse::{
    Job, JobId, JobState, Timelapse, TimelapseId, TimelapseSpec, VideoFormat,
};
use crate::models::{fmt_ts, CameraId};

const JOB_COLUMNS: &str = "id, camera_id, state, from_at, to_at, fps, width, every_nth, format, \
     rule_id, frames_done, frames_total, output_bytes, error, code, timelapse_id, created_at, \
     started_at, finished_at";

const TL_COLUMNS: &str =
    "id, camera_id, rule_id, file, from_at, to_at, fps, width, height, frames, format, size_bytes, created_at";

/// The advisory-lock key `insert_bounded` takes on PostgreSQL ("hldrjobq" in ASCII), so two
/// nodes counting the queue at once count one after the other.
const QUEUE_LOCK_KEY: i64 = 0x686c_6472_6a6f_6271;

fn corrupt(what: &str, v: &str) -> DbError {
    DbError::Corrupt(format!("{what} = {v:?}"))
}

fn job_from_row(row: &impl Cols) -> Result<Job, DbError> {
    let id = row.text("id")?;
    let camera = row.text("camera_id")?;
    let state = row.text("state")?;
    let format = row.text("format")?;
    let width = row.opt_int("width")?;
    Ok(Job {
        id: JobId::parse(&id).map_err(|_| corrupt("jobs.id", &id))?,
        camera_id: CameraId::parse(&camera).map_err(|_| corrupt("jobs.camera_id", &camera))?,
        state: JobState::from_db(&state).ok_or_else(|| corrupt("jobs.state", &state))?,
        spec: TimelapseSpec {
            from: parse_ts(&row.text("from_at")?)?,
            to: parse_ts(&row.text("to_at")?)?,
            fps: row.int("fps")?.clamp(1, 60) as u32,
            width: width.map(|w| w.clamp(0, i64::from(u32::MAX)) as u32),
            every_nth: row.int("every_nth")?.clamp(1, i64::from(u32::MAX)) as u32,
            format: VideoFormat::from_db(&format).ok_or_else(|| corrupt("jobs.format", &format))?,
        },
        rule_id: row.opt_text("rule_id")?,
        frames_done: row.int("frames_done")?,
        frames_total: row.int("frames_total")?,
        output_bytes: row.int("output_bytes")?,
        error: row.opt_text("error")?,
        code: row.opt_text("code")?,
        timelapse_id: row.opt_text("timelapse_id")?,
        created_at: parse_ts(&row.text("created_at")?)?,
        started_at: parse_opt_ts(row.opt_text("started_at")?)?,
        finished_at: parse_opt_ts(row.opt_text("finished_at")?)?,
    })
}

fn tl_from_row(row: &impl Cols) -> Result<Timelapse, DbError> {
    let id = row.text("id")?;
    let camera = row.text("camera_id")?;
    let format = row.text("format")?;
    let num =
        |c: &str| -> Result<u32, DbError> { Ok(row.int(c)?.clamp(0, i64::from(u32::MAX)) as u32) };
    Ok(Timelapse {
        id: TimelapseId::parse(&id).map_err(|_| corrupt("timelapses.id", &id))?,
        camera_id: CameraId::parse(&camera)
            .map_err(|_| corrupt("timelapses.camera_id", &camera))?,
        rule_id: row.opt_text("rule_id")?,
        file: row.text("file")?,
        from: parse_ts(&row.text("from_at")?)?,
        to: parse_ts(&row.text("to_at")?)?,
        fps: num("fps")?,
        width: num("width")?,
        height: num("height")?,
        frames: row.int("frames")?,
        format: VideoFormat::from_db(&format)
            .ok_or_else(|| corrupt("timelapses.format", &format))?,
        size_bytes: row.int("size_bytes")?,
        created_at: parse_ts(&row.text("created_at")?)?,
    })
}

/// Bind a job's fields in [`JOB_COLUMNS`] order (`$1`–`$19`). A macro, so one text binds a
/// query of either back-end (as `db::cameras`' `bind_spec!`).
macro_rules! bind_job {
    ($q:expr, $job:expr) => {{
        use $crate::models::fmt_ts;
        let j: &$crate::models::timelapse::Job = $job;
        $q.bind(j.id.as_str())
            .bind(j.camera_id.as_str())
            .bind(j.state.as_str())
            .bind(fmt_ts(j.spec.from))
            .bind(fmt_ts(j.spec.to))
            .bind(i64::from(j.spec.fps))
            .bind(j.spec.width.map(i64::from))
            .bind(i64::from(j.spec.every_nth))
            .bind(j.spec.format.as_str())
            .bind(j.rule_id.as_deref())
            .bind(j.frames_done)
            .bind(j.frames_total)
            .bind(j.output_bytes)
            .bind(j.error.as_deref())
            .bind(j.code.as_deref())
            .bind(j.timelapse_id.as_deref())
            .bind(fmt_ts(j.created_at))
            .bind(j.started_at.map(fmt_ts))
            .bind(j.finished_at.map(fmt_ts))
    }};
}

/// Queue `$job` inside the caller's transaction `$tx` (a connection of either back-end): a
/// rule's claim and its job commit together (`db::timelapse_rules::claim`).
macro_rules! insert_in {
    ($tx:expr, $job:expr) => {{
        let job: &$crate::models::timelapse::Job = $job;
        let sql = $crate::db::jobs::insert_job_sql();
        $crate::db::jobs::bind_job!(sqlx::query(&sql), job)
            .execute(&mut *$tx)
            .await
            .map(|_| ())
            .map_err($crate::db::jobs::no_camera(&job.camera_id))
    }};
}
pub(crate) use {bind_job, insert_in};

pub(crate) fn insert_job_sql() -> String {
    format!(
        "INSERT INTO jobs ({JOB_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
         $12, $13, $14, $15, $16, $17, $18, $19)"
    )
}

pub(crate) fn no_camera(camera: &CameraId) -> impl FnOnce(sqlx::Error) -> DbError + '_ {
    move |e| match e {
        sqlx::Error::Database(ref d) if d.is_foreign_key_violation() => {
            DbError::NoParent(format!("no camera with id {:?}", camera.as_str()))
        }
        other => step("queuing a job")(other),
    }
}

/// Queue a job (its row as given, normally `queued`). Its camera gone is a
/// [`DbError::NoParent`].
pub async fn insert(pool: &Pool, job: &Job) -> Result<(), DbError> {
    with_pool!(pool, p => {
        let mut conn = p.acquire().await.map_err(step("queuing a job"))?;
        insert_in!(conn, job)
    })
}

/// Queue a job, but only if fewer than `max_queued` jobs are waiting; `false` if the queue is
/// full. The count and the insert are one statement; on SQLite that alone serialises two
/// requests (one writer at a time), on PostgreSQL the statement runs in a transaction holding
/// an advisory lock first, since under READ COMMITTED two nodes could otherwise both count
/// `max_queued - 1` and both insert.
pub async fn insert_bounded(pool: &Pool, job: &Job, max_queued: i64) -> Result<bool, DbError> {
    let sql = format!(
        "INSERT INTO jobs ({JOB_COLUMNS}) SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
         $12, $13, $14, $15, $16, $17, $18, $19 \
         WHERE (SELECT COUNT(*) FROM jobs WHERE state = 'queued') < $20"
    );
    let n = with_pool!(pool, p => {
        let mut tx = p.begin().await.map_err(step("queuing a job"))?;
        if pool.backend() == super::Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(QUEUE_LOCK_KEY)
                .execute(&mut *tx)
                .await
                .map_err(step("queuing a job"))?;
        }
        let r = bind_job!(sqlx::query(&sql), job)
            .bind(max_queued)
            .execute(&mut *tx)
            .await
            .map_err(no_camera(&job.camera_id))?;
        tx.commit().await.map_err(step("queuing a job"))?;
        r.rows_affected()
    });
    Ok(n > 0)
}

pub async fn get(pool: &Pool, id: &str) -> Result<Option<Job>, DbError> {
    let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1");
    with_pool!(pool, p => {
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(p)
            .await
            .map_err(step("reading a job"))?;
        row.as_ref().map(job_from_row).transpose()
    })
}

/// Jobs newest first, optionally of one camera and in one state.
pub async fn list(
    pool: &Pool,
    camera: Option<&CameraId>,
    state: Option<JobState>,
    limit: i64,
) -> Result<Vec<Job>, DbError> {
    let sql = format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE ($1 IS NULL OR camera_id = $1) \
         AND ($2 IS NULL OR state = $2) ORDER BY created_at DESC, id DESC LIMIT $3"
    );
    with_pool!(pool, p => {
        sqlx::query(&sql)
            .bind(camera.map(CameraId::as_str))
            .bind(state.map(JobState::as_str))
            .bind(limit)
            .fetch_all(p)
            .await
            .map_err(step("listing jobs"))?
            .iter()
            .map(job_from_row)
            .collect()
    })
}

/// Claim the oldest queued job for this worker: `queued → running`, so a job runs once however
/// many workers (and nodes) look.
///
/// On PostgreSQL it is one statement: `UPDATE … WHERE id = (SELECT … FOR UPDATE SKIP LOCKED)
/// RETURNING …`. The row lock taken by the sub-select makes a second node's claim skip that
/// job and take the next queued one instead of waiting for the first to commit (and then
/// finding nothing), so N workers claim N different jobs at once; the outer `state = 'queued'`
/// keeps a cancel that committed first winning. On SQLite (one writer at a time, and no row
/// locks) it is a read and a conditional update, looked at again if the update lost.
pub async fn claim_next(
    pool: &Pool,
    now: DateTime<Utc>,
    node: &str,
) -> Result<Option<Job>, DbError> {
    match pool {
        Pool::Postgres(p) => {
            let row = sqlx::query(&format!(
                "UPDATE jobs SET state = 'running', started_at = $1, node_id = $2 \
                 WHERE state = 'queued' \
                 AND id = (SELECT id FROM jobs WHERE state = 'queued' \
                 ORDER BY created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) \
                 RETURNING {JOB_COLUMNS}"
            ))
            .bind(fmt_ts(now))
            .bind(node)
            .fetch_optional(p)
            .await
            .map_err(step("claiming a job"))?;
            row.as_ref().map(job_from_row).transpose()
        }
        Pool::Sqlite(p) => loop {
            let row = sqlx::query(&format!(
                "SELECT {JOB_COLUMNS} FROM jobs WHERE state = 'queued' \
                 ORDER BY created_at, id LIMIT 1"
            ))
            .fetch_optional(p)
            .await
            .map_err(step("finding a queued job"))?;
            let Some(row) = row else { return Ok(None) };
            let mut job = job_from_row(&row)?;
            let r = sqlx::query(
                "UPDATE jobs SET state = 'running', started_at = $1, node_id = $3 \
                 WHERE id = $2 AND state = 'queued'",
            )
            .bind(fmt_ts(now))
            .bind(job.id.as_str())
            .bind(node)
            .execute(p)
            .await
            .map_err(step("claiming a job"))?;
            if r.rows_affected() == 1 {
                job.state = JobState::Running;
                job.started_at = Some(now);
                return Ok(Some(job));
            }
            // Cancelled (or claimed elsewhere) in between: look again.
        },
    }
}

/// Set the frame count a running job will encode (known once its frames are read).
pub async fn set_total(pool: &Pool, id: &JobId, total: i64) -> Result<(), DbError> {
    with_pool!(pool, p => {
        sqlx::query("UPDATE jobs SET frames_total = $1 WHERE id = $2 AND state = 'running'")
            .bind(total)
            .bind(id.as_str())
            .execute(p)
            .await
            .map(|_| ())
    })
    .map_err(step("recording a job's frame count"))
}

/// How a job ended, for [`finish`].
#[derive(Debug, Clone)]
pub struct Outcome {
    pub state: JobState,
    pub frames_done: i64,
    pub output_bytes: i64,
    pub error: Option<String>,
    pub code: Option<String>,
    pub at: DateTime<Utc>,
}

/// The conditional update ending a job in one of `from` states (the states are Heldar's own
/// words, written into the text; everything else is bound).
fn finish_sql(from: &[JobState]) -> String {
    let states: Vec<String> = from.iter().map(|s| format!("'{}'", s.as_str())).collect();
    format!(
        "UPDATE jobs SET state = $1, frames_done = $2, output_bytes = $3, error = $4, code = $5, \
         finished_at = $6, timelapse_id = $7 WHERE id = $8 AND state IN ({})",
        states.join(", ")
    )
}

/// Run [`finish_sql`] on `$tx` (a connection of either back-end): whether the job moved.
macro_rules! finish_in {
    ($tx:expr, $sql:expr, $id:expr, $o:expr, $timelapse:expr) => {{
        let o: &Outcome = $o;
        sqlx::query($sql)
            .bind(o.state.as_str())
            .bind(o.frames_done)
            .bind(o.output_bytes)
            .bind(o.error.as_deref())
            .bind(o.code.as_deref())
            .bind(fmt_ts(o.at))
            .bind($timelapse)
            .bind($id.as_str())
            .execute(&mut *$tx)
            .await
            .map(|r| r.rows_affected() == 1)
            .map_err(step("ending a job"))
    }};
}

/// End a job that is in one of `from` states; `false` if it was not (a cancel or another
/// outcome came first).
pub async fn finish(
    pool: &Pool,
    id: &JobId,
    from: &[JobState],
    outcome: &Outcome,
) -> Result<bool, DbError> {
    let sql = finish_sql(from);
    with_pool!(pool, p => {
        let mut conn = p.acquire().await.map_err(step("ending a job"))?;
        finish_in!(conn, &sql, id, outcome, None::<&str>)
    })
}

/// A running job's video is in place: record it and mark the job done, in one transaction, only
/// if the job is still running. `false` (nothing written) if a cancel, or the camera's deletion,
/// came first: the caller removes the file.
pub async fn complete(
    pool: &Pool,
    id: &JobId,
    video: &Timelapse,
    outcome: &Outcome,
) -> Result<bool, DbError> {
    let insert = format!(
        "INSERT INTO timelapses ({TL_COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
    );
    let finish = finish_sql(&[JobState::Running]);
    with_pool!(pool, p => {
        let mut tx = p.begin().await.map_err(step("recording a video"))?;
        let inserted = sqlx::query(&insert)
            .bind(video.id.as_str())
            .bind(video.camera_id.as_str())
            .bind(video.rule_id.as_deref())
            .bind(&video.file)
            .bind(fmt_ts(video.from))
            .bind(fmt_ts(video.to))
            .bind(i64::from(video.fps))
            .bind(i64::from(video.width))
            .bind(i64::from(video.height))
            .bind(video.frames)
            .bind(video.format.as_str())
            .bind(video.size_bytes)
            .bind(fmt_ts(video.created_at))
            .execute(&mut *tx)
            .await;
        match inserted {
            Ok(_) => {}
            // The camera (or the rule) went meanwhile; the transaction rolls back on drop.
            Err(sqlx::Error::Database(d)) if d.is_foreign_key_violation() => return Ok(false),
            Err(e) => return Err(step("recording a video")(e)),
        }
        if !finish_in!(tx, &finish, id, outcome, Some(video.id.as_str()))? {
            return Ok(false); // rolled back on drop
        }
        tx.commit().await.map_err(step("recording a video"))?;
        Ok(true)
    })
}

/// Jobs left `running` by a run of Heldar that is gone (start-up recovery).
pub async fn running(pool: &Pool) -> Result<Vec<Job>, DbError> {
    let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE state = 'running' ORDER BY created_at");
    with_pool!(pool, p => {
        sqlx::query(&sql)
            .fetch_all(p)
            .await
            .map_err(step("finding interrupted jobs"))?
            .iter()
            .map(job_from_row)
            .collect()
    })
}

/// Running jobs no live process is running, as far as the database knows: those claimed by
/// node `me` (a past run of this node; the caller skips the ones it runs now), by a node whose
/// last heartbeat is before `live_since` or that is gone, or before jobs recorded their node.
/// A job another live node runs is never among them.
pub async fn orphaned(
    pool: &Pool,
    me: &str,
    live_since: DateTime<Utc>,
) -> Result<Vec<Job>, DbError> {
    let sql = format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE state = 'running' AND (node_id IS NULL \
         OR node_id = $1 \
         OR NOT EXISTS (SELECT 1 FROM nodes n WHERE n.id = jobs.node_id AND n.heartbeat_at >= $2)) \
         ORDER BY created_at"
    );
    with_pool!(pool, p => {
        sqlx::query(&sql)
            .bind(me)
            .bind(fmt_ts(live_since))
            .fetch_all(p)
            .await
            .map_err(step("finding interrupted jobs"))?
            .iter()
            .map(job_from_row)
            .collect()
    })
}

/// Remove finished jobs that ended before `before` (retention); returns how many.
pub async fn prune_finished(pool: &Pool, before: DateTime<Utc>) -> Result<u64, DbError> {
    with_pool!(pool, p => {
        sqlx::query(
            "DELETE FROM jobs WHERE state IN ('done', 'failed', 'cancelled') AND finished_at < $1",
        )
        .bind(fmt_ts(before))
        .execute(p)
        .await
        .map(|r| r.rows_affected())
    })
    .map_err(step("pruning finished jobs"))
}

// --- videos ----------------------------------------------------------------------------------

pub async fn video(pool: &Pool, id: &str) -> Result<Option<Timelapse>, DbError> {
    let sql = format!("SELECT {TL_COLUMNS} FROM timelapses WHERE id = $1");
    with_pool!(pool, p => {
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(p)
            .await
            .map_err(step("reading a timelapse"))?;
        row.as_ref().map(tl_from_row).transpose()
    })
}

pub async fn video_by_file(pool: &Pool, file: &str) -> Result<Option<Timelapse>, DbError> {
    let sql = format!("SELECT {TL_COLUMNS} FROM timelapses WHERE file = $1");
    with_pool!(pool, p => {
        let row = sqlx::query(&sql)
            .bind(file)
            .fetch_optional(p)
            .await
            .map_err(step("finding a timelapse"))?;
        row.as_ref().map(tl_from_row).transpose()
    })
}

/// A camera's videos, newest first.
pub async fn videos(pool: &Pool, camera: &CameraId, limit: i64) -> Result<Vec<Timelapse>, DbError> {
    let sql = format!(
        "SELECT {TL_COLUMNS} FROM timelapses WHERE camera_id = $1 \
         ORDER BY created_at DESC, id DESC LIMIT $2"
    );
    with_pool!(pool, p => {
        sqlx::query(&sql)
            .bind(camera.as_str())
            .bind(limit)
            .fetch_all(p)
            .await
            .map_err(step("listing timelapses"))?
            .iter()
            .map(tl_from_row)
            .collect()
    })
}

/// The oldest videos (by when they were made), optionally only those made before `before`,
/// skipping the first `skip` (retention: the ones it could not delete stay at the front).
pub async fn oldest_videos(
    pool: &Pool,
    before: Option<DateTime<Utc>>,
    skip: i64,
    limit: i64,
) -> Result<Vec<Timelapse>, DbError> {
    let sql = format!(
        "SELECT {TL_COLUMNS} FROM timelapses WHERE created_at < $1 \
         ORDER BY created_at, id LIMIT $2 OFFSET $3"
    );
    let before = before.map(fmt_ts).unwrap_or_else(|| "9999".into());
    with_pool!(pool, p => {
        sqlx::query(&sql)
            .bind(&before)
            .bind(limit)
            .bind(skip)
            .fetch_all(p)
            .await
            .map_err(step("finding the oldest timelapses"))?
            .iter()
            .map(tl_from_row)
            .collect()
    })
}

pub async fn delete_video(pool: &Pool, id: &str) -> Result<bool, DbError> {
    let n = with_pool!(pool, p => {
        sqlx::query("DELETE FROM timelapses WHERE id = $1")
            .bind(id)
            .execute(p)
            .await
            .map(|r| r.rows_affected())
    })
    .map_err(step("deleting a timelapse row"))?;
    Ok(n > 0)
}

/// `(videos, bytes)` of all videos.
pub async fn video_totals(pool: &Pool) -> Result<(i64, i64), DbError> {
    // SUM of a BIGINT is NUMERIC on PostgreSQL: cast back (docs/scale-out.md).
    let (n, b): (i64, Option<i64>) = with_pool!(pool, p => {
        sqlx::query_as("SELECT COUNT(*), CAST(SUM(size_bytes) AS BIGINT) FROM timelapses")
            .fetch_one(p)
            .await
    })
    .map_err(step("summing timelapse sizes"))?;
    Ok((n, b.unwrap_or(0)))
}

/// The frames an export would use: `(path, width, height)` of a camera's frames taken in
/// `[from, to)`, in `taken_at` order.
pub async fn frames_in(
    pool: &Pool,
    camera: &CameraId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(String, Option<i64>, Option<i64>)>, DbError> {
    with_pool!(pool, p => {
        sqlx::query_as(
            "SELECT path, width, height FROM snapshots WHERE camera_id = $1 AND taken_at >= $2 \
             AND taken_at < $3 ORDER BY taken_at, id",
        )
        .bind(camera.as_str())
        .bind(fmt_ts(from))
        .bind(fmt_ts(to))
        .fetch_all(p)
        .await
    })
    .map_err(step("listing a range's frames"))
}

/// How many of a camera's frames were taken in `[from, to)`.
pub async fn count_frames(
    pool: &Pool,
    camera: &CameraId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<i64, DbError> {
    with_pool!(pool, p => {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM snapshots WHERE camera_id = $1 AND taken_at >= $2 \
             AND taken_at < $3",
        )
        .bind(camera.as_str())
        .bind(fmt_ts(from))
        .bind(fmt_ts(to))
        .fetch_one(p)
        .await
    })
    .map_err(step("counting a range's frames"))
}
