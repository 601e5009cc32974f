//! The benchmark's own correctness: on a small run, its counts agree with each other and with
//! what was stored (speed is never asserted).

use heldar::bench::{run, BenchOptions, CamerasAt, NodesAt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_bench_counts_every_slot_once() {
    let report = run(&BenchOptions {
        cameras: 3,
        schedules: 6,
        interval_s: 1,
        duration_s: 5.0,
        frame_kb: 20,
        fsync: false,
        concurrency: 8,
        raw_s: 0.5,
        aligned: false,
        rtsp_url: None,
        rtsp_source: heldar::models::SnapshotSource::Native,
        rtsp_frame_mode: None,
        // A live snapshot every 500 ms beside the schedules.
        live_every_ms: 500,
        // The cameras in a child `heldar fake-cameras` process, as the CLI runs them.
        cameras_at: CamerasAt::ChildProcess(env!("CARGO_BIN_EXE_heldar").into()),
        progress: false,
        stalled_subscriber: true,
        broken: 0,
        broken_kind: heldar::fakecam::dead::DeadMix::Mix,
        capture_timeout_s: None,
        align_zone: None,
        idle_windowed: 0,
        mqtt_url: None,
        nodes: None,
        postgres: None,
    })
    .await
    .unwrap();
    // 6 schedules at 1 s over a ~4 s counting window.
    assert!(
        report.slots_due >= 18 && report.slots_due <= 30,
        "{report:?}"
    );
    assert_eq!(report.duplicates, 0, "{report:?}");
    assert_eq!(
        report.captured + report.missed,
        report.slots_due,
        "{report:?}"
    );
    assert!(report.captured >= report.slots_due - 1, "{report:?}");
    // The live probe asked and was answered.
    assert!(
        report.live_requests >= 5 && report.live_failures == 0,
        "{report:?}"
    );
    assert!(
        report.bytes_written >= report.captured * 20 * 1024,
        "{report:?}"
    );
    assert!(
        report.lateness_max_ms >= report.lateness_p99_ms
            && report.lateness_p99_ms >= report.lateness_p50_ms
    );
    // The latest slot lies in the measured window.
    assert!(
        (0.0..=report.duration_s).contains(&report.lateness_max_at_s),
        "{report:?}"
    );
    assert!(report.raw_captures_per_s > 0.0 && report.captures_per_s > 0.0);
    // 6 schedules at 1 s, (nearly) every slot captured, is 6 captures a second of schedule
    // time, whatever the lead before the first slot and the uncounted last second.
    assert!(
        (report.captures_per_s - 6.0).abs() < 0.75,
        "captures/s {} from {report:?}",
        report.captures_per_s
    );
    assert!(report.startup_to_ready_ms > 0.0 && report.peak_rss_mb > 0.0);
    // Every stored frame was published on the bus, with a subscriber that never read.
    assert!(report.events_published >= report.captured, "{report:?}");
    // The cameras served from their own process, and their CPU was measured apart.
    assert_eq!(report.cameras_at, "child-process");
    assert!(report.cameras_cpu_seconds > 0.0, "{report:?}");
    // The floor under the CPU per capture was measured, and what is above it is the rest.
    assert!(report.store_floor_ms_per_frame > 0.0, "{report:?}");
    assert!(
        (report.cpu_ms_per_capture
            - report.store_floor_ms_per_frame
            - report.cpu_ms_per_capture_above_floor)
            .abs()
            < 1e-9,
        "{report:?}"
    );
    let json = serde_json::to_value(&report).unwrap();
    for key in [
        "slots_due",
        "captured",
        "missed",
        "captures_per_s",
        "lateness_p50_ms",
        "lateness_p99_ms",
        "lateness_max_ms",
    ] {
        assert!(json.get(key).is_some(), "{key}");
    }
}

/// Issue 17's scenarios on a small run: every schedule aligned in Europe/Berlin fires on the
/// zone's clock (each capture counted against the aligned plan, none late by half an interval,
/// none twice), and 300 idle windowed schedules on the same cameras never fire nor are claimed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aligned_and_idle_windowed_schedules() {
    let report = run(&BenchOptions {
        align_zone: Some("Europe/Berlin".into()),
        idle_windowed: 300,
        ..BenchOptions::small(3, 2, 7.0)
    })
    .await
    .unwrap();
    assert_eq!(
        (report.align_zone.as_str(), report.idle_windowed),
        ("Europe/Berlin", 300)
    );
    assert!(report.slots_due >= 6, "{report:?}");
    assert_eq!(report.duplicates, 0, "{report:?}");
    assert_eq!(report.captured, report.slots_due, "{report:?}");
    assert!(
        report.lateness_max_ms < 1000.0,
        "every capture at its aligned slot: {report:?}"
    );
    assert_eq!(
        report.idle_fired, 0,
        "idle schedules never fire: {report:?}"
    );
    assert!(
        report
            .table()
            .contains("aligned in Europe/Berlin; 300 idle windowed"),
        "{}",
        report.table()
    );
}

/// `--nodes 2`: Heldar as two `heldar serve` processes on one database; the cameras are split
/// between them and every slot is still counted once, fleet-wide.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_split_the_cameras_and_every_slot_is_captured_once() {
    let mut opts = BenchOptions::small(4, 1, 5.0);
    opts.nodes = Some(NodesAt {
        exe: env!("CARGO_BIN_EXE_heldar").into(),
        count: 2,
    });
    let report = run(&opts).await.unwrap();
    assert_eq!((report.nodes, report.database.as_str()), (2, "sqlite"));
    // 4 schedules at 1 s over a ~4 s counting window.
    assert!(report.slots_due >= 12, "{report:?}");
    assert_eq!(report.duplicates, 0, "{report:?}");
    assert!(report.captured >= report.slots_due - 1, "{report:?}");
    // The nodes' CPU and memory, not the bench's own.
    assert!(
        report.cpu_seconds > 0.0 && report.peak_rss_mb > 5.0,
        "{report:?}"
    );
}
