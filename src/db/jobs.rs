//! Queries on `jobs` and `timelapses`: queuing an export, the worker's claim of the oldest
//! queued job, its outcome (a finished job and its video are written in one transaction, only if
//! the job is still running — a cancel that won the race leaves no video row), and what
//! retention and start-up recovery need.
//!
//! Every change of a job's state is a conditional update on the state it is expected to be in,
//! so a cancel and the worker's own outcome can never both win.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{parse_opt_ts, parse_ts, step, DbError, Pool};
use crate::models::timelapse::{
    Job, JobId, JobState, Timelapse, TimelapseId, TimelapseSpec, VideoFormat,
};
use crate::models::{fmt_ts, CameraId};

const JOB_COLUMNS: &str = "id, camera_id, state, from_at, to_at, fps, width, every_nth, format, \
     rule_id, frames_done, frames_total, output_bytes, error, code, timelapse_id, created_at, \
     started_at, finished_at";

const TL_COLUMNS: &str =
    "id, camera_id, rule_id, file, from_at, to_at, fps, width, height, frames, format, size_bytes, created_at";

fn corrupt(what: &str, v: &str) -> DbError {
    DbError::Corrupt(format!("{what} = {v:?}"))
}

fn job_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Job, DbError> {
    let id: String = row.get("id");
    let camera: String = row.get("camera_id");
    let state: String = row.get("state");
    let format: String = row.get("format");
    let width: Option<i64> = row.get("width");
    Ok(Job {
        id: JobId::parse(&id).map_err(|_| corrupt("jobs.id", &id))?,
        camera_id: CameraId::parse(&camera).map_err(|_| corrupt("jobs.camera_id", &camera))?,
        state: JobState::from_db(&state).ok_or_else(|| corrupt("jobs.state", &state))?,
        spec: TimelapseSpec {
            from: parse_ts(row.get("from_at"))?,
            to: parse_ts(row.get("to_at"))?,
            fps: row.get::<i64, _>("fps").clamp(1, 60) as u32,
            width: width.map(|w| w.clamp(0, i64::from(u32::MAX)) as u32),
            every_nth: row.get::<i64, _>("every_nth").clamp(1, i64::from(u32::MAX)) as u32,
            format: VideoFormat::from_db(&format).ok_or_else(|| corrupt("jobs.format", &format))?,
        },
        rule_id: row.get("rule_id"),
        frames_done: row.get("frames_done"),
        frames_total: row.get("frames_total"),
        output_bytes: row.get("output_bytes"),
        error: row.get("error"),
        code: row.get("code"),
        timelapse_id: row.get("timelapse_id"),
        created_at: parse_ts(row.get("created_at"))?,
        started_at: parse_opt_ts(row.get("started_at"))?,
        finished_at: parse_opt_ts(row.get("finished_at"))?,
    })
}

fn tl_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Timelapse, DbError> {
    let id: String = row.get("id");
    let camera: String = row.get("camera_id");
    let format: String = row.get("format");
    let num = |c: &str| row.get::<i64, _>(c).clamp(0, i64::from(u32::MAX)) as u32;
    Ok(Timelapse {
        id: TimelapseId::parse(&id).map_err(|_| corrupt("timelapses.id", &id))?,
        camera_id: CameraId::parse(&camera)
            .map_err(|_| corrupt("timelapses.camera_id", &camera))?,
        rule_id: row.get("rule_id"),
        file: row.get("file"),
        from: parse_ts(row.get("from_at"))?,
        to: parse_ts(row.get("to_at"))?,
        fps: num("fps"),
        width: num("width"),
        height: num("height"),
        frames: row.get("frames"),
        format: VideoFormat::from_db(&format)
            .ok_or_else(|| corrupt("timelapses.format", &format))?,
        size_bytes: row.get("size_bytes"),
        created_at: parse_ts(row.get("created_at"))?,
    })
}

fn bind_job<'q>(
    q: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    j: &'q Job,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
    q.bind(j.id.as_str())
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
}

