//! A capture cut by the shutdown is not a camera failure: it must not become the camera's last
//! error after a restart (a slot claimed ahead fires in the grace period against a camera that
//! then fails, or a connection is closed under it).

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{spawn_app, wait_for};
use heldar::fakecam::{pattern, Behavior, FakeAuth, FakeCamera, FrameSupply};
use heldar::models::{CameraId, CameraState};
use serde_json::json;

#[tokio::test]
async fn a_capture_that_fails_during_shutdown_is_not_recorded_as_a_camera_failure() {
    let mut app = spawn_app().await;
    let cam = FakeCamera::start(
        FakeAuth::None,
        FrameSupply::Static(Bytes::from(pattern::solid_jpeg(32, 32, [1, 2, 3]))),
    )
    .await
    .unwrap();
    cam.set_behavior(Behavior::Hang);
    app.create_camera(json!({"id": "gate", "snapshot_url": cam.snapshot_url()}))
        .await;
    let r = app
        .post_json(
            "/api/v1/cameras/gate/snapshot-schedules",
            &json!({"interval_seconds": 60}),
        )
        .await;
    assert_eq!(r.status(), 201);
    // The schedule's first capture is waiting on the camera (deadline 2 s) when Heldar is
    // told to stop; it then times out inside the shutdown grace.
    wait_for("the capture in flight", Duration::from_secs(10), || async {
        (cam.in_flight() >= 1).then_some(())
    })
    .await;
    let url = app.state.ops.config.database_url.clone();
    let dir = std::mem::replace(&mut app.dir, tempfile::tempdir().unwrap());
    app.stop().await;

    let pool = heldar::db::connect(&url).await.unwrap();
    let (_, status) = heldar::db::cameras::get(&pool, &CameraId::parse("gate").unwrap())
        .await
        .unwrap()
        .expect("the camera");
    assert_eq!(status.state, CameraState::Unknown, "{status:?}");
    assert_eq!(status.last_error, None, "{status:?}");
    pool.close().await;
    drop(dir);
}
