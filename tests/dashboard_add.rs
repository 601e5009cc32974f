//! A new operator's first camera, in a real browser (headless Chromium over WebDriver, the helpers
//! in `common::browser`) against the real server and fake cameras that speak HTTP: the add form
//! gives the camera a schedule and keeps the test frame, the grid tells failing, unscheduled and
//! healthy cameras apart (failing first, errors in view), and the form follows the maker.

mod common;

use common::browser::{browser, free_port, go, js, screenshot, until};
use common::{spawn_app, spawn_app_with, wait_for, TestApp};
use fantoccini::{Client, Locator};
use heldar::app::BuildOptions;
use heldar::fakecam::{FakeAuth, FakeCamera, FrameSupply};
use serde_json::{json, Value};

fn pattern(label: &str) -> FrameSupply {
    FrameSupply::Pattern {
        width: 640,
        height: 360,
        label: label.into(),
    }
}

async fn api(app: &TestApp, path: &str) -> Value {
    app.get(path).await.json().await.unwrap()
}

async fn type_into(c: &Client, id: &str, text: &str) {
    let input = c.find(Locator::Id(id)).await.unwrap();
    input.clear().await.unwrap();
    input.send_keys(text).await.unwrap();
}

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap();
}

/// Whether the element with this id is rendered: not hidden, not in a closed <details> (whose
/// content Chromium skips with `content-visibility`, so `offsetParent` alone would keep a box
/// that was laid out before the <details> took it in).
fn shown(id: &str) -> String {
    format!("(!!document.getElementById('{id}')?.checkVisibility())")
}

fn tile(id: &str) -> String {
    format!("document.querySelector('li.tile[data-camera=\"{id}\"]')")
}

/// Add a camera through the form with the default schedule on and "Save and test capture": the
/// test frame is the camera's first stored frame, the grid shows it at once with a healthy
/// badge, and the camera has its 60 s schedule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_added_with_the_default_schedule_shows_its_test_frame() {
    // The scheduler does not run here, so the schedule's own first frame (it fires at once)
    // cannot take the tile before the assertions look: the only frame is the test frame.
    let app = spawn_app_with(|c| c.scheduler_enabled = false, BuildOptions::default()).await;
    let gate = FakeCamera::start(FakeAuth::None, pattern("gate"))
        .await
        .unwrap();
    let (_driver, c) = browser(1280, 900).await;

    go(&c, &app, "#/cameras/new").await;
    until(&c, "the add form", "document.getElementById('f-id')").await;
    let defaults = js(
        &c,
        "return [document.getElementById('f-schedule').checked, document.getElementById('f-interval_seconds').value];",
    )
    .await;
    assert_eq!(defaults, json!([true, "60"]), "a schedule is on by default");
    type_into(&c, "f-id", "gate").await;
    type_into(&c, "f-name", "Front gate").await;
    click(&c, "#f-vendor option[value='generic']").await;
    type_into(&c, "f-snapshot_url", &gate.snapshot_url()).await;
    // The whole form, schedule included, in one tall window.
    c.set_window_size(1280, 1800).await.unwrap();
    until(&c, "the tall window", "window.innerHeight > 1500").await;
    screenshot(&c, "add-camera-form", false).await;
    c.set_window_size(1280, 900).await.unwrap();
    click(&c, "#camera-form button[value='test']").await;

    // The edit page opens with the test frame, which was kept.
    let w = until(
        &c,
        "the kept test frame beside the form",
        "location.hash.startsWith('#/cameras/gate/edit') && document.getElementById('test-frame')?.complete && document.getElementById('test-frame').naturalWidth",
    )
    .await;
    assert_eq!(w, json!(640));
    let kept_id = js(
        &c,
        "return document.getElementById('test-frame').dataset.snapshotId;",
    )
    .await;
    let frames = api(&app, "/api/v1/cameras/gate/snapshots").await;
    let frames = frames.as_array().unwrap();
    assert_eq!(frames.len(), 1, "the test frame, kept once: {frames:?}");
    assert_eq!(frames[0]["id"], kept_id);
    assert!(frames[0]["schedule_id"].is_null(), "a manual frame");
    let schedules = api(&app, "/api/v1/cameras/gate/snapshot-schedules").await;
    assert_eq!(
        (
            schedules.as_array().unwrap().len(),
            &schedules[0]["interval_seconds"],
            &schedules[0]["enabled"]
        ),
        (1, &json!(60), &json!(true)),
        "{schedules}"
    );
    assert!(!js(&c, "return document.documentElement.outerHTML;")
        .await
        .as_str()
        .unwrap()
        .contains("No schedule"));

    // The grid shows that frame at once, with a healthy badge, and no "no schedule" note.
    go(&c, &app, "#/").await;
    let img = format!("{}?.querySelector('img')", tile("gate"));
    until(
        &c,
        "the gate tile with its test frame",
        &format!("{img}?.complete && {img}.naturalWidth && !{img}.hidden"),
    )
    .await;
    let src = js(&c, &format!("return {img}.getAttribute('src');")).await;
    assert_eq!(src, frames[0]["url"]);
    let state = js(
        &c,
        &format!(
            "const t = {}; return [t.querySelector('.badge').textContent, t.dataset.health, t.querySelector('.tile-note').hidden];",
            tile("gate")
        ),
    )
    .await;
    assert_eq!(state, json!(["Online", "ok", true]));
    screenshot(&c, "grid-added-camera", false).await;
    c.close().await.unwrap();
    app.stop().await;
}