fn insert_job_sql() -> String {
    format!(
        "INSERT INTO jobs ({JOB_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
}

fn no_camera(camera: &CameraId) -> impl FnOnce(sqlx::Error) -> DbError + '_ {
    move |e| match e {
        sqlx::Error::Database(ref d) if d.is_foreign_key_violation() => {
            DbError::NoParent(format!("no camera with id {:?}", camera.as_str()))
        }
        other => DbError::Sqlx {
            step: "queuing a job",
            source: other,
        },
    }
}

/// Queue a job (its row as given, normally `queued`). Its camera gone is a
/// [`DbError::NoParent`].
pub async fn insert(pool: &Pool, job: &Job) -> Result<(), DbError> {
    let pool = pool.sqlite_only("db::jobs::insert")?;
    bind_job(sqlx::query(&insert_job_sql()), job)
        .execute(pool)
        .await
        .map_err(no_camera(&job.camera_id))?;
    Ok(())
}

/// Queue a job, but only if fewer than `max_queued` jobs are waiting; `false` if the queue is
/// full. One statement, so two concurrent requests cannot both take the last place.
pub async fn insert_bounded(pool: &Pool, job: &Job, max_queued: i64) -> Result<bool, DbError> {
    let pool = pool.sqlite_only("db::jobs::insert_bounded")?;
    let sql = format!(
        "INSERT INTO jobs ({JOB_COLUMNS}) SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? \
         WHERE (SELECT COUNT(*) FROM jobs WHERE state = 'queued') < ?"
    );
    let r = bind_job(sqlx::query(&sql), job)
        .bind(max_queued)
        .execute(pool)
        .await
        .map_err(no_camera(&job.camera_id))?;
    Ok(r.rows_affected() > 0)
}

/// Queue a job inside a caller's transaction (a rule's claim).
pub(crate) async fn insert_in(tx: &mut sqlx::SqliteConnection, job: &Job) -> Result<(), DbError> {
    bind_job(sqlx::query(&insert_job_sql()), job)
        .execute(&mut *tx)
        .await
        .map_err(no_camera(&job.camera_id))?;
    Ok(())
}

pub async fn get(pool: &Pool, id: &str) -> Result<Option<Job>, DbError> {
    let pool = pool.sqlite_only("db::jobs::get")?;
    let row = sqlx::query(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?"))
        .bind(id)
        .fetch_optional(pool)
        .await
        .map_err(step("reading a job"))?;
    row.as_ref().map(job_from_row).transpose()
}

/// Jobs newest first, optionally of one camera and in one state.
pub async fn list(
    pool: &Pool,
    camera: Option<&CameraId>,
    state: Option<JobState>,
    limit: i64,
) -> Result<Vec<Job>, DbError> {
    let pool = pool.sqlite_only("db::jobs::list")?;
    let rows = sqlx::query(&format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE (?1 IS NULL OR camera_id = ?1) \
         AND (?2 IS NULL OR state = ?2) ORDER BY created_at DESC, id DESC LIMIT ?3"
    ))
    .bind(camera.map(CameraId::as_str))
    .bind(state.map(JobState::as_str))
    .bind(limit)
    .fetch_all(pool)
    .await
    .map_err(step("listing jobs"))?;
    rows.iter().map(job_from_row).collect()
}

/// Claim the oldest queued job for this worker: `queued → running`, conditional, so a job runs
/// once however many workers look.
pub async fn claim_next(pool: &Pool, now: DateTime<Utc>) -> Result<Option<Job>, DbError> {
    let pool = pool.sqlite_only("db::jobs::claim_next")?;
    loop {
        let row = sqlx::query(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE state = 'queued' ORDER BY created_at, id LIMIT 1"
        ))
        .fetch_optional(pool)
        .await
        .map_err(step("finding a queued job"))?;
        let Some(row) = row else { return Ok(None) };
        let mut job = job_from_row(&row)?;
        let r = sqlx::query(
            "UPDATE jobs SET state = 'running', started_at = ? WHERE id = ? AND state = 'queued'",
        )
        .bind(fmt_ts(now))
        .bind(job.id.as_str())
        .execute(pool)
        .await
        .map_err(step("claiming a job"))?;
        if r.rows_affected() == 1 {
            job.state = JobState::Running;
            job.started_at = Some(now);
            return Ok(Some(job));
        }
        // Cancelled (or claimed elsewhere) in between: look again.
    }
}

