//! Every byte of an RTSP camera's user name and password reaches the camera unchanged, with Basic
//! and Digest auth, against GStreamer's RTSP server (`tests/fixtures/rtsp_server.py`, several
//! accounts on one server); and the credentials never appear on ffmpeg's command line.

mod common;

use std::time::Duration;

use common::rtsp::RtspServer;
use common::{spawn_app_with, TestApp};
use heldar::app::BuildOptions;
use heldar::capture::jpeg;
use serde_json::json;

/// One account per special character, in the password and (where RTSP auth allows) in the user
/// name. Not in user names: `:` (Basic and Digest cannot carry it), and with Digest `"` and `\`
/// (ffmpeg writes the Digest `username="…"` without escaping them; docs/compatibility.md).
fn accounts(digest: bool) -> Vec<(String, String)> {
    let specials = [
        "@", "#", "%", ":", "/", "?", "&", "=", "+", " ", "!", "'", "\"", "é", "%25", "\\",
    ];
    specials
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let user = if *c == ":" || (digest && matches!(*c, "\"" | "\\")) {
                format!("user{i}")
            } else {
                format!("u{c}{i}")
            };
            (user, format!("ab{c}cd{c}{i}"))
        })
        .collect()
}

/// The command lines of running ffmpeg processes.
fn ffmpeg_command_lines() -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains("ffmpeg"))
        .collect()
}

async fn every_account_gets_a_frame(auth: &str) {
    let accounts = accounts(auth == "digest");
    let users_json = serde_json::to_string(
        &accounts
            .iter()
            .map(|(u, p)| vec![u.clone(), p.clone()])
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let server = RtspServer::start(&["--auth", auth, "--users-json", &users_json]);
    let app: TestApp = spawn_app_with(
        |c| c.capture_timeout = Duration::from_secs(15),
        BuildOptions::default(),
    )
    .await;
    for (i, (user, pass)) in accounts.iter().enumerate() {
        app.create_camera(
            json!({"id": format!("cam{i}"), "main_stream_url": server.url(),
            "snapshot_source": "rtsp", "username": user, "password": pass}),
        )
        .await;
    }
    // The same accounts given in the URL's userinfo, percent-encoded by the operator.
    let enc = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    for (i, (user, pass)) in accounts.iter().enumerate() {
        let url = server
            .url()
            .replace("rtsp://", &format!("rtsp://{}:{}@", enc(user), enc(pass)));
        app.create_camera(
            json!({"id": format!("inurl{i}"), "main_stream_url": url, "snapshot_source": "rtsp"}),
        )
        .await;
    }
    // While the grabs run, watch ffmpeg's command lines for any password.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watch = tokio::spawn({
        let passwords: Vec<String> = accounts.iter().map(|(_, p)| p.clone()).collect();
        let stop = stop.clone();
        async move {
            let (mut seen, mut watched) = (Vec::new(), 0usize);
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                for line in ffmpeg_command_lines() {
                    watched += 1;
                    if passwords
                        .iter()
                        .any(|p| line.contains(p.as_str()) || line.contains("%25cd"))
                    {
                        seen.push(line);
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (seen, watched)
        }
    });
    let mut failures = Vec::new();
    for (i, (user, pass)) in accounts.iter().enumerate() {
        for id in [format!("cam{i}"), format!("inurl{i}")] {
            let resp = app.get(&format!("/api/v1/cameras/{id}/snapshot")).await;
            let status = resp.status();
            let body = resp.bytes().await.unwrap();
            if status != 200 || jpeg::validate(&body).is_err() {
                failures.push(format!(
                    "{id} {user:?}/{pass:?}: {status} {}",
                    String::from_utf8_lossy(&body)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{auth}: {failures:#?}");
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (seen, watched) = watch.await.unwrap();
    assert!(
        seen.is_empty(),
        "passwords on ffmpeg's command line: {seen:?}"
    );
    assert!(
        watched > 0,
        "no ffmpeg command line was ever seen: the watch proves nothing"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn special_characters_in_rtsp_credentials_reach_the_camera_with_basic_auth() {
    every_account_gets_a_frame("basic").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn special_characters_in_rtsp_credentials_reach_the_camera_with_digest_auth() {
    every_account_gets_a_frame("digest").await;
}
