//! Capture: turning a camera into one validated JPEG within a deadline (DESIGN.md §6).
//!
//! [`FrameSource`] is the back-end contract: [`http::HttpSource`] (snapshot URLs, Basic and Digest
//! auth, pooled connections) and [`ffmpeg::FfmpegSource`] (one ffmpeg process per RTSP grab).
//! [`Capturer`] sits in front of them and owns the rules every capture obeys, whoever asks for it
//! (the live-snapshot API today, the scheduler next):
//!
//! - at most one capture per camera in flight (cameras serve few parallel sessions), and
//!   concurrent *live* requests for one camera share one capture ([`Capturer::capture_shared`]);
//! - at most `HELDAR_CAPTURE_CONCURRENCY` captures in flight in all (ffmpeg has its own limit);
//! - one deadline (`HELDAR_CAPTURE_TIMEOUT_S`) covering the wait and the grab; a back-end that
//!   overruns is dropped, which kills its ffmpeg process;
//! - every result is a validated JPEG or a typed [`CaptureError`] whose message has the camera's
//!   credentials masked;
//! - the outcome is written to `camera_status` (through the database writer, `db::writer`).
//!
//! One camera failing never affects another: failures are values, not panics, and the only
//! shared resources are the bounded semaphores.

pub mod ffmpeg;
pub mod http;
pub mod jpeg;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use futures_util::future::{BoxFuture, FutureExt, Shared};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::camera::{self, mask};
use crate::config::Config;
use crate::db::writer::Writer;
use crate::metrics::Metrics;
use crate::models::{Camera, CameraId, CameraState, SnapshotSource, Vendor};

/// A validated JPEG frame.
#[derive(Debug, Clone)]
pub struct Frame {
    pub bytes: Bytes,
    pub width: u16,
    pub height: u16,
}

impl Frame {
    /// Validate `bytes` as a JPEG and wrap them.
    pub fn from_jpeg(bytes: Bytes) -> Result<Frame, CaptureError> {
        let (width, height) = jpeg::validate(&bytes).map_err(CaptureError::BadResponse)?;
        Ok(Frame {
            bytes,
            width,
            height,
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
        }
    }

    pub fn message(&self) -> &str {
        match self {
            CaptureError::Unreachable(m)
            | CaptureError::Timeout(m)
            | CaptureError::AuthFailed(m)
            | CaptureError::BadResponse(m)
            | CaptureError::NoSource(m)
            | CaptureError::FfmpegMissing(m) => m,
        }
    }
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
    let pick = match camera.snapshot_source {
        SnapshotSource::Http => urls.snapshot.map(|u| (SnapshotSource::Http, u)),
        SnapshotSource::Rtsp => stream.map(|u| (SnapshotSource::Rtsp, u)),
        SnapshotSource::Auto => urls
            .snapshot
            .map(|u| (SnapshotSource::Http, u))
            .or(stream.map(|u| (SnapshotSource::Rtsp, u))),
    };
    pick.ok_or_else(|| {
        CaptureError::NoSource(format!(
            "camera {} has no {} URL to capture from",
            camera.id,
            match camera.snapshot_source {
                SnapshotSource::Http => "snapshot",
                SnapshotSource::Rtsp => "stream",
                SnapshotSource::Auto => "snapshot or stream",
            }
        ))
    })
}

/// One live capture that several requests wait on.
type Flight = Shared<BoxFuture<'static, Result<Frame, CaptureError>>>;

/// Who writes a successful capture's `camera_status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SuccessStatus {
    Record,
    Defer,
}

/// The front door of every capture (see the module docs for the rules it keeps).
pub struct Capturer {
    http: Arc<dyn FrameSource>,
    rtsp: Arc<dyn FrameSource>,
    global: Semaphore,
    per_camera: Mutex<HashMap<CameraId, Weak<tokio::sync::Mutex<()>>>>,
    timeout: Duration,
    max_bytes: usize,
    writer: Writer,
    metrics: Arc<Metrics>,
    /// Live captures in flight, shared by concurrent requests for the same camera.
    flights: Mutex<HashMap<CameraId, Flight>>,
}

impl Capturer {
    /// The real back-ends, configured from `config`.
    pub fn new(config: &Config, writer: Writer, metrics: Arc<Metrics>) -> anyhow::Result<Capturer> {
        Ok(Capturer::with_sources(
            config,
            writer,
            metrics,
            Arc::new(http::HttpSource::new()?),
            Arc::new(ffmpeg::FfmpegSource::new(
                config.ffmpeg_bin.clone(),
                config.ffmpeg_concurrency,
            )),
        ))
    }

