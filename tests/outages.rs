//! Offline alerts and the outage history against a real fake camera over HTTP: a camera that
//! fails and then answers again gives exactly one `camera.offline` and one `camera.recovered`
//! (on the event stream), one outage row with its times and errors (in both lists), the
//! metrics; an open outage survives a restart; the silence rule opens one for a scheduled camera
//! within a bounded wait.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{error_of, spawn_app_with, test_config, wait_for, TestApp};
use futures_util::StreamExt;
use heldar::app::{Application, BuildOptions};
use heldar::config::OfflineAfter;
use heldar::fakecam::{pattern, Behavior, FakeAuth, FakeCamera, FrameSupply};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

/// A Server-Sent Events client reading one stream (as in tests/events.rs).
struct Sse {
    body: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<Bytes>> + Send>>,
    buf: String,
}

impl Sse {
    async fn open(app: &TestApp, query: &str) -> Sse {
        let resp = app.get(&format!("/api/v1/events{query}")).await;
        assert_eq!(resp.status(), 200);
        let mut sse = Sse {
            body: Box::pin(resp.bytes_stream()),
            buf: String::new(),
        };
        assert_eq!(sse.next().await.0, "ready");
        sse
    }

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
                    continue;
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

    /// Every event named in `names` until one named `until` (included).
    async fn collect_until(&mut self, names: &[&str], until: &str) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        loop {
            let (n, v) = self.next().await;
            let done = n == until;
            if names.contains(&n.as_str()) {
                out.push((n, v));
            }
            if done {
                return out;
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

async fn live(app: &TestApp, camera: &str) -> u16 {
    app.get(&format!("/api/v1/cameras/{camera}/snapshot"))
        .await
        .status()
        .as_u16()
}

async fn metrics(app: &TestApp) -> String {
    app.get("/metrics").await.text().await.unwrap()
}

async fn outages(app: &TestApp, query: &str) -> (Vec<Value>, String) {
    let resp = app.get(&format!("/api/v1/outages{query}")).await;
    assert_eq!(resp.status(), 200);
    let total = resp.headers()["x-total-count"]
        .to_str()
        .unwrap()
        .to_string();
    (resp.json().await.unwrap(), total)
}

const OFFLINE: &[&str] = &["camera.offline", "camera.recovered"];

#[tokio::test]
async fn a_camera_that_fails_then_recovers_gives_one_alert_pair_and_one_outage_row() {
    let app = spawn_app_with(|_| {}, BuildOptions::default()).await;
    let cam = fake_camera().await;
    app.create_camera(json!({"id": "gate", "snapshot_url": cam.snapshot_url()}))
        .await;
    let mut sse = Sse::open(&app, "?camera=gate").await;
    cam.set_behavior(Behavior::Status(500));
    // Two failures: not yet offline (HELDAR_OFFLINE_AFTER_FAILURES defaults to 3).
    for _ in 0..2 {
        assert_eq!(live(&app, "gate").await, 502);
    }
    assert_eq!(outages(&app, "?open=true").await.0.len(), 0);
    // The third opens the outage; two more do not open another.
    for _ in 0..3 {
        assert_eq!(live(&app, "gate").await, 502);
    }
    let (open, _) = outages(&app, "?open=true").await;
    assert_eq!(open.len(), 1, "{open:?}");
    let text = metrics(&app).await;
    assert!(
        text.contains(r#"heldar_camera_offline{camera="gate"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"heldar_camera_outages_total{camera="gate"} 1"#),
        "{text}"
    );

    let status = |state: &'static str| {
        let app = &app;
        wait_for(state, Duration::from_secs(5), move || async move {
            let v: Value = app.get("/api/v1/cameras/gate").await.json().await.unwrap();
            (v["status"]["state"] == state).then(|| v["status"].clone())
        })
    };
    let failing = status("failing").await;
    assert!(
        failing["last_error"].as_str().unwrap().contains("500"),
        "{failing}"
    );

    cam.set_behavior(Behavior::Ok);
    assert_eq!(live(&app, "gate").await, 200);
    assert_eq!(live(&app, "gate").await, 200);
    // The status says how the camera is now, as MQTT's state does: the failure is cleared
    // (the outage row below keeps it).
    let online = status("online").await;
    assert_eq!(online["last_error"], Value::Null, "{online}");
    assert_eq!(online["last_error_at"], Value::Null, "{online}");
    let seen = sse.collect_until(OFFLINE, "camera.recovered").await;
    assert_eq!(seen.len(), 2, "{seen:?}");
    let (offline, recovered) = (&seen[0].1, &seen[1].1);
    assert_eq!(seen[0].0, "camera.offline");
    assert_eq!(offline["camera_id"], "gate");
    assert_eq!(offline["consecutive_failures"], 3);
    assert!(
        offline["first_error"].as_str().unwrap().contains("500"),
        "{offline}"
    );
    assert_eq!(recovered["camera_id"], "gate");
    assert_eq!(recovered["outage_id"], offline["outage_id"]);
    assert_eq!(recovered["from"], offline["since"]);
    assert!(recovered["duration_s"].as_f64().unwrap() >= 0.0);

    // One row, closed, with the run's first and last error and every failure counted.
    wait_for(
        "the outage's final failure count",
        Duration::from_secs(5),
        || async {
            let (rows, total) = outages(&app, "?camera=gate").await;
            (rows.len() == 1 && rows[0]["failures"] == 5).then_some((rows, total))
        },
    )
    .await;
    let (rows, total) = outages(&app, "?camera=gate").await;
    assert_eq!(total, "1");
    let row = &rows[0];
    assert_eq!(row["id"], offline["outage_id"]);
    assert_eq!(row["started_at"], offline["since"]);
    assert_eq!(row["ended_at"], recovered["to"]);
    assert!(
        row["first_error"].as_str().unwrap().contains("500"),
        "{row}"
    );
    assert!(row["last_error"].as_str().unwrap().contains("500"), "{row}");
    let resp = app.get("/api/v1/cameras/gate/outages").await;
    assert_eq!(resp.status(), 200);
    let per_camera: Vec<Value> = resp.json().await.unwrap();
    assert_eq!(per_camera, rows);
    assert_eq!(outages(&app, "?open=true").await.0.len(), 0);
    assert_eq!(outages(&app, "?open=false").await.0.len(), 1);
    // A time range before the outage holds none of it.
    assert_eq!(outages(&app, "?to=2020-01-01").await.0.len(), 0);
    let text = metrics(&app).await;
    assert!(
        text.contains(r#"heldar_camera_offline{camera="gate"} 0"#),
        "{text}"
    );
    assert!(
        text.contains(r#"heldar_camera_outages_total{camera="gate"} 1"#),
        "{text}"
    );

    // The CLI: a table, and the API's JSON with --json.
    // (A child process, awaited: the server runs on this test's runtime.)
    let cli = |args: &'static [&'static str]| {
        let base = app.base.clone();
        async move {
            let dir = tempfile::tempdir().unwrap();
            let mut cmd = common::heldar_cmd(dir.path());
            cmd.env("HELDAR_URL", &base).args(args);
            let out = tokio::process::Command::from(cmd).output().await.unwrap();
            assert!(out.status.success(), "{args:?}: {out:?}");
            String::from_utf8(out.stdout).unwrap()
        }
    };
    let table = cli(&["outages", "gate"]).await;
    assert!(
        table.contains("gate") && table.contains("answered"),
        "{table}"
    );
    let json: Vec<Value> =
        serde_json::from_str(&cli(&["outages", "gate", "--json"]).await).unwrap();
    assert_eq!(json, rows);
    assert!(cli(&["outages", "--open"])
        .await
        .contains("no camera is offline"));

    // Bad input: a sentence, never a 5xx.
    for (q, field) in [
        ("?open=maybe", "open"),
        ("?camera=Not%20A%20Slug", "camera"),
        ("?from=yesterday", "from"),
        ("?limit=0", "limit"),
        ("?cursor=forged", "cursor"),
    ] {
        let (status, body) = error_of(app.get(&format!("/api/v1/outages{q}")).await).await;
        assert_eq!(status, 422, "{q}: {body}");
        assert_eq!(body["field"], field, "{q}: {body}");
    }
    let (status, _) = error_of(app.get("/api/v1/outages?camera=nosuch").await).await;
    assert_eq!(status, 404);
    let (status, _) = error_of(app.get("/api/v1/cameras/nosuch/outages").await).await;
    assert_eq!(status, 404);
    app.stop().await;
}

/// Start the real app on `dir` (kept across restarts).
async fn start_on(dir: &std::path::Path) -> TestApp {
    let config = test_config(dir);
    let shutdown = CancellationToken::new();
    let app = Application::build(config, BuildOptions::default(), shutdown.clone())
        .await
        .expect("the app builds");
    let base = format!("http://127.0.0.1:{}", app.port());
    let state = app.state().clone();
    let server = tokio::spawn(app.run_until_stopped());
    TestApp {
        base,
        client: reqwest::Client::new(),
        state,
        shutdown,
        server,
        dir: tempfile::tempdir().unwrap(),
    }
}

#[tokio::test]
async fn an_open_outage_stays_open_across_a_restart_until_the_next_success() {
    let dir = tempfile::tempdir().unwrap();
    let cam = fake_camera().await;
    cam.set_behavior(Behavior::Status(503));
    let app = start_on(dir.path()).await;
    app.create_camera(json!({"id": "yard", "snapshot_url": cam.snapshot_url()}))
        .await;
    for _ in 0..3 {
        assert_eq!(live(&app, "yard").await, 502);
    }
    let (before, _) = outages(&app, "?open=true").await;
    assert_eq!(before.len(), 1);
    app.stop().await;

    let app = start_on(dir.path()).await;
    let (after, _) = outages(&app, "?open=true").await;
    assert_eq!(
        after, before,
        "the open outage is still open after the restart"
    );
    let text = metrics(&app).await;
    assert!(
        text.contains(r#"heldar_camera_offline{camera="yard"} 1"#),
        "{text}"
    );
    // More failures after the restart go to the same outage, not a new one.
    for _ in 0..3 {
        assert_eq!(live(&app, "yard").await, 502);
    }
    assert_eq!(outages(&app, "").await.1, "1");
    cam.set_behavior(Behavior::Ok);
    assert_eq!(live(&app, "yard").await, 200);
    let (rows, total) = outages(&app, "").await;
    assert_eq!(total, "1");
    assert_eq!(rows[0]["id"], before[0]["id"]);
    assert!(rows[0]["ended_at"].is_string(), "{rows:?}");
    assert_eq!(rows[0]["started_at"], before[0]["started_at"]);
    app.stop().await;
}

#[tokio::test]
async fn a_scheduled_camera_without_frames_goes_offline_by_silence() {
    // Failures in a row never count here: only the time rule can open the outage.
    let app = spawn_app_with(
        |c| {
            c.offline_after_failures = 0;
            c.offline_after = OfflineAfter::Fixed(Duration::from_secs(1));
        },
        BuildOptions::default(),
    )
    .await;
    let cam = fake_camera().await;
    cam.set_behavior(Behavior::Status(500));
    app.create_camera(json!({"id": "dock", "snapshot_url": cam.snapshot_url()}))
        .await;
    let mut sse = Sse::open(&app, "?camera=dock").await;
    let resp = app
        .post_json(
            "/api/v1/cameras/dock/snapshot-schedules",
            &json!({"interval_seconds": 5}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let seen = sse.collect_until(OFFLINE, "camera.offline").await;
    assert_eq!(seen.len(), 1);
    let rows = wait_for("the open outage row", Duration::from_secs(10), || async {
        let (rows, _) = outages(&app, "?camera=dock&open=true").await;
        (!rows.is_empty()).then_some(rows)
    })
    .await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["id"], seen[0].1["outage_id"]);
    // A success closes it.
    cam.set_behavior(Behavior::Ok);
    assert_eq!(live(&app, "dock").await, 200);
    let seen = sse.collect_until(OFFLINE, "camera.recovered").await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    app.stop().await;
}

#[tokio::test]
async fn the_camera_page_lists_its_outages_and_follows_them_live() {
    use common::browser::{browser, go, js, until};
    let app = spawn_app_with(|_| {}, BuildOptions::default()).await;
    let cam = fake_camera().await;
    app.create_camera(json!({"id": "porch", "snapshot_url": cam.snapshot_url()}))
        .await;
    let (_driver, c) = browser(1280, 800).await;
    go(&c, &app, "#/cameras/porch").await;
    until(
        &c,
        "the empty outage list",
        "document.getElementById('outages')?.textContent.includes('No outages recorded')",
    )
    .await;
    // Offline: the page shows it without a reload (camera.offline on the event stream).
    cam.set_behavior(Behavior::Status(500));
    for _ in 0..3 {
        assert_eq!(live(&app, "porch").await, 502);
    }
    until(
        &c,
        "the open outage",
        "document.querySelector('#outages li.open')?.textContent.includes('Offline since')",
    )
    .await;
    // Recovered: the same row, now with its end, duration and failures.
    cam.set_behavior(Behavior::Ok);
    assert_eq!(live(&app, "porch").await, 200);
    until(
        &c,
        "the closed outage",
        "(() => { const li = document.querySelector('#outages li'); return li && \
         !li.classList.contains('open') && li.textContent.includes('3 failed captures') && \
         li.textContent.includes('–'); })()",
    )
    .await;
    let rows = js(
        &c,
        "return document.querySelectorAll('#outages li').length;",
    )
    .await;
    assert_eq!(rows, json!(1));
    let (api, _) = outages(&app, "?camera=porch").await;
    let shown = js(
        &c,
        "return document.querySelector('#outages li').dataset.outage;",
    )
    .await;
    assert_eq!(shown, api[0]["id"]);
    app.stop().await;
}

/// `open` is read like every yes/no query parameter of the API (`enabled`, `store`): `true`/`1`
/// and `false`/`0` mean the same, anything else is a 422 whose sentence names all four.
#[tokio::test]
async fn open_takes_the_same_yes_no_spellings_as_every_other_flag() {
    let app = spawn_app_with(|_| {}, BuildOptions::default()).await;
    app.create_camera(json!({"id": "gate", "snapshot_url": "http://127.0.0.1:9/x.jpg"}))
        .await;
    for q in ["?open=true", "?open=1", "?open=false", "?open=0"] {
        assert_eq!(outages(&app, q).await.0.len(), 0, "{q}");
    }
    for path in [
        "/api/v1/outages?open=yes",
        "/api/v1/cameras/gate/outages?open=yes",
        "/api/v1/snapshot-schedules?enabled=yes",
        "/api/v1/cameras/gate/snapshot?store=yes",
    ] {
        let (status, body) = error_of(app.get(path).await).await;
        assert_eq!(status, 422, "{path}: {body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(
            error.ends_with("\"yes\" must be true or false (or 1 or 0)"),
            "{path}: {body}"
        );
    }
    app.stop().await;
}
