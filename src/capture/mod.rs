//! Capture: turning a camera into one validated JPEG within a deadline (docs/design.md §6).
//!
//! [`FrameSource`] is the back-end contract: [`http::HttpSource`] (snapshot URLs, Basic and Digest
//! auth, pooled connections) and [`ffmpeg::FfmpegSource`] (one ffmpeg process per RTSP grab).
//! Both decide TLS trust (a camera's `tls_verify`) through [`tls`], so they accept the same
//! certificates. [`Capturer`] sits in front of them and owns the rules every capture obeys, whoever asks for it
//! (`ops::frames`, for the scheduler, the live-snapshot API and the demo):
//!
//! - at most one capture per camera in flight (cameras serve few parallel sessions);
//! - two lanes of at most `HELDAR_CAPTURE_CONCURRENCY` captures in flight each (ffmpeg has its
//!   own limit): one for cameras in good standing (whose last capture gave a frame, or that have
//!   not been captured yet), one for cameras whose last capture failed. However many cameras are
//!   dead, they wait on the failing lane's permits and never on the healthy cameras' ones: a
//!   dead camera holds its permit until the deadline, and with one shared limit a few dozen
//!   dead cameras took every permit and the healthy cameras' slots passed while they waited;
//! - the limit is a file-descriptor budget, not a CPU one (`auto`: a quarter of the open-file
//!   limit, 64 to 4,096): a capture waiting on the network costs a socket and a small task, so
//!   the first failure of a whole building of cameras at once fits beside the healthy ones;
//! - one deadline (`HELDAR_CAPTURE_TIMEOUT_S`) covering the wait and the grab; a back-end that
//!   overruns is dropped, which kills its ffmpeg process;
//! - every result is a validated JPEG or a typed [`CaptureError`] whose message has the camera's
//!   credentials masked.
//!
//! Capture touches no database: recording the outcome in `camera_status` is `ops::frames`'s job,
//! so a live frame is returned the moment it is validated.
//!
//! One camera failing never affects another: failures are values, not panics, and the only
//! shared resources are the bounded semaphores.

pub mod challenge;
pub mod ffmpeg;
pub mod hosts;
pub mod http;
pub mod jpeg;
pub mod look;
pub mod multipart;
pub mod native;
pub mod tls;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::camera::{self, mask};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::models::{Camera, CameraId, SnapshotSource, Stream, Vendor};

/// A validated JPEG frame.
#[derive(Debug, Clone)]
pub struct Frame {
    pub bytes: Bytes,
    pub width: u16,
    pub height: u16,
    /// When the camera captured the picture, if the back-end knows (the native RTSP path does:
    /// the frame's RTP time on the wall clock, docs/rtsp.md). `None`: the capture's start is
    /// the frame's time.
    pub taken_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl Frame {
    /// Validate `bytes` as a JPEG and wrap them. The frame ends at the JPEG's end-of-image
    /// marker: bytes after it (a vendor trailer, padding) are dropped ([`jpeg::parse`]).
    ///
    /// # Errors
    /// [`CaptureError::BadResponse`] saying why the bytes are not a complete JPEG.
    pub fn from_jpeg(bytes: Bytes) -> Result<Frame, CaptureError> {
        let j = jpeg::parse(&bytes).map_err(CaptureError::BadResponse)?;
        Ok(Frame {
            bytes: bytes.slice(..j.len),
            width: j.width,
            height: j.height,
            taken_at: None,
        })
    }
}

/// Why a camera gave no frame. Messages are sentences an operator can act on, with credentials
/// masked.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum CaptureError {
    #[error("{0}")]
    Unreachable(String),
    #[error("{0}")]
    Timeout(String),
    #[error("{0}")]
    AuthFailed(String),
    #[error("{0}")]
    BadResponse(String),
    #[error("{0}")]
    NoSource(String),
    #[error("{0}")]
    FfmpegMissing(String),
    /// The TLS handshake with the camera failed; the sentence names the certificate problem
    /// (unknown issuer, expired, wrong host name, not the pinned one…). Code `tls`. When the
    /// camera presented a certificate that was refused, `fingerprint` is its SHA-256
    /// (`sha256:AB:CD:…`, see [`tls`]), for the operator to confirm and pin.
    #[error("{message}")]
    Tls {
        message: String,
        fingerprint: Option<String>,
    },
    /// The camera URL points at a host Heldar never fetches from (a cloud instance-metadata
    /// endpoint, see [`hosts`]). Code `forbidden_host`.
    #[error("{0}")]
    ForbiddenHost(String),
}

