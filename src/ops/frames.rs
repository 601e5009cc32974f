//! Frames: capturing a camera, keeping the frame, and reading kept frames back.
//!
//! Keeping a frame is capture → store → row, in that order, so a row never names a file that is
//! not complete (docs/design.md §8); the scheduler's slot runner does it for every slot and the API
//! for `?store=true`. A live frame ([`live`]) is captured and returned, not kept; concurrent
//! live requests for one camera share one capture (single flight).
//!
//! A slot ([`capture_slot`]) follows its schedule's frame rules (docs/schedules.md): the source
//! its `stream` names, and between capture and store a look at the frame (`capture::look`) that
//! may skip it as dark or unchanged — then nothing is stored, the slot is recorded as fired and
//! skipped, counted, and announced as `slot.skipped`. The previous stored frame's look of each
//! `skip_unchanged` schedule is kept here, in memory, and derived from its file when missing.
//!
//! Every capture's outcome is recorded here, not in `capture`: the camera's status row (through
//! the writer; a live frame is returned without waiting for that commit), and on the event bus
//! `frame.stored` or `capture.failed` — plus `camera.state_changed` when, and only when, the
//! camera's state differs from the last one this process saw (one event per change, not one per
//! failure); and the outage bookkeeping of `ops::outages` (`camera.offline`/`camera.recovered`).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use bytes::Bytes;
use chrono::{DateTime, SubsecRound, Utc};
use futures_util::future::{BoxFuture, FutureExt, Shared};
use tracing::Instrument;

use crate::capture::look::{self, Look};
use crate::capture::{CaptureError, Frame, Want};
use crate::db;
use crate::db::writer::{Answer, ClaimKey};
use crate::error::{OpError, OpResult};
use crate::events::Event;
use crate::models::{
    new_id, Camera, CameraId, CameraState, FrameRules, Page, Position, SkipReason, Snapshot,
};
use crate::store;

use super::Ops;

/// One live capture that several requests wait on.
type Flight = Shared<BoxFuture<'static, Result<Frame, CaptureError>>>;

/// What this module remembers between calls: live captures in flight, and the last state each
/// camera was seen in (seeded from the database at start-up by [`seed_states`]).
#[derive(Default)]
pub(crate) struct FrameState {
    flights: Mutex<HashMap<CameraId, Flight>>,
    states: Mutex<HashMap<CameraId, CameraState>>,
    /// Failures in a row per camera, since this process started (for the log's summaries).
    failures: Mutex<HashMap<CameraId, u64>>,
    /// The look of the newest frame stored by each `skip_unchanged` schedule, by schedule id:
    /// what the next frame is compared with. Missing after a restart (or for a schedule that
    /// just turned `skip_unchanged` on): derived again from its newest stored frame.
    looks: Mutex<HashMap<String, Look>>,
    /// The frame storage's outages, for the log (see [`super::store_outage`]).
    pub(crate) storage: super::store_outage::StoreOutages,
}

impl FrameState {
    /// The state this process last saw `camera` in (tests).
    #[cfg(test)]
    pub(crate) fn state_of(&self, camera: &CameraId) -> Option<CameraState> {
        self.states
            .lock()
            .expect("states lock")
            .get(camera)
            .copied()
    }

    /// Forget a deleted schedule's last look.
    pub(crate) fn forget_schedule(&self, id: &str) {
        self.looks.lock().expect("looks lock").remove(id);
    }

    /// Forget a deleted camera.
    pub(crate) fn forget(&self, id: &CameraId) {
        self.states.lock().expect("states lock").remove(id);
        self.failures.lock().expect("failures lock").remove(id);
    }

    /// Count a failure (or, with `failed` false, end a run of them); the run's length so far.
    fn count_failure(&self, camera: &CameraId, failed: bool) -> u64 {
        let mut failures = self.failures.lock().expect("failures lock");
        if !failed {
            failures.remove(camera);
            return 0;
        }
        let n = failures.entry(camera.clone()).or_insert(0);
        *n += 1;
        *n
    }

    /// Note `to` as `camera`'s state; the previous one if it differs.
    fn transition(&self, camera: &CameraId, to: CameraState) -> Option<CameraState> {
        let mut states = self.states.lock().expect("states lock");
        let from = states
            .insert(camera.clone(), to)
            .unwrap_or(CameraState::Unknown);
        (from != to).then_some(from)
    }
}

