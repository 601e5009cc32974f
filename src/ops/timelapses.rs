//! Timelapse exports: a job that turns a camera's stored frames of a range into one video, and
//! the videos that result (docs/timelapse.md).
//!
//! This module owns a job's life: checking the request (a 422 naming the field, `no_frames`,
//! `too_many_frames`; a 503 `ffmpeg_missing` or `queue_full`), queuing it, running it (frames in
//! `taken_at` order from the frame store, piped into ffmpeg by `encode`), its progress (kept in
//! memory while it runs, published as `job.progress` at most twice a second), its outcome
//! (`job.finished`, and `timelapse.done` with the video), cancelling it, recovering after a
//! crash, and deleting videos. The worker loop that runs jobs and the rule runner are services
//! (`services::timelapses`); rules are `ops::timelapse_rules`.
//!
//! Consistency: a video is encoded into a temporary name and renamed into place only when ffmpeg
//! has finished it; its row and the job's `done` are one transaction, written only while the job
//! is still `running` — a cancel (or the camera's deletion) that came first wins, and the file is
//! removed. A cancelled, failed or interrupted job leaves no file and no ffmpeg behind. Jobs
//! found `running` at start-up belonged to a run that is gone: they fail with `interrupted`; a
//! rule's job is queued again, so its period still gets exactly one video.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, SubsecRound, Utc};
use futures_util::StreamExt;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::db::{self, jobs::Outcome};
use crate::encode::{self, EncodeError, EncodeRequest};
use crate::error::{OpError, OpResult};
use crate::events::Event;
use crate::models::timelapse::{
    Job, JobId, JobState, JobView, Timelapse, TimelapseCreate, TimelapseId, TimelapseSpec,
    TimelapseView, VideoFormat,
};
use crate::models::{fmt_ts, truncate, CameraId};
use crate::store::videos::{OpenVideo, VideoStore};

use super::{cameras, Ops};

/// Jobs that may wait in the queue at once (exports; a rule's jobs are always queued).
pub const MAX_QUEUED: i64 = 32;
/// Rows a list answers with at most.
pub const LIST_LIMIT: i64 = 500;
/// How often a running job's progress is published, at most.
pub const PROGRESS_EVERY: Duration = Duration::from_millis(500);
/// How long a cancel waits for the job's ffmpeg to be gone and its file removed.
const CANCEL_WAIT: Duration = Duration::from_secs(30);
/// Finished jobs are forgotten this long after they ended (their videos follow their own TTL).
pub const JOB_KEEP: chrono::TimeDelta = chrono::TimeDelta::days(7);

/// What this module keeps between calls: the jobs running in this process, and the wake-ups of
/// the two services.
#[derive(Default)]
pub(crate) struct JobsState {
    /// A job was queued: the worker looks for it.
    pub(crate) queued: Notify,
    /// A rule was created or changed: the rule runner looks again.
    pub(crate) rules_changed: Notify,
    running: Mutex<HashMap<String, Arc<Running>>>,
}

/// A job running here.
struct Running {
    camera: CameraId,
    /// Cancelled by a cancel request, the camera's deletion, or Heldar's shutdown.
    cancel: CancellationToken,
    /// Cancelled once the runner has stopped ffmpeg and cleaned up.
    ended: CancellationToken,
    progress: Mutex<Progress>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Progress {
    done: i64,
    total: i64,
    started: Option<Instant>,
    output_bytes: i64,
}

impl Progress {
    fn eta(&self) -> Option<f64> {
        let started = self.started?;
        if self.done <= 0 || self.total <= 0 {
            return None;
        }
        let per_frame = started.elapsed().as_secs_f64() / self.done as f64;
        Some((per_frame * (self.total - self.done).max(0) as f64 * 10.0).round() / 10.0)
    }
}

impl JobsState {
    fn get(&self, id: &str) -> Option<Arc<Running>> {
        self.running.lock().expect("jobs lock").get(id).cloned()
    }
}

/// Removes a runner from the running map however it ends (even by a panic or an abort).
struct Registered<'a> {
    state: &'a JobsState,
    id: String,
    running: Arc<Running>,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.state
            .running
            .lock()
            .expect("jobs lock")
            .remove(&self.id);
        self.running.ended.cancel();
    }
}

