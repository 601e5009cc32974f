//! Where a person meets the API: `GET /api/v1` (the index) and the interactive docs at
//! `/api/docs/` — Swagger UI compiled into the binary, served with everything from this server
//! (no CDN), and working in a real browser (Debian's headless Chromium) under its
//! Content-Security-Policy, reached from the dashboard's system page.

mod common;

use common::browser::{browser, go, js, screenshot, until};
use common::{spawn_app, spawn_app_with, TestApp};
use fantoccini::Locator;
use heldar::app::BuildOptions;
use heldar::clock::SystemClock;
use heldar::models::Role;
use heldar::ops;
use serde_json::{json, Value};

#[tokio::test]
async fn the_api_index_says_what_it_is_and_links_where_to_start() {
    let app = spawn_app().await;
    let r = app.get("/api/v1").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let index: Value = r.json().await.unwrap();
    assert_eq!(index["name"], "Heldar");
    assert_eq!(index["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        index["links"],
        json!({
            "openapi": "/api/v1/openapi.json",
            "docs": "/api/docs/",
            "health": "/api/v1/health",
            "cameras": "/api/v1/cameras",
            "schedules": "/api/v1/snapshot-schedules",
            "events": "/api/v1/events",
        })
    );
    // Every link leads somewhere real (the event stream is opened and dropped).
    for (name, path) in index["links"].as_object().unwrap() {
        let r = app.get(path.as_str().unwrap()).await;
        assert_eq!(r.status(), 200, "{name} → {path}");
    }
    app.stop().await;
}

/// Public, like health: with auth on, it answers without a token; the collections it links to
/// do not, and their 401 comes before any 400 for the query string.
#[tokio::test]
async fn the_index_and_the_docs_are_public_the_collections_are_not() {
    let app = spawn_app_with(
        |c| c.api_token = Some("index-test-token-0123456789abcdef".into()),
        BuildOptions::default(),
    )
    .await;
    for path in [
        "/api/v1",
        "/api/docs/",
        "/api/docs/swagger-ui-bundle.js",
        "/api/v1/openapi.json",
    ] {
        assert_eq!(app.get(path).await.status(), 200, "{path}");
    }
    assert_eq!(app.get("/api/v1/cameras").await.status(), 401);
    assert_eq!(app.get("/api/v1/snapshot-schedules").await.status(), 401);
    // Who may call comes before what the query says: without a token, a 401 whatever the query.
    assert_eq!(app.get("/api/v1/cameras?limt=1").await.status(), 401);
    let with_token = app
        .client
        .get(app.url("/api/v1/cameras?limt=1"))
        .bearer_auth("index-test-token-0123456789abcdef")
        .send()
        .await
        .unwrap();
    assert_eq!(with_token.status(), 400);
    app.stop().await;
}

/// The document says what the server does: every operation's 400 covers an unknown query
/// parameter, `from`/`to` admit a date, and lists declare their paging headers.
#[tokio::test]
async fn the_document_declares_the_query_check_dates_and_paging_headers() {
    let app = spawn_app().await;
    let doc: Value = app.get("/api/v1/openapi.json").await.json().await.unwrap();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let d = op["responses"]["400"]["description"].as_str().unwrap_or("");
            assert!(
                d.contains("unknown_parameter"),
                "{method} {path}: 400 is {d:?}"
            );
        }
    }
    let op = |path: &str| doc["paths"][path]["get"].clone();
    let frames = op("/api/v1/cameras/{id}/snapshots");
    for name in ["from", "to"] {
        let p = frames["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{name} is declared"));
        assert_eq!(p["in"], "query");
        let formats: Vec<&str> = p["schema"]["anyOf"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["format"].as_str().unwrap())
            .collect();
        assert_eq!(formats, ["date", "date-time"], "{name}");
        assert!(
            p["description"].as_str().unwrap().contains("2026-11-29"),
            "{p}"
        );
    }
    for (path, paged) in [
        ("/api/v1/cameras/{id}/snapshots", true),
        ("/api/v1/snapshot-schedules", true),
        ("/api/v1/cameras", false),
        ("/api/v1/cameras/{id}/snapshot-schedules", false),
        ("/api/v1/tokens", false),
    ] {
        let o = op(path);
        let headers = &o["responses"]["200"]["headers"];
        assert!(headers["x-total-count"].is_object(), "{path}");
        assert_eq!(headers["link"].is_object(), paged, "{path}");
        let names: Vec<&str> = o["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "query")
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(names.contains(&"cursor"), paged, "{path}: {names:?}");
    }
    app.stop().await;
}