    /// Custom back-ends (tests, benchmarks).
    pub fn with_sources(
        config: &Config,
        writer: Writer,
        metrics: Arc<Metrics>,
        http: Arc<dyn FrameSource>,
        rtsp: Arc<dyn FrameSource>,
    ) -> Capturer {
        Capturer {
            http,
            rtsp,
            global: Semaphore::new(config.capture_concurrency),
            per_camera: Mutex::new(HashMap::new()),
            timeout: config.capture_timeout,
            max_bytes: config.capture_max_bytes,
            writer,
            metrics,
            flights: Mutex::new(HashMap::new()),
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

    /// Grab one frame from `camera` now, waiting for its previous capture if one is in flight,
    /// and record the outcome in `camera_status`.
    pub async fn capture(&self, camera: &Camera) -> Result<Frame, CaptureError> {
        self.capture_then(camera, SuccessStatus::Record).await
    }

    /// A live capture shared by everyone asking for the same camera at the same time (single
    /// flight): a hundred dashboard viewers cost the camera one request. A request that arrives
    /// after the shared capture finished starts a new one, so nobody gets a stale frame.
    pub async fn capture_shared(self: &Arc<Self>, camera: &Camera) -> Result<Frame, CaptureError> {
        let shared = {
            let mut flights = self.flights.lock().expect("flights lock poisoned");
            match flights.get(&camera.id) {
                Some(f) => f.clone(),
                None => {
                    let (me, cam) = (self.clone(), camera.clone());
                    // The capture runs on its own task, so it finishes (and releases the camera)
                    // even if every viewer disconnects; it is bounded by the capture deadline, and
                    // the shared future below awaits it.
                    let run = tokio::spawn(async move {
                        let r = me.capture(&cam).await;
                        me.flights
                            .lock()
                            .expect("flights lock poisoned")
                            .remove(&cam.id);
                        r
                    });
                    let id = camera.id.clone();
                    let fut: BoxFuture<'static, Result<Frame, CaptureError>> =
                        Box::pin(async move {
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
        shared.await
    }

    /// Like [`Capturer::capture`], but a success is left for the caller to record together with
    /// its own write (the frame's row), saving the database a round trip per capture. Failures
    /// are recorded here as always.
    pub async fn capture_deferring_success(&self, camera: &Camera) -> Result<Frame, CaptureError> {
        self.capture_then(camera, SuccessStatus::Defer).await
    }

    async fn capture_then(
        &self,
        camera: &Camera,
        success: SuccessStatus,
    ) -> Result<Frame, CaptureError> {
        let started = Instant::now();
        let deadline = started + self.timeout;
        let secrets = camera::secrets(camera);
        let result = self.capture_inner(camera, deadline).await;
        let result = result.map_err(|e| e.map_message(|m| mask::mask_text(&m, &secrets)));
        let now = Utc::now();
        self.metrics
            .observe_capture(started.elapsed().as_secs_f64());
        self.metrics.capture(
            camera.id.as_str(),
            result.as_ref().map_or_else(|e| e.code(), |_| "ok"),
        );
        self.metrics
            .camera_outcome(&camera.id, result.is_ok(), started, now);
        let recorded = match &result {
            Ok(frame) => {
                tracing::debug!(camera = %camera.id, bytes = frame.bytes.len(),
                    ms = started.elapsed().as_millis() as u64, "captured");
                match success {
                    SuccessStatus::Record => self.writer.record_success(&camera.id, now).await,
                    SuccessStatus::Defer => Ok(()),
                }
            }
            Err(e) => {
                tracing::warn!(camera = %camera.id, code = e.code(), error = %e, "capture failed");
                let state = match e {
                    CaptureError::AuthFailed(_) => CameraState::AuthFailed,
                    _ => CameraState::Failing,
                };
                self.writer
                    .record_failure(&camera.id, state, e.message(), now)
                    .await
            }
        };
        if let Err(e) = recorded {
            // The capture's own outcome still stands; the status catches up on the next one.
            tracing::warn!(camera = %camera.id, error = %e, "could not record camera status");
        }
        result
    }

    async fn capture_inner(
        &self,
        camera: &Camera,
        deadline: Instant,
    ) -> Result<Frame, CaptureError> {
        let (kind, url) = plan(camera)?;
        let url = url::Url::parse(&url).map_err(|e| {
            CaptureError::NoSource(format!(
                "camera {}: URL {} is not valid ({e})",
                camera.id,
                mask::mask_url(&url)
            ))
        })?;
        let req = GrabRequest {
            camera: camera.id.clone(),
            vendor: camera.vendor,
            url,
            username: camera.username.clone(),
            password: camera.password.clone(),
            max_bytes: self.max_bytes,
            deadline,
        };
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
            let _permit = self.global.acquire().await.expect("semaphore never closed");
            let source = match kind {
                SnapshotSource::Rtsp => &self.rtsp,
                _ => &self.http,
            };
            source.grab(&req).await
        };
        match tokio::time::timeout_at(deadline, work).await {
            Ok(r) => r,
            Err(_) => Err(timeout_err("waiting for the camera")),
        }
    }
}