// --- checking requests -----------------------------------------------------------------------

fn parse_time(field: &'static str, s: &str) -> OpResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc).trunc_subsecs(3))
        .map_err(|_| {
            OpError::invalid(
                field,
                format!(
                    "{field} {:?} is not an RFC 3339 time such as 2026-01-31T12:00:00Z",
                    truncate(s, 60)
                ),
            )
        })
}

/// `fps`: 1 to 60, default 24.
pub fn check_fps(v: Option<i64>) -> OpResult<u32> {
    match v {
        None => Ok(24),
        Some(n) if (1..=60).contains(&n) => Ok(n as u32),
        Some(n) => Err(OpError::invalid(
            "fps",
            format!("fps {n} must be a whole number of frames per second from 1 to 60"),
        )),
    }
}

/// `width`: even, 16 to 3840; none keeps the first frame's.
pub fn check_width(v: Option<i64>) -> OpResult<Option<u32>> {
    match v {
        None => Ok(None),
        Some(n) if (16..=3840).contains(&n) && n % 2 == 0 => Ok(Some(n as u32)),
        Some(n) => Err(OpError::invalid(
            "width",
            format!("width {n} must be an even number of pixels from 16 to 3840"),
        )),
    }
}

/// `format`: `mp4` (default) or `webm`.
pub fn check_format(v: Option<&str>) -> OpResult<VideoFormat> {
    match v {
        None => Ok(VideoFormat::Mp4),
        Some(s) => VideoFormat::from_db(s).ok_or_else(|| {
            OpError::invalid(
                "format",
                format!(
                    "format {:?} is not one of mp4 (H.264) or webm (VP9)",
                    truncate(s, 40)
                ),
            )
        }),
    }
}

fn check_every_nth(v: Option<i64>) -> OpResult<u32> {
    match v {
        None => Ok(1),
        Some(n) if (1..=1_000_000).contains(&n) => Ok(n as u32),
        Some(n) => Err(OpError::invalid(
            "every_nth",
            format!("every_nth {n} must be a whole number from 1 to 1000000"),
        )),
    }
}

/// The ffmpeg to run, or the 503 that says it is missing.
pub fn ffmpeg(ops: &Ops) -> OpResult<std::path::PathBuf> {
    encode::resolve(&ops.config.ffmpeg_bin).ok_or_else(|| OpError::Unavailable {
        code: "ffmpeg_missing",
        message: format!(
            "timelapses are encoded by ffmpeg, which is not installed or not at {:?}: install \
             ffmpeg (with libx264) or set HELDAR_FFMPEG_BIN",
            ops.config.ffmpeg_bin.display().to_string()
        ),
    })
}

/// Frames a video of `n` frames in range has when every `nth` is used.
fn used(n: i64, nth: u32) -> i64 {
    (n + i64::from(nth) - 1) / i64::from(nth)
}

/// The smallest `every_nth` that keeps `n` frames within `max`.
pub fn nth_for(n: i64, max: u64) -> u32 {
    let max = max.max(1) as i64;
    ((n + max - 1) / max).clamp(1, i64::from(u32::MAX)) as u32
}

fn new_job(
    ops: &Ops,
    camera: &CameraId,
    spec: TimelapseSpec,
    total: i64,
    rule: Option<&str>,
) -> Job {
    Job {
        id: JobId::generate(),
        camera_id: camera.clone(),
        state: JobState::Queued,
        spec,
        rule_id: rule.map(str::to_string),
        frames_done: 0,
        frames_total: total,
        output_bytes: 0,
        error: None,
        code: None,
        timelapse_id: None,
        created_at: ops.clock.now().trunc_subsecs(3),
        started_at: None,
        finished_at: None,
    }
}

/// A rule's job for `[from, to)` with `n` frames in it (`every_nth` as needed to fit the limit).
pub(crate) fn rule_job(
    ops: &Ops,
    camera: &CameraId,
    rule: &str,
    mut spec: TimelapseSpec,
    n: i64,
) -> Job {
    spec.every_nth = nth_for(n, ops.config.timelapse_max_frames);
    let total = used(n, spec.every_nth);
    new_job(ops, camera, spec, total, Some(rule))
}

