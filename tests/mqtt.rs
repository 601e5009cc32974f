//! MQTT against a real broker: each test starts its own Mosquitto (Debian's `mosquitto`, which
//! scripts/test installs) on a free loopback port, a real Heldar on port 0 (in process, or the
//! binary for the log check), fake HTTP cameras that serve real JPEGs, and a subscriber of its
//! own through rumqttc. What they check: topics and retained flags, Home Assistant discovery
//! documents field by field (HA's MQTT camera, sensor and button schemas), their removal, capture
//! requests storing tagged frames, the API's tags, a broker restart mid-run costing no slot, and
//! password authentication without the password ever reaching the log.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, SubsecRound, Utc};
use common::{error_of, metric, spawn_app_with, wait_for, TestApp};
use heldar::app::BuildOptions;
use heldar::config::MqttConfig;
use heldar::fakecam::{pattern, FakeAuth, FakeCamera, FrameSupply};
use heldar::models::{CameraId, Schedule, ScheduleId};
use rumqttc::{AsyncClient, MqttOptions, Packet, QoS};
use serde_json::{json, Value};

const LIMIT: Duration = Duration::from_secs(20);

/// A Mosquitto broker of this test, on 127.0.0.1 at a free port.
struct Broker {
    child: Child,
    port: u16,
    conf: PathBuf,
    _dir: tempfile::TempDir,
}

fn mosquitto() -> PathBuf {
    for p in ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"] {
        if Path::new(p).exists() {
            return p.into();
        }
    }
    PathBuf::from("mosquitto")
}

impl Broker {
    /// Anonymous clients allowed.
    fn start() -> Broker {
        Broker::with("allow_anonymous true\n", |_| String::new())
    }

    /// Only `user` with `password` (a password file made by mosquitto_passwd).
    fn with_password(user: &str, password: &str) -> Broker {
        Broker::with("allow_anonymous false\n", |dir| {
            let file = dir.join("passwords");
            let ok = Command::new("mosquitto_passwd")
                .args(["-b", "-c"])
                .arg(&file)
                .args([user, password])
                .status()
                .expect("mosquitto_passwd (Debian's mosquitto package) runs");
            assert!(ok.success());
            format!("password_file {}\n", file.display())
        })
    }

    fn with(auth: &str, extra: impl FnOnce(&Path) -> String) -> Broker {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let more = extra(dir.path());
        // `user root`: started as root, Mosquitto would otherwise switch to its own user, who
        // cannot read this test's private temp dir. No persistence: a restart forgets every
        // retained message, so what reappears was published again.
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\n{auth}{more}persistence false\nuser root\n\
                 log_dest stderr\n"
            ),
        )
        .unwrap();
        let child = Broker::spawn(&conf);
        let b = Broker {
            child,
            port,
            conf,
            _dir: dir,
        };
        b.wait_listening();
        b
    }

    fn spawn(conf: &Path) -> Child {
        Command::new(mosquitto())
            .arg("-c")
            .arg(conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto (Debian's mosquitto package; scripts/test installs it) starts")
    }

    fn wait_listening(&self) {
        let deadline = std::time::Instant::now() + LIMIT;
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "mosquitto did not listen on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn restart(&mut self) {
        self.child = Broker::spawn(&self.conf);
        self.wait_listening();
    }

    fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One message a subscriber received.
#[derive(Debug, Clone)]
struct Msg {
    topic: String,
    payload: Bytes,
    retain: bool,
}

impl Msg {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.payload)
            .unwrap_or_else(|e| panic!("{} is not JSON ({e})", self.topic))
    }
}

