//! The event bus end to end: what `ops` publishes reaches a Server-Sent Events client of
//! `GET /api/v1/events` with the right fields, a camera's state changes are one event per change
//! (not one per failure), and the stream's filter and bad input behave.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{error_of, spawn_app, TestApp};
use futures_util::StreamExt;
use heldar::fakecam::{pattern, Behavior, FakeAuth, FakeCamera, FrameSupply};
use serde_json::{json, Value};

/// A Server-Sent Events client reading one stream.
struct Sse {
    body: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<Bytes>> + Send>>,
    buf: String,
}

impl Sse {
    /// Open the stream and wait for its `ready` event: from then on nothing is missed.
    async fn open(app: &TestApp, query: &str) -> Sse {
        let resp = app.get(&format!("/api/v1/events{query}")).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        let mut sse = Sse {
            body: Box::pin(resp.bytes_stream()),
            buf: String::new(),
        };
        let (name, _) = sse.next().await;
        assert_eq!(name, "ready");
        sse
    }

    /// The next event: its name and its data as JSON. Fails after 20 s.
    async fn next(&mut self) -> (String, Value) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut name = String::from("message");
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                return (name, serde_json::from_str(&data).expect("data is JSON"));
            }
            let chunk = tokio::time::timeout_at(deadline, self.body.next())
                .await
                .expect("an event within 20 s")
                .expect("the stream stays open")
                .expect("readable");
            self.buf.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// The next event named `name`, skipping others.
    async fn next_named(&mut self, name: &str) -> Value {
        loop {
            let (n, v) = self.next().await;
            if n == name {
                return v;
            }
        }
    }
}

async fn fake_camera() -> FakeCamera {
    FakeCamera::start(
        FakeAuth::None,
        FrameSupply::Static(Bytes::from(pattern::solid_jpeg(64, 48, [9, 9, 9]))),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn a_frame_stored_by_a_schedule_reaches_an_sse_client_with_its_fields() {
    let app = spawn_app().await;
    let cam = fake_camera().await;
    app.create_camera(json!({"id": "gate", "snapshot_url": cam.snapshot_url()}))
        .await;
    let mut sse = Sse::open(&app, "?camera=gate").await;
    let schedule: Value = app
        .post_json(
            "/api/v1/cameras/gate/snapshot-schedules",
            &json!({"interval_seconds": 60}),
        )
        .await
        .json()
        .await
        .unwrap();
    let changed = sse.next_named("schedule.changed").await;
    assert_eq!(changed["schedule"], schedule["id"]);
    assert_eq!(changed["change"], "created");

    let frame = sse.next_named("frame.stored").await;
    assert_eq!(frame["type"], "frame.stored");
    assert_eq!(frame["camera"], "gate");
    assert_eq!(
        frame["camera_id"], "gate",
        "every event names its camera in camera_id"
    );
    assert_eq!(frame["schedule"], schedule["id"]);
    assert_eq!(frame["width"], 64);
    assert_eq!(frame["height"], 48);
    let url = frame["url"].as_str().unwrap();
    assert!(url.starts_with("/media/snapshots/gate/"), "{frame}");
    assert!(frame["taken_at"].as_str().is_some(), "{frame}");
    // The event names a frame the API serves, byte for byte the size it says.
    let served = app.get(url).await;
    assert_eq!(served.status(), 200);
    assert_eq!(
        served.bytes().await.unwrap().len() as u64,
        frame["size_bytes"].as_u64().unwrap()
    );
    app.stop().await;
}

#[tokio::test]
async fn a_camera_that_keeps_failing_changes_state_once_and_back_once() {
    let app = spawn_app().await;
    let cam = fake_camera().await;
    app.create_camera(json!({"id": "door", "snapshot_url": cam.snapshot_url()}))
        .await;
    let mut sse = Sse::open(&app, "").await;
    let live = || app.get("/api/v1/cameras/door/snapshot");
    assert_eq!(live().await.status(), 200);
    cam.set_behavior(Behavior::Status(500));
    for _ in 0..3 {
        assert_eq!(live().await.status(), 502);
    }
    cam.set_behavior(Behavior::Ok);
    assert_eq!(live().await.status(), 200);

    // Everything the five captures published, in order, up to the recovery.
    let mut states = Vec::new();
    let mut failures = 0;
    while states.len() < 3 {
        let (name, v) = sse.next().await;
        match name.as_str() {
            "camera.state_changed" => {
                assert_eq!(v["camera"], "door");
                states.push((v["from"].clone(), v["to"].clone(), v["last_error"].clone()));
            }
            "capture.failed" => {
                assert_eq!(v["code"], "bad_response", "{v}");
                assert!(v["error"].as_str().unwrap().contains("door"), "{v}");
                failures += 1;
            }
            _ => {}
        }
    }
    assert_eq!(failures, 3, "one capture.failed per failure");
    assert_eq!(
        states
            .iter()
            .map(|(f, t, _)| (f.as_str().unwrap(), t.as_str().unwrap()))
            .collect::<Vec<_>>(),
        [
            ("unknown", "online"),
            ("online", "failing"),
            ("failing", "online")
        ],
        "one change per change, not one per failure"
    );
    assert!(states[1].2.as_str().unwrap().contains("door"), "{states:?}");
    assert!(states[2].2.is_null());
    app.stop().await;
}

#[tokio::test]
async fn the_stream_filters_by_camera_and_refuses_a_bad_one() {
    let app = spawn_app().await;
    let cam = fake_camera().await;
    for id in ["one", "two"] {
        app.create_camera(json!({"id": id, "snapshot_url": cam.snapshot_url()}))
            .await;
    }
    let mut only_two = Sse::open(&app, "?camera=two").await;
    assert_eq!(app.get("/api/v1/cameras/one/snapshot").await.status(), 200);
    assert_eq!(app.get("/api/v1/cameras/two/snapshot").await.status(), 200);
    // The first event this client sees is about `two`, though `one` went online first.
    let v = only_two.next_named("camera.state_changed").await;
    assert_eq!(v["camera"], "two");

    let (status, body) = error_of(app.get("/api/v1/events?camera=Not%20A%20Slug").await).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["field"], "camera");
    app.stop().await;
}