// --- the API's operations --------------------------------------------------------------------

/// `POST /api/v1/cameras/{id}/timelapses`: check, and queue the job.
pub async fn create(ops: &Ops, camera: &CameraId, body: TimelapseCreate) -> OpResult<JobView> {
    cameras::require(ops, camera).await?;
    let from = parse_time("from", &body.from)?;
    let to = parse_time("to", &body.to)?;
    if from > to {
        return Err(OpError::invalid(
            "from",
            format!(
                "from {} is later than to {}: swap them",
                fmt_ts(from),
                fmt_ts(to)
            ),
        ));
    }
    if from == to {
        // An empty range: it holds no frames, by definition.
        return Err(OpError::Unprocessable {
            code: "no_frames",
            message: format!(
                "the range from {} to {} is empty (to is exclusive), so it holds no frames: \
                 make to later than from",
                fmt_ts(from),
                fmt_ts(to)
            ),
            field: None,
        });
    }
    let spec = TimelapseSpec {
        from,
        to,
        fps: check_fps(body.fps)?,
        width: check_width(body.width)?,
        every_nth: check_every_nth(body.every_nth)?,
        format: check_format(body.format.as_deref())?,
    };
    ffmpeg(ops)?;
    let n = db::jobs::count_frames(&ops.db, camera, from, to).await?;
    if n == 0 {
        return Err(OpError::Unprocessable {
            code: "no_frames",
            message: format!(
                "camera {camera} has no stored frames from {} to {}: pick a range that \
                 holds frames (GET /api/v1/cameras/{camera}/snapshots lists them)",
                fmt_ts(from),
                fmt_ts(to)
            ),
            field: None,
        });
    }
    let total = used(n, spec.every_nth);
    let max = ops.config.timelapse_max_frames;
    if total as u64 > max {
        let nth = nth_for(n, max);
        return Err(OpError::Unprocessable {
            code: "too_many_frames",
            message: format!(
                "the range from {} to {} has {n} frames{}, more than the limit of {max} per \
                 video (HELDAR_TIMELAPSE_MAX_FRAMES): pick a shorter range, or every_nth of at \
                 least {nth}",
                fmt_ts(from),
                fmt_ts(to),
                if spec.every_nth > 1 {
                    format!(" ({total} with every_nth {})", spec.every_nth)
                } else {
                    String::new()
                },
            ),
            field: None,
        });
    }
    let job = new_job(ops, camera, spec, total, None);
    if !db::jobs::insert_bounded(&ops.db, &job, MAX_QUEUED).await? {
        return Err(OpError::Unavailable {
            code: "queue_full",
            message: format!(
                "{MAX_QUEUED} timelapse jobs are already waiting; try again when some have \
                 finished (GET /api/v1/jobs?state=queued)"
            ),
        });
    }
    ops.jobs.queued.notify_one();
    tracing::info!(job = %job.id, camera = %camera, frames = total, from = %fmt_ts(from),
        to = %fmt_ts(to), fps = job.spec.fps, "timelapse export queued");
    view(ops, &job).await
}

fn job_not_found(id: &JobId) -> OpError {
    OpError::NotFound(format!("no job with id {:?}", id.as_str()))
}

/// A job as the API shows it: its row, with the live progress of a job running here and its
/// video when there is one.
async fn view(ops: &Ops, job: &Job) -> OpResult<JobView> {
    let video = match &job.timelapse_id {
        Some(id) => db::jobs::video(&ops.db, id).await?,
        None => None,
    };
    let mut v = JobView {
        id: job.id.to_string(),
        kind: "timelapse".into(),
        camera_id: job.camera_id.to_string(),
        state: job.state,
        frames_done: job.frames_done,
        frames_total: job.frames_total,
        eta_seconds: None,
        output_bytes: job.output_bytes,
        error: job.error.clone(),
        code: job.code.clone(),
        created_at: job.created_at,
        started_at: job.started_at,
        finished_at: job.finished_at,
        timelapse: video.as_ref().map(TimelapseView::from),
    };
    if job.state == JobState::Running {
        if let Some(r) = ops.jobs.get(job.id.as_str()) {
            let p = *r.progress.lock().expect("progress lock");
            v.frames_done = p.done;
            if p.total > 0 {
                v.frames_total = p.total;
            }
            v.output_bytes = p.output_bytes;
            v.eta_seconds = p.eta();
        }
    }
    Ok(v)
}

