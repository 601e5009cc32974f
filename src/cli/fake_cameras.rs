//! `heldar fake-cameras` (hidden): N fake HTTP cameras in a process of their own, for `heldar
//! bench`. Real cameras are other machines, so the bench serves its cameras from a child process:
//! the CPU it reports is then Heldar's alone, and the cameras' share is reported apart.
//!
//! Protocol with the parent: one line `URLS ["http://…", …]` on stdout once every camera
//! listens (the `--count` healthy cameras first, then the `--broken` dead ones); the process
//! exits when its stdin closes (so it never outlives the bench).

use std::io::{BufRead, Write};
use std::process::ExitCode;

use bytes::Bytes;
use clap::Args;

use crate::fakecam::dead::{DeadCamera, DeadMix, DRIP_EVERY};
use crate::fakecam::{pattern, FakeAuth, FakeCamera, FrameSupply};

#[derive(Args, Debug)]
pub struct FakeCameras {
    /// Cameras to start, each on its own 127.0.0.1 port.
    #[arg(long)]
    count: usize,
    /// Approximate JPEG size served, KB.
    #[arg(long, default_value_t = 50)]
    frame_kb: usize,
    /// Dead cameras to start after the healthy ones.
    #[arg(long, default_value_t = 0)]
    broken: usize,
    /// How they are dead: hang, drip, blackhole or mix (the three in turn).
    #[arg(long, default_value = "mix")]
    broken_kind: DeadMix,
}

pub fn run(args: FakeCameras) -> ExitCode {
    let _ = crate::fd_limit::raise_nofile();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("heldar fake-cameras: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let frame = Bytes::from(pattern::sized_jpeg(args.frame_kb));
    let started = runtime.block_on(async {
        let mut cams = Vec::with_capacity(args.count);
        for _ in 0..args.count {
            cams.push(FakeCamera::start(FakeAuth::None, FrameSupply::Static(frame.clone())).await?);
        }
        let mut dead = Vec::with_capacity(args.broken);
        for i in 0..args.broken {
            let kind = args.broken_kind.kind(i);
            dead.push(DeadCamera::start(kind, frame.clone(), DRIP_EVERY).await?);
        }
        std::io::Result::Ok((cams, dead))
    });
    let (cams, dead) = match started {
        Ok(c) => c,
        Err(e) => {
            eprintln!("heldar fake-cameras: cannot listen: {e}");
            return ExitCode::FAILURE;
        }
    };
    let urls: Vec<String> = cams
        .iter()
        .map(FakeCamera::snapshot_url)
        .chain(dead.iter().map(DeadCamera::snapshot_url))
        .collect();
    let mut out = std::io::stdout().lock();
    let line = serde_json::to_string(&urls).expect("urls serialise");
    if writeln!(out, "URLS {line}")
        .and_then(|_| out.flush())
        .is_err()
    {
        return ExitCode::FAILURE;
    }
    // Serve until the parent closes our stdin (or dies).
    let mut sink = String::new();
    let stdin = std::io::stdin();
    while matches!(stdin.lock().read_line(&mut sink), Ok(n) if n > 0) {
        sink.clear();
    }
    drop(cams);
    drop(dead);
    runtime.shutdown_background();
    ExitCode::SUCCESS
}
