//! The built-in demo camera (`heldar serve --demo`): a fake camera serving a moving test pattern
//! with the time on it over real loopback HTTP, registered as camera `demo`, so a newcomer with no
//! camera sees live frames at once.
//!
//! When it first creates the camera it also gives it a 10-second schedule, so stored frames
//! arrive at once too. It runs as a supervised service. Each run binds a fresh port and points the `demo` camera's
//! snapshot URL at it; a camera named `demo` that the operator made themselves (anything but our
//! loopback URL) is left alone with a warning.

use tokio_util::sync::CancellationToken;

use crate::error::OpError;
use crate::fakecam::{FakeAuth, FakeCamera, FrameSupply};
use crate::models::{CameraCreate, CameraId, CameraPatch, CameraSpec, ScheduleCreate};
use crate::ops::{self, Ops};

pub const DEMO_CAMERA_ID: &str = "demo";
const DEMO_NAME: &str = "Demo camera";
const DEMO_INTERVAL_S: i64 = 10;

/// Start the demo camera and register it. `heldar serve` calls this before it starts listening,
/// so the very first request already finds the camera.
pub async fn start(ops: &Ops) -> anyhow::Result<FakeCamera> {
    let cam = FakeCamera::start(
        FakeAuth::None,
        FrameSupply::Pattern {
            width: 640,
            height: 360,
            label: "heldar demo".into(),
        },
    )
    .await?;
    register(ops, &cam.snapshot_url()).await?;
    tracing::info!(camera = DEMO_CAMERA_ID, url = %cam.snapshot_url(), "demo camera is serving");
    Ok(cam)
}

/// One supervised run: serve `started` (or a fresh camera, after a restart) until `token` is
/// cancelled.
pub async fn run(
    ops: Ops,
    started: Option<FakeCamera>,
    token: CancellationToken,
) -> anyhow::Result<()> {
    let cam = match started {
        Some(cam) => cam,
        None => start(&ops).await?,
    };
    token.cancelled().await;
    cam.stop().await;
    Ok(())
}

/// Create the `demo` camera, or repoint ours at this run's port.
async fn register(ops: &Ops, url: &str) -> anyhow::Result<()> {
    let id = CameraId::parse(DEMO_CAMERA_ID).expect("a valid slug");
    match ops::cameras::one_for_capture(ops, &id).await? {
        None => {
            let spec = CameraSpec::from_create(CameraCreate {
                id: DEMO_CAMERA_ID.into(),
                name: Some(DEMO_NAME.into()),
                vendor: Some("generic".into()),
                address: None,
                rtsp_port: None,
                http_port: None,
                username: None,
                password: None,
                main_stream_url: None,
                sub_stream_url: None,
                snapshot_url: Some(url.into()),
                snapshot_source: Some("http".into()),
                tls_verify: None,
                tls_fingerprint: None,
            })?;
            match ops::cameras::create_spec(ops, &spec).await {
                Ok(_) => {
                    // A newcomer should see frames arrive at once: one every 10 s.
                    let body = ScheduleCreate {
                        interval_seconds: Some(DEMO_INTERVAL_S),
                        enabled: Some(true),
                    };
                    let schedule = ops::schedules::create(ops, &id, body).await?;
                    tracing::info!(schedule = %schedule.id, "demo schedule: a frame every 10 s");
                }
                Err(OpError::Conflict(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Some((camera, _)) => {
            let ours = camera.snapshot_url.as_deref().is_some_and(|u| {
                u.starts_with("http://127.0.0.1:") && u.ends_with("/snapshot.jpg")
            });
            if !ours {
                tracing::warn!(
                    camera = DEMO_CAMERA_ID,
                    "a camera named `demo` exists and is not the demo camera; leaving it alone"
                );
                return Ok(());
            }
            let spec = CameraSpec::from_patch(
                &camera,
                CameraPatch {
                    snapshot_url: Some(Some(url.into())),
                    ..CameraPatch::default()
                },
            )?;
            ops::cameras::update_spec(ops, &camera, &spec).await?;
        }
    }
    Ok(())
}
