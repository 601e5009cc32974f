//! Warm sessions: one RTSP session kept open per camera with a short interval, shared by its
//! schedules and live requests, holding the compressed frames since the last keyframe (one GOP),
//! so the frame that serves a slot is the newest frame at the slot — decoded from that keyframe
//! forward when asked, not waited for.
//!
//! What it owns: each warm camera's session task (connect, read, reconnect with backoff, close
//! when no longer wanted), its GOP buffer (bounded in bytes and age), the last decode of each
//! mode (a cache keyed on everything that shapes the picture: camera, stream URL, frame, mode),
//! and what the session says in the camera's status (`note`).
//!
//! What it does not: decide which cameras are warm (the `rtsp_warm` service tells it, from the
//! schedules), or record camera status (`ops::frames` does, from each capture's result).
//!
//! How it fails: a session that cannot connect, is refused, or receives nothing for
//! `HELDAR_RTSP_STALL_S` is dropped (retina tears it down) and reconnected with backoff —
//! 1 s doubling to 30 s, or after an authentication failure 1 min doubling to 1 h, as the
//! scheduler's own auth backoff (many cameras lock an account after a few failed logins). While
//! it reconnects, the frames it already holds keep serving slots (their `taken_at` says how old
//! they are, and none more than a second older than the slot is used: [`MAX_GAP`]); a capture that finds nothing waits
//! for the next frame until its deadline without holding a decode permit. A stream the native
//! path cannot decode ends the task with [`NativeError::Unsupported`], which the `Capturer`
//! turns into the ffmpeg fallback.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{decode_frame, open, NativeError, NativeSource, Next};
use crate::capture::{CaptureError, Frame, GrabRequest};
use crate::config::RtspConfig;
use crate::models::{CameraId, RtspFrameMode};

/// One compressed frame of the GOP.
#[derive(Debug, Clone)]
struct Unit {
    data: Bytes,
    taken_at: DateTime<Utc>,
}

/// A decode kept for reuse: the picture of the GOP frame `taken_at` in `mode`.
#[derive(Debug, Clone)]
struct Cached {
    generation: u64,
    taken_at: DateTime<Utc>,
    mode: RtspFrameMode,
    frame: Frame,
}

/// Where a warm session stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Connecting,
    Playing,
    /// The last attempt failed; reconnecting after a backoff.
    Failing(CaptureError),
    /// The native path cannot read the stream (the task has ended).
    Unsupported(String),
}

#[derive(Debug)]
struct State {
    /// The frames since the last keyframe, the keyframe first. Kept across a reconnect until the
    /// new session's first keyframe replaces it.
    gop: Vec<Unit>,
    gop_bytes: usize,
    /// Session number: a new one starts after each reconnect, and a GOP belongs to one.
    generation: u64,
    /// Frames are dropped until the next keyframe (after loss, a reconnect or an overflow).
    need_keyframe: bool,
    /// A frame of this stream decoded before: a decoder refusal is then a damaged GOP, not an
    /// unsupported stream.
    decoded_once: bool,
    phase: Phase,
    /// Said in the camera's status while it holds (no keyframe at hand, and why).
    note: Option<String>,
    cache: Vec<Cached>,
    /// Frames received and decodes done, for the bench and the status.
    frames_in: u64,
}

/// One camera's warm session: shared between its task and the captures asking it for frames.
pub struct Warm {
    camera: CameraId,
    /// What the session was opened with (URL, credentials, trust): a camera edited since is a
    /// different session.
    key: String,
    state: Mutex<State>,
    /// Woken on every frame received and every phase change.
    changed: Notify,
    cancel: CancellationToken,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// What a capture asks a warm session for.
#[derive(Debug, Clone, Copy)]
pub struct Ask {
    /// The newest frame at this time (a slot); `None`: the newest frame now.
    pub at: Option<DateTime<Utc>>,
    pub mode: RtspFrameMode,
    /// A cached decode of a frame at most this old may answer; `None`: decode the newest frame.
    pub max_age: Option<Duration>,
}

/// The key of a session: everything that decides what it connects to.
pub fn key_of(req: &GrabRequest) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(req.url.as_str());
    h.update([0]);
    if let Some((u, p)) = req.credentials() {
        h.update(u);
        h.update([0]);
        h.update(p);
    }
    h.update(format!("{:?}", req.tls));
    let d = h.finalize();
    d.iter().map(|b| format!("{b:02x}")).collect()
}

