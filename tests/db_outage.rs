//! The database going away for a while (docs/design.md "Database outages"), on SQLite: the test
//! itself holds the real database file's write lock from outside (as an operator's `sqlite3`
//! shell or a backup tool would) while `heldar serve` captures fake HTTP cameras on loopback.
//! During the lock the scheduler keeps firing, frames are written and their rows held; after
//! it, every slot of the window is stored or counted missed, no service restarted, rows and
//! files agree, and nothing calls the outage "corrupt". Also: a database URL that is refused or
//! cannot be opened is echoed with its password masked.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use common::{heldar_cmd, metric, wait_for, ServerProcess};
use heldar::capture::jpeg;
use heldar::fakecam::{pattern, FakeAuth, FakeCamera, FrameSupply};
use nix::sys::signal::Signal;
use serde_json::{json, Value};

async fn cameras(n: usize) -> Vec<FakeCamera> {
    let frame = Bytes::from(pattern::sized_jpeg(20));
    let mut cams = Vec::new();
    for _ in 0..n {
        cams.push(
            FakeCamera::start(FakeAuth::None, FrameSupply::Static(frame.clone()))
                .await
                .unwrap(),
        );
    }
    cams
}

/// Register every camera with one schedule of `interval` seconds.
async fn register(
    client: &reqwest::Client,
    server: &ServerProcess,
    cams: &[FakeCamera],
    interval: u64,
) {
    for (i, cam) in cams.iter().enumerate() {
        let r = client
            .post(server.url("/api/v1/cameras"))
            .json(&json!({"id": format!("c{i:03}"), "snapshot_url": cam.snapshot_url()}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let r = client
            .post(server.url(&format!("/api/v1/cameras/c{i:03}/snapshot-schedules")))
            .json(&json!({"interval_seconds": interval}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
}

fn db_file(data: &Path) -> std::path::PathBuf {
    data.join("heldar.db")
}

/// A read-only look at the database (reads work while another process holds the write lock).
fn read(data: &Path) -> rusqlite::Connection {
    let c = rusqlite::Connection::open_with_flags(
        db_file(data),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    c
}

/// Every schedule's frames' times, and its current `next_due_at` (the phase of its slots).
fn frames(data: &Path) -> HashMap<String, (Vec<DateTime<Utc>>, DateTime<Utc>)> {
    let c = read(data);
    let mut out = HashMap::new();
    let mut st = c
        .prepare("SELECT id, next_due_at FROM snapshot_schedules")
        .unwrap();
    let schedules: Vec<(String, String)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (id, next) in schedules {
        let mut st = c
            .prepare("SELECT taken_at FROM snapshots WHERE schedule_id = ?1 ORDER BY taken_at")
            .unwrap();
        let times: Vec<DateTime<Utc>> = st
            .query_map([&id], |r| r.get::<_, String>(0))
            .unwrap()
            .map(|t| t.unwrap().parse().unwrap())
            .collect();
        out.insert(id, (times, next.parse().unwrap()));
    }
    out
}

/// Every row has its file, every file its row (no orphan from a lost or refused frame), every
/// file is a whole JPEG.
fn assert_consistent(data: &Path) -> usize {
    let c = read(data);
    let mut st = c.prepare("SELECT path FROM snapshots").unwrap();
    let rows: HashSet<String> = st
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut files = HashSet::new();
    for cam in std::fs::read_dir(data.join("snapshots")).unwrap() {
        let cam = cam.unwrap();
        if !cam.file_type().unwrap().is_dir() {
            continue;
        }
        for f in std::fs::read_dir(cam.path()).unwrap() {
            let f = f.unwrap();
            let name = f.file_name().to_string_lossy().into_owned();
            assert!(!name.starts_with(".tmp-"), "temp file left: {name}");
            assert!(
                jpeg::validate(&std::fs::read(f.path()).unwrap()).is_ok(),
                "{name}"
            );
            files.insert(format!("{}/{name}", cam.file_name().to_string_lossy()));
        }
    }
    assert_eq!(rows.len(), files.len(), "rows and files differ in number");
    assert_eq!(rows, files, "rows and files differ");
    rows.len()
}

/// Hold the database's write lock from another connection (another process's, as far as
/// Heldar can tell) for `hold`, on a thread of its own. Returns when the lock is taken; the
/// handle ends when it is released.
fn hold_write_lock(data: &Path, hold: Duration) -> std::thread::JoinHandle<()> {
    let path = db_file(data);
    let (taken_tx, taken) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        let c = rusqlite::Connection::open(path).unwrap();
        c.busy_timeout(Duration::from_secs(10)).unwrap();
        c.execute_batch("BEGIN IMMEDIATE").unwrap();
        taken_tx.send(()).unwrap();
        // Pacing, not waiting for a condition: the lock is held for its stated duration.
        std::thread::sleep(hold);
        c.execute_batch("ROLLBACK").unwrap();
    });
    taken.recv_timeout(Duration::from_secs(20)).unwrap();
    handle
}

/// What happened to the slots due in `[from, to)`: (due, stored, max lateness in ms).
/// A schedule's slots are `next_due_at - k × interval`; a frame's lateness is its time past
/// the slot it was taken for.
fn window(
    data: &Path,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    interval_ms: i64,
) -> (u64, u64, i64) {
    let (mut due, mut stored, mut late) = (0u64, 0u64, 0i64);
    for (_, (times, next)) in frames(data) {
        let phase = next.timestamp_millis().rem_euclid(interval_ms);
        let first =
            from.timestamp_millis() - (from.timestamp_millis() - phase).rem_euclid(interval_ms);
        let first = if first < from.timestamp_millis() {
            first + interval_ms
        } else {
            first
        };
        let mut slot = first;
        let mut slots = Vec::new();
        while slot < to.timestamp_millis() {
            slots.push(slot);
            slot += interval_ms;
        }
        due += slots.len() as u64;
        for s in slots {
            // The frame of slot `s`: taken at or after it, before the next one.
            if let Some(t) = times.iter().find(|t| {
                let t = t.timestamp_millis();
                t >= s && t < s + interval_ms
            }) {
                stored += 1;
                late = late.max(t.timestamp_millis() - s);
            }
        }
    }
    (due, stored, late)
}

fn no_restart_and_no_corrupt(logs: &[String]) {
    for l in logs {
        assert!(!l.contains("restarting"), "a service restarted: {l}");
        assert!(
            !l.to_lowercase().contains("corrupt"),
            "the outage was called corrupt: {l}"
        );
        assert!(!l.contains("panicked"), "{l}");
    }
}

struct Run {
    dir: tempfile::TempDir,
    server: ServerProcess,
    client: reqwest::Client,
    _cams: Vec<FakeCamera>,
}

impl Run {
    fn data(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }
}

/// Heldar on port 0 with `n` cameras at `interval` s, after every schedule has stored a frame.
async fn start(n: usize, interval: u64, env: &[(&str, &str)]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let cams = cameras(n).await;
    let client = reqwest::Client::new();
    let mut cmd = heldar_cmd(dir.path());
    cmd.arg("serve").env("RUST_LOG", "info");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let server = ServerProcess::start(cmd);
    register(&client, &server, &cams, interval).await;
    let data = dir.path().join("data");
    wait_for(
        "every schedule stored a frame",
        Duration::from_secs(30),
        || {
            let data = data.clone();
            async move {
                let f = frames(&data);
                (f.len() == n && f.values().all(|(t, _)| t.len() >= 2)).then_some(())
            }
        },
    )
    .await;
    Run {
        dir,
        server,
        client,
        _cams: cams,
    }
}

/// Wait until every schedule has a frame taken after `after` (the held rows before it are then
/// committed: the writer commits in order).
async fn caught_up(data: &Path, after: DateTime<Utc>) {
    wait_for("captures after the outage", Duration::from_secs(30), || {
        let data = data.to_path_buf();
        async move {
            frames(&data)
                .values()
                .all(|(t, _)| t.last().is_some_and(|t| *t > after))
                .then_some(())
        }
    })
    .await;
}

/// The case: a write lock held from outside for 20 s while Heldar captures 20 slots a
/// second (100 cameras every 5 s, the shortest interval a schedule takes). With the default
/// buffer (10,000 writes, 60 s) no slot is missed and nothing restarts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_20_s_outside_write_lock_misses_no_slot_and_restarts_nothing() {
    let run = start(100, 5, &[]).await;
    let data = run.data();
    let missed_before = metric(&run.server.metrics().await, "heldar_missed_slots_total");

    let from = Utc::now();
    let lock = hold_write_lock(&data, Duration::from_secs(20));
    // While locked: the outage is named in the log and in the health check.
    let line = run
        .server
        .wait_for_log("the database is unavailable", Duration::from_secs(10))
        .await;
    assert!(line.contains("ERROR"), "{line}");
    assert!(
        line.contains("(locked by another process)") && !line.contains("PostgreSQL"),
        "{line}"
    );
    let health: Value = wait_for(
        "the health check names the outage",
        Duration::from_secs(10),
        || {
            let (client, url) = (run.client.clone(), run.server.url("/api/v1/health"));
            async move {
                let r = client.get(url).send().await.ok()?;
                let v: Value = r.json().await.ok()?;
                v["database"]
                    .as_str()?
                    .starts_with("unavailable since ")
                    .then_some(v)
            }
        },
    )
    .await;
    assert!(
        health["database_held_writes"].as_u64().unwrap() > 0,
        "{health}"
    );
    lock.join().unwrap();
    let to = Utc::now();
    run.server
        .wait_for_log("the database is available again", Duration::from_secs(20))
        .await;
    caught_up(&data, to + chrono::Duration::seconds(2)).await;

    let (due, stored, late) = window(&data, from, to, 5000);
    let m = run.server.metrics().await;
    let missed = metric(&m, "heldar_missed_slots_total").unwrap_or(0) - missed_before.unwrap_or(0);
    println!(
        "20 s lock, 100 cameras × 5 s: slots due {due}, stored {stored}, missed {missed}, \
         max lateness {late} ms"
    );
    assert!(due >= 390, "{due} slots due in the window");
    assert_eq!(missed, 0, "slots missed with the default buffer");
    assert_eq!(stored, due, "every slot of the window stored");
    let health: Value = run
        .client
        .get(run.server.url("/api/v1/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["database"], "available", "{health}");

    let (status, logs) = run.server.stop_with(Signal::SIGTERM);
    assert!(status.success(), "{logs:?}");
    no_restart_and_no_corrupt(&logs);
    let starts = logs
        .iter()
        .filter(|l| l.contains("the database is unavailable"))
        .count();
    let ends = logs
        .iter()
        .filter(|l| l.contains("the database is available again"))
        .count();
    assert_eq!(
        (starts, ends),
        (1, 1),
        "one line at the start, one at the end"
    );
    assert!(assert_consistent(&data) > 0);
}

/// A short lock (2 s) is absorbed: no slot missed, every slot stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2_s_write_lock_is_absorbed() {
    let run = start(10, 5, &[]).await;
    let data = run.data();
    let from = Utc::now();
    hold_write_lock(&data, Duration::from_secs(2))
        .join()
        .unwrap();
    let to = Utc::now();
    caught_up(&data, to + chrono::Duration::seconds(2)).await;
    let (due, stored, _) = window(&data, from, to, 5000);
    let m = run.server.metrics().await;
    assert_eq!(metric(&m, "heldar_missed_slots_total").unwrap_or(0), 0);
    let (_, (times, next)) = frames(&data).into_iter().next().unwrap();
    assert_eq!(
        stored, due,
        "window {from}..{to}; one schedule: next {next}, frames {times:?}"
    );
    let (status, logs) = run.server.stop_with(Signal::SIGTERM);
    assert!(status.success(), "{logs:?}");
    no_restart_and_no_corrupt(&logs);
    assert!(assert_consistent(&data) > 0);
}

/// A lock longer than the buffer's bound (HELDAR_DB_OUTAGE_MAX_S=4, locked 15 s): the slots past
/// the bound are counted missed (and named in the log), the others stored; nothing crashes,
/// captures resume, and no file is left without its row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_longer_than_the_buffer_counts_missed_slots_and_crashes_nothing() {
    let run = start(20, 5, &[("HELDAR_DB_OUTAGE_MAX_S", "4")]).await;
    let data = run.data();
    let from = Utc::now();
    let lock = hold_write_lock(&data, Duration::from_secs(15));
    let refusing = run
        .server
        .wait_for_log("outlasted", Duration::from_secs(15))
        .await;
    assert!(
        refusing.contains("the database is unavailable"),
        "{refusing}"
    );
    lock.join().unwrap();
    let to = Utc::now();
    run.server
        .wait_for_log("the database is available again", Duration::from_secs(20))
        .await;
    caught_up(&data, to + chrono::Duration::seconds(2)).await;

    let (due, stored, _) = window(&data, from, to, 5000);
    let m = run.server.metrics().await;
    let missed = metric(&m, "heldar_missed_slots_total").unwrap_or(0);
    let outage_missed = metric(&m, "heldar_db_outage_missed_slots_total").unwrap_or(0);
    println!(
        "15 s lock past a 4 s bound, 20 cameras × 5 s: due {due}, stored {stored}, missed {missed}"
    );
    assert!(
        outage_missed > 0 && outage_missed <= missed,
        "{outage_missed} of {missed}"
    );
    assert!(stored > 0, "the slots before the bound are stored");
    // Every slot of the window is stored or counted missed (a slot at either edge of the
    // window may fall just outside it).
    assert!(
        (stored + missed).abs_diff(due) <= 20,
        "due {due}, stored {stored}, missed {missed}"
    );
    let (status, logs) = run.server.stop_with(Signal::SIGTERM);
    assert!(status.success(), "{logs:?}");
    no_restart_and_no_corrupt(&logs);
    assert!(
        logs.iter().any(|l| l.contains("HELDAR_DB_OUTAGE_MAX_S")),
        "the log names the bound that ran out"
    );
    assert!(assert_consistent(&data) > 0);
}

/// A refused or unopenable HELDAR_DATABASE_URL (or the CLI's --database-url) is echoed with its
/// password masked: in the error, and in every log line.
#[test]
fn a_refused_database_url_never_shows_its_password() {
    let dir = tempfile::tempdir().unwrap();
    for url in [
        "postgres://heldar:s3cr3t-pw@db.example/heldar",
        "sqlite:///proc/heldar-none/heldar.db?pw=s3cr3t-pw",
    ] {
        let out = heldar_cmd(dir.path())
            .arg("serve")
            .env("HELDAR_DATABASE_URL", url)
            .env("HELDAR_API_PORT", "0")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "{url}: {text}");
        assert!(text.contains("HELDAR_DATABASE_URL"), "{url}: {text}");
        assert!(!text.contains("s3cr3t-pw"), "{url}: {text}");
        assert!(text.contains("***"), "{url}: {text}");

        let out = heldar_cmd(dir.path())
            .args(["token", "list", "--database-url", url])
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "{url}: {text}");
        assert!(!text.contains("s3cr3t-pw"), "{url}: {text}");
    }
}

/// Two processes on one database, both firing the same schedules while a write lock is held
/// from outside for 10 s: each fires its slots from its own timers and holds its claims; when
/// the lock goes, the claims replay as conditional updates, so every slot is kept by exactly
/// one process, and the loser of a slot deletes the file it wrote (rows and files agree).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_through_an_outage_keep_each_slot_once_and_leave_no_orphan_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cams = cameras(10).await;
    let client = reqwest::Client::new();
    // One node id for both: each then believes it holds every camera (docs/fleet.md), as a
    // node that stalled past its lease does, so both race for the same slots. With ids of
    // their own the leases would split the cameras and no held claim could ever lose.
    let start = |dir: &Path| {
        let mut cmd = heldar_cmd(dir);
        cmd.arg("serve")
            .env("HELDAR_NODE_ID", "twin")
            .env("HELDAR_SNAPSHOT_SCHEDULER_INTERVAL_S", "5");
        ServerProcess::start(cmd)
    };
    let a = start(dir.path());
    // A second process under a live node's id is refused at start-up (docs/fleet.md "One id,
    // one process"), so B starts while A is stopped, as after a stall: B sees no heartbeat
    // move under the id and takes its row over; A, resumed, still believes it holds every
    // camera.
    let a_pid = nix::unistd::Pid::from_raw(a.child.id() as i32);
    nix::sys::signal::kill(a_pid, Signal::SIGSTOP).unwrap();
    let b = start(dir.path());
    nix::sys::signal::kill(a_pid, Signal::SIGCONT).unwrap();
    register(&client, &a, &cams, 5).await;
    // B learns of the schedules from its 5 s re-read; then both race for every slot. Which
    // one wins a race is timing (a loaded machine can let A win them all for a while), so what
    // is waited for is B holding the schedules, then a round of slots fired between the two.
    wait_for("B to hold the schedules", Duration::from_secs(40), || {
        let (client, url) = (client.clone(), b.url("/metrics"));
        async move {
            let m = client.get(url).send().await.ok()?.text().await.ok()?;
            (metric(&m, "heldar_schedules_active")? >= 10).then_some(())
        }
    })
    .await;
    wait_for("a round of slots fired", Duration::from_secs(40), || {
        let client = client.clone();
        let urls = [a.url("/metrics"), b.url("/metrics")];
        async move {
            let mut fired = 0;
            for url in urls {
                let m = client.get(url).send().await.ok()?.text().await.ok()?;
                fired += metric(&m, "heldar_slots_fired_total")?;
            }
            (fired >= 20).then_some(())
        }
    })
    .await;
    let from = Utc::now();
    hold_write_lock(&data, Duration::from_secs(10))
        .join()
        .unwrap();
    let to = Utc::now();
    for s in [&a, &b] {
        s.wait_for_log("the database is available again", Duration::from_secs(20))
            .await;
    }
    caught_up(&data, to + chrono::Duration::seconds(2)).await;
    let (sa, la) = a.stop_with(Signal::SIGTERM);
    let (sb, lb) = b.stop_with(Signal::SIGTERM);
    assert!(sa.success() && sb.success(), "{la:?}\n{lb:?}");
    no_restart_and_no_corrupt(&la);
    no_restart_and_no_corrupt(&lb);
    // Both fired the window's slots; the loser of each deleted its frame.
    assert!(
        la.iter()
            .chain(&lb)
            .any(|l| l.contains("taken by another process")),
        "no held claim lost: the rule was not exercised"
    );

    // Each frame belongs to the slot at or before it (its lateness is well under an interval):
    // no slot has two.
    for (id, (times, next)) in frames(&data) {
        let phase = next.timestamp_millis();
        let mut slots = HashSet::new();
        for t in &times {
            let t = t.timestamp_millis();
            let slot = t - (t - phase).rem_euclid(5000);
            assert!(
                slots.insert(slot),
                "{id}: two frames for the slot at {slot} ms: {times:?}"
            );
        }
    }
    let (due, stored, _) = window(&data, from, to, 5000);
    assert_eq!(stored, due, "every slot of the outage window kept once");
    assert!(assert_consistent(&data) > 0);
}