/// `src` and `href` values of a page's `<script>` and `<link>` elements.
fn references(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for tag in html.split('<').skip(1) {
        let name = tag.split([' ', '>', '\n']).next().unwrap_or("");
        if !matches!(name, "script" | "link") {
            continue;
        }
        let head = tag.split('>').next().unwrap_or("");
        for attr in ["src=\"", "href=\""] {
            if let Some(rest) = head.split(attr).nth(1) {
                out.push(rest.split('"').next().unwrap().to_string());
            }
        }
    }
    out
}

#[tokio::test]
async fn the_docs_viewer_is_served_from_the_binary_with_nothing_from_elsewhere() {
    let app = spawn_app().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = client.get(app.url("/api/docs")).send().await.unwrap();
    assert_eq!(r.status(), 308);
    assert_eq!(r.headers()["location"], "/api/docs/");

    let r = app.get("/api/docs/").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    for directive in [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
    ] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    let html = r.text().await.unwrap();
    assert!(html.contains("<title>Heldar API</title>"), "{html}");
    let refs = references(&html);
    assert!(refs.len() >= 5, "{refs:?}");
    for reference in &refs {
        assert!(
            !reference.contains("//") && !reference.contains(':'),
            "{reference} is not on this server"
        );
        // Each file the page refers to is served, typed and cacheable by ETag.
        let path = format!("/api/docs/{}", reference.trim_start_matches("./"));
        let r = app.get(&path).await;
        assert_eq!(r.status(), 200, "{path}");
        let ctype = r.headers()["content-type"].to_str().unwrap().to_string();
        let etag = r.headers()["etag"].to_str().unwrap().to_string();
        let body = r.bytes().await.unwrap();
        assert!(!body.is_empty(), "{path}");
        if path.ends_with(".js") {
            assert!(ctype.contains("javascript"), "{path}: {ctype}");
        } else if path.ends_with(".css") {
            assert!(ctype.starts_with("text/css"), "{path}: {ctype}");
        }
        let again = app
            .client
            .get(app.url(&path))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{path}");
    }
    // The script that starts the viewer points it at this server's document, and at no
    // validator or sample document elsewhere.
    let init = app
        .get("/api/docs/swagger-initializer.js")
        .await
        .text()
        .await
        .unwrap();
    assert!(init.contains("\"url\": \"/api/v1/openapi.json\""), "{init}");
    assert!(init.contains("\"validatorUrl\": \"none\""), "{init}");
    assert!(
        !init.contains("http://") && !init.contains("https://"),
        "{init}"
    );
    // Only the viewer's own files: no source maps, nothing outside the folder.
    for path in [
        "/api/docs/swagger-ui-bundle.js.map",
        "/api/docs/oauth2-redirect.html",
        "/api/docs/..%2F..%2FCargo.toml",
    ] {
        let r = app.get(path).await;
        assert_eq!(r.status(), 404, "{path}");
    }
    app.stop().await;
}

async fn operations_shown(c: &fantoccini::Client) -> i64 {
    js(c, "return document.querySelectorAll('.opblock').length;")
        .await
        .as_i64()
        .unwrap()
}

/// Click `selector` once it is there.
async fn click(c: &fantoccini::Client, what: &str, selector: &str) {
    until(c, what, &format!("document.querySelector('{selector}')")).await;
    js(c, &format!("document.querySelector('{selector}').click();")).await;
}

