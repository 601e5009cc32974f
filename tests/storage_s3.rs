//! Frames in an S3-compatible bucket (docs/storage.md), against a real S3 server: moto's
//! `moto_server` (PyPI, pinned in scripts/moto-env, installed into target/moto-venv), started
//! on loopback by each test. The tests check the bucket through moto's own S3 API (plain HTTP:
//! moto's server does not check signatures), never through Heldar.

mod common;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{SubsecRound, Utc};
use common::moto::{Gate, Moto};
use common::{spawn_app_with, wait_for, TestApp};
use heldar::app::BuildOptions;
use heldar::config::{S3Config, StorageConfig};
use heldar::fakecam::{pattern, FakeAuth, FakeCamera, FrameSupply};
use heldar::models::{new_id, CameraId, Snapshot};
use serde_json::{json, Value};

/// The secret every test hands Heldar: it must never show up anywhere.
const SECRET: &str = "hEldAr-s3cr3t-KEY-0123456789abcdefABCDEF";
const ACCESS_KEY: &str = "AKIAHELDARTEST0001";

fn s3(moto: &Moto, bucket: &str, prefix: &str, presign: Option<u64>) -> StorageConfig {
    StorageConfig::S3(S3Config {
        bucket: bucket.into(),
        prefix: prefix.into(),
        endpoint: Some(moto.endpoint()),
        region: "us-east-1".into(),
        access_key_id: ACCESS_KEY.into(),
        secret_access_key: SECRET.into(),
        session_token: None,
        presign: presign.map(Duration::from_secs),
    })
}

async fn app_on(storage: StorageConfig, opts: BuildOptions) -> TestApp {
    spawn_app_with(move |c| c.storage = storage, opts).await
}

async fn camera(app: &TestApp, id: &str) -> FakeCamera {
    let jpeg = Bytes::from(pattern::solid_jpeg(96, 64, [40, 90, 160]));
    let cam = FakeCamera::start(FakeAuth::None, FrameSupply::Static(jpeg))
        .await
        .unwrap();
    app.create_camera(json!({"id": id, "snapshot_url": cam.snapshot_url()}))
        .await;
    cam
}

/// Store one frame through the API: its media path and bytes.
async fn store_one(app: &TestApp, id: &str) -> (String, Bytes) {
    let r = app
        .get(&format!("/api/v1/cameras/{id}/snapshot?store=true"))
        .await;
    assert_eq!(r.status(), 200);
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    (loc, r.bytes().await.unwrap())
}

