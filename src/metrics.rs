//! Prometheus metrics (DESIGN.md §12), served at `/metrics` in the text exposition format.
//!
//! One [`Metrics`] per process, shared through `AppState`. Capture counts and durations are
//! recorded by `capture::Capturer` (every capture, live or scheduled), lateness and missed slots
//! by the scheduler, pruning by retention. Labels carry camera ids, never URLs or credentials.

use std::collections::{BTreeMap, BTreeSet};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CaptureLabels {
    pub camera: String,
    /// `ok` or a capture error code (`timeout`, `auth_failed`, …).
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// `age`, `size` or `free_disk`.
    pub reason: String,
}

pub struct Metrics {
    registry: Registry,
    pub captures: Family<CaptureLabels, Counter>,
    pub capture_duration: Histogram,
    pub schedule_lateness: Histogram,
    pub missed_slots: Counter,
    pub slots_fired: Counter,
    pub auth_backoff_skips: Counter,
    pub store_failures: Counter,
    pub pruned: Family<ReasonLabels, Counter>,
    pub snapshot_bytes: Gauge,
    pub disk_free_bytes: Gauge,
    pub schedules_active: Gauge,
    /// The `result` labels seen per camera in `captures`, so [`Metrics::capture_counts`] can read
    /// the counters back (a `Family` cannot be iterated).
    started: std::time::Instant,
    capture_results: std::sync::Mutex<BTreeMap<String, BTreeSet<String>>>,
    /// Captures that gave no frame, all cameras.
    capture_failures: std::sync::atomic::AtomicU64,
    /// Raw capture durations, kept only when a benchmark asks (exact percentiles).
    duration_samples: std::sync::Mutex<Option<Vec<f64>>>,
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
        let slots_fired = Counter::default();
        let auth_backoff_skips = Counter::default();
        let store_failures = Counter::default();
        let pruned = Family::<ReasonLabels, Counter>::default();
        let snapshot_bytes = Gauge::default();
        let disk_free_bytes = Gauge::default();
        let schedules_active = Gauge::default();
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
            "heldar_store_failures",
            "Captured frames that could not be stored",
            store_failures.clone(),
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
        Metrics {
            registry,
            captures,
            capture_duration,
            schedule_lateness,
            missed_slots,
            slots_fired,
            auth_backoff_skips,
            store_failures,
            pruned,
            snapshot_bytes,
            disk_free_bytes,
            schedules_active,
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