/// Set the frame count a running job will encode (known once its frames are read).
pub async fn set_total(pool: &Pool, id: &JobId, total: i64) -> Result<(), DbError> {
    let pool = pool.sqlite_only("db::jobs::set_total")?;
    sqlx::query("UPDATE jobs SET frames_total = ? WHERE id = ? AND state = 'running'")
        .bind(total)
        .bind(id.as_str())
        .execute(pool)
        .await
        .map_err(step("recording a job's frame count"))?;
    Ok(())
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

/// End a job that is in one of `from` states; `false` if it was not (a cancel or another
/// outcome came first).
pub async fn finish(
    pool: &Pool,
    id: &JobId,
    from: &[JobState],
    outcome: &Outcome,
) -> Result<bool, DbError> {
    let pool = pool.sqlite_only("db::jobs::finish")?;
    let mut tx = pool.begin().await.map_err(step("ending a job"))?;
    let done = finish_in(&mut tx, id, from, outcome, None).await?;
    tx.commit().await.map_err(step("ending a job"))?;
    Ok(done)
}

async fn finish_in(
    tx: &mut sqlx::SqliteConnection,
    id: &JobId,
    from: &[JobState],
    o: &Outcome,
    timelapse: Option<&str>,
) -> Result<bool, DbError> {
    let states: Vec<String> = from.iter().map(|s| format!("'{}'", s.as_str())).collect();
    let r = sqlx::query(&format!(
        "UPDATE jobs SET state = ?, frames_done = ?, output_bytes = ?, error = ?, code = ?, \
         finished_at = ?, timelapse_id = ? WHERE id = ? AND state IN ({})",
        states.join(", ")
    ))
    .bind(o.state.as_str())
    .bind(o.frames_done)
    .bind(o.output_bytes)
    .bind(o.error.as_deref())
    .bind(o.code.as_deref())
    .bind(fmt_ts(o.at))
    .bind(timelapse)
    .bind(id.as_str())
    .execute(&mut *tx)
    .await
    .map_err(step("ending a job"))?;
    Ok(r.rows_affected() == 1)
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
    let pool = pool.sqlite_only("db::jobs::complete")?;
    let mut tx = pool.begin().await.map_err(step("recording a video"))?;
    let inserted = sqlx::query(&format!(
        "INSERT INTO timelapses ({TL_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ))
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
        // The camera (or the rule) went meanwhile.
        Err(sqlx::Error::Database(d)) if d.is_foreign_key_violation() => return Ok(false),
        Err(e) => {
            return Err(DbError::Sqlx {
                step: "recording a video",
                source: e,
            })
        }
    }
    if !finish_in(
        &mut tx,
        id,
        &[JobState::Running],
        outcome,
        Some(video.id.as_str()),
    )
    .await?
    {
        return Ok(false); // rolled back on drop
    }
    tx.commit().await.map_err(step("recording a video"))?;
    Ok(true)
}

/// Jobs left `running` by a run of Heldar that is gone (start-up recovery).
pub async fn running(pool: &Pool) -> Result<Vec<Job>, DbError> {
    let pool = pool.sqlite_only("db::jobs::running")?;
    let rows = sqlx::query(&format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE state = 'running' ORDER BY created_at"
    ))
    .fetch_all(pool)
    .await
    .map_err(step("finding interrupted jobs"))?;
    rows.iter().map(job_from_row).collect()
}

/// Remove finished jobs that ended before `before` (retention); returns how many.
pub async fn prune_finished(pool: &Pool, before: DateTime<Utc>) -> Result<u64, DbError> {
    let pool = pool.sqlite_only("db::jobs::prune_finished")?;
    let r = sqlx::query(
        "DELETE FROM jobs WHERE state IN ('done', 'failed', 'cancelled') AND finished_at < ?",
    )
    .bind(fmt_ts(before))
    .execute(pool)
    .await
    .map_err(step("pruning finished jobs"))?;
    Ok(r.rows_affected())
}

// --- videos ----------------------------------------------------------------------------------

pub async fn video(pool: &Pool, id: &str) -> Result<Option<Timelapse>, DbError> {
    let pool = pool.sqlite_only("db::jobs::video")?;
    let row = sqlx::query(&format!("SELECT {TL_COLUMNS} FROM timelapses WHERE id = ?"))
        .bind(id)
        .fetch_optional(pool)
        .await
        .map_err(step("reading a timelapse"))?;
    row.as_ref().map(tl_from_row).transpose()
}

pub async fn video_by_file(pool: &Pool, file: &str) -> Result<Option<Timelapse>, DbError> {
    let pool = pool.sqlite_only("db::jobs::video_by_file")?;
    let row = sqlx::query(&format!(
        "SELECT {TL_COLUMNS} FROM timelapses WHERE file = ?"
    ))
    .bind(file)
    .fetch_optional(pool)
    .await
    .map_err(step("finding a timelapse"))?;
    row.as_ref().map(tl_from_row).transpose()
}

/// A camera's videos, newest first.
pub async fn videos(pool: &Pool, camera: &CameraId, limit: i64) -> Result<Vec<Timelapse>, DbError> {
    let pool = pool.sqlite_only("db::jobs::videos")?;
    let rows = sqlx::query(&format!(
        "SELECT {TL_COLUMNS} FROM timelapses WHERE camera_id = ? \
         ORDER BY created_at DESC, id DESC LIMIT ?"
    ))
    .bind(camera.as_str())
    .bind(limit)
    .fetch_all(pool)
    .await
    .map_err(step("listing timelapses"))?;
    rows.iter().map(tl_from_row).collect()
}

/// The oldest videos (by when they were made), optionally only those made before `before`,
/// skipping the first `skip` (retention: the ones it could not delete stay at the front).
pub async fn oldest_videos(
    pool: &Pool,
    before: Option<DateTime<Utc>>,
    skip: i64,
    limit: i64,
) -> Result<Vec<Timelapse>, DbError> {
    let pool = pool.sqlite_only("db::jobs::oldest_videos")?;
    let rows = sqlx::query(&format!(
        "SELECT {TL_COLUMNS} FROM timelapses WHERE created_at < ? \
         ORDER BY created_at, id LIMIT ? OFFSET ?"
    ))
    .bind(before.map(fmt_ts).unwrap_or_else(|| "9999".into()))
    .bind(limit)
    .bind(skip)
    .fetch_all(pool)
    .await
    .map_err(step("finding the oldest timelapses"))?;
    rows.iter().map(tl_from_row).collect()
}

pub async fn delete_video(pool: &Pool, id: &str) -> Result<bool, DbError> {
    let pool = pool.sqlite_only("db::jobs::delete_video")?;
    let r = sqlx::query("DELETE FROM timelapses WHERE id = ?")
        .bind(id)
        .execute(pool)
        .await
        .map_err(step("deleting a timelapse row"))?;
    Ok(r.rows_affected() > 0)
}

/// `(frames, bytes)` of all videos.
pub async fn video_totals(pool: &Pool) -> Result<(i64, i64), DbError> {
    let pool = pool.sqlite_only("db::jobs::video_totals")?;
    let (n, b): (i64, Option<i64>) =
        sqlx::query_as("SELECT COUNT(*), SUM(size_bytes) FROM timelapses")
            .fetch_one(pool)
            .await
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
    let pool = pool.sqlite_only("db::jobs::frames_in")?;
    sqlx::query_as(
        "SELECT path, width, height FROM snapshots WHERE camera_id = ? AND taken_at >= ? \
         AND taken_at < ? ORDER BY taken_at, id",
    )
    .bind(camera.as_str())
    .bind(fmt_ts(from))
    .bind(fmt_ts(to))
    .fetch_all(pool)
    .await
    .map_err(step("listing a range's frames"))
}

/// How many of a camera's frames were taken in `[from, to)`.
pub async fn count_frames(
    pool: &Pool,
    camera: &CameraId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<i64, DbError> {
    let pool = pool.sqlite_only("db::jobs::count_frames")?;
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM snapshots WHERE camera_id = ? AND taken_at >= ? AND taken_at < ?",
    )
    .bind(camera.as_str())
    .bind(fmt_ts(from))
    .bind(fmt_ts(to))
    .fetch_one(pool)
    .await
    .map_err(step("counting a range's frames"))
}
