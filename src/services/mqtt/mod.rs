//! MQTT: Heldar's events on a broker, Home Assistant discovery, and capture triggers
//! (docs/integrations.md).
//!
//! Owns the broker connection (rumqttc), what is published and when, and the capture topic's
//! requests. It does not decide anything about cameras or frames: it reads the event bus like
//! any subscriber, and a capture request goes through the same operation as the API's
//! `POST …/snapshot?store=true` (`ops::frames::capture_and_keep_tagged`).
//!
//! Three tasks: the *pump* moves events from the bus into a bounded queue at once (never
//! waiting: when the queue is full the oldest item is dropped and counted in
//! `heldar_mqtt_dropped_total`), the *publisher* takes items from the queue and publishes them
//! while connected, and the *driver* runs rumqttc's event loop — connecting, reconnecting with
//! a backoff (1 s doubling to 30 s), and handing capture requests to their own tasks. A dead or
//! slow broker therefore fills only the queue; capture and the scheduler never wait for it.
//!
//! Failure: a connection error is logged once when it starts (then at debug level until the
//! connection is back) and retried; drops and unusable capture messages are logged at most once
//! a minute with their count. The password is handed to rumqttc only: it is never logged (the
//! settings' `Debug` masks it; rumqttc's own `MqttOptions` `Debug`, which would show it, is
//! never printed). If a task ends unexpectedly the run fails and the supervisor restarts it.

pub mod topics;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use rumqttc::{AsyncClient, EventLoop, MqttOptions, Packet, QoS, Transport};
use tokio::sync::{broadcast, watch, Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::config::MqttConfig;
use crate::events::{Change, Event};
use crate::models::CameraId;
use crate::ops::{self, Ops};
use topics::CameraDoc;

/// Items waiting for the broker at most; more drop the oldest.
pub const QUEUE_CAPACITY: usize = 1024;
/// Drops and bad capture messages are logged at most this often (with their count).
pub const LOG_EVERY: Duration = Duration::from_secs(60);
/// Capture requests from MQTT running at once; more are refused (and counted as bad messages).
const TRIGGERS_AT_ONCE: usize = 16;
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How long a clean stop waits for `offline` to reach the broker.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// The broker's settings in rumqttc's terms, checked (a CA file that cannot be read stops
/// start-up here, naming its variable).
pub fn options(cfg: &MqttConfig, max_frame_bytes: usize) -> anyhow::Result<MqttOptions> {
    let mut o = MqttOptions::new(cfg.client_id.clone(), cfg.host.clone(), cfg.port);
    o.set_keep_alive(Duration::from_secs(30));
    o.set_clean_session(true);
    // Incoming: capture requests only (small); outgoing: a frame's JPEG at most.
    o.set_max_packet_size(64 * 1024, max_frame_bytes + 64 * 1024);
    o.set_last_will(rumqttc::LastWill::new(
        topics::status(cfg),
        "offline",
        QoS::AtLeastOnce,
        true,
    ));
    if let Some(user) = &cfg.username {
        o.set_credentials(user.clone(), cfg.password.clone().unwrap_or_default());
    }
    if cfg.tls {
        o.set_transport(Transport::tls_with_config(
            rumqttc::TlsConfiguration::Rustls(Arc::new(tls_config(cfg)?)),
        ));
    }
    Ok(o)
}

/// rustls with ring (the provider the rest of Heldar uses): the public roots, plus the CAs in
/// HELDAR_MQTT_CA_FILE.
fn tls_config(cfg: &MqttConfig) -> anyhow::Result<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(file) = &cfg.ca_file {
        let fail = |why: String| {
            anyhow::anyhow!(
                "HELDAR_MQTT_CA_FILE={:?} cannot be used: {why}",
                file.display()
            )
        };
        let pem = std::fs::read(file).map_err(|e| fail(e.to_string()))?;
        let mut n = 0;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| fail(format!("not PEM certificates ({e})")))?;
            roots
                .add(cert)
                .map_err(|e| fail(format!("a certificate is not a usable CA ({e})")))?;
            n += 1;
        }
        if n == 0 {
            return Err(fail("it holds no PEM certificate".into()));
        }
    }
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth())
}

/// What waits for the broker.
#[derive(Debug)]
enum Item {
    Event(Arc<Event>),
    /// A frame taken for a capture request with `"store": false`: shown, not kept.
    Live {
        camera: CameraId,
        jpeg: Bytes,
    },
}

/// The bounded queue between the bus and the broker: pushing never waits; when full, the
/// oldest item goes (counted).
struct Queue {
    items: Mutex<VecDeque<Item>>,
    ready: Notify,
    capacity: usize,
}

