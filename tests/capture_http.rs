//! Live capture over HTTP from in-process fake cameras speaking real HTTP (Basic and Digest auth),
//! and every failure mode of docs/design.md §6 mapped to its status and code.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{error_of, spawn_app, spawn_app_with, TestApp};
use heldar::app::BuildOptions;
use heldar::capture::jpeg;
use heldar::fakecam::{pattern, Behavior, FakeAuth, FakeCamera, FrameSupply};
use serde_json::{json, Value};

fn frame() -> FrameSupply {
    FrameSupply::Static(Bytes::from(pattern::solid_jpeg(320, 240, [10, 120, 200])))
}

async fn camera(app: &TestApp, id: &str, cam: &FakeCamera, creds: Option<(&str, &str)>) {
    let mut body = json!({"id": id, "snapshot_url": cam.snapshot_url()});
    if let Some((u, p)) = creds {
        body["username"] = json!(u);
        body["password"] = json!(p);
    }
    app.create_camera(body).await;
}

/// The camera's status once its state is `state` (see `common::camera_in_state`).
async fn status_in(app: &TestApp, id: &str, state: &str) -> Value {
    common::camera_in_state(app, id, state).await["status"].clone()
}

#[tokio::test]
async fn live_capture_with_basic_and_digest_auth_returns_the_cameras_jpeg() {
    let app = spawn_app().await;
    let basic = FakeCamera::start(
        FakeAuth::Basic {
            user: "admin".into(),
            pass: "b4sic!".into(),
        },
        frame(),
    )
    .await
    .unwrap();
    let digest = FakeCamera::start(
        FakeAuth::Digest {
            user: "admin".into(),
            pass: "d1gest:pw".into(),
        },
        frame(),
    )
    .await
    .unwrap();
    camera(&app, "basic", &basic, Some(("admin", "b4sic!"))).await;
    camera(&app, "digest", &digest, Some(("admin", "d1gest:pw"))).await;
    for id in ["basic", "digest"] {
        let resp = app.get(&format!("/api/v1/cameras/{id}/snapshot")).await;
        assert_eq!(resp.status(), 200, "{id}");
        assert_eq!(resp.headers()["content-type"], "image/jpeg");
        assert_eq!(resp.headers()["x-heldar-width"], "320");
        let body = resp.bytes().await.unwrap();
        assert_eq!(jpeg::validate(&body), Ok((320, 240)), "{id}");
        let st = status_in(&app, id, "online").await;
        assert!(st["last_success_at"].is_string());
        assert_eq!(st["consecutive_failures"], 0);
    }
    // The challenge round trip: one 401, then the authorised request.
    assert_eq!(digest.auth_rejections(), 1);
    assert_eq!(digest.hits(), 2);
    app.stop().await;
}

