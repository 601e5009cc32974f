//! The built-in demo camera (`heldar serve --demo`): a fake camera serving a moving test pattern
//! with the time on it over real loopback HTTP, registered as camera `demo`, so a newcomer with no
//! camera sees live frames at once.
//!
//! When it first creates the camera it also gives it a 10-second schedule, so stored frames
//! arrive at once too. It runs as a supervised service. Each run binds a fresh port and points the `demo` camera's
//! snapshot URL at it; a camera named `demo` that the operator made themselves (anything but our
//! loopback URL) is left alone with a warning.
//!
//! **It exists only while `--demo` is given.** Its camera points at a port of this process, so
//! after a start without `--demo` it could only fail every 10 s forever: [`retire`] deletes it
//! then (with its schedule and its frames, which are test patterns), and says so once.

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

/// Is `camera` the demo camera Heldar made (its id, and a snapshot URL on this machine's
/// loopback that serves the demo's path)?
fn is_ours(camera: &CameraSpec) -> bool {
    camera.id.as_str() == DEMO_CAMERA_ID
        && camera
            .snapshot_url
            .as_deref()
            .is_some_and(|u| u.starts_with("http://127.0.0.1:") && u.ends_with("/snapshot.jpg"))
}

/// A start without `--demo`: delete the demo camera if an earlier `--demo` run left it (its
/// port is gone with that run). A camera the operator named `demo` is not touched, nor the demo
/// camera of another node's `--demo` run that is still going (its unexpired lease says so: in
/// a fleet, that node serves it and captures it).
pub async fn retire(ops: &Ops) -> anyhow::Result<()> {
    let id = CameraId::parse(DEMO_CAMERA_ID).expect("a valid slug");
    if let Some((camera, _)) = ops::cameras::one_for_capture(ops, &id).await? {
        let me = ops.config.node.id.as_str();
        let held_elsewhere = crate::db::nodes::leases(&ops.db, ops.clock.now())
            .await?
            .iter()
            .any(|(cam, node)| cam == DEMO_CAMERA_ID && node != me);
        if is_ours(&camera) && !held_elsewhere {
            ops::cameras::delete(ops, &id).await?;
            tracing::info!(
                camera = DEMO_CAMERA_ID,
                "removed the demo camera of an earlier `--demo` run (it exists only while Heldar runs with --demo)"
            );
        }
    }
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
                snapshot_url: Some(url.into()),
                snapshot_source: Some("http".into()),
                ..CameraCreate::default()
            })?;
            match ops::cameras::create_spec(ops, &spec).await {
                Ok(_) => {
                    // A newcomer should see frames arrive at once: one every 10 s.
                    let body = ScheduleCreate {
                        interval_seconds: Some(DEMO_INTERVAL_S),
                        enabled: Some(true),
                        ..ScheduleCreate::default()
                    };
                    let schedule = ops::schedules::create(ops, &id, body).await?;
                    tracing::info!(schedule = %schedule.id, "demo schedule: a frame every 10 s");
                }
                Err(OpError::Conflict(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Some((camera, _)) => {
            if !is_ours(&camera) {
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