impl Warm {
    /// What the camera's status says of this session: its note, or its failure.
    pub fn note(&self) -> Option<String> {
        let s = self.state.lock().expect("warm state");
        match &s.phase {
            Phase::Failing(e) => Some(format!("reconnecting: {}", e.message())),
            Phase::Unsupported(why) => Some(why.clone()),
            Phase::Connecting if s.gop.is_empty() => Some("connecting".into()),
            _ => s.note.clone(),
        }
    }

    /// The reason the native path cannot read this stream, once the session found out.
    pub fn unsupported(&self) -> Option<String> {
        match &self.state.lock().expect("warm state").phase {
            Phase::Unsupported(why) => Some(why.clone()),
            _ => None,
        }
    }

    /// Frames received since the session started (all connections).
    pub fn frames_in(&self) -> u64 {
        self.state.lock().expect("warm state").frames_in
    }

    fn set_phase(&self, phase: Phase) {
        self.state.lock().expect("warm state").phase = phase;
        self.changed.notify_waiters();
    }

    /// Take in one frame of the stream.
    fn push(&self, f: retina::codec::VideoFrame, taken_at: DateTime<Utc>, cfg: &RtspConfig) {
        let mut s = self.state.lock().expect("warm state");
        s.frames_in += 1;
        s.phase = Phase::Playing;
        if f.loss() > 0 {
            // A frame after lost packets may reference what was lost: never decode it, nor
            // anything until the next keyframe. The GOP held so far stays good for its slots.
            s.need_keyframe = true;
            s.note = Some(format!(
                "{} packets lost: waiting for the next keyframe",
                f.loss()
            ));
        }
        let rap = f.is_random_access_point();
        if rap {
            s.gop.clear();
            s.gop_bytes = 0;
            s.need_keyframe = false;
            s.note = None;
        } else if s.need_keyframe {
            drop(s);
            self.changed.notify_waiters();
            return;
        }
        let data = Bytes::from(f.into_data());
        s.gop_bytes += data.len();
        s.gop.push(Unit { data, taken_at });
        let age = taken_at - s.gop[0].taken_at;
        let too_old = age.to_std().unwrap_or_default() > cfg.gop_max_age;
        if s.gop_bytes > cfg.gop_max_bytes || too_old {
            s.note = Some(format!(
                "no keyframe at hand: the camera's keyframe interval is longer than this \
                 session keeps ({} bytes or {} s since the last keyframe; \
                 HELDAR_RTSP_GOP_MAX_BYTES, HELDAR_RTSP_GOP_MAX_AGE_S); captures wait for the \
                 next keyframe",
                cfg.gop_max_bytes,
                cfg.gop_max_age.as_secs()
            ));
            s.gop.clear();
            s.gop_bytes = 0;
            s.need_keyframe = true;
        }
        drop(s);
        self.changed.notify_waiters();
    }

