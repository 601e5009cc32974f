//! Webhooks against real peers: the real `heldar serve` binary, a fake camera over HTTP and a
//! receiver (an axum server on 127.0.0.1) that checks every request's HMAC signature with the
//! secret it was given. 500s are retried with growing gaps and the delivery log shows the
//! attempts; nothing is sent after the cap; a 400 is not retried; a per-camera subscription gets
//! only its camera's events; bad subscriptions are refused with a sentence; the secret never
//! appears in an answer after the first or in the log.

mod common;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use bytes::Bytes;
use common::{heldar_cmd, wait_for, ServerProcess};
use heldar::fakecam::{pattern, FakeAuth, FakeCamera, FrameSupply};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Got {
    path: String,
    at: Instant,
    event: String,
    delivery: String,
    body: Value,
    verified: bool,
}

#[derive(Default)]
struct Inner {
    /// Secrets by path: each subscription posts to its own path.
    secrets: Vec<(String, String)>,
    /// Statuses to answer, in order; 200 once empty.
    script: VecDeque<u16>,
    got: Vec<Got>,
}

#[derive(Clone, Default)]
struct Receiver(Arc<Mutex<Inner>>);

impl Receiver {
    fn got(&self, path: &str) -> Vec<Got> {
        let g = self.0.lock().unwrap();
        g.got.iter().filter(|r| r.path == path).cloned().collect()
    }

    fn script(&self, statuses: &[u16]) {
        self.0.lock().unwrap().script = statuses.iter().copied().collect();
    }

    fn secret(&self, path: &str, secret: &str) {
        self.0
            .lock()
            .unwrap()
            .secrets
            .push((path.into(), secret.into()));
    }
}

/// What a receiver does (docs/integrations.md): HMAC-SHA256 of "<t>.<body>" with the secret,
/// compared in constant time, and a timestamp no older than 5 minutes.
fn verify(secret: &str, header: &str, body: &[u8]) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", x)) => t = x.parse::<i64>().ok(),
            Some(("v1", x)) => v1 = Some(x.to_string()),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    let now = chrono::Utc::now().timestamp();
    if (now - t).abs() > 300 {
        return false;
    }
    let Some(sig) = (0..v1.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(v1.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()
    else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

async fn receive(
    State(r): State<Receiver>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let mut g = r.0.lock().unwrap();
    let path = uri.path().to_string();
    let secret = g
        .secrets
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, s)| s.clone())
        .unwrap_or_default();
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let verified = verify(&secret, &header("heldar-signature"), &body);
    g.got.push(Got {
        path,
        at: Instant::now(),
        event: header("heldar-event"),
        delivery: header("heldar-delivery"),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        verified,
    });
    let status = g.script.pop_front().unwrap_or(200);
    StatusCode::from_u16(status).unwrap()
}

async fn start_receiver() -> (Receiver, String) {
    let r = Receiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(receive).with_state(r.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (r, base)
}

struct Api<'a> {
    server: &'a ServerProcess,
    client: reqwest::Client,
}

impl Api<'_> {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, String) {
        let mut rb = self.client.request(method, self.server.url(path));
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    async fn json(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let (s, t) = self.send(method, path, body).await;
        (s, serde_json::from_str(&t).unwrap_or(Value::Null))
    }

    /// Keep a frame of `camera` now (a `frame.stored` event).
    async fn frame(&self, camera: &str) {
        let (s, _) = self
            .send(
                reqwest::Method::POST,
                &format!("/api/v1/cameras/{camera}/snapshot?store=true"),
                None,
            )
            .await;
        assert_eq!(s, 200);
    }

    async fn deliveries(&self, hook: &str) -> Vec<Value> {
        let (s, v) = self
            .json(
                reqwest::Method::GET,
                &format!("/api/v1/webhooks/{hook}/deliveries"),
                None,
            )
            .await;
        assert_eq!(s, 200, "{v}");
        v.as_array().unwrap().clone()
    }
}

async fn wait_for_requests(r: &Receiver, path: &str, n: usize) -> Vec<Got> {
    wait_for(
        &format!("{n} requests on {path}"),
        Duration::from_secs(30),
        || async {
            let got = r.got(path);
            (got.len() >= n).then_some(got)
        },
    )
    .await
}

