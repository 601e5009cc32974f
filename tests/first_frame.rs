//! From a newly added camera to its first kept frame, over the real API: `POST …/snapshot`
//! (with `?store=true` the frame is kept the way scheduled frames are), the camera's `health`
//! (failing, no schedule, waiting, ok) with `schedules_enabled` and `last_frame_at`, and
//! credentials written into a URL, which move into the username and password fields.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{error_of, spawn_app, spawn_app_with, wait_for, TestApp};
use heldar::app::BuildOptions;
use heldar::capture::jpeg;
use heldar::fakecam::{pattern, FakeAuth, FakeCamera, FrameSupply};
use serde_json::{json, Value};

fn green() -> FrameSupply {
    FrameSupply::Static(Bytes::from(pattern::solid_jpeg(96, 64, [0, 200, 0])))
}

async fn post(app: &TestApp, path: &str) -> reqwest::Response {
    app.client.post(app.url(path)).send().await.unwrap()
}

async fn camera(app: &TestApp, id: &str) -> Value {
    app.get(&format!("/api/v1/cameras/{id}"))
        .await
        .json()
        .await
        .unwrap()
}

async fn frames(app: &TestApp, id: &str) -> Vec<Value> {
    let v: Value = app
        .get(&format!("/api/v1/cameras/{id}/snapshots"))
        .await
        .json()
        .await
        .unwrap();
    v.as_array().unwrap().clone()
}

#[tokio::test]
async fn post_store_true_keeps_the_frame_and_names_it() {
    let app = spawn_app().await;
    let cam = FakeCamera::start(FakeAuth::None, green()).await.unwrap();
    app.create_camera(json!({"id": "yard", "snapshot_url": cam.snapshot_url()}))
        .await;
    let before = camera(&app, "yard").await;
    assert_eq!(before["last_frame_at"], Value::Null, "{before}");

    let r = post(&app, "/api/v1/cameras/yard/snapshot?store=true").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    assert_eq!(r.headers()["cache-control"], "no-store");
    let id = r.headers()["x-heldar-snapshot-id"]
        .to_str()
        .unwrap()
        .to_string();
    let loc = r.headers()["content-location"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(r.headers()["location"].to_str().unwrap(), loc);
    assert_eq!(
        (
            r.headers()["x-heldar-width"].to_str().unwrap(),
            r.headers()["x-heldar-height"].to_str().unwrap()
        ),
        ("96", "64")
    );
    let body = r.bytes().await.unwrap();
    assert!(jpeg::validate(&body).is_ok());

    // A row, without a schedule, naming a file in the store that holds these bytes.
    let rows = frames(&app, "yard").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["id"], id);
    assert_eq!(rows[0]["url"], loc);
    assert!(rows[0]["schedule_id"].is_null());
    let rel = loc.strip_prefix("/media/snapshots/yard/").unwrap();
    assert!(heldar::store::parse_file_name(rel).is_some(), "{rel}");
    let on_disk = std::fs::read(app.state.ops.config.snapshots_dir.join("yard").join(rel)).unwrap();
    assert_eq!(on_disk, body);
    let served = app.get(&loc).await;
    assert_eq!(served.status(), 200);
    assert_eq!(served.bytes().await.unwrap(), body);
    let latest = app.get("/api/v1/cameras/yard/snapshots/latest").await;
    assert_eq!(latest.bytes().await.unwrap(), body);
    // The camera now has a frame, and says when it was taken.
    let after = camera(&app, "yard").await;
    assert_eq!(after["last_frame_at"], rows[0]["taken_at"], "{after}");

    // Without store=true a POST is a live frame and keeps nothing.
    for path in [
        "/api/v1/cameras/yard/snapshot",
        "/api/v1/cameras/yard/snapshot?store=false",
        "/api/v1/cameras/yard/snapshot?store=0",
    ] {
        let r = post(&app, path).await;
        assert_eq!(r.status(), 200, "{path}");
        assert!(!r.headers().contains_key("x-heldar-snapshot-id"), "{path}");
        assert!(!r.headers().contains_key("content-location"), "{path}");
        assert!(jpeg::validate(&r.bytes().await.unwrap()).is_ok());
    }
    assert_eq!(frames(&app, "yard").await.len(), 1);
    let r = post(&app, "/api/v1/cameras/yard/snapshot?store=1").await;
    assert_eq!(r.status(), 200);
    assert_eq!(frames(&app, "yard").await.len(), 2);
    app.stop().await;
}

