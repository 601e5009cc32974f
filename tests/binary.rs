//! The real `heldar` binary, as an operator runs it: bad settings stop it with one line; `serve
//! --demo` serves live frames; secrets never reach a response or a log line; SIGTERM exits 0.

mod common;

use std::process::Stdio;

use base64::Engine;
use bytes::Bytes;
use common::{heldar_cmd, ServerProcess};
use heldar::capture::jpeg;
use heldar::fakecam::{pattern, FakeAuth, FakeCamera, FrameSupply};
use serde_json::json;

#[test]
fn a_bad_setting_stops_start_up_with_one_line_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    for (var, value, allowed) in [
        ("HELDAR_API_PORT", "eighty", "port number"),
        (
            "HELDAR_SNAPSHOT_SCHEDULER_ENABLED",
            "sometimes",
            "true or false",
        ),
        ("HELDAR_CAPTURE_TIMEOUT_S", "1.5", "whole number"),
        ("HELDAR_API_HOST", "0.0.0.0", "HELDAR_API_TOKEN"),
    ] {
        let out = heldar_cmd(dir.path())
            .args(["serve"])
            .env(var, value)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{var}");
        let err = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 1, "{var}: {err}");
        assert!(lines[0].contains(&format!("{var}=\"{value}\"")), "{err}");
        assert!(lines[0].contains(allowed), "{err}");
    }
    // An unwritable data directory names its variable too.
    std::fs::write(dir.path().join("file"), b"x").unwrap();
    let out = heldar_cmd(dir.path())
        .args(["serve", "--api-port", "0"])
        .env("HELDAR_DATA_DIR", dir.path().join("file").join("data"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("HELDAR_DATA_DIR"));
}

/// A port already taken is found before anything is created or started: one line, no data
/// folder, no database, no key, no scheduler.
#[test]
fn a_port_in_use_stops_start_up_with_one_line_before_anything_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let out = heldar_cmd(dir.path())
        .args(["serve"])
        .env("HELDAR_API_PORT", port.to_string())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let errors: Vec<&&str> = lines
        .iter()
        .filter(|l| l.contains("cannot listen on"))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains(&port.to_string()), "{stderr}");
    assert!(
        !stderr.contains("scheduler started") && !stderr.contains("reconciliation"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("data").exists(),
        "nothing is created before the port is known to be free"
    );
}

#[test]
fn serve_help_lists_every_variable_with_its_default() {
    let dir = tempfile::tempdir().unwrap();
    let out = heldar_cmd(dir.path())
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for var in [
        "HELDAR_DATA_DIR",
        "HELDAR_SNAPSHOTS_DIR",
        "HELDAR_DATABASE_URL",
        "HELDAR_API_HOST",
        "HELDAR_API_PORT",
        "HELDAR_FFMPEG_BIN",
        "HELDAR_SNAPSHOT_SCHEDULER_ENABLED",
        "HELDAR_SNAPSHOT_SCHEDULER_INTERVAL_S",
        "HELDAR_SNAPSHOT_RETENTION_HOURS",
        "HELDAR_RETENTION_INTERVAL_S",
        "HELDAR_SNAPSHOT_MAX_GB",
        "HELDAR_MIN_FREE_DISK_GB",
        "HELDAR_CAPTURE_TIMEOUT_S",
        "HELDAR_CAPTURE_CONCURRENCY",
        "HELDAR_FFMPEG_CONCURRENCY",
        "HELDAR_API_TOKEN",
        "HELDAR_SECRET_KEY_FILE",
        "HELDAR_LOG",
    ] {
        assert!(help.contains(var), "{var} missing from serve --help");
    }
    assert!(help.contains("[default: 8000]"));
    assert!(help.contains("--demo"));
}