/// How a capture that was asked for ended, for the caller that keeps score (the scheduler's
/// camera cache).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    AuthFailed,
    Failed,
}

impl Outcome {
    pub fn of(result: &Result<Frame, CaptureError>) -> Outcome {
        match result {
            Ok(_) => Outcome::Ok,
            Err(CaptureError::AuthFailed(_)) => Outcome::AuthFailed,
            Err(_) => Outcome::Failed,
        }
    }
}

/// Learn every camera's stored state, so the first capture after a restart emits a
/// `camera.state_changed` only if the state really changes.
pub async fn seed_states(ops: &Ops) -> OpResult<()> {
    let all = db::cameras::list(&ops.db).await?;
    let mut states = ops.frames.states.lock().expect("states lock");
    for (camera, status) in all {
        states.insert(camera.spec.id, status.state);
    }
    Ok(())
}

/// Learn the stored state of cameras this node has just taken over (`ops::nodes`): the node
/// that held them wrote their status, so what this process remembers of them (nothing, for a
/// camera created after it started, or a state from its start-up) is stale. Without this, the
/// new holder's first capture announced a change from `unknown` (or missed a real one). Only
/// the gained cameras: a held camera's remembered state can be newer than its row (the writer
/// commits in batches).
pub(crate) async fn seed_states_of(ops: &Ops, gained: &HashSet<CameraId>) -> OpResult<()> {
    if gained.is_empty() {
        return Ok(());
    }
    let all = db::cameras::list(&ops.db).await?;
    let mut states = ops.frames.states.lock().expect("states lock");
    let mut failures = ops.frames.failures.lock().expect("failures lock");
    for (camera, status) in all {
        if gained.contains(&camera.spec.id) {
            // The run of failures restarts with the holder: its log summaries count its own.
            failures.remove(&camera.spec.id);
            states.insert(camera.spec.id, status.state);
        }
    }
    Ok(())
}

/// The state a capture's outcome puts its camera in, and the error that did it.
fn state_after(result: Result<(), &CaptureError>) -> (CameraState, Option<String>) {
    match result {
        Ok(()) => (CameraState::Online, None),
        Err(e @ CaptureError::AuthFailed(_)) => (CameraState::AuthFailed, Some(e.to_string())),
        Err(e) => (CameraState::Failing, Some(e.to_string())),
    }
}

/// Publish what a capture's outcome means for the camera's state: an event only if it changed.
async fn note_state(
    ops: &Ops,
    camera: &CameraId,
    result: Result<(), &CaptureError>,
    at: DateTime<Utc>,
) {
    let run = ops.frames.count_failure(camera, result.is_err());
    if result.is_ok() {
        super::backoff::success(ops, camera);
    }
    if let Err(e) = result {
        // The log says each failure run once, then summarises it at 10, 100, 1,000… failures,
        // instead of a WARN per slot for as long as a camera stays dead.
        if run == 1 {
            tracing::warn!(camera = %camera, code = e.code(), error = %e, "capture failed");
        } else if is_power_of_ten(run) {
            tracing::warn!(camera = %camera, code = e.code(), error = %e, failures = run,
                "capture failed, again: {run} failures in a row");
        }
    }
    let (to, last_error) = state_after(result);
    if let Some(from) = ops.frames.transition(camera, to) {
        match &last_error {
            Some(e) => tracing::warn!(camera = %camera, from = from.as_str(), to = to.as_str(),
                error = %e, "camera state changed"),
            None => tracing::info!(camera = %camera, from = from.as_str(), to = to.as_str(),
                "camera state changed"),
        }
        ops.events.publish(Event::CameraStateChanged {
            camera: camera.clone(),
            from,
            to,
            last_error,
            at,
        });
    }
    super::outages::after_capture(ops, camera, result, at).await;
}

