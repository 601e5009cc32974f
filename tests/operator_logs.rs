//! What the log tells an operator, read from the real binary's log lines (`heldar serve`, default
//! level): every configuration change is one INFO line naming the object and what changed (never
//! a secret), token changes name the token (never its secret), the authentication switch is
//! logged, and a camera that stays unreachable does not log a warning per slot.

mod common;

use std::time::Duration;

use common::browser::free_port;
use common::{heldar_cmd, wait_for, ServerProcess};
use serde_json::{json, Value};

const OLD_PASSWORD: &str = "0ld-Pass-word!";
const NEW_PASSWORD: &str = "N3w-Secret-pw!";

#[tokio::test]
async fn changes_are_logged_with_what_changed_and_a_dead_camera_does_not_warn_every_slot() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start({
        let mut c = heldar_cmd(dir.path());
        c.arg("serve");
        c
    });
    let client = reqwest::Client::new();
    let send = |method: reqwest::Method, path: &str, body: Option<Value>| {
        let mut rb = client.request(method, server.url(path));
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        async move {
            let r = rb.send().await.unwrap();
            let status = r.status().as_u16();
            let body = r.text().await.unwrap();
            (
                status,
                serde_json::from_str::<Value>(&body).unwrap_or(Value::Null),
            )
        }
    };
    let logged = |needle: &'static str| server.wait_for_log(needle, Duration::from_secs(10));
    // Nothing listens here: every capture of these cameras is refused (`unreachable`).
    let dead_port = free_port();

    // A dead camera scheduled every 5 s, first, so its failures pile up while the rest runs.
    let (s, b) = send(
        reqwest::Method::POST,
        "/api/v1/cameras",
        Some(
            json!({"id": "dead", "vendor": "hikvision", "address": "127.0.0.1",
            "http_port": dead_port}),
        ),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = send(
        reqwest::Method::POST,
        "/api/v1/cameras/dead/snapshot-schedules",
        Some(json!({"interval_seconds": 5})),
    )
    .await;
    assert_eq!(s, 201, "{b}");

    // A camera: created, renamed and given a new password.
    let (s, b) = send(
        reqwest::Method::POST,
        "/api/v1/cameras",
        Some(
            json!({"id": "office", "name": "Office", "vendor": "hikvision",
            "address": "127.0.0.1", "http_port": dead_port, "username": "admin",
            "password": OLD_PASSWORD}),
        ),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = send(
        reqwest::Method::PATCH,
        "/api/v1/cameras/office",
        Some(json!({"name": "Back office", "password": NEW_PASSWORD})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let line = logged("camera updated").await;
    assert!(line.contains(" INFO "), "{line}");
    assert!(line.contains("camera=office"), "{line}");
    assert!(
        line.contains(r#"name "Office" → "Back office""#) && line.contains("password changed"),
        "{line}"
    );

    // A schedule: created paused, its interval changed, resumed, paused, deleted.
    let (s, b) = send(
        reqwest::Method::POST,
        "/api/v1/cameras/office/snapshot-schedules",
        Some(json!({"interval_seconds": 300, "enabled": false})),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let id = b["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/snapshot-schedules/{id}");
    for (body, needle, says) in [
        (
            json!({"interval_seconds": 600}),
            "schedule updated",
            "interval_seconds 300 → 600",
        ),
        (
            json!({"enabled": true}),
            "schedule resumed",
            "enabled false → true",
        ),
        (
            json!({"enabled": false}),
            "schedule paused",
            "enabled true → false",
        ),
    ] {
        let (s, b) = send(reqwest::Method::PATCH, &path, Some(body)).await;
        assert_eq!(s, 200, "{b}");
        let line = logged(needle).await;
        assert!(
            line.contains(" INFO ") && line.contains(&id) && line.contains("camera=office"),
            "{line}"
        );
        assert!(line.contains(says), "{says:?} missing from {line}");
    }
    let (s, _) = send(reqwest::Method::DELETE, &path, None).await;
    assert_eq!(s, 204);
    let line = logged("schedule deleted").await;
    assert!(
        line.contains(&id) && line.contains("interval_seconds=600"),
        "{line}"
    );
    let (s, _) = send(reqwest::Method::DELETE, "/api/v1/cameras/office", None).await;
    assert_eq!(s, 204);
    let line = logged("camera deleted").await;
    assert!(
        line.contains("camera=office") && line.contains("Back office"),
        "{line}"
    );

    // The dead camera failed at least three times meanwhile (at 0, 5 and 15 s: it backs off).
    wait_for(
        "three failures of the dead camera",
        Duration::from_secs(40),
        || async {
            let m = server.metrics().await;
            let n = m.lines().find_map(|l| {
                l.strip_prefix(r#"heldar_captures_total{camera="dead",result="unreachable"} "#)?
                    .trim()
                    .parse::<f64>()
                    .ok()
            })?;
            (n >= 3.0).then_some(())
        },
    )
    .await;

    // A camera with no schedule whose live snapshots fail twelve times in a row: each failure
    // answers 502, and the log says the first, the change of state and the tenth, once each.
    let (s, b) = send(
        reqwest::Method::POST,
        "/api/v1/cameras",
        Some(
            json!({"id": "gone", "vendor": "hikvision", "address": "127.0.0.1",
            "http_port": dead_port}),
        ),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    for _ in 0..12 {
        let (s, b) = send(reqwest::Method::GET, "/api/v1/cameras/gone/snapshot", None).await;
        assert_eq!((s, b["code"].as_str()), (502, Some("unreachable")), "{b}");
    }
    logged("10 failures in a row").await;

    // A token made through the API: named in the log by id and name, and (the first token)
    // switching authentication on.
    let (s, b) = send(
        reqwest::Method::POST,
        "/api/v1/tokens",
        Some(json!({"name": "ci", "role": "admin"})),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let token = b["token"].as_str().unwrap().to_string();
    let token_id = b["id"].as_str().unwrap().to_string();
    let line = logged("token created").await;
    assert!(
        line.contains(&token_id) && line.contains("token=ci") && line.contains("role=admin"),
        "{line}"
    );
    let line = logged("authentication switched ON").await;
    assert!(line.contains("the first token"), "{line}");
    let r = client
        .delete(server.url(&format!("/api/v1/tokens/{token_id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let line = logged("token revoked").await;
    assert!(line.contains(&token_id), "{line}");
    let line = logged("the last live token was revoked").await;
    assert!(line.contains(" WARN "), "{line}");

    let (status, logs) = server.stop_with(nix::sys::signal::Signal::SIGTERM);
    assert!(status.success(), "{logs:#?}");

    // The dead camera: one warning for its first failure, one for its change of state and one
    // when it went offline (HELDAR_OFFLINE_AFTER_FAILURES in a row), however many slots
    // followed; the backoff said once.
    let dead: Vec<&String> = logs.iter().filter(|l| l.contains("camera=dead")).collect();
    let warnings: Vec<&&String> = dead.iter().filter(|l| l.contains(" WARN ")).collect();
    let kinds: Vec<&str> = ["capture failed", "camera state changed", "camera offline"]
        .into_iter()
        .filter(|k| warnings.iter().any(|l| l.contains(k)))
        .collect();
    assert!(
        kinds.len() == warnings.len()
            && kinds.starts_with(&["capture failed", "camera state changed"]),
        "one `capture failed`, one `camera state changed`, at most one `camera offline`: {warnings:#?}"
    );
    assert_eq!(
        warnings
            .iter()
            .filter(|l| l.contains("capture failed"))
            .count(),
        1,
        "{warnings:#?}"
    );
    assert_eq!(
        dead.iter().filter(|l| l.contains("backing off")).count(),
        1,
        "{dead:#?}"
    );
    // The live failures: the first, the change of state and the tenth; nothing for the others
    // (no second line per failure from the HTTP layer either).
    let gone: Vec<&String> = logs
        .iter()
        .filter(|l| l.contains("camera=gone") && l.contains("cannot connect"))
        .collect();
    assert_eq!(gone.len(), 3, "{gone:#?}");
    assert!(gone.iter().all(|l| l.contains(" WARN ")), "{gone:#?}");
    assert!(gone[0].contains("capture failed"), "{gone:#?}");
    assert!(gone[1].contains("camera state changed"), "{gone:#?}");
    assert!(gone[2].contains("10 failures in a row"), "{gone:#?}");
    assert!(
        !logs
            .iter()
            .any(|l| l.contains("request failed") || l.contains(" ERROR ")),
        "{logs:#?}"
    );

    // No secret anywhere in the log.
    for secret in [OLD_PASSWORD, NEW_PASSWORD, token.as_str(), &token[17..]] {
        assert!(
            !logs.iter().any(|l| l.contains(secret)),
            "{secret:?} is in the log"
        );
    }
}
