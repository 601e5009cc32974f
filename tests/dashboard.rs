//! The dashboard in a real browser: Debian's headless Chromium, driven over WebDriver by
//! chromedriver (a child process of the test), against the real server with the demo camera.
//! `scripts/test` installs `chromium` and `chromium-driver` when they are missing.
//!
//! Screenshots of every page go to `target/screenshots/`; with `HELDAR_DOCS_SCREENSHOTS=1` the
//! key ones are also copied to `docs/screenshots/` (the README shows those).

mod common;

use std::time::Duration;

use common::browser::{browser, frame_index, free_port, go, js, press, screenshot, until};
use common::{spawn_app, spawn_app_with, wait_for, TestApp};
use fantoccini::key::Key;
use fantoccini::Locator;
use heldar::app::BuildOptions;
use heldar::clock::SystemClock;
use heldar::fakecam::{FakeAuth, FakeCamera, FrameSupply};
use heldar::models::Role;
use heldar::ops;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_flow_in_headless_chromium() {
    let app = spawn_app_with(
        |_| {},
        BuildOptions {
            demo: true,
            ..BuildOptions::default()
        },
    )
    .await;
    let gate = FakeCamera::start(
        FakeAuth::None,
        FrameSupply::Pattern {
            width: 640,
            height: 360,
            label: "heldar cam".into(),
        },
    )
    .await
    .unwrap();
    let (_driver, c) = browser(1280, 900).await;

    // 1. The grid shows the demo camera's real newest frame.
    go(&c, &app, "#/").await;
    let demo_img = "document.querySelector('li.tile[data-camera=\"demo\"] img')";
    let width = until(
        &c,
        "the demo tile's image to load",
        &format!("{demo_img} && {demo_img}.complete && {demo_img}.naturalWidth"),
    )
    .await;
    assert_eq!(
        width,
        json!(640),
        "the demo camera's frames are 640 px wide"
    );
    let tile = js(&c, "const t = document.querySelector('li.tile[data-camera=\"demo\"]'); return [t.querySelector('.name').textContent, t.querySelector('.badge').textContent, t.querySelector('.age').textContent];").await;
    assert_eq!(tile[0], "Demo camera");
    assert_eq!(tile[1], "Online");
    assert!(
        tile[2].as_str().unwrap().starts_with("newest frame"),
        "{tile}"
    );
    screenshot(&c, "grid", true).await;

    // The same grid at phone width: one column, nothing wider than the screen.
    c.set_window_size(390, 844).await.unwrap();
    until(&c, "the phone-width layout", "window.innerWidth <= 400").await;
    let overflow = js(
        &c,
        "return document.documentElement.scrollWidth - window.innerWidth;",
    )
    .await;
    assert!(
        overflow.as_i64().unwrap() <= 0,
        "horizontal overflow at 390 px: {overflow}"
    );
    let img_w = js(
        &c,
        &format!("return {demo_img}.getBoundingClientRect().width;"),
    )
    .await;
    assert!(
        img_w.as_f64().unwrap() > 300.0,
        "the tile fills the phone's width: {img_w}"
    );
    screenshot(&c, "grid-phone", true).await;
    c.set_window_size(1280, 900).await.unwrap();
    until(&c, "the desktop layout", "window.innerWidth > 1000").await;

    // 2. Add a camera with a bad id: the API's sentence shows next to the id field.
    c.find(Locator::Css("a[href='#/cameras/new']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(&c, "the add-camera form", "document.getElementById('f-id')").await;
    let id_input = c.find(Locator::Id("f-id")).await.unwrap();
    id_input.send_keys("Front Gate!").await.unwrap();
    c.find(Locator::Id("f-name"))
        .await
        .unwrap()
        .send_keys("Front gate")
        .await
        .unwrap();
    c.find(Locator::Css("#f-vendor option[value='generic']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.find(Locator::Id("f-snapshot_url"))
        .await
        .unwrap()
        .send_keys(&gate.snapshot_url())
        .await
        .unwrap();
    // No default schedule: this flow adds its own, of 5 s, on the camera's page (step 4).
    c.find(Locator::Id("f-schedule"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.find(Locator::Css("#camera-form button[value='save']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let err = until(
        &c,
        "the id field's error",
        "!document.getElementById('err-id').hidden && document.getElementById('err-id').textContent",
    )
    .await;
    assert!(err.as_str().unwrap().contains("is not a slug"), "{err}");
    let placed = js(&c, "const e = document.getElementById('err-id'); return [e.closest('.field').dataset.field, e.closest('.field').contains(document.getElementById('f-id')), document.getElementById('f-id').getAttribute('aria-invalid'), document.activeElement.id, document.getElementById('form-error').hidden];").await;
    assert_eq!(placed, json!(["id", true, "true", "f-id", true]));
    screenshot(&c, "add-camera-error", true).await;

    // 3. Fix it: the camera is created and its page opens.
    id_input.clear().await.unwrap();
    id_input.send_keys("gate").await.unwrap();
    c.find(Locator::Css("#camera-form button[value='save']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        &c,
        "the new camera's page",
        "location.hash === '#/cameras/gate' && document.getElementById('timeline-h')",
    )
    .await;
    let created: Value = app.get("/api/v1/cameras/gate").await.json().await.unwrap();
    assert_eq!(created["name"], "Front gate");
    assert_eq!(created["snapshot_url"], gate.snapshot_url());

    // A live snapshot on demand shows the camera's real frame.
    c.find(Locator::Id("live-btn"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let live_w = until(
        &c,
        "the live frame",
        "document.getElementById('live-frame') && document.getElementById('live-frame').complete && document.getElementById('live-frame').naturalWidth",
    )
    .await;
    assert_eq!(live_w, json!(640));

    // 4. A schedule at the minimum interval; its frames appear on the timeline.
    let interval = c.find(Locator::Id("new-interval")).await.unwrap();
    interval.clear().await.unwrap();
    interval.send_keys("5").await.unwrap();
    c.find(Locator::Css("#schedule-form button[type='submit']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        &c,
        "the schedule in the list",
        "document.querySelector('#schedules li[data-schedule] .sched-words')?.textContent === 'every 5 s'",
    )
    .await;
    let schedules: Value = app
        .get("/api/v1/cameras/gate/snapshot-schedules")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(schedules[0]["interval_seconds"], 5, "{schedules}");
    let first = until(
        &c,
        "the first scheduled frame on the timeline",
        "!document.getElementById('frame').hidden && document.getElementById('frame').complete && document.getElementById('frame').naturalWidth",
    )
    .await;
    assert_eq!(first, json!(640));
    // Three frames: the first at once, then one every 5 s (the timeline polls every 5 s).
    let frames = wait_for(
        "three frames on the timeline",
        Duration::from_secs(40),
        || {
            let f = c.execute(
                "return Number(document.getElementById('scrubber').getAttribute('aria-valuemax')) + 1;",
                vec![],
            );
            async move { f.await.ok()?.as_i64().filter(|n| *n >= 3) }
        },
    )
    .await;
    let (idx, newest_id) = frame_index(&c).await;
    assert_eq!(idx, frames - 1, "the timeline follows the newest frame");

    // 5. Scrub with the keyboard: ArrowLeft/ArrowRight step one frame.
    js(&c, "document.getElementById('scrubber').focus();").await;
    press(&c, Key::Left).await;
    until(
        &c,
        "one frame back",
        &format!(
            "document.getElementById('frame').dataset.index === '{}'",
            frames - 2
        ),
    )
    .await;
    let (_, older_id) = frame_index(&c).await;
    assert_ne!(older_id, newest_id, "a different frame is shown");
    let src = js(
        &c,
        "return document.getElementById('frame').getAttribute('src');",
    )
    .await;
    assert!(
        src.as_str().unwrap().starts_with("/media/snapshots/gate/"),
        "{src}"
    );
    press(&c, Key::Left).await;
    until(
        &c,
        "two frames back",
        &format!(
            "document.getElementById('frame').dataset.index === '{}'",
            frames - 3
        ),
    )
    .await;
    press(&c, Key::Right).await;
    until(
        &c,
        "one frame forward",
        &format!(
            "document.getElementById('frame').dataset.index === '{}'",
            frames - 2
        ),
    )
    .await;
    // The viewer takes arrows too.
    js(&c, "document.querySelector('figure.viewer').focus();").await;
    press(&c, Key::Right).await;
    until(
        &c,
        "forward in the viewer",
        &format!(
            "document.getElementById('frame').dataset.index === '{}'",
            frames - 1
        ),
    )
    .await;
    assert_eq!(frame_index(&c).await.1, newest_id);
    let caption = js(
        &c,
        "return document.getElementById('frame-count').textContent;",
    )
    .await;
    assert!(
        caption
            .as_str()
            .unwrap()
            .starts_with(&format!("Frame {frames} of")),
        "{caption}"
    );
    // A taller window shows the whole timeline with its controls.
    c.set_window_size(1280, 1150).await.unwrap();
    until(&c, "the taller window", "window.innerHeight > 1000").await;
    screenshot(&c, "camera", true).await;
    c.set_window_size(1280, 900).await.unwrap();

    // 6. Play: from the end it starts over and steps through every frame in order.
    js(
        &c,
        "window.__seen = []; new MutationObserver(() => window.__seen.push(Number(document.getElementById('frame').dataset.index))).observe(document.getElementById('frame'), {attributes: true, attributeFilter: ['data-index']});",
    )
    .await;
    c.find(Locator::Id("play"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let seen = until(
        &c,
        "playback to reach the newest frame",
        &format!("window.__seen.length >= {frames} && window.__seen[window.__seen.length - 1] >= {} && window.__seen", frames - 1),
    )
    .await;
    let seen: Vec<i64> = serde_json::from_value(seen).unwrap();
    assert_eq!(
        seen[0], 0,
        "playback starts over from the oldest frame: {seen:?}"
    );
    assert!(
        seen.windows(2).all(|w| w[1] == w[0] + 1),
        "one frame at a time: {seen:?}"
    );
    until(
        &c,
        "playback to stop at the end",
        "document.getElementById('play').getAttribute('aria-pressed') === 'false'",
    )
    .await;

    // 7. The other pages render: edit form and system page with the capture counts.
    go(&c, &app, "#/cameras/gate/edit").await;
    until(
        &c,
        "the edit form",
        "document.getElementById('f-name')?.value === 'Front gate'",
    )
    .await;
    let pw = js(&c, "return [document.getElementById('f-password').type, document.getElementById('f-password').value, document.getElementById('f-id').disabled];").await;
    assert_eq!(
        pw,
        json!(["password", "", true]),
        "the password is write-only, the id fixed"
    );
    screenshot(&c, "edit-camera", false).await;

    go(&c, &app, "#/system").await;
    let ok = until(
        &c,
        "the system page's camera table",
        "document.querySelector('#camera-table tr[data-camera=\"gate\"] td[data-k=\"ok\"]')?.textContent",
    )
    .await;
    let ok: u64 = ok
        .as_str()
        .unwrap()
        .replace([',', '.', ' '], "")
        .parse()
        .unwrap();
    assert!(
        ok > frames as u64,
        "{ok} good captures: the scheduled frames and the live one"
    );
    let health = js(
        &c,
        "return document.getElementById('health-status').textContent;",
    )
    .await;
    assert_eq!(health, "OK");
    // The nodes table: this server alone, live, holding both cameras (docs/fleet.md).
    let node = until(
        &c,
        "the system page's nodes table",
        "(() => { const r = document.querySelectorAll('#node-table tbody tr'); return r.length ? [r.length, r[0].querySelector('[data-k=state]').textContent, r[0].querySelector('[data-k=cameras]').textContent, r[0].querySelector('[data-k=health]').textContent, r[0].textContent.includes('(this one)')] : null; })()",
    )
    .await;
    assert_eq!(node, json!([1, "Live", "2: demo, gate", "OK", true]));
    screenshot(&c, "system", true).await;

    // The login page, with auth off, says so.
    go(&c, &app, "#/login").await;
    until(
        &c,
        "the login page",
        "document.querySelector('main h1')?.textContent === 'Sign in'",
    )
    .await;
    screenshot(&c, "login-auth-off", false).await;

    c.close().await.unwrap();
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newcomer_without_cameras_is_told_how_to_start() {
    let app = spawn_app().await;
    let (_driver, c) = browser(1280, 900).await;
    go(&c, &app, "#/").await;
    let text = until(
        &c,
        "the empty state",
        "document.querySelector('#grid .empty')?.textContent",
    )
    .await;
    let text = text.as_str().unwrap();
    assert!(text.contains("No cameras yet"), "{text}");
    assert!(text.contains("heldar serve --demo"), "{text}");
    let add = js(
        &c,
        "return document.querySelector('#grid .empty a.button').getAttribute('href');",
    )
    .await;
    assert_eq!(add, "#/cameras/new");
    screenshot(&c, "grid-empty", true).await;
    c.close().await.unwrap();
    app.stop().await;
}

#[tokio::test]
async fn assets_are_embedded_typed_and_revalidated() {
    let app = spawn_app().await;
    let r = app.get("/").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(r.headers()["cache-control"], "no-cache");
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    assert!(r.text().await.unwrap().contains("/assets/js/app.js"));
    let again = app
        .client
        .get(app.url("/"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["etag"].to_str().unwrap(), etag);
    assert!(again.bytes().await.unwrap().is_empty());

    // Every module app.js imports, and what they import, is served as JavaScript.
    let mut todo = vec!["js/app.js".to_string()];
    let mut seen = std::collections::HashSet::new();
    while let Some(path) = todo.pop() {
        if !seen.insert(path.clone()) {
            continue;
        }
        let r = app.get(&format!("/assets/{path}")).await;
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(
            r.headers()["content-type"],
            "text/javascript; charset=utf-8",
            "{path}"
        );
        assert!(r.headers().contains_key("etag"));
        let body = r.text().await.unwrap();
        for line in body.lines().filter(|l| l.starts_with("import ")) {
            let spec = line.split('"').nth(1).expect("import \"./x.js\"");
            todo.push(format!("js/{}", spec.trim_start_matches("./")));
        }
    }
    assert!(seen.len() >= 7, "{seen:?}");
    let css = app.get("/assets/app.css").await;
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    let svg = app.get("/assets/icon.svg").await;
    assert_eq!(svg.headers()["content-type"], "image/svg+xml");

    // Unknown files and API paths are still JSON 404s.
    for path in [
        "/assets/nope.js",
        "/assets/../Cargo.toml",
        "/assets/%2e%2e/Cargo.toml",
        "/assets/js/%2e%2e/%2e%2e/Cargo.toml",
        "/assets/.hidden",
        "/assets/js//app.js",
        "/api/v1/nope",
        "/media/nope",
        "/nope",
    ] {
        let (status, body) = common::error_of(app.get(path).await).await;
        assert_eq!(status, 404, "{path}: {body}");
    }
    // The same paths sent as they are (reqwest would normalise them): never a file outside web/.
    for path in [
        "/assets/../Cargo.toml",
        "/assets/js/../../Cargo.toml",
        "/assets/js/../app.css",
    ] {
        let raw = raw_get(&app, path).await;
        assert!(raw.starts_with("HTTP/1.1 404"), "{path}: {raw}");
        assert!(!raw.contains("[package]"), "{path}");
    }
    app.stop().await;
}

/// A GET whose path is sent byte for byte; returns the whole response as text.
async fn raw_get(app: &TestApp, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = app.base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_camera_shows_its_precise_error() {
    let app = spawn_app().await;
    // A port nothing listens on: every capture is refused.
    let dead = free_port();
    app.create_camera(
        json!({"id": "dock", "name": "Loading dock", "vendor": "hikvision",
        "address": "127.0.0.1", "http_port": dead, "username": "admin", "password": "s3cret-pw"}),
    )
    .await;
    let (_driver, c) = browser(1280, 900).await;

    // "Save and test capture" on the edit page shows the failure's code and sentence.
    go(&c, &app, "#/cameras/dock/edit").await;
    until(
        &c,
        "the edit form",
        "document.getElementById('f-name')?.value === 'Loading dock'",
    )
    .await;
    c.find(Locator::Css("#camera-form button[value='test']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let err = until(
        &c,
        "the test capture's failure",
        "document.getElementById('test-error')?.textContent",
    )
    .await;
    let err = err.as_str().unwrap();
    assert!(err.contains("(unreachable)"), "{err}");
    assert!(
        err.contains(&format!("127.0.0.1:{dead}")),
        "the precise URL: {err}"
    );
    assert!(!err.contains("s3cret-pw"), "no password in the page: {err}");
    let page = js(&c, "return document.documentElement.outerHTML;").await;
    assert!(!page.as_str().unwrap().contains("s3cret-pw"));
    screenshot(&c, "test-capture-failed", false).await;

    // On the grid the badge says Failing and the last error is written under the tile, readable
    // without a hover or a tap (issue 14).
    go(&c, &app, "#/").await;
    let tile = "document.querySelector('li.tile[data-camera=\"dock\"]')";
    until(
        &c,
        "the failing badge",
        &format!("{tile}?.querySelector('.badge').textContent === 'Failing'"),
    )
    .await;
    let title = js(&c, &format!("return {tile}.querySelector('.badge').title;")).await;
    assert!(
        title.as_str().unwrap().contains("cannot connect"),
        "hover shows it: {title}"
    );
    let shown = until(
        &c,
        "the error under the tile",
        &format!("!{tile}.querySelector('.tile-error').hidden && {tile}.querySelector('.tile-error').textContent"),
    )
    .await;
    assert!(
        shown.as_str().unwrap().contains("cannot connect"),
        "{shown}"
    );
    let empty = js(
        &c,
        &format!("return {tile}.querySelector('.no-frame').textContent;"),
    )
    .await;
    assert_eq!(empty, "No frames yet");
    screenshot(&c, "grid-failing", false).await;
    c.close().await.unwrap();
    app.stop().await;
}

/// With auth on: the dashboard sends a newcomer to the login page, shows the server's sentence
/// for a wrong token, signs in with a right one (the session cookie is HttpOnly: page scripts
/// cannot read it), and a viewer sees no controls it cannot use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_with_a_token_and_roles_shape_the_page() {
    let app = spawn_app_with(
        |c| c.api_token = Some("bootstrap-admin-token-0123456789".into()),
        BuildOptions {
            demo: true,
            ..BuildOptions::default()
        },
    )
    .await;
    let (_, admin) = ops::tokens::create(&app.state.ops.db, &SystemClock, "lead", Role::Admin)
        .await
        .unwrap();
    let (_, viewer) = ops::tokens::create(&app.state.ops.db, &SystemClock, "wall", Role::Viewer)
        .await
        .unwrap();
    let (_driver, c) = browser(1280, 900).await;

    go(&c, &app, "#/").await;
    until(
        &c,
        "the login page",
        "location.hash.startsWith('#/login') && document.getElementById('token')",
    )
    .await;
    let sign_in = |token: String| {
        let c = c.clone();
        async move {
            let input = c.find(Locator::Id("token")).await.unwrap();
            input.clear().await.unwrap();
            input.send_keys(&token).await.unwrap();
            c.find(Locator::Css("#login-form button[type=submit]"))
                .await
                .unwrap()
                .click()
                .await
                .unwrap();
        }
    };
    sign_in("hld_000000000000_not-a-real-token".into()).await;
    let shown = until(
        &c,
        "the wrong-token message",
        "!document.getElementById('token-error').hidden && document.getElementById('token-error').textContent",
    )
    .await;
    assert!(shown.as_str().unwrap().contains("not valid"), "{shown}");
    screenshot(&c, "login-error", true).await;

    sign_in(admin).await;
    let demo_img = "document.querySelector('li.tile[data-camera=\"demo\"] img')";
    until(
        &c,
        "the grid after signing in",
        &format!("{demo_img} && {demo_img}.complete && {demo_img}.naturalWidth"),
    )
    .await;
    let cookie = js(&c, "return document.cookie;").await;
    assert!(
        !cookie.as_str().unwrap().contains("heldar_session"),
        "HttpOnly: {cookie}"
    );
    assert!(
        js(
            &c,
            "return !!document.querySelector(\"a[href='#/cameras/new']\");"
        )
        .await
            == json!(true),
        "an admin can add cameras"
    );

    // A viewer: the same grid, without the controls that need more.
    go(&c, &app, "#/login").await;
    until(&c, "the login page", "document.getElementById('token')").await;
    sign_in(viewer).await;
    until(
        &c,
        "the grid as a viewer",
        "document.querySelector('header .role')?.textContent.includes('viewer')",
    )
    .await;
    until(
        &c,
        "the demo tile",
        "document.querySelector('li.tile[data-camera=\"demo\"]')",
    )
    .await;
    assert_eq!(
        js(
            &c,
            "return !!document.querySelector(\"a[href='#/cameras/new']\");"
        )
        .await,
        json!(false),
        "a viewer is not offered the camera form"
    );
    c.close().await.unwrap();
    app.stop().await;
}

/// The grid and the timeline follow the event stream: a frame kept through the API shows on its
/// tile and in the timeline at once, although with the stream up the pages only poll once a
/// minute (so nothing but the `frame.stored` event can have told them within this test's wait).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grid_and_the_timeline_update_from_the_event_stream() {
    let app = spawn_app().await;
    let cam = FakeCamera::start(
        FakeAuth::None,
        FrameSupply::Pattern {
            width: 320,
            height: 180,
            label: "events".into(),
        },
    )
    .await
    .unwrap();
    app.create_camera(json!({"id": "porch", "snapshot_url": cam.snapshot_url()}))
        .await;
    let keep = || async {
        let r = app.get("/api/v1/cameras/porch/snapshot?store=true").await;
        assert_eq!(r.status(), 200);
        r.headers()["location"].to_str().unwrap().to_string()
    };
    let (_driver, c) = browser(1280, 900).await;

    go(&c, &app, "#/").await;
    let img = "document.querySelector('li.tile[data-camera=\"porch\"] img')";
    until(&c, "the porch tile", img).await;
    // Once the stream is up the page's next poll is a minute away: what follows can only come
    // from the events.
    until(
        &c,
        "the event stream",
        "document.body.dataset.live === 'on'",
    )
    .await;
    for _ in 0..2 {
        let url = keep().await;
        until(
            &c,
            "the tile to show the frame just kept",
            &format!("{img}?.getAttribute('src') === {url:?}"),
        )
        .await;
    }

    go(&c, &app, "#/cameras/porch").await;
    until(
        &c,
        "the timeline with two frames",
        "document.getElementById('scrubber') && Number(document.getElementById('scrubber').getAttribute('aria-valuemax')) === 1",
    )
    .await;
    until(
        &c,
        "the event stream",
        "document.body.dataset.live === 'on'",
    )
    .await;
    keep().await;
    until(
        &c,
        "the timeline to take in the third frame",
        "Number(document.getElementById('scrubber').getAttribute('aria-valuemax')) === 2",
    )
    .await;
    app.stop().await;
}

/// A camera with a self-signed certificate: "Save and test capture" shows the `tls` failure and
/// the presented certificate's fingerprint; "Trust this certificate", once confirmed, pins it and
/// the next test capture shows the frame.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_signed_camera_is_trusted_from_the_test_capture() {
    let app = spawn_app().await;
    let cam = common::tls::TlsCamera::start().await;
    app.create_camera(json!({"id": "porch", "name": "Porch", "snapshot_url": cam.https()}))
        .await;
    let (_driver, c) = browser(1280, 900).await;
    go(&c, &app, "#/cameras/porch/edit").await;
    until(
        &c,
        "the edit form",
        "document.getElementById('f-name')?.value === 'Porch'",
    )
    .await;
    c.find(Locator::Css("#camera-form button[value='test']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let shown = until(
        &c,
        "the presented fingerprint",
        "document.getElementById('presented-fingerprint')?.textContent",
    )
    .await;
    assert_eq!(shown, json!(cam.fingerprint));
    let err = js(
        &c,
        "return document.getElementById('test-error').textContent;",
    )
    .await;
    assert!(err.as_str().unwrap().contains("(tls)"), "{err}");
    screenshot(&c, "test-capture-tls", false).await;

    // The operator confirms (the dialog is answered yes, and what it asked is kept).
    js(
        &c,
        "window.confirm = (q) => { window.asked = q; return true; }; \
         document.getElementById('trust-cert').click(); return null;",
    )
    .await;
    until(
        &c,
        "the frame after pinning",
        "document.getElementById('test-frame')?.complete",
    )
    .await;
    let asked = js(&c, "return window.asked;").await;
    assert!(
        asked.as_str().unwrap().contains(&cam.fingerprint),
        "{asked}"
    );
    let view: Value = app.get("/api/v1/cameras/porch").await.json().await.unwrap();
    assert_eq!(view["tls_verify"], "pinned", "{view}");
    assert_eq!(view["tls_fingerprint"], json!(cam.fingerprint), "{view}");
    assert!(cam.handshakes() >= 1);
    c.close().await.unwrap();
    app.stop().await;
}