/// Record a failed capture: the status row (awaited when `wait`), the events.
async fn record_failure(
    ops: &Ops,
    camera: &CameraId,
    schedule: Option<&str>,
    e: &CaptureError,
    at: DateTime<Utc>,
    wait: bool,
) {
    if ops.shutdown.is_cancelled() {
        // Cut by the shutdown (a claimed slot firing in the grace period against a camera that
        // is going away with us, a connection closed under it): not the camera's failure, and
        // it must not be the last error an operator finds after the restart.
        tracing::info!(camera = %camera, error = %e, "capture ended during shutdown; not recorded as a camera failure");
        return;
    }
    let (state, _) = state_after(Err(e));
    let writer = ops.writer.clone();
    let (id, message) = (camera.clone(), e.message().to_string());
    let write = async move {
        // During a database outage the status row is held; the slot's task does not wait for
        // it (db::writer).
        let result = match writer
            .record_failure_or_hold(&id, state, &message, at)
            .await
        {
            Answer::Done(r) => r,
            Answer::Held(pending) => {
                tokio::spawn(async move {
                    if let Err(err) = pending.wait().await {
                        tracing::debug!(camera = %id, error = %err, "could not record camera status");
                    }
                });
                return;
            }
        };
        if let Err(err) = result {
            // The capture's own outcome still stands; the status catches up on the next one.
            tracing::warn!(camera = %id, error = %err, "could not record camera status");
        }
    };
    if wait {
        write.await;
    } else {
        tokio::spawn(write);
    }
    ops.events.publish(Event::CaptureFailed {
        camera: camera.clone(),
        schedule: schedule.map(str::to_string),
        code: e.code().to_string(),
        error: e.to_string(),
        at,
    });
    note_state(ops, camera, Err(e), at).await;
}

/// Record a success whose frame is not kept (a live frame, a store failure), without waiting.
fn record_success(ops: &Ops, camera: &CameraId, at: DateTime<Utc>) {
    let (writer, id) = (ops.writer.clone(), camera.clone());
    tokio::spawn(async move {
        if let Err(e) = writer.record_success(&id, at).await {
            tracing::warn!(camera = %id, error = %e, "could not record camera status");
        }
    });
}

/// Capture `camera` now and keep the frame; `schedule` is `None` for a frame kept through the
/// API. `want.at` is the slot a scheduled frame is for (a warm RTSP session serves the newest
/// frame at it). Returns the row and the bytes.
pub async fn capture_and_keep(
    ops: &Ops,
    camera: &Camera,
    schedule: Option<&str>,
    want: Want,
) -> OpResult<(Snapshot, Bytes)> {
    capture_and_keep_tagged(ops, camera, schedule, want, None).await
}

/// [`capture_and_keep`] with the frame's `tag` (the API's `?tag=`, an MQTT capture trigger's):
/// checked here, so every caller gets the same 422 sentence for a bad one.
pub async fn capture_and_keep_tagged(
    ops: &Ops,
    camera: &Camera,
    schedule: Option<&str>,
    want: Want,
    tag: Option<&str>,
) -> OpResult<(Snapshot, Bytes)> {
    if let Some(t) = tag {
        crate::models::check_tag(t).map_err(|m| OpError::invalid("tag", m))?;
    }
    match keep(
        ops,
        camera,
        schedule.map(|s| (s, FrameRules::default())),
        want,
        tag,
        None,
    )
    .await?
    {
        Kept::Stored(snap, bytes) => Ok((snap, bytes)),
        // Default rules skip nothing.
        Kept::Skipped(reason) => Err(OpError::Internal(anyhow::anyhow!(
            "a frame kept without rules was skipped as {}",
            reason.as_str()
        ))),
    }
}

/// What became of a slot's frame.
#[derive(Debug)]
// One per capture, returned once and taken apart at once: boxing the row would only add an
// allocation per frame.
#[allow(clippy::large_enum_variant)]
pub enum Kept {
    Stored(Snapshot, Bytes),
    /// Captured and not kept: dark or unchanged (docs/schedules.md).
    Skipped(SkipReason),
}

