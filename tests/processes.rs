//! Heldar as separate processes: killed with SIGKILL in a capture storm it restarts to a
//! consistent store; two processes sharing one database capture each slot exactly once.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use common::{heldar_cmd, metric, wait_for, ServerProcess};
use heldar::capture::jpeg;
use heldar::fakecam::{pattern, Behavior, FakeAuth, FakeCamera, FrameSupply};
use nix::sys::signal::Signal;
use serde_json::{json, Value};

async fn cameras(n: usize, delay_ms: u64) -> Vec<FakeCamera> {
    let frame = Bytes::from(pattern::sized_jpeg(30));
    let mut cams = Vec::new();
    for _ in 0..n {
        let cam = FakeCamera::start(FakeAuth::None, FrameSupply::Static(frame.clone()))
            .await
            .unwrap();
        if delay_ms > 0 {
            cam.set_behavior(Behavior::Delay(Duration::from_millis(delay_ms)));
        }
        cams.push(cam);
    }
    cams
}

async fn register(
    client: &reqwest::Client,
    server: &ServerProcess,
    cams: &[FakeCamera],
    interval: u64,
) -> Vec<String> {
    let mut schedules = Vec::new();
    for (i, cam) in cams.iter().enumerate() {
        let r = client
            .post(server.url("/api/v1/cameras"))
            .json(&json!({"id": format!("c{i:03}"), "snapshot_url": cam.snapshot_url()}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let s: Value = client
            .post(server.url(&format!("/api/v1/cameras/c{i:03}/snapshot-schedules")))
            .json(&json!({"interval_seconds": interval}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        schedules.push(s["id"].as_str().unwrap().to_string());
    }
    schedules
}

/// Every row has its file, every file its row, every file is a whole JPEG, no temp files.
async fn assert_consistent(data: &std::path::Path) -> usize {
    let pool = heldar::db::connect(&common::database_url_of(data))
        .await
        .unwrap();
    let rows: HashSet<String> = heldar::db::snapshots::all_paths(&pool)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    let snaps = data.join("snapshots");
    let mut files = HashSet::new();
    for cam in std::fs::read_dir(&snaps).unwrap() {
        let cam = cam.unwrap();
        if !cam.file_type().unwrap().is_dir() {
            continue;
        }
        for f in std::fs::read_dir(cam.path()).unwrap() {
            let f = f.unwrap();
            let name = f.file_name().to_string_lossy().into_owned();
            assert!(!name.starts_with(".tmp-"), "temp file left: {name}");
            let bytes = std::fs::read(f.path()).unwrap();
            assert!(
                jpeg::validate(&bytes).is_ok(),
                "partial or bad JPEG under a final name: {name}"
            );
            files.insert(format!("{}/{name}", cam.file_name().to_string_lossy()));
        }
    }
    assert_eq!(rows, files, "rows and files differ");
    pool.close().await;
    rows.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_in_a_capture_storm_restarts_to_a_consistent_store() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Each capture takes a second, so captures overlap however the slots spread.
    let cams = cameras(30, 1000).await;
    let client = reqwest::Client::new();
    let mut cmd = heldar_cmd(dir.path());
    cmd.arg("serve");
    let server = ServerProcess::start(cmd);
    register(&client, &server, &cams, 5).await;

    // Let a few rounds land, then kill it while captures are in flight.
    wait_for("60 stored frames", Duration::from_secs(60), || {
        let data = data.clone();
        async move {
            let pool = heldar::db::connect(&common::database_url_of(&data))
                .await
                .ok()?;
            let n: i64 = on_pool!(&pool, |p| sqlx::query_scalar(
                "SELECT COUNT(*) FROM snapshots"
            )
            .fetch_one(p)
            .await
            .ok()?);
            pool.close().await;
            (n >= 60).then_some(())
        }
    })
    .await;
    wait_for("captures in flight", Duration::from_secs(30), || async {
        (cams.iter().map(FakeCamera::in_flight).sum::<u64>() >= 5).then_some(())
    })
    .await;
    let (status, _) = server.stop_with(Signal::SIGKILL);
    assert!(!status.success());

    // What else a crash or a bad disk can leave during the crashed run: a temp file, a torn
    // frame under a final name, a row whose file is gone, a file whose row never committed.
    // Named within the crashed run, so the check before the scheduler starts covers them.
    let cam_dir = data.join("snapshots/c000");
    let now = Utc::now();
    let (torn, good) = (
        heldar::store::file_name(now, 900),
        heldar::store::file_name(now, 901),
    );
    std::fs::write(cam_dir.join(".tmp-00000000deadbeef"), b"\xFF\xD8partial").unwrap();
    std::fs::write(
        cam_dir.join(&torn),
        &pattern::solid_jpeg(32, 32, [1, 1, 1])[..100],
    )
    .unwrap();
    std::fs::write(cam_dir.join(&good), pattern::solid_jpeg(32, 32, [1, 1, 1])).unwrap();
    // The victim must be a frame whose row committed (a file the kill left without its row is
    // re-indexed instead).
    let pool = heldar::db::connect(&common::database_url_of(&data))
        .await
        .unwrap();
    let victim: String = on_pool!(&pool, |p| sqlx::query_scalar(
        "SELECT path FROM snapshots WHERE camera_id = 'c001' LIMIT 1"
    )
    .fetch_one(p)
    .await
    .unwrap());
    pool.close().await;
    std::fs::remove_file(data.join("snapshots").join(victim)).unwrap();

    let mut cmd = heldar_cmd(dir.path());
    cmd.arg("serve")
        .env("HELDAR_SNAPSHOT_SCHEDULER_ENABLED", "false");
    let server = ServerProcess::start(cmd);
    let (status, logs) = server.stop_with(Signal::SIGTERM);
    assert!(status.success(), "{logs:?}");
    let line = logs
        .iter()
        .find(|l| l.contains("start-up reconciliation done"))
        .expect("reconciliation logged");
    // At least our planted debris; the kill itself may have left more.
    for (key, min) in [
        ("temp_files_removed", 1),
        ("rows_without_file_removed", 1),
        ("files_reindexed", 1),
        ("damaged_frames_removed", 1),
    ] {
        let n: u64 = line
            .split(&format!("{key}="))
            .nth(1)
            .and_then(|v| v.split_whitespace().next())
            .unwrap()
            .parse()
            .unwrap();
        assert!(n >= min, "{key}={n} in {line}");
    }
    let rows = assert_consistent(&data).await;
    assert!(
        line.contains("last_run=\"unclean\"") || line.contains("last_run=unclean"),
        "{line}"
    );
    assert!(!cam_dir.join(&torn).exists());
    // 60 before the kill, minus the row whose file we removed, plus the re-indexed frame.
    assert!(rows >= 60, "{rows} rows; logs: {logs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_database_capture_each_slot_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cams = cameras(10, 0).await;
    let client = reqwest::Client::new();
    let start = |dir: &std::path::Path| {
        let mut cmd = heldar_cmd(dir);
        cmd.arg("serve")
            .env("HELDAR_SNAPSHOT_SCHEDULER_INTERVAL_S", "5");
        ServerProcess::start(cmd)
    };
    let a = start(dir.path());
    let b = start(dir.path());
    let schedules = register(&client, &a, &cams, 5).await;
    // B learns of the schedules from its 5 s re-read; both then race for every slot.
    let created = Utc::now();
    wait_for("four rounds of slots", Duration::from_secs(60), || async {
        ((Utc::now() - created).num_milliseconds() > 17_500).then_some(())
    })
    .await;
    let fired = |s: &ServerProcess| {
        let client = client.clone();
        let url = s.url("/metrics");
        async move {
            let m = client.get(url).send().await.unwrap().text().await.unwrap();
            metric(&m, "heldar_slots_fired_total").unwrap_or(0)
        }
    };
    let (fa, fb) = (fired(&a).await, fired(&b).await);
    let (sa, la) = a.stop_with(Signal::SIGTERM);
    let (sb, lb) = b.stop_with(Signal::SIGTERM);
    assert!(sa.success() && sb.success(), "{la:?}\n{lb:?}");

    let pool = heldar::db::connect(&common::database_url_of(&data))
        .await
        .unwrap();
    let mut total = 0u64;
    for s in &schedules {
        let times: Vec<String> = on_pool!(&pool, |p| sqlx::query_scalar(
            "SELECT taken_at FROM snapshots WHERE schedule_id = $1 ORDER BY taken_at",
        )
        .bind(s)
        .fetch_all(p)
        .await
        .unwrap());
        let times: Vec<DateTime<Utc>> = times.iter().map(|t| t.parse().unwrap()).collect();
        assert!(times.len() >= 4, "{s}: {} frames", times.len());
        for w in times.windows(2) {
            let gap = (w[1] - w[0]).num_milliseconds();
            assert!(
                gap >= 4500,
                "{s}: two captures {gap} ms apart — a slot captured twice"
            );
        }
        total += times.len() as u64;
    }
    // Every capture was a slot claimed by exactly one of the two processes.
    assert_eq!(
        fa + fb,
        total,
        "slots fired by A ({fa}) + B ({fb}) vs frames stored"
    );
    pool.close().await;
}

/// Log lines carry their context: a capture during a request runs in a `request` span with the
/// request's id (echoed in `x-request-id`), a scheduled one in a `slot` span with its schedule
/// and camera. A second SIGINT during the shutdown grace exits at once (status 130) instead of
/// waiting for a capture that hangs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_name_the_request_and_the_slot_and_a_second_sigint_exits_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let hung = FakeCamera::start(
        FakeAuth::None,
        FrameSupply::Static(Bytes::from(pattern::sized_jpeg(10))),
    )
    .await
    .unwrap();
    hung.set_behavior(Behavior::Hang);
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = reqwest::Client::new();
    let mut cmd = heldar_cmd(dir.path());
    cmd.arg("serve").env("HELDAR_CAPTURE_TIMEOUT_S", "20");
    let server = ServerProcess::start(cmd);
    for (id, url) in [
        ("gone", format!("http://127.0.0.1:{dead}/x.jpg")),
        ("hung", hung.snapshot_url()),
    ] {
        let r = client
            .post(server.url("/api/v1/cameras"))
            .json(&json!({"id": id, "snapshot_url": url}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let r = client
        .get(server.url("/api/v1/cameras/gone/snapshot"))
        .header("x-request-id", "req-4711")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    assert_eq!(r.headers()["x-request-id"], "req-4711");
    // A second dead camera for the schedule: the log says a camera's first failure, then
    // summarises repeats, so the slot's failure must be its camera's first.
    let r = client
        .post(server.url("/api/v1/cameras"))
        .json(&json!({"id": "gone2", "snapshot_url": format!("http://127.0.0.1:{dead}/y.jpg")}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = client
        .post(server.url("/api/v1/cameras/gone2/snapshot-schedules"))
        .json(&json!({"interval_seconds": 60}))
        .send()
        .await
        .unwrap();
    let schedule: Value = r.json().await.unwrap();
    let schedule = schedule["id"].as_str().unwrap().to_string();
    let slot_logged = |logs: &[String]| {
        logs.iter()
            .any(|l| l.contains("capture failed") && l.contains("slot{") && l.contains(&schedule))
    };
    wait_for(
        "the scheduled capture's failure",
        Duration::from_secs(20),
        || {
            let logs = server.logs.lock().unwrap().clone();
            async move { slot_logged(&logs).then_some(()) }
        },
    )
    .await;

    // A capture that hangs (deadline 20 s) holds the shutdown; a second SIGINT does not wait.
    let r = client
        .post(server.url("/api/v1/cameras/hung/snapshot-schedules"))
        .json(&json!({"interval_seconds": 60}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    wait_for("the hung capture", Duration::from_secs(20), || async {
        (hung.in_flight() >= 1).then_some(())
    })
    .await;
    let pid = nix::unistd::Pid::from_raw(server.child.id() as i32);
    nix::sys::signal::kill(pid, Signal::SIGINT).unwrap();
    wait_for("the shutdown to begin", Duration::from_secs(20), || {
        let logs = server.logs.lock().unwrap().clone();
        async move {
            logs.iter()
                .any(|l| l.contains("waiting for in-flight captures"))
                .then_some(())
        }
    })
    .await;
    let (status, logs) = server.stop_with(Signal::SIGINT);
    assert_eq!(status.code(), Some(130), "{logs:#?}");
    assert!(
        logs.iter()
            .any(|l| l.contains("capture failed") && l.contains("request_id=req-4711")),
        "{logs:#?}"
    );
    assert!(slot_logged(&logs), "{logs:#?}");
}