impl CaptureError {
    /// The machine code of the API's error body.
    pub fn code(&self) -> &'static str {
        match self {
            CaptureError::Unreachable(_) => "unreachable",
            CaptureError::Timeout(_) => "timeout",
            CaptureError::AuthFailed(_) => "auth_failed",
            CaptureError::BadResponse(_) => "bad_response",
            CaptureError::NoSource(_) => "no_source",
            CaptureError::FfmpegMissing(_) => "ffmpeg_missing",
            CaptureError::Tls { .. } => "tls",
            CaptureError::ForbiddenHost(_) => "forbidden_host",
        }
    }

    fn map_message(self, f: impl FnOnce(String) -> String) -> CaptureError {
        match self {
            CaptureError::Unreachable(m) => CaptureError::Unreachable(f(m)),
            CaptureError::Timeout(m) => CaptureError::Timeout(f(m)),
            CaptureError::AuthFailed(m) => CaptureError::AuthFailed(f(m)),
            CaptureError::BadResponse(m) => CaptureError::BadResponse(f(m)),
            CaptureError::NoSource(m) => CaptureError::NoSource(f(m)),
            CaptureError::FfmpegMissing(m) => CaptureError::FfmpegMissing(f(m)),
            CaptureError::Tls {
                message,
                fingerprint,
            } => CaptureError::Tls {
                message: f(message),
                fingerprint,
            },
            CaptureError::ForbiddenHost(m) => CaptureError::ForbiddenHost(f(m)),
        }
    }

    /// The SHA-256 fingerprint of a certificate the camera presented and Heldar refused (only
    /// on `tls` errors).
    pub fn tls_fingerprint(&self) -> Option<&str> {
        match self {
            CaptureError::Tls { fingerprint, .. } => fingerprint.as_deref(),
            _ => None,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            CaptureError::Unreachable(m)
            | CaptureError::Timeout(m)
            | CaptureError::AuthFailed(m)
            | CaptureError::BadResponse(m)
            | CaptureError::NoSource(m)
            | CaptureError::FfmpegMissing(m)
            | CaptureError::Tls { message: m, .. }
            | CaptureError::ForbiddenHost(m) => m,
        }
    }
}

/// What a capture is for.
#[derive(Debug, Clone, Copy, Default)]
pub struct Want {
    /// The slot the frame is for: a warm RTSP session serves the newest frame at that time.
    /// `None`: the newest frame now (a live request).
    pub at: Option<chrono::DateTime<chrono::Utc>>,
    /// A live request may be answered by a warm session's decode of a frame at most this old
    /// (`?max_age_ms=`); `None`: decode the newest frame.
    pub max_age: Option<Duration>,
    /// The camera source a schedule asked for (`stream`); `None`: the camera's own choice
    /// ([`plan`]). See [`plan_stream`].
    pub stream: Option<Stream>,
}

/// What a back-end needs for one grab.
#[derive(Debug, Clone)]
pub struct GrabRequest {
    pub camera: CameraId,
    pub vendor: Vendor,
    /// May carry userinfo; back-ends decide how credentials travel.
    pub url: url::Url,
    pub username: Option<String>,
    pub password: Option<String>,
    pub max_bytes: usize,
    pub deadline: Instant,
    /// How the camera's TLS certificate is checked (https, rtsps): [`tls`].
    pub tls: tls::Trust,
    /// Which frame of a warm RTSP session serves a slot.
    pub frame_mode: crate::models::RtspFrameMode,
}

impl GrabRequest {
    /// Credentials: the camera's own, else those embedded in the URL.
    pub fn credentials(&self) -> Option<(String, String)> {
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        match (&self.username, &self.password) {
            (Some(u), p) => Some((u.clone(), p.clone().unwrap_or_default())),
            (None, _) if !self.url.username().is_empty() => Some((
                decode(self.url.username()),
                decode(self.url.password().unwrap_or("")),
            )),
            _ => None,
        }
    }