impl Queue {
    fn new(capacity: usize) -> Queue {
        Queue {
            items: Mutex::new(VecDeque::with_capacity(capacity.min(1024))),
            ready: Notify::new(),
            capacity,
        }
    }

    /// Add `item`; whether an older one was dropped for it.
    fn push(&self, item: Item) -> bool {
        let dropped = {
            let mut q = self.items.lock().expect("mqtt queue lock");
            let dropped = q.len() >= self.capacity && q.pop_front().is_some();
            q.push_back(item);
            dropped
        };
        self.ready.notify_one();
        dropped
    }

    async fn pop(&self) -> Item {
        loop {
            let ready = self.ready.notified();
            if let Some(item) = self.items.lock().expect("mqtt queue lock").pop_front() {
                return item;
            }
            ready.await;
        }
    }
}

/// Counts something and says so in the log at most once per [`LOG_EVERY`].
#[derive(Default)]
struct Tally {
    since_log: AtomicU64,
    last_log: Mutex<Option<tokio::time::Instant>>,
}

impl Tally {
    /// Count `n`; `Some(count since the last log line)` when a line is due now.
    fn add(&self, n: u64) -> Option<u64> {
        let total = self.since_log.fetch_add(n, Ordering::Relaxed) + n;
        let mut last = self.last_log.lock().expect("tally lock");
        let now = tokio::time::Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < LOG_EVERY) {
            return None;
        }
        *last = Some(now);
        self.since_log.fetch_sub(total, Ordering::Relaxed);
        Some(total)
    }
}

/// What the tasks share.
struct Shared {
    ops: Ops,
    cfg: MqttConfig,
    queue: Queue,
    drops: Tally,
    bad: Tally,
    triggers: Arc<Semaphore>,
}

impl Shared {
    fn push(&self, item: Item) {
        if self.queue.push(item) {
            self.dropped(1);
        }
    }

    fn dropped(&self, n: u64) {
        self.ops.metrics.mqtt.dropped.inc_by(n);
        if let Some(count) = self.drops.add(n) {
            tracing::warn!(
                dropped = count,
                "MQTT: {count} message(s) dropped since the last report: the broker is away or \
                 slower than Heldar's events (oldest dropped first; capture is not affected)"
            );
        }
    }

    fn bad_message(&self, topic: &str, why: &str) {
        self.ops.metrics.mqtt.bad_messages.inc();
        if let Some(count) = self.bad.add(1) {
            tracing::warn!(
                topic,
                error = why,
                count,
                "MQTT: capture request not carried out ({count} since the last report)"
            );
        }
    }
}

/// Run the MQTT service until `token` is cancelled: connect (and reconnect), publish, take
/// capture requests; on shutdown say `offline` and disconnect.
pub async fn run(
    ops: Ops,
    cfg: MqttConfig,
    options: MqttOptions,
    token: CancellationToken,
) -> anyhow::Result<()> {
    // Subscribed before anything else, so no event of this run is missed.
    let bus = ops.events.subscribe();
    let (client, eventloop) = AsyncClient::new(options, 64);
    let shared = Arc::new(Shared {
        ops,
        cfg,
        queue: Queue::new(QUEUE_CAPACITY),
        drops: Tally::default(),
        bad: Tally::default(),
        triggers: Arc::new(Semaphore::new(TRIGGERS_AT_ONCE)),
    });
    tracing::info!(broker = %shared.cfg.broker(), client_id = %shared.cfg.client_id,
        prefix = %shared.cfg.prefix,
        discovery = shared.cfg.discovery_prefix.as_deref().unwrap_or("off"), "MQTT on");
    let (conn_tx, conn_rx) = watch::channel(None::<u64>);
    let stop_driver = CancellationToken::new();
    let mut driver = tokio::spawn(drive(
        shared.clone(),
        eventloop,
        conn_tx,
        stop_driver.clone(),
    ));
    let mut pump = tokio::spawn(pump(shared.clone(), bus, token.clone()));
    let mut publisher = tokio::spawn(publish_loop(
        shared.clone(),
        client.clone(),
        conn_rx.clone(),
        token.clone(),
    ));
    let ended = tokio::select! {
        _ = token.cancelled() => None,
        r = &mut driver => Some(("driver", r)),
        r = &mut pump => Some(("pump", r)),
        r = &mut publisher => Some(("publisher", r)),
    };
    if let Some((task, r)) = ended {
        stop_driver.cancel();
        pump.abort();
        publisher.abort();
        driver.abort();
        shared.ops.metrics.mqtt.connected.set(0);
        return match r {
            Err(e) if e.is_panic() => Err(anyhow::anyhow!("the MQTT {task} task panicked")),
            _ => Err(anyhow::anyhow!("the MQTT {task} task ended")),
        };
    }
    publisher.abort();
    pump.abort();
    // A clean stop: the last will is only for a connection that breaks, so say it ourselves.
    if conn_rx.borrow().is_some() {
        let _ = client.try_publish(
            topics::status(&shared.cfg),
            QoS::AtLeastOnce,
            true,
            "offline",
        );
        let _ = client.try_disconnect();
        if tokio::time::timeout(STOP_GRACE, &mut driver).await.is_err() {
            tracing::warn!("MQTT: the broker did not take the disconnect in time");
        }
    }
    stop_driver.cancel();
    driver.abort();
    shared.ops.metrics.mqtt.connected.set(0);
    Ok(())
}

