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
    /// Captures in flight at once (as HELDAR_CAPTURE_CONCURRENCY).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Seconds of the raw-limit baseline (fetch + write, no scheduler, no database); 0 skips it.
    #[arg(long, default_value_t = 10.0)]
    raw_seconds: f64,
    /// Put every schedule's first slot at the same instant (default: spread over the interval).
    #[arg(long)]
    aligned: bool,
    /// Capture every camera from this RTSP URL through ffmpeg instead of fake HTTP cameras.
    #[arg(long)]
    rtsp_url: Option<String>,
    /// Serve the fake cameras from this process instead of a child process (their CPU is then
    /// counted as Heldar's).
    #[arg(long)]
    cameras_in_process: bool,
    /// Print one JSON object as the last line.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Bench) -> ExitCode {
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
        concurrency: args.concurrency.max(1),
        raw_s: args.raw_seconds,
        aligned: args.aligned,
        rtsp_url: args.rtsp_url,
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
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
        .with_writer(std::io::stderr)
        .init();
    raise_fd_limit();
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

/// Thousands of fake cameras need thousands of sockets: lift the soft limit to the hard one.
pub(crate) fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}