    /// The URL for messages: credentials masked.
    pub fn shown_url(&self) -> String {
        mask::mask_url(self.url.as_str())
    }
}

/// A capture back-end: one JPEG from one camera before `req.deadline`, or why not.
pub trait FrameSource: Send + Sync + 'static {
    fn grab<'a>(&'a self, req: &'a GrabRequest) -> BoxFuture<'a, Result<Frame, CaptureError>>;
}

/// Which back-end and URL a camera's capture uses.
pub fn plan(camera: &Camera) -> Result<(SnapshotSource, String), CaptureError> {
    let urls = camera::effective_urls(camera);
    let stream = urls.sub_stream.clone().or(urls.main_stream.clone());
    // `auto` prefers the native path for a stream: it falls back to ffmpeg by itself for
    // what it cannot read (rtsps, H.265, MJPEG…), see `Capturer::grab_native`.
    let pick = match camera.snapshot_source {
        SnapshotSource::Http => urls.snapshot.map(|u| (SnapshotSource::Http, u)),
        SnapshotSource::Rtsp => stream.map(|u| (SnapshotSource::Rtsp, u)),
        SnapshotSource::Native => stream.map(|u| (SnapshotSource::Native, u)),
        SnapshotSource::Auto => urls
            .snapshot
            .map(|u| (SnapshotSource::Http, u))
            .or(stream.map(|u| (SnapshotSource::Native, u))),
    };
    pick.ok_or_else(|| {
        CaptureError::NoSource(format!(
            "camera {} has no {} URL to capture from",
            camera.id,
            match camera.snapshot_source {
                SnapshotSource::Http => "snapshot",
                SnapshotSource::Rtsp | SnapshotSource::Native => "stream",
                SnapshotSource::Auto => "snapshot or stream",
            }
        ))
    })
}

/// Which back-end and URL a capture asking for `stream` uses. `None` is [`plan`]: the camera's
/// own choice. `snapshot` is the camera's HTTP snapshot URL. `main` and `sub` are its stream
/// URLs, read as the camera reads streams: with ffmpeg when its `snapshot_source` is `rtsp`,
/// else natively (falling back to ffmpeg for what the native path cannot read).
pub fn plan_stream(
    camera: &Camera,
    stream: Option<Stream>,
) -> Result<(SnapshotSource, String), CaptureError> {
    let Some(stream) = stream else {
        return plan(camera);
    };
    let urls = camera::effective_urls(camera);
    let (url, what) = match stream {
        Stream::Main => (urls.main_stream, "main-stream"),
        Stream::Sub => (urls.sub_stream, "sub-stream"),
        Stream::Snapshot => (urls.snapshot, "snapshot"),
    };
    let url = url.ok_or_else(|| {
        CaptureError::NoSource(format!(
            "camera {} has no {what} URL, which this schedule's stream asks for",
            camera.id
        ))
    })?;
    let kind = match (stream, camera.snapshot_source) {
        (Stream::Snapshot, _) => SnapshotSource::Http,
        (_, SnapshotSource::Rtsp) => SnapshotSource::Rtsp,
        _ => SnapshotSource::Native,
    };
    Ok((kind, url))
}

/// The front door of every capture (see the module docs for the rules it keeps).
pub struct Capturer {
    http: Arc<dyn FrameSource>,
    rtsp: Arc<dyn FrameSource>,
    native: Arc<native::NativeSource>,
    warm: native::session::WarmSessions,
    /// Cameras the native path cannot read, and why: they go to ffmpeg until edited.
    fallbacks: Mutex<HashMap<CameraId, String>>,
    /// Permits for cameras in good standing.
    good: Semaphore,
    /// Permits for cameras whose last capture failed.
    failing_lane: Semaphore,
    /// Cameras whose last capture failed.
    failing: Mutex<std::collections::HashSet<CameraId>>,
    per_camera: Mutex<HashMap<CameraId, Weak<tokio::sync::Mutex<()>>>>,
    timeout: Duration,
    max_bytes: usize,
    metrics: Arc<Metrics>,
}