#[tokio::test]
async fn deliveries_are_signed_retried_on_5xx_with_backoff_capped_and_never_after_a_400() {
    let (receiver, base) = start_receiver().await;
    let cam_a = FakeCamera::start(
        FakeAuth::None,
        FrameSupply::Static(Bytes::from(pattern::solid_jpeg(64, 48, [1, 2, 3]))),
    )
    .await
    .unwrap();
    let cam_b = FakeCamera::start(
        FakeAuth::None,
        FrameSupply::Static(Bytes::from(pattern::solid_jpeg(64, 48, [3, 2, 1]))),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start({
        let mut c = heldar_cmd(dir.path());
        c.arg("serve")
            .env("HELDAR_LOG", "heldar=debug,info")
            .env("HELDAR_WEBHOOK_RETRY_INITIAL_MS", "200")
            .env("HELDAR_WEBHOOK_MAX_ATTEMPTS", "4");
        c
    });
    let api = Api {
        server: &server,
        client: reqwest::Client::new(),
    };
    use reqwest::Method;
    for (id, cam) in [("a", &cam_a), ("b", &cam_b)] {
        let (s, v) = api
            .json(
                Method::POST,
                "/api/v1/cameras",
                Some(json!({"id": id, "snapshot_url": cam.snapshot_url()})),
            )
            .await;
        assert_eq!(s, 201, "{v}");
    }

    // Bad subscriptions: 422, naming the field, with a sentence.
    for (body, field, words) in [
        (
            json!({"url": "ftp://127.0.0.1/x", "events": ["frame.stored"]}),
            "url",
            "scheme",
        ),
        (
            json!({"url": "http://user:pw@127.0.0.1/x", "events": ["frame.stored"]}),
            "url",
            "user name or password",
        ),
        (
            json!({"url": format!("{base}/x"), "events": ["frame.saved"]}),
            "events",
            "not a webhook event type",
        ),
        (
            json!({"url": "http://169.254.169.254/latest", "events": ["frame.stored"]}),
            "url",
            // Names what it checks: a webhook's URL, not a camera.
            "metadata address, which Heldar never uses as a webhook URL's host",
        ),
        (
            json!({"url": format!("{base}/x"), "events": []}),
            "events",
            "at least one",
        ),
        (
            json!({"url": format!("{base}/x"), "events": ["frame.stored"], "camera_id": "nosuch"}),
            "camera_id",
            // The id as written, not Rust's `CameraId("nosuch")`.
            "camera \"nosuch\" does not exist",
        ),
        (
            json!({"url": format!("{base}/x"), "events": ["frame.stored"], "secret": "short"}),
            "secret",
            "16 to 256",
        ),
    ] {
        let (s, v) = api
            .json(Method::POST, "/api/v1/webhooks", Some(body.clone()))
            .await;
        assert_eq!(s, 422, "{body}: {v}");
        assert_eq!(v["field"], field, "{body}: {v}");
        assert!(v["error"].as_str().unwrap().contains(words), "{body}: {v}");
    }
    assert!(!api
        .send(Method::GET, "/api/v1/webhooks", None)
        .await
        .1
        .contains("pw@"));

    // A global subscription with a generated secret, and one for camera b with its own.
    let (s, all) = api
        .json(
            Method::POST,
            "/api/v1/webhooks",
            Some(
                json!({"url": format!("{base}/all"), "events": ["frame.stored", "camera.offline"]}),
            ),
        )
        .await;
    assert_eq!(s, 201, "{all}");
    let secret = all["signing_secret"].as_str().unwrap().to_string();
    assert!(secret.len() >= 32, "{all}");
    assert_eq!(all["secret"], "***");
    receiver.secret("/all", &secret);
    let b_secret = "b-side-secret-0123456789";
    let (s, only_b) = api
        .json(
            Method::POST,
            "/api/v1/webhooks",
            Some(
                json!({"url": format!("{base}/b"), "events": ["frame.stored"],
                "camera_id": "b", "secret": b_secret}),
            ),
        )
        .await;
    assert_eq!(s, 201, "{only_b}");
    receiver.secret("/b", b_secret);
    let all_id = all["id"].as_str().unwrap().to_string();

    // 1. Two 500s, then 200: three attempts of one delivery, growing gaps, all signed.
    receiver.script(&[500, 500]);
    api.frame("a").await;
    let got = wait_for_requests(&receiver, "/all", 3).await;
    assert!(got.iter().all(|g| g.verified), "{got:?}");
    assert!(got
        .iter()
        .all(|g| g.event == "frame.stored" && g.delivery == got[0].delivery));
    let body = &got[0].body;
    assert_eq!(body["type"], "frame.stored");
    assert_eq!(body["data"]["camera"], "a");
    assert!(body["id"].as_str().unwrap().starts_with("evt_"), "{body}");
    assert!(body["created_at"].is_string(), "{body}");
    let gap1 = got[1].at - got[0].at;
    let gap2 = got[2].at - got[1].at;
    assert!(gap1 >= Duration::from_millis(180), "{gap1:?}");
    assert!(
        gap2 >= Duration::from_millis(380) && gap2 > gap1,
        "{gap1:?} then {gap2:?}"
    );
    let log = wait_for(
        "the delivery logged as delivered",
        Duration::from_secs(10),
        || async {
            let d = api.deliveries(&all_id).await;
            (d.first().is_some_and(|d| d["status"] == "delivered")).then_some(d)
        },
    )
    .await;
    assert_eq!(log[0]["attempts"], 3);
    assert_eq!(log[0]["response_code"], 200);
    assert_eq!(log[0]["id"].as_str(), Some(got[0].delivery.as_str()));
    assert_eq!(log[0]["event_type"], "frame.stored");

    // 2. Always 500: exactly the cap (4 attempts), then the next event comes through (a fifth
    // try of the first would have come before it: one delivery at a time per subscription).
    receiver.script(&[500, 500, 500, 500, 500, 500, 500]);
    api.frame("a").await;
    let got = wait_for_requests(&receiver, "/all", 3 + 4).await;
    let failed_delivery = got[3].delivery.clone();
    let log = wait_for(
        "the delivery logged as failed",
        Duration::from_secs(10),
        || async {
            let d = api.deliveries(&all_id).await;
            (d.first().is_some_and(|d| d["status"] == "failed")).then_some(d)
        },
    )
    .await;
    assert_eq!(log[0]["attempts"], 4);
    assert_eq!(log[0]["response_code"], 500);
    assert!(
        log[0]["last_error"].as_str().unwrap().contains("500"),
        "{}",
        log[0]
    );
    receiver.script(&[]);
    api.frame("a").await;
    let got = wait_for_requests(&receiver, "/all", 3 + 4 + 1).await;
    assert_eq!(
        got.iter().filter(|g| g.delivery == failed_delivery).count(),
        4
    );
    assert_ne!(got[7].delivery, failed_delivery);

    // 3. A 400 is not retried.
    receiver.script(&[400]);
    api.frame("a").await;
    let got = wait_for_requests(&receiver, "/all", 9).await;
    let refused = got[8].delivery.clone();
    api.frame("a").await;
    let got = wait_for_requests(&receiver, "/all", 10).await;
    assert_eq!(got.iter().filter(|g| g.delivery == refused).count(), 1);
    assert_ne!(got[9].delivery, refused);
    let log = wait_for(
        "four finished deliveries",
        Duration::from_secs(10),
        || async {
            let d = api.deliveries(&all_id).await;
            (d.len() == 5 && d[0]["status"] == "delivered").then_some(d)
        },
    )
    .await;
    assert_eq!(log[1]["status"], "failed");
    assert_eq!(log[1]["attempts"], 1);
    assert_eq!(log[1]["response_code"], 400);

    // 4. The per-camera subscription got only b's frames; the global one got b's too.
    assert!(receiver.got("/b").is_empty());
    api.frame("b").await;
    let got_b = wait_for_requests(&receiver, "/b", 1).await;
    assert!(got_b[0].verified);
    assert_eq!(got_b[0].body["data"]["camera"], "b");
    let got = wait_for_requests(&receiver, "/all", 11).await;
    assert_eq!(got[10].body["data"]["camera"], "b");
    assert_eq!(
        receiver.got("/b").len(),
        1,
        "camera a's frames never went to /b"
    );

    // The secret appears in no answer after the first, and in no log line.
    for path in [
        "/api/v1/webhooks".to_string(),
        format!("/api/v1/webhooks/{all_id}"),
        format!("/api/v1/webhooks/{all_id}/deliveries"),
    ] {
        let (s, text) = api.send(Method::GET, &path, None).await;
        assert_eq!(s, 200);
        assert!(
            !text.contains(&secret) && !text.contains(b_secret),
            "{path}: {text}"
        );
    }
    let (s, patched) = api
        .json(
            Method::PATCH,
            &format!("/api/v1/webhooks/{all_id}"),
            Some(json!({"enabled": false, "secret": "rotated-secret-0123456789"})),
        )
        .await;
    assert_eq!(s, 200, "{patched}");
    assert_eq!(patched["secret"], "***");
    assert_eq!(patched["enabled"], false);
    let (s, v) = api
        .json(
            Method::PATCH,
            &format!("/api/v1/webhooks/{all_id}"),
            Some(json!({"url": "ftp://x/"})),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    let (s, _) = api
        .send(Method::GET, "/api/v1/webhooks/whk_nope", None)
        .await;
    assert_eq!(s, 422);
    let (s, _) = api
        .send(
            Method::DELETE,
            &format!("/api/v1/webhooks/{}", only_b["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(s, 204);
    let (s, _) = api
        .send(
            Method::GET,
            &format!("/api/v1/webhooks/{}", only_b["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(s, 404);
    let (status, logs) = server.stop_with(nix::sys::signal::Signal::SIGTERM);
    assert!(status.success());
    assert!(
        logs.iter().any(|l| l.contains("webhook created")),
        "{logs:?}"
    );
    for l in &logs {
        assert!(
            !l.contains(&secret) && !l.contains(b_secret) && !l.contains("rotated-secret"),
            "a log line carries a secret: {l}"
        );
    }
}

/// A receiver that accepts connections and never answers: capture goes on at full speed, the
/// subscription's queue holds its limit and drops the oldest, counted.
#[tokio::test]
async fn a_receiver_that_never_answers_stalls_nothing_and_drops_are_counted() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let held = Arc::new(Mutex::new(Vec::new()));
    {
        let (accepted, held) = (accepted.clone(), held.clone());
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                accepted.fetch_add(1, Ordering::SeqCst);
                held.lock().unwrap().push(sock); // kept open, never read, never answered
            }
        });
    }
    let app = common::spawn_app_with(
        |c| {
            c.webhooks.queue = 2;
            c.webhooks.timeout = Duration::from_secs(60);
        },
        heldar::app::BuildOptions::default(),
    )
    .await;
    let cam = FakeCamera::start(
        FakeAuth::None,
        FrameSupply::Static(Bytes::from(pattern::solid_jpeg(64, 48, [5, 5, 5]))),
    )
    .await
    .unwrap();
    app.create_camera(json!({"id": "busy", "snapshot_url": cam.snapshot_url()}))
        .await;
    let resp = app
        .post_json(
            "/api/v1/webhooks",
            &json!({"url": url, "events": ["frame.stored"]}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let keep = || async {
        let started = Instant::now();
        let r = app
            .client
            .post(app.url("/api/v1/cameras/busy/snapshot?store=true"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        started.elapsed()
    };
    // The first delivery is taken by the worker and hangs at the receiver.
    keep().await;
    wait_for(
        "the receiver's first connection",
        Duration::from_secs(10),
        || async { (accepted.load(Ordering::SeqCst) >= 1).then_some(()) },
    )
    .await;
    // Five more frames: each is kept as fast as without a webhook; two wait, three are dropped.
    for _ in 0..5 {
        let took = keep().await;
        assert!(took < Duration::from_secs(2), "a frame took {took:?}");
    }
    let text = wait_for("three drops counted", Duration::from_secs(10), || async {
        let text = app.get("/metrics").await.text().await.unwrap();
        (common::metric(&text, "heldar_webhook_dropped_total") == Some(3)).then_some(text)
    })
    .await;
    assert_eq!(
        common::metric(&text, "heldar_webhook_dropped_total"),
        Some(3)
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "one delivery at a time");
    let frames: Vec<Value> = app
        .get("/api/v1/cameras/busy/snapshots")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(frames.len(), 6);
    app.stop().await;
}