    /// The frame `ask` wants, decoded (or from the cache), before `req.deadline`.
    pub async fn frame(
        &self,
        req: &GrabRequest,
        ask: Ask,
        decodes: &tokio::sync::Semaphore,
    ) -> Result<Frame, NativeError> {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let pick = {
                let s = self.state.lock().expect("warm state");
                if let Phase::Unsupported(why) = &s.phase {
                    return Err(NativeError::Unsupported(why.clone()));
                }
                let now = Utc::now();
                let target = ask.at.unwrap_or(now);
                match pick_units(&s.gop, target, ask.mode) {
                    Some(n) => {
                        let taken_at = s.gop[n - 1].taken_at;
                        let hit = s.cache.iter().find(|c| {
                            c.generation == s.generation
                                && c.mode == ask.mode
                                && (c.taken_at == taken_at
                                    || ask.max_age.is_some_and(|m| {
                                        ask.at.is_none()
                                            && now - c.taken_at
                                                <= chrono::Duration::from_std(m).unwrap_or_default()
                                    }))
                        });
                        if let Some(c) = hit {
                            return Ok(c.frame.clone());
                        }
                        let units: Vec<Bytes> = s.gop[..n].iter().map(|u| u.data.clone()).collect();
                        Some((units, taken_at, s.generation, !s.decoded_once))
                    }
                    _ => {
                        if let Phase::Failing(e @ CaptureError::AuthFailed(_)) = &s.phase {
                            return Err(e.clone().into());
                        }
                        None
                    }
                }
            };
            match pick {
                Some((units, taken_at, generation, first)) => {
                    let frame = decode_frame(decodes, req, units, taken_at, first).await;
                    let mut s = self.state.lock().expect("warm state");
                    match &frame {
                        Ok(f) => {
                            s.decoded_once = true;
                            s.cache.retain(|c| c.mode != ask.mode);
                            s.cache.push(Cached {
                                generation,
                                taken_at,
                                mode: ask.mode,
                                frame: f.clone(),
                            });
                        }
                        Err(NativeError::Unsupported(why)) => {
                            s.phase = Phase::Unsupported(why.clone());
                            drop(s);
                            self.cancel.cancel();
                        }
                        Err(_) => {}
                    }
                    return frame;
                }
                None => {
                    // Nothing at hand yet: wait for a frame or a phase change, until the
                    // deadline (the caller's timeout), without holding a decode permit.
                    if tokio::time::timeout_at(req.deadline, notified)
                        .await
                        .is_err()
                    {
                        return Err(self.nothing_in_time(req).into());
                    }
                }
            }
        }
    }

    /// The error of a capture that found no frame before its deadline.
    fn nothing_in_time(&self, req: &GrabRequest) -> CaptureError {
        let s = self.state.lock().expect("warm state");
        match &s.phase {
            Phase::Failing(e) => e.clone(),
            _ => CaptureError::Timeout(format!(
                "camera {}: {}: no intact frame arrived in time ({})",
                req.camera,
                req.shown_url(),
                s.note.as_deref().unwrap_or("waiting for a keyframe")
            )),
        }
    }

    /// Stop the session (its TEARDOWN is retina's, in the background).
    pub fn close(&self) {
        self.cancel.cancel();
    }
}

/// How far before its target the newest frame may be and still serve it: a session that
/// stalled or is reconnecting keeps serving slots with the frames it holds, but never with one
/// this much older than the slot (a later frame, or the wait for one, is better).
pub const MAX_GAP: chrono::Duration = chrono::Duration::seconds(1);

/// How many units of `gop` (from its keyframe) give the frame wanted at `target`: the newest
/// frame taken at or before `target` if it is within [`MAX_GAP`] of it (exact mode), else the
/// first frame after `target` if one has arrived; the keyframe alone in keyframe mode. `None`:
/// nothing fit to serve yet (wait for the next frame).
fn pick_units(gop: &[Unit], target: DateTime<Utc>, mode: RtspFrameMode) -> Option<usize> {
    let n = gop.iter().take_while(|u| u.taken_at <= target).count();
    let fit = |i: usize| target - gop[i].taken_at <= MAX_GAP;
    if mode == RtspFrameMode::Keyframe {
        return (!gop.is_empty() && (n == 0 || fit(0))).then_some(1);
    }
    if n > 0 && fit(n - 1) {
        Some(n)
    } else if gop.len() > n {
        Some(n + 1)
    } else {
        None
    }
}

/// Every warm session, by camera.
pub struct WarmSessions {
    native: Arc<NativeSource>,
    cfg: RtspConfig,
    sessions: Mutex<HashMap<CameraId, Arc<Warm>>>,
    /// Held by whoever decides the wanted set and syncs to it (`services::rtsp_warm::sync`).
    sync_lock: tokio::sync::Mutex<()>,
}

