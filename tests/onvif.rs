//! ONVIF discovery, probe and add against a fake ONVIF camera that speaks SOAP over real HTTP
//! and WS-Discovery over real UDP multicast on the loopback interface
//! (`tests/common/fake_onvif.rs`). Each case is one kind of device: normal, wrong password,
//! clock hours off, silent at GetProfiles, H.265 only, and hostile ones.

mod common;

use std::time::Duration;

use chrono::TimeDelta;
use common::fake_onvif::{Behaviour, FakeOnvif, TOLERANCE_S};
use common::{error_of, spawn_app, TestApp};
use serde_json::{json, Value};

fn creds(fake: &FakeOnvif, b: &Behaviour) -> Value {
    json!({"address": "127.0.0.1", "port": fake.addr.port(), "username": b.username, "password": b.password})
}

async fn probe(app: &TestApp, body: &Value) -> reqwest::Response {
    app.post_json("/api/v1/onvif/probe", body).await
}

#[tokio::test]
async fn a_normal_device_is_probed_added_and_captured() {
    let b = Behaviour::normal();
    let fake = FakeOnvif::start(b.clone()).await;
    let app = spawn_app().await;

    let resp = probe(&app, &creds(&fake, &b)).await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(
        !text.contains("xyzzy"),
        "the password is in the answer: {text}"
    );
    let p: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(p["device"]["manufacturer"], "FakeCam");
    assert_eq!(p["device"]["model"], "FC-1");
    assert_eq!(p["device"]["serial"], "SN0001");
    let profiles = p["profiles"].as_array().unwrap();
    assert_eq!(profiles.len(), 2, "{p}");
    assert_eq!(profiles[0]["token"], "prof_main");
    assert_eq!(profiles[0]["encoding"], "H264");
    assert_eq!(profiles[0]["width"], 1920);
    assert_eq!(profiles[1]["height"], 360);
    // The stream URI came with user:password@ inside: it is given without them.
    assert_eq!(profiles[1]["stream_uri"], "rtsp://127.0.0.1:8554/prof_sub");
    let base = format!("http://127.0.0.1:{}", fake.addr.port());
    assert_eq!(profiles[1]["snapshot_uri"], format!("{base}/snap.jpg"));
    assert!(profiles.iter().all(|p| p.get("problem").is_none()), "{p}");
    assert_eq!(p["suggested"]["profile_token"], "prof_sub");
    assert_eq!(p["suggested"]["rtsp_url"], "rtsp://127.0.0.1:8554/prof_sub");
    assert_eq!(p["suggested"]["snapshot_url"], format!("{base}/snap.jpg"));
    // The media service was announced at 192.0.2.1: Heldar used the address it reached.
    let seen = fake.seen();
    assert!(
        seen.operations.contains(&"GetProfiles".to_string()),
        "{seen:?}"
    );
    assert_eq!(seen.operations[0], "GetSystemDateAndTime");
    assert!(seen.refused.is_empty(), "{seen:?}");
    // The password never travels, only its digest.
    assert!(seen.bodies.iter().all(|b| !b.contains("xyzzy")));

    let mut add = creds(&fake, &b);
    add["id"] = json!("gate");
    let resp = app.post_json("/api/v1/onvif/add", &add).await;
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.headers()["location"], "/api/v1/cameras/gate");
    let text = resp.text().await.unwrap();
    assert!(!text.contains("xyzzy"), "{text}");
    let cam: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(cam["vendor"], "onvif");
    assert_eq!(cam["has_password"], true, "{cam}");
    assert_eq!(cam["username"], "onvifuser");
    assert_eq!(
        cam["effective_urls"]["snapshot"],
        format!("{base}/snap.jpg"),
        "{cam}"
    );
    assert_eq!(
        cam["effective_urls"]["sub_stream"],
        "rtsp://127.0.0.1:8554/prof_sub"
    );
    assert_eq!(
        cam["effective_urls"]["main_stream"],
        "rtsp://127.0.0.1:8554/prof_main"
    );

    // Its first capture works: the snapshot URI serves a real JPEG.
    let shot = app
        .client
        .post(app.url("/api/v1/cameras/gate/snapshot?store=true"))
        .send()
        .await
        .unwrap();
    assert_eq!(shot.status(), 200);
    assert_eq!(shot.headers()["content-type"], "image/jpeg");
    let jpeg = shot.bytes().await.unwrap();
    assert_eq!(&jpeg[..2], &[0xFF, 0xD8]);
    assert_eq!(fake.seen().snapshots, 1);

    // Adding it twice is a conflict, not a second camera, and the taken id is refused before
    // the device is contacted (and sent the credentials) again.
    let asked = fake.seen().operations.len();
    let (status, body) = error_of(app.post_json("/api/v1/onvif/add", &add).await).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        fake.seen().operations.len(),
        asked,
        "the device was probed for nothing"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_wrong_password_is_a_clear_auth_error() {
    let b = Behaviour::normal();
    let fake = FakeOnvif::start(b.clone()).await;
    let app = spawn_app().await;
    let mut body = creds(&fake, &b);
    body["password"] = json!("not-the-password-qwerty");
    let (status, e) = error_of(probe(&app, &body).await).await;
    assert_eq!(status, 502, "{e}");
    assert_eq!(e["code"], "auth_failed");
    let msg = e["error"].as_str().unwrap();
    assert!(msg.contains("refused the user name or password"), "{msg}");
    assert!(msg.contains("GetDeviceInformation"), "{msg}");
    assert!(!e.to_string().contains("qwerty"), "{e}");
    let seen = fake.seen();
    assert_eq!(seen.refused.len(), 1, "{seen:?}");
    assert!(seen.refused[0].contains("password digest"), "{seen:?}");
    // And nothing was created by an add with it.
    let (status, _) = error_of(app.post_json("/api/v1/onvif/add", &body).await).await;
    assert_eq!(status, 502);
    let cams: Value = app.get("/api/v1/cameras").await.json().await.unwrap();
    assert_eq!(cams.as_array().unwrap().len(), 0, "{cams}");
    app.stop().await;
}

