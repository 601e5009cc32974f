//! Prometheus metrics, served at `/metrics` in the text exposition format.
//!
//! One [`Metrics`] per process, shared through `AppState`. Capture counts and durations are
//! recorded by `capture::Capturer` (every capture, live or scheduled), lateness and missed slots
//! by the scheduler, pruning by retention. Labels carry camera ids, never URLs or credentials.
//!
//! Per-camera series (`heldar_captures_total{camera,…}`, `heldar_camera_up{camera}`,
//! `heldar_camera_last_success_timestamp_seconds{camera}`) live as long as the camera: the
//! delete operation calls [`Metrics::forget_camera`], and an outcome of a capture that started
//! before the delete is not allowed to bring them back. In a fleet a camera's gauges
//! (`heldar_camera_up`, `heldar_camera_last_success_timestamp_seconds`, `heldar_camera_offline`)
//! are exported only by the node holding it: a node that gives a camera up (or loses its lease)
//! calls [`Metrics::camera_left`], which drops them, so an alert on a stale last success does not
//! fire on the node the camera left. The per-camera counters stay: they count what this node
//! did, and sum across nodes. `heldar_build_info` and
//! `heldar_start_time_seconds` say what is running and since when. docs/monitoring.md lists
//! every series and the example alert rules and dashboard built on them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use chrono::{DateTime, Utc};

