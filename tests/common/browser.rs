//! A real browser for the dashboard's tests: Debian's headless Chromium driven over WebDriver by
//! chromedriver (a child process of the test). `scripts/test` installs `chromium` and
//! `chromium-driver` when they are missing.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder};
use serde_json::{json, Value};

use super::{wait_for, TestApp};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Bound on any one wait for the page (a schedule's frames take a few intervals of 5 s).
pub const PAGE_WAIT: Duration = Duration::from_secs(20);

/// chromedriver on a free loopback port, killed when dropped.
pub struct Driver {
    child: Child,
    url: String,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub async fn browser(width: u32, height: u32) -> (Driver, Client) {
    for bin in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            Path::new(bin).exists(),
            "{bin} is missing: run scripts/test, which installs Debian's chromium and \
             chromium-driver, or `apt-get install chromium chromium-driver`"
        );
    }
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let profile = tempfile::tempdir().unwrap();
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _profile: profile,
    };
    let http = reqwest::Client::new();
    let status = format!("{}/status", driver.url);
    wait_for("chromedriver to be ready", Duration::from_secs(30), || {
        let req = http.get(&status).send();
        async move {
            let v: Value = req.await.ok()?.json().await.ok()?;
            v["value"]["ready"].as_bool().filter(|r| *r)
        }
    })
    .await;
    let args = vec![
        "--headless".to_string(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-quic".into(),
        "--no-first-run".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        "--hide-scrollbars".into(),
        format!("--user-data-dir={}", driver._profile.path().display()),
        format!("--window-size={width},{height}"),
    ];
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), json!("chrome"));
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"binary": CHROMIUM, "args": args}),
    );
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a WebDriver session in headless Chromium");
    (driver, client)
}

pub async fn js(c: &Client, script: &str) -> Value {
    c.execute(script, vec![])
        .await
        .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
}

/// Poll `expr` (a JS expression) until it is truthy; return its value.
pub async fn until(c: &Client, what: &str, expr: &str) -> Value {
    let script = format!("return ({expr}) || null;");
    let found = wait_for(what, PAGE_WAIT, || {
        let f = c.execute(&script, vec![]);
        async move { f.await.ok().filter(|v| !v.is_null() && *v != json!(false)) }
    })
    .await;
    found
}

pub fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target/tmp has a parent")
        .join("screenshots")
}

/// Key pages also go to docs/screenshots when HELDAR_DOCS_SCREENSHOTS=1.
pub async fn screenshot(c: &Client, name: &str, docs: bool) {
    // Let lazy images and fonts settle: wait until every visible <img> has loaded.
    until(
        c,
        "images to load before a screenshot",
        "[...document.images].filter(i => i.offsetParent && i.loading !== 'lazy').every(i => i.complete)",
    )
    .await;
    js(c, "document.activeElement?.blur(); window.scrollTo(0, 0);").await;
    let png = c.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let dir = screenshot_dir();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.png")), &png).unwrap();
    if docs && std::env::var("HELDAR_DOCS_SCREENSHOTS").as_deref() == Ok("1") {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::write(docs.join(format!("{name}.png")), &png).unwrap();
    }
}

pub async fn press(c: &Client, key: Key) {
    let k: char = key.into();
    c.perform_actions(
        KeyActions::new("keyboard".into())
            .then(KeyAction::Down { value: k })
            .then(KeyAction::Up { value: k }),
    )
    .await
    .expect("key press");
}

pub async fn frame_index(c: &Client) -> (i64, String) {
    let v = js(
        c,
        "const f = document.getElementById('frame'); return [Number(f.dataset.index), f.dataset.id];",
    )
    .await;
    (v[0].as_i64().unwrap(), v[1].as_str().unwrap().to_string())
}

pub async fn go(c: &Client, app: &TestApp, hash: &str) {
    c.goto(&app.url(&format!("/{hash}"))).await.unwrap();
}