/// Capture `schedule`'s slot `want.at` from `camera` (from the source `rules.stream` names) and
/// keep the frame, unless `rules` skip it: darker than `skip_dark`'s threshold, or (with
/// `skip_unchanged`) the same picture as the schedule's previous stored frame ([`look`]). A
/// skipped frame is not stored; the slot counts as fired (`last_fired_at`), is noted on the
/// schedule (`last_skipped_at`, `last_skip_reason`), counted in
/// `heldar_skipped_slots_total{camera,reason}` and announced as `slot.skipped`.
///
/// `claim_held`: the slot's claim was still held by the writer (a database outage) when the
/// slot fired; the frame's row is then written only if that claim wins when the database
/// returns, and otherwise its file is removed (docs/design.md, "Database outages").
pub async fn capture_slot(
    ops: &Ops,
    camera: &Camera,
    schedule: &str,
    want: Want,
    rules: FrameRules,
    claim_held: bool,
) -> OpResult<Kept> {
    let want = Want {
        stream: rules.stream,
        ..want
    };
    let held = want
        .at
        .filter(|_| claim_held)
        .map(|slot| (schedule.to_string(), slot));
    keep(ops, camera, Some((schedule, rules)), want, None, held).await
}

/// The look of `schedule`'s newest stored frame: remembered, or derived from the file (after a
/// restart). `None` when it has no readable frame.
async fn previous_look(ops: &Ops, schedule: &str) -> Option<Look> {
    if let Some(l) = ops.frames.looks.lock().expect("looks lock").get(schedule) {
        return Some(*l);
    }
    let snap = match db::snapshots::newest_of_schedule(&ops.db, schedule).await {
        Ok(s) => s?,
        Err(e) => {
            tracing::warn!(schedule, error = %e, "cannot find the schedule's newest frame");
            return None;
        }
    };
    let bytes = ops.store.read_frame(&snap.path).await.ok()?;
    let l = tokio::task::spawn_blocking(move || look::of_jpeg(&bytes))
        .await
        .ok()?
        .ok()?;
    ops.frames
        .looks
        .lock()
        .expect("looks lock")
        .entry(schedule.to_string())
        .or_insert(l);
    Some(l)
}

/// Whether `rules` skip a frame that looks like `now`, and why.
async fn skip_reason(
    ops: &Ops,
    schedule: &str,
    rules: &FrameRules,
    now: &Look,
) -> Option<SkipReason> {
    if rules
        .skip_dark
        .is_some_and(|threshold| now.luma < threshold)
    {
        return Some(SkipReason::Dark);
    }
    if rules.skip_unchanged {
        if let Some(prev) = previous_look(ops, schedule).await {
            if prev.unchanged(now) {
                return Some(SkipReason::Unchanged);
            }
        }
    }
    None
}

