//! Which frames a schedule keeps and where they come from (issue 17 items 4 and 5,
//! docs/schedules.md): a black frame skipped as dark and a bright one stored; the same frame
//! twice skipped as unchanged, a changed one stored, and the comparison surviving a restart
//! (derived from the stored file); the metric, the event and the schedule's `last_skip_*`;
//! `stream` choosing the snapshot URL or the sub stream; the 422s for bad values.
//!
//! Real parts throughout: the application on a real port over a SQLite file, a fake camera
//! serving real JPEGs over real HTTP, the sub stream read by the real ffmpeg. The app runs on the
//! system clock with 5-second schedules (the shortest) and every wait is a bounded `wait_for`.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::Uri;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use common::{error_of, test_config, wait_for};
use heldar::app::{Application, BuildOptions};
use heldar::fakecam::pattern;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

/// A camera over real HTTP that serves, at each path, the JPEG last set for it, and counts the
/// requests per path (so a test sees which URL a capture used).
struct Cam {
    addr: SocketAddr,
    frames: Arc<Mutex<HashMap<String, Bytes>>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    stop: CancellationToken,
}

impl Cam {
    async fn start() -> Cam {
        let frames: Arc<Mutex<HashMap<String, Bytes>>> = Arc::default();
        let hits: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let (f, h) = (frames.clone(), hits.clone());
        let app = axum::Router::new().fallback(move |uri: Uri| {
            let (f, h) = (f.clone(), h.clone());
            async move {
                let path = uri.path().to_string();
                *h.lock().unwrap().entry(path.clone()).or_default() += 1;
                match f.lock().unwrap().get(&path).cloned() {
                    Some(b) => axum::response::Response::builder()
                        .header("content-type", "image/jpeg")
                        .body(axum::body::Body::from(b))
                        .unwrap(),
                    None => axum::response::Response::builder()
                        .status(404)
                        .body(axum::body::Body::from("no such picture"))
                        .unwrap(),
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let s = stop.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { s.cancelled().await })
                .await
                .unwrap();
        });
        Cam {
            addr,
            frames,
            hits,
            stop,
        }
    }

    fn set(&self, path: &str, jpeg: Vec<u8>) {
        self.frames
            .lock()
            .unwrap()
            .insert(path.into(), Bytes::from(jpeg));
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

impl Drop for Cam {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The application on a data dir that outlives it (so it can be started again on it), with the
/// events it published since it started.
struct Running {
    base: String,
    client: reqwest::Client,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
    events: Arc<Mutex<Vec<Value>>>,
}

async fn start(dir: &std::path::Path) -> Running {
    let shutdown = CancellationToken::new();
    let app = Application::build(test_config(dir), BuildOptions::default(), shutdown.clone())
        .await
        .expect("the app builds");
    let events: Arc<Mutex<Vec<Value>>> = Arc::default();
    let mut rx = app.state().ops.events.subscribe();
    let seen = events.clone();
    tokio::spawn(async move {
        while let Ok(e) = rx.recv().await {
            seen.lock()
                .unwrap()
                .push(serde_json::to_value(&*e).unwrap());
        }
    });
    Running {
        base: format!("http://127.0.0.1:{}", app.port()),
        client: reqwest::Client::new(),
        shutdown,
        server: tokio::spawn(app.run_until_stopped()),
        events,
    }
}

impl Running {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
    async fn get(&self, path: &str) -> Value {
        let r = self.client.get(self.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "GET {path}");
        r.json().await.unwrap()
    }
    async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap()
    }
    async fn patch(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .patch(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap()
    }
    async fn camera(&self, body: Value) {
        let r = self.post("/api/v1/cameras", &body).await;
        assert_eq!(r.status(), 201, "{body}: {}", r.text().await.unwrap());
    }
    /// Create a schedule on `camera`, insisting on 201.
    async fn schedule(&self, camera: &str, body: Value) -> Value {
        let r = self
            .post(
                &format!("/api/v1/cameras/{camera}/snapshot-schedules"),
                &body,
            )
            .await;
        let status = r.status();
        let v: Value = r.json().await.unwrap();
        assert_eq!(status, 201, "{body}: {v}");
        v
    }
    async fn schedule_now(&self, id: &str) -> Value {
        self.get(&format!("/api/v1/snapshot-schedules/{id}")).await
    }
    /// The camera's stored frames, newest first.
    async fn frames(&self, camera: &str) -> Vec<Value> {
        let v = self
            .get(&format!("/api/v1/cameras/{camera}/snapshots?limit=1000"))
            .await;
        v.as_array().unwrap().clone()
    }
    async fn metrics(&self) -> String {
        let r = self.client.get(self.url("/metrics")).send().await.unwrap();
        r.text().await.unwrap()
    }
    fn skipped_events(&self, schedule: &str) -> Vec<Value> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == "slot.skipped" && e["schedule_id"] == schedule)
            .cloned()
            .collect()
    }
    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.server)
            .await
            .expect("stops within 30 s")
            .unwrap()
            .unwrap();
    }
}