/// Bus → queue, at once. Events the bus dropped because this task fell behind are counted as
/// dropped too.
async fn pump(
    shared: Arc<Shared>,
    mut bus: broadcast::Receiver<Arc<Event>>,
    token: CancellationToken,
) {
    loop {
        let got = tokio::select! {
            r = bus.recv() => r,
            _ = token.cancelled() => return,
        };
        match got {
            // Progress of a timelapse twice a second is not worth a broker's bandwidth.
            Ok(e) if matches!(*e, Event::JobProgress { .. }) => {}
            Ok(e) => shared.push(Item::Event(e)),
            Err(broadcast::error::RecvError::Lagged(n)) => shared.dropped(n),
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// rumqttc's event loop: connect, reconnect with backoff, and the capture topic's messages.
/// `conn` carries the connection's number while connected (`None` while not).
async fn drive(
    shared: Arc<Shared>,
    mut eventloop: EventLoop,
    conn: watch::Sender<Option<u64>>,
    stop: CancellationToken,
) {
    let metrics = &shared.ops.metrics.mqtt;
    let broker = shared.cfg.broker();
    let mut delay = BACKOFF_MIN;
    let mut generation = 0u64;
    let mut failing = false;
    loop {
        let polled = tokio::select! {
            r = eventloop.poll() => r,
            _ = stop.cancelled() => return,
        };
        match polled {
            Ok(rumqttc::Event::Incoming(Packet::ConnAck(_))) => {
                generation += 1;
                delay = BACKOFF_MIN;
                failing = false;
                metrics.connected.set(1);
                tracing::info!(broker = %broker, "MQTT connected");
                conn.send_replace(Some(generation));
            }
            Ok(rumqttc::Event::Incoming(Packet::Publish(p))) => {
                trigger(&shared, &p.topic, &p.payload)
            }
            Ok(rumqttc::Event::Outgoing(rumqttc::Outgoing::Disconnect)) => {
                conn.send_replace(None);
                metrics.connected.set(0);
                return;
            }
            Ok(_) => {}
            Err(e) => {
                let was = conn.send_replace(None).is_some();
                metrics.connected.set(0);
                // rumqttc's errors name the broker's answer or the socket's, never credentials.
                if was {
                    tracing::warn!(broker = %broker, error = %e, "MQTT connection lost; reconnecting");
                } else if !failing {
                    tracing::warn!(broker = %broker, error = %e,
                        "MQTT: cannot connect to the broker; retrying with backoff (up to 30 s)");
                } else {
                    tracing::debug!(broker = %broker, error = %e, "MQTT: still cannot connect");
                }
                failing = true;
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.cancelled() => return,
                }
                delay = (delay * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// A message on a capture topic: check it, then take the still on its own task (the event
/// loop must keep running meanwhile).
fn trigger(shared: &Arc<Shared>, topic: &str, payload: &[u8]) {
    let camera = match topics::camera_of_capture(&shared.cfg, topic) {
        Some(Ok(c)) => c,
        Some(Err(e)) => return shared.bad_message(topic, &e),
        None => return shared.bad_message(topic, "not a capture topic"),
    };
    let req = match topics::parse_capture(payload) {
        Ok(r) => r,
        Err(e) => return shared.bad_message(topic, &e),
    };
    let Ok(permit) = shared.triggers.clone().try_acquire_owned() else {
        return shared.bad_message(
            topic,
            &format!("{TRIGGERS_AT_ONCE} capture requests are running already"),
        );
    };
    let (s, topic) = (shared.clone(), topic.to_string());
    tokio::spawn(async move {
        let _permit = permit;
        let ops = &s.ops;
        match ops::cameras::camera(ops, &camera).await {
            Err(e) => s.bad_message(&topic, &e.to_string()),
            Ok(cam) if req.store => {
                let want = crate::capture::Want::default();
                match ops::frames::capture_and_keep_tagged(
                    ops,
                    &cam,
                    None,
                    want,
                    req.tag.as_deref(),
                )
                .await
                {
                    // Its `frame.stored` reaches the broker through the bus like any other.
                    Ok((snap, _)) => tracing::info!(camera = %camera, snapshot = %snap.id,
                        tag = snap.tag.as_deref().unwrap_or(""), "MQTT capture request: frame kept"),
                    // `capture.failed` is on the bus (and so on the events topic).
                    Err(e) => {
                        tracing::info!(camera = %camera, error = %e, "MQTT capture request failed")
                    }
                }
            }
            Ok(cam) => match ops::frames::live(ops, &cam, None).await {
                Ok(frame) => s.push(Item::Live {
                    camera,
                    jpeg: frame.bytes,
                }),
                Err(e) => {
                    tracing::info!(camera = %camera, error = %e, "MQTT capture request failed")
                }
            },
        }
    });
}

/// Queue → broker, while connected. After each (re)connect it first announces: the capture
/// subscription, `online`, every camera's discovery documents and state.
async fn publish_loop(
    shared: Arc<Shared>,
    client: AsyncClient,
    mut conn: watch::Receiver<Option<u64>>,
    token: CancellationToken,
) {
    let mut p = Publisher {
        shared: &shared,
        client: &client,
        docs: HashMap::new(),
    };
    let mut announced = 0u64;
    loop {
        let current = *conn.borrow_and_update();
        let Some(generation) = current else {
            tokio::select! {
                r = conn.changed() => if r.is_err() { return },
                _ = token.cancelled() => return,
            }
            continue;
        };
        if generation != announced {
            if let Err(e) = p.announce().await {
                tracing::warn!(error = %e, "MQTT: announcing the cameras failed; trying again at the next connection");
            }
            announced = generation;
            continue;
        }
        tokio::select! {
            item = shared.queue.pop() => {
                if let Err(e) = p.item(item).await {
                    tracing::debug!(error = %e, "MQTT: publishing failed");
                }
            }
            r = conn.changed() => if r.is_err() { return },
            _ = token.cancelled() => return,
        }
    }
}

struct Publisher<'a> {
    shared: &'a Shared,
    client: &'a AsyncClient,
    /// What each camera's state topic says now.
    docs: HashMap<CameraId, CameraDoc>,
}

impl Publisher<'_> {
    async fn send(
        &self,
        topic: String,
        qos: QoS,
        retain: bool,
        payload: impl Into<Vec<u8>>,
    ) -> anyhow::Result<()> {
        self.client.publish(topic, qos, retain, payload).await?;
        self.shared.ops.metrics.mqtt.published.inc();
        Ok(())
    }

    async fn announce(&mut self) -> anyhow::Result<()> {
        let cfg = &self.shared.cfg;
        self.client
            .subscribe(topics::capture_filter(cfg), QoS::AtLeastOnce)
            .await?;
        self.send(topics::status(cfg), QoS::AtLeastOnce, true, "online")
            .await?;
        let cameras = ops::cameras::list(&self.shared.ops).await?;
        self.docs.clear();
        for c in cameras {
            let doc = doc_of(&c);
            self.discovery(&doc).await?;
            self.state(&doc).await?;
            self.docs.insert(doc.camera.clone(), doc);
        }
        Ok(())
    }

    async fn discovery(&self, doc: &CameraDoc) -> anyhow::Result<()> {
        let cfg = &self.shared.cfg;
        if let Some(topics) = topics::discovery_topics(cfg, &doc.camera) {
            let payloads = topics::discovery_payloads(cfg, doc);
            for (t, p) in topics.into_iter().zip(payloads) {
                self.send(t, QoS::AtLeastOnce, true, serde_json::to_vec(&p)?)
                    .await?;
            }
        }
        Ok(())
    }

    async fn state(&self, doc: &CameraDoc) -> anyhow::Result<()> {
        let topic = topics::state(&self.shared.cfg, &doc.camera);
        self.send(topic, QoS::AtLeastOnce, true, serde_json::to_vec(doc)?)
            .await
    }

    /// The camera's document, read from the database when this run has not seen it yet
    /// (`None`: it is gone).
    async fn doc(
        &mut self,
        camera: &CameraId,
        reload: bool,
    ) -> anyhow::Result<Option<&mut CameraDoc>> {
        if reload || !self.docs.contains_key(camera) {
            match ops::cameras::get(&self.shared.ops, camera).await {
                Ok(v) => {
                    self.docs.insert(camera.clone(), doc_of(&v));
                }
                Err(crate::error::OpError::NotFound(_)) => {
                    self.docs.remove(camera);
                    return Ok(None);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(self.docs.get_mut(camera))
    }

    async fn item(&mut self, item: Item) -> anyhow::Result<()> {
        let cfg = &self.shared.cfg;
        let event = match item {
            Item::Live { camera, jpeg } => {
                return self
                    .send(topics::snapshot(cfg, &camera), QoS::AtMostOnce, true, jpeg)
                    .await
            }
            Item::Event(e) => e,
        };
        let camera = event.camera().clone();
        match &*event {
            Event::FrameStored { url, taken_at, .. } => {
                // The JPEG from the store (the page cache, usually): the bus carries no bytes.
                let path = url.strip_prefix("/media/snapshots/").unwrap_or(url);
                match self.shared.ops.store.read_frame(path).await {
                    Ok(jpeg) => {
                        self.send(topics::snapshot(cfg, &camera), QoS::AtMostOnce, true, jpeg)
                            .await?
                    }
                    // Pruned or removed meanwhile: the event still goes out.
                    Err(e) => {
                        tracing::debug!(path, error = %e, "MQTT: frame file gone before it was published")
                    }
                }
                let taken_at = *taken_at;
                if let Some(doc) = self.doc(&camera, false).await? {
                    let newer = doc.last_frame_at.is_none_or(|t| t < taken_at);
                    if newer {
                        doc.last_frame_at = Some(taken_at);
                        doc.state = crate::models::CameraState::Online;
                        doc.last_error = None;
                        let doc = doc.clone();
                        self.state(&doc).await?;
                    }
                }
            }
            Event::CameraStateChanged { to, last_error, .. } => {
                let (to, last_error) = (*to, last_error.clone());
                if let Some(doc) = self.doc(&camera, false).await? {
                    doc.state = to;
                    doc.last_error = last_error;
                    let doc = doc.clone();
                    self.state(&doc).await?;
                }
            }
            Event::CameraChanged {
                change: Change::Deleted,
                ..
            } => {
                self.docs.remove(&camera);
                // Empty retained messages remove the entities from HA and the retained
                // frame and state from the broker.
                let mut gone = vec![topics::snapshot(cfg, &camera), topics::state(cfg, &camera)];
                gone.extend(topics::discovery_topics(cfg, &camera).into_iter().flatten());
                for t in gone {
                    self.send(t, QoS::AtLeastOnce, true, Vec::new()).await?;
                }
            }
            Event::CameraChanged { .. } => {
                // Created, or edited (a rename changes the device's name): announce again.
                if let Some(doc) = self.doc(&camera, true).await? {
                    let doc = doc.clone();
                    self.discovery(&doc).await?;
                    self.state(&doc).await?;
                }
            }
            _ => {}
        }
        self.send(
            topics::events(cfg, &camera),
            QoS::AtLeastOnce,
            false,
            serde_json::to_vec(&event.to_json())?,
        )
        .await
    }
}

fn doc_of(v: &crate::models::CameraView) -> CameraDoc {
    CameraDoc {
        camera: v.id.clone(),
        name: v.name.clone(),
        state: v.status.state,
        last_error: v.status.last_error.clone(),
        last_frame_at: v.last_frame_at,
        vendor: v.vendor.as_str().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_drops_the_oldest() {
        let q = Queue::new(2);
        let live = |n: u8| Item::Live {
            camera: CameraId::parse("c").unwrap(),
            jpeg: Bytes::from(vec![n]),
        };
        assert!(!q.push(live(1)));
        assert!(!q.push(live(2)));
        assert!(q.push(live(3)));
        let left: Vec<u8> = q
            .items
            .lock()
            .unwrap()
            .iter()
            .map(|i| match i {
                Item::Live { jpeg, .. } => jpeg[0],
                Item::Event(_) => 0,
            })
            .collect();
        assert_eq!(left, [2, 3]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_tally_says_its_count_at_most_once_a_minute() {
        let t = Tally::default();
        assert_eq!(t.add(1), Some(1), "the first one is said at once");
        assert_eq!(t.add(5), None);
        tokio::time::advance(LOG_EVERY).await;
        assert_eq!(t.add(1), Some(6));
    }
}