pub async fn get(ops: &Ops, id: &JobId) -> OpResult<JobView> {
    let job = db::jobs::get(&ops.db, id.as_str())
        .await?
        .ok_or_else(|| job_not_found(id))?;
    view(ops, &job).await
}

/// Jobs newest first, optionally of one camera and in one state.
pub async fn list(
    ops: &Ops,
    camera: Option<&CameraId>,
    state: Option<JobState>,
) -> OpResult<Vec<JobView>> {
    if let Some(c) = camera {
        cameras::require(ops, c).await?;
    }
    let jobs = db::jobs::list(&ops.db, camera, state, LIST_LIMIT).await?;
    let mut out = Vec::with_capacity(jobs.len());
    for j in &jobs {
        out.push(view(ops, j).await?);
    }
    Ok(out)
}

/// Cancel a queued or running job: it ends `cancelled`, its ffmpeg is gone and its partial file
/// removed before this returns. A finished job is a conflict.
pub async fn cancel(ops: &Ops, id: &JobId) -> OpResult<JobView> {
    let job = db::jobs::get(&ops.db, id.as_str())
        .await?
        .ok_or_else(|| job_not_found(id))?;
    let finished = |state: JobState| {
        OpError::Conflict(format!(
            "job {id} is already {}; only a queued or running job can be cancelled",
            state.as_str()
        ))
    };
    if job.state.is_final() {
        return Err(finished(job.state));
    }
    let running = ops.jobs.get(id.as_str());
    let done = running.as_ref().map_or(job.frames_done, |r| {
        r.progress.lock().expect("progress lock").done
    });
    let outcome = Outcome {
        state: JobState::Cancelled,
        frames_done: done,
        output_bytes: 0,
        error: Some("cancelled on request".into()),
        code: Some("cancelled".into()),
        at: ops.clock.now().trunc_subsecs(3),
    };
    if !db::jobs::finish(
        &ops.db,
        id,
        &[JobState::Queued, JobState::Running],
        &outcome,
    )
    .await?
    {
        // It ended in between.
        let now = db::jobs::get(&ops.db, id.as_str())
            .await?
            .ok_or_else(|| job_not_found(id))?;
        return Err(finished(now.state));
    }
    // Looked up after the state changed: a runner that registers later sees `cancelled` in its
    // own check and stops before it starts ffmpeg.
    if let Some(r) = ops.jobs.get(id.as_str()) {
        r.cancel.cancel();
        if tokio::time::timeout(CANCEL_WAIT, r.ended.cancelled())
            .await
            .is_err()
        {
            tracing::warn!(job = %id, "a cancelled job's runner did not stop within 30 s");
        }
    }
    tracing::info!(job = %id, camera = %job.camera_id, "timelapse job cancelled");
    ops.events.publish(Event::JobFinished {
        job_id: id.to_string(),
        camera: job.camera_id.clone(),
        state: JobState::Cancelled,
        timelapse_id: None,
        code: outcome.code.clone(),
        error: outcome.error.clone(),
    });
    get(ops, id).await
}

/// A camera's videos, newest first.
pub async fn videos(ops: &Ops, camera: &CameraId) -> OpResult<Vec<TimelapseView>> {
    cameras::require(ops, camera).await?;
    let rows = db::jobs::videos(&ops.db, camera, LIST_LIMIT).await?;
    Ok(rows.iter().map(TimelapseView::from).collect())
}

/// Delete a video: its file, then its row.
pub async fn delete_video(ops: &Ops, id: &TimelapseId) -> OpResult<()> {
    let tl = db::jobs::video(&ops.db, id.as_str())
        .await?
        .ok_or_else(|| OpError::NotFound(format!("no timelapse with id {:?}", id.as_str())))?;
    ops.videos.remove(&tl.file).await?;
    db::jobs::delete_video(&ops.db, id.as_str()).await?;
    tracing::info!(timelapse = %id, camera = %tl.camera_id, "timelapse deleted");
    Ok(())
}