async fn rows(app: &TestApp, id: &str) -> Vec<Value> {
    let v: Value = app
        .get(&format!("/api/v1/cameras/{id}/snapshots"))
        .await
        .json()
        .await
        .unwrap();
    v.as_array().unwrap().clone()
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn frames_land_as_objects_and_the_media_route_streams_them_with_range() {
    let moto = Moto::start().await;
    moto.create_bucket("frames").await;
    let app = app_on(
        s3(&moto, "frames", "site-a/heldar", None),
        BuildOptions::default(),
    )
    .await;
    let _cam = camera(&app, "yard").await;
    let (loc, body) = store_one(&app, "yard").await;
    let rel = loc.strip_prefix("/media/snapshots/").unwrap().to_string();
    let (cam, file) = rel.split_once('/').unwrap();
    assert_eq!(cam, "yard");
    assert!(heldar::store::parse_file_name(file).is_some(), "{file}");

    // The object: the local layout's name under the prefix, the camera's bytes.
    let key = format!("site-a/heldar/{rel}");
    // Beside it, the install marker (docs/storage.md "One storage, one database").
    let marker = "site-a/heldar/.heldar-install".to_string();
    assert_eq!(
        moto.keys("frames", "").await,
        vec![marker.clone(), key.clone()]
    );
    assert_eq!(moto.object("frames", &key).await.unwrap(), body);
    // Nothing on the local disk.
    assert!(!app.state.ops.config.snapshots_dir.join("yard").exists());

    // /media streams it from the bucket, whole and by range, with the usual caching headers.
    let r = app.get(&loc).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    assert_eq!(r.bytes().await.unwrap(), body);
    let r = app
        .client
        .get(app.url(&loc))
        .header("range", "bytes=2-11")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes 2-11/{}", body.len()).as_str()
    );
    assert_eq!(r.bytes().await.unwrap(), body.slice(2..12));
    let r = app
        .client
        .get(app.url(&loc))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    let latest = app.get("/api/v1/cameras/yard/snapshots/latest").await;
    assert_eq!(latest.status(), 200);
    assert_eq!(latest.bytes().await.unwrap(), body);

    // Two frames in one millisecond both survive (a conditional PUT, as the local link).
    let cam_id = CameraId::parse("yard").unwrap();
    let t = Utc::now().trunc_subsecs(3);
    let a = app
        .state
        .ops
        .store
        .write_frame(&cam_id, t, Bytes::from_static(b"first"))
        .await
        .unwrap();
    let b = app
        .state
        .ops
        .store
        .write_frame(&cam_id, t, Bytes::from_static(b"second"))
        .await
        .unwrap();
    assert_ne!(a.rel_path, b.rel_path);
    assert!(b.rel_path.ends_with("-1.jpg"), "{}", b.rel_path);
    assert_eq!(
        moto.object("frames", &format!("site-a/heldar/{}", a.rel_path))
            .await
            .unwrap(),
        Bytes::from_static(b"first")
    );

    // Deleting the camera deletes its objects; a key Heldar did not write stays.
    moto.put_object("frames", "site-a/heldar/yard/notes.txt", b"mine".to_vec())
        .await;
    assert_eq!(app.delete("/api/v1/cameras/yard").await.status(), 204);
    assert_eq!(
        moto.keys("frames", "").await,
        vec![marker, "site-a/heldar/yard/notes.txt".to_string()]
    );
    app.stop().await;
}

