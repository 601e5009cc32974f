//! `GET /api/v1/system`: the dashboard's system page reads version, uptime, health, disk use,
//! the retention and scheduler settings in effect and per-camera capture counts, which must be
//! the numbers `/metrics` exports.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{error_of, spawn_app, spawn_app_with, TestApp};
use heldar::app::BuildOptions;
use heldar::fakecam::{pattern, Behavior, FakeAuth, FakeCamera, FrameSupply};
use serde_json::{json, Value};

async fn system(app: &TestApp) -> Value {
    let r = app.get("/api/v1/system").await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

fn camera<'a>(sys: &'a Value, id: &str) -> &'a Value {
    sys["cameras"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("camera {id} in {sys}"))
}

/// `heldar_captures_total{camera=…,result=…}` from the `/metrics` text.
async fn scraped(app: &TestApp, camera: &str, result: &str) -> u64 {
    let text = app.get("/metrics").await.text().await.unwrap();
    let labels = format!("{{camera=\"{camera}\",result=\"{result}\"}} ");
    text.lines()
        .find_map(|l| {
            l.strip_prefix("heldar_captures_total")?
                .strip_prefix(&labels)
        })
        .map_or(0, |v| v.trim().parse().unwrap())
}

#[tokio::test]
async fn capture_counts_move_with_captures_and_match_metrics() {
    let app = spawn_app().await;
    let cam = FakeCamera::start(
        FakeAuth::None,
        FrameSupply::Static(Bytes::from(pattern::solid_jpeg(64, 48, [10, 120, 200]))),
    )
    .await
    .unwrap();
    app.create_camera(json!({"id": "yard", "name": "Yard", "snapshot_url": cam.snapshot_url()}))
        .await;

    let sys = system(&app).await;
    assert_eq!(sys["version"], env!("CARGO_PKG_VERSION"));
    assert!(sys["uptime_seconds"].as_u64().is_some(), "{sys}");
    assert_eq!(sys["health"]["status"], "ok", "{sys}");
    assert_eq!(sys["health"]["database_ok"], true);
    assert!(sys["disk"]["free_bytes"].as_u64().unwrap() > 0, "{sys}");
    assert_eq!(sys["disk"]["stored_frames"], 0);
    assert_eq!(sys["disk"]["stored_bytes"], 0);
    let yard = camera(&sys, "yard");
    assert_eq!(yard["name"], "Yard");
    assert_eq!(yard["state"], "unknown");
    assert_eq!(
        (
            yard["captures_ok"].as_u64(),
            yard["captures_failed"].as_u64()
        ),
        (Some(0), Some(0))
    );
    assert!(yard["newest_frame_at"].is_null());

    // Two kept frames and one live one: three good captures, two stored frames.
    for path in [
        "/api/v1/cameras/yard/snapshot?store=true",
        "/api/v1/cameras/yard/snapshot?store=true",
        "/api/v1/cameras/yard/snapshot",
    ] {
        assert_eq!(app.get(path).await.status(), 200);
    }
    common::camera_in_state(&app, "yard", "online").await;
    let sys = system(&app).await;
    let yard = camera(&sys, "yard");
    assert_eq!(yard["state"], "online");
    assert_eq!(yard["captures_ok"], 3, "{yard}");
    assert_eq!(yard["captures_failed"], 0);
    assert_eq!(yard["stored_frames"], 2);
    let list: Value = app
        .get("/api/v1/cameras/yard/snapshots")
        .await
        .json()
        .await
        .unwrap();
    let bytes: i64 = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["size_bytes"].as_i64().unwrap())
        .sum();
    assert_eq!(yard["stored_bytes"], bytes);
    assert_eq!(sys["disk"]["stored_bytes"], bytes);
    assert_eq!(sys["disk"]["stored_frames"], 2);
    // Same instant, same format as the newest row of the list.
    let newest = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    assert_eq!(
        newest(&yard["newest_frame_at"]),
        newest(&list[0]["taken_at"])
    );

    // The camera starts failing: the failure is counted and its sentence shown.
    cam.set_behavior(Behavior::Status(500));
    let (status, _) = error_of(app.get("/api/v1/cameras/yard/snapshot").await).await;
    assert_eq!(status, 502);
    // The failure is recorded on the camera's row just after the error is answered.
    common::camera_in_state(&app, "yard", "failing").await;
    let sys = system(&app).await;
    let yard = camera(&sys, "yard");
    assert_eq!(yard["captures_ok"], 3);
    assert_eq!(yard["captures_failed"], 1, "{yard}");
    assert_eq!(yard["state"], "failing");
    assert!(
        yard["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("500")),
        "{yard}"
    );
    assert!(yard["last_error_at"].is_string());
    assert_eq!(yard["consecutive_failures"], 1);

    // The page and a Prometheus scrape agree.
    assert_eq!(scraped(&app, "yard", "ok").await, 3);
    let failed_codes = ["bad_response", "unreachable", "http_status", "timeout"];
    let mut failed = 0;
    for code in failed_codes {
        failed += scraped(&app, "yard", code).await;
    }
    assert_eq!(
        failed, 1,
        "the failure is one of {failed_codes:?} in /metrics"
    );
    app.stop().await;
}

#[tokio::test]
async fn settings_in_effect_are_reported() {
    let app = spawn_app_with(
        |c| {
            c.retention_age = Some(Duration::from_secs(48 * 3600));
            c.snapshot_max_bytes = Some(5_000_000_000);
            c.min_free_disk_bytes = 0;
            c.retention_interval = Duration::from_secs(120);
            c.scheduler_enabled = false;
        },
        BuildOptions::default(),
    )
    .await;
    let sys = system(&app).await;
    assert_eq!(
        sys["retention"],
        json!({"max_age_hours": 48, "max_bytes": 5_000_000_000u64,
               "min_free_disk_bytes": 0, "sweep_interval_seconds": 120})
    );
    assert_eq!(sys["scheduler"]["enabled"], false);
    assert_eq!(
        sys["disk"]["snapshots_dir"],
        app.state.ops.config.snapshots_dir.display().to_string()
    );
    assert_eq!(sys["cameras"], json!([]));
    app.stop().await;

    // Keep-forever and no cap are nulls, not zeros.
    let app = spawn_app_with(
        |c| {
            c.retention_age = None;
            c.snapshot_max_bytes = None;
        },
        BuildOptions::default(),
    )
    .await;
    let sys = system(&app).await;
    assert!(sys["retention"]["max_age_hours"].is_null(), "{sys}");
    assert!(sys["retention"]["max_bytes"].is_null(), "{sys}");
    assert_eq!(sys["scheduler"]["enabled"], true);
    app.stop().await;
}

#[tokio::test]
async fn other_methods_are_405_json_and_the_route_is_documented() {
    let app = spawn_app().await;
    for method in [
        reqwest::Method::POST,
        reqwest::Method::DELETE,
        reqwest::Method::PUT,
    ] {
        let r = app
            .client
            .request(method.clone(), app.url("/api/v1/system"))
            .send()
            .await
            .unwrap();
        let (status, body) = error_of(r).await;
        assert_eq!(status, 405, "{method}");
        assert_eq!(body["code"], "method_not_allowed");
    }
    let doc: Value = app.get("/api/v1/openapi.json").await.json().await.unwrap();
    assert!(
        doc["paths"]["/api/v1/system"]["get"].is_object(),
        "{}",
        doc["paths"]
    );
    assert!(doc["components"]["schemas"]["System"].is_object());
    app.stop().await;
}