#[tokio::test]
async fn a_clock_two_hours_off_is_corrected_in_created() {
    let mut b = Behaviour::normal();
    b.clock_offset = TimeDelta::hours(2);
    let fake = FakeOnvif::start(b.clone()).await;
    let app = spawn_app().await;
    let resp = probe(&app, &creds(&fake, &b)).await;
    assert_eq!(resp.status(), 200);
    let p: Value = resp.json().await.unwrap();
    let offset = p["clock_offset_s"].as_i64().unwrap();
    assert!((7195..=7205).contains(&offset), "{p}");
    assert_eq!(p["profiles"].as_array().unwrap().len(), 2);
    // Every authenticated request carried a Created within the device's tolerance of its own
    // clock, which is two hours ahead of Heldar's: without the correction each would be refused.
    let seen = fake.seen();
    assert!(seen.refused.is_empty(), "{seen:?}");
    assert!(seen.created_skew_s.len() >= 6, "{seen:?}");
    assert!(
        seen.created_skew_s.iter().all(|s| s.abs() <= TOLERANCE_S),
        "{seen:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_device_that_never_answers_get_profiles_is_a_timeout_naming_it() {
    let mut b = Behaviour::normal();
    b.silent_get_profiles = true;
    let fake = FakeOnvif::start(b.clone()).await;
    let app = spawn_app().await;
    let started = std::time::Instant::now();
    let (status, e) = error_of(probe(&app, &creds(&fake, &b)).await).await;
    assert_eq!(status, 504, "{e}");
    assert_eq!(e["code"], "timeout");
    assert!(e["error"].as_str().unwrap().contains("GetProfiles"), "{e}");
    // Bounded by the per-request timeout (5 s), well before the probe's deadline.
    assert!(started.elapsed() < Duration::from_secs(10));
    app.stop().await;
}

#[tokio::test]
async fn h265_only_profiles_are_listed_with_the_ffmpeg_note() {
    let mut b = Behaviour::normal();
    for p in &mut b.profiles {
        p.encoding = "H265";
    }
    let fake = FakeOnvif::start(b.clone()).await;
    let app = spawn_app().await;
    let resp = probe(&app, &creds(&fake, &b)).await;
    assert_eq!(resp.status(), 200);
    let p: Value = resp.json().await.unwrap();
    for prof in p["profiles"].as_array().unwrap() {
        assert_eq!(prof["encoding"], "H265", "{p}");
        assert!(prof["note"].as_str().unwrap().contains("ffmpeg"), "{p}");
        assert!(prof.get("problem").is_none(), "{p}");
    }
    // Still usable: the smallest is suggested.
    assert_eq!(p["suggested"]["profile_token"], "prof_sub");
    app.stop().await;
}

#[tokio::test]
async fn hostile_devices_are_refused_with_a_sentence() {
    let app = spawn_app().await;

    let mut b = Behaviour::normal();
    b.huge_get_profiles = true;
    let fake = FakeOnvif::start(b.clone()).await;
    let (status, e) = error_of(probe(&app, &creds(&fake, &b)).await).await;
    assert_eq!(status, 502, "{e}");
    assert_eq!(e["code"], "response_too_large");
    let msg = e["error"].as_str().unwrap();
    assert!(
        msg.contains("GetProfiles is over 1024 KiB") && msg.contains("refused"),
        "{msg}"
    );

    let mut b = Behaviour::normal();
    b.entity_bomb = true;
    let fake = FakeOnvif::start(b.clone()).await;
    let (status, e) = error_of(probe(&app, &creds(&fake, &b)).await).await;
    assert_eq!(status, 502, "{e}");
    assert_eq!(e["code"], "bad_xml");
    let msg = e["error"].as_str().unwrap();
    assert!(
        msg.starts_with("the device answered with XML Heldar cannot read")
            && msg.contains("the device's XML declares entities; refused"),
        "{msg}"
    );

    // A `file:` snapshot URI: that profile has a problem and is not suggested.
    let mut b = Behaviour::normal();
    b.profiles[1].snapshot = Some("file:///etc/passwd".into());
    let fake = FakeOnvif::start(b.clone()).await;
    let resp = probe(&app, &creds(&fake, &b)).await;
    assert_eq!(resp.status(), 200);
    let p: Value = resp.json().await.unwrap();
    let sub = &p["profiles"][1];
    assert_eq!(sub["token"], "prof_sub");
    assert!(sub["snapshot_uri"].is_null(), "{p}");
    let problem = sub["problem"].as_str().unwrap();
    assert!(
        problem.contains("scheme file:") && problem.contains("not used"),
        "{problem}"
    );
    assert!(!problem.contains("/etc/passwd"), "{problem}");
    assert_eq!(p["suggested"]["profile_token"], "prof_main", "{p}");
    // Asking for it by name is refused too.
    let mut add = creds(&fake, &b);
    add["profile_token"] = json!("prof_sub");
    let (status, e) = error_of(app.post_json("/api/v1/onvif/add", &add).await).await;
    assert_eq!(status, 422, "{e}");
    assert_eq!(e["field"], "profile_token");
    app.stop().await;
}

/// A web server that is not an ONVIF device answers the first SOAP call with an HTML error page
/// (with a DOCTYPE, as most do): the answer names the HTTP status, not "XML declares entities".
#[tokio::test]
async fn a_plain_web_server_is_named_by_its_http_status() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let mut buf = vec![0u8; 65536];
            let _ = sock.read(&mut buf).await;
            let page = "<!DOCTYPE HTML><html><body><h1>Error 501</h1></body></html>";
            let head = format!(
                "HTTP/1.1 501 Not Implemented\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                page.len()
            );
            let _ = sock.write_all(format!("{head}{page}").as_bytes()).await;
        }
    });
    let app = spawn_app().await;
    let body = json!({"address": "127.0.0.1", "port": port, "username": "admin", "password": "pw-not-shown"});
    let (status, e) = error_of(probe(&app, &body).await).await;
    assert_eq!(status, 502, "{e}");
    assert_eq!(e["code"], "onvif_fault", "{e}");
    let msg = e["error"].as_str().unwrap();
    assert!(msg.contains("HTTP 501"), "{msg}");
    assert!(!msg.contains("entities"), "{msg}");
}

