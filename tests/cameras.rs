//! Camera registry over the real HTTP API: CRUD, validation, masking, error bodies.

mod common;

use common::{error_of, spawn_app};
use serde_json::{json, Value};

#[tokio::test]
async fn create_list_get_patch_delete_round_trip() {
    let app = spawn_app().await;
    let created = app
        .create_camera(json!({
            "id": "gate_a", "name": "Gate A", "vendor": "hikvision", "address": "10.1.2.3",
            "username": "admin", "password": "Sup3r-Secret!"
        }))
        .await;
    assert_eq!(created["id"], "gate_a");
    assert_eq!(created["has_password"], true);
    assert!(created.get("password").is_none(), "{created}");
    assert_eq!(
        created["effective_urls"]["snapshot"],
        "http://10.1.2.3/ISAPI/Streaming/channels/101/picture",
        "the vendor template, shown in normal form (the default port dropped)"
    );
    assert_eq!(
        created["effective_urls"]["sub_stream"],
        "rtsp://10.1.2.3:554/Streaming/Channels/102"
    );
    assert_eq!(created["status"]["state"], "unknown");

    let list: Value = app.get("/api/v1/cameras").await.json().await.unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);

    let one = app.get("/api/v1/cameras/gate_a").await;
    assert_eq!(one.status(), 200);
    let one: Value = one.json().await.unwrap();
    assert_eq!(one["name"], "Gate A");

    let patched = app
        .patch_json(
            "/api/v1/cameras/gate_a",
            &json!({"name": "Gate A (north)", "http_port": 8080}),
        )
        .await;
    assert_eq!(patched.status(), 200);
    let patched: Value = patched.json().await.unwrap();
    assert_eq!(patched["name"], "Gate A (north)");
    assert_eq!(
        patched["has_password"], true,
        "an edit that omits the password keeps it"
    );
    assert_eq!(
        patched["effective_urls"]["snapshot"],
        "http://10.1.2.3:8080/ISAPI/Streaming/channels/101/picture"
    );

    // `null` clears an optional field.
    let cleared: Value = app
        .patch_json("/api/v1/cameras/gate_a", &json!({"password": null}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(cleared["has_password"], false);

    // Deleting removes the row and the camera's frame directory.
    let frames = app.state.ops.config.snapshots_dir.join("gate_a");
    std::fs::create_dir_all(&frames).unwrap();
    std::fs::write(frames.join("20260101T000000000Z.jpg"), b"x").unwrap();
    assert_eq!(app.delete("/api/v1/cameras/gate_a").await.status(), 204);
    assert!(!frames.exists(), "frame files are removed with the camera");
    let (status, body) = error_of(app.get("/api/v1/cameras/gate_a").await).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
    let (status, _) = error_of(app.delete("/api/v1/cameras/gate_a").await).await;
    assert_eq!(status, 404);
    app.stop().await;
}

#[tokio::test]
async fn duplicate_id_is_a_409_and_leaves_the_first_camera_alone() {
    let app = spawn_app().await;
    app.create_camera(json!({"id": "cam1", "vendor": "axis", "address": "10.0.0.1"}))
        .await;
    let resp = app
        .post_json(
            "/api/v1/cameras",
            &json!({"id": "cam1", "vendor": "dahua", "address": "10.0.0.2"}),
        )
        .await;
    let (status, body) = error_of(resp).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("conflict")));
    let one: Value = app.get("/api/v1/cameras/cam1").await.json().await.unwrap();
    assert_eq!(one["vendor"], "axis");
    app.stop().await;
}