/// Unticking the schedule adds a camera that keeps nothing by itself: the grid says "No
/// schedule" (never "Online", although a capture worked) and its link goes to the camera's
/// schedule form.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_without_a_schedule_says_so_and_offers_one() {
    let app = spawn_app().await;
    let porch = FakeCamera::start(FakeAuth::None, pattern("porch"))
        .await
        .unwrap();
    let (_driver, c) = browser(1280, 900).await;

    go(&c, &app, "#/cameras/new").await;
    until(&c, "the add form", "document.getElementById('f-id')").await;
    type_into(&c, "f-id", "porch").await;
    click(&c, "#f-vendor option[value='generic']").await;
    type_into(&c, "f-snapshot_url", &porch.snapshot_url()).await;
    click(&c, "#f-schedule").await;
    assert_eq!(
        js(
            &c,
            "return document.getElementById('f-interval_seconds').disabled;"
        )
        .await,
        json!(true)
    );
    click(&c, "#camera-form button[value='save']").await;
    until(
        &c,
        "the new camera's page",
        "location.hash === '#/cameras/porch' && document.getElementById('timeline-h')",
    )
    .await;
    let schedules = api(&app, "/api/v1/cameras/porch/snapshot-schedules").await;
    assert_eq!(schedules, json!([]), "no schedule was made");
    // A live capture works, so the camera is online, but it keeps no frames.
    assert_eq!(
        app.get("/api/v1/cameras/porch/snapshot").await.status(),
        200
    );
    common::camera_in_state(&app, "porch", "online").await;

    go(&c, &app, "#/").await;
    let t = tile("porch");
    let badge = until(
        &c,
        "the porch tile's badge",
        &format!("{t}?.querySelector('.badge').textContent"),
    )
    .await;
    assert_eq!(badge, "No schedule");
    let note = js(
        &c,
        &format!(
            "const n = {t}.querySelector('.tile-note'); return [n.checkVisibility(), n.textContent, n.querySelector('a.add-schedule').getAttribute('href')];"
        ),
    )
    .await;
    assert_eq!(note[0], json!(true), "the note is in view: {note}");
    assert!(
        note[1].as_str().unwrap().contains("only on demand"),
        "{note}"
    );
    assert_eq!(note[2], "#/cameras/porch?schedule=new");
    screenshot(&c, "grid-no-schedule", false).await;

    // The link lands on the camera's schedule form, ready for an interval.
    click(&c, "li.tile[data-camera='porch'] a.add-schedule").await;
    until(
        &c,
        "the interval field, focused",
        "document.activeElement?.id === 'new-interval'",
    )
    .await;
    type_into(&c, "new-interval", "60").await;
    click(&c, "#schedule-form button[type='submit']").await;
    until(
        &c,
        "the schedule in the list",
        "document.querySelector('#schedules li[data-schedule]')",
    )
    .await;
    // Back on the grid the camera is no longer unscheduled (its first frame fires at once).
    // The frame is waited for through the API first, with a bound for a loaded machine: the
    // grid's own wait is for its rendering, not for the capture.
    wait_for(
        "porch's first scheduled frame",
        std::time::Duration::from_secs(60),
        || async {
            let cam = api(&app, "/api/v1/cameras/porch").await;
            (cam["health"] == "ok").then_some(())
        },
    )
    .await;
    go(&c, &app, "#/").await;
    until(
        &c,
        "the porch tile to be healthy",
        &format!("{t}?.dataset.health === 'ok' && {t}.querySelector('.badge').textContent === 'Online' && {t}.querySelector('.tile-note').hidden"),
    )
    .await;
    c.close().await.unwrap();
    app.stop().await;
}