#[tokio::test]
async fn presign_mode_redirects_to_a_url_the_client_can_get() {
    let moto = Moto::start().await;
    moto.create_bucket("frames").await;
    let app = app_on(s3(&moto, "frames", "p", Some(120)), BuildOptions::default()).await;
    let _cam = camera(&app, "yard").await;
    let (loc, body) = store_one(&app, "yard").await;
    let r = no_redirects().get(app.url(&loc)).send().await.unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let target = r.headers()["location"].to_str().unwrap().to_string();
    assert!(
        target.starts_with(&format!("{}/frames/p/yard/", moto.endpoint())),
        "{target}"
    );
    assert!(target.contains("X-Amz-Signature="), "{target}");
    assert!(target.contains("X-Amz-Expires=120"), "{target}");
    assert!(!target.contains(SECRET));
    let got = reqwest::get(&target).await.unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.bytes().await.unwrap(), body);
    // A frame no row names is still a 404, not a redirect.
    let r = no_redirects()
        .get(app.url("/media/snapshots/yard/20200101T000000000Z.jpg"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    app.stop().await;
}

/// Keep `n` frames of camera `c` with old capture times, straight through the store and the
/// writer (as a capture keeps them).
async fn old_frames(app: &TestApp, n: i64) -> Vec<Snapshot> {
    let cam = CameraId::parse("c").unwrap();
    let now = Utc::now().trunc_subsecs(3);
    let mut out = Vec::new();
    for i in 0..n {
        let taken_at = now - chrono::Duration::minutes(60 * i + 90); // 1.5 h, 2.5 h, …
        let bytes = Bytes::from(vec![0xAB; 100]);
        let file = app
            .state
            .ops
            .store
            .write_frame(&cam, taken_at, bytes)
            .await
            .unwrap();
        let s = Snapshot {
            id: new_id("snp"),
            camera_id: cam.clone(),
            schedule_id: None,
            path: file.rel_path,
            taken_at,
            size_bytes: 100,
            width: None,
            height: None,
            created_at: now,
            tag: None,
        };
        app.state.ops.writer.index(vec![s.clone()]).await.unwrap();
        out.push(s);
    }
    out
}

fn retention(app: &TestApp, age_h: u64) -> heldar::services::retention::Retention {
    heldar::services::retention::Retention {
        db: app.state.ops.db.clone(),
        store: app.state.ops.store.clone(),
        clock: Arc::new(heldar::clock::SystemClock),
        metrics: app.state.ops.metrics.clone(),
        max_age: Some(Duration::from_secs(age_h * 3600)),
        max_bytes: None,
        min_free_bytes: 0,
        free_space: Arc::new(|| Ok(u64::MAX / 2)),
        videos: None,
    }
}

#[tokio::test]
async fn retention_deletes_objects_and_keeps_rows_whose_object_it_could_not_delete() {
    let mut moto = Moto::start().await;
    moto.create_bucket("frames").await;
    let app = app_on(s3(&moto, "frames", "", None), BuildOptions::default()).await;
    app.create_camera(json!({"id": "c", "vendor": "axis", "address": "127.0.0.1"}))
        .await;
    let frames = old_frames(&app, 6).await; // 1.5 h … 6.5 h old
    assert_eq!(moto.keys("frames", "c/").await.len(), 6);

    let report = retention(&app, 4).sweep().await.unwrap(); // older than 4 h: 3 of them
    assert_eq!((report.age, report.failed), (3, 0), "{report:?}");
    let mut want: Vec<String> = frames[..3].iter().map(|s| s.path.clone()).collect();
    want.sort();
    assert_eq!(moto.keys("frames", "c/").await, want);
    assert_eq!(rows(&app, "c").await.len(), 3);

    // The bucket gone: nothing can be deleted, every failure is counted and no row goes.
    moto.kill();
    let report = retention(&app, 2).sweep().await.unwrap();
    assert_eq!((report.age, report.failed), (0, 2), "{report:?}");
    assert_eq!(rows(&app, "c").await.len(), 3);
    app.stop().await;
}

#[tokio::test]
async fn reconciliation_indexes_heldars_objects_and_leaves_everything_else() {
    let moto = Moto::start().await;
    moto.create_bucket("frames").await;
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let opts = BuildOptions {
        reconcile_gate: Some(gate.clone()),
        ..BuildOptions::default()
    };
    let app = app_on(s3(&moto, "frames", "site", None), opts).await;
    app.create_camera(json!({"id": "yard", "vendor": "axis", "address": "127.0.0.1"}))
        .await;
    // Written before this run started (an hour ago), as a crashed run leaves them.
    let t = Utc::now() - chrono::Duration::hours(1);
    let jpeg = pattern::solid_jpeg(32, 24, [1, 2, 3]);
    let name = heldar::store::file_name(t.trunc_subsecs(3), 0);
    moto.put_object("frames", &format!("site/yard/{name}"), jpeg.clone())
        .await;
    // Not Heldar's: a note in the camera's folder, a file at the top, a folder named like no
    // camera id, a frame of an unregistered camera, and a key outside the prefix.
    let foreign = [
        "site/yard/notes.txt",
        "site/README",
        "site/Backups/x.jpg",
        "site/ghost/20200101T000000000Z.jpg",
        "elsewhere/yard/20200101T000000000Z.jpg",
    ];
    for k in foreign {
        moto.put_object("frames", k, b"not heldar's".to_vec()).await;
    }
    // A row whose object is gone.
    let lost = Snapshot {
        id: new_id("snp"),
        camera_id: CameraId::parse("yard").unwrap(),
        schedule_id: None,
        path: format!(
            "yard/{}",
            heldar::store::file_name((t - chrono::Duration::hours(1)).trunc_subsecs(3), 0)
        ),
        taken_at: (t - chrono::Duration::hours(1)).trunc_subsecs(3),
        size_bytes: 10,
        width: None,
        height: None,
        created_at: t,
        tag: None,
    };
    app.state
        .ops
        .writer
        .index(vec![lost.clone()])
        .await
        .unwrap();

    gate.add_permits(1);
    let listed = wait_for("the frame re-indexed", Duration::from_secs(30), || {
        let (app, name) = (&app, &name);
        async move {
            let r = rows(app, "yard").await;
            (r.len() == 1 && r[0]["url"].as_str()?.ends_with(name.as_str())).then_some(r)
        }
    })
    .await;
    assert_eq!(listed[0]["size_bytes"].as_u64(), Some(jpeg.len() as u64));
    assert_eq!(listed[0]["width"], 32);
    for k in foreign {
        assert!(moto.object("frames", k).await.is_some(), "{k} was deleted");
    }
    let r = app.get(listed[0]["url"].as_str().unwrap()).await;
    assert_eq!(r.bytes().await.unwrap(), Bytes::from(jpeg));
    app.stop().await;
}

#[tokio::test]
async fn a_timelapse_of_bucket_frames_lands_in_the_bucket() {
    let moto = Moto::start().await;
    moto.create_bucket("frames").await;
    let app = app_on(s3(&moto, "frames", "tl", None), BuildOptions::default()).await;
    app.create_camera(json!({"id": "gate", "vendor": "axis", "address": "127.0.0.1"}))
        .await;
    let t0 = (Utc::now() - chrono::Duration::hours(1)).trunc_subsecs(3);
    let times: Vec<_> = (0..24)
        .map(|i| t0 + chrono::Duration::seconds(10 * i))
        .collect();
    common::frames::keep_frames(&app.state.ops, "gate", &times, |_| (320, 180)).await;
    assert_eq!(moto.keys("frames", "tl/gate/").await.len(), 24);
    let rfc = |t: chrono::DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let resp = app
        .post_json(
            "/api/v1/cameras/gate/timelapses",
            &json!({"from": rfc(t0), "to": rfc(times[23] + chrono::Duration::seconds(1)), "fps": 12}),
        )
        .await;
    assert_eq!(resp.status(), 202);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let job = wait_for("the job to finish", Duration::from_secs(120), || {
        let (app, location) = (&app, location.clone());
        async move {
            let j: Value = app.get(&location).await.json().await.ok()?;
            matches!(j["state"].as_str(), Some("done" | "failed")).then_some(j)
        }
    })
    .await;
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["frames_done"], 24);
    let url = job["timelapse"]["url"].as_str().unwrap().to_string();
    let file = url.strip_prefix("/media/timelapses/").unwrap();
    let key = format!("tl/_timelapses/{file}");
    let video = moto.object("frames", &key).await.expect("the video object");
    assert_eq!(&video[4..8], b"ftyp", "an MP4");
    assert_eq!(
        job["timelapse"]["size_bytes"].as_u64(),
        Some(video.len() as u64)
    );
    // Nothing left on the local disk but the (empty) camera folder.
    let local = app.state.ops.config.timelapses_dir.join("gate");
    let left: Vec<_> = std::fs::read_dir(&local)
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
    // Served from the bucket, whole and by range.
    let r = app.get(&url).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap(), video);
    let r = app
        .client
        .get(app.url(&url))
        .header("range", "bytes=0-99")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().await.unwrap(), video.slice(0..100));
    // Deleting it deletes the object.
    let id = job["timelapse"]["id"].as_str().unwrap();
    assert_eq!(
        app.delete(&format!("/api/v1/timelapses/{id}"))
            .await
            .status(),
        204
    );
    assert!(moto.object("frames", &key).await.is_none());
    app.stop().await;
}

