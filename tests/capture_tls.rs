//! Per-camera TLS trust against an in-process HTTPS camera with a self-signed certificate (made
//! by rcgen, served by tokio-rustls over a real socket): `system` refuses it and reports its
//! fingerprint, `pinned` with that fingerprint captures and stores a frame, a wrong pin is
//! refused naming both fingerprints, `off` captures; bad settings are 422s naming the field. The
//! same decisions on an `rtsps` stream URL, where Heldar checks the certificate before ffmpeg
//! connects.

mod common;

use std::sync::atomic::Ordering;

use common::tls::TlsCamera;
use common::{error_of, spawn_app, TestApp};
use heldar::capture::jpeg;
use serde_json::{json, Value};

/// Another certificate's fingerprint, in the API's form.
fn other_fingerprint() -> String {
    heldar::camera::fingerprint::format(&[0x5a; 32])
}

async fn snapshot_error(app: &TestApp, id: &str) -> (u16, Value) {
    error_of(app.get(&format!("/api/v1/cameras/{id}/snapshot")).await).await
}

async fn camera(app: &TestApp, id: &str) -> Value {
    app.get(&format!("/api/v1/cameras/{id}"))
        .await
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_self_signed_camera_reports_its_fingerprint_and_once_pinned_it_captures() {
    let app = spawn_app().await;
    let cam = TlsCamera::start().await;
    let created = app
        .create_camera(json!({"id": "door", "snapshot_url": cam.https()}))
        .await;
    assert_eq!(created["tls_verify"], "system", "{created}");
    assert_eq!(created["tls_fingerprint"], Value::Null, "{created}");

    // Default trust: refused, with the presented certificate's fingerprint in the sentence and
    // as a field of its own.
    let (status, body) = snapshot_error(&app, "door").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (502, Some("tls")),
        "{body}"
    );
    assert_eq!(body["tls_fingerprint"], cam.fingerprint.as_str(), "{body}");
    let msg = body["error"].as_str().unwrap();
    assert!(msg.contains("unknown issuer"), "{msg}");
    assert!(msg.contains(&cam.fingerprint), "{msg}");
    assert!(msg.contains("tls_fingerprint"), "{msg}");
    assert_eq!(cam.handshakes.load(Ordering::SeqCst), 0);

    // The camera's status keeps the sentence, fingerprint included, for the dashboard.
    let status = common::wait_for(
        "the failure to be recorded",
        std::time::Duration::from_secs(10),
        || async {
            let v = camera(&app, "door").await;
            (v["status"]["state"] == "failing").then(|| v["status"].clone())
        },
    )
    .await;
    assert!(
        status["last_error"]
            .as_str()
            .unwrap()
            .contains(&cam.fingerprint),
        "{status}"
    );

    // Pin it, pasted in lower case without colons: stored and shown normalised.
    let pasted = cam.fingerprint["sha256:".len()..]
        .replace(':', "")
        .to_lowercase();
    let resp = app
        .patch_json(
            "/api/v1/cameras/door",
            &json!({"tls_verify": "pinned", "tls_fingerprint": pasted}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let view: Value = resp.json().await.unwrap();
    assert_eq!(view["tls_verify"], "pinned", "{view}");
    assert_eq!(view["tls_fingerprint"], cam.fingerprint.as_str(), "{view}");

    let resp = app.get("/api/v1/cameras/door/snapshot?store=true").await;
    assert_eq!(resp.status(), 200);
    let snap_id = resp.headers()["x-heldar-snapshot-id"]
        .to_str()
        .unwrap()
        .to_string();
    let body = resp.bytes().await.unwrap();
    assert_eq!(jpeg::validate(&body), Ok((160, 120)));
    assert_eq!(cam.handshakes.load(Ordering::SeqCst), 1);
    let list: Value = app
        .get("/api/v1/cameras/door/snapshots")
        .await
        .json()
        .await
        .unwrap();
    assert!(list.to_string().contains(&snap_id), "{list}");

    // Clearing the pin while pinned is refused; back to system, the camera is refused again.
    let resp = app
        .patch_json("/api/v1/cameras/door", &json!({"tls_fingerprint": null}))
        .await;
    let (status, body) = error_of(resp).await;
    assert_eq!(
        (status, body["field"].as_str()),
        (422, Some("tls_fingerprint"))
    );
    let resp = app
        .patch_json(
            "/api/v1/cameras/door",
            &json!({"tls_verify": "system", "tls_fingerprint": null}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let (status, body) = snapshot_error(&app, "door").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (502, Some("tls")),
        "{body}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_pin_that_does_not_match_is_refused_naming_both_fingerprints() {
    let app = spawn_app().await;
    let cam = TlsCamera::start().await;
    app.create_camera(json!({"id": "gate", "snapshot_url": cam.https(),
        "tls_verify": "pinned", "tls_fingerprint": other_fingerprint()}))
        .await;
    let (status, body) = snapshot_error(&app, "gate").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (502, Some("tls")),
        "{body}"
    );
    let msg = body["error"].as_str().unwrap();
    assert!(
        msg.contains("does not match the pinned fingerprint"),
        "{msg}"
    );
    assert!(msg.contains(&other_fingerprint()), "{msg}");
    assert!(msg.contains(&cam.fingerprint), "{msg}");
    assert_eq!(body["tls_fingerprint"], cam.fingerprint.as_str(), "{body}");
    assert_eq!(cam.handshakes.load(Ordering::SeqCst), 0);
    app.stop().await;
}

#[tokio::test]
async fn verification_off_accepts_the_self_signed_certificate() {
    let app = spawn_app().await;
    let cam = TlsCamera::start().await;
    let created = app
        .create_camera(json!({"id": "yard", "snapshot_url": cam.https(), "tls_verify": "off"}))
        .await;
    assert_eq!(created["tls_verify"], "off");
    let resp = app.get("/api/v1/cameras/yard/snapshot").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(jpeg::validate(&resp.bytes().await.unwrap()), Ok((160, 120)));
    app.stop().await;
}

#[tokio::test]
async fn bad_trust_settings_are_422s_naming_the_field() {
    let app = spawn_app().await;
    let base = json!({"id": "cam", "snapshot_url": "https://127.0.0.1:9/snap.jpg"});
    let with = |extra: Value| {
        let mut b = base.clone();
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    for (extra, field) in [
        (
            json!({"tls_fingerprint": "sha256:AB:CD"}),
            "tls_fingerprint",
        ),
        (
            json!({"tls_fingerprint": "zz".repeat(32)}),
            "tls_fingerprint",
        ),
        (json!({"tls_verify": "pinned"}), "tls_fingerprint"),
        (json!({"tls_verify": "none"}), "tls_verify"),
    ] {
        let (status, body) = error_of(app.post_json("/api/v1/cameras", &with(extra)).await).await;
        assert_eq!(
            (status, body["field"].as_str()),
            (422, Some(field)),
            "{body}"
        );
        assert!(body["error"].as_str().unwrap().contains(field), "{body}");
    }
    app.create_camera(base.clone()).await;
    let (status, body) = error_of(
        app.patch_json("/api/v1/cameras/cam", &json!({"tls_fingerprint": "12:34"}))
            .await,
    )
    .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (422, Some("tls_fingerprint")),
        "{body}"
    );
    app.stop().await;
}

/// `rtsps`: ffmpeg's TLS layer would accept any certificate, so Heldar checks it first with the
/// camera's trust and refuses exactly as on the HTTP path. (The fake speaks TLS but not RTSP: a
/// certificate that passes gets past the check to ffmpeg, which then finds no RTSP there.)
#[tokio::test]
async fn rtsps_streams_get_the_same_trust_decision_before_ffmpeg_connects() {
    let app = spawn_app().await;
    let cam = TlsCamera::start().await;
    let add = |id: &str, extra: Value| {
        let mut b = json!({"id": id, "main_stream_url": cam.rtsps(), "snapshot_source": "rtsp"});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    app.create_camera(add("sys", json!({}))).await;
    app.create_camera(add(
        "wrong",
        json!({"tls_verify": "pinned", "tls_fingerprint": other_fingerprint()}),
    ))
    .await;
    app.create_camera(add(
        "right",
        json!({"tls_verify": "pinned", "tls_fingerprint": cam.fingerprint}),
    ))
    .await;
    app.create_camera(add("off", json!({"tls_verify": "off"})))
        .await;

    let (status, body) = snapshot_error(&app, "sys").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (502, Some("tls")),
        "{body}"
    );
    assert_eq!(body["tls_fingerprint"], cam.fingerprint.as_str(), "{body}");
    let (status, body) = snapshot_error(&app, "wrong").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (502, Some("tls")),
        "{body}"
    );
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("does not match the pinned fingerprint"),
        "{body}"
    );
    assert_eq!(
        cam.handshakes.load(Ordering::SeqCst),
        0,
        "refused before any handshake"
    );

    // Accepted by the check (and by ffmpeg): the failure is no longer about TLS.
    for id in ["right", "off"] {
        let before = cam.handshakes.load(Ordering::SeqCst);
        let (_, body) = snapshot_error(&app, id).await;
        assert_ne!(body["code"], "tls", "{id}: {body}");
        assert!(
            cam.handshakes.load(Ordering::SeqCst) > before,
            "{id}: a TLS session was made"
        );
    }
    app.stop().await;
}