async fn keep(
    ops: &Ops,
    camera: &Camera,
    rules: Option<(&str, FrameRules)>,
    want: Want,
    tag: Option<&str>,
    held_claim: Option<ClaimKey>,
) -> OpResult<Kept> {
    let schedule = rules.map(|(s, _)| s);
    // The frame's time is the camera's own capture time when the back-end knows it (native
    // RTSP: docs/rtsp.md), else when its capture started: for a scheduled frame, slot +
    // lateness.
    let started_at = ops.clock.now().trunc_subsecs(3);
    let started = tokio::time::Instant::now();
    let result = ops.capturer.capture_for(camera, want).await;
    ops.metrics
        .camera_outcome(&camera.id, result.is_ok(), started, ops.clock.now());
    let frame = match result {
        Ok(f) => f,
        Err(e) => {
            record_failure(ops, &camera.id, schedule, &e, ops.clock.now(), true).await;
            return Err(e.into());
        }
    };
    note_state(ops, &camera.id, Ok(()), ops.clock.now()).await;
    let taken_at = frame.taken_at.map_or(started_at, |t| t.trunc_subsecs(3));
    // Looked at only for a schedule that asks: a decode of the luma plane on a blocking thread.
    // A frame that cannot be decoded is kept (better a frame than a silent gap).
    let mut seen: Option<Look> = None;
    if let Some((schedule, rules)) = rules {
        if rules.skip_dark.is_some() || rules.skip_unchanged {
            let bytes = frame.bytes.clone();
            match tokio::task::spawn_blocking(move || look::of_jpeg(&bytes)).await {
                Ok(Ok(l)) => seen = Some(l),
                Ok(Err(why)) => {
                    tracing::debug!(error = %why, "frame not looked at; it is kept")
                }
                Err(e) => tracing::warn!(error = %e, "looking at a frame failed; it is kept"),
            }
        }
        if let Some(now) = &seen {
            if let Some(reason) = skip_reason(ops, schedule, &rules, now).await {
                skipped(
                    ops,
                    camera,
                    schedule,
                    want.at.unwrap_or(taken_at),
                    taken_at,
                    reason,
                    now,
                )
                .await;
                return Ok(Kept::Skipped(reason));
            }
        }
    }
    let writing = ops.clock.now();
    let file = match ops
        .store
        .write_frame(&camera.id, taken_at, frame.bytes.clone())
        .await
    {
        Ok(f) => f,
        Err(e) => {
            ops.metrics.store_failures.inc();
            super::store_outage::frame_not_stored(ops, &camera.id, writing, &e);
            record_success(ops, &camera.id, ops.clock.now());
            return Err(match e {
                store::StoreError::DiskFull(_) => OpError::DiskFull(
                    "the frame was captured but not kept: the disk is full".into(),
                ),
                store::StoreError::Unavailable(why) => OpError::Unavailable {
                    code: "storage_unavailable",
                    message: format!("the frame was captured but not kept: {why}"),
                },
                other => other.into(),
            });
        }
    };
    super::store_outage::storage_answered(ops);
    let snap = Snapshot {
        id: new_id("snp"),
        camera_id: camera.id.clone(),
        schedule_id: schedule.map(str::to_string),
        path: file.rel_path.clone(),
        taken_at,
        size_bytes: file.size as i64,
        width: Some(i64::from(frame.width)),
        height: Some(i64::from(frame.height)),
        created_at: ops.clock.now().trunc_subsecs(3),
        tag: tag.map(str::to_string),
    };
    // The row also records the camera's success (one write).
    let answer = ops
        .writer
        .record_frame_or_hold(snap.clone(), held_claim)
        .await;
    let answer = match (answer, schedule) {
        (Answer::Held(pending), None) => {
            // Kept through the API: the caller is told only what is durable, so it waits.
            Answer::Done(pending.wait().await)
        }
        (a, _) => a,
    };
    if let Some((schedule, rules)) = rules {
        // The frame the next one of this schedule is compared with; a schedule without
        // `skip_unchanged` keeps none (turned on later, it derives one from this frame's file).
        let mut looks = ops.frames.looks.lock().expect("looks lock");
        match seen.filter(|_| rules.skip_unchanged) {
            Some(l) => looks.insert(schedule.to_string(), l),
            None => looks.remove(schedule),
        };
    }
    match answer {
        Answer::Done(Ok(())) => stored(ops, &snap),
        Answer::Done(Err(e)) => {
            let e = not_recorded(ops, &snap, e).await;
            return Err(e.into());
        }
        Answer::Held(pending) => {
            // The database is away: the row waits in the writer's buffer, and this slot's task
            // ends now, so the schedule's next slot is not held up behind the outage. The frame
            // is announced once its row commits; if it never does, its file goes.
            let (o, s) = (ops.clone(), snap.clone());
            tokio::spawn(
                async move {
                    match pending.wait().await {
                        Ok(()) => stored(&o, &s),
                        Err(e) => {
                            not_recorded(&o, &s, e).await;
                        }
                    }
                }
                .instrument(tracing::Span::current()),
            );
        }
    }
    Ok(Kept::Stored(snap, frame.bytes))
}

/// A frame's row is committed: announce it.
fn stored(ops: &Ops, snap: &Snapshot) {
    ops.events.publish(Event::FrameStored {
        camera: snap.camera_id.clone(),
        schedule: snap.schedule_id.clone(),
        snapshot_id: snap.id.clone(),
        taken_at: snap.taken_at,
        url: media_url(snap),
        size_bytes: snap.size_bytes,
        width: snap.width,
        height: snap.height,
        tag: snap.tag.clone(),
    });
}

/// A frame whose row was not written: remove its file (no row, no file), and say why. A
/// scheduled frame refused because the database outage outlasted its buffer is a missed slot;
/// one whose held claim lost went to another process, which is not a miss.
async fn not_recorded(ops: &Ops, snap: &Snapshot, e: db::DbError) -> db::DbError {
    let _ = ops.store.remove(&snap.path).await;
    let camera = &snap.camera_id;
    match &e {
        db::DbError::ClaimNotWon => {
            tracing::info!(camera = %camera, "slot taken by another process during the database outage; frame removed");
        }
        db::DbError::Unavailable { .. } if snap.schedule_id.is_some() => {
            ops.metrics.missed_slots.inc();
            ops.metrics.db_outage_missed_slots.inc();
            tracing::debug!(camera = %camera, error = %e, "slot missed: frame not recorded; file removed");
        }
        _ => {
            record_success(ops, camera, ops.clock.now());
            ops.metrics.store_failures.inc();
            tracing::warn!(camera = %camera, error = %e, "frame not recorded; file removed");
        }
    }
    e
}