/// A failing camera sorts first, before one without a schedule, before a healthy one (whatever
/// their ids), and its last error is text on the tile, readable without hovering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_camera_comes_first_with_its_error_in_view() {
    let app = spawn_app().await;
    let cam = FakeCamera::start(FakeAuth::None, pattern("ok"))
        .await
        .unwrap();
    let dead = free_port();
    app.create_camera(
        json!({"id": "aaa-fine", "name": "Fine", "snapshot_url": cam.snapshot_url()}),
    )
    .await;
    app.create_camera(
        json!({"id": "bbb-manual", "name": "Manual", "snapshot_url": cam.snapshot_url()}),
    )
    .await;
    app.create_camera(json!({"id": "zzz-dead", "name": "Dead",
        "snapshot_url": format!("http://127.0.0.1:{dead}/snap.jpg"),
        "username": "admin", "password": "s3cret-pw"}))
        .await;
    for id in ["aaa-fine", "zzz-dead"] {
        let r = app
            .post_json(
                &format!("/api/v1/cameras/{id}/snapshot-schedules"),
                &json!({"interval_seconds": 60}),
            )
            .await;
        assert_eq!(r.status(), 201);
    }
    // The schedules fire at once: one camera gets its first frame, the other fails.
    for (id, health) in [("aaa-fine", "ok"), ("zzz-dead", "failing")] {
        wait_for(
            &format!("{id} to be {health}"),
            std::time::Duration::from_secs(15),
            || {
                let app = &app;
                async move {
                    let v = api(app, &format!("/api/v1/cameras/{id}")).await;
                    (v["health"] == health).then_some(())
                }
            },
        )
        .await;
    }
    let (_driver, c) = browser(1280, 900).await;
    go(&c, &app, "#/").await;
    let order = until(
        &c,
        "three tiles",
        "document.querySelectorAll('li.tile').length === 3 && [...document.querySelectorAll('li.tile')].map(t => t.dataset.camera)",
    )
    .await;
    assert_eq!(order, json!(["zzz-dead", "bbb-manual", "aaa-fine"]));
    let t = tile("zzz-dead");
    let failing = js(
        &c,
        &format!(
            "const t = {t}; const e = t.querySelector('.tile-error'); \
             return [t.querySelector('.badge').textContent, e.hidden, e.checkVisibility(), \
             e.getBoundingClientRect().height > 0, e.textContent];"
        ),
    )
    .await;
    assert_eq!(failing[0], "Failing");
    assert_eq!(
        (&failing[1], &failing[2], &failing[3]),
        (&json!(false), &json!(true), &json!(true)),
        "the error is laid out on the tile: {failing}"
    );
    let error = failing[4].as_str().unwrap();
    assert!(
        error.contains("cannot connect") && error.contains(&format!("127.0.0.1:{dead}")),
        "{error}"
    );
    let labels = js(
        &c,
        "return [...document.querySelectorAll('li.tile .badge')].map(b => b.textContent);",
    )
    .await;
    assert_eq!(labels, json!(["Failing", "No schedule", "Online"]));
    let status = js(
        &c,
        "return document.getElementById('grid-status').textContent;",
    )
    .await;
    assert_eq!(status, "3 cameras, 1 failing, 1 without a schedule");
    let page = js(&c, "return document.documentElement.outerHTML;").await;
    assert!(!page.as_str().unwrap().contains("s3cret-pw"));
    screenshot(&c, "grid-failing-first", false).await;
    c.close().await.unwrap();
    app.stop().await;
}

