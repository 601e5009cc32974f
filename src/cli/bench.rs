//! `heldar bench`: the benchmark as a command of the release binary (see `bench` and
//! docs/benchmarks.md for the scenarios).

use std::process::ExitCode;

use clap::Args;

use crate::bench::{self, BenchOptions, CamerasAt};

#[derive(Args, Debug)]
pub struct Bench {
    /// Fake HTTP cameras to start.
    #[arg(long, default_value_t = 100)]
    cameras: usize,
    /// Schedules (spread over the cameras); default: one per camera.
    #[arg(long)]
    schedules: Option<usize>,
    /// Interval of every schedule, seconds (the bench allows below the API's 5 s minimum, to
    /// reach saturation with fewer cameras).
    #[arg(long, default_value_t = 5)]
    interval: u64,
    /// Measured run time, seconds.
    #[arg(long, default_value_t = 60.0)]
    duration: f64,
    /// Approximate JPEG size served by the fake cameras, kB (1,000 bytes).
    #[arg(long, default_value_t = 50)]
    frame_kb: usize,
    /// fsync each frame (as HELDAR_SNAPSHOT_FSYNC).
    #[arg(long, default_value = "true")]
    fsync: String,
    /// Captures in flight at once per lane (as HELDAR_CAPTURE_CONCURRENCY; default: auto, from
    /// the open-file limit).
    #[arg(long)]
    concurrency: Option<usize>,
    /// Seconds of the raw-limit baseline (fetch + write, no scheduler, no database); 0 skips it.
    #[arg(long, default_value_t = 10.0)]
    raw_seconds: f64,
    /// Put every schedule's first slot at the same instant (default: spread over the interval).
    #[arg(long)]
    aligned: bool,
    /// Capture every camera from this RTSP URL instead of fake HTTP cameras.
    #[arg(long)]
    rtsp_url: Option<String>,
    /// Ask for a live snapshot every N ms during the run (cameras in turn) and report the
    /// latency; 0: none.
    #[arg(long, default_value_t = 0)]
    live_every_ms: u64,
    /// How --rtsp-url is read: native (in process; warm sessions for intervals up to
    /// HELDAR_RTSP_WARM_MAX_INTERVAL_S) or ffmpeg (one process per capture).
    #[arg(long, default_value = "native", value_parser = ["native", "ffmpeg"])]
    source: String,
    /// The RTSP cameras' frame mode: exact (the newest frame at the slot, decoded from its
    /// keyframe forward) or keyframe (the newest keyframe: one picture decoded).
    #[arg(long, default_value = "exact", value_parser = ["exact", "keyframe"])]
    rtsp_frame_mode: String,
    /// Serve the fake cameras from this process instead of a child process (their CPU is then
    /// counted as Heldar's).
    #[arg(long)]
    cameras_in_process: bool,
    /// Hold a subscription to the event bus that never reads (publishing must not slow capture).
    #[arg(long)]
    stalled_subscriber: bool,
    /// Dead cameras to run beside the healthy ones, one schedule each at the same interval (the
    /// slots and lateness reported are then the healthy cameras' only).
    #[arg(long, default_value_t = 0)]
    broken: usize,
    /// How the dead cameras are dead: hang (accept, never answer), drip (one byte at a time),
    /// blackhole (the connection never completes) or mix (the three in turn).
    #[arg(long, default_value = "mix")]
    broken_kind: crate::fakecam::dead::DeadMix,
    /// The capture deadline, seconds (as HELDAR_CAPTURE_TIMEOUT_S; default 20).
    #[arg(long)]
    capture_timeout: Option<u64>,
    /// Make every schedule aligned to the clock in this IANA zone (docs/schedules.md): slots on
    /// the zone's multiples of the interval, all at the same instant (as --aligned).
    #[arg(long, value_name = "ZONE")]
    align_zone: Option<String>,
    /// Add this many schedules on top of the busy ones whose daily window stays closed for the
    /// whole run (it opens six hours from now): they must never fire nor cost the others anything.
    #[arg(long, value_name = "N", default_value_t = 0)]
    idle_windowed: usize,
    /// Publish to this MQTT broker as the MQTT service would (`mqtt://host:port`, one you
    /// started; prefix `heldar-bench`, Home Assistant discovery on).
    #[arg(long, value_name = "URL")]
    mqtt_url: Option<String>,
    /// Run Heldar as N `heldar serve` processes of this binary on one database (each its own
    /// node, splitting the cameras by lease; docs/fleet.md) instead of inside the bench's
    /// process. Their CPU and memory are summed; capture durations are not measured.
    #[arg(long, value_name = "N")]
    nodes: Option<usize>,
    /// Run on PostgreSQL: a server URL (`postgres://user:password@host/db`) whose role may
    /// create databases. The bench makes a scratch database of its own there and drops it at
    /// the end; default: a SQLite file in the bench's temporary folder. A URL with a password
    /// is better given as HELDAR_BENCH_POSTGRES than on the command line (`ps` shows that).
    #[arg(
        long,
        value_name = "URL",
        env = "HELDAR_BENCH_POSTGRES",
        hide_env_values = true
    )]
    postgres: Option<String>,
    /// Print one JSON object as the last line.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Bench) -> ExitCode {
    // First: the automatic capture concurrency is sized from this limit.
    // Thousands of cameras and frame files: as many descriptors as the hard limit allows.
    let _ = crate::fd_limit::raise_nofile();
    let fsync = match args.fsync.as_str() {
        "true" | "1" => true,
        "false" | "0" => false,
        other => {
            eprintln!("heldar bench: --fsync {other:?} must be true or false");
            return ExitCode::from(2);
        }
    };
    let opts = BenchOptions {
        cameras: args.cameras,
        schedules: args.schedules.unwrap_or(args.cameras),
        interval_s: args.interval,
        duration_s: args.duration,
        frame_kb: args.frame_kb,
        fsync,
        concurrency: args
            .concurrency
            .unwrap_or_else(crate::config::auto_capture_concurrency)
            .max(1),
        raw_s: args.raw_seconds,
        aligned: args.aligned,
        rtsp_url: args.rtsp_url,
        live_every_ms: args.live_every_ms,
        rtsp_source: if args.source == "ffmpeg" {
            crate::models::SnapshotSource::Rtsp
        } else {
            crate::models::SnapshotSource::Native
        },
        rtsp_frame_mode: Some(args.rtsp_frame_mode),
        cameras_at: if args.cameras_in_process {
            CamerasAt::InProcess
        } else {
            match std::env::current_exe() {
                Ok(exe) => CamerasAt::ChildProcess(exe),
                Err(e) => {
                    eprintln!("heldar bench: cannot find this executable to start the fake cameras ({e}); use --cameras-in-process");
                    return ExitCode::FAILURE;
                }
            }
        },
        progress: true,
        stalled_subscriber: args.stalled_subscriber,
        broken: args.broken,
        broken_kind: args.broken_kind,
        capture_timeout_s: args.capture_timeout,
        align_zone: args.align_zone,
        idle_windowed: args.idle_windowed,
        mqtt_url: args.mqtt_url,
        nodes: match args.nodes {
            None => None,
            Some(count) => match std::env::current_exe() {
                Ok(exe) => Some(bench::NodesAt { exe, count }),
                Err(e) => {
                    eprintln!("heldar bench: cannot find this executable to start the nodes ({e})");
                    return ExitCode::FAILURE;
                }
            },
        },
        postgres: args.postgres,
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("heldar bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(bench::run(&opts)) {
        Ok(report) => {
            print!("{}", report.table());
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string(&report).expect("report serialises")
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("heldar bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