#[tokio::test]
async fn bad_bodies_are_422_with_the_field() {
    let app = spawn_app().await;
    for (path, body, field) in [
        ("/api/v1/discovery", json!({"timeout_ms": 50}), "timeout_ms"),
        (
            "/api/v1/discovery",
            json!({"timeout_ms": 20000}),
            "timeout_ms",
        ),
        (
            "/api/v1/discovery",
            json!({"subnet": "10.0.0.0/40"}),
            "subnet",
        ),
        // The probe is IPv4 only: an IPv6 block could never match.
        (
            "/api/v1/discovery",
            json!({"subnet": "fe80::/10"}),
            "subnet",
        ),
        (
            "/api/v1/discovery",
            json!({"interface": "eth0"}),
            "interface",
        ),
        (
            "/api/v1/discovery",
            json!({"interface": "192.0.2.77"}),
            "interface",
        ),
        ("/api/v1/discovery", json!({"bogus": 1}), "body"),
        (
            "/api/v1/onvif/probe",
            json!({"address": "", "username": "u", "password": "p"}),
            "address",
        ),
        (
            "/api/v1/onvif/probe",
            json!({"address": "http://cam/x", "username": "u", "password": "p"}),
            "address",
        ),
        (
            "/api/v1/onvif/probe",
            json!({"address": "cam", "port": 0, "username": "u", "password": "p"}),
            "port",
        ),
        (
            "/api/v1/onvif/probe",
            json!({"address": "cam", "username": "u"}),
            "password",
        ),
        (
            "/api/v1/onvif/add",
            json!({"address": "cam", "username": "u", "password": "p", "id": "Bad Id"}),
            "id",
        ),
    ] {
        let (status, e) = error_of(app.post_json(path, &body).await).await;
        assert_eq!(status, 422, "{path} {body}: {e}");
        assert_eq!(e["field"], field, "{path} {body}: {e}");
    }
    // A metadata endpoint is never contacted.
    let (status, e) = error_of(
        app.post_json(
            "/api/v1/onvif/probe",
            &json!({"address": "169.254.169.254", "username": "u", "password": "p"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 422, "{e}");
    assert_eq!(e["code"], "forbidden_host");
    // Nothing listens: unreachable, a 502 with a sentence.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (status, e) = error_of(
        app.post_json(
            "/api/v1/onvif/probe",
            &json!({"address": "127.0.0.1", "port": port, "username": "u", "password": "p"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 502, "{e}");
    assert_eq!(e["code"], "unreachable");
    // It names the operation, the address with its port, and the cause a person acts on.
    let sentence = e["error"].as_str().unwrap();
    assert!(sentence.contains("GetSystemDateAndTime"), "{e}");
    assert!(sentence.contains(&format!("127.0.0.1:{port}")), "{e}");
    assert!(sentence.contains("Connection refused"), "{e}");

    // A web server that is no ONVIF service: 404 with an HTML page (well-formed, so it parses
    // as XML). Not "bad XML": the status, the path and the port, and a question to check. (The
    // clock read before it is allowed to fail; the first call that must answer says so.)
    let web = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let web_port = web.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        loop {
            let Ok((mut sock, _)) = web.accept().await else {
                return;
            };
            let mut buf = vec![0u8; 65536];
            let _ = sock.read(&mut buf).await;
            let page = "<html><body><h1>Not Found</h1></body></html>";
            let reply = format!(
                "HTTP/1.1 404 Not Found\r\ncontent-type: text/html\r\ncontent-length: {}\r\n\
                 connection: close\r\n\r\n{page}",
                page.len()
            );
            let _ = sock.write_all(reply.as_bytes()).await;
        }
    });
    let (status, e) = error_of(
        app.post_json(
            "/api/v1/onvif/probe",
            &json!({"address": "127.0.0.1", "port": web_port, "username": "u", "password": "p"}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, e["code"].as_str()),
        (502, Some("onvif_fault")),
        "{e}"
    );
    let sentence = e["error"].as_str().unwrap();
    for part in [
        format!("127.0.0.1:{web_port}"),
        "GetDeviceInformation".into(),
        "/onvif/device_service".into(),
        "HTTP 404 Not Found".into(),
    ] {
        assert!(sentence.contains(&part), "{part}: {e}");
    }
    server.abort();
    app.stop().await;
}

/// Real multicast: the probe leaves by the loopback interface (`interface: 127.0.0.1`) for
/// 239.255.255.250:3702, where the fake joined the group; it answers a ProbeMatch by unicast UDP.
#[tokio::test]
async fn discovery_finds_the_device_over_multicast_and_marks_it_registered() {
    let b = Behaviour::normal();
    let mut fake = FakeOnvif::start(b.clone()).await;
    fake.answer_discovery("Fake Gate Cam");
    let app = spawn_app().await;
    let port = fake.addr.port();
    let find = |devices: &Value| -> Option<Value> {
        devices["devices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["port"] == port)
            .cloned()
    };
    let resp = app
        .post_json(
            "/api/v1/discovery",
            &json!({"timeout_ms": 800, "interface": "127.0.0.1", "subnet": "127.0.0.0/8"}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let found: Value = resp.json().await.unwrap();
    let d = find(&found).unwrap_or_else(|| panic!("the fake is not in {found}"));
    assert_eq!(d["address"], "127.0.0.1");
    assert_eq!(d["name"], "Fake Gate Cam");
    assert_eq!(d["hardware"], "FC-1");
    assert_eq!(d["location"], "yard");
    assert_eq!(
        d["xaddrs"][0],
        format!("http://127.0.0.1:{port}/onvif/device_service")
    );
    assert!(d["registered_camera_id"].is_null(), "{d}");

    // A subnet that excludes it filters it out.
    let found: Value = app
        .post_json(
            "/api/v1/discovery",
            &json!({"timeout_ms": 300, "interface": "127.0.0.1", "subnet": "10.0.0.0/8"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(find(&found).is_none(), "{found}");

    // Once added, it is marked.
    let mut add = creds(&fake, &b);
    add["id"] = json!("yard");
    assert_eq!(app.post_json("/api/v1/onvif/add", &add).await.status(), 201);
    let found: Value = app
        .post_json(
            "/api/v1/discovery",
            &json!({"timeout_ms": 800, "interface": "127.0.0.1"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let d = find(&found).unwrap_or_else(|| panic!("the fake is not in {found}"));
    assert_eq!(d["registered_camera_id"], "yard");
    app.stop().await;
}

/// The real binary's log: a probe with a wrong password and an add with the right one leave
/// neither password in any log line.
#[tokio::test]
async fn passwords_are_in_no_log_line() {
    let b = Behaviour::normal();
    let fake = FakeOnvif::start(b.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = common::heldar_cmd(dir.path());
    cmd.arg("serve").env("HELDAR_LOG", "debug");
    let server = common::ServerProcess::start(cmd);
    let client = reqwest::Client::new();
    let mut wrong = creds(&fake, &b);
    wrong["password"] = json!("wrong-pass-plugh");
    let r = client
        .post(server.url("/api/v1/onvif/probe"))
        .json(&wrong)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    assert!(!r.text().await.unwrap().contains("plugh"));
    let mut add = creds(&fake, &b);
    add["id"] = json!("logcam");
    let r = client
        .post(server.url("/api/v1/onvif/add"))
        .json(&add)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    server
        .wait_for_log("camera added from onvif", Duration::from_secs(10))
        .await;
    let (_, logs) = server.stop_with(nix::sys::signal::Signal::SIGTERM);
    let all = logs.join("\n");
    assert!(all.contains("onvif probe"), "{all}");
    assert!(!all.contains("plugh"), "the wrong password is in the log");
    assert!(!all.contains("xyzzy"), "the password is in the log");
}

/// `heldar discover` prints the devices the server found, as a table or the API's JSON.
#[tokio::test]
async fn the_cli_lists_discovered_devices() {
    let b = Behaviour::normal();
    let mut fake = FakeOnvif::start(b.clone()).await;
    fake.answer_discovery("CLI Cam");
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let run = |json: bool| {
        let mut cmd = common::heldar_cmd(dir.path());
        cmd.args([
            "discover",
            "--interface",
            "127.0.0.1",
            "--wait-ms",
            "800",
            "--url",
            &app.base,
        ]);
        if json {
            cmd.arg("--json");
        }
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
    };
    let out = run(false).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let port = fake.addr.port().to_string();
    let row = stdout
        .lines()
        .find(|l| l.contains(&port))
        .unwrap_or_else(|| panic!("no row for port {port}: {stdout}"));
    assert!(
        row.contains("127.0.0.1") && row.contains("CLI Cam") && row.contains("FC-1"),
        "{row}"
    );
    let out = run(true).await.unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["devices"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["name"] == "CLI Cam"),
        "{v}"
    );
    app.stop().await;
}

/// `heldar onvif probe` and `heldar onvif add`, the password from stdin (never in argv, never
/// printed).
#[tokio::test]
async fn the_cli_probes_and_adds_with_the_password_from_stdin() {
    let b = Behaviour::normal();
    let fake = FakeOnvif::start(b.clone()).await;
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let port = fake.addr.port().to_string();
    let run = |args: Vec<String>| {
        let mut cmd = common::heldar_cmd(dir.path());
        cmd.args(&args)
            .args(["--url", &app.base])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let password = b.password;
        tokio::task::spawn_blocking(move || {
            use std::io::Write;
            let mut child = cmd.spawn().unwrap();
            writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
            child.wait_with_output().unwrap()
        })
    };
    let base = |sub: &str| -> Vec<String> {
        [
            "onvif",
            sub,
            "127.0.0.1",
            "--port",
            &port,
            "--username",
            "onvifuser",
            "--password-stdin",
        ]
        .map(String::from)
        .to_vec()
    };
    let out = run(base("probe")).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("FakeCam FC-1"), "{stdout}");
    assert!(
        stdout.contains("prof_sub *"),
        "the suggested profile is marked: {stdout}"
    );
    assert!(stdout.contains("640×360"), "{stdout}");
    assert!(!stdout.contains("xyzzy"), "{stdout}");
    let mut add = base("add");
    add.extend(["--id".to_string(), "clicam".to_string()]);
    let out = run(add).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("added camera clicam"), "{stdout}");
    assert!(!stdout.contains("xyzzy"), "{stdout}");
    let cam: Value = app
        .get("/api/v1/cameras/clicam")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(cam["vendor"], "onvif");
    assert_eq!(cam["has_password"], true);
    app.stop().await;
}