/// A test's own MQTT client subscribed to `filter`; it reconnects and subscribes again by
/// itself (a broker restart).
struct Sub {
    client: AsyncClient,
    got: Arc<Mutex<Vec<Msg>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Sub {
    async fn new(port: u16, filter: &str) -> Sub {
        Sub::with_login(port, filter, None).await
    }

    async fn with_login(port: u16, filter: &str, login: Option<(&str, &str)>) -> Sub {
        let mut o = MqttOptions::new(
            format!("test-{}", uuid::Uuid::new_v4().simple()),
            "127.0.0.1",
            port,
        );
        o.set_keep_alive(Duration::from_secs(5));
        o.set_max_packet_size(32 << 20, 32 << 20);
        if let Some((u, p)) = login {
            o.set_credentials(u, p);
        }
        let (client, mut el) = AsyncClient::new(o, 64);
        let got = Arc::new(Mutex::new(Vec::new()));
        let (g, c, f) = (got.clone(), client.clone(), filter.to_string());
        let (ready_tx, ready) = tokio::sync::oneshot::channel();
        let mut ready_tx = Some(ready_tx);
        let task = tokio::spawn(async move {
            loop {
                match el.poll().await {
                    Ok(rumqttc::Event::Incoming(Packet::ConnAck(_))) => {
                        c.try_subscribe(f.clone(), QoS::AtLeastOnce).unwrap();
                    }
                    Ok(rumqttc::Event::Incoming(Packet::SubAck(_))) => {
                        if let Some(tx) = ready_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                    Ok(rumqttc::Event::Incoming(Packet::Publish(p))) => {
                        g.lock().unwrap().push(Msg {
                            topic: p.topic.clone(),
                            payload: p.payload.clone(),
                            retain: p.retain,
                        });
                    }
                    Ok(_) => {}
                    // The broker is away: try again shortly (rumqttc reconnects on the next
                    // poll).
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        tokio::time::timeout(LIMIT, ready)
            .await
            .expect("the test subscriber is subscribed within 20 s")
            .unwrap();
        Sub { client, got, task }
    }

    fn all(&self) -> Vec<Msg> {
        self.got.lock().unwrap().clone()
    }

    fn on(&self, topic: &str) -> Vec<Msg> {
        self.all()
            .into_iter()
            .filter(|m| m.topic == topic)
            .collect()
    }

    /// The first message (from the `from`th on) that `pred` accepts, waiting for it.
    async fn wait(&self, what: &str, from: usize, pred: impl Fn(&Msg) -> bool) -> Msg {
        let got = self.got.clone();
        wait_for(what, LIMIT, || {
            let m = got
                .lock()
                .unwrap()
                .iter()
                .skip(from)
                .find(|m| pred(m))
                .cloned();
            async move { m }
        })
        .await
    }

    async fn close(self) {
        let _ = self.client.disconnect().await;
        self.task.abort();
    }
}

fn mqtt_config(port: u16, client_id: &str) -> MqttConfig {
    MqttConfig {
        host: "127.0.0.1".into(),
        port,
        tls: false,
        ca_file: None,
        username: None,
        password: None,
        client_id: client_id.into(),
        prefix: "heldar".into(),
        discovery_prefix: Some("homeassistant".into()),
    }
}

async fn app_on(broker: &Broker) -> TestApp {
    let cfg = mqtt_config(broker.port, "heldar-test");
    spawn_app_with(move |c| c.mqtt = Some(cfg), BuildOptions::default()).await
}

async fn camera(app: &TestApp, id: &str, name: &str) -> FakeCamera {
    let cam = FakeCamera::start(
        FakeAuth::None,
        FrameSupply::Static(Bytes::from(pattern::solid_jpeg(96, 64, [200, 40, 40]))),
    )
    .await
    .unwrap();
    app.create_camera(json!({"id": id, "name": name, "snapshot_url": cam.snapshot_url()}))
        .await;
    cam
}

async fn metrics(app: &TestApp) -> String {
    app.get("/metrics").await.text().await.unwrap()
}

/// Wait until Heldar says it is connected (and so has announced).
async fn connected(app: &TestApp) {
    wait_for("heldar_mqtt_connected 1", LIMIT, || async {
        (metric(&metrics(app).await, "heldar_mqtt_connected") == Some(1)).then_some(())
    })
    .await;
}

async fn frames(app: &TestApp, camera: &str, query: &str) -> Vec<Value> {
    let r = app
        .get(&format!("/api/v1/cameras/{camera}/snapshots{query}"))
        .await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn keep(app: &TestApp, camera: &str, query: &str) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/api/v1/cameras/{camera}/snapshot{query}")))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn frames_state_and_availability_arrive_on_their_topics_with_the_right_retain_flags() {
    let broker = Broker::start();
    let app = app_on(&broker).await;
    let live = Sub::new(broker.port, "heldar/#").await;
    let _cam = camera(&app, "porch", "Porch").await;
    connected(&app).await;

    let r = keep(&app, "porch", "?store=true").await;
    assert_eq!(r.status(), 200);
    let id = r.headers()["x-heldar-snapshot-id"]
        .to_str()
        .unwrap()
        .to_string();
    let media = r.headers()["location"].to_str().unwrap().to_string();
    let jpeg = r.bytes().await.unwrap();

    // Live: the event, as the API's event stream has it.
    let ev = live
        .wait("frame.stored on heldar/porch/events", 0, |m| {
            m.topic == "heldar/porch/events" && m.json()["type"] == "frame.stored"
        })
        .await;
    let e = ev.json();
    assert_eq!(e["snapshot_id"], id.as_str());
    assert_eq!(e["camera"], "porch");
    assert_eq!(e["url"], media.as_str());
    assert!(!ev.retain);
    live.wait("the frame on heldar/porch/snapshot", 0, |m| {
        m.topic == "heldar/porch/snapshot" && m.payload == jpeg
    })
    .await;
    live.wait("state online", 0, |m| {
        m.topic == "heldar/porch/state" && m.json()["last_frame_at"].is_string()
    })
    .await;
    live.close().await;

    // A subscriber that comes later gets what is retained: the newest frame, the state,
    // availability — and no event.
    let late = Sub::new(broker.port, "heldar/#").await;
    let snap = late
        .wait("the retained frame", 0, |m| {
            m.topic == "heldar/porch/snapshot"
        })
        .await;
    assert!(snap.retain, "the frame is retained");
    assert_eq!(snap.payload, jpeg, "the JPEG bytes of the stored frame");
    let stored = app.get(&media).await.bytes().await.unwrap();
    assert_eq!(snap.payload, stored);
    let state = late
        .wait("the retained state", 0, |m| m.topic == "heldar/porch/state")
        .await;
    assert!(state.retain);
    let s = state.json();
    assert_eq!(s["camera"], "porch");
    assert_eq!(s["name"], "Porch");
    assert_eq!(s["state"], "online");
    assert_eq!(s["last_error"], Value::Null);
    let at: DateTime<Utc> = s["last_frame_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        at,
        e["taken_at"]
            .as_str()
            .unwrap()
            .parse::<DateTime<Utc>>()
            .unwrap()
    );
    let status = late
        .wait("the retained status", 0, |m| m.topic == "heldar/status")
        .await;
    assert!(status.retain);
    assert_eq!(&status.payload[..], b"online");
    assert!(
        late.on("heldar/porch/events").is_empty(),
        "events are not retained"
    );
    let m = metrics(&app).await;
    assert!(
        metric(&m, "heldar_mqtt_published_total").unwrap() >= 4,
        "{m}"
    );
    assert_eq!(metric(&m, "heldar_mqtt_dropped_total"), Some(0));
    late.close().await;

    // A clean stop says `offline` (retained) before it disconnects.
    app.stop().await;
    let after = Sub::new(broker.port, "heldar/status").await;
    let m = after.wait("the status after the stop", 0, |_| true).await;
    assert_eq!(&m.payload[..], b"offline");
    assert!(m.retain);
    after.close().await;
}

/// Field by field against HA's MQTT discovery documentation (camera: `topic` required; sensor:
/// `state_topic` required; button: `command_topic` required; `unique_id`, `device` with
/// `identifiers`, `availability_topic` in all), consistent with the topics Heldar publishes.
fn check_discovery(cfgs: &[Value; 4], camera: &str, name: &str) {
    let [cam, state, last, button] = cfgs;
    assert_eq!(cam["topic"], format!("heldar/{camera}/snapshot"));
    assert_eq!(
        cam["name"],
        Value::Null,
        "the camera entity takes the device's name"
    );
    assert_eq!(state["state_topic"], format!("heldar/{camera}/state"));
    assert_eq!(state["value_template"], "{{ value_json.state }}");
    assert_eq!(
        state["json_attributes_topic"],
        format!("heldar/{camera}/state")
    );
    assert_eq!(state["name"], "State");
    assert_eq!(last["state_topic"], format!("heldar/{camera}/state"));
    assert_eq!(last["device_class"], "timestamp");
    assert_eq!(last["value_template"], "{{ value_json.last_frame_at }}");
    assert_eq!(last["name"], "Last capture");
    assert_eq!(button["command_topic"], format!("heldar/{camera}/capture"));
    let press: Value = serde_json::from_str(button["payload_press"].as_str().unwrap()).unwrap();
    assert_eq!(press, json!({"store": true}));
    let mut ids = std::collections::HashSet::new();
    for c in cfgs {
        let uid = c["unique_id"].as_str().expect("unique_id");
        assert!(
            uid.starts_with(&format!("heldar_heldar-test_{camera}_")),
            "{uid}"
        );
        assert!(ids.insert(uid.to_string()), "unique_ids differ: {uid}");
        assert_eq!(c["availability_topic"], "heldar/status");
        assert_eq!(c["payload_available"], "online");
        assert_eq!(c["payload_not_available"], "offline");
        let d = &c["device"];
        assert_eq!(d, &cfgs[0]["device"], "one device per camera");
        assert_eq!(
            d["identifiers"],
            json!([format!("heldar_heldar-test_{camera}")])
        );
        assert_eq!(d["name"], name);
        assert_eq!(d["manufacturer"], "Heldar");
        assert!(d["sw_version"].is_string());
        assert_eq!(c["origin"]["name"], "Heldar");
        // Only keys of HA's schemas for these platforms.
        let allowed = [
            "unique_id",
            "availability_topic",
            "payload_available",
            "payload_not_available",
            "device",
            "origin",
            "name",
            "topic",
            "state_topic",
            "value_template",
            "json_attributes_topic",
            "icon",
            "device_class",
            "command_topic",
            "payload_press",
        ];
        for k in c.as_object().unwrap().keys() {
            assert!(allowed.contains(&k.as_str()), "unexpected key {k}");
        }
    }
}

fn config_topics(camera: &str) -> [String; 4] {
    let obj = format!("heldar-test_{camera}");
    [
        format!("homeassistant/camera/{obj}/config"),
        format!("homeassistant/sensor/{obj}_state/config"),
        format!("homeassistant/sensor/{obj}_last_capture/config"),
        format!("homeassistant/button/{obj}_snapshot/config"),
    ]
}

async fn configs(sub: &Sub, camera: &str, from: usize, name: &str) -> [Value; 4] {
    let mut out = Vec::new();
    for t in config_topics(camera) {
        let m = sub
            .wait(&format!("{t} naming {name}"), from, |m| {
                m.topic == t && !m.payload.is_empty() && m.json()["device"]["name"] == name
            })
            .await;
        out.push(m.json());
    }
    out.try_into().unwrap()
}

#[tokio::test]
async fn home_assistant_discovery_follows_the_documented_schema_and_is_removed_on_delete() {
    let broker = Broker::start();
    let app = app_on(&broker).await;
    let _cam = camera(&app, "garage", "Garage").await;
    connected(&app).await;
    let sub = Sub::new(broker.port, "homeassistant/#").await;
    let first = configs(&sub, "garage", 0, "Garage").await;
    check_discovery(&first, "garage", "Garage");
    // Retained: a subscriber that arrives afterwards is handed it by the broker (one already
    // subscribed when it was published gets it live, without the retain flag).
    let late = Sub::new(broker.port, &config_topics("garage")[0]).await;
    let kept = late
        .wait("the retained discovery config", 0, |_| true)
        .await;
    assert!(kept.retain, "the discovery config is published retained");
    late.close().await;

    // A rename announces again: new names, the same ids.
    let seen = sub.all().len();
    let r = app
        .patch_json("/api/v1/cameras/garage", &json!({"name": "Garage door"}))
        .await;
    assert_eq!(r.status(), 200);
    let renamed = configs(&sub, "garage", seen, "Garage door").await;
    check_discovery(&renamed, "garage", "Garage door");
    for (a, b) in first.iter().zip(&renamed) {
        assert_eq!(a["unique_id"], b["unique_id"], "unique_id is stable");
    }

    // Deleting the camera removes its entities: an empty retained config on each topic.
    let seen = sub.all().len();
    assert_eq!(app.delete("/api/v1/cameras/garage").await.status(), 204);
    for t in config_topics("garage") {
        sub.wait(&format!("{t} emptied"), seen, |m| {
            m.topic == t && m.payload.is_empty()
        })
        .await;
    }
    sub.close().await;
    // Nothing of it is left on the broker: a new subscriber gets no retained config, frame or
    // state of the camera (a marker camera's config shows that retained messages did arrive).
    let _other = camera(&app, "marker", "Marker").await;
    let later = Sub::new(broker.port, "#").await;
    later
        .wait("the marker's config", 0, |m| {
            m.topic == config_topics("marker")[0]
        })
        .await;
    let left: Vec<String> = later
        .all()
        .into_iter()
        .filter(|m| m.topic.contains("garage"))
        .map(|m| m.topic)
        .collect();
    assert!(left.is_empty(), "retained after the delete: {left:?}");
    later.close().await;
    app.stop().await;
}

#[tokio::test]
async fn a_capture_message_stores_a_tagged_frame_and_bad_ones_are_counted() {
    let broker = Broker::start();
    let app = app_on(&broker).await;
    let cam = camera(&app, "door", "Door").await;
    connected(&app).await;
    let sub = Sub::new(broker.port, "heldar/door/events").await;

    sub.client
        .publish(
            "heldar/door/capture",
            QoS::AtLeastOnce,
            false,
            r#"{"store": true, "tag": "doorbell"}"#,
        )
        .await
        .unwrap();
    let tagged = wait_for("a frame tagged doorbell", LIMIT, || async {
        let f = frames(&app, "door", "?tag=doorbell").await;
        (!f.is_empty()).then_some(f)
    })
    .await;
    assert_eq!(tagged.len(), 1);
    assert_eq!(tagged[0]["tag"], "doorbell");
    assert_eq!(tagged[0]["schedule_id"], Value::Null, "a manual frame");
    assert_eq!(cam.hits(), 1, "taken from the camera now");
    let ev = sub
        .wait("its frame.stored", 0, |m| {
            m.json()["type"] == "frame.stored"
        })
        .await;
    assert_eq!(ev.json()["tag"], "doorbell");
    assert_eq!(ev.json()["snapshot_id"], tagged[0]["id"]);

    // Unusable requests are counted, and the service goes on.
    for bad in [
        &b"PRESS"[..],
        br#"{"tag": "has space"}"#,
        br#"{"store": false, "tag": "x"}"#,
    ] {
        sub.client
            .publish("heldar/door/capture", QoS::AtLeastOnce, false, bad.to_vec())
            .await
            .unwrap();
    }
    sub.client
        .publish("heldar/nobody/capture", QoS::AtLeastOnce, false, "")
        .await
        .unwrap();
    wait_for("4 bad messages counted", LIMIT, || async {
        (metric(&metrics(&app).await, "heldar_mqtt_bad_messages_total") == Some(4)).then_some(())
    })
    .await;
    // An empty payload keeps a frame without a tag.
    sub.client
        .publish("heldar/door/capture", QoS::AtLeastOnce, false, "")
        .await
        .unwrap();
    let all = wait_for("a second frame", LIMIT, || async {
        let f = frames(&app, "door", "").await;
        (f.len() == 2).then_some(f)
    })
    .await;
    assert!(all.iter().any(|f| f["tag"].is_null()));
    assert_eq!(frames(&app, "door", "?tag=doorbell").await.len(), 1);
    assert_eq!(cam.hits(), 2, "bad requests took no frame");

    // `"store": false`: a live frame on the snapshot topic, nothing kept.
    let pics = Sub::new(broker.port, "heldar/door/snapshot").await;
    let seen = pics.all().len();
    sub.client
        .publish(
            "heldar/door/capture",
            QoS::AtLeastOnce,
            false,
            r#"{"store": false}"#,
        )
        .await
        .unwrap();
    let pic = pics
        .wait("the live frame", seen, |m| !m.payload.is_empty())
        .await;
    assert!(pic.payload.starts_with(&[0xff, 0xd8]), "a JPEG");
    assert_eq!(cam.hits(), 3, "taken from the camera");
    assert_eq!(frames(&app, "door", "").await.len(), 2, "and not kept");
    pics.close().await;
    sub.close().await;
    app.stop().await;
}

#[tokio::test]
async fn the_api_keeps_tagged_frames_and_filters_by_tag() {
    let broker = Broker::start();
    let app = app_on(&broker).await;
    let _cam = camera(&app, "yard", "Yard").await;
    for q in [
        "?store=true&tag=doorbell",
        "?store=true",
        "?store=true&tag=gate.open-1_x",
    ] {
        assert_eq!(keep(&app, "yard", q).await.status(), 200, "{q}");
    }
    let all = frames(&app, "yard", "").await;
    assert_eq!(all.len(), 3);
    let d = frames(&app, "yard", "?tag=doorbell").await;
    assert_eq!(d.len(), 1);
    assert_eq!(d[0]["tag"], "doorbell");
    let r = app.get("/api/v1/cameras/yard/snapshots?tag=doorbell").await;
    assert_eq!(r.headers()["x-total-count"], "1");
    assert_eq!(frames(&app, "yard", "?tag=gate.open-1_x").await.len(), 1);
    assert!(frames(&app, "yard", "?tag=nothing").await.is_empty());

    let long = "x".repeat(65);
    for q in [
        "?store=true&tag=has%20space".to_string(),
        "?store=true&tag=".to_string(),
        format!("?store=true&tag={long}"),
        "?tag=doorbell".to_string(),
        "?store=false&tag=doorbell".to_string(),
    ] {
        let (status, body) = error_of(keep(&app, "yard", &q).await).await;
        assert_eq!(status, 422, "{q}: {body}");
        assert!(body["error"].as_str().unwrap().contains("tag"), "{body}");
    }
    let (status, _) = error_of(app.get("/api/v1/cameras/yard/snapshots?tag=a/b").await).await;
    assert_eq!(status, 422);
    assert_eq!(
        frames(&app, "yard", "").await.len(),
        3,
        "refused requests kept nothing"
    );
    app.stop().await;
}

/// A schedule of `camera` every `secs` seconds, due now (inserted: the API's minimum is 5 s).
async fn every(app: &TestApp, camera: &str, secs: i64) {
    let now = Utc::now().trunc_subsecs(3);
    let s = Schedule::every(
        ScheduleId::generate().to_string(),
        CameraId::parse(camera).unwrap(),
        secs,
        now,
        now,
    );
    heldar::db::schedules::insert(&app.state.ops.db, &s)
        .await
        .unwrap();
    app.state.ops.scheduler.refresh(&s.id);
}

#[tokio::test]
async fn a_broker_restart_costs_no_slot_and_heldar_reconnects_and_announces_again() {
    let mut broker = Broker::start();
    let app = app_on(&broker).await;
    let _cam = camera(&app, "drive", "Drive").await;
    connected(&app).await;
    let sub = Sub::new(broker.port, "#").await;
    every(&app, "drive", 2).await;
    sub.wait("a scheduled frame", 0, |m| {
        m.topic == "heldar/drive/snapshot"
    })
    .await;

    broker.kill();
    wait_for("heldar_mqtt_connected 0", LIMIT, || async {
        (metric(&metrics(&app).await, "heldar_mqtt_connected") == Some(0)).then_some(())
    })
    .await;
    // Slots keep being captured and stored while the broker is gone.
    let before = frames(&app, "drive", "").await.len();
    wait_for("two frames stored with the broker down", LIMIT, || async {
        (frames(&app, "drive", "").await.len() >= before + 2).then_some(())
    })
    .await;

    let seen = sub.all().len();
    broker.restart();
    connected(&app).await;
    // The restarted broker kept nothing: what arrives was published again.
    sub.wait("online again", seen, |m| {
        m.topic == "heldar/status" && &m.payload[..] == b"online"
    })
    .await;
    sub.wait("the camera announced again", seen, |m| {
        m.topic == config_topics("drive")[0] && !m.payload.is_empty()
    })
    .await;
    let n = frames(&app, "drive", "").await.len();
    sub.wait("a frame after the restart", seen, |m| {
        m.topic == "heldar/drive/snapshot"
    })
    .await;
    wait_for("one more frame", LIMIT, || async {
        (frames(&app, "drive", "").await.len() > n).then_some(())
    })
    .await;

    // No slot was lost: consecutive frames are one interval apart, and none was missed.
    let mut times: Vec<DateTime<Utc>> = frames(&app, "drive", "")
        .await
        .iter()
        .map(|f| f["taken_at"].as_str().unwrap().parse().unwrap())
        .collect();
    times.sort();
    assert!(times.len() >= 5, "{times:?}");
    for w in times.windows(2) {
        let gap = (w[1] - w[0]).num_milliseconds();
        assert!((1000..=3000).contains(&gap), "a gap of {gap} ms: {times:?}");
    }
    let m = metrics(&app).await;
    assert_eq!(metric(&m, "heldar_missed_slots_total"), Some(0), "{m}");
    sub.close().await;
    app.stop().await;
}

#[tokio::test]
async fn a_password_broker_is_used_with_its_credentials_and_the_password_is_never_logged() {
    let password = "s3cret-Mqtt-pw-4821";
    let broker = Broker::with_password("heldar", password);
    let dir = tempfile::tempdir().unwrap();
    let serve = |data: &str, pw: &str| {
        // Two installs side by side, each in a folder of its own.
        let root = dir.path().join(data);
        std::fs::create_dir_all(&root).unwrap();
        let mut cmd = common::heldar_cmd(&root);
        cmd.arg("serve")
            .env("HELDAR_LOG", "debug")
            .env("HELDAR_MQTT_URL", broker.url())
            .env("HELDAR_MQTT_USERNAME", "heldar")
            .env("HELDAR_MQTT_PASSWORD", pw)
            .env("HELDAR_MQTT_CLIENT_ID", format!("heldar-{data}"));
        common::ServerProcess::start(cmd)
    };
    let good = serve("good", password);
    let wrong_pw = "Wrong-pw-77231";
    let bad = serve("bad", wrong_pw);
    good.wait_for_log("MQTT connected", LIMIT).await;
    bad.wait_for_log("cannot connect to the broker", LIMIT)
        .await;
    // The broker refuses anonymous clients; with the password, Heldar's status is there.
    let sub = Sub::with_login(broker.port, "heldar/status", Some(("heldar", password))).await;
    let m = sub.wait("online", 0, |_| true).await;
    assert_eq!(&m.payload[..], b"online");
    sub.close().await;
    let metrics_text = reqwest::get(bad.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(metric(&metrics_text, "heldar_mqtt_connected"), Some(0));
    let (_, good_logs) = good.stop_with(nix::sys::signal::Signal::SIGTERM);
    let (_, bad_logs) = bad.stop_with(nix::sys::signal::Signal::SIGTERM);
    for line in good_logs.iter().chain(&bad_logs) {
        assert!(!line.contains(password), "the password in the log: {line}");
        assert!(!line.contains(wrong_pw), "the password in the log: {line}");
    }
    assert!(
        bad_logs.iter().any(|l| l.contains("mqtt://127.0.0.1")),
        "the log names the broker"
    );
}

/// `heldar bench --mqtt-url`: the bench publishes as the service would (its frames reach the
/// broker under `heldar-bench/`), and reports what it published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bench_publishes_to_the_broker_it_is_given() {
    let broker = Broker::start();
    let sub = Sub::new(broker.port, "heldar-bench/+/snapshot").await;
    let report = heldar::bench::run(&heldar::bench::BenchOptions {
        mqtt_url: Some(broker.url()),
        ..heldar::bench::BenchOptions::small(3, 1, 4.0)
    })
    .await
    .unwrap();
    assert!(report.mqtt, "{report:?}");
    assert!(report.mqtt_connected_at_end, "{report:?}");
    // Each frame is a JPEG, an event and a state at least.
    assert!(report.mqtt_published >= 3 * report.captured, "{report:?}");
    assert_eq!(report.mqtt_dropped, 0, "{report:?}");
    let got = sub.all();
    assert!(got.len() as u64 >= report.captured, "{} frames", got.len());
    assert!(
        got.iter().all(|m| m.payload.starts_with(&[0xff, 0xd8])),
        "JPEGs"
    );
    sub.close().await;
}

/// `mqtts://` with HELDAR_MQTT_CA_FILE: a broker whose certificate is signed by a CA of our own
/// (made here with rcgen) is trusted through that file, and verified by name.
#[tokio::test]
async fn an_mqtts_broker_signed_by_a_ca_of_our_own_is_trusted_through_the_ca_file() {
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let tls_port = free();
    let ca_file = std::sync::Arc::new(std::sync::Mutex::new(PathBuf::new()));
    let ca_out = ca_file.clone();
    // A plain listener for the test's subscriber, a TLS one for Heldar.
    let broker = Broker::with("allow_anonymous true\n", move |dir| {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&key, &ca, &ca_key)
            .unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.join("cert.pem"), leaf.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
        *ca_out.lock().unwrap() = dir.join("ca.pem");
        format!(
            "listener {tls_port} 127.0.0.1\ncertfile {}\nkeyfile {}\n",
            dir.join("cert.pem").display(),
            dir.join("key.pem").display()
        )
    });
    let sub = Sub::new(broker.port, "heldar/status").await;
    let cfg = MqttConfig {
        host: "localhost".into(),
        tls: true,
        ca_file: Some(ca_file.lock().unwrap().clone()),
        ..mqtt_config(tls_port, "heldar-tls")
    };
    let app = spawn_app_with(move |c| c.mqtt = Some(cfg), BuildOptions::default()).await;
    connected(&app).await;
    let m = sub.wait("online, over TLS", 0, |_| true).await;
    assert_eq!(&m.payload[..], b"online");
    sub.close().await;
    app.stop().await;
}