/// Record a skipped slot: the metric, the schedule's row (through the writer, with the
/// camera's success), the event.
async fn skipped(
    ops: &Ops,
    camera: &Camera,
    schedule: &str,
    slot: DateTime<Utc>,
    taken_at: DateTime<Utc>,
    reason: SkipReason,
    look: &Look,
) {
    ops.metrics.skipped(&camera.id, reason.as_str());
    tracing::debug!(reason = reason.as_str(), luma = look.luma, hash = %look.hash_hex(),
        "frame skipped");
    let now = ops.clock.now().trunc_subsecs(3);
    match ops
        .writer
        .record_skip_or_hold(&camera.id, schedule, taken_at, reason.as_str(), now)
        .await
    {
        Answer::Done(Ok(())) => {}
        Answer::Done(Err(e)) => tracing::warn!(error = %e, "could not record a skipped slot"),
        // The database is away: the note waits in the writer's buffer; nobody waits on it.
        Answer::Held(pending) => {
            tokio::spawn(async move {
                if let Err(e) = pending.wait().await {
                    tracing::debug!(error = %e, "could not record a skipped slot");
                }
            });
        }
    }
    ops.events.publish(Event::SlotSkipped {
        camera_id: camera.id.clone(),
        schedule_id: schedule.to_string(),
        slot,
        reason,
        luma: look.luma,
        hash: (reason == SkipReason::Unchanged).then(|| look.hash_hex()),
    });
}

/// A live frame, not kept. Everyone asking for the same camera at the same time shares one
/// capture (single flight): a hundred dashboard viewers cost the camera one request. A request
/// that arrives after the shared capture finished starts a new one, so nobody gets a stale
/// frame. The capture runs on its own task, so it finishes (and releases the camera) even if
/// every viewer disconnects; it is bounded by the capture deadline. A camera with a warm RTSP
/// session answers from it in milliseconds; `max_age` lets it reuse a decode of a frame at most
/// that old (default: decode the newest frame).
pub async fn live(
    ops: &Ops,
    camera: &Camera,
    max_age: Option<std::time::Duration>,
) -> OpResult<Frame> {
    let shared = {
        let mut flights = ops.frames.flights.lock().expect("flights lock");
        match flights.get(&camera.id) {
            Some(f) => f.clone(),
            None => {
                let (o, cam) = (ops.clone(), camera.clone());
                // The flight logs in the span of the request that started it.
                let run = tokio::spawn(
                    async move {
                        let started = tokio::time::Instant::now();
                        let want = Want {
                            at: None,
                            max_age,
                            stream: None,
                        };
                        let r = o.capturer.capture_for(&cam, want).await;
                        let at = o.clock.now();
                        o.metrics.camera_outcome(&cam.id, r.is_ok(), started, at);
                        match &r {
                            Ok(_) => {
                                record_success(&o, &cam.id, at);
                                note_state(&o, &cam.id, Ok(()), at).await;
                            }
                            Err(e) => record_failure(&o, &cam.id, None, e, at, false).await,
                        }
                        o.frames
                            .flights
                            .lock()
                            .expect("flights lock")
                            .remove(&cam.id);
                        r
                    }
                    .instrument(tracing::Span::current()),
                );
                let id = camera.id.clone();
                let fut: BoxFuture<'static, Result<Frame, CaptureError>> = Box::pin(async move {
                    run.await.unwrap_or_else(|e| {
                        Err(CaptureError::BadResponse(format!(
                            "camera {id}: the capture task failed ({e})"
                        )))
                    })
                });
                let f = fut.shared();
                flights.insert(camera.id.clone(), f.clone());
                f
            }
        }
    };
    Ok(shared.await?)
}

