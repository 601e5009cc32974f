//! "Find cameras" on the add-camera page, in a real browser (headless Chromium over WebDriver)
//! against the real server and a fake ONVIF camera (SOAP over HTTP, WS-Discovery over loopback
//! multicast, `common::fake_onvif`): find it, give the credentials, probe, keep the suggested
//! profile, add — and the camera exists with the profile's URLs.

mod common;

use common::browser::{browser, go, js, screenshot, until};
use common::fake_onvif::{Behaviour, FakeOnvif};
use common::spawn_app;
use fantoccini::{Client, Locator};
use serde_json::Value;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn find_cameras_discovers_probes_and_adds_an_onvif_camera() {
    let b = Behaviour::normal();
    let mut fake = FakeOnvif::start(b.clone()).await;
    fake.answer_discovery("Browser Cam");
    let port = fake.addr.port();
    let app = spawn_app().await;
    let (_driver, c) = browser(1280, 1600).await;

    go(&c, &app, "#/cameras/new").await;
    until(
        &c,
        "the Find cameras button",
        "document.getElementById('onvif-find')",
    )
    .await;
    // The probe leaves by the loopback interface, where the fake joined the group.
    type_into(&c, "onvif-interface", "127.0.0.1").await;
    click(&c, "#onvif-find").await;
    let row = format!(
        "[...document.querySelectorAll('#onvif-devices li')].find(li => li.textContent.includes(':{port} '))"
    );
    until(&c, "the fake in the found list", &row).await;
    let text = js(&c, &format!("return {row}.textContent;")).await;
    assert!(text.as_str().unwrap().contains("Browser Cam"), "{text}");
    js(
        &c,
        &format!("{row}.querySelector('button.onvif-use').click();"),
    )
    .await;
    let addr = js(&c, "return [document.getElementById('onvif-address').value, document.getElementById('onvif-port').value];").await;
    assert_eq!(addr[0], "127.0.0.1");
    assert_eq!(addr[1], port.to_string());

    type_into(&c, "onvif-username", b.username).await;
    type_into(&c, "onvif-password", b.password).await;
    click(&c, "#onvif-probe").await;
    until(
        &c,
        "the profiles",
        "document.querySelectorAll('#onvif-profiles .onvif-profile').length === 2",
    )
    .await;
    let checked = js(
        &c,
        "return document.querySelector(\"input[name='onvif-profile']:checked\")?.value;",
    )
    .await;
    assert_eq!(
        checked, "prof_sub",
        "the smallest H.264 profile is preselected"
    );
    let page = js(&c, "return document.documentElement.outerHTML;").await;
    assert!(
        !page.as_str().unwrap().contains("xyzzy"),
        "the password is shown back"
    );
    screenshot(&c, "onvif-find-cameras", true).await;

    type_into(&c, "onvif-id", "browsercam").await;
    click(&c, "#onvif-add").await;
    until(
        &c,
        "the new camera's page",
        "location.hash === '#/cameras/browsercam'",
    )
    .await;
    let cam: Value = app
        .get("/api/v1/cameras/browsercam")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(cam["vendor"], "onvif");
    assert_eq!(cam["sub_stream_url"], "rtsp://127.0.0.1:8554/prof_sub");
    assert_eq!(
        cam["snapshot_url"],
        format!("http://127.0.0.1:{port}/snap.jpg")
    );
    assert_eq!(cam["has_password"], true);
    app.stop().await;
}
