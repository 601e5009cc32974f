//! Tokens, roles, sessions and CSRF (docs/design.md §11), against the real app on a real port.

mod common;

use common::{error_of, heldar_cmd, spawn_app_with, ServerProcess, TestApp};
use heldar::app::BuildOptions;
use heldar::auth::Need;
use heldar::clock::SystemClock;
use heldar::models::Role;
use heldar::ops;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const BOOTSTRAP: &str = "bootstrap-admin-token-0123456789";

async fn app_with_auth() -> TestApp {
    spawn_app_with(
        |c| c.api_token = Some(BOOTSTRAP.into()),
        BuildOptions::default(),
    )
    .await
}

async fn token(app: &TestApp, name: &str, role: Role) -> String {
    ops::tokens::create(&app.state.ops.db, &SystemClock, name, role)
        .await
        .unwrap()
        .1
}

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    bearer: Option<&str>,
    body: Option<Value>,
) -> reqwest::Response {
    let mut rb = app.client.request(method, app.url(path));
    if let Some(t) = bearer {
        rb = rb.bearer_auth(t);
    }
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    rb.send().await.unwrap()
}

/// Every rule in the access table, walked: without a token → 401 (unless public), with the role
/// just below → 403, with the required role → past the guard (neither 401 nor 403).
#[tokio::test]
async fn every_route_in_the_access_table_is_enforced() {
    let app = app_with_auth().await;
    let viewer = token(&app, "viewer", Role::Viewer).await;
    let operator = token(&app, "operator", Role::Operator).await;
    let admin = token(&app, "admin", Role::Admin).await;
    let of = |r: Role| match r {
        Role::Viewer => viewer.as_str(),
        Role::Operator => operator.as_str(),
        Role::Admin => admin.as_str(),
    };
    let mut walked = 0;
    // The table the running server enforces, made from its route list.
    let table = heldar::routes::describe().access;
    for (method, pattern, need) in table.rules() {
        // Ids that exist nowhere: a request that passes the guard then gets a 404/422 from the
        // handler, which is enough to see the guard let it through — and changes nothing.
        let path = pattern
            .replace("{id}", "no-such-id")
            .replace("{camera_id}", "no-such-camera")
            .replace("{file}", "20260101T000000000Z.jpg")
            .replace("{*path}", "app.js");
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let body = matches!(method, "POST" | "PATCH").then(|| json!({}));
        let anon = send(&app, m.clone(), &path, None, body.clone()).await;
        match need {
            // Public: the guard lets it through. (GET /api/v1/session itself answers 401 to
            // someone not logged in: that is its answer, not the guard's.)
            Need::Public => assert!(
                anon.status() != 403
                    && (anon.status() != 401 || (method, pattern) == ("GET", "/api/v1/session")),
                "{method} {pattern} is public but answered {}",
                anon.status()
            ),
            Need::Role(role) => {
                let (status, e) = error_of(anon).await;
                assert_eq!(status, 401, "{method} {pattern} without a token: {e}");
                assert_eq!(e["code"], "unauthorized");
                assert!(e["error"].as_str().unwrap().contains("Bearer"), "{e}");
                let below = match role {
                    Role::Viewer => None,
                    Role::Operator => Some(Role::Viewer),
                    Role::Admin => Some(Role::Operator),
                };
                if let Some(below) = below {
                    let r = send(&app, m.clone(), &path, Some(of(below)), body.clone()).await;
                    let (status, e) = error_of(r).await;
                    assert_eq!(status, 403, "{method} {pattern} as {below:?}: {e}");
                    assert_eq!(e["code"], "forbidden");
                    assert!(e["error"].as_str().unwrap().contains(role.as_str()), "{e}");
                }
                let r = send(&app, m.clone(), &path, Some(of(role)), body.clone()).await;
                assert!(
                    !matches!(r.status().as_u16(), 401 | 403),
                    "{method} {pattern} as {role:?} answered {}",
                    r.status()
                );
                // The bootstrap token is an admin.
                let r = send(&app, m.clone(), &path, Some(BOOTSTRAP), body.clone()).await;
                assert!(
                    !matches!(r.status().as_u16(), 401 | 403),
                    "{method} {pattern}"
                );
            }
        }
        walked += 1;
    }
    assert!(walked >= 20);

    // Every operation the API describes has a rule.
    let doc: Value = app.get("/api/v1/openapi.json").await.json().await.unwrap();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            if method.starts_with("x-") || method == "parameters" {
                continue;
            }
            assert!(
                table.need_for(method, path).is_ok(),
                "{method} {path} is in the OpenAPI document but not in the access table"
            );
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn bad_credentials_are_401_with_a_sentence_and_unknown_routes_stay_404() {
    let app = app_with_auth().await;
    let (viewer_token, _) = (token(&app, "v", Role::Viewer).await, ());
    for header in [
        "Basic YWRtaW46YWRtaW4=".to_string(),
        "Bearer".to_string(),
        "Bearer ".to_string(),
        "Bearer wrong-token-of-some-length".to_string(),
        format!("Bearer {}x", viewer_token),
        format!("Bearer {}", &viewer_token[..viewer_token.len() - 1]),
        format!("Bearer hld_000000000000_{}", "A".repeat(43)),
        format!("Bearer {}", "x".repeat(10_000)),
    ] {
        let r = app
            .client
            .get(app.url("/api/v1/cameras"))
            .header("authorization", header.as_bytes())
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap()),
            Some("Bearer realm=\"heldar\"")
        );
        let (status, e) = error_of(r).await;
        assert_eq!(status, 401, "{header:.40}: {e}");
        assert!(!e["error"].as_str().unwrap().is_empty());
    }
    // The health check and the API description stay open; unknown routes are 404, not 401.
    assert_eq!(app.get("/api/v1/health").await.status(), 200);
    assert_eq!(app.get("/api/v1/openapi.json").await.status(), 200);
    assert_eq!(app.get("/api/v1/nope").await.status(), 404);
    app.stop().await;
}