fn no_such_video() -> OpError {
    OpError::NotFound("no such timelapse video".into())
}

/// The video a `/media/timelapses` path names: `camera` a slug, `file` one of the store's
/// names, and a row naming it. Anything else is the same not-found.
pub async fn by_media_path(ops: &Ops, camera: &str, file: &str) -> OpResult<Timelapse> {
    let camera = CameraId::parse(camera).map_err(|_| no_such_video())?;
    if crate::store::videos::parse_file_name(file).is_none() {
        return Err(no_such_video());
    }
    db::jobs::video_by_file(&ops.db, &format!("{camera}/{file}"))
        .await?
        .ok_or_else(no_such_video)
}

/// Open a video's file for serving (no symlinks followed).
pub async fn open(ops: &Ops, tl: &Timelapse) -> OpResult<OpenVideo> {
    ops.videos.open(&tl.file).await.map_err(|e| {
        tracing::debug!(file = %tl.file, error = %e, "timelapse file not served");
        no_such_video()
    })
}

/// A camera was deleted (its rows went with it): stop its jobs and remove its videos.
pub async fn forget_camera(ops: &Ops, camera: &CameraId) {
    let mine: Vec<Arc<Running>> = ops
        .jobs
        .running
        .lock()
        .expect("jobs lock")
        .values()
        .filter(|r| &r.camera == camera)
        .cloned()
        .collect();
    for r in &mine {
        r.cancel.cancel();
    }
    for r in mine {
        let _ = tokio::time::timeout(CANCEL_WAIT, r.ended.cancelled()).await;
    }
    match ops.videos.remove_camera(camera).await {
        Ok(0) => {}
        Ok(kept) => tracing::warn!(camera = %camera, entries = kept,
            "camera deleted; its timelapse folder is kept because it holds entries Heldar did not write"),
        Err(e) => tracing::warn!(camera = %camera, error = %e,
            "camera deleted but its timelapse videos could not all be removed"),
    }
}

// --- the worker's side -----------------------------------------------------------------------

/// Start-up (and after a restart of the worker): jobs left `running` by a run that is gone fail
/// with `interrupted` and their temporary files go; a rule's job is queued again. Stray
/// temporary files of jobs not running here are removed too.
pub async fn recover(ops: &Ops) -> OpResult<()> {
    // In a fleet, only jobs no live node runs: another node's running job is its own business
    // (docs/scale-out.md "The timelapse job queue").
    let node = &ops.config.node;
    let live_since =
        ops.clock.now() - chrono::Duration::from_std(node.lease_period).unwrap_or_default();
    for job in db::jobs::orphaned(&ops.db, &node.id, live_since).await? {
        if ops.jobs.get(job.id.as_str()).is_some() {
            continue; // running here
        }
        let _ = ops.videos.remove_temp(&job.camera_id, &job.id).await;
        let outcome = Outcome {
            state: JobState::Failed,
            frames_done: job.frames_done,
            output_bytes: 0,
            error: Some(
                "Heldar stopped while this job was running; its partial video was removed".into(),
            ),
            code: Some("interrupted".into()),
            at: ops.clock.now().trunc_subsecs(3),
        };
        if !db::jobs::finish(&ops.db, &job.id, &[JobState::Running], &outcome).await? {
            continue;
        }
        tracing::warn!(job = %job.id, camera = %job.camera_id, "timelapse job interrupted by a restart");
        ops.events.publish(Event::JobFinished {
            job_id: job.id.to_string(),
            camera: job.camera_id.clone(),
            state: JobState::Failed,
            timelapse_id: None,
            code: outcome.code.clone(),
            error: outcome.error.clone(),
        });
        if let Some(rule) = &job.rule_id {
            // The rule claimed this period: its video is still owed.
            let again = new_job(
                ops,
                &job.camera_id,
                job.spec.clone(),
                job.frames_total,
                Some(rule),
            );
            db::jobs::insert(&ops.db, &again).await?;
            tracing::info!(job = %again.id, rule = %rule, "the rule's interrupted video is queued again");
        }
    }
    for path in ops.videos.temp_files().await? {
        let job = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix(".tmp-"))
            .and_then(|n| n.split_once('.'))
            .map(|(j, _)| j.to_string())
            .unwrap_or_default();
        if ops.jobs.get(&job).is_none() {
            let _ = ops.videos.remove_temp_path(&path).await;
        }
    }
    ops.jobs.queued.notify_one();
    Ok(())
}