#[tokio::test]
async fn with_the_bucket_down_captures_fail_naming_it_leave_no_row_and_recover() {
    let mut moto = Moto::start().await;
    moto.create_bucket("frames").await;
    let app = app_on(s3(&moto, "frames", "down", None), BuildOptions::default()).await;
    let _cam = camera(&app, "yard").await;
    store_one(&app, "yard").await;
    assert_eq!(rows(&app, "yard").await.len(), 1);

    moto.kill();
    let started = std::time::Instant::now();
    let r = app.get("/api/v1/cameras/yard/snapshot?store=true").await;
    let (status, body) = common::error_of(r).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], "storage_unavailable", "{body}");
    let msg = body["error"].as_str().unwrap();
    assert!(msg.contains("s3://frames/down"), "{msg}");
    assert!(!msg.contains(SECRET));
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "a capture against a dead bucket fails within its retry budget"
    );
    assert_eq!(
        rows(&app, "yard").await.len(),
        1,
        "no row without an object"
    );
    let health: Value = app.get("/api/v1/health").await.json().await.unwrap();
    assert_eq!(health["status"], "degraded", "{health}");
    assert!(
        health["problems"][0]
            .as_str()
            .unwrap()
            .contains("s3://frames/down"),
        "{health}"
    );
    // The stored frame cannot be served now: a 503, not a 404 that would say it is gone.
    let first = rows(&app, "yard").await[0]["url"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = common::error_of(app.get(&first).await).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (503, Some("storage_unavailable"))
    );

    // Back (moto restarts empty: the bucket is made again): captures are kept again.
    moto.run().await;
    moto.create_bucket("frames").await;
    let (loc, body) = store_one(&app, "yard").await;
    let rel = loc.strip_prefix("/media/snapshots/").unwrap();
    assert_eq!(
        moto.object("frames", &format!("down/{rel}")).await.unwrap(),
        body
    );
    assert_eq!(rows(&app, "yard").await.len(), 2);
    let health: Value = app.get("/api/v1/health").await.json().await.unwrap();
    assert_eq!(health["status"], "ok", "{health}");
    app.stop().await;
}