#[tokio::test]
async fn post_snapshot_refuses_bad_queries_and_unknown_cameras_with_a_sentence() {
    let app = spawn_app().await;
    let cam = FakeCamera::start(FakeAuth::None, green()).await.unwrap();
    app.create_camera(json!({"id": "yard", "snapshot_url": cam.snapshot_url()}))
        .await;
    for (path, status, field) in [
        (
            "/api/v1/cameras/yard/snapshot?store=yes",
            422,
            Some("store"),
        ),
        ("/api/v1/cameras/yard/snapshot?store=", 422, Some("store")),
        // Unknown parameters are refused, not ignored (a later server may know them).
        (
            "/api/v1/cameras/yard/snapshot?store=true&label=x",
            400,
            None,
        ),
        // A tag that is not one (1 to 64 of A-Z a-z 0-9 _ . -).
        (
            "/api/v1/cameras/yard/snapshot?store=true&tag=a%20b",
            422,
            Some("tag"),
        ),
        ("/api/v1/cameras/yard/snapshot?keep=true", 400, None),
        (
            "/api/v1/cameras/yard/snapshot?store=true&store=true",
            400,
            None,
        ),
        ("/api/v1/cameras/ghost/snapshot?store=true", 404, None),
        (
            "/api/v1/cameras/Not%20A%20Slug/snapshot?store=true",
            422,
            Some("id"),
        ),
    ] {
        let (got, body) = error_of(post(&app, path).await).await;
        assert_eq!(got, status, "{path}: {body}");
        if let Some(f) = field {
            assert_eq!(body["field"], f, "{path}: {body}");
        }
    }
    let (_, body) = error_of(post(&app, "/api/v1/cameras/yard/snapshot?tag=x").await).await;
    assert!(body["error"].as_str().unwrap().contains("tag"), "{body}");
    // Nothing was kept, and the camera was not even asked.
    assert!(frames(&app, "yard").await.is_empty());
    assert_eq!(cam.hits(), 0);
    // A failed capture with store=true is the camera's failure, kept nowhere.
    let dead = FakeCamera::start(FakeAuth::None, green()).await.unwrap();
    let dead_url = dead.snapshot_url();
    dead.stop().await;
    app.create_camera(json!({"id": "dead", "snapshot_url": dead_url}))
        .await;
    let (status, body) =
        error_of(post(&app, "/api/v1/cameras/dead/snapshot?store=true").await).await;
    assert_eq!((status, body["code"].as_str()), (502, Some("unreachable")));
    assert!(frames(&app, "dead").await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn health_says_failing_no_schedule_waiting_or_ok() {
    // The scheduler is off, so a schedule's first frame cannot race the assertions.
    let app = spawn_app_with(|c| c.scheduler_enabled = false, BuildOptions::default()).await;
    let cam = FakeCamera::start(FakeAuth::None, green()).await.unwrap();
    app.create_camera(json!({"id": "yard", "snapshot_url": cam.snapshot_url()}))
        .await;
    let health = |v: &Value| {
        (
            v["health"].as_str().unwrap().to_string(),
            v["schedules_enabled"].as_i64().unwrap(),
        )
    };
    assert_eq!(
        health(&camera(&app, "yard").await),
        ("no_schedule".into(), 0)
    );
    // A live frame makes the camera online, but it has no schedule and no frame: not ok.
    assert_eq!(app.get("/api/v1/cameras/yard/snapshot").await.status(), 200);
    let v = common::camera_in_state(&app, "yard", "online").await;
    assert_eq!(health(&v), ("no_schedule".into(), 0));
    // A disabled schedule is no schedule.
    let r = app
        .post_json(
            "/api/v1/cameras/yard/snapshot-schedules",
            &json!({"interval_seconds": 60, "enabled": false}),
        )
        .await;
    assert_eq!(r.status(), 201);
    assert_eq!(
        health(&camera(&app, "yard").await),
        ("no_schedule".into(), 0)
    );
    // An enabled one, and still no frame: waiting.
    let r = app
        .post_json(
            "/api/v1/cameras/yard/snapshot-schedules",
            &json!({"interval_seconds": 60}),
        )
        .await;
    assert_eq!(r.status(), 201);
    assert_eq!(health(&camera(&app, "yard").await), ("waiting".into(), 1));
    // A kept frame: ok.
    let r = post(&app, "/api/v1/cameras/yard/snapshot?store=true").await;
    assert_eq!(r.status(), 200);
    assert_eq!(health(&camera(&app, "yard").await), ("ok".into(), 1));

    // A camera whose captures fail is failing, schedule or not, and the list says the same.
    let dead = FakeCamera::start(FakeAuth::None, green()).await.unwrap();
    let dead_url = dead.snapshot_url();
    dead.stop().await;
    app.create_camera(json!({"id": "dead", "snapshot_url": dead_url}))
        .await;
    assert_eq!(
        app.get("/api/v1/cameras/dead/snapshot")
            .await
            .status()
            .as_u16(),
        502
    );
    let v = common::camera_in_state(&app, "dead", "failing").await;
    assert_eq!(health(&v), ("failing".into(), 0));
    assert!(v["status"]["last_error"]
        .as_str()
        .is_some_and(|e| e.contains("cannot connect")));
    let list: Value = app.get("/api/v1/cameras").await.json().await.unwrap();
    let by_id: Vec<(String, String)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_string(),
                c["health"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        by_id,
        [
            ("dead".into(), "failing".into()),
            ("yard".into(), "ok".into())
        ]
    );
    // The document describes the new fields.
    let doc: Value = app.get("/api/v1/openapi.json").await.json().await.unwrap();
    let props = &doc["components"]["schemas"]["CameraView"]["properties"];
    for f in ["health", "schedules_enabled", "last_frame_at"] {
        assert!(props[f].is_object(), "{f} missing from CameraView");
    }
    assert!(doc["paths"]["/api/v1/cameras/{id}/snapshot"]["post"].is_object());
    app.stop().await;
}

#[tokio::test]
async fn a_schedule_gives_a_new_camera_frames_and_an_ok_health() {
    let app = spawn_app().await;
    let cam = FakeCamera::start(FakeAuth::None, green()).await.unwrap();
    app.create_camera(json!({"id": "yard", "snapshot_url": cam.snapshot_url()}))
        .await;
    let r = app
        .post_json(
            "/api/v1/cameras/yard/snapshot-schedules",
            &json!({"interval_seconds": 60}),
        )
        .await;
    assert_eq!(r.status(), 201);
    // The schedule fires at once: the camera soon has a scheduled frame, and is ok.
    let v = wait_for("the first scheduled frame", Duration::from_secs(10), || {
        let app = &app;
        async move {
            let v = camera(app, "yard").await;
            (v["health"] == "ok").then_some(v)
        }
    })
    .await;
    let rows = frames(&app, "yard").await;
    assert_eq!(v["last_frame_at"], rows[0]["taken_at"]);
    assert!(rows[0]["schedule_id"].is_string());
    app.stop().await;
}

const SECRET: &str = "Zq9!lemon-PIE";
const ENCODED: &str = "Zq9%21lemon-PIE";

#[tokio::test]
async fn credentials_in_a_url_move_into_the_fields_and_are_never_shown() {
    let app = spawn_app().await;
    let cam = FakeCamera::start(
        FakeAuth::Digest {
            user: "admin".into(),
            pass: SECRET.into(),
        },
        green(),
    )
    .await
    .unwrap();
    let plain = cam.snapshot_url();
    let with_creds = plain.replace("http://", &format!("http://admin:{ENCODED}@"));
    let created = app
        .create_camera(json!({"id": "door", "snapshot_url": with_creds}))
        .await;
    assert_eq!(created["username"], "admin");
    assert_eq!(created["has_password"], true);
    assert_eq!(
        created["snapshot_url"], plain,
        "the stored URL has no userinfo"
    );
    // The moved password is the one the camera wants (Digest, checked by the camera).
    let r = post(&app, "/api/v1/cameras/door/snapshot?store=true").await;
    assert_eq!(r.status(), 200);

    // Conflicting credentials: refused, naming the URL field, quoting no password.
    let (status, body) = error_of(
        app.patch_json(
            "/api/v1/cameras/door",
            &json!({"main_stream_url": "rtsp://admin:0ther-Secret@127.0.0.1:9/live"}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (422, Some("main_stream_url"))
    );
    assert!(!body.to_string().contains("0ther"), "{body}");
    let (status, body) = error_of(
        app.post_json(
            "/api/v1/cameras",
            &json!({"id": "gate", "username": "viewer", "password": "fieldpw",
                "snapshot_url": format!("http://admin:{ENCODED}@127.0.0.1:9/snap.jpg")}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (422, Some("snapshot_url"))
    );
    let text = body.to_string();
    assert!(
        !text.contains("lemon") && !text.contains("fieldpw"),
        "{text}"
    );
    assert!(
        app.get("/api/v1/cameras/gate").await.status() == 404,
        "nothing was created"
    );
    // The same credentials again in a PATCH: accepted, the URL kept without them.
    let patched: Value = app
        .patch_json(
            "/api/v1/cameras/door",
            &json!({"main_stream_url": format!("rtsp://admin:{ENCODED}@127.0.0.1:9/live")}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(patched["main_stream_url"], "rtsp://127.0.0.1:9/live");
    // New credentials through a URL, with the old ones cleared in the same PATCH: moved.
    let patched: Value = app
        .patch_json(
            "/api/v1/cameras/door",
            &json!({"username": null, "password": null,
                "snapshot_url": plain.replace("http://", "http://admin:N3w-pw@")}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            &patched["username"],
            &patched["has_password"],
            &patched["snapshot_url"]
        ),
        (&json!("admin"), &json!(true), &json!(plain))
    );

    // No response shows either password, in any form.
    for path in [
        "/api/v1/cameras",
        "/api/v1/cameras/door",
        "/api/v1/cameras/door/snapshots",
    ] {
        let text = app.get(path).await.text().await.unwrap();
        for secret in [SECRET, ENCODED, "lemon", "N3w-pw"] {
            assert!(!text.contains(secret), "{path} shows {secret}: {text}");
        }
    }
    app.stop().await;
}