/// Every command's `--help` (which shows the environment's values of its settings) with every
/// secret-carrying variable set: no secret is printed. An operator who exported
/// HELDAR_DATABASE_URL with its password must not see it on their terminal.
#[test]
fn no_help_text_shows_a_secret_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "Secr3tValue-9271";
    let vars = [
        (
            "HELDAR_DATABASE_URL",
            format!("postgres://heldar:{secret}@db.invalid:5432/h"),
        ),
        (
            "HELDAR_MIGRATE_TO",
            format!("postgres://heldar:{secret}@db.invalid:5432/f"),
        ),
        (
            "HELDAR_BENCH_POSTGRES",
            format!("postgres://heldar:{secret}@db.invalid/b"),
        ),
        ("HELDAR_STORAGE_URL", format!("s3://{secret}/frames")),
        ("HELDAR_API_TOKEN", secret.to_string()),
        ("HELDAR_TOKEN", secret.to_string()),
        ("HELDAR_MQTT_PASSWORD", secret.to_string()),
        ("AWS_SECRET_ACCESS_KEY", secret.to_string()),
        ("AWS_SESSION_TOKEN", secret.to_string()),
    ];
    let top = heldar_cmd(dir.path()).arg("--help").output().unwrap();
    let top = String::from_utf8(top.stdout).unwrap();
    let commands: Vec<String> = top
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect();
    assert!(commands.len() > 10, "{top}");
    for args in std::iter::once(vec!["--help".to_string()]).chain(
        commands
            .iter()
            .map(|c| vec![c.clone(), "--help".to_string()]),
    ) {
        let mut cmd = heldar_cmd(dir.path());
        cmd.args(&args);
        for (k, v) in &vars {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "heldar {args:?}: {text}");
        assert!(
            !text.contains(secret),
            "heldar {args:?} shows a secret:\n{text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_serves_live_frames_secrets_stay_secret_and_sigterm_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = heldar_cmd(dir.path());
    cmd.args(["serve", "--demo"])
        .env("HELDAR_LOG", "debug")
        .env("HELDAR_CAPTURE_TIMEOUT_S", "3");
    let server = ServerProcess::start(cmd);
    let client = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", server.base);
    let mut seen = Vec::<String>::new();

    // The demo camera is registered and gives a real 640×360 JPEG.
    let demo = client
        .get(url("/api/v1/cameras/demo/snapshot"))
        .send()
        .await
        .unwrap();
    assert_eq!(demo.status(), 200);
    let jpg = demo.bytes().await.unwrap();
    assert_eq!(jpeg::validate(&jpg), Ok((640, 360)));

    // A full credential scenario with a distinctive password.
    let secret = "Tr0ub4dor&3-horse";
    let cam = FakeCamera::start(
        FakeAuth::Digest {
            user: "admin".into(),
            pass: secret.into(),
        },
        FrameSupply::Static(Bytes::from(pattern::solid_jpeg(64, 48, [1, 2, 3]))),
    )
    .await
    .unwrap();
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let encoded: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    // A real RTSP server with credentials (its password URL-safe, as camera UIs tend to require).
    let rtsp_secret = "Rtsp9SecretWord";
    let rtsp = common::rtsp::RtspServer::start(&["--user", "admin", "--password", rtsp_secret]);
    let rtsp_url = |pass: &str| format!("rtsp://admin:{pass}@127.0.0.1:{}/stream", rtsp.port);
    let bodies = [
        json!({"id": "gate-rtsp", "main_stream_url": rtsp_url(rtsp_secret), "snapshot_source": "rtsp"}),
        json!({"id": "gate-rtsp-wrong", "main_stream_url": rtsp_url(&format!("{rtsp_secret}x")), "snapshot_source": "rtsp"}),
        json!({"id": "door", "snapshot_url": cam.snapshot_url(), "username": "admin", "password": secret}),
        json!({"id": "door-wrong", "snapshot_url": cam.snapshot_url(), "username": "admin", "password": format!("{secret}x")}),
        json!({"id": "door-rtsp", "main_stream_url": format!("rtsp://admin:{encoded}@127.0.0.1:{closed_port}/live"), "snapshot_source": "rtsp"}),
        json!({"id": "door-reolink", "vendor": "reolink", "address": "127.0.0.1", "http_port": closed_port, "username": "admin", "password": secret}),
    ];
    for body in &bodies {
        let r = client
            .post(url("/api/v1/cameras"))
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        seen.push(r.text().await.unwrap());
    }
    let ok = client
        .get(url("/api/v1/cameras/door/snapshot"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let ok = client
        .get(url("/api/v1/cameras/gate-rtsp/snapshot?store=true"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200, "RTSP capture with credentials");
    for id in ["door-wrong", "door-rtsp", "door-reolink", "gate-rtsp-wrong"] {
        let r = client
            .get(url(&format!("/api/v1/cameras/{id}/snapshot")))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_server_error(), "{id}");
        seen.push(r.text().await.unwrap());
    }
    // Everything Heldar exports: the API's views, the frame list, metrics (labels included),
    // the API description and health.
    for path in [
        "/api/v1/cameras",
        "/api/v1/cameras/door",
        "/api/v1/cameras/door-rtsp",
        "/api/v1/cameras/gate-rtsp",
        "/api/v1/cameras/gate-rtsp/snapshots",
        "/metrics",
        "/api/v1/openapi.json",
        "/api/v1/health",
    ] {
        seen.push(
            client
                .get(url(path))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        );
    }
    let patched = client
        .patch(url("/api/v1/cameras/door"))
        .json(&json!({"password": format!("{secret}-2")}))
        .send()
        .await
        .unwrap();
    seen.push(patched.text().await.unwrap());

    let (status, logs) = server.stop_with(nix::sys::signal::Signal::SIGTERM);
    assert!(status.success(), "exit status {status:?}; logs: {logs:?}");
    assert!(
        logs.iter().any(|l| l.contains("shutdown complete")),
        "{logs:?}"
    );
    assert!(
        logs.iter().any(|l| l.contains("capture failed")),
        "the failures were logged"
    );

    let b64 = base64::engine::general_purpose::STANDARD;
    let forms = [
        secret.to_string(),
        encoded.clone(),
        b64.encode(secret),
        b64.encode(format!("admin:{secret}")),
        rtsp_secret.to_string(),
        b64.encode(format!("admin:{rtsp_secret}")),
    ];
    assert!(
        seen.iter().any(|t| t.contains("heldar_captures_total")),
        "metrics were scraped"
    );
    // The database files hold sealed values only.
    let mut db_text = Vec::new();
    for f in ["heldar.db", "heldar.db-wal"] {
        if let Ok(b) = std::fs::read(dir.path().join("data").join(f)) {
            db_text.push(String::from_utf8_lossy(&b).into_owned());
        }
    }
    for text in seen.iter().chain(logs.iter()).chain(db_text.iter()) {
        for form in &forms {
            assert!(
                !text.contains(form.as_str()),
                "secret form {form:?} leaked in: {text}"
            );
        }
    }
}

/// The demo camera exists only while `--demo` is given: a plain `serve` on the same data folder
/// removes it (its port went with the `--demo` run) instead of failing on it forever, and leaves
/// a camera the operator named `demo` alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_camera_lives_only_while_serve_runs_with_demo() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let mut cmd = heldar_cmd(dir.path());
    cmd.args(["serve", "--demo"]);
    let server = ServerProcess::start(cmd);
    let r = client
        .get(server.url("/api/v1/cameras/demo"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (status, _) = server.stop_with(nix::sys::signal::Signal::SIGTERM);
    assert!(status.success());

    let mut cmd = heldar_cmd(dir.path());
    cmd.args(["serve"]);
    let server = ServerProcess::start(cmd);
    let r = client
        .get(server.url("/api/v1/cameras/demo"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "the demo camera is gone without --demo");
    // A camera the operator calls `demo` is theirs.
    let r = client
        .post(server.url("/api/v1/cameras"))
        .json(&json!({"id": "demo", "snapshot_url": "http://127.0.0.1:9/cgi-bin/snap.cgi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let (status, logs) = server.stop_with(nix::sys::signal::Signal::SIGTERM);
    assert!(status.success());
    assert!(
        logs.iter().any(|l| l.contains("removed the demo camera")),
        "{logs:#?}"
    );

    let mut cmd = heldar_cmd(dir.path());
    cmd.args(["serve"]);
    let server = ServerProcess::start(cmd);
    let r = client
        .get(server.url("/api/v1/cameras/demo"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the operator's own `demo` camera stays");
    let (status, _) = server.stop_with(nix::sys::signal::Signal::SIGTERM);
    assert!(status.success());
}

/// A SQLite database whose folder does not exist stops start-up with a sentence naming the
/// folder, before any folder (the data folder, its snapshots and timelapses) is made.
#[test]
fn a_database_in_a_missing_folder_stops_start_up_before_anything_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-folder");
    let out = heldar_cmd(dir.path())
        .args(["serve"])
        .env(
            "HELDAR_DATABASE_URL",
            format!("sqlite://{}/heldar.db", missing.display()),
        )
        .env("HELDAR_API_PORT", "0")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("its folder {} does not exist", missing.display())),
        "{stderr}"
    );
    assert!(
        !dir.path().join("data").exists(),
        "nothing is created before the database is known to open"
    );
}

/// A timelapses folder that cannot be made (a file is in its place) is named as the data
/// folder's timelapses folder, not as the data folder itself.
#[test]
fn a_timelapses_folder_that_cannot_be_made_is_named_as_the_data_dirs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("timelapses"), b"not a folder").unwrap();
    let out = heldar_cmd(dir.path())
        .args(["serve"])
        .env("HELDAR_API_PORT", "0")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "HELDAR_DATA_DIR={:?} cannot be used: its timelapses folder {} must be a directory",
            data.display().to_string(),
            data.join("timelapses").display()
        )),
        "{stderr}"
    );
}

/// A misspelt setting (in the environment or in `.env`) is not silently ignored: start-up goes
/// on with the default and logs a WARN naming the variable and the setting it is closest to,
/// never its value.
#[tokio::test]
async fn a_misspelt_setting_is_named_with_the_one_meant() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".env"), "HELDAR_SNAPSHOT_MAX_G=5\n").unwrap();
    let mut cmd = heldar_cmd(dir.path());
    cmd.args(["serve", "--api-port", "0"])
        .env("HELDAR_API_PROT", "8011")
        .env("HELDAR_SNAPSHOT_RETENTON_HOURS", "2")
        .env("HELDAR_API_TOKN", "misspelt-secret-4242")
        .env("HELDAR_NOTHING_LIKE_IT", "1");
    let server = ServerProcess::start(cmd);
    let (_, logs) = server.stop_with(nix::sys::signal::Signal::SIGTERM);
    let said = |name: &str| {
        logs.iter()
            .find(|l| l.contains(&format!("{name} is set but is not a Heldar setting")))
            .unwrap_or_else(|| panic!("{name} not named: {logs:#?}"))
            .clone()
    };
    for (name, meant) in [
        ("HELDAR_API_PROT", "HELDAR_API_PORT"),
        (
            "HELDAR_SNAPSHOT_RETENTON_HOURS",
            "HELDAR_SNAPSHOT_RETENTION_HOURS",
        ),
        ("HELDAR_API_TOKN", "HELDAR_API_TOKEN"),
        ("HELDAR_SNAPSHOT_MAX_G", "HELDAR_SNAPSHOT_MAX_GB"),
    ] {
        let line = said(name);
        assert!(line.contains("WARN"), "{line}");
        assert!(line.contains(&format!("did you mean {meant}?")), "{line}");
    }
    assert!(said("HELDAR_NOTHING_LIKE_IT").contains("heldar serve --help"));
    assert!(
        logs.iter().all(|l| !l.contains("misspelt-secret-4242")),
        "a value was logged"
    );
    // The settings that are spelt right, including the test's own, are not reported.
    assert!(
        logs.iter()
            .all(|l| !l.contains("HELDAR_DATA_DIR is set but")),
        "{logs:#?}"
    );
}