fn cookie_from(r: &reqwest::Response) -> String {
    let set = r
        .headers()
        .get("set-cookie")
        .expect("a Set-Cookie header")
        .to_str()
        .unwrap()
        .to_string();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attr), "{set} lacks {attr}");
    }
    set.split(';').next().unwrap().to_string()
}

#[tokio::test]
async fn dashboard_sessions_use_an_httponly_cookie_and_changes_need_the_csrf_token() {
    let app = app_with_auth().await;
    let admin = token(&app, "lead", Role::Admin).await;

    // Not logged in.
    let (status, _) = error_of(app.get("/api/v1/session").await).await;
    assert_eq!(status, 401);
    // A wrong token: 401 with a sentence, no cookie.
    let r = send(
        &app,
        Method::POST,
        "/api/v1/session",
        None,
        Some(json!({"token": "nope"})),
    )
    .await;
    assert!(r.headers().get("set-cookie").is_none());
    let (status, e) = error_of(r).await;
    assert_eq!((status, e["code"].as_str()), (401, Some("invalid_token")));
    assert!(e["error"].as_str().unwrap().contains("not valid"), "{e}");
    // Bad bodies are 4xx.
    for bad in [
        json!({}),
        json!({"token": 5}),
        json!({"token": "x", "extra": 1}),
    ] {
        let r = send(&app, Method::POST, "/api/v1/session", None, Some(bad)).await;
        assert_eq!(r.status(), 422);
    }

    // Log in.
    let r = send(
        &app,
        Method::POST,
        "/api/v1/session",
        None,
        Some(json!({"token": admin})),
    )
    .await;
    assert_eq!(r.status(), 200);
    let cookie = cookie_from(&r);
    let s: Value = r.json().await.unwrap();
    assert_eq!(
        (s["auth"].as_bool(), s["role"].as_str()),
        (Some(true), Some("admin"))
    );
    assert_eq!(s["name"], "lead");
    let csrf = s["csrf_token"].as_str().unwrap().to_string();
    assert!(csrf.len() >= 32);
    assert!(
        !cookie.contains(&admin),
        "the cookie must not carry the token"
    );

    let with_cookie = |m: Method, path: &str| {
        app.client
            .request(m, app.url(path))
            .header("cookie", cookie.clone())
    };
    // Reads work with the cookie alone.
    let r = with_cookie(Method::GET, "/api/v1/cameras")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let s: Value = with_cookie(Method::GET, "/api/v1/session")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(s["csrf_token"].as_str(), Some(csrf.as_str()));

    // A change without the CSRF header, or with a wrong one, is refused and changes nothing.
    let body = json!({"id": "door", "snapshot_url": "http://127.0.0.1:9/snap.jpg"});
    for csrf_sent in [None, Some("wrong"), Some("")] {
        let mut rb = with_cookie(Method::POST, "/api/v1/cameras").json(&body);
        if let Some(c) = csrf_sent {
            rb = rb.header("x-csrf-token", c);
        }
        let (status, e) = error_of(rb.send().await.unwrap()).await;
        assert_eq!(
            (status, e["code"].as_str()),
            (403, Some("csrf_failed")),
            "{e}"
        );
    }
    let list: Value = with_cookie(Method::GET, "/api/v1/cameras")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 0);
    // With it, the change goes through.
    let r = with_cookie(Method::POST, "/api/v1/cameras")
        .header("x-csrf-token", &csrf)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // A bearer request needs no CSRF token (a browser never sends one by itself).
    let r = send(
        &app,
        Method::DELETE,
        "/api/v1/cameras/door",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(r.status(), 204);

    // Revoking the token ends its sessions at once.
    let r = send(
        &app,
        Method::DELETE,
        "/api/v1/tokens/lead",
        Some(BOOTSTRAP),
        None,
    )
    .await;
    assert_eq!(r.status(), 204);
    let r = with_cookie(Method::GET, "/api/v1/cameras")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // Logout clears the cookie and the session.
    let viewer = token(&app, "wall", Role::Viewer).await;
    let r = send(
        &app,
        Method::POST,
        "/api/v1/session",
        None,
        Some(json!({"token": viewer})),
    )
    .await;
    let cookie = cookie_from(&r);
    let csrf = r.json::<Value>().await.unwrap()["csrf_token"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app
        .client
        .delete(app.url("/api/v1/session"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    let r = app
        .client
        .get(app.url("/api/v1/cameras"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    app.stop().await;
}

#[tokio::test]
async fn admins_manage_tokens_over_the_api_and_secrets_are_shown_once() {
    let app = app_with_auth().await;
    let r = send(
        &app,
        Method::POST,
        "/api/v1/tokens",
        Some(BOOTSTRAP),
        Some(json!({"name": "grafana", "role": "viewer"})),
    )
    .await;
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    let secret = created["token"].as_str().unwrap().to_string();
    assert!(secret.starts_with("hld_"));
    assert_eq!(created["role"], "viewer");

    // It works, with its role.
    assert_eq!(
        send(&app, Method::GET, "/api/v1/cameras", Some(&secret), None)
            .await
            .status(),
        200
    );
    assert_eq!(
        send(&app, Method::GET, "/api/v1/tokens", Some(&secret), None)
            .await
            .status(),
        403
    );
    // Listed without its secret or hash.
    let list = send(&app, Method::GET, "/api/v1/tokens", Some(BOOTSTRAP), None)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        list.contains("grafana") && !list.contains(&secret[4..20]),
        "{list}"
    );
    assert!(!list.contains("hash"));

    // Bad bodies and duplicates.
    for (body, status) in [
        (json!({"name": "grafana", "role": "viewer"}), 409),
        (json!({"name": "x", "role": "root"}), 422),
        (json!({"name": "a/b", "role": "viewer"}), 422),
        (json!({"name": "x"}), 422),
        (
            json!({"name": "x", "role": "viewer", "secret": "mine"}),
            422,
        ),
    ] {
        let r = send(
            &app,
            Method::POST,
            "/api/v1/tokens",
            Some(BOOTSTRAP),
            Some(body.clone()),
        )
        .await;
        let (s, e) = error_of(r).await;
        assert_eq!(s, status, "{body}: {e}");
    }
    // Revoke by id; a second revoke is 404.
    let id = created["id"].as_str().unwrap();
    let path = format!("/api/v1/tokens/{id}");
    assert_eq!(
        send(&app, Method::DELETE, &path, Some(BOOTSTRAP), None)
            .await
            .status(),
        204
    );
    assert_eq!(
        send(&app, Method::DELETE, &path, Some(BOOTSTRAP), None)
            .await
            .status(),
        404
    );
    assert_eq!(
        send(&app, Method::GET, "/api/v1/cameras", Some(&secret), None)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    app.stop().await;
}

/// The command line: create prints the token alone on stdout and says in plain words that
/// authentication is now on, how to sign in and how to turn it off; the running server accepts
/// the token at once; revoke cuts it off at once and warns when it took the last one (the server
/// stays locked); `heldar auth off` opens the running server again within a bound, `auth on`
/// locks it, and the server logs each switch it sees.
#[tokio::test]
async fn token_commands_create_list_and_revoke_against_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = heldar_cmd(dir.path()).args(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let (code, _, err) = run(&["token", "create", "--role", "root", "--name", "x"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("viewer, operator, admin"), "{err}");
    let (code, _, err) = run(&["token", "create", "--role", "viewer", "--name", "../x"]);
    assert_eq!(code, Some(2), "{err}");

    let server = ServerProcess::start({
        let mut c = heldar_cmd(dir.path());
        c.arg("serve");
        c
    });
    server
        .wait_for_log("authentication is OFF", Duration::from_secs(5))
        .await;
    let client = reqwest::Client::new();
    let status_of = |path: &'static str, t: Option<String>| {
        let mut rb = client.get(server.url(path));
        if let Some(t) = t {
            rb = rb.bearer_auth(t);
        }
        async move { rb.send().await.unwrap().status().as_u16() }
    };
    let get = |t: Option<String>| status_of("/api/v1/cameras", t);
    // No tokens yet: auth is off on loopback.
    assert_eq!(get(None).await, 200);
    let (code, out, _) = run(&["auth", "status"]);
    assert_eq!(code, Some(0));
    assert!(
        out.starts_with("authentication: OFF (no token was ever created)"),
        "{out}"
    );

    let (code, token, err) = run(&["token", "create", "--role", "viewer", "--name", "wall"]);
    assert_eq!(code, Some(0), "{err}");
    let token = token.trim().to_string();
    assert!(token.starts_with("hld_") && !token.contains(' '), "{token}");
    assert!(!err.contains(&token), "the token belongs on stdout only");
    // What the operator is told, in plain words.
    for words in [
        "Authentication is now ON (this was the first token)",
        "the API, the dashboard, /media and /metrics need a token",
        "paste the token on the sign-in page",
        "Authorization: Bearer <token>",
        "HELDAR_METRICS_AUTH=none",
        "To turn authentication off again: `heldar auth off`",
    ] {
        assert!(err.contains(words), "{words:?} missing from: {err}");
    }
    let (code, _, err) = run(&["token", "create", "--role", "admin", "--name", "wall"]);
    assert_ne!(code, Some(0));
    assert!(err.contains("already exists"), "{err}");

    // Auth is now on: no token → 401 (the API, /metrics, the dashboard's session); the new token
    // → 200.
    common::wait_for("auth to turn on", Duration::from_secs(5), || async {
        (get(None).await == 401).then_some(())
    })
    .await;
    assert_eq!(status_of("/metrics", None).await, 401);
    assert_eq!(status_of("/api/v1/session", None).await, 401);
    assert_eq!(get(Some(token.clone())).await, 200);
    server
        .wait_for_log("authentication is now ON", Duration::from_secs(5))
        .await;

    let (code, list, _) = run(&["token", "list", "--json"]);
    assert_eq!(code, Some(0));
    let list: Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list[0]["name"], "wall");
    assert_eq!(list[0]["role"], "viewer");
    assert!(!list.to_string().contains(&token[17..]));

    let (code, _, err) = run(&["token", "revoke", "wall"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("that was the last live token, and authentication stays ON")
            && err.contains("heldar auth off")
            && err.contains("heldar token create"),
        "{err}"
    );
    assert_eq!(get(Some(token.clone())).await, 401);
    // Revoking the last token does not open the server again.
    assert_eq!(get(None).await, 401);
    let (code, _, err) = run(&["token", "revoke", "wall"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("no live token"), "{err}");

    // `heldar auth off` while the server runs: the API and the dashboard are open again, without
    // a restart; the server logs the switch.
    let (code, out, err) = run(&["auth", "off"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("Authentication is now OFF"), "{out}");
    common::wait_for("auth to turn off", Duration::from_secs(5), || async {
        (get(None).await == 200).then_some(())
    })
    .await;
    let session: Value = client
        .get(server.url("/api/v1/session"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(session["auth"], false, "{session}");
    assert_eq!(status_of("/metrics", None).await, 200);
    let line = server
        .wait_for_log("authentication is now OFF", Duration::from_secs(5))
        .await;
    assert!(line.contains("heldar auth off"), "{line}");
    let (_, out, _) = run(&["auth", "status"]);
    assert!(
        out.starts_with("authentication: OFF (heldar auth off, at "),
        "{out}"
    );
    assert!(out.contains("live tokens: 0"), "{out}");
    // An explicit off stands: a new token does not turn it back on, and says so.
    let (code, _, err) = run(&["token", "create", "--role", "viewer", "--name", "grafana"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("Authentication is OFF"), "{err}");
    assert!(err.contains("heldar auth on"), "{err}");
    assert_eq!(get(None).await, 200);

    // And `heldar auth on` locks it again.
    let (code, out, _) = run(&["auth", "on"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("Authentication is now ON"), "{out}");
    common::wait_for("auth to turn on again", Duration::from_secs(5), || async {
        (get(None).await == 401).then_some(())
    })
    .await;
    let (_, out, _) = run(&["auth", "status"]);
    assert!(
        out.starts_with("authentication: ON (heldar auth on, at "),
        "{out}"
    );
}

/// HELDAR_METRICS_AUTH=none: a Prometheus without a token reads /metrics while everything else
/// stays behind the token, and the API description says so.
#[tokio::test]
async fn metrics_can_be_left_open_while_the_rest_needs_a_token() {
    let app = spawn_app_with(
        |c| {
            c.api_token = Some(BOOTSTRAP.into());
            c.metrics_auth = heldar::config::MetricsAuth::None;
        },
        BuildOptions::default(),
    )
    .await;
    let r = send(&app, Method::GET, "/metrics", None, None).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("heldar_build_info"));
    for path in [
        "/api/v1/cameras",
        "/media/snapshots/gate/20260101T000000000Z.jpg",
        "/api/v1/system",
    ] {
        let (status, e) = error_of(send(&app, Method::GET, path, None, None).await).await;
        assert_eq!(status, 401, "{path}: {e}");
    }
    let doc: Value = app.get("/api/v1/openapi.json").await.json().await.unwrap();
    let metrics = &doc["paths"]["/metrics"]["get"];
    assert_eq!(metrics["x-heldar-role"], "public", "{metrics}");
    assert!(metrics.get("security").is_none(), "{metrics}");
    app.stop().await;

    // The default: /metrics needs a token like the rest.
    let app = app_with_auth().await;
    assert_eq!(
        send(&app, Method::GET, "/metrics", None, None)
            .await
            .status(),
        401
    );
    app.stop().await;
}

/// A value HELDAR_METRICS_AUTH does not know stops start-up with a sentence naming it.
#[test]
fn a_bad_metrics_auth_value_stops_start_up_with_a_sentence() {
    let dir = tempfile::tempdir().unwrap();
    let out = heldar_cmd(dir.path())
        .args(["serve"])
        .env("HELDAR_METRICS_AUTH", "open")
        .env("HELDAR_API_PORT", "0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("HELDAR_METRICS_AUTH=\"open\" cannot be used: `token`"),
        "{err}"
    );
}