#[tokio::test]
async fn credentials_in_the_snapshot_url_are_used_too() {
    let app = spawn_app().await;
    let cam = FakeCamera::start(
        FakeAuth::Digest {
            user: "viewer".into(),
            pass: "p@ss word".into(),
        },
        frame(),
    )
    .await
    .unwrap();
    let url = cam
        .snapshot_url()
        .replace("http://", "http://viewer:p%40ss%20word@");
    app.create_camera(json!({"id": "inurl", "snapshot_url": url}))
        .await;
    let resp = app.get("/api/v1/cameras/inurl/snapshot").await;
    assert_eq!(resp.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn wrong_or_missing_credentials_are_auth_failed() {
    let app = spawn_app().await;
    let cam = FakeCamera::start(
        FakeAuth::Digest {
            user: "admin".into(),
            pass: "right".into(),
        },
        frame(),
    )
    .await
    .unwrap();
    camera(&app, "wrongpw", &cam, Some(("admin", "wrong-one"))).await;
    camera(&app, "nocreds", &cam, None).await;
    for id in ["wrongpw", "nocreds"] {
        let (status, body) =
            error_of(app.get(&format!("/api/v1/cameras/{id}/snapshot")).await).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (502, Some("auth_failed")),
            "{id}: {body}"
        );
        assert!(!body["error"].as_str().unwrap().contains("wrong-one"));
        let st = status_in(&app, id, "auth_failed").await;
        assert_eq!(st["consecutive_failures"], 1);
    }
    // Editing the credentials clears the auth_failed state, and the right ones work.
    let v: Value = app
        .patch_json("/api/v1/cameras/wrongpw", &json!({"password": "right"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["status"]["state"], "unknown");
    assert_eq!(
        app.get("/api/v1/cameras/wrongpw/snapshot").await.status(),
        200
    );
    app.stop().await;
}

#[tokio::test]
async fn each_camera_failure_has_its_status_and_code() {
    let app = spawn_app_with(
        |c| c.capture_max_bytes = 256 * 1024,
        BuildOptions::default(),
    )
    .await;
    let cases = [
        (Behavior::Hang, 504, "timeout"),
        (Behavior::Status(500), 502, "bad_response"),
        (Behavior::Status(404), 502, "bad_response"),
        (Behavior::Garbage, 502, "bad_response"),
        (Behavior::Truncated, 502, "bad_response"),
        (Behavior::CutOff, 502, "bad_response"),
        (Behavior::Oversized(4 * 1024 * 1024), 502, "bad_response"),
    ];
    let mut cams = Vec::new();
    for (i, (behavior, want_status, want_code)) in cases.into_iter().enumerate() {
        let cam = FakeCamera::start(FakeAuth::None, frame()).await.unwrap();
        cam.set_behavior(behavior.clone());
        let id = format!("bad{i}");
        camera(&app, &id, &cam, None).await;
        let started = std::time::Instant::now();
        let (status, body) =
            error_of(app.get(&format!("/api/v1/cameras/{id}/snapshot")).await).await;
        assert_eq!(status, want_status, "{behavior:?}: {body}");
        assert_eq!(body["code"], want_code, "{behavior:?}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains(&id),
            "names the camera: {body}"
        );
        // The deadline is 2 s: nothing may wait much past it.
        assert!(started.elapsed() < Duration::from_secs(10), "{behavior:?}");
        let st = status_in(&app, &id, "failing").await;
        assert_eq!(st["last_error"], body["error"], "{behavior:?}");
        cams.push(cam);
    }

    // A refused connection: bind a port, then close it.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    app.create_camera(
        json!({"id": "refused", "snapshot_url": format!("http://127.0.0.1:{port}/x.jpg")}),
    )
    .await;
    let (status, body) = error_of(app.get("/api/v1/cameras/refused/snapshot").await).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (502, Some("unreachable")),
        "{body}"
    );

    // A slow camera within the deadline is fine, and a failing camera recovers.
    cams[0].set_behavior(Behavior::Delay(Duration::from_millis(300)));
    assert_eq!(app.get("/api/v1/cameras/bad0/snapshot").await.status(), 200);
    status_in(&app, "bad0", "online").await;
    app.stop().await;
}

#[tokio::test]
async fn one_capture_per_camera_is_in_flight_and_one_broken_camera_does_not_slow_another() {
    let app = spawn_app().await;
    let slow = FakeCamera::start(FakeAuth::None, frame()).await.unwrap();
    slow.set_behavior(Behavior::Delay(Duration::from_millis(200)));
    let hung = FakeCamera::start(FakeAuth::None, frame()).await.unwrap();
    hung.set_behavior(Behavior::Hang);
    let fine = FakeCamera::start(FakeAuth::None, frame()).await.unwrap();
    camera(&app, "slow", &slow, None).await;
    camera(&app, "hung", &hung, None).await;
    camera(&app, "fine", &fine, None).await;

    // Stored captures are not shared (each is its own frame), so they queue one at a time.
    let slow_reqs = (0..4).map(|_| app.get("/api/v1/cameras/slow/snapshot?store=true"));
    let hung_req = app.get("/api/v1/cameras/hung/snapshot");
    let fine_req = async {
        let t = std::time::Instant::now();
        let r = app.get("/api/v1/cameras/fine/snapshot").await;
        (r.status(), t.elapsed())
    };
    let (slow_results, hung_resp, (fine_status, fine_took)) = tokio::join!(
        futures_util::future::join_all(slow_reqs),
        hung_req,
        fine_req
    );
    for r in slow_results {
        assert_eq!(r.status(), 200);
    }
    assert_eq!(
        slow.max_in_flight(),
        1,
        "captures of one camera never overlap"
    );
    assert_eq!(slow.hits(), 4);
    assert_eq!(hung_resp.status(), 504);
    assert_eq!(fine_status, 200);
    assert!(
        fine_took < Duration::from_millis(1500),
        "the healthy camera waited {fine_took:?} on the hung one"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_live_requests_for_one_camera_share_one_capture() {
    let app = spawn_app().await;
    let cam = FakeCamera::start(FakeAuth::None, frame()).await.unwrap();
    cam.set_behavior(Behavior::Delay(Duration::from_millis(400)));
    camera(&app, "popular", &cam, None).await;
    let viewers = (0..50).map(|_| async {
        let r = app.get("/api/v1/cameras/popular/snapshot").await;
        (r.status(), r.bytes().await.unwrap())
    });
    let results = futures_util::future::join_all(viewers).await;
    let first = results[0].1.clone();
    for (status, body) in &results {
        assert_eq!(*status, 200);
        assert_eq!(body, &first, "every viewer got the same frame");
    }
    assert!(
        cam.hits() <= 2,
        "50 viewers cost the camera {} requests",
        cam.hits()
    );
    // Once it is done, the next request is a fresh capture.
    let before = cam.hits();
    assert_eq!(
        app.get("/api/v1/cameras/popular/snapshot").await.status(),
        200
    );
    assert_eq!(cam.hits(), before + 1);
    app.stop().await;
}

#[tokio::test]
async fn hostile_cameras_slow_drip_redirect_loops_and_scheme_changes_are_cut_off() {
    let app = spawn_app().await; // 2 s capture deadline
    let drip = FakeCamera::start(FakeAuth::None, frame()).await.unwrap();
    drip.set_behavior(Behavior::SlowDrip(Duration::from_millis(200)));
    camera(&app, "drip", &drip, None).await;
    let started = std::time::Instant::now();
    let (status, body) = error_of(app.get("/api/v1/cameras/drip/snapshot").await).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (504, Some("timeout")),
        "{body}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "cut at the deadline, not at the last byte"
    );

    let looping = FakeCamera::start(FakeAuth::None, frame()).await.unwrap();
    looping.set_behavior(Behavior::Redirect(looping.snapshot_url()));
    camera(&app, "loop", &looping, None).await;
    let (status, body) = error_of(app.get("/api/v1/cameras/loop/snapshot").await).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (502, Some("bad_response")),
        "{body}"
    );
    assert!(looping.hits() <= 6, "followed {} redirects", looping.hits());

    for target in [
        "file:///etc/passwd",
        "ftp://127.0.0.1/x.jpg",
        "gopher://127.0.0.1/x",
    ] {
        let sneaky = FakeCamera::start(FakeAuth::None, frame()).await.unwrap();
        sneaky.set_behavior(Behavior::Redirect(target.into()));
        let id = format!("sneaky{}", target.len());
        camera(&app, &id, &sneaky, None).await;
        let (status, body) =
            error_of(app.get(&format!("/api/v1/cameras/{id}/snapshot")).await).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (502, Some("bad_response")),
            "{target}: {body}"
        );
        assert!(!body["error"].as_str().unwrap().contains("root:"), "{body}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_who_leaves_mid_capture_does_not_stall_the_camera() {
    let app = spawn_app().await; // 2 s capture deadline
    let cam = FakeCamera::start(FakeAuth::None, frame()).await.unwrap();
    cam.set_behavior(Behavior::Delay(Duration::from_millis(500)));
    camera(&app, "c", &cam, None).await;
    // The viewer gives up after 100 ms, in the middle of the shared live capture.
    let gave_up = app
        .client
        .get(app.url("/api/v1/cameras/c/snapshot"))
        .timeout(Duration::from_millis(100))
        .send()
        .await;
    assert!(gave_up.is_err());
    // The abandoned capture still finishes and frees the camera: a stored capture right after
    // waits ~0.4 s for it, then takes its own 0.5 s — well inside the 2 s deadline.
    let r = app.get("/api/v1/cameras/c/snapshot?store=true").await;
    assert_eq!(r.status(), 200);
    assert_eq!(cam.hits(), 2);
    app.stop().await;
}