/// The form follows the maker: a generic camera is reached by its URLs (address and ports,
/// which do nothing for it, are hidden), a maker with templates by its address and ports (its
/// URLs are overrides, under "Advanced"). Credentials typed into a URL end up in the user name
/// and password, as the hint says, and the camera works with them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_form_follows_the_maker_and_moves_url_credentials() {
    let app = spawn_app().await;
    let cam = FakeCamera::start(
        FakeAuth::Digest {
            user: "admin".into(),
            pass: "pa:ss@word".into(),
        },
        pattern("door"),
    )
    .await
    .unwrap();
    let (_driver, c) = browser(1280, 900).await;
    go(&c, &app, "#/cameras/new").await;
    until(&c, "the add form", "document.getElementById('f-id')").await;

    let layout = |c: Client| async move {
        js(
            &c,
            &format!(
                "return [{}, {}, {}, {}, {}];",
                shown("f-address"),
                shown("f-http_port"),
                shown("f-rtsp_port"),
                shown("f-snapshot_url"),
                shown("f-main_stream_url")
            ),
        )
        .await
    };
    // The default maker (Hikvision): address and ports; the URLs wait under "Advanced".
    assert_eq!(
        layout(c.clone()).await,
        json!([true, true, true, false, false])
    );
    click(&c, "#f-vendor option[value='generic']").await;
    assert_eq!(
        layout(c.clone()).await,
        json!([false, false, false, true, true])
    );
    let hint = js(
        &c,
        &format!(
            "return {} && document.getElementById('hint-url-credentials').textContent;",
            shown("hint-url-credentials")
        ),
    )
    .await;
    assert!(
        hint.as_str()
            .unwrap()
            .contains("moved into User name and Password"),
        "{hint}"
    );
    screenshot(&c, "add-camera-generic", false).await;
    click(&c, "#f-vendor option[value='axis']").await;
    assert_eq!(
        layout(c.clone()).await,
        json!([true, true, true, false, false])
    );
    // Under "Advanced" the URLs are overrides of the maker's.
    click(&c, "details.advanced summary").await;
    assert_eq!(
        js(&c, &format!("return {};", shown("f-snapshot_url"))).await,
        json!(true)
    );

    // A generic camera whose URL carries its credentials: saved, tested, credentials moved.
    click(&c, "#f-vendor option[value='generic']").await;
    type_into(&c, "f-id", "door").await;
    let url = cam
        .snapshot_url()
        .replace("http://", "http://admin:pa%3Ass%40word@");
    type_into(&c, "f-snapshot_url", &url).await;
    click(&c, "#f-schedule").await;
    click(&c, "#camera-form button[value='test']").await;
    until(
        &c,
        "the test frame",
        "document.getElementById('test-frame')?.complete && document.getElementById('test-frame').naturalWidth",
    )
    .await;
    let view = api(&app, "/api/v1/cameras/door").await;
    assert_eq!(
        (
            &view["username"],
            &view["has_password"],
            &view["snapshot_url"]
        ),
        (&json!("admin"), &json!(true), &json!(cam.snapshot_url())),
        "{view}"
    );
    // The edit page of a generic camera keeps address and ports out of the way too; its URL
    // shows without credentials, and the user name is in its field.
    let edit = js(
        &c,
        &format!(
            "return [{}, document.getElementById('f-snapshot_url').value, document.getElementById('f-username').value];",
            shown("f-address")
        ),
    )
    .await;
    assert_eq!(edit, json!([false, cam.snapshot_url(), "admin"]));
    let page = js(&c, "return document.documentElement.outerHTML;").await;
    assert!(!page.as_str().unwrap().contains("pa:ss@word"));
    assert!(!page.as_str().unwrap().contains("pa%3Ass%40word"));

    // A second camera whose URL disagrees with the fields: the server's sentence under the URL.
    go(&c, &app, "#/cameras/new").await;
    until(
        &c,
        "the add form",
        "document.getElementById('f-id')?.value === ''",
    )
    .await;
    type_into(&c, "f-id", "door2").await;
    click(&c, "#f-vendor option[value='generic']").await;
    type_into(&c, "f-snapshot_url", &url).await;
    type_into(&c, "f-username", "viewer").await;
    click(&c, "#camera-form button[value='save']").await;
    let err = until(
        &c,
        "the URL field's error",
        "!document.getElementById('err-snapshot_url').hidden && document.getElementById('err-snapshot_url').textContent",
    )
    .await;
    assert!(err.as_str().unwrap().contains("differ"), "{err}");
    assert_eq!(app.get("/api/v1/cameras/door2").await.status(), 404);
    c.close().await.unwrap();
    app.stop().await;
}

