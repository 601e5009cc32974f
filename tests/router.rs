//! The router without a socket (`tower::ServiceExt::oneshot`): every kind of operation error,
//! and every way a request can be unreadable, maps to its status, code and sentence in one place.

mod common;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use bytes::Bytes;
use common::{error_of, spawn_app};
use heldar::fakecam::{pattern, FakeAuth, FakeCamera, FrameSupply};
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

/// An unknown query parameter is a 400 naming it and what the endpoint takes — on routes that
/// take parameters and on routes that take none — and the known ones keep working.
#[tokio::test]
async fn unknown_query_parameters_are_refused_by_name() {
    let app = spawn_app().await;
    let cam = FakeCamera::start(
        FakeAuth::None,
        FrameSupply::Static(Bytes::from(pattern::solid_jpeg(32, 24, [0, 0, 200]))),
    )
    .await
    .unwrap();
    app.create_camera(json!({"id": "yard", "snapshot_url": cam.snapshot_url()}))
        .await;
    let stored = app.get("/api/v1/cameras/yard/snapshot?store=true").await;
    assert_eq!(stored.status(), 200, "a known parameter passes");
    let media = stored.headers()["location"].to_str().unwrap().to_string();
    let schedule: Value = app
        .post_json(
            "/api/v1/cameras/yard/snapshot-schedules",
            &json!({"enabled": false}),
        )
        .await
        .json()
        .await
        .unwrap();
    let schedule = format!(
        "/api/v1/snapshot-schedules/{}",
        schedule["id"].as_str().unwrap()
    );

    let none = "this endpoint takes no query parameters";
    let frames = "this endpoint takes from, to, tag, limit, cursor";
    // method, path with query, the parameter named, what the sentence says it takes.
    let cases: Vec<(Method, String, &str, &str)> = vec![
        (
            Method::GET,
            "/api/v1/cameras/yard/snapshots?limt=5".into(),
            "limt",
            frames,
        ),
        (
            Method::GET,
            "/api/v1/cameras/yard/snapshots?limit=5&form=2026-11-29".into(),
            "form",
            frames,
        ),
        (Method::GET, "/api/v1/cameras?limit=1".into(), "limit", none),
        (
            Method::GET,
            "/api/v1/cameras/yard?verbose".into(),
            "verbose",
            none,
        ),
        (
            Method::GET,
            "/api/v1/snapshot-schedules?enable=true".into(),
            "enable",
            "this endpoint takes camera, enabled, limit, cursor",
        ),
        (Method::GET, format!("{schedule}?x=1"), "x", none),
        (
            Method::GET,
            "/api/v1/events?cam=yard".into(),
            "cam",
            "this endpoint takes camera",
        ),
        (
            Method::GET,
            "/api/v1/cameras/yard/snapshot?save=true".into(),
            "save",
            "this endpoint takes store, max_age_ms",
        ),
        (Method::GET, format!("{media}?t=1"), "t", none),
        (Method::GET, "/api/v1/health?full=1".into(), "full", none),
        (Method::GET, "/api/v1?x=".into(), "x", none),
        (Method::GET, "/api/v1/openapi.json?v=3".into(), "v", none),
        (Method::GET, "/metrics?name%5B%5D=up".into(), "name[]", none),
        (
            Method::DELETE,
            "/api/v1/cameras/yard?force=true".into(),
            "force",
            none,
        ),
    ];
    for (method, uri, name, takes) in cases {
        let r = app
            .client
            .request(method.clone(), app.url(&uri))
            .send()
            .await
            .unwrap();
        let (status, body) = error_of(r).await;
        assert_eq!(status, 400, "{method} {uri}: {body}");
        assert_eq!(body["code"], "unknown_parameter", "{method} {uri}");
        assert_eq!(body["field"], name, "{method} {uri}");
        assert_eq!(
            body["error"],
            format!("unknown query parameter {name:?}; {takes}"),
            "{method} {uri}"
        );
    }
    // A refused change changed nothing.
    let r = app
        .client
        .post(app.url("/api/v1/cameras?dry_run=1"))
        .json(&json!({"id": "gate", "snapshot_url": cam.snapshot_url()}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(app.get("/api/v1/cameras/gate").await.status(), 404);
    assert_eq!(app.get("/api/v1/cameras/yard").await.status(), 200);

    // Known parameters, and none, still work; the media's Range too.
    for uri in [
        "/api/v1/cameras/yard/snapshots?limit=1&from=2020-01-01&to=2099-12-31",
        "/api/v1/snapshot-schedules?camera=yard&enabled=false",
        "/api/v1/cameras?",
        media.as_str(),
    ] {
        assert_eq!(app.get(uri).await.status(), 200, "{uri}");
    }
    let part = app
        .client
        .get(app.url(&media))
        .header("range", "bytes=0-1")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    let events = app.get("/api/v1/events?camera=yard").await;
    assert_eq!(events.status(), 200);
    drop(events);
    // The dashboard's own files are pages, not API operations: a query string is theirs.
    for uri in ["/?from=bookmark", "/assets/app.css?v=2"] {
        assert_eq!(app.get(uri).await.status(), 200, "{uri}");
    }
    app.stop().await;
}

/// The two routes whose body may be left out (schedule create and its draft preview) take a body
/// only as JSON, like every other body route: a form post is a 415 and creates nothing, even an
/// empty one; no body at all still means all defaults.
#[tokio::test]
async fn optional_schedule_bodies_are_refused_unless_json() {
    let app = spawn_app().await;
    let camera = json!({"id": "gate", "snapshot_url": "http://127.0.0.1:9/x.jpg"});
    let (s, _) = call(&app, Method::POST, "/api/v1/cameras", json_body(camera)).await;
    assert_eq!(s, StatusCode::CREATED);

    let create = "/api/v1/cameras/gate/snapshot-schedules";
    let preview = "/api/v1/cameras/gate/snapshot-schedules/preview";
    let form = "application/x-www-form-urlencoded";
    let refused: Vec<(&str, Body_)> = vec![
        (create, Some((form, b"interval_seconds=60".to_vec()))),
        (create, Some((form, Vec::new()))),
        (
            create,
            Some(("text/plain", b"{\"interval_seconds\": 60}".to_vec())),
        ),
        (
            create,
            Some(("multipart/form-data; boundary=x", b"--x--".to_vec())),
        ),
        (preview, Some((form, b"interval_seconds=60".to_vec()))),
        (preview, Some(("text/plain", b"{}".to_vec()))),
    ];
    for (uri, body) in refused {
        let (s, v) = call(&app, Method::POST, uri, body).await;
        assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{uri}: {v}");
        assert_eq!(v["code"], "unsupported_media_type", "{uri}: {v}");
        let error = v["error"].as_str().unwrap_or_default();
        assert!(error.contains("Content-Type: application/json"), "{v}");
    }
    let (_, list) = call(&app, Method::GET, create, None).await;
    assert_eq!(list, json!([]), "a refused post created a schedule");

    // JSON (with a charset) and no body at all are taken.
    let charset = Some((
        "application/json; charset=utf-8",
        br#"{"interval_seconds": 60}"#.to_vec(),
    ));
    let (s, v) = call(&app, Method::POST, create, charset).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["interval_seconds"], 60);
    let (s, v) = call(&app, Method::POST, create, None).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = call(&app, Method::POST, preview, json_body(json!({}))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = call(&app, Method::POST, preview, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    app.stop().await;
}

/// What a client sent is echoed in an error sentence at most in part: a huge number, a tiny
/// float written out in full, a long id or parameter name comes back cut short (a word of more
/// than 64 characters as its first 40 and `…`), never whole.
#[tokio::test]
async fn huge_values_are_echoed_cut_short_in_error_sentences() {
    let app = spawn_app().await;
    let camera = json!({"id": "gate", "snapshot_url": "http://127.0.0.1:9/x.jpg"});
    let (s, _) = call(&app, Method::POST, "/api/v1/cameras", json_body(camera)).await;
    assert_eq!(s, StatusCode::CREATED);

    let digits = "9".repeat(300);
    let huge_interval = format!("{{\"interval_seconds\": {digits}}}").into_bytes();
    let long_id = "a".repeat(5000);
    let cases: Vec<(Method, String, Body_)> = vec![
        (
            Method::POST,
            "/api/v1/cameras/gate/snapshot-schedules".into(),
            Some(("application/json", huge_interval.clone())),
        ),
        (
            Method::POST,
            "/api/v1/cameras/gate/snapshot-schedules/preview".into(),
            Some(("application/json", huge_interval)),
        ),
        (
            Method::PATCH,
            "/api/v1/cameras/gate".into(),
            Some(("application/json", br#"{"max_gb": 1e-300}"#.to_vec())),
        ),
        (Method::GET, format!("/api/v1/cameras/{long_id}"), None),
        (Method::GET, format!("/api/v1/cameras?{long_id}=1"), None),
    ];
    for (method, uri, body) in cases {
        let shown = &uri[..60.min(uri.len())];
        let (s, v) = call(&app, method.clone(), &uri, body).await;
        assert!(s.is_client_error(), "{method} {shown}: {s}");
        // At most 64 characters of the value (a longer word is cut to 40 and `…`): no run of
        // 65 of its digits or letters.
        let error = v["error"].as_str().unwrap_or_default();
        let field = v["field"].as_str().unwrap_or_default();
        for text in [error, field] {
            assert!(
                ["9", "0", "a"]
                    .iter()
                    .all(|c| !text.contains(&c.repeat(65)))
                    && text.chars().count() < 300,
                "{method} {shown}: {}",
                &text[..text.len().min(500)]
            );
        }
    }
    app.stop().await;
}