/// A labelled counter's value in a Prometheus text exposition (0 when absent).
fn counter(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn ts(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().expect("a time"))
        .unwrap()
        .with_timezone(&Utc)
}

/// Files in the camera's frame folder.
fn files(dir: &std::path::Path, camera: &str) -> usize {
    std::fs::read_dir(dir.join("snapshots").join(camera)).map_or(0, |d| d.count())
}

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_black_frame_is_skipped_as_dark_and_a_bright_one_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let cam = Cam::start().await;
    cam.set("/black.jpg", pattern::solid_jpeg(320, 240, [0, 0, 0]));
    cam.set(
        "/bright.jpg",
        pattern::solid_jpeg(320, 240, [210, 200, 190]),
    );
    let app = start(dir.path()).await;
    for (id, path) in [
        ("night", "/black.jpg"),
        ("night0", "/black.jpg"),
        ("day", "/bright.jpg"),
    ] {
        app.camera(json!({"id": id, "snapshot_url": cam.url(path)}))
            .await;
    }
    // Hourly: each fires once, at once.
    let dark = app
        .schedule(
            "night",
            json!({"interval_seconds": 3600, "skip_dark": true}),
        )
        .await;
    assert_eq!(
        (dark["skip_dark"].clone(), dark["dark_threshold"].clone()),
        (json!(true), Value::Null),
        "the default threshold is shown as null: {dark}"
    );
    assert_eq!(dark["last_skip_reason"], Value::Null);
    // A threshold of 0: nothing is darker than black, so black is kept.
    let zero = app
        .schedule(
            "night0",
            json!({"interval_seconds": 3600, "skip_dark": true, "dark_threshold": 0}),
        )
        .await;
    let day = app
        .schedule("day", json!({"interval_seconds": 3600, "skip_dark": true}))
        .await;
    let id = dark["id"].as_str().unwrap();

    let s = wait_for("the dark slot to be skipped", WAIT, || async {
        let s = app.schedule_now(id).await;
        (s["last_skip_reason"] == "dark").then_some(s)
    })
    .await;
    let skipped_at = ts(&s["last_skipped_at"]);
    assert_eq!(ts(&s["last_fired_at"]), skipped_at, "the slot fired: {s}");
    assert!(
        ts(&s["next_due_at"]) > ts(&dark["next_due_at"]),
        "the slot is consumed, its next one an hour on: {s}"
    );
    for cam_id in ["day", "night0"] {
        wait_for(
            "the bright (and threshold-0) frame to be stored",
            WAIT,
            || async { (app.frames(cam_id).await.len() == 1).then_some(()) },
        )
        .await;
    }
    assert_eq!(
        app.frames("day").await[0]["schedule_id"],
        day["id"],
        "the bright frame is the day schedule's"
    );
    assert_eq!(app.frames("night0").await[0]["schedule_id"], zero["id"]);
    assert!(
        app.frames("night").await.is_empty(),
        "no row for the dark frame"
    );
    assert_eq!(files(dir.path(), "night"), 0, "and no file");

    let m = app.metrics().await;
    assert_eq!(
        counter(
            &m,
            r#"heldar_skipped_slots_total{camera="night",reason="dark"}"#
        ),
        1,
        "{m}"
    );
    assert_eq!(
        counter(
            &m,
            r#"heldar_skipped_slots_total{camera="day",reason="dark"}"#
        ),
        0
    );
    assert_eq!(
        common::metric(&m, "heldar_missed_slots_total").unwrap_or(0),
        0,
        "not missed"
    );
    let events = app.skipped_events(id);
    assert_eq!(events.len(), 1, "one event: {events:?}");
    let e = &events[0];
    assert_eq!(
        (&e["camera_id"], &e["reason"]),
        (&json!("night"), &json!("dark")),
        "{e}"
    );
    assert!(e["luma"].as_u64().unwrap() < 16, "{e}");
    assert_eq!(
        ts(&e["slot"]),
        ts(&dark["next_due_at"]),
        "the slot it was: {e}"
    );
    // The camera answered: it is online, not failing.
    let c = app.get("/api/v1/cameras/night").await;
    assert_eq!(c["status"]["state"], "online", "{c}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_frame_twice_is_skipped_as_unchanged_a_changed_one_is_stored_even_after_a_restart()
{
    let dir = tempfile::tempdir().unwrap();
    let cam = Cam::start().await;
    let t0 = DateTime::parse_from_rfc3339("2026-06-01T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let scene_a = pattern::demo_frame(320, 240, "yard", t0);
    // Another picture: a different scene, not a re-encode.
    let scene_b = pattern::solid_jpeg(320, 240, [40, 90, 200]);
    cam.set("/yard.jpg", scene_a);
    let app = start(dir.path()).await;
    app.camera(json!({"id": "yard", "snapshot_url": cam.url("/yard.jpg")}))
        .await;
    let s = app
        .schedule(
            "yard",
            json!({"interval_seconds": 5, "skip_unchanged": true}),
        )
        .await;
    let id = s["id"].as_str().unwrap().to_string();
    assert_eq!(s["skip_unchanged"], true);

    wait_for("the first frame", WAIT, || async {
        (app.frames("yard").await.len() == 1).then_some(())
    })
    .await;
    let s = wait_for("the same frame to be skipped", WAIT, || async {
        let s = app.schedule_now(&id).await;
        (s["last_skip_reason"] == "unchanged").then_some(s)
    })
    .await;
    assert_eq!(app.frames("yard").await.len(), 1, "not stored: {s}");
    let e = app.skipped_events(&id);
    assert_eq!(e[0]["reason"], "unchanged", "{e:?}");
    assert_eq!(
        e[0]["hash"].as_str().map(str::len),
        Some(16),
        "the hash, in hex: {e:?}"
    );

    cam.set("/yard.jpg", scene_b.clone());
    wait_for("the changed frame to be stored", WAIT, || async {
        (app.frames("yard").await.len() == 2).then_some(())
    })
    .await;
    let m = app.metrics().await;
    assert!(
        counter(
            &m,
            r#"heldar_skipped_slots_total{camera="yard",reason="unchanged"}"#
        ) >= 1,
        "{m}"
    );
    app.stop().await;

    // A new process knows nothing of the last frame but its file: the same picture again is
    // still unchanged.
    let stopped_at = Utc::now();
    let app = start(dir.path()).await;
    let s = wait_for(
        "the same frame, after a restart, to be skipped",
        WAIT,
        || async {
            let s = app.schedule_now(&id).await;
            (s["last_skip_reason"] == "unchanged" && ts(&s["last_skipped_at"]) > stopped_at)
                .then_some(s)
        },
    )
    .await;
    assert_eq!(app.frames("yard").await.len(), 2, "not stored: {s}");
    // Turned off, the same picture is kept again.
    let r = app
        .patch(
            &format!("/api/v1/snapshot-schedules/{id}"),
            &json!({"skip_unchanged": false}),
        )
        .await;
    assert_eq!(r.status(), 200);
    wait_for("a frame kept once skip_unchanged is off", WAIT, || async {
        (app.frames("yard").await.len() == 3).then_some(())
    })
    .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_takes_each_schedules_frames_from_the_source_it_names() {
    let dir = tempfile::tempdir().unwrap();
    let cam = Cam::start().await;
    // Told apart by their size.
    cam.set("/snap.jpg", pattern::solid_jpeg(320, 240, [200, 200, 200]));
    cam.set("/sub.jpg", pattern::solid_jpeg(160, 120, [90, 160, 90]));
    let app = start(dir.path()).await;
    app.camera(json!({"id": "gate", "snapshot_url": cam.url("/snap.jpg"),
        "sub_stream_url": cam.url("/sub.jpg")}))
        .await;
    let sub = app
        .schedule("gate", json!({"interval_seconds": 3600, "stream": "sub"}))
        .await;
    assert_eq!(sub["stream"], "sub");
    let snap = app
        .schedule(
            "gate",
            json!({"interval_seconds": 3600, "stream": "snapshot"}),
        )
        .await;
    let frames = wait_for(
        "a frame of each schedule",
        Duration::from_secs(30),
        || async {
            let f = app.frames("gate").await;
            (f.len() == 2).then_some(f)
        },
    )
    .await;
    let width_of = |schedule: &Value| {
        frames
            .iter()
            .find(|f| f["schedule_id"] == schedule["id"])
            .map(|f| f["width"].as_i64().unwrap())
    };
    assert_eq!(
        width_of(&sub),
        Some(160),
        "the sub stream's picture: {frames:?}"
    );
    assert_eq!(width_of(&snap), Some(320), "the snapshot URL's: {frames:?}");
    assert!(cam.hits("/sub.jpg") >= 1 && cam.hits("/snap.jpg") >= 1);

    // A camera without a main stream refuses a schedule that asks for one, naming the field.
    let (status, e) = error_of(
        app.post(
            "/api/v1/cameras/gate/snapshot-schedules",
            &json!({"stream": "main"}),
        )
        .await,
    )
    .await;
    assert_eq!((status, e["field"].as_str()), (422, Some("stream")), "{e}");
    assert!(e["error"].as_str().unwrap().contains("main"), "{e}");
    // Back to the camera's own choice with null.
    let r = app
        .patch(
            &format!("/api/v1/snapshot-schedules/{}", sub["id"].as_str().unwrap()),
            &json!({"stream": null, "enabled": false}),
        )
        .await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["stream"], Value::Null, "{v}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_values_are_refused_with_a_sentence_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path()).await;
    app.camera(json!({"id": "c", "snapshot_url": "http://127.0.0.1:9/snap.jpg"}))
        .await;
    let create = "/api/v1/cameras/c/snapshot-schedules";
    for (body, field) in [
        (json!({"retention_hours": -5}), "retention_hours"),
        (json!({"retention_hours": 0}), "retention_hours"),
        (json!({"dark_threshold": 300}), "dark_threshold"),
        (json!({"dark_threshold": -1}), "dark_threshold"),
        (json!({"stream": "infrared"}), "stream"),
        (json!({"stream": "sub"}), "stream"),
    ] {
        let (status, e) = error_of(app.post(create, &body).await).await;
        assert_eq!(
            (status, e["field"].as_str()),
            (422, Some(field)),
            "{body}: {e}"
        );
    }
    let s = app
        .schedule("c", json!({"enabled": false, "retention_hours": 48}))
        .await;
    assert_eq!(s["retention_hours"], 48);
    let path = format!("/api/v1/snapshot-schedules/{}", s["id"].as_str().unwrap());
    let (status, e) = error_of(app.patch(&path, &json!({"dark_threshold": 256})).await).await;
    assert_eq!(
        (status, e["field"].as_str()),
        (422, Some("dark_threshold")),
        "{e}"
    );
    let v: Value = app
        .patch(&path, &json!({"retention_hours": null}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["retention_hours"], Value::Null, "{v}");

    for (gb, what) in [
        (json!(0), "zero"),
        (json!(-1.5), "negative"),
        (json!(1e-300), "a cap that rounds to under one byte"),
        (json!(0.0009), "under 1 MB"),
    ] {
        let (status, e) = error_of(
            app.post(
                "/api/v1/cameras",
                &json!({"id": "d", "snapshot_url": "http://127.0.0.1:9/x.jpg", "max_gb": gb}),
            )
            .await,
        )
        .await;
        assert_eq!(
            (status, e["field"].as_str()),
            (422, Some("max_gb")),
            "{what}: {e}"
        );
        assert!(
            e["error"].as_str().unwrap().contains("from 0.001 (1 MB)"),
            "{e}"
        );
    }
    let v: Value = app
        .patch("/api/v1/cameras/c", &json!({"max_gb": 0.001}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["max_gb"], 0.001, "the smallest cap is taken: {v}");
    let (status, e) = error_of(app.patch("/api/v1/cameras/c", &json!({"max_gb": 0})).await).await;
    assert_eq!((status, e["field"].as_str()), (422, Some("max_gb")), "{e}");
    let v: Value = app
        .patch("/api/v1/cameras/c", &json!({"max_gb": 2.5}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["max_gb"], 2.5, "{v}");
    let v: Value = app
        .patch("/api/v1/cameras/c", &json!({"max_gb": null}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["max_gb"], Value::Null, "{v}");
    app.stop().await;
}