/// Claim the oldest queued job, if any.
pub async fn claim_next(ops: &Ops) -> OpResult<Option<Job>> {
    let now = ops.clock.now().trunc_subsecs(3);
    Ok(db::jobs::claim_next(&ops.db, now, &ops.config.node.id).await?)
}

/// Why a run stopped without a video.
enum Stop {
    /// A cancel request or the camera's deletion: already recorded by whoever cancelled.
    Cancelled,
    /// Heldar is stopping: the row stays `running` and the next start marks it interrupted.
    Shutdown,
    Failed {
        code: &'static str,
        message: String,
    },
}

/// Run a claimed job to its end. `shutdown` is Heldar's: when it fires, ffmpeg is stopped and
/// the job left for the next start's recovery.
pub async fn run(ops: &Ops, job: Job, shutdown: &CancellationToken) {
    let running = Arc::new(Running {
        camera: job.camera_id.clone(),
        cancel: shutdown.child_token(),
        ended: CancellationToken::new(),
        progress: Mutex::new(Progress {
            total: job.frames_total,
            started: Some(Instant::now()),
            ..Progress::default()
        }),
    });
    ops.jobs
        .running
        .lock()
        .expect("jobs lock")
        .insert(job.id.to_string(), running.clone());
    let _registered = Registered {
        state: &ops.jobs,
        id: job.id.to_string(),
        running: running.clone(),
    };
    // A cancel between the claim and the registration above: it changed the state first.
    match db::jobs::get(&ops.db, job.id.as_str()).await {
        Ok(Some(j)) if j.state == JobState::Running => {}
        Ok(_) => return,
        Err(e) => tracing::warn!(job = %job.id, error = %e, "cannot re-read a claimed job"),
    }
    tracing::info!(job = %job.id, camera = %job.camera_id, frames = job.frames_total, "timelapse job started");
    let started = Instant::now();
    let result = encode_job(ops, &job, &running, shutdown).await;
    let at = ops.clock.now().trunc_subsecs(3);
    let done = running.progress.lock().expect("progress lock").done;
    match result {
        Ok(video) => {
            let outcome = Outcome {
                state: JobState::Done,
                frames_done: video.frames,
                output_bytes: video.size_bytes,
                error: None,
                code: None,
                at,
            };
            match db::jobs::complete(&ops.db, &job.id, &video, &outcome).await {
                Ok(true) => {
                    let elapsed = started.elapsed().as_secs_f64();
                    tracing::info!(job = %job.id, camera = %job.camera_id, timelapse = %video.id,
                        frames = video.frames, bytes = video.size_bytes,
                        seconds = format!("{elapsed:.1}"),
                        frames_per_second = format!("{:.1}", video.frames as f64 / elapsed.max(1e-3)),
                        "timelapse video made");
                    publish_progress(ops, &job, video.frames, video.frames, Some(0.0));
                    ops.events.publish(Event::JobFinished {
                        job_id: job.id.to_string(),
                        camera: job.camera_id.clone(),
                        state: JobState::Done,
                        timelapse_id: Some(video.id.to_string()),
                        code: None,
                        error: None,
                    });
                    ops.events.publish(Event::TimelapseDone {
                        camera: job.camera_id.clone(),
                        timelapse_id: video.id.to_string(),
                        url: video.url(),
                    });
                }
                Ok(false) => {
                    // Cancelled, or the camera deleted, just before: no video.
                    let _ = ops.videos.remove(&video.file).await;
                }
                Err(e) => {
                    let _ = ops.videos.remove(&video.file).await;
                    tracing::error!(job = %job.id, error = %e, "cannot record a finished timelapse");
                    fail(
                        ops,
                        &job,
                        done,
                        "internal",
                        "Heldar could not record the video; the details are in its log".into(),
                    )
                    .await;
                }
            }
        }
        Err(Stop::Cancelled) => {
            tracing::info!(job = %job.id, "timelapse job stopped: cancelled");
        }
        Err(Stop::Shutdown) => {
            tracing::info!(job = %job.id, "timelapse job stopped by the shutdown; the next start marks it interrupted");
        }
        Err(Stop::Failed { code, message }) => fail(ops, &job, done, code, message).await,
    }
}