#[tokio::test]
async fn bad_bodies_get_a_4xx_with_a_sentence_and_change_nothing() {
    let app = spawn_app().await;
    let cases: Vec<(Value, u16, &str)> = vec![
        (
            json!({"id": "Bad Id", "address": "h", "vendor": "axis"}),
            422,
            "id",
        ),
        (
            json!({"id": "../etc", "address": "h", "vendor": "axis"}),
            422,
            "id",
        ),
        (
            json!({"id": "a".repeat(64), "address": "h", "vendor": "axis"}),
            422,
            "id",
        ),
        (
            json!({"id": "ok", "vendor": "sony", "address": "h"}),
            422,
            "vendor",
        ),
        (
            json!({"id": "ok", "snapshot_url": "ftp://cam/x.jpg"}),
            422,
            "snapshot_url",
        ),
        (
            json!({"id": "ok", "main_stream_url": "file:///etc/passwd"}),
            422,
            "main_stream_url",
        ),
        (
            json!({"id": "ok", "main_stream_url": "javascript:alert(1)"}),
            422,
            "main_stream_url",
        ),
        (
            json!({"id": "ok", "vendor": "axis", "address": "h", "rtsp_port": 70000}),
            422,
            "rtsp_port",
        ),
        (
            json!({"id": "ok", "vendor": "axis", "address": "a/b"}),
            422,
            "address",
        ),
        (json!({"id": "ok"}), 422, "address"),
        (
            json!({"id": "ok", "vendor": "axis", "address": "h", "rtsp_port": "554"}),
            422,
            "rtsp_port",
        ),
        (
            json!({"id": "ok", "vendor": "axis", "address": "h", "pasword": "x"}),
            422,
            "body",
        ),
        (json!({"vendor": "axis", "address": "h"}), 422, "id"),
        (json!([1, 2, 3]), 422, "body"),
        // The field values in order would fit serde's derived struct: still not an object.
        (
            json!(["arr", null, "axis", "h", null, null, null, null, null, null, null, null]),
            422,
            "body",
        ),
    ];
    for (body, want_status, want_field) in cases {
        let (status, err) = error_of(app.post_json("/api/v1/cameras", &body).await).await;
        assert_eq!(status, want_status, "{body} → {err}");
        assert_eq!(err["field"], want_field, "{body} → {err}");
    }

    // Malformed JSON, a wrong content type, and an oversized body.
    let raw = |body: Vec<u8>, ctype: &'static str| {
        app.client
            .post(app.url("/api/v1/cameras"))
            .header("content-type", ctype)
            .body(body)
            .send()
    };
    let (s, e) = error_of(
        raw(b"{\"id\": ".to_vec(), "application/json")
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, e["code"].as_str()), (400, Some("bad_request")));
    let (s, _) = error_of(raw(b"\xff\xfe".to_vec(), "application/json").await.unwrap()).await;
    assert_eq!(s, 400);
    let (s, e) = error_of(raw(b"id=x".to_vec(), "text/plain").await.unwrap()).await;
    assert_eq!(
        (s, e["code"].as_str()),
        (415, Some("unsupported_media_type"))
    );
    let huge = format!(
        "{{\"id\": \"big\", \"name\": \"{}\"}}",
        "x".repeat(2 * 1024 * 1024)
    );
    let (s, e) = error_of(raw(huge.into_bytes(), "application/json").await.unwrap()).await;
    assert_eq!((s, e["code"].as_str()), (413, Some("too_large")));

    let list: Value = app.get("/api/v1/cameras").await.json().await.unwrap();
    assert_eq!(list, json!([]), "no bad body created anything");
    app.stop().await;
}