impl Capturer {
    /// The real back-ends, configured from `config`.
    pub fn new(config: &Config, metrics: Arc<Metrics>) -> anyhow::Result<Capturer> {
        Ok(Capturer::with_sources(
            config,
            metrics,
            Arc::new(http::HttpSource::new(config.allow_metadata_hosts)?),
            Arc::new(
                ffmpeg::FfmpegSource::new(config.ffmpeg_bin.clone(), config.ffmpeg_concurrency)
                    .allowing_metadata_hosts(config.allow_metadata_hosts),
            ),
        ))
    }

    /// Custom back-ends (tests, benchmarks).
    pub fn with_sources(
        config: &Config,
        metrics: Arc<Metrics>,
        http: Arc<dyn FrameSource>,
        rtsp: Arc<dyn FrameSource>,
    ) -> Capturer {
        let native = Arc::new(native::NativeSource::new(
            config.rtsp.decode_concurrency,
            config.allow_metadata_hosts,
        ));
        Capturer {
            http,
            rtsp,
            warm: native::session::WarmSessions::new(native.clone(), config.rtsp.clone()),
            native,
            fallbacks: Mutex::new(HashMap::new()),
            good: Semaphore::new(config.capture_concurrency),
            failing_lane: Semaphore::new(config.capture_concurrency),
            failing: Mutex::new(std::collections::HashSet::new()),
            per_camera: Mutex::new(HashMap::new()),
            timeout: config.capture_timeout,
            max_bytes: config.capture_max_bytes,
            metrics,
        }
    }