async fn fail(ops: &Ops, job: &Job, done: i64, code: &'static str, message: String) {
    tracing::warn!(job = %job.id, camera = %job.camera_id, code, error = %message, "timelapse job failed");
    let outcome = Outcome {
        state: JobState::Failed,
        frames_done: done,
        output_bytes: 0,
        error: Some(message.clone()),
        code: Some(code.to_string()),
        at: ops.clock.now().trunc_subsecs(3),
    };
    match db::jobs::finish(&ops.db, &job.id, &[JobState::Running], &outcome).await {
        Ok(true) => ops.events.publish(Event::JobFinished {
            job_id: job.id.to_string(),
            camera: job.camera_id.clone(),
            state: JobState::Failed,
            timelapse_id: None,
            code: Some(code.to_string()),
            error: Some(message),
        }),
        Ok(false) => {}
        Err(e) => tracing::error!(job = %job.id, error = %e, "cannot record a failed job"),
    }
}

fn publish_progress(ops: &Ops, job: &Job, done: i64, total: i64, eta: Option<f64>) {
    ops.events.publish(Event::JobProgress {
        job_id: job.id.to_string(),
        camera: job.camera_id.clone(),
        frames_done: done,
        frames_total: total,
        eta_seconds: eta,
    });
}

async fn encode_job(
    ops: &Ops,
    job: &Job,
    running: &Running,
    shutdown: &CancellationToken,
) -> Result<Timelapse, Stop> {
    let internal = |what: &str, e: &dyn std::fmt::Display| {
        tracing::error!(job = %job.id, error = %e, "{what}");
        Stop::Failed {
            code: "internal",
            message: format!("{what}; the details are in Heldar's log"),
        }
    };
    let Some(ffmpeg) = encode::resolve(&ops.config.ffmpeg_bin) else {
        return Err(Stop::Failed {
            code: "ffmpeg_missing",
            message: format!(
                "ffmpeg is not installed or not at {:?}: install ffmpeg (with libx264) or set HELDAR_FFMPEG_BIN",
                ops.config.ffmpeg_bin.display().to_string()
            ),
        });
    };
    let spec = &job.spec;
    let rows = db::jobs::frames_in(&ops.db, &job.camera_id, spec.from, spec.to)
        .await
        .map_err(|e| internal("cannot list the range's frames", &e))?;
    let max = usize::try_from(ops.config.timelapse_max_frames).unwrap_or(usize::MAX);
    let paths: Vec<String> = rows
        .into_iter()
        .step_by(spec.every_nth.max(1) as usize)
        .take(max)
        .map(|(p, _, _)| p)
        .collect();
    let no_frames = || {
        Stop::Failed {
        code: "no_frames",
        message: format!(
            "camera {} has no stored frames from {} to {} any more (retention may have removed them)",
            job.camera_id,
            fmt_ts(spec.from),
            fmt_ts(spec.to)
        ),
    }
    };
    // The output's size follows the first frame that can still be read.
    let mut first = None;
    for (i, p) in paths.iter().enumerate() {
        if let Ok(bytes) = ops.store.read_frame(p).await {
            if let Ok((w, h)) = crate::capture::jpeg::validate(&bytes) {
                first = Some((i, w, h));
                break;
            }
        }
    }
    let Some((skip, w, h)) = first else {
        return Err(no_frames());
    };
    let paths: Vec<String> = paths.into_iter().skip(skip).collect();
    let total = paths.len() as i64;
    {
        let mut p = running.progress.lock().expect("progress lock");
        p.total = total;
        p.started = Some(Instant::now());
    }
    if total != job.frames_total {
        let _ = db::jobs::set_total(&ops.db, &job.id, total).await;
    }
    let (width, height) = encode::output_size(u32::from(w), u32::from(h), spec.width);
    ops.videos
        .prepare(&job.camera_id)
        .await
        .map_err(|e| internal("cannot create the camera's timelapse folder", &e))?;
    let temp = ops.videos.temp_path(&job.camera_id, &job.id, spec.format);
    let req = EncodeRequest {
        ffmpeg,
        output: temp.clone(),
        fps: spec.fps,
        width,
        height,
        format: spec.format,
    };
    publish_progress(ops, job, 0, total, None);
    let store = ops.store.clone();
    // Frames in taken_at order, each read as it is fed (a frame retention removed meanwhile is
    // left out).
    let frames = futures_util::stream::iter(paths)
        .then(move |p| {
            let store = store.clone();
            async move { store.read_frame(&p).await.ok() }
        })
        .filter_map(|b: Option<Bytes>| async move { b });
    let mut last_publish = Instant::now();
    let on_progress = |n: u64| {
        let n = n as i64;
        let snapshot = {
            let mut p = running.progress.lock().expect("progress lock");
            p.done = n.min(p.total);
            p.output_bytes = std::fs::metadata(&temp).map_or(0, |m| m.len() as i64);
            *p
        };
        if last_publish.elapsed() >= PROGRESS_EVERY {
            last_publish = Instant::now();
            publish_progress(ops, job, snapshot.done, snapshot.total, snapshot.eta());
        }
    };
    let result = encode::encode(&req, frames, on_progress, &running.cancel).await;
    let frames = match result {
        Ok(n) => n,
        Err(e) => {
            let _ = ops.videos.remove_temp(&job.camera_id, &job.id).await;
            return Err(match e {
                EncodeError::Cancelled if shutdown.is_cancelled() => Stop::Shutdown,
                EncodeError::Cancelled => Stop::Cancelled,
                other => Stop::Failed {
                    code: other.code(),
                    message: other.to_string(),
                },
            });
        }
    };
    let size = tokio::fs::metadata(&temp)
        .await
        .map_err(|e| internal("the encoded video cannot be read", &e))?
        .len() as i64;
    let id = TimelapseId::generate();
    let file = VideoStore::rel_path(&job.camera_id, &id, spec.format);
    if let Err(e) = ops.videos.finalize(&temp, &file).await {
        let _ = ops.videos.remove_temp(&job.camera_id, &job.id).await;
        return Err(internal("cannot move the finished video into place", &e));
    }
    Ok(Timelapse {
        id,
        camera_id: job.camera_id.clone(),
        rule_id: job.rule_id.clone(),
        file,
        from: spec.from,
        to: spec.to,
        fps: spec.fps,
        width,
        height,
        frames: frames as i64,
        format: spec.format,
        size_bytes: size,
        created_at: ops.clock.now().trunc_subsecs(3),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frame_limit_suggests_the_smallest_every_nth_that_fits() {
        assert_eq!(nth_for(100, 100), 1);
        assert_eq!(nth_for(101, 100), 2);
        assert_eq!(nth_for(250_000, 100_000), 3);
        assert_eq!(used(250_000, 3), 83_334);
        assert_eq!(used(10, 3), 4);
    }

    #[test]
    fn fields_are_checked_with_a_sentence_naming_them() {
        assert_eq!(check_fps(None).unwrap(), 24);
        for bad in [0, 61, -1] {
            let e = check_fps(Some(bad)).unwrap_err();
            assert!(matches!(&e, OpError::Invalid(f) if f.field == "fps"), "{e}");
        }
        assert_eq!(check_width(Some(640)).unwrap(), Some(640));
        for bad in [15, 641, 3842, 0] {
            assert!(check_width(Some(bad)).is_err(), "{bad}");
        }
        assert_eq!(check_format(Some("webm")).unwrap(), VideoFormat::Webm);
        assert!(check_format(Some("gif")).is_err());
    }
}