/// Signed in with a session cookie, the frames the dashboard keeps go by POST with the session's
/// CSRF token: "Save and test capture" on the add form and "Keep it" on a camera's page both
/// store their frame.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_are_kept_by_post_with_the_session_csrf_token() {
    let app = spawn_app_with(
        |c| c.api_token = Some("bootstrap-admin-token-0123456789".into()),
        BuildOptions::default(),
    )
    .await;
    let (_, admin) = heldar::ops::tokens::create(
        &app.state.ops.db,
        &heldar::clock::SystemClock,
        "lead",
        heldar::models::Role::Admin,
    )
    .await
    .unwrap();
    let cam = FakeCamera::start(FakeAuth::None, pattern("yard"))
        .await
        .unwrap();
    let (_driver, c) = browser(1280, 900).await;
    go(&c, &app, "#/login").await;
    until(&c, "the login page", "document.getElementById('token')").await;
    type_into(&c, "token", &admin).await;
    click(&c, "#login-form button[type=submit]").await;
    until(
        &c,
        "the grid after signing in",
        "document.querySelector('header .role')?.textContent.includes('admin')",
    )
    .await;

    go(&c, &app, "#/cameras/new").await;
    until(&c, "the add form", "document.getElementById('f-id')").await;
    type_into(&c, "f-id", "yard").await;
    click(&c, "#f-vendor option[value='generic']").await;
    type_into(&c, "f-snapshot_url", &cam.snapshot_url()).await;
    click(&c, "#f-schedule").await;
    click(&c, "#camera-form button[value='test']").await;
    until(
        &c,
        "the kept test frame",
        "document.getElementById('test-frame')?.dataset.snapshotId",
    )
    .await;

    go(&c, &app, "#/cameras/yard").await;
    until(&c, "the camera page", "document.getElementById('live-btn')").await;
    click(&c, "#live-keep").await;
    click(&c, "#live-btn").await;
    until(
        &c,
        "the kept live frame",
        "document.getElementById('live-frame')?.complete",
    )
    .await;
    let bearer = format!("Bearer {admin}");
    let frames: Value = app
        .client
        .get(app.url("/api/v1/cameras/yard/snapshots"))
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let frames = frames.as_array().unwrap();
    assert_eq!(frames.len(), 2, "{frames:?}");
    assert!(frames.iter().all(|f| f["schedule_id"].is_null()));
    c.close().await.unwrap();
    app.stop().await;
}