/// A `.env` that cannot be parsed stops every command with one line that says where, never
/// the file's contents (dotenvy's own error quotes the rest of the file, secrets included); a
/// misspelt variable is named even when start-up is refused, since it is often why.
#[test]
fn a_broken_env_file_shows_no_value_and_a_typo_is_named_before_a_refusal() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "HELDAR_MQTT_PASSWORD=\"sup3rsecret\nHELDAR_API_TOKEN=another-secret-77\n",
    )
    .unwrap();
    let out = heldar_cmd(dir.path())
        .args(["serve"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("heldar: cannot read .env: a line cannot be parsed"),
        "{err}"
    );
    assert!(
        !err.contains("sup3rsecret") && !err.contains("another-secret-77"),
        "{err}"
    );

    std::fs::remove_file(dir.path().join(".env")).unwrap();
    let out = heldar_cmd(dir.path())
        .args(["serve"])
        .env("HELDAR_API_HOST", "0.0.0.0")
        .env("HELDAR_API_TOKN", "a-token-misspelt-99")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(lines[0].contains("did you mean HELDAR_API_TOKEN?"), "{err}");
    assert!(lines[1].contains("HELDAR_API_HOST"), "{err}");
    assert!(!err.contains("a-token-misspelt-99"), "{err}");
}