    fn camera_lock(&self, id: &CameraId) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.per_camera.lock().expect("camera lock map poisoned");
        if let Some(lock) = map.get(id).and_then(Weak::upgrade) {
            return lock;
        }
        if map.len() > 1024 {
            map.retain(|_, w| w.strong_count() > 0);
        }
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        map.insert(id.clone(), Arc::downgrade(&lock));
        lock
    }

    /// Forget what is known of `camera`'s stream (it was edited or deleted): a fallback to
    /// ffmpeg is decided again at its next capture.
    pub fn camera_changed(&self, camera: &CameraId) {
        self.fallbacks
            .lock()
            .expect("fallbacks lock")
            .remove(camera);
        self.warm.close(camera);
    }

    /// The warm RTSP sessions (the `rtsp_warm` service decides which cameras have one).
    pub fn warm_sessions(&self) -> &native::session::WarmSessions {
        &self.warm
    }

    /// The request a native capture of `camera` would make, if its stream is read natively
    /// (not for cameras that fell back to ffmpeg). Its deadline is a placeholder.
    pub fn native_request(&self, camera: &Camera) -> Option<GrabRequest> {
        let (kind, _) = plan(camera).ok()?;
        if kind != SnapshotSource::Native || self.fallback_of(&camera.id).is_some() {
            return None;
        }
        let (_, url) = plan(camera).ok()?;
        let req = self
            .request(camera, &url, Instant::now() + self.timeout)
            .ok()?;
        (req.url.scheme() == "rtsp").then_some(req)
    }

    /// Whether `camera`'s stream is read natively and has no warm session open for it.
    pub fn warm_missing(&self, camera: &Camera) -> bool {
        self.native_request(camera)
            .is_some_and(|req| self.warm.get(&req).is_none())
    }

    /// The grab request of `camera` for `url` (one of its sources).
    fn request(
        &self,
        camera: &Camera,
        url: &str,
        deadline: Instant,
    ) -> Result<GrabRequest, CaptureError> {
        let url = url::Url::parse(url).map_err(|e| {
            CaptureError::NoSource(format!(
                "camera {}: URL {} is not valid ({e})",
                camera.id,
                mask::mask_url(url)
            ))
        })?;
        Ok(GrabRequest {
            camera: camera.id.clone(),
            vendor: camera.vendor,
            url,
            username: camera.username.clone(),
            password: camera.password.clone(),
            max_bytes: self.max_bytes,
            deadline,
            tls: tls::Trust::of(camera),
            frame_mode: camera.rtsp_frame_mode,
        })
    }

    /// Why `camera`'s stream is read by ffmpeg although the native path was asked for.
    pub fn fallback_of(&self, camera: &CameraId) -> Option<String> {
        self.fallbacks
            .lock()
            .expect("fallbacks lock")
            .get(camera)
            .cloned()
    }

    /// How `camera`'s stream is read, for its API view (`None` when it is not captured from
    /// a stream).
    pub fn rtsp_view(&self, camera: &Camera) -> Option<crate::models::RtspView> {
        let (kind, _) = plan(camera).ok()?;
        match kind {
            SnapshotSource::Rtsp => Some(crate::models::RtspView {
                backend: "ffmpeg".into(),
                fallback_reason: None,
                session: "cold".into(),
                note: None,
            }),
            SnapshotSource::Native => {
                let fallback = self.fallback_of(&camera.id);
                let warm = self.warm.of(&camera.id).filter(|_| fallback.is_none());
                Some(crate::models::RtspView {
                    backend: if fallback.is_some() {
                        "ffmpeg"
                    } else {
                        "native"
                    }
                    .into(),
                    fallback_reason: fallback,
                    session: if warm.is_some() { "warm" } else { "cold" }.into(),
                    note: warm.and_then(|w| w.note()),
                })
            }
            _ => None,
        }
    }

    /// A native grab, or ffmpeg's when the native path cannot read the stream (the reason is
    /// logged once per camera and kept for its status).
    async fn grab_native(&self, req: &GrabRequest, want: Want) -> Result<Frame, CaptureError> {
        if self.fallback_of(&req.camera).is_some() {
            return self.rtsp.grab(req).await;
        }
        let got = match self.warm.get(req) {
            Some(w) => {
                let ask = native::session::Ask {
                    at: want.at,
                    mode: req.frame_mode,
                    max_age: want.max_age,
                };
                let decodes = self.native.decode_permits();
                w.frame(req, ask, &decodes).await
            }
            None => self.native.grab_cold(req).await,
        };
        match got {
            Ok(f) => Ok(f),
            Err(native::NativeError::Capture(e)) => Err(e),
            Err(native::NativeError::Unsupported(why)) => {
                self.note_fallback(&req.camera, why);
                self.rtsp.grab(req).await
            }
        }
    }

    /// A native grab of a stream that is not the camera's own source (a schedule's `stream`):
    /// cold, since the warm session (one per camera) reads the camera's own source and must not
    /// serve another stream's slot; ffmpeg when the native path cannot read it, decided anew
    /// each time (the camera's remembered fallback is about its own source).
    async fn grab_other_stream(&self, req: &GrabRequest) -> Result<Frame, CaptureError> {
        match self.native.grab_cold(req).await {
            Ok(f) => Ok(f),
            Err(native::NativeError::Capture(e)) => Err(e),
            Err(native::NativeError::Unsupported(why)) => {
                tracing::debug!(camera = %req.camera, reason = %why,
                    "this schedule's stream is read with ffmpeg");
                self.rtsp.grab(req).await
            }
        }
    }

    /// Remember (and log, the first time) that `camera` falls back to ffmpeg.
    fn note_fallback(&self, camera: &CameraId, why: String) {
        let mut fallbacks = self.fallbacks.lock().expect("fallbacks lock");
        if fallbacks.get(camera) != Some(&why) {
            tracing::warn!(camera = %camera, reason = %why,
                "native RTSP cannot read this camera's stream; it is captured with ffmpeg");
            fallbacks.insert(camera.clone(), why);
        }
    }

    /// Whether `camera`'s last capture failed (it then waits in the failing lane).
    pub fn is_failing(&self, camera: &CameraId) -> bool {
        self.failing
            .lock()
            .expect("failing set poisoned")
            .contains(camera)
    }

    /// Grab one frame from `camera` now, waiting for its previous capture if one is in flight.
    /// Failures are logged (WARN) and counted here; recording them is the caller's.
    pub async fn capture(&self, camera: &Camera) -> Result<Frame, CaptureError> {
        self.capture_for(camera, Want::default()).await
    }

    /// Grab the frame `want` asks for (a slot's, a live one that may come from a recent
    /// decode): see [`Capturer::capture`].
    pub async fn capture_for(&self, camera: &Camera, want: Want) -> Result<Frame, CaptureError> {
        let started = Instant::now();
        let deadline = started + self.timeout;
        let secrets = camera::secrets(camera);
        let result = self.capture_inner(camera, deadline, want).await;
        let result = result.map_err(|e| e.map_message(|m| mask::mask_text(&m, &secrets)));
        {
            let mut failing = self.failing.lock().expect("failing set poisoned");
            if result.is_ok() {
                failing.remove(&camera.id);
            } else if !failing.contains(&camera.id) {
                failing.insert(camera.id.clone());
            }
        }
        self.metrics
            .observe_capture(started.elapsed().as_secs_f64());
        self.metrics.capture(
            camera.id.as_str(),
            result.as_ref().map_or_else(|e| e.code(), |_| "ok"),
        );
        match &result {
            Ok(frame) => tracing::debug!(camera = %camera.id, bytes = frame.bytes.len(),
                ms = started.elapsed().as_millis() as u64, "captured"),
            Err(e) => {
                // At DEBUG: `ops::frames` logs what matters to an operator — a camera's state
                // changes and a summary of repeats — not one WARN per failed slot.
                tracing::debug!(camera = %camera.id, code = e.code(), error = %e, "capture failed")
            }
        }
        result
    }

    async fn capture_inner(
        &self,
        camera: &Camera,
        deadline: Instant,
        want: Want,
    ) -> Result<Frame, CaptureError> {
        let (kind, url) = plan_stream(camera, want.stream)?;
        // The camera's own source, whatever the schedule called it: the warm session and the
        // remembered fallback are about that one.
        let own = want.stream.is_none() || plan(camera).is_ok_and(|p| p == (kind, url.clone()));
        let req = self.request(camera, &url, deadline)?;
        let timeout_err = |step: &str| {
            CaptureError::Timeout(format!(
                "camera {}: no frame within {} s ({step}, {})",
                camera.id,
                self.timeout.as_secs(),
                req.shown_url()
            ))
        };
        let work = async {
            let lock = self.camera_lock(&camera.id);
            let _one_per_camera = lock.lock().await;
            let lane = if self.is_failing(&camera.id) {
                &self.failing_lane
            } else {
                &self.good
            };
            let _permit = lane.acquire().await.expect("semaphore never closed");
            match kind {
                SnapshotSource::Rtsp => self.rtsp.grab(&req).await,
                SnapshotSource::Native if own => self.grab_native(&req, want).await,
                SnapshotSource::Native => self.grab_other_stream(&req).await,
                _ => self.http.grab(&req).await,
            }
        };
        match tokio::time::timeout_at(deadline, work).await {
            Ok(r) => r,
            Err(_) => Err(timeout_err("waiting for the camera")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{CameraCreate, CameraSpec};

    fn camera(body: serde_json::Value) -> Camera {
        let spec =
            CameraSpec::from_create(serde_json::from_value::<CameraCreate>(body).unwrap()).unwrap();
        Camera {
            spec,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn a_schedules_stream_picks_the_url_and_the_reader() {
        let c = camera(serde_json::json!({"id": "gate",
            "snapshot_url": "http://10.0.0.5/snap.jpg",
            "main_stream_url": "rtsp://10.0.0.5/main",
            "sub_stream_url": "rtsp://10.0.0.5/sub"}));
        let http = |u: &str| (SnapshotSource::Http, u.to_string());
        let native = |u: &str| (SnapshotSource::Native, u.to_string());
        assert_eq!(
            plan_stream(&c, None).unwrap(),
            http("http://10.0.0.5/snap.jpg")
        );
        assert_eq!(
            plan_stream(&c, Some(Stream::Main)).unwrap(),
            native("rtsp://10.0.0.5/main")
        );
        assert_eq!(
            plan_stream(&c, Some(Stream::Sub)).unwrap(),
            native("rtsp://10.0.0.5/sub")
        );
        assert_eq!(
            plan_stream(&c, Some(Stream::Snapshot)).unwrap(),
            http("http://10.0.0.5/snap.jpg")
        );
        // A camera read with ffmpeg reads every stream with ffmpeg.
        let c = camera(serde_json::json!({"id": "yard", "snapshot_source": "rtsp",
            "main_stream_url": "rtsp://10.0.0.6/main"}));
        assert_eq!(
            plan_stream(&c, Some(Stream::Main)).unwrap(),
            (SnapshotSource::Rtsp, "rtsp://10.0.0.6/main".into())
        );
        let e = plan_stream(&c, Some(Stream::Sub)).unwrap_err();
        assert_eq!(e.code(), "no_source");
        assert!(e.message().contains("sub-stream"), "{e}");
    }
}
