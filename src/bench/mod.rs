//! `heldar bench`: N in-process fake HTTP cameras serving real JPEGs, M schedules at interval I,
//! run for D seconds through the real application — scheduler, capture, store, database —
//! and report what users judge us on: slots due vs captured, lateness, throughput, cost.
//!
//! Before that, a raw-limit baseline fetches the same cameras and writes the frames (temp file +
//! rename) in a tight loop with no scheduler and no database: the ceiling of this machine, so
//! our throughput is reported as a ratio of it, measured in the same run.
//!
//! Counting is done from the database afterwards ([`stats`]): every stored frame is assigned to
//! its slot; a slot with two frames would be a duplicate and is reported as such.
//!
//! With `broken` > 0, that many dead cameras ([`crate::fakecam::dead`]: hanging, dripping one
//! byte at a time, or never completing the connection) run beside the healthy ones, one schedule
//! each at the same interval. Slots, lateness and throughput are then the healthy cameras' only:
//! the question is whether the dead ones cost the healthy ones anything.
//!
//! Calendar schedules (issue 17, docs/schedules.md): with `align_zone`, every schedule is
//! aligned to the clock in that zone (`align: true`, first slot on a local multiple of the
//! interval), so the scheduler's calendar path ([`crate::slot::Plan`]) advances every slot;
//! with `idle_windowed` > 0, that many more schedules are added on the same cameras whose daily
//! window opens hours after the run ends. They are not counted in the slots: the report says
//! how many of them fired (it must be none), and lateness and CPU say whether they cost the
//! busy ones anything.

pub mod nodes;
pub mod stats;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, SubsecRound, Utc};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::app::{Application, BuildOptions};
use crate::camera::mask::mask_url;
use crate::config::Config;
use crate::db;
use crate::fakecam::dead::{DeadCamera, DeadMix, DRIP_EVERY};
use crate::fakecam::{pattern, FakeAuth, FakeCamera, FrameSupply};
use crate::models::{new_id, CameraCreate, CameraId, CameraSpec, Schedule};
use crate::slot::spec::Calendar;
use stats::{percentile, slot_of, slots_due, Planned};

#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub cameras: usize,
    pub schedules: usize,
    pub interval_s: u64,
    pub duration_s: f64,
    pub frame_kb: usize,
    pub fsync: bool,
    pub concurrency: usize,
    /// Seconds of raw-limit baseline; 0 skips it.
    pub raw_s: f64,
    /// All first slots at the same instant instead of spread over the interval.
    pub aligned: bool,
    /// Capture every camera from this RTSP URL instead of fake HTTP cameras.
    pub rtsp_url: Option<String>,
    /// How the RTSP URL is read: `native` (in process) or `ffmpeg`.
    pub rtsp_source: crate::models::SnapshotSource,
    /// The cameras' `rtsp_frame_mode` with --rtsp-url: `exact` (the default) or `keyframe`.
    pub rtsp_frame_mode: Option<String>,
    /// Where the fake cameras run: in this process, or in a child `heldar fake-cameras` process
    /// (this binary), so the CPU reported is Heldar's alone — real cameras are other machines.
    pub cameras_at: CamerasAt,
    /// Print a progress line every few seconds (to stderr).
    pub progress: bool,
    /// Hold a subscription to the event bus that never reads: publishing must not slow capture.
    pub stalled_subscriber: bool,
    /// Dead cameras beside the healthy ones, one schedule each (not counted in the slots).
    pub broken: usize,
    /// How the dead cameras are dead.
    pub broken_kind: DeadMix,
    /// The capture deadline (as HELDAR_CAPTURE_TIMEOUT_S); `None` keeps the default.
    pub capture_timeout_s: Option<u64>,
    /// Ask for a live snapshot every this many milliseconds during the run (cameras in turn),
    /// and report their latency; 0: none.
    pub live_every_ms: u64,
    /// Make every schedule aligned to the clock in this IANA zone (`None`: plain intervals).
    pub align_zone: Option<String>,
    /// Schedules added on top of the busy ones whose daily window is closed for the whole run.
    pub idle_windowed: usize,
    /// Publish to this MQTT broker as the MQTT service does (`mqtt://host:port`), discovery
    /// included; `None`: MQTT off.
    pub mqtt_url: Option<String>,
    /// Run Heldar as this many `heldar serve` processes of `exe` on one database instead of in
    /// this process ([`nodes`]); `None`: in process.
    pub nodes: Option<NodesAt>,
    /// A PostgreSQL server (`postgres://…`) on which the bench makes a scratch database of its
    /// own, runs on it, and drops it at the end; `None`: a SQLite file in the bench's folder.
    pub postgres: Option<String>,
}

/// `--nodes`: how many `heldar serve` processes, and the binary to start.
#[derive(Debug, Clone)]
pub struct NodesAt {
    pub exe: std::path::PathBuf,
    pub count: usize,
}

