//! The router without a socket (`tower::ServiceExt::oneshot`): every kind of operation error,
//! and every way a request can be unreadable, maps to its status, code and sentence in one place.

mod common;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use common::spawn_app;
use serde_json::{json, Value};
use tower::ServiceExt;

/// Send one request through a fresh router on the app's state; status and JSON body.
async fn call(
    app: &common::TestApp,
    method: Method,
    uri: &str,
    body: Option<(&str, Vec<u8>)>,
) -> (StatusCode, Value) {
    let router = heldar::routes::router(app.state.clone());
    let mut req = Request::builder().method(method).uri(uri);
    let body = match body {
        Some((content_type, bytes)) => {
            req = req.header(header::CONTENT_TYPE, content_type);
            Body::from(bytes)
        }
        None => Body::empty(),
    };
    let resp = router.oneshot(req.body(body).unwrap()).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, v)
}

/// A request body: content type and bytes.
type Body_ = Option<(&'static str, Vec<u8>)>;

fn json_body(v: Value) -> Body_ {
    Some(("application/json", serde_json::to_vec(&v).unwrap()))
}

#[tokio::test]
async fn each_kind_of_error_has_its_status_code_and_sentence() {
    let app = spawn_app().await;
    let camera = json!({"id": "gate", "snapshot_url": "http://127.0.0.1:9/x.jpg"});
    let (s, _) = call(
        &app,
        Method::POST,
        "/api/v1/cameras",
        json_body(camera.clone()),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);

    // method, path, body, then the status, code and part of the sentence expected.
    let cases: Vec<(Method, &str, Body_, u16, &str, &str)> = vec![
        // Operation errors (OpError) …
        (
            Method::GET,
            "/api/v1/cameras/nope",
            None,
            404,
            "not_found",
            "no camera with id",
        ),
        (
            Method::POST,
            "/api/v1/cameras",
            json_body(camera),
            409,
            "conflict",
            "already exists",
        ),
        (
            Method::POST,
            "/api/v1/cameras",
            json_body(json!({"id": "x", "vendor": "acme"})),
            422,
            "invalid_field",
            "unknown vendor",
        ),
        (
            Method::PATCH,
            "/api/v1/snapshot-schedules/sch_00000000000000000000000000000000",
            json_body(json!({})),
            404,
            "not_found",
            "no snapshot schedule",
        ),
        (
            Method::GET,
            "/api/v1/cameras/gate/snapshots/latest",
            None,
            404,
            "not_found",
            "has no stored frames yet",
        ),
        (
            Method::GET,
            "/media/snapshots/gate/20260101T000000000Z.jpg",
            None,
            404,
            "not_found",
            "no such frame",
        ),
        (
            Method::DELETE,
            "/api/v1/tokens/no-such-token",
            None,
            404,
            "not_found",
            "no live token",
        ),
        // … and requests that cannot be read at all.
        (
            Method::GET,
            "/api/v1/cameras/Not%20A%20Slug",
            None,
            422,
            "invalid_field",
            "not a slug",
        ),
        (
            Method::PATCH,
            "/api/v1/snapshot-schedules/sch_x",
            json_body(json!({})),
            422,
            "invalid_field",
            "sch_ followed by 32 hex digits",
        ),
        (
            Method::POST,
            "/api/v1/cameras",
            Some(("application/json", b"{not json".to_vec())),
            400,
            "bad_request",
            "not valid JSON",
        ),
        (
            Method::POST,
            "/api/v1/cameras",
            Some(("text/plain", b"{}".to_vec())),
            415,
            "unsupported_media_type",
            "Content-Type: application/json",
        ),
        (
            Method::POST,
            "/api/v1/cameras",
            Some(("application/json", vec![b' '; 70 * 1024])),
            413,
            "too_large",
            "64 KiB",
        ),
        (
            Method::GET,
            "/api/v1/cameras/gate/snapshots?limit=0",
            None,
            422,
            "invalid_field",
            "from 1 to 5000",
        ),
        (
            Method::GET,
            "/api/v1/events?camera=BAD",
            None,
            422,
            "invalid_field",
            "not a slug",
        ),
        (
            Method::GET,
            "/api/v2/nothing",
            None,
            404,
            "not_found",
            "no such route",
        ),
        (
            Method::PUT,
            "/api/v1/cameras",
            None,
            405,
            "method_not_allowed",
            "does not support",
        ),
    ];
    for (method, uri, body, status, code, sentence) in cases {
        let (s, v) = call(&app, method.clone(), uri, body).await;
        assert_eq!(s.as_u16(), status, "{method} {uri}: {v}");
        assert_eq!(v["code"], code, "{method} {uri}: {v}");
        let error = v["error"].as_str().unwrap_or_default();
        assert!(error.contains(sentence), "{method} {uri}: {v}");
    }
    app.stop().await;
}