/// Where a kept frame is served.
pub fn media_url(snap: &Snapshot) -> String {
    format!("/media/snapshots/{}", snap.path)
}

/// A page of a camera's kept frames in `[from, to]` (only those tagged `tag`, when given),
/// newest first: at most `limit`, starting after `after` (a position an earlier page gave),
/// with the number matching in all.
pub async fn list(
    ops: &Ops,
    camera: &CameraId,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    tag: Option<&str>,
    after: Option<&Position>,
    limit: i64,
) -> OpResult<Page<Snapshot>> {
    if let Some(t) = tag {
        crate::models::check_tag(t).map_err(|m| OpError::invalid("tag", m))?;
    }
    super::cameras::require(ops, camera).await?;
    Ok(db::snapshots::page(&ops.db, camera, from, to, tag, after, limit).await?)
}

/// A camera's newest kept frame.
pub async fn latest(ops: &Ops, camera: &CameraId) -> OpResult<Snapshot> {
    super::cameras::require(ops, camera).await?;
    db::snapshots::latest(&ops.db, camera)
        .await?
        .ok_or_else(|| OpError::NotFound(format!("camera {camera} has no stored frames yet")))
}

fn no_such_frame() -> OpError {
    OpError::NotFound("no such frame".into())
}

/// The kept frame a `/media` path names: `camera` must be a slug, `file` one of the store's
/// frame names, and a row must name it. Anything else is the same not-found.
pub async fn by_media_path(ops: &Ops, camera: &str, file: &str) -> OpResult<Snapshot> {
    let camera = CameraId::parse(camera).map_err(|_| no_such_frame())?;
    if store::parse_file_name(file).is_none() {
        return Err(no_such_frame());
    }
    db::snapshots::by_path(&ops.db, &format!("{camera}/{file}"))
        .await?
        .ok_or_else(no_such_frame)
}

/// The bytes of a kept frame, read without following symlinks (`store::FrameStore::read_frame`).
/// With a bucket, a failure other than "no such key" is the bucket's, not the frame's: a 503
/// naming the storage, so a client retries rather than concludes the frame is gone.
pub async fn read(ops: &Ops, snap: &Snapshot) -> OpResult<Bytes> {
    ops.store.read_frame(&snap.path).await.map_err(|e| {
        if let Some(b) = ops.store.bucket() {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(path = %snap.path, error = %e, "frame not served: the storage failed");
                return storage_down(b.url());
            }
        }
        tracing::debug!(path = %snap.path, error = %e, "media file not served");
        no_such_frame()
    })
}

fn storage_down(url: &str) -> OpError {
    OpError::Unavailable {
        code: "storage_unavailable",
        message: format!("the frame storage {url} does not answer; try again later"),
    }
}

/// Where a bucket-stored frame is served from when presigned URLs are on: a GET URL signed for
/// `HELDAR_S3_PRESIGN_SECONDS`. `None`: stream it (local storage, or presigning off).
pub async fn presigned(ops: &Ops, snap: &Snapshot) -> OpResult<Option<url::Url>> {
    let Some(b) = ops.store.bucket() else {
        return Ok(None);
    };
    match b.presigned(&snap.path).await {
        None => Ok(None),
        Some(Ok(u)) => Ok(Some(u)),
        Some(Err(e)) => {
            tracing::warn!(path = %snap.path, error = %e, "cannot presign a frame's URL");
            Err(storage_down(b.url()))
        }
    }
}

/// Is `n` one of 10, 100, 1,000, …?
fn is_power_of_ten(n: u64) -> bool {
    let mut n = n;
    if n < 10 {
        return false;
    }
    while n.is_multiple_of(10) {
        n /= 10;
    }
    n == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_summarised_at_powers_of_ten() {
        let logged: Vec<u64> = (1..=2000).filter(|n| is_power_of_ten(*n)).collect();
        assert_eq!(logged, [10, 100, 1000]);
    }

    #[test]
    fn a_run_of_failures_is_counted_until_a_success() {
        let s = FrameState::default();
        let cam = CameraId::parse("gate").unwrap();
        assert_eq!(
            [
                s.count_failure(&cam, true),
                s.count_failure(&cam, true),
                s.count_failure(&cam, false),
                s.count_failure(&cam, true)
            ],
            [1, 2, 0, 1]
        );
    }
}