impl BenchOptions {
    /// `cameras` healthy cameras with one schedule each at `interval_s`, in this process, no
    /// raw baseline, no fsync: the base the tests change what they need in.
    pub fn small(cameras: usize, interval_s: u64, duration_s: f64) -> BenchOptions {
        BenchOptions {
            cameras,
            schedules: cameras,
            interval_s,
            duration_s,
            frame_kb: 20,
            fsync: false,
            concurrency: Config::defaults_in("unused").capture_concurrency,
            raw_s: 0.0,
            aligned: false,
            rtsp_url: None,
            rtsp_source: crate::models::SnapshotSource::Native,
            rtsp_frame_mode: None,
            cameras_at: CamerasAt::InProcess,
            progress: false,
            stalled_subscriber: false,
            broken: 0,
            broken_kind: DeadMix::Mix,
            capture_timeout_s: None,
            live_every_ms: 0,
            align_zone: None,
            idle_windowed: 0,
            mqtt_url: None,
            nodes: None,
            postgres: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct BenchReport {
    /// `heldar serve` processes Heldar ran as (0: in the bench's own process).
    pub nodes: usize,
    /// The database: `sqlite` or `postgres`.
    pub database: String,
    pub cameras: usize,
    pub schedules: usize,
    /// The zone every schedule was aligned in (empty: plain intervals).
    pub align_zone: String,
    /// Idle windowed schedules on top (not counted in the slots).
    pub idle_windowed: usize,
    /// Idle windowed schedules that fired or were claimed (their `next_due_at` moved): must be 0.
    pub idle_fired: u64,
    pub interval_s: u64,
    pub duration_s: f64,
    pub frame_kb: usize,
    pub fsync: bool,
    pub source: String,
    pub cores: usize,
    pub slots_due: u64,
    pub captured: u64,
    pub missed: u64,
    pub duplicates: u64,
    pub missed_slots_counted: u64,
    /// Schedules ÷ interval: the capture rate the scenario asks for.
    pub offered_per_s: f64,
    pub captures_per_s: f64,
    pub lateness_p50_ms: f64,
    pub lateness_p99_ms: f64,
    pub lateness_max_ms: f64,
    /// When the latest slot was due, in seconds after the measured window began: one stall or
    /// a steady lag tell different stories.
    pub lateness_max_at_s: f64,
    pub capture_p50_ms: f64,
    pub capture_p99_ms: f64,
    pub cpu_seconds: f64,
    pub cpu_percent_of_one_core: f64,
    /// CPU of child processes (ffmpeg) during the run.
    pub child_cpu_seconds: f64,
    /// (process + ffmpeg children) CPU per captured frame: what Heldar costs per frame.
    pub cpu_ms_per_capture: f64,
    /// CPU to store one frame on this disk the way the store does (temp file, fsync as the run,
    /// link), on one thread with nothing else running: the floor under `cpu_ms_per_capture`
    /// that no scheduler or database work can go below.
    pub store_floor_ms_per_frame: f64,
    /// `cpu_ms_per_capture` minus that floor: Heldar's own cost per frame.
    pub cpu_ms_per_capture_above_floor: f64,
    /// CPU of the fake cameras' own process during the run (0 when they run in process, where
    /// it is part of `cpu_seconds`).
    pub cameras_cpu_seconds: f64,
    /// "in-process" or "child-process".
    pub cameras_at: String,
    pub peak_rss_mb: f64,
    pub bytes_written: u64,
    pub startup_to_ready_ms: f64,
    pub raw_captures_per_s: f64,
    pub ratio_to_raw: f64,
    /// Live snapshots asked during the run (`live_every_ms`), and their latency.
    pub live_requests: u64,
    pub live_failures: u64,
    pub live_p50_ms: f64,
    pub live_p99_ms: f64,
    /// Events published on the bus during the run.
    pub events_published: u64,
    /// With `stalled_subscriber`: how many events that subscriber lost by never reading.
    pub stalled_subscriber_missed: u64,
    /// With `mqtt_url`: messages handed to the broker connection during the run, messages
    /// dropped (queue full), and whether the connection was up at the end.
    pub mqtt: bool,
    pub mqtt_published: u64,
    pub mqtt_dropped: u64,
    pub mqtt_connected_at_end: bool,
    /// Dead cameras beside the healthy ones (their slots are not in `slots_due`).
    pub broken: usize,
    /// hang, drip, blackhole or mix.
    pub broken_kind: String,
    /// Captures that gave no frame during the run (the dead cameras' timeouts, mostly).
    pub capture_failures: u64,
    /// Native RTSP: frames decoded in process during the run (scheduled and live), and per
    /// such frame the H.264 pictures decoded and the decoding thread's CPU in OpenH264 and in
    /// the JPEG encoder (`capture::native::decode::STATS`): where a native frame's CPU goes.
    pub native_frames_decoded: u64,
    pub native_pictures_per_frame: f64,
    pub native_decode_cpu_ms_per_frame: f64,
    pub native_jpeg_cpu_ms_per_frame: f64,
}

/// Where `heldar bench` runs its fake cameras.
#[derive(Debug, Clone)]
pub enum CamerasAt {
    InProcess,
    /// A child `heldar fake-cameras` process started from this executable.
    ChildProcess(std::path::PathBuf),
}

/// The running fake cameras, wherever they are.
enum Fleet {
    None,
    InProcess(Vec<FakeCamera>, Vec<DeadCamera>),
    Child {
        child: std::process::Child,
        urls: Vec<String>,
    },
}

impl Fleet {
    async fn start(opts: &BenchOptions, frame: &Bytes) -> anyhow::Result<Fleet> {
        if opts.rtsp_url.is_some() {
            return Ok(Fleet::None);
        }
        match &opts.cameras_at {
            CamerasAt::InProcess => {
                let mut fakes = Vec::with_capacity(opts.cameras);
                for _ in 0..opts.cameras {
                    fakes.push(
                        FakeCamera::start(FakeAuth::None, FrameSupply::Static(frame.clone()))
                            .await?,
                    );
                }
                let mut dead = Vec::with_capacity(opts.broken);
                for i in 0..opts.broken {
                    let kind = opts.broken_kind.kind(i);
                    dead.push(DeadCamera::start(kind, frame.clone(), DRIP_EVERY).await?);
                }
                Ok(Fleet::InProcess(fakes, dead))
            }
            CamerasAt::ChildProcess(exe) => {
                use std::io::BufRead;
                use std::process::{Command, Stdio};
                let mut child = Command::new(exe)
                    .args(["fake-cameras", "--count"])
                    .arg(opts.cameras.to_string())
                    .arg("--frame-kb")
                    .arg(opts.frame_kb.to_string())
                    .arg("--broken")
                    .arg(opts.broken.to_string())
                    .arg("--broken-kind")
                    .arg(opts.broken_kind.as_str())
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::inherit())
                    .spawn()
                    .map_err(|e| {
                        anyhow::anyhow!("cannot start {} fake-cameras: {e}", exe.display())
                    })?;
                let stdout = child.stdout.take().expect("piped stdout");
                let line = tokio::task::spawn_blocking(move || {
                    let mut line = String::new();
                    std::io::BufReader::new(stdout)
                        .read_line(&mut line)
                        .map(|_| line)
                })
                .await??;
                let urls: Vec<String> = match line.strip_prefix("URLS ") {
                    Some(json) => serde_json::from_str(json.trim())?,
                    None => {
                        let _ = child.kill();
                        anyhow::bail!("the fake-cameras process did not start (said {line:?})")
                    }
                };
                Ok(Fleet::Child { child, urls })
            }
        }
    }

    fn urls(&self) -> Vec<String> {
        match self {
            Fleet::None => Vec::new(),
            Fleet::InProcess(f, dead) => f
                .iter()
                .map(FakeCamera::snapshot_url)
                .chain(dead.iter().map(DeadCamera::snapshot_url))
                .collect(),
            Fleet::Child { urls, .. } => urls.clone(),
        }
    }

    /// CPU seconds the child process has used so far (0 in process).
    fn child_cpu(&self) -> f64 {
        match self {
            Fleet::Child { child, .. } => proc_cpu_seconds(child.id()),
            _ => 0.0,
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        if let Fleet::Child { child, .. } = self {
            drop(child.stdin.take()); // it exits when its stdin closes
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }
}

/// utime + stime of a running process, from /proc/PID/stat.
fn proc_cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    (ticks(11) + ticks(12)) / hz
}

fn cpu_seconds() -> f64 {
    cpu_of(nix::sys::resource::UsageWho::RUSAGE_SELF)
}

/// CPU of finished child processes (ffmpeg, for RTSP captures).
fn child_cpu_seconds() -> f64 {
    cpu_of(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
}

fn cpu_of(who: nix::sys::resource::UsageWho) -> f64 {
    use nix::sys::resource::getrusage;
    getrusage(who).map_or(0.0, |u| {
        let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
        t(u.user_time()) + t(u.system_time())
    })
}

/// Peak resident memory in MB (10^6 bytes; getrusage reports KiB).
fn peak_rss_mb() -> f64 {
    use nix::sys::resource::{getrusage, UsageWho};
    getrusage(UsageWho::RUSAGE_SELF).map_or(0.0, |u| u.max_rss() as f64 * 1024.0 / 1e6)
}

/// Run one scenario.
pub async fn run(opts: &BenchOptions) -> anyhow::Result<BenchReport> {
    anyhow::ensure!(
        opts.cameras > 0 && opts.schedules > 0,
        "--cameras and --schedules must be at least 1"
    );
    anyhow::ensure!(opts.interval_s > 0, "--interval must be at least 1 second");
    let frame = Bytes::from(pattern::sized_jpeg(opts.frame_kb));
    let mut report = BenchReport {
        cameras: opts.cameras,
        schedules: opts.schedules,
        interval_s: opts.interval_s,
        duration_s: opts.duration_s,
        frame_kb: frame.len() / 1000,
        fsync: opts.fsync,
        source: if opts.rtsp_url.is_some() {
            if opts.rtsp_source == crate::models::SnapshotSource::Native {
                "rtsp-native".into()
            } else {
                "rtsp-ffmpeg".into()
            }
        } else {
            "http".into()
        },
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        broken: opts.broken,
        broken_kind: opts.broken_kind.as_str().into(),
        align_zone: opts.align_zone.clone().unwrap_or_default(),
        idle_windowed: opts.idle_windowed,
        ..Default::default()
    };
    let fleet = Fleet::start(opts, &frame).await?;
    report.cameras_at = match fleet {
        Fleet::None => "none (rtsp)",
        Fleet::InProcess(..) => "in-process",
        Fleet::Child { .. } => "child-process",
    }
    .into();
    let mut urls = fleet.urls();
    let dead_urls = urls.split_off(urls.len().min(opts.cameras));
    let dir = tempfile::Builder::new().prefix("heldar-bench-").tempdir()?;
    if opts.raw_s > 0.0 && !urls.is_empty() {
        report.raw_captures_per_s = raw_baseline(&urls, &dir.path().join("raw"), opts).await?;
        let _ = std::fs::remove_dir_all(dir.path().join("raw"));
    }

    let mut config = Config::defaults_in(dir.path().join("data"));
    config.api_port = 0;
    config.min_free_disk_bytes = 0;
    config.retention_age = None;
    config.snapshot_fsync = opts.fsync;
    config.capture_concurrency = opts.concurrency;
    if let Some(t) = opts.capture_timeout_s {
        config.capture_timeout = Duration::from_secs(t.max(1));
    }
    if let Some(url) = &opts.mqtt_url {
        // As `heldar serve` would with HELDAR_MQTT_URL, under a prefix of its own.
        config.mqtt = crate::config::MqttConfig::from_args(&crate::config::MqttArgs {
            mqtt_url: Some(url.clone()),
            mqtt_prefix: "heldar-bench".into(),
            mqtt_discovery_prefix: "homeassistant".into(),
            mqtt_client_id: Some("heldar-bench".into()),
            ..Default::default()
        })?;
        report.mqtt = true;
    }
    config.prepare_dirs()?;
    // On PostgreSQL, a scratch database of the bench's own, dropped at the end (even on error).
    let scratch = match &opts.postgres {
        Some(server) => {
            let (url, name) = db::create_scratch_database(server)
                .await
                .map_err(|e| anyhow::anyhow!("--postgres {}: {e}", mask_url(server)))?;
            config.database_url = url;
            Some(name)
        }
        None => None,
    };
    report.database = if scratch.is_some() {
        "postgres"
    } else {
        "sqlite"
    }
    .into();
    let result = measure(
        config, opts, report, &fleet, &frame, &dir, &urls, &dead_urls,
    )
    .await;
    if let (Some(server), Some(name)) = (&opts.postgres, &scratch) {
        if let Err(e) = db::drop_scratch_database(server, name).await {
            tracing::warn!("dropping the bench's database {name}: {e}");
        }
    }
    result
}

/// Seed, run and count: [`run`] once its database, folder and cameras are ready.
#[allow(clippy::too_many_arguments)]
async fn measure(
    config: Config,
    opts: &BenchOptions,
    mut report: BenchReport,
    fleet: &Fleet,
    frame: &Bytes,
    dir: &tempfile::TempDir,
    urls: &[String],
    dead_urls: &[String],
) -> anyhow::Result<BenchReport> {
    let (planned, idle) = seed(&config, urls, dead_urls, opts).await?;

    let database_url = config.database_url.clone();
    let (from, until, mut durations) = match &opts.nodes {
        None => in_process(config, opts, &mut report, fleet).await?,
        Some(at) => {
            report.nodes = at.count;
            let cams0 = fleet.child_cpu();
            let first_slot = planned.values().map(|p| p.first_slot).min();
            let window = on_nodes(&config, opts, at, first_slot, &mut report).await?;
            report.cameras_cpu_seconds = fleet.child_cpu() - cams0;
            window
        }
    };
    let window = (until - from).num_milliseconds() as f64 / 1000.0;
    report.cpu_percent_of_one_core = 100.0 * report.cpu_seconds / window;

    // Count from the database: slots in [from, until - 1 s] (the last second's captures may
    // still have been in flight at the cut).
    let pool = db::connect(&database_url).await?;
    let cut = until - chrono::Duration::seconds(1);
    let mut lateness = Vec::new();
    let mut seen: HashSet<(String, i64)> = HashSet::new();
    for (id, p) in &planned {
        report.slots_due += slots_due(p, from, cut);
        for (taken_at, size) in db::snapshots::times_for_schedule(&pool, id).await? {
            let (slot, late_ms) = slot_of(p, taken_at);
            if slot < from || slot > cut {
                continue;
            }
            if !seen.insert((id.clone(), slot.timestamp_millis())) {
                report.duplicates += 1;
                continue;
            }
            report.captured += 1;
            report.bytes_written += size as u64;
            // |taken_at − slot|: a warm session's frame is taken just before its slot.
            let late_ms = late_ms.abs();
            if late_ms > report.lateness_max_ms {
                report.lateness_max_ms = late_ms;
                report.lateness_max_at_s = (slot - from).num_milliseconds() as f64 / 1000.0;
            }
            lateness.push(late_ms);
        }
    }
    // An idle schedule that fired, or whose slot was claimed, has moved from its planned first slot.
    for (id, first) in &idle {
        let row = db::schedules::get(&pool, id).await?;
        let moved = row.is_none_or(|s| s.last_fired_at.is_some() || s.next_due_at != Some(*first));
        let frames = db::snapshots::times_for_schedule(&pool, id).await?;
        if moved || !frames.is_empty() {
            report.idle_fired += 1;
        }
    }
    pool.close().await;
    report.missed = report.slots_due.saturating_sub(report.captured);
    // Captures per second of schedule time: the offered rate times the share of due slots
    // captured. Dividing by the wall-clock window instead read ~7% low on a 30 s run, since no
    // slot is due in the lead before the first one nor counted in the last second.
    report.offered_per_s = opts.schedules as f64 / opts.interval_s as f64;
    report.captures_per_s =
        report.offered_per_s * report.captured as f64 / report.slots_due.max(1) as f64;
    report.cpu_ms_per_capture =
        1000.0 * (report.cpu_seconds + report.child_cpu_seconds) / report.captured.max(1) as f64;
    lateness.sort_by(f64::total_cmp);
    report.lateness_p50_ms = percentile(&lateness, 50.0);
    report.lateness_p99_ms = percentile(&lateness, 99.0);
    durations.sort_by(f64::total_cmp);
    report.capture_p50_ms = percentile(&durations, 50.0) * 1000.0;
    report.capture_p99_ms = percentile(&durations, 99.0) * 1000.0;
    if report.raw_captures_per_s > 0.0 {
        report.ratio_to_raw = report.captures_per_s / report.raw_captures_per_s;
    }
    let floor_dir = dir.path().join("floor");
    let (bytes, fsync) = (frame.clone(), opts.fsync);
    report.store_floor_ms_per_frame =
        tokio::task::spawn_blocking(move || store_floor_ms(floor_dir, &bytes, fsync)).await??;
    report.cpu_ms_per_capture_above_floor =
        report.cpu_ms_per_capture - report.store_floor_ms_per_frame;
    Ok(report)
}

/// The measured window with Heldar built in this process: (from, until, capture durations in
/// seconds). Fills the report's CPU, memory and counters.
async fn in_process(
    config: Config,
    opts: &BenchOptions,
    report: &mut BenchReport,
    fleet: &Fleet,
) -> anyhow::Result<(DateTime<Utc>, DateTime<Utc>, Vec<f64>)> {
    // Start-up to ready: build the app, then until the scheduler holds every schedule.
    let t_build = Instant::now();
    let shutdown = CancellationToken::new();
    let app = Application::build(config, BuildOptions::default(), shutdown.clone()).await?;
    let state = app.state().clone();
    state.ops.metrics.keep_duration_samples();
    // A subscriber that never reads: the bus must drop what it cannot hold, never wait for it.
    let mut stalled = opts
        .stalled_subscriber
        .then(|| state.ops.events.subscribe());
    let published0 = state.ops.events.published();
    let mqtt0 = (
        state.ops.metrics.mqtt.published.get(),
        state.ops.metrics.mqtt.dropped.get(),
    );
    let server = tokio::spawn(app.run_until_stopped());
    let all_schedules = opts.schedules + opts.broken + opts.idle_windowed;
    while state.ops.metrics.schedules_active.get() < all_schedules as i64 {
        anyhow::ensure!(
            t_build.elapsed() < Duration::from_secs(120),
            "the scheduler did not load the schedules"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    report.startup_to_ready_ms = t_build.elapsed().as_secs_f64() * 1000.0;

    let from = Utc::now();
    // Capture durations count from here, as lateness and CPU do: captures made while the app was
    // still starting (and loading 100,000 schedules) are start-up's cost, reported above as
    // start-up to ready, not the steady state's.
    state.ops.metrics.keep_duration_samples();
    let failures0 = state.ops.metrics.capture_failures();
    let cpu0 = cpu_seconds();
    let decode0 = crate::capture::native::decode::STATS.totals();
    let child0 = child_cpu_seconds();
    let cams0 = fleet.child_cpu();
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs_f64(opts.duration_s);
    // Live snapshots beside the schedules: what a dashboard viewer waits.
    let live_probe = (opts.live_every_ms > 0).then(|| {
        let ops = state.ops.clone();
        let (every, n) = (Duration::from_millis(opts.live_every_ms), opts.cameras);
        tokio::spawn(async move {
            let (mut took, mut failed) = (Vec::new(), 0u64);
            let mut tick = tokio::time::interval(every);
            for i in 0.. {
                tick.tick().await;
                if Instant::now() >= end {
                    break;
                }
                let Ok(id) = CameraId::parse(&format!("bench{:05}", i % n)) else {
                    break;
                };
                let Ok(camera) = crate::ops::cameras::camera(&ops, &id).await else {
                    break;
                };
                let t = Instant::now();
                match crate::ops::frames::live(&ops, &camera, None).await {
                    Ok(_) => took.push(t.elapsed().as_secs_f64() * 1000.0),
                    Err(_) => failed += 1,
                }
            }
            (took, failed)
        })
    });
    let mut next_progress = t0 + Duration::from_secs(5);
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        tokio::time::sleep(next_progress.min(end) - now).await;
        if opts.progress && Instant::now() >= next_progress {
            eprintln!(
                "bench: t={:>4.0}s fired={} missed={} cpu={:.1}s",
                t0.elapsed().as_secs_f64(),
                state.ops.metrics.slots_fired.get(),
                state.ops.metrics.missed_slots.get(),
                cpu_seconds() - cpu0
            );
            next_progress += Duration::from_secs(5);
        }
    }
    let until = Utc::now();
    report.cpu_seconds = cpu_seconds() - cpu0;
    let decode1 = crate::capture::native::decode::STATS.totals();
    let frames = decode1.gops - decode0.gops;
    report.native_frames_decoded = frames;
    if frames > 0 {
        let per = |a: u64, b: u64| (a - b) as f64 / frames as f64;
        report.native_pictures_per_frame = per(decode1.pictures, decode0.pictures);
        report.native_decode_cpu_ms_per_frame =
            per(decode1.decode_cpu_us, decode0.decode_cpu_us) / 1000.0;
        report.native_jpeg_cpu_ms_per_frame =
            per(decode1.jpeg_cpu_us, decode0.jpeg_cpu_us) / 1000.0;
    }
    if let Some(probe) = live_probe {
        let (mut took, failed) = probe.await?;
        took.sort_by(f64::total_cmp);
        report.live_requests = took.len() as u64 + failed;
        report.live_failures = failed;
        report.live_p50_ms = percentile(&took, 50.0);
        report.live_p99_ms = percentile(&took, 99.0);
    }
    report.child_cpu_seconds = child_cpu_seconds() - child0;
    report.cameras_cpu_seconds = fleet.child_cpu() - cams0;
    report.missed_slots_counted = state.ops.metrics.missed_slots.get();
    report.capture_failures = state.ops.metrics.capture_failures() - failures0;
    report.events_published = state.ops.events.published() - published0;
    report.mqtt_published = state.ops.metrics.mqtt.published.get() - mqtt0.0;
    report.mqtt_dropped = state.ops.metrics.mqtt.dropped.get() - mqtt0.1;
    report.mqtt_connected_at_end = state.ops.metrics.mqtt.connected.get() == 1;
    if let Some(rx) = stalled.as_mut() {
        use tokio::sync::broadcast::error::TryRecvError;
        report.stalled_subscriber_missed = match rx.try_recv() {
            Err(TryRecvError::Lagged(n)) => n,
            _ => 0,
        };
    }
    let durations = state.ops.metrics.duration_samples();
    shutdown.cancel();
    server.await??;
    report.peak_rss_mb = peak_rss_mb();
    Ok((from, until, durations))
}

/// The measured window with Heldar as `at.count` `heldar serve` processes ([`nodes`]): (from,
/// until, no capture durations). Fills the report's CPU and memory.
async fn on_nodes(
    config: &Config,
    opts: &BenchOptions,
    at: &NodesAt,
    first_slot: Option<DateTime<Utc>>,
    report: &mut BenchReport,
) -> anyhow::Result<(DateTime<Utc>, DateTime<Utc>, Vec<f64>)> {
    anyhow::ensure!(at.count >= 1, "--nodes must be at least 1");
    anyhow::ensure!(
        opts.mqtt_url.is_none() && !opts.stalled_subscriber && opts.live_every_ms == 0,
        "--nodes runs `heldar serve` processes: --mqtt-url, --stalled-subscriber and \
         --live-every-ms measure the in-process application only"
    );
    let t_build = Instant::now();
    let mut nodes = nodes::Nodes::start(&at.exe, at.count, config, NODES_LEASE_S)?;
    let pool = db::connect(&config.database_url).await?;
    nodes.wait_split(&pool, opts.cameras + opts.broken).await?;
    report.startup_to_ready_ms = t_build.elapsed().as_secs_f64() * 1000.0;
    // The window opens at the first slot: the seed's lead leaves the processes room to start
    // (5 s), and nodes that were ready sooner would otherwise count idle seconds before it as
    // part of the window, and end it with too few slots in it.
    if let Some(wait) = first_slot.and_then(|t| (t - Utc::now()).to_std().ok()) {
        tokio::time::sleep(wait).await;
        nodes.check_alive()?;
    }
    let from = Utc::now();
    let cpu0 = nodes.cpu_seconds();
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs_f64(opts.duration_s);
    let mut next_progress = t0 + Duration::from_secs(5);
    while Instant::now() < end {
        tokio::time::sleep(next_progress.min(end) - Instant::now()).await;
        nodes.check_alive()?;
        if opts.progress && Instant::now() >= next_progress {
            let leases = db::nodes::leases(&pool, Utc::now()).await?;
            eprintln!(
                "bench: t={:>4.0}s nodes={} leased={} cpu={:.1}s",
                t0.elapsed().as_secs_f64(),
                at.count,
                leases.len(),
                nodes.cpu_seconds() - cpu0
            );
            next_progress += Duration::from_secs(5);
        }
    }
    let until = Utc::now();
    report.cpu_seconds = nodes.cpu_seconds() - cpu0;
    report.peak_rss_mb = nodes.peak_rss_mb();
    pool.close().await;
    nodes.stop().await;
    Ok((from, until, Vec::new()))
}

/// The lease period of the bench's nodes, seconds (HELDAR_LEASE_PERIOD_S's default).
const NODES_LEASE_S: u64 = 15;

/// Frames [`store_floor_ms`] writes.
const FLOOR_FRAMES: u32 = 300;

/// This thread's CPU (user + system) to store one frame through [`FrameStore`], averaged over
/// [`FLOOR_FRAMES`] frames in a fresh directory. The kernel's share depends on the disk and the
/// filesystem, so it is measured on the machine and in the run it qualifies.
fn store_floor_ms(dir: std::path::PathBuf, frame: &[u8], fsync: bool) -> anyhow::Result<f64> {
    use nix::sys::resource::{getrusage, UsageWho};
    let thread_cpu = || -> anyhow::Result<f64> {
        let u = getrusage(UsageWho::RUSAGE_THREAD)?;
        let secs = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
        Ok(secs(u.user_time()) + secs(u.system_time()))
    };
    let store = crate::store::FrameStore::new(dir, fsync);
    let camera = CameraId::parse("floor").map_err(anyhow::Error::msg)?;
    let start = Utc::now().trunc_subsecs(3);
    let cpu0 = thread_cpu()?;
    for i in 0..FLOOR_FRAMES {
        let taken_at = start + chrono::Duration::milliseconds(i64::from(i));
        store.write_frame_blocking(&camera, taken_at, frame)?;
    }
    Ok(1000.0 * (thread_cpu()? - cpu0) / f64::from(FLOOR_FRAMES))
}

/// Register the cameras and schedules (first slots a little in the future, spread over the
/// interval unless `aligned`), and the dead cameras with one schedule each. Returns the healthy
/// schedules' plans (the only ones counted). With `align_zone` every schedule is aligned in
/// that zone, its first slot the first multiple of the interval on the zone's clock at or after
/// the start (all at the same instant, as with `aligned`). With `idle_windowed`, that many more
/// schedules whose window opens six hours from now: returned with their first slot, which must
/// not move during the run.
type Seeded = (HashMap<String, Planned>, Vec<(String, DateTime<Utc>)>);

async fn seed(
    config: &Config,
    urls: &[String],
    dead_urls: &[String],
    opts: &BenchOptions,
) -> anyhow::Result<Seeded> {
    let pool = db::connect(&config.database_url).await?;
    let sealer = crate::ops::secrets::open_sealer(&config.secret_key_file, &pool).await?;
    let now = Utc::now().trunc_subsecs(3);
    let mut ids = Vec::new();
    for i in 0..opts.cameras {
        let id = format!("bench{i:05}");
        let body = CameraCreate {
            id: id.clone(),
            main_stream_url: opts.rtsp_url.clone(),
            snapshot_url: urls.get(i).cloned(),
            snapshot_source: opts
                .rtsp_url
                .as_ref()
                .map(|_| opts.rtsp_source.as_str().to_string()),
            rtsp_frame_mode: opts.rtsp_frame_mode.clone(),
            ..CameraCreate::default()
        };
        let spec = sealer.seal_spec(&CameraSpec::from_create(body)?);
        db::cameras::insert(&pool, &spec, now).await?;
        ids.push(CameraId::parse(&id).map_err(anyhow::Error::msg)?);
    }
    let interval_ms = (opts.interval_s * 1000) as i64;
    // Leave room for seeding and start-up before the first slots, so no slot is already overdue
    // when the scheduler starts: at 101,000 schedules this machine took 2-5 s to insert them and
    // 2.8-3.4 s from build to ready (2026-11-30), so 10 s per 100,000 schedules.
    let mut lead_ms = 1000 + 100 * (opts.schedules + opts.idle_windowed) as i64 / 1000;
    if opts.rtsp_url.is_some() && opts.rtsp_source == crate::models::SnapshotSource::Native {
        // Warm sessions open as the app starts and need a keyframe (up to a GOP) first.
        lead_ms += 4000;
    }
    if opts.nodes.is_some() {
        // Processes start, migrate, register and split the cameras before the first slot.
        lead_ms += 5000;
    }
    let base = Utc::now().trunc_subsecs(3) + chrono::Duration::milliseconds(lead_ms);
    // Aligned in a zone: the calendar every schedule gets, and the first slot on its clock.
    let aligned_in = match &opts.align_zone {
        None => None,
        Some(zone) => {
            let cal = Calendar {
                timezone: Some(zone.clone()),
                align: Some(true),
                ..Calendar::default()
            };
            let plan = cal
                .plan(opts.interval_s as i64, true)
                .map_err(|e| anyhow::anyhow!("--align-zone: {}", e.message))?;
            let first = crate::slot::first_slot(&plan, None, base)
                .ok_or_else(|| anyhow::anyhow!("--align-zone: no slot ahead"))?;
            Some((cal, first))
        }
    };
    let base = aligned_in.as_ref().map_or(base, |(_, first)| *first);
    let mut planned = HashMap::new();
    let mut all = Vec::with_capacity(opts.schedules);
    for j in 0..opts.schedules {
        let offset = if opts.aligned || aligned_in.is_some() {
            0
        } else {
            interval_ms * j as i64 / opts.schedules as i64
        };
        let first = base + chrono::Duration::milliseconds(offset);
        let mut s = Schedule::every(
            new_id("sch"),
            ids[j % ids.len()].clone(),
            opts.interval_s as i64,
            first,
            now,
        );
        s.set_calendar(aligned_in.as_ref().map(|(c, _)| c.clone()));
        planned.insert(
            s.id.clone(),
            Planned {
                first_slot: first,
                interval_ms,
            },
        );
        all.push(s);
    }
    for (i, url) in dead_urls.iter().enumerate() {
        let id = format!("broken{i:05}");
        let body = CameraCreate {
            id: id.clone(),
            snapshot_url: Some(url.clone()),
            ..CameraCreate::default()
        };
        let spec = sealer.seal_spec(&CameraSpec::from_create(body)?);
        db::cameras::insert(&pool, &spec, now).await?;
        let offset = if opts.aligned || aligned_in.is_some() {
            0
        } else {
            interval_ms * i as i64 / dead_urls.len() as i64
        };
        let mut s = Schedule::every(
            new_id("sch"),
            CameraId::parse(&id).map_err(anyhow::Error::msg)?,
            opts.interval_s as i64,
            base + chrono::Duration::milliseconds(offset),
            now,
        );
        s.set_calendar(aligned_in.as_ref().map(|(c, _)| c.clone()));
        all.push(s);
    }
    // Idle windowed schedules: a one-hour daily window opening six hours from now, in the
    // alignment zone if there is one (aligned there too), so no slot of theirs falls in the run.
    let mut idle = Vec::with_capacity(opts.idle_windowed);
    if opts.idle_windowed > 0 {
        let zone = opts.align_zone.clone().unwrap_or_else(|| "UTC".into());
        let tz: chrono_tz::Tz = zone
            .parse()
            .map_err(|_| anyhow::anyhow!("--align-zone {zone:?} is not an IANA zone"))?;
        let open = (now + chrono::Duration::hours(6)).with_timezone(&tz);
        let close = open + chrono::Duration::hours(1);
        let cal = Calendar {
            timezone: Some(zone),
            align: opts.align_zone.is_some().then_some(true),
            active_from: Some(open.format("%H:%M").to_string()),
            active_to: Some(close.format("%H:%M").to_string()),
            ..Calendar::default()
        };
        let plan = cal
            .plan(opts.interval_s as i64, true)
            .map_err(|e| anyhow::anyhow!("--idle-windowed: {}", e.message))?;
        let first = crate::slot::first_slot(&plan, None, now)
            .ok_or_else(|| anyhow::anyhow!("--idle-windowed: the window never opens"))?;
        anyhow::ensure!(
            first > now + chrono::Duration::hours(5),
            "--idle-windowed: the window opens too soon ({first})"
        );
        for j in 0..opts.idle_windowed {
            // Written an hour ago: idle schedules are old ones. Rows changed within the scheduler's
            // re-read margin (a minute) are read again at every re-read, which would measure
            // 100,000 fresh rows being re-read, not idle schedules being idle.
            let mut s = Schedule::every(
                new_id("sch"),
                ids[j % ids.len()].clone(),
                opts.interval_s as i64,
                first,
                now - chrono::Duration::hours(1),
            );
            s.set_calendar(Some(cal.clone()));
            idle.push((s.id.clone(), first));
            all.push(s);
        }
    }
    db::schedules::insert_many(&pool, &all).await?;
    pool.close().await;
    Ok((planned, idle))
}

/// Fetch and write as fast as possible for `opts.raw_s` seconds; captures per second.
async fn raw_baseline(
    urls: &[String],
    dir: &std::path::Path,
    opts: &BenchOptions,
) -> anyhow::Result<f64> {
    std::fs::create_dir_all(dir)?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(4)
        .build()?;
    let urls: Arc<Vec<String>> = Arc::new(urls.to_vec());
    let next = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let end = Instant::now() + Duration::from_secs_f64(opts.raw_s);
    let mut tasks = tokio::task::JoinSet::new();
    // At most 64 workers, whatever the capture limit: more only contend on this machine's cores.
    for _ in 0..opts.concurrency.min(64) {
        let (client, urls, next, done, dir) = (
            client.clone(),
            urls.clone(),
            next.clone(),
            done.clone(),
            dir.to_path_buf(),
        );
        let fsync = opts.fsync;
        tasks.spawn(async move {
            while Instant::now() < end {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let url = &urls[n as usize % urls.len()];
                let Ok(resp) = client.get(url).send().await else {
                    continue;
                };
                let Ok(body) = resp.bytes().await else {
                    continue;
                };
                let path = dir.join(format!("{n}.jpg"));
                let wrote = tokio::task::spawn_blocking(move || {
                    use std::io::Write;
                    let tmp = path.with_extension("tmp");
                    let mut f = std::fs::File::create(&tmp)?;
                    f.write_all(&body)?;
                    if fsync {
                        f.sync_all()?;
                    }
                    std::fs::rename(&tmp, &path)
                })
                .await;
                if matches!(wrote, Ok(Ok(()))) {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    let t0 = Instant::now();
    while tasks.join_next().await.is_some() {}
    Ok(done.load(Ordering::Relaxed) as f64 / t0.elapsed().as_secs_f64().max(opts.raw_s))
}

impl BenchReport {
    /// The human table.
    pub fn table(&self) -> String {
        let rows = [
            (
                "scenario",
                format!(
                    "{} cameras, {} schedules every {} s, {} s, {} KB frames, {}, fsync {}",
                    self.cameras,
                    self.schedules,
                    self.interval_s,
                    self.duration_s,
                    self.frame_kb,
                    self.source,
                    self.fsync
                ),
            ),
            ("machine", format!("{} cores", self.cores)),
            (
                "heldar",
                format!(
                    "{} on {}",
                    match self.nodes {
                        0 => "in the bench's process".to_string(),
                        1 => "1 `heldar serve` process".to_string(),
                        n => format!("{n} `heldar serve` nodes (CPU and memory summed)"),
                    },
                    self.database
                ),
            ),
            (
                "calendar",
                format!(
                    "{}; {} idle windowed schedules (not counted below; {} fired)",
                    if self.align_zone.is_empty() {
                        "plain intervals".to_string()
                    } else {
                        format!("aligned in {}", self.align_zone)
                    },
                    self.idle_windowed,
                    self.idle_fired
                ),
            ),
            (
                "broken cameras",
                format!(
                    "{} ({}; not counted below; {} failed captures)",
                    self.broken, self.broken_kind, self.capture_failures
                ),
            ),
            ("slots due", self.slots_due.to_string()),
            (
                "captured",
                format!(
                    "{} ({:.2}%)",
                    self.captured,
                    100.0 * self.captured as f64 / self.slots_due.max(1) as f64
                ),
            ),
            (
                "missed",
                format!(
                    "{} (scheduler counted {})",
                    self.missed, self.missed_slots_counted
                ),
            ),
            ("duplicates", self.duplicates.to_string()),
            (
                "mqtt",
                match self.mqtt {
                    false => "off".to_string(),
                    true => format!(
                        "{} published, {} dropped, connected at the end: {}",
                        self.mqtt_published, self.mqtt_dropped, self.mqtt_connected_at_end
                    ),
                },
            ),
            (
                "events published",
                format!(
                    "{} (a stalled subscriber lost {})",
                    self.events_published, self.stalled_subscriber_missed
                ),
            ),
            (
                "captures/s",
                format!(
                    "{:.1} of {:.1} offered",
                    self.captures_per_s, self.offered_per_s
                ),
            ),
            (
                "lateness p50/p99/max",
                format!(
                    "{:.2} / {:.2} / {:.2} ms (max at {:.1} s)",
                    self.lateness_p50_ms,
                    self.lateness_p99_ms,
                    self.lateness_max_ms,
                    self.lateness_max_at_s
                ),
            ),
            (
                "capture p50/p99",
                if self.nodes > 0 {
                    "not measured (in each node's memory)".to_string()
                } else {
                    format!("{:.2} / {:.2} ms", self.capture_p50_ms, self.capture_p99_ms)
                },
            ),
            (
                "live snapshots p50/p99",
                format!(
                    "{:.2} / {:.2} ms ({} asked, {} failed)",
                    self.live_p50_ms, self.live_p99_ms, self.live_requests, self.live_failures
                ),
            ),
            (
                "process CPU",
                format!(
                    "{:.2} s ({:.1}% of one core)",
                    self.cpu_seconds, self.cpu_percent_of_one_core
                ),
            ),
            (
                "native decoding",
                format!(
                    "{} frames; per frame {:.1} pictures, {:.2} ms decoding, {:.2} ms JPEG (thread CPU)",
                    self.native_frames_decoded,
                    self.native_pictures_per_frame,
                    self.native_decode_cpu_ms_per_frame,
                    self.native_jpeg_cpu_ms_per_frame
                ),
            ),
            (
                "CPU per capture",
                format!(
                    "{:.2} ms (ffmpeg children {:.2} s)",
                    self.cpu_ms_per_capture, self.child_cpu_seconds
                ),
            ),
            (
                "store floor",
                format!(
                    "{:.2} ms per frame (Heldar above it: {:.2} ms)",
                    self.store_floor_ms_per_frame, self.cpu_ms_per_capture_above_floor
                ),
            ),
            (
                "fake cameras",
                format!(
                    "{} ({:.2} s CPU, not counted above)",
                    self.cameras_at, self.cameras_cpu_seconds
                ),
            ),
            ("peak RSS", format!("{:.1} MB", self.peak_rss_mb)),
            ("bytes written", self.bytes_written.to_string()),
            (
                "start-up to ready",
                format!("{:.0} ms", self.startup_to_ready_ms),
            ),
            (
                "raw limit",
                if self.raw_captures_per_s > 0.0 {
                    format!(
                        "{:.1} captures/s (we reach {:.0}%)",
                        self.raw_captures_per_s,
                        100.0 * self.ratio_to_raw
                    )
                } else {
                    "not measured".into()
                },
            ),
        ];
        rows.iter().map(|(k, v)| format!("{k:<22} {v}\n")).collect()
    }
}