/// A bucket behind a network partition (a gate that takes connections and never answers): the
/// health check still answers within its own bound (2 s), naming the bucket, instead of waiting
/// out the bucket client's 10 s request deadline; a capture fails within that deadline with no
/// row; when the bucket answers again, captures are kept again.
#[tokio::test]
async fn with_the_bucket_silent_health_answers_within_its_bound_and_captures_fail_by_the_deadline()
{
    let moto = Moto::start().await;
    moto.create_bucket("frames").await;
    let mut gate = Gate::start(&moto.endpoint()).await;
    let StorageConfig::S3(mut c) = s3(&moto, "frames", "silent", None) else {
        unreachable!()
    };
    c.endpoint = Some(gate.endpoint());
    let app = app_on(StorageConfig::S3(c), BuildOptions::default()).await;
    let _cam = camera(&app, "yard").await;
    store_one(&app, "yard").await;

    gate.silence().await;
    let asked = std::time::Instant::now();
    let r = app.get("/api/v1/health").await;
    let took = asked.elapsed();
    assert_eq!(r.status(), 503);
    let health: Value = r.json().await.unwrap();
    assert!(
        health["problems"][0]
            .as_str()
            .unwrap()
            .contains("s3://frames/silent"),
        "{health}"
    );
    // Its 2 s bound and a loaded machine's margin; not the bucket client's 10 s deadline.
    assert!(took < Duration::from_secs(4), "health took {took:?}");

    let asked = std::time::Instant::now();
    let r = app.get("/api/v1/cameras/yard/snapshot?store=true").await;
    let took = asked.elapsed();
    let (status, body) = common::error_of(r).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (503, Some("storage_unavailable")),
        "{body}"
    );
    let deadline = heldar::store::object::REQUEST_TIMEOUT;
    assert!(took < deadline + Duration::from_secs(3), "{took:?}");
    assert_eq!(
        rows(&app, "yard").await.len(),
        1,
        "no row without an object"
    );

    gate.open().await;
    store_one(&app, "yard").await;
    assert_eq!(rows(&app, "yard").await.len(), 2);
    let health: Value = app.get("/api/v1/health").await.json().await.unwrap();
    assert_eq!(health["status"], "ok", "{health}");
    app.stop().await;
}

/// `heldar serve` as a process with the bucket's settings in its environment.
fn heldar_s3(dir: &std::path::Path, moto: &Moto, url: &str) -> Command {
    let mut cmd = common::heldar_cmd(dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") {
            cmd.env_remove(k);
        }
    }
    cmd.arg("serve")
        .env("HELDAR_STORAGE_URL", url)
        .env("AWS_ENDPOINT_URL", moto.endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET);
    cmd
}

