//! Many broken cameras at once (a dead switch, a power cut on one building): a few hundred dead
//! cameras of each kind — accepting and never answering, answering one byte at a time, never
//! completing the connection — beside healthy ones, all at a short interval, through the real
//! application (scheduler, capture, store, SQLite) and real sockets. Every healthy slot must be
//! captured: waiting on a dead camera must not starve the rest.

use heldar::bench::{run, BenchOptions};
use heldar::fakecam::dead::DeadMix;

/// Lift the open-file soft limit to the hard one: the dead cameras and the captures waiting on
/// them need about 2,500 descriptors in this one process.
fn raise_fd_limit() -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
    hard
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_healthy_slot_is_captured_beside_six_hundred_dead_cameras() {
    let hard = raise_fd_limit();
    assert!(
        hard >= 4096,
        "this test needs an open-file limit of at least 4096 (hard limit {hard})"
    );
    let report = run(&BenchOptions {
        broken: 600,
        broken_kind: DeadMix::Mix,
        // Each dead camera holds a capture for the whole deadline; 3 s at a 1 s interval is
        // three slots of every dead camera waiting at any moment.
        capture_timeout_s: Some(3),
        // The limit the automatic setting gives on an ordinary machine (1,024 of 4,096+ fds),
        // fixed so the test does not depend on this machine's limit.
        concurrency: 1024,
        ..BenchOptions::small(40, 1, 12.0)
    })
    .await
    .unwrap();
    // 40 healthy schedules at 1 s over an ~11 s window.
    assert!(report.slots_due >= 40 * 9, "{report:?}");
    assert_eq!(report.duplicates, 0, "{report:?}");
    assert_eq!(
        report.captured, report.slots_due,
        "healthy slots were lost beside the dead cameras: {report:?}"
    );
    // The dead cameras were really tried and really failed, in the window, all three kinds
    // (their deadlines end from 3 s into the run).
    assert!(report.capture_failures >= 600, "{report:?}");
    // And the healthy cameras' frames were not held back waiting for permits.
    assert!(report.lateness_p99_ms < 1000.0, "{report:?}");
}