#[tokio::test]
async fn odd_ids_in_paths_and_unknown_routes_get_json_errors() {
    let app = spawn_app().await;
    for (path, want) in [
        ("/api/v1/cameras/Nope", 422),
        ("/api/v1/cameras/a.b", 422),
        ("/api/v1/cameras/a%2Fb", 422),
        ("/api/v1/cameras/%00", 422),
        ("/api/v1/cameras/%FF", 400),
        ("/api/v1/cameras/nope", 404),
        ("/api/v1/cameras/nope/snapshot", 404),
        ("/api/v1/cameras/UPPER/snapshot", 422),
        ("/api/v1/nothing-here", 404),
        // `/` is the dashboard (tests/dashboard.rs); other unknown paths are JSON 404s.
        ("/nothing-here", 404),
    ] {
        let (status, body) = error_of(app.get(path).await).await;
        assert_eq!(status, want, "{path} → {body}");
    }
    let (status, body) = error_of(
        app.client
            .put(app.url("/api/v1/cameras"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (405, Some("method_not_allowed"))
    );
    app.stop().await;
}

#[tokio::test]
async fn patch_is_checked_as_a_whole_and_a_bad_patch_changes_nothing() {
    let app = spawn_app().await;
    app.create_camera(json!({"id": "p1", "vendor": "axis", "address": "10.0.0.9"}))
        .await;
    for (patch, field) in [
        (json!({"vendor": "generic"}), "snapshot_url"),
        (json!({"snapshot_url": "gopher://x/"}), "snapshot_url"),
        (json!({"http_port": 0}), "http_port"),
        (json!({"id": "renamed"}), "id"),
    ] {
        let (status, body) = error_of(app.patch_json("/api/v1/cameras/p1", &patch).await).await;
        assert_eq!(status, 422, "{patch} → {body}");
        assert_eq!(body["field"], field, "{patch} → {body}");
    }
    let one: Value = app.get("/api/v1/cameras/p1").await.json().await.unwrap();
    assert_eq!(
        (one["vendor"].as_str(), one["http_port"].as_u64()),
        (Some("axis"), Some(80))
    );
    let (status, _) = error_of(
        app.patch_json("/api/v1/cameras/ghost", &json!({"name": "x"}))
            .await,
    )
    .await;
    assert_eq!(status, 404);
    app.stop().await;
}

#[tokio::test]
async fn urls_with_credentials_are_masked_in_every_response() {
    let app = spawn_app().await;
    let secret = "Zq9!lemon-PIE";
    let encoded = "Zq9%21lemon-PIE";
    let created = app
        .create_camera(json!({
            "id": "masked", "vendor": "generic",
            "main_stream_url": format!("rtsp://admin:{encoded}@10.0.0.7:554/live"),
            "snapshot_url": format!("http://10.0.0.7/cgi-bin/snap.cgi?user=admin&password={encoded}"),
            "password": secret,
        }))
        .await;
    let list = app.get("/api/v1/cameras").await.text().await.unwrap();
    let one = app
        .get("/api/v1/cameras/masked")
        .await
        .text()
        .await
        .unwrap();
    for text in [created.to_string(), list, one] {
        assert!(
            !text.contains(secret) && !text.contains(encoded) && !text.contains("lemon"),
            "{text}"
        );
        // The userinfo moved into username/password (the same password as the field, so no
        // conflict); the URL is kept without it. A query password is not userinfo: it stays,
        // masked.
        assert!(text.contains("\"rtsp://10.0.0.7:554/live\""), "{text}");
        assert!(text.contains("\"username\":\"admin\""), "{text}");
        assert!(text.contains("password=***"), "{text}");
    }
    app.stop().await;
}

#[tokio::test]
async fn health_and_openapi_describe_the_running_system() {
    let app = spawn_app().await;
    let resp = app.get("/api/v1/health").await;
    assert_eq!(resp.status(), 200);
    let h: Value = resp.json().await.unwrap();
    assert_eq!(h["status"], "ok");
    assert_eq!(h["database_ok"], true);
    assert_eq!(h["snapshots_dir_writable"], true);
    assert!(h["disk_free_bytes"].as_u64().unwrap() > 0);

    let doc: Value = app.get("/api/v1/openapi.json").await.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/v1/cameras",
        "/api/v1/cameras/{id}",
        "/api/v1/cameras/{id}/snapshot",
        "/api/v1/health",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from the OpenAPI document"
        );
    }
    assert!(doc["components"]["schemas"]["CameraView"]["properties"]["has_password"].is_object());
    assert!(doc["components"]["schemas"]["CameraView"]["properties"]["password"].is_null());
    app.stop().await;
}

#[tokio::test]
async fn health_reports_an_unwritable_snapshots_dir_as_503() {
    let app = spawn_app().await;
    // Replace the snapshots dir with a file: nothing can be created in it any more.
    let dir = app.state.ops.config.snapshots_dir.clone();
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::write(&dir, b"not a directory").unwrap();
    let resp = app.get("/api/v1/health").await;
    assert_eq!(resp.status(), 503);
    let h: Value = resp.json().await.unwrap();
    assert_eq!(h["snapshots_dir_writable"], false);
    assert!(h["problems"][0].as_str().unwrap().contains("not writable"));
    app.stop().await;
}