impl WarmSessions {
    pub fn new(native: Arc<NativeSource>, cfg: RtspConfig) -> WarmSessions {
        WarmSessions {
            native,
            cfg,
            sessions: Mutex::new(HashMap::new()),
            sync_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// The lock that makes syncs run one at a time (see `services::rtsp_warm::sync`).
    pub fn sync_lock(&self) -> &tokio::sync::Mutex<()> {
        &self.sync_lock
    }

    /// The settings the sessions run with.
    pub fn config(&self) -> &RtspConfig {
        &self.cfg
    }

    /// The warm session of `camera` opened for `req`'s stream, if there is one.
    pub fn get(&self, req: &GrabRequest) -> Option<Arc<Warm>> {
        let sessions = self.sessions.lock().expect("sessions lock");
        sessions
            .get(&req.camera)
            .filter(|w| w.key == key_of(req))
            .cloned()
    }

    /// The warm session of `camera`, whatever it was opened with (for its status).
    pub fn of(&self, camera: &CameraId) -> Option<Arc<Warm>> {
        self.sessions
            .lock()
            .expect("sessions lock")
            .get(camera)
            .cloned()
    }

    /// Warm sessions open now.
    pub fn len(&self) -> usize {
        self.sessions.lock().expect("sessions lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keep exactly `wanted` warm (at most `HELDAR_RTSP_WARM_MAX_SESSIONS` of them, in the
    /// order given): open the missing ones, close the others and those whose stream changed,
    /// restart a task that ended unexpectedly (a panic). Must run inside the tokio runtime.
    pub fn sync(&self, wanted: Vec<GrabRequest>) {
        let wanted: Vec<GrabRequest> = wanted
            .into_iter()
            .take(self.cfg.warm_max_sessions)
            .collect();
        let mut sessions = self.sessions.lock().expect("sessions lock");
        let keep: HashMap<&CameraId, String> =
            wanted.iter().map(|r| (&r.camera, key_of(r))).collect();
        sessions.retain(|id, w| {
            let ok = keep.get(id) == Some(&w.key)
                && !w.cancel.is_cancelled()
                && !w
                    .task
                    .lock()
                    .expect("task lock")
                    .as_ref()
                    .is_some_and(|t| t.is_finished());
            if !ok {
                w.close();
            }
            // A session whose stream the native path cannot read stays (its task ended), so
            // its reason is not forgotten and it is not reopened at every sync.
            ok || (keep.get(id) == Some(&w.key) && w.unsupported().is_some())
        });
        for req in wanted {
            if sessions.contains_key(&req.camera) {
                continue;
            }
            let warm = Arc::new(Warm {
                camera: req.camera.clone(),
                key: key_of(&req),
                state: Mutex::new(State {
                    gop: Vec::new(),
                    gop_bytes: 0,
                    generation: 0,
                    need_keyframe: true,
                    decoded_once: false,
                    phase: Phase::Connecting,
                    note: None,
                    cache: Vec::new(),
                    frames_in: 0,
                }),
                changed: Notify::new(),
                cancel: CancellationToken::new(),
                task: Mutex::new(None),
            });
            let task = tokio::spawn(run(
                warm.clone(),
                req.clone(),
                self.native.clone(),
                self.cfg.clone(),
            ));
            *warm.task.lock().expect("task lock") = Some(task);
            tracing::info!(camera = %req.camera, "warm RTSP session opened");
            sessions.insert(req.camera.clone(), warm);
        }
    }

    /// Close `camera`'s session, if it has one (it was edited or deleted).
    pub fn close(&self, camera: &CameraId) {
        if let Some(w) = self.sessions.lock().expect("sessions lock").remove(camera) {
            w.close();
        }
    }

    /// Close every session (shutdown).
    pub fn close_all(&self) {
        for (_, w) in self.sessions.lock().expect("sessions lock").drain() {
            w.close();
        }
    }
}

/// The reconnect delay after `failures` failed attempts in a row: 1 s doubling to 30 s, or after
/// an authentication failure 1 min doubling to 1 h.
pub fn backoff(failures: u32, auth: bool) -> Duration {
    let n = failures.saturating_sub(1).min(12);
    if auth {
        Duration::from_secs((60u64 << n).min(3600))
    } else {
        Duration::from_secs((1u64 << n).min(30))
    }
}

/// One warm session's life: connect, read, reconnect, until cancelled.
async fn run(warm: Arc<Warm>, req: GrabRequest, native: Arc<NativeSource>, cfg: RtspConfig) {
    let mut failures = 0u32;
    let connect_limit = Duration::from_secs(20);
    while !warm.cancel.is_cancelled() {
        let mut req = req.clone();
        req.deadline = Instant::now() + connect_limit;
        let opened = tokio::select! {
            _ = warm.cancel.cancelled() => return,
            r = tokio::time::timeout(connect_limit, open(&req, native.group(&req.camera), native.allow_metadata_hosts)) => r,
        };
        let err = match opened {
            Err(_) => CaptureError::Timeout(format!(
                "camera {}: {}: the camera did not answer within {} s",
                req.camera,
                req.shown_url(),
                connect_limit.as_secs()
            )),
            Ok(Err(NativeError::Unsupported(why))) => {
                tracing::info!(camera = %warm.camera, reason = %why, "warm RTSP session ended: the native path cannot read this stream");
                warm.set_phase(Phase::Unsupported(why));
                return;
            }
            Ok(Err(NativeError::Capture(e))) => e,
            Ok(Ok(mut s)) => {
                {
                    let mut st = warm.state.lock().expect("warm state");
                    st.generation += 1;
                    st.need_keyframe = true;
                    if st.phase != Phase::Playing {
                        st.phase = Phase::Connecting;
                    }
                }
                let mut got_frames = false;
                let e = loop {
                    let next = tokio::select! {
                        _ = warm.cancel.cancelled() => return,
                        r = tokio::time::timeout(cfg.stall, s.next_frame(&req)) => r,
                    };
                    match next {
                        Err(_) => {
                            break CaptureError::Timeout(format!(
                                "camera {}: {}: no packet for {} s (HELDAR_RTSP_STALL_S)",
                                req.camera,
                                req.shown_url(),
                                cfg.stall.as_secs()
                            ))
                        }
                        Ok(Err(NativeError::Unsupported(why))) => {
                            warm.set_phase(Phase::Unsupported(why));
                            return;
                        }
                        Ok(Err(NativeError::Capture(e))) => break e,
                        Ok(Ok(Next::Frame(f, at))) => {
                            if !got_frames {
                                got_frames = true;
                                failures = 0;
                            }
                            warm.push(f, at, &cfg);
                        }
                        Ok(Ok(Next::Other)) => {}
                    }
                };
                e
            }
        };
        failures += 1;
        let auth = matches!(err, CaptureError::AuthFailed(_));
        let wait = backoff(failures, auth);
        tracing::debug!(camera = %warm.camera, error = %err, retry_in_s = wait.as_secs(), "warm RTSP session lost; reconnecting");
        warm.set_phase(Phase::Failing(err));
        tokio::select! {
            _ = warm.cancel.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(ms: i64) -> Unit {
        Unit {
            data: Bytes::from_static(b"x"),
            taken_at: DateTime::from_timestamp_millis(1_000_000 + ms).unwrap(),
        }
    }

    #[test]
    fn the_frame_at_a_slot_is_the_newest_at_or_before_it() {
        let gop: Vec<Unit> = [0, 66, 133, 200].into_iter().map(unit).collect();
        let t = |ms: i64| DateTime::from_timestamp_millis(1_000_000 + ms).unwrap();
        assert_eq!(pick_units(&gop, t(150), RtspFrameMode::Exact), Some(3));
        assert_eq!(pick_units(&gop, t(66), RtspFrameMode::Exact), Some(2));
        assert_eq!(pick_units(&gop, t(1_100), RtspFrameMode::Exact), Some(4));
        // Every frame after the slot (a fresh session): the keyframe.
        assert_eq!(pick_units(&gop, t(-50), RtspFrameMode::Exact), Some(1));
        assert_eq!(pick_units(&gop, t(150), RtspFrameMode::Keyframe), Some(1));
        assert_eq!(pick_units(&[], t(150), RtspFrameMode::Exact), None);
        // The newest frame is more than a second before the slot (a stalled session): not
        // served; the wait goes on for a frame after the slot.
        assert_eq!(pick_units(&gop, t(5_000), RtspFrameMode::Exact), None);
        assert_eq!(pick_units(&gop, t(5_000), RtspFrameMode::Keyframe), None);
        // … and a frame after the slot, when one arrived, is the nearest.
        let late: Vec<Unit> = [0, 66, 2_000].into_iter().map(unit).collect();
        assert_eq!(pick_units(&late, t(1_500), RtspFrameMode::Exact), Some(3));
    }

    #[test]
    fn reconnects_back_off_and_auth_failures_back_off_longer() {
        let s = |n, a| backoff(n, a).as_secs();
        assert_eq!(
            [s(1, false), s(2, false), s(6, false), s(20, false)],
            [1, 2, 30, 30]
        );
        assert_eq!(
            [s(1, true), s(2, true), s(7, true), s(30, true)],
            [60, 120, 3600, 3600]
        );
    }
}