use crate::models::CameraId;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CaptureLabels {
    pub camera: String,
    /// `ok` or a capture error code (`timeout`, `auth_failed`, …).
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CameraLabels {
    pub camera: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    /// The crate version (`heldar --version`).
    pub version: String,
    /// `release` or `debug`.
    pub profile: String,
    /// The CPU architecture the binary was built for.
    pub arch: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// `age`, `size` or `free_disk`.
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SkipLabels {
    pub camera: String,
    /// `dark` or `unchanged`.
    pub reason: String,
}

pub struct Metrics {
    registry: Registry,
    /// Slots whose frame was captured and not kept (`skip_dark`, `skip_unchanged`).
    pub skipped_slots: Family<SkipLabels, Counter>,
    pub captures: Family<CaptureLabels, Counter>,
    pub capture_duration: Histogram,
    pub schedule_lateness: Histogram,
    pub missed_slots: Counter,
    pub slots_fired: Counter,
    pub auth_backoff_skips: Counter,
    /// Scheduled captures skipped while a camera is in unreachable backoff (`ops::backoff`).
    pub unreachable_backoff_skips: Counter,
    pub store_failures: Counter,
    /// Rows the last reconciliation kept although their frames were missing, because the
    /// storage looked wrong (`ops::reconcile`'s mass-removal guard); 0 when it did not.
    pub storage_missing_frames: Gauge,
    /// Slots missed because the database was unavailable past the outage buffer (also counted
    /// in `missed_slots`).
    pub db_outage_missed_slots: Counter,
    pub pruned: Family<ReasonLabels, Counter>,
    pub snapshot_bytes: Gauge,
    pub disk_free_bytes: Gauge,
    pub schedules_active: Gauge,
    /// HTTP connections being served, and those turned away at the connection limit.
    pub http_connections: Gauge,
    pub http_refused: Counter,
    /// 1 while a camera's last capture succeeded, 0 after a failed one.
    pub camera_up: Family<CameraLabels, Gauge>,
    /// Unix time of a camera's last successful capture.
    pub camera_last_success: Family<CameraLabels, Gauge<f64, AtomicU64>>,
    /// Outages opened per camera (`ops::outages`), and 1 while a camera is offline.
    pub camera_outages: Family<CameraLabels, Counter>,
    pub camera_offline: Family<CameraLabels, Gauge>,
    /// Webhook events dropped: a subscription's queue was full (its oldest went), or the
    /// webhook service fell behind the event bus.
    pub webhook_dropped: Counter,
    /// Webhook deliveries finished, by `result` (`delivered`, `failed`).
    pub webhook_deliveries: Family<ResultLabels, Counter>,
    /// Cameras deleted, and when: an in-flight capture that started earlier must not recreate
    /// their series. An entry goes as soon as a capture that started after the delete reports.
    forgotten: std::sync::Mutex<HashMap<String, std::time::Instant>>,
    /// Cameras this node stopped holding, and when: the outcome of a capture that started
    /// earlier (still in flight at the handover) must not bring their gauges back here.
    left: std::sync::Mutex<HashMap<String, std::time::Instant>>,
    /// The `result` labels seen per camera in `captures`, so [`Metrics::capture_counts`] can read
    /// the counters back (a `Family` cannot be iterated).
    started: std::time::Instant,
    capture_results: std::sync::Mutex<BTreeMap<String, BTreeSet<String>>>,
    /// Captures that gave no frame, all cameras.
    capture_failures: std::sync::atomic::AtomicU64,
    /// Raw capture durations, kept only when a benchmark asks (exact percentiles).
    duration_samples: std::sync::Mutex<Option<Vec<f64>>>,
    /// MQTT (`services::mqtt`).
    pub mqtt: MqttMetrics,
}

/// The MQTT service's series (docs/integrations.md, docs/monitoring.md).
#[derive(Default)]
pub struct MqttMetrics {
    /// 1 while connected to the broker.
    pub connected: Gauge,
    /// Messages handed to the MQTT client.
    pub published: Counter,
    /// Messages dropped (queue full, or the bus ran ahead of the service) instead of waiting.
    pub dropped: Counter,
    /// Messages on the capture topic that could not be used.
    pub bad_messages: Counter,
}

impl MqttMetrics {
    fn register(registry: &mut Registry) -> MqttMetrics {
        let m = MqttMetrics::default();
        registry.register(
            "heldar_mqtt_connected",
            "1 while Heldar is connected to the MQTT broker (HELDAR_MQTT_URL), else 0",
            m.connected.clone(),
        );
        registry.register(
            "heldar_mqtt_published",
            "MQTT messages handed to the broker connection",
            m.published.clone(),
        );
        registry.register(
            "heldar_mqtt_dropped",
            "MQTT messages dropped, oldest first, because the broker was away or slow",
            m.dropped.clone(),
        );
        registry.register(
            "heldar_mqtt_bad_messages",
            "Messages on PREFIX/+/capture that were not a capture request Heldar could carry out",
            m.bad_messages.clone(),
        );
        m
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let captures = Family::<CaptureLabels, Counter>::default();
        // 1 ms … ~33 s.
        let capture_duration = Histogram::new([
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0,
            30.0,
        ]);
        let schedule_lateness = Histogram::new([
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
        ]);
        let missed_slots = Counter::default();
        let skipped_slots = Family::<SkipLabels, Counter>::default();
        registry.register(
            "heldar_skipped_slots",
            "Slots fired whose frame was not kept: dark (skip_dark) or unchanged (skip_unchanged)",
            skipped_slots.clone(),
        );
        let slots_fired = Counter::default();
        let auth_backoff_skips = Counter::default();
        let unreachable_backoff_skips = Counter::default();
        let store_failures = Counter::default();
        let storage_missing_frames = Gauge::default();
        let db_outage_missed_slots = Counter::default();
        let pruned = Family::<ReasonLabels, Counter>::default();
        let snapshot_bytes = Gauge::default();
        let disk_free_bytes = Gauge::default();
        let schedules_active = Gauge::default();
        let camera_up = Family::<CameraLabels, Gauge>::default();
        let http_connections = Gauge::default();
        let http_refused = Counter::default();
        registry.register(
            "heldar_http_connections",
            "HTTP connections being served (at most HELDAR_HTTP_MAX_CONNECTIONS)",
            http_connections.clone(),
        );
        registry.register(
            "heldar_http_connections_refused",
            "HTTP connections answered 503 and closed because the connection limit was reached",
            http_refused.clone(),
        );
        let camera_last_success = Family::<CameraLabels, Gauge<f64, AtomicU64>>::default();
        let build_info = Family::<BuildLabels, Gauge>::default();
        build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_string(),
                profile: if cfg!(debug_assertions) {
                    "debug"
                } else {
                    "release"
                }
                .to_string(),
                arch: std::env::consts::ARCH.to_string(),
            })
            .set(1);
        let start_time = Gauge::<f64, AtomicU64>::default();
        start_time.set(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        );
        registry.register(
            "heldar_build_info",
            "Always 1; the labels say which Heldar is running",
            build_info,
        );
        registry.register(
            "heldar_start_time_seconds",
            "Unix time this Heldar process started",
            start_time,
        );
        registry.register(
            "heldar_camera_up",
            "1 if the camera's last capture succeeded, 0 if it failed",
            camera_up.clone(),
        );
        registry.register(
            "heldar_camera_last_success_timestamp_seconds",
            "Unix time of the camera's last successful capture since this process started",
            camera_last_success.clone(),
        );
        registry.register(
            "heldar_captures",
            "Captures by camera and result",
            captures.clone(),
        );
        registry.register(
            "heldar_capture_duration_seconds",
            "Time from capture start to a validated frame or an error",
            capture_duration.clone(),
        );
        registry.register(
            "heldar_schedule_lateness_seconds",
            "Actual capture start minus slot time",
            schedule_lateness.clone(),
        );
        registry.register(
            "heldar_missed_slots",
            "Slots skipped (downtime or an overrunning capture)",
            missed_slots.clone(),
        );
        registry.register(
            "heldar_slots_fired",
            "Slots claimed and captured by this process",
            slots_fired.clone(),
        );
        registry.register(
            "heldar_auth_backoff_skips",
            "Scheduled captures skipped while a camera is in auth-failure backoff",
            auth_backoff_skips.clone(),
        );
        registry.register(
            "heldar_unreachable_backoff_skips",
            "Scheduled captures skipped while a camera that keeps being unreachable or timing out is in backoff",
            unreachable_backoff_skips.clone(),
        );
        registry.register(
            "heldar_store_failures",
            "Captured frames that could not be stored",
            store_failures.clone(),
        );
        registry.register(
            "heldar_storage_missing_frames",
            "Frames the database lists that the last reconciliation did not find in the frame \
             storage and kept the rows of, because so many missing means the storage is not \
             this database's or is not mounted (0: none)",
            storage_missing_frames.clone(),
        );
        registry.register(
            "heldar_db_outage_missed_slots",
            "Slots missed because the database was unavailable longer than the outage buffer \
             holds (also in heldar_missed_slots)",
            db_outage_missed_slots.clone(),
        );
        registry.register(
            "heldar_snapshots_pruned",
            "Frames removed by retention",
            pruned.clone(),
        );
        registry.register(
            "heldar_snapshot_bytes",
            "Bytes of stored frames",
            snapshot_bytes.clone(),
        );
        registry.register(
            "heldar_disk_free_bytes",
            "Free bytes on the snapshots filesystem",
            disk_free_bytes.clone(),
        );
        registry.register(
            "heldar_schedules_active",
            "Enabled schedules in the scheduler's timer structure",
            schedules_active.clone(),
        );
        let mqtt = MqttMetrics::register(&mut registry);
        let camera_outages = Family::<CameraLabels, Counter>::default();
        let camera_offline = Family::<CameraLabels, Gauge>::default();
        let webhook_dropped = Counter::default();
        let webhook_deliveries = Family::<ResultLabels, Counter>::default();
        registry.register(
            "heldar_camera_outages",
            "Outages opened per camera: it went offline (HELDAR_OFFLINE_AFTER_FAILURES failures in a row, or no frame for HELDAR_OFFLINE_AFTER_S)",
            camera_outages.clone(),
        );
        registry.register(
            "heldar_camera_offline",
            "1 while the camera is offline (an outage is open), else 0",
            camera_offline.clone(),
        );
        registry.register(
            "heldar_webhook_dropped",
            "Webhook events dropped because a subscription's queue was full (oldest first) or the webhook service fell behind the event bus",
            webhook_dropped.clone(),
        );
        registry.register(
            "heldar_webhook_deliveries",
            "Webhook deliveries finished, by result (delivered, failed)",
            webhook_deliveries.clone(),
        );
        Metrics {
            mqtt,
            camera_outages,
            camera_offline,
            webhook_dropped,
            webhook_deliveries,
            registry,
            skipped_slots,
            captures,
            capture_duration,
            schedule_lateness,
            missed_slots,
            slots_fired,
            auth_backoff_skips,
            unreachable_backoff_skips,
            store_failures,
            storage_missing_frames,
            db_outage_missed_slots,
            pruned,
            snapshot_bytes,
            disk_free_bytes,
            schedules_active,
            http_connections,
            http_refused,
            camera_up,
            camera_last_success,
            forgotten: std::sync::Mutex::new(HashMap::new()),
            left: std::sync::Mutex::new(HashMap::new()),
            started: std::time::Instant::now(),
            capture_results: std::sync::Mutex::new(BTreeMap::new()),
            capture_failures: std::sync::atomic::AtomicU64::new(0),
            duration_samples: std::sync::Mutex::new(None),
        }
    }

    /// Record one capture's duration.
    pub fn observe_capture(&self, secs: f64) {
        self.capture_duration.observe(secs);
        if let Some(v) = self.duration_samples.lock().expect("samples lock").as_mut() {
            v.push(secs);
        }
    }

    /// Start keeping raw capture durations (benchmarks).
    pub fn keep_duration_samples(&self) {
        *self.duration_samples.lock().expect("samples lock") = Some(Vec::new());
    }

    /// The raw capture durations kept so far.
    pub fn duration_samples(&self) -> Vec<f64> {
        self.duration_samples
            .lock()
            .expect("samples lock")
            .clone()
            .unwrap_or_default()
    }

    pub fn capture(&self, camera: &str, result: &str) {
        if result != "ok" {
            self.capture_failures
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        {
            let mut seen = self.capture_results.lock().expect("capture results lock");
            let results = seen.entry(camera.to_string()).or_default();
            if !results.contains(result) {
                results.insert(result.to_string());
            }
        }
        self.captures
            .get_or_create(&CaptureLabels {
                camera: camera.to_string(),
                result: result.to_string(),
            })
            .inc();
    }

    /// Captures that gave no frame since start-up, all cameras.
    pub fn capture_failures(&self) -> u64 {
        self.capture_failures
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Record a capture's outcome in the camera's `up` and last-success gauges. `started` is
    /// when the capture began: the outcome of one that began before the camera was deleted
    /// is dropped (and the counter series it just recreated removed again).
    pub fn camera_outcome(
        &self,
        camera: &CameraId,
        ok: bool,
        started: impl Into<std::time::Instant>,
        at: DateTime<Utc>,
    ) {
        let started = started.into();
        {
            let mut forgotten = self.forgotten.lock().expect("forgotten lock");
            if let Some(deleted) = forgotten.get(camera.as_str()) {
                if started <= *deleted {
                    drop(forgotten);
                    self.remove_camera_series(camera.as_str());
                    return;
                }
                forgotten.remove(camera.as_str());
            }
        }
        {
            let mut left = self.left.lock().expect("left lock");
            if let Some(at) = left.get(camera.as_str()) {
                if started <= *at {
                    return;
                }
                left.remove(camera.as_str());
            }
        }
        let labels = CameraLabels {
            camera: camera.as_str().to_string(),
        };
        self.camera_up.get_or_create(&labels).set(i64::from(ok));
        if ok {
            self.camera_last_success
                .get_or_create(&labels)
                .set(at.timestamp_millis() as f64 / 1000.0);
        }
    }

    /// Drop every series of a deleted camera, so `/metrics` stops exporting it now rather than
    /// at the next restart.
    pub fn forget_camera(&self, camera: &CameraId) {
        self.forgotten
            .lock()
            .expect("forgotten lock")
            .insert(camera.as_str().to_string(), std::time::Instant::now());
        self.remove_camera_series(camera.as_str());
    }

    /// This node no longer holds `camera` (it gave the lease back, lost it, or is draining):
    /// stop exporting its gauges, which now come from the node that holds it. Its counters
    /// stay (what this node captured of it; they sum across nodes). A capture that started
    /// before this and reports later does not set the gauges again.
    pub fn camera_left(&self, camera: &CameraId) {
        self.left
            .lock()
            .expect("left lock")
            .insert(camera.as_str().to_string(), std::time::Instant::now());
        let labels = CameraLabels {
            camera: camera.as_str().to_string(),
        };
        self.camera_up.remove(&labels);
        self.camera_last_success.remove(&labels);
        self.camera_offline.remove(&labels);
    }

    fn remove_camera_series(&self, camera: &str) {
        let results = self
            .capture_results
            .lock()
            .expect("capture results lock")
            .remove(camera)
            .unwrap_or_default();
        for result in results {
            self.captures.remove(&CaptureLabels {
                camera: camera.to_string(),
                result,
            });
        }
        let labels = CameraLabels {
            camera: camera.to_string(),
        };
        self.camera_up.remove(&labels);
        self.camera_last_success.remove(&labels);
        for reason in ["dark", "unchanged"] {
            self.skipped_slots.remove(&SkipLabels {
                camera: camera.to_string(),
                reason: reason.to_string(),
            });
        }
        self.camera_outages.remove(&labels);
        self.camera_offline.remove(&labels);
    }

    /// Time since this process's metrics started (the app is built once per process).
    pub fn uptime(&self) -> std::time::Duration {
        self.started.elapsed()
    }

    /// A camera's captures since start-up, read from the `heldar_captures` counters that
    /// `/metrics` exports: `(ok, failed)`.
    pub fn capture_counts(&self, camera: &str) -> (u64, u64) {
        let results = self
            .capture_results
            .lock()
            .expect("capture results lock")
            .get(camera)
            .cloned()
            .unwrap_or_default();
        let (mut ok, mut failed) = (0, 0);
        for result in results {
            let labels = CaptureLabels {
                camera: camera.to_string(),
                result,
            };
            let n = self.captures.get(&labels).map_or(0, |c| c.get());
            if labels.result == "ok" {
                ok += n;
            } else {
                failed += n;
            }
        }
        (ok, failed)
    }

    /// A slot of `camera` skipped for `reason` (`dark`, `unchanged`).
    pub fn skipped(&self, camera: &CameraId, reason: &str) {
        self.skipped_slots
            .get_or_create(&SkipLabels {
                camera: camera.as_str().to_string(),
                reason: reason.to_string(),
            })
            .inc();
    }

    pub fn pruned(&self, reason: &str, n: u64) {
        self.pruned
            .get_or_create(&ReasonLabels {
                reason: reason.to_string(),
            })
            .inc_by(n);
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deleted_camera_is_not_brought_back_by_a_capture_that_started_before() {
        let m = Metrics::new();
        let cam = CameraId::parse("c1").unwrap();
        let early = std::time::Instant::now();
        m.capture("c1", "ok");
        m.camera_outcome(&cam, true, early, Utc::now());
        assert!(m.encode().contains(r#"heldar_camera_up{camera="c1"} 1"#));
        m.forget_camera(&cam);
        assert!(!m.encode().contains("c1"), "{}", m.encode());
        // The in-flight capture that started before the delete reports now.
        m.capture("c1", "timeout");
        m.camera_outcome(&cam, false, early, Utc::now());
        assert!(!m.encode().contains("c1"), "{}", m.encode());
        // A capture of a camera re-created under the same id counts again.
        let later = std::time::Instant::now();
        m.capture("c1", "ok");
        m.camera_outcome(&cam, true, later, Utc::now());
        let text = m.encode();
        assert!(
            text.contains(r#"heldar_camera_up{camera="c1"} 1"#),
            "{text}"
        );
        assert_eq!(m.capture_counts("c1"), (1, 0));
    }

    #[test]
    fn a_camera_this_node_gave_up_stops_exporting_its_gauges_here() {
        let m = Metrics::new();
        let cam = CameraId::parse("cam3").unwrap();
        let early = std::time::Instant::now();
        m.capture("cam3", "ok");
        m.camera_outcome(&cam, true, early, Utc::now());
        m.camera_offline
            .get_or_create(&CameraLabels {
                camera: "cam3".into(),
            })
            .set(0);
        let text = m.encode();
        assert!(
            text.contains(r#"heldar_camera_up{camera="cam3"} 1"#),
            "{text}"
        );
        m.camera_left(&cam);
        let text = m.encode();
        for series in [
            "heldar_camera_up{",
            "heldar_camera_last_success_timestamp_seconds{",
            "heldar_camera_offline{",
        ] {
            assert!(!text.contains(series), "{series} still exported:\n{text}");
        }
        // The counters stay: they count what this node captured.
        assert!(
            text.contains(r#"heldar_captures_total{camera="cam3",result="ok"} 1"#),
            "{text}"
        );
        // A capture in flight at the handover reports late: no gauge comes back.
        m.camera_outcome(&cam, true, early, Utc::now());
        assert!(!m.encode().contains("heldar_camera_up{"), "{}", m.encode());
        // The camera comes back to this node later: its captures set the gauges again.
        m.camera_outcome(&cam, false, std::time::Instant::now(), Utc::now());
        assert!(m.encode().contains(r#"heldar_camera_up{camera="cam3"} 0"#));
    }
}