/// A camera `yard` (a fake answering a fixed JPEG) added to a `heldar serve` child process.
async fn yard_on(http: &reqwest::Client, server: &common::ServerProcess) -> FakeCamera {
    let jpeg = Bytes::from(pattern::solid_jpeg(32, 24, [9, 9, 9]));
    let cam = FakeCamera::start(FakeAuth::None, FrameSupply::Static(jpeg))
        .await
        .unwrap();
    let r = http
        .post(server.url("/api/v1/cameras"))
        .json(&json!({"id": "yard", "snapshot_url": cam.snapshot_url()}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    cam
}

#[tokio::test]
async fn the_secret_key_is_in_no_log_and_no_response() {
    let mut moto = Moto::start().await;
    moto.create_bucket("frames").await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = heldar_s3(dir.path(), &moto, "s3://frames/logs");
    cmd.env("HELDAR_LOG", "debug")
        .env("HELDAR_S3_PRESIGN_SECONDS", "60");
    let server = common::ServerProcess::start(cmd);
    let http = no_redirects();
    let _cam = yard_on(&http, &server).await;
    let mut seen = String::new();
    let r = http
        .get(server.url("/api/v1/cameras/yard/snapshot?store=true"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    let r = http.get(server.url(&loc)).send().await.unwrap();
    assert_eq!(r.status(), 302);
    seen.push_str(&format!("{:?}", r.headers()));
    let system = http
        .get(server.url("/api/v1/system"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(system.contains("s3://frames/logs"), "{system}");
    seen.push_str(&system);
    // An outage: the errors it logs and answers carry no credential either.
    moto.kill();
    let r = http
        .get(server.url("/api/v1/cameras/yard/snapshot?store=true"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    seen.push_str(&r.text().await.unwrap());
    for path in ["/api/v1/health", "/metrics", "/api/v1/openapi.json"] {
        let r = http.get(server.url(path)).send().await.unwrap();
        seen.push_str(&r.text().await.unwrap());
    }
    server
        .wait_for_log("frame captured but not stored", Duration::from_secs(10))
        .await;
    let (_, logs) = server.stop_with(nix::sys::signal::Signal::SIGTERM);
    let logs = logs.join("\n");
    assert!(logs.contains("s3://frames/logs"), "the storage is named");
    assert!(!logs.contains(SECRET), "the secret key is in the log");
    assert!(!seen.contains(SECRET), "the secret key is in a response");
    // Nor in `--help`, which shows the environment's values of other settings.
    let help = common::heldar_cmd(dir.path())
        .args(["serve", "--help"])
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&help.stdout).contains(SECRET));
}

#[tokio::test]
async fn bad_storage_settings_are_refused_at_start_with_one_sentence() {
    let moto = Moto::start().await;
    moto.create_bucket("frames").await;
    let dir = tempfile::tempdir().unwrap();
    let run = |url: &str, creds: bool| {
        let mut cmd = heldar_s3(dir.path(), &moto, url);
        if !creds {
            cmd.env_remove("AWS_ACCESS_KEY_ID")
                .env_remove("AWS_SECRET_ACCESS_KEY");
        }
        let out = cmd
            .env("HELDAR_API_PORT", "0")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{url} started");
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        let last = err.lines().last().unwrap_or_default().to_string();
        assert!(!err.contains(SECRET), "{err}");
        last
    };
    for (url, creds, says) in [
        ("s3://", true, "a bucket name after s3://"),
        ("s3:///frames", true, "a bucket name after s3://"),
        ("gs://frames/x", true, "an unknown kind of storage"),
        ("ftp://frames", true, "an unknown kind of storage"),
        ("s3://Frames_Bad/x", true, "a valid bucket name"),
        (
            "s3://frames/x",
            false,
            "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
        ),
        ("s3://frames/../up", true, "a prefix of plain path segments"),
    ] {
        let line = run(url, creds);
        assert!(
            line.starts_with("heldar: HELDAR_STORAGE_URL=") && line.contains(says),
            "{url}: {line}"
        );
    }
    // Credentials written into the URL are refused, and echoed masked.
    let line = run("s3://AKIA:topsecretvalue@frames/x", true);
    assert!(
        line.contains("credentials go in AWS_ACCESS_KEY_ID"),
        "{line}"
    );
    assert!(!line.contains("topsecretvalue"), "{line}");
    // A bucket that does not exist: the start stops naming it, and saying so in words (the
    // server's error code and message, not its XML).
    let line = run("s3://no-such-bucket/x", true);
    assert!(
        line.contains("s3://no-such-bucket/x") && line.contains("HELDAR_STORAGE_URL"),
        "{line}"
    );
    assert!(
        line.contains("NoSuchBucket: The specified bucket does not exist") && !line.contains('<'),
        "{line}"
    );
}

/// A bucket outage is said in the log once when it begins (naming the bucket, the endpoint and
/// the socket's own cause) and once when it ends (with the frames it cost), not once per frame.
#[tokio::test]
async fn a_bucket_outage_is_logged_once_when_it_begins_and_once_when_it_ends() {
    let mut moto = Moto::start().await;
    moto.create_bucket("frames").await;
    let dir = tempfile::tempdir().unwrap();
    let server = common::ServerProcess::start(heldar_s3(dir.path(), &moto, "s3://frames/out"));
    let http = no_redirects();
    let _cam = yard_on(&http, &server).await;
    let keep = || async {
        http.post(server.url("/api/v1/cameras/yard/snapshot?store=true"))
            .send()
            .await
            .unwrap()
    };
    assert_eq!(keep().await.status(), 200);
    moto.kill();
    let endpoint = moto.endpoint();
    let host_port = endpoint.trim_start_matches("http://").trim_end_matches('/');
    for _ in 0..3 {
        let r = keep().await;
        assert_eq!(r.status(), 503);
        let body: Value = r.json().await.unwrap();
        let msg = body["error"].as_str().unwrap();
        assert!(
            msg.contains("s3://frames/out") && msg.contains(host_port),
            "names the bucket and where it was sought: {msg}"
        );
        assert!(msg.contains("refused"), "the socket's own cause: {msg}");
    }
    moto.run().await;
    moto.create_bucket("frames").await;
    assert_eq!(keep().await.status(), 200);
    server
        .wait_for_log("the frame storage answers again", Duration::from_secs(10))
        .await;
    let (_, logs) = server.stop_with(nix::sys::signal::Signal::SIGTERM);
    let not_stored: Vec<_> = logs
        .iter()
        .filter(|l| l.contains("frame captured but not stored"))
        .collect();
    assert_eq!(not_stored.len(), 1, "once per outage: {not_stored:#?}");
    assert!(
        not_stored[0].contains("WARN") && not_stored[0].contains("s3://frames/out"),
        "{}",
        not_stored[0]
    );
    let back: Vec<_> = logs
        .iter()
        .filter(|l| l.contains("the frame storage answers again"))
        .collect();
    assert_eq!(back.len(), 1, "{back:#?}");
    assert!(back[0].contains("3 frame(s)"), "{}", back[0]);
}

#[tokio::test]
async fn the_crash_window_lists_only_the_frames_since_the_crashed_run() {
    let moto = Moto::start().await;
    moto.create_bucket("frames").await;
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let opts = BuildOptions {
        reconcile_gate: Some(gate),
        ..BuildOptions::default()
    };
    let app = app_on(s3(&moto, "frames", "cw", None), opts).await;
    app.create_camera(json!({"id": "yard", "vendor": "axis", "address": "127.0.0.1"}))
        .await;
    let now = Utc::now().trunc_subsecs(3);
    let since = now - chrono::Duration::hours(1);
    let jpeg = pattern::solid_jpeg(16, 16, [5, 5, 5]);
    // Rowless frames: two before the window (the background pass's business), one at its very
    // start and one inside it. The listing starts after the name of `since` less 1 ms: the
    // frame named exactly `since` must not be lost to that offset.
    for t in [
        now - chrono::Duration::hours(3),
        since - chrono::Duration::milliseconds(1),
        since,
        now - chrono::Duration::minutes(10),
    ] {
        let name = heldar::store::file_name(t, 0);
        moto.put_object("frames", &format!("cw/yard/{name}"), jpeg.clone())
            .await;
    }
    let ops = &app.state.ops;
    let parts = heldar::ops::reconcile::Parts {
        store: &ops.store,
        pool: &ops.db,
        writer: &ops.writer,
        clock: ops.clock.as_ref(),
    };
    let report = heldar::ops::reconcile::crash_window(parts, since)
        .await
        .unwrap();
    assert_eq!(report.files_reindexed, 2, "{report:?}");
    let listed = rows(&app, "yard").await;
    let mut times: Vec<&str> = listed
        .iter()
        .map(|r| r["taken_at"].as_str().unwrap())
        .collect();
    times.sort();
    assert_eq!(times.len(), 2);
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(times[0]).unwrap(),
        since
    );
    app.stop().await;
}