/// With auth on: log in to the dashboard, follow the system page's link to the docs, and try an
/// operation that needs the viewer role — the session cookie carries it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docs_viewer_works_in_headless_chromium_from_the_system_page() {
    let app: TestApp = spawn_app_with(
        |c| c.api_token = Some("docs-browser-token-0123456789abcd".into()),
        BuildOptions::default(),
    )
    .await;
    let (_, viewer) = ops::tokens::create(&app.state.ops.db, &SystemClock, "wall", Role::Viewer)
        .await
        .unwrap();
    let doc: Value = app.get("/api/v1/openapi.json").await.json().await.unwrap();
    let operations: i64 = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| item.as_object().unwrap().len() as i64)
        .sum();
    let (_driver, c) = browser(1280, 1000).await;

    go(&c, &app, "#/login").await;
    until(&c, "the login page", "document.getElementById('token')").await;
    c.find(Locator::Id("token"))
        .await
        .unwrap()
        .send_keys(&viewer)
        .await
        .unwrap();
    js(
        &c,
        "document.querySelector('#login-form button[type=submit]').click();",
    )
    .await;
    until(&c, "the signed-in grid", "location.hash === '#/'").await;

    // The dashboard's system page links to the docs.
    go(&c, &app, "#/system").await;
    let href = until(
        &c,
        "the system page's link to the API docs",
        "document.querySelector('#api-docs-link')?.getAttribute('href')",
    )
    .await;
    assert_eq!(href, json!("/api/docs/"));
    js(&c, "document.querySelector('#api-docs-link').click();").await;

    // Every operation of the document is shown, styled by the embedded stylesheet.
    until(
        &c,
        "Swagger UI to show every operation",
        &format!("document.querySelectorAll('.opblock').length === {operations}"),
    )
    .await;
    assert_eq!(operations_shown(&c).await, operations);
    assert_eq!(js(&c, "return document.title;").await, json!("Heldar API"));
    let styled = js(
        &c,
        "return getComputedStyle(document.querySelector('.opblock-summary-method')).color;",
    )
    .await;
    assert_eq!(
        styled,
        json!("rgb(255, 255, 255)"),
        "swagger-ui.css applied"
    );

    // From here on, anything the policy blocks is recorded.
    js(
        &c,
        "window.blocked = []; document.addEventListener('securitypolicyviolation', \
         (e) => window.blocked.push(e.violatedDirective + ' ' + e.blockedURI));",
    )
    .await;
    // Try GET /api/v1/cameras (viewer role) from the browser, as the logged-in dashboard user.
    let op = "#operations-cameras-list_cameras";
    click(
        &c,
        "the operation",
        &format!("{op} .opblock-summary-control"),
    )
    .await;
    click(&c, "the Try it out button", &format!("{op} .try-out__btn")).await;
    click(&c, "the Execute button", &format!("{op} .execute")).await;
    let answer = until(
        &c,
        "the response to GET /api/v1/cameras",
        &format!(
            "document.querySelector('{op} .live-responses-table tr.response .response-col_status')?.textContent.trim()"
        ),
    )
    .await;
    assert!(
        answer.as_str().unwrap().starts_with("200"),
        "the session cookie went with the request: {answer}"
    );
    let shown = js(
        &c,
        &format!(
            "return document.querySelector('{op} .live-responses-table tr.response .response-col_description')?.textContent || '';"
        ),
    )
    .await;
    assert!(
        shown.as_str().unwrap().contains("x-total-count: 0"),
        "{shown}"
    );
    screenshot(&c, "api-docs", true).await;
    let blocked = js(&c, "return window.blocked;").await;
    assert_eq!(
        blocked,
        json!([]),
        "the Content-Security-Policy blocked something"
    );
    // Nothing the page loaded came from elsewhere.
    let elsewhere = js(
        &c,
        "return performance.getEntriesByType('resource').map(r => r.name)\
         .filter(u => !u.startsWith(location.origin));",
    )
    .await;
    assert_eq!(elsewhere, json!([]));
    app.stop().await;
}
