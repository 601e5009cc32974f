//! Live capture over RTSP through the ffmpeg back-end, from a real RTSP server: GStreamer's RTSP
//! server serving a generated H.264 stream (`tests/fixtures/rtsp_server.py`, a child process).

mod common;

use std::time::{Duration, Instant};

use common::rtsp::RtspServer;
use common::{error_of, spawn_app_with, wait_for, TestApp};
use heldar::app::BuildOptions;
use heldar::capture::jpeg;
use serde_json::json;

async fn app(timeout_s: u64) -> TestApp {
    spawn_app_with(
        |c| c.capture_timeout = Duration::from_secs(timeout_s),
        BuildOptions::default(),
    )
    .await
}

/// ffmpeg processes started for camera `id` (Heldar sets `HELDAR_CAMERA_ID` in their
/// environment; the stream URL is not on their command line).
fn ffmpeg_processes_for(id: &str) -> usize {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let tag = format!("HELDAR_CAMERA_ID={id}");
    dir.filter_map(Result::ok)
        .filter(|e| {
            std::fs::read(e.path().join("cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains("ffmpeg"))
        })
        .filter_map(|e| std::fs::read(e.path().join("environ")).ok())
        .filter(|env| env.split(|&b| b == 0).any(|v| v == tag.as_bytes()))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_is_grabbed_from_a_real_rtsp_stream() {
    let server = RtspServer::start(&[]);
    let app = app(15).await;
    // No snapshot URL: `auto` picks RTSP.
    app.create_camera(
        json!({"id": "rtsp1", "main_stream_url": server.url(), "snapshot_source": "rtsp"}),
    )
    .await;
    let resp = app.get("/api/v1/cameras/rtsp1/snapshot").await;
    let status = resp.status();
    let body = resp.bytes().await.unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(jpeg::validate(&body), Ok((640, 360)));
    common::camera_in_state(&app, "rtsp1", "online").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtsp_credentials_work_and_wrong_ones_are_auth_failed() {
    let server = RtspServer::start(&["--user", "admin", "--password", "rtsp-Secret_9"]);
    let app = app(15).await;
    app.create_camera(
        json!({"id": "good", "main_stream_url": server.url(), "snapshot_source": "rtsp",
        "username": "admin", "password": "rtsp-Secret_9"}),
    )
    .await;
    app.create_camera(
        json!({"id": "bad", "main_stream_url": server.url(), "snapshot_source": "rtsp",
        "username": "admin", "password": "not-it-42"}),
    )
    .await;
    let resp = app.get("/api/v1/cameras/good/snapshot").await;
    assert_eq!(resp.status(), 200);
    assert!(jpeg::validate(&resp.bytes().await.unwrap()).is_ok());

    let (status, body) = error_of(app.get("/api/v1/cameras/bad/snapshot").await).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (502, Some("auth_failed")),
        "{body}"
    );
    let text = body.to_string();
    assert!(
        !text.contains("not-it-42") && !text.contains("rtsp-Secret_9"),
        "{text}"
    );
    common::camera_in_state(&app, "bad", "auth_failed").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_rtsp_server_times_out_and_ffmpeg_is_killed() {
    let server = RtspServer::start(&["--silent-accept"]);
    let app = app(2).await;
    app.create_camera(
        json!({"id": "silent", "main_stream_url": server.url(), "snapshot_source": "rtsp"}),
    )
    .await;
    let started = Instant::now();
    let (status, body) = error_of(app.get("/api/v1/cameras/silent/snapshot").await).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (504, Some("timeout")),
        "{body}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "took {:?}",
        started.elapsed()
    );
    // The ffmpeg process of that grab is gone (killed on the deadline).
    wait_for(
        "ffmpeg to be gone after the deadline",
        Duration::from_secs(5),
        || async { (ffmpeg_processes_for("silent") == 0).then_some(()) },
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn a_missing_ffmpeg_is_a_clear_error_not_a_hang() {
    let app = spawn_app_with(
        |c| c.ffmpeg_bin = "/nonexistent/ffmpeg".into(),
        BuildOptions::default(),
    )
    .await;
    app.create_camera(json!({"id": "noff", "main_stream_url": "rtsp://127.0.0.1:9/stream", "snapshot_source": "rtsp"}))
        .await;
    let (status, body) = error_of(app.get("/api/v1/cameras/noff/snapshot").await).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (502, Some("ffmpeg_missing")),
        "{body}"
    );
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("HELDAR_FFMPEG_BIN"));
    app.stop().await;
}
