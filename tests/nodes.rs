//! Several Heldar processes on one SQLite file (docs/fleet.md): cameras split between nodes by
//! count; a node killed with SIGKILL loses its cameras to the others within one lease period; a
//! node stopped with SIGTERM hands them over without a missed slot; no slot is captured twice
//! fleet-wide; `GET /api/v1/nodes` shows it; a lone node behaves as before.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::fleet::{cameras, holdings};
use common::{heldar_cmd, metric, wait_for, ServerProcess};
use heldar::fakecam::FakeCamera;
use nix::sys::signal::Signal;
use serde_json::{json, Value};

const INTERVAL_S: i64 = 2;
const LEASE_S: u64 = 3;

fn node(dir: &std::path::Path, id: &str) -> ServerProcess {
    let mut cmd = heldar_cmd(dir);
    cmd.arg("serve")
        .env("HELDAR_NODE_ID", id)
        .env("HELDAR_LEASE_PERIOD_S", LEASE_S.to_string())
        .env("HELDAR_SNAPSHOT_SCHEDULER_INTERVAL_S", "5");
    ServerProcess::start(cmd)
}

/// Cameras `c000…` through `server`, each with a schedule of `interval` seconds. The API's
/// shortest interval is 5 s; a handover must also fit between slots 2 s apart, so below 5 s the
/// schedule rows are written to the database directly (as another node's API would: the nodes
/// holding the cameras pick them up at their next look).
async fn register(
    client: &reqwest::Client,
    server: &ServerProcess,
    dir: &std::path::Path,
    cams: &[FakeCamera],
    interval: i64,
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
        if interval >= 5 {
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
    }
    if interval < 5 {
        let pool = heldar::db::connect(&db_url(dir)).await.unwrap();
        let now = Utc::now();
        for i in 0..cams.len() {
            let id = format!("sch_fast{i:03}");
            on_pool!(&pool, |p| sqlx::query(
                "INSERT INTO snapshot_schedules \
                 (id, camera_id, interval_seconds, next_due_at, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&id)
            .bind(format!("c{i:03}"))
            .bind(interval)
            .bind(heldar::models::fmt_ts(now + chrono::Duration::seconds(1)))
            .bind(heldar::models::fmt_ts(now))
            .bind(heldar::models::fmt_ts(now))
            .execute(p)
            .await
            .unwrap()
            .rows_affected());
            schedules.push(id);
        }
        pool.close().await;
    }
    schedules
}

async fn nodes(client: &reqwest::Client, server: &ServerProcess) -> Vec<Value> {
    let r = client
        .get(server.url("/api/v1/nodes"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// The fleet's database (its SQLite file, or on the PostgreSQL pass its database there).
fn db_url(dir: &std::path::Path) -> String {
    common::database_url_of(&dir.join("data"))
}

/// Every stored frame: (schedule, camera, taken_at).
async fn frames(dir: &std::path::Path) -> Vec<(String, String, DateTime<Utc>)> {
    let pool = heldar::db::connect(&db_url(dir)).await.unwrap();
    let rows: Vec<(String, String, String)> = on_pool!(&pool, |p| sqlx::query_as(
        "SELECT schedule_id, camera_id, taken_at FROM snapshots \
         WHERE schedule_id IS NOT NULL ORDER BY taken_at",
    )
    .fetch_all(p)
    .await
    .unwrap());
    pool.close().await;
    rows.into_iter()
        .map(|(s, c, t)| (s, c, t.parse().unwrap()))
        .collect()
}

/// Each schedule's phase (its next slot, in ms since the epoch).
async fn phases(dir: &std::path::Path) -> HashMap<String, i64> {
    let pool = heldar::db::connect(&db_url(dir)).await.unwrap();
    let rows: Vec<(String, String)> = on_pool!(&pool, |p| sqlx::query_as(
        "SELECT id, next_due_at FROM snapshot_schedules"
    )
    .fetch_all(p)
    .await
    .unwrap());
    pool.close().await;
    rows.into_iter()
        .map(|(id, t)| (id, t.parse::<DateTime<Utc>>().unwrap().timestamp_millis()))
        .collect()
}

/// Each schedule's captured slot numbers, asserting that no slot was captured twice. A frame's
/// slot is the last slot at or before its capture began (captures never start early, and a
/// capture starting an interval or more late would have skipped that slot as missed).
async fn slots_once(dir: &std::path::Path) -> HashMap<String, Vec<i64>> {
    let phases = phases(dir).await;
    let mut by: HashMap<String, Vec<i64>> = HashMap::new();
    for (s, _, t) in frames(dir).await {
        let slot = (t.timestamp_millis() - phases[&s]).div_euclid(INTERVAL_S * 1000);
        by.entry(s).or_default().push(slot);
    }
    for (s, slots) in &by {
        let unique: HashSet<&i64> = slots.iter().collect();
        assert_eq!(
            unique.len(),
            slots.len(),
            "schedule {s}: a slot captured twice: {slots:?}"
        );
    }
    by
}

/// The first frame of `camera` taken after `t`.
async fn first_frame_after(
    dir: &std::path::Path,
    camera: &str,
    t: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    frames(dir)
        .await
        .into_iter()
        .find(|(_, c, at)| c == camera && *at > t)
        .map(|(_, _, at)| at)
}

/// Wait until `server` sees `want` nodes each holding its share of `total` cameras.
async fn wait_split(
    client: &reqwest::Client,
    server: &ServerProcess,
    want: usize,
    total: usize,
) -> BTreeMap<String, Vec<String>> {
    wait_for(
        "the cameras split between the nodes",
        Duration::from_secs(20),
        || async {
            let h = holdings(client, server).await;
            let held: usize = h.values().map(Vec::len).sum();
            let share = total.div_ceil(want);
            (h.len() == want
                && held == total
                && h.values().all(|c| c.len() <= share && !c.is_empty()))
            .then_some(h)
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cameras_split_by_count_and_a_killed_nodes_cameras_move_within_a_lease_period() {
    let dir = tempfile::tempdir().unwrap();
    let cams = cameras(6).await;
    let client = reqwest::Client::new();
    let a = node(dir.path(), "node-a");
    let b = node(dir.path(), "node-b");
    let schedules = register(&client, &a, dir.path(), &cams, INTERVAL_S).await;
    let split = wait_split(&client, &a, 2, 6).await;
    assert_eq!(split["node-a"].len(), 3, "{split:?}");
    assert_eq!(split["node-b"].len(), 3, "{split:?}");
    // Both nodes see the same picture.
    assert_eq!(holdings(&client, &b).await, split);
    let list = nodes(&client, &a).await;
    for n in &list {
        assert_eq!(n["state"], "live", "{n}");
        assert_eq!(n["health"]["ok"], true, "{n}");
        assert_eq!(n["camera_count"], 3, "{n}");
        assert_eq!(n["version"], env!("CARGO_PKG_VERSION"));
        assert!(n["started_at"].is_string() && n["heartbeat_at"].is_string());
        assert_eq!(n["this_node"], n["id"] == "node-a", "{n}");
    }
    // Each node captures only its own cameras.
    let cams_of_b = split["node-b"].clone();
    wait_for(
        "a frame from every camera",
        Duration::from_secs(20),
        || async {
            let seen: HashSet<String> = frames(dir.path())
                .await
                .into_iter()
                .map(|(_, c, _)| c)
                .collect();
            (seen.len() == 6).then_some(())
        },
    )
    .await;

    // Each node captured only the cameras it holds: its per-camera counts (since its start) are
    // zero for the other node's.
    for (server, id) in [(&a, "node-a"), (&b, "node-b")] {
        let sys: Value = client
            .get(server.url("/api/v1/system"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for cam in sys["cameras"].as_array().unwrap() {
            let c = cam["id"].as_str().unwrap().to_string();
            let ok = cam["captures_ok"].as_u64().unwrap();
            if split[id].contains(&c) {
                assert!(ok > 0, "{id} holds {c} but captured nothing");
            } else {
                assert_eq!(ok, 0, "{id} captured {c}, which it does not hold");
            }
        }
    }

    // Kill B: its cameras come to A within one lease period, plus slack for A's look and a slot.
    let killed = Utc::now();
    let started = Instant::now();
    let pid = nix::unistd::Pid::from_raw(b.child.id() as i32);
    nix::sys::signal::kill(pid, Signal::SIGKILL).unwrap();
    let limit = Duration::from_secs(LEASE_S) + Duration::from_secs(2);
    wait_for("A to hold B's cameras", limit, || async {
        let h = holdings(&client, &a).await;
        (h.get("node-a").map(Vec::len) == Some(6)).then_some(())
    })
    .await;
    let leases_moved = started.elapsed();
    let mut first_frames = Vec::new();
    for c in &cams_of_b {
        let c = c.clone();
        let at = wait_for(
            "a frame of B's camera taken by A",
            limit + Duration::from_secs(INTERVAL_S as u64),
            || {
                let (dir, c) = (dir.path().to_path_buf(), c.clone());
                async move { first_frame_after(&dir, &c, killed).await }
            },
        )
        .await;
        first_frames.push((at - killed).num_milliseconds());
    }
    let worst = *first_frames.iter().max().unwrap();
    assert!(
        worst <= (limit.as_millis() as i64) + INTERVAL_S * 1000,
        "B's cameras were captured again only after {worst} ms"
    );
    // The dead node shows as dead, holding nothing.
    wait_for("B shown dead", Duration::from_secs(10), || async {
        let list = nodes(&client, &a).await;
        let b = list.iter().find(|n| n["id"] == "node-b")?;
        (b["state"] == "dead" && b["camera_count"] == 0 && b["health"]["ok"] == false).then_some(())
    })
    .await;
    // `heldar nodes`: the table names both, B dead; exit 8 for the unhealthy node.
    let out = heldar_cmd(dir.path())
        .args(["nodes", "--url", &a.base])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(8), "{table}{err}");
    let row = |id: &str| {
        table
            .lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        row("node-a *").contains("live") && row("node-a").contains(" 6 c0"),
        "{table}"
    );
    assert!(
        row("node-b").contains("dead") && row("node-b").contains(" 0 "),
        "{table}"
    );
    assert!(err.contains("node-b: no heartbeat"), "{err}");
    let out = heldar_cmd(dir.path())
        .args(["nodes", "--json", "--url", &a.base])
        .output()
        .unwrap();
    let json: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json.len(), 2);
    let missed = metric(&a.metrics().await, "heldar_missed_slots_total").unwrap_or(0);
    eprintln!(
        "MEASURED kill -9 handover (lease period {LEASE_S} s, interval {INTERVAL_S} s): leases moved after {} ms; first frames of the dead node's cameras after {first_frames:?} ms; slots counted missed by the survivor: {missed}",
        leases_moved.as_millis()
    );
    // Two more rounds on A alone, then stop it and count slots fleet-wide.
    let now = Utc::now();
    wait_for("two more rounds", Duration::from_secs(10), || async {
        ((Utc::now() - now).num_milliseconds() > 2 * INTERVAL_S * 1000 + 500).then_some(())
    })
    .await;
    let (status, logs) = a.stop_with(Signal::SIGTERM);
    assert!(status.success(), "{logs:?}");
    let slots = slots_once(dir.path()).await;
    assert_eq!(slots.len(), schedules.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_stopped_with_sigterm_hands_its_cameras_over_without_a_missed_slot() {
    let dir = tempfile::tempdir().unwrap();
    let cams = cameras(6).await;
    let client = reqwest::Client::new();
    let a = node(dir.path(), "node-a");
    let b = node(dir.path(), "node-b");
    let schedules = register(&client, &a, dir.path(), &cams, INTERVAL_S).await;
    let split = wait_split(&client, &a, 2, 6).await;
    let cams_of_b = split["node-b"].clone();
    // A few rounds with both nodes.
    let now = Utc::now();
    wait_for("three rounds", Duration::from_secs(15), || async {
        ((Utc::now() - now).num_milliseconds() > 3 * INTERVAL_S * 1000).then_some(())
    })
    .await;

    let termed = Utc::now();
    let started = Instant::now();
    let stopping = tokio::task::spawn_blocking(move || b.stop_with(Signal::SIGTERM));
    wait_for(
        "A to hold B's cameras",
        Duration::from_secs(LEASE_S),
        || async {
            let h = holdings(&client, &a).await;
            (h.get("node-a").map(Vec::len) == Some(6)).then_some(())
        },
    )
    .await;
    let moved = started.elapsed();
    let (status, logs) = stopping.await.unwrap();
    assert!(status.success(), "{logs:?}");
    assert!(
        logs.iter()
            .any(|l| l.contains("draining: gave back every camera lease")),
        "{logs:?}"
    );
    // A node that left cleanly is not listed.
    let list = nodes(&client, &a).await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["id"], "node-a");
    assert_eq!(list[0]["camera_count"], 6);

    let now = Utc::now();
    wait_for("three more rounds", Duration::from_secs(15), || async {
        ((Utc::now() - now).num_milliseconds() > 3 * INTERVAL_S * 1000 + 500).then_some(())
    })
    .await;
    let (status, logs) = a.stop_with(Signal::SIGTERM);
    assert!(status.success(), "{logs:?}");

    // Every schedule: each slot once, and no slot missing from its first frame to its last.
    let slots = slots_once(dir.path()).await;
    assert_eq!(slots.len(), schedules.len());
    for (s, mut got) in slots {
        got.sort_unstable();
        let (first, last) = (got[0], got[got.len() - 1]);
        assert_eq!(
            got,
            (first..=last).collect::<Vec<_>>(),
            "schedule {s}: a slot missed around the drain"
        );
        assert!(got.len() >= 6, "schedule {s}: only {} frames", got.len());
    }
    let mut gaps = Vec::new();
    let all = frames(dir.path()).await;
    for c in &cams_of_b {
        let times: Vec<DateTime<Utc>> = all
            .iter()
            .filter(|(_, cc, _)| cc == c)
            .map(|f| f.2)
            .collect();
        let gap = times
            .windows(2)
            .filter(|w| w[1] > termed)
            .map(|w| (w[1] - w[0]).num_milliseconds())
            .next()
            .unwrap_or(0);
        gaps.push(gap);
    }
    eprintln!(
        "MEASURED drain handover (lease period {LEASE_S} s, interval {INTERVAL_S} s): leases moved after {} ms; gap between the drained node's last frame and the survivor's first, per camera: {gaps:?} ms",
        moved.as_millis()
    );
}

/// One node, default lease period: it holds every camera at once, a new schedule's first slot
/// fires as the schedule is made, and after a crash the restarted node holds its cameras at
/// once instead of waiting out the dead process's leases.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_node_captures_as_before_and_takes_its_cameras_back_at_once_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let cams = cameras(2).await;
    let client = reqwest::Client::new();
    let start = || {
        let mut cmd = heldar_cmd(dir.path());
        cmd.arg("serve");
        ServerProcess::start(cmd)
    };
    let a = start();
    let made = Utc::now();
    register(&client, &a, dir.path(), &cams, 60).await;
    for c in ["c000", "c001"] {
        let at = wait_for("the first slot's frame", Duration::from_secs(5), || async {
            first_frame_after(dir.path(), c, made).await
        })
        .await;
        assert!(
            (at - made).num_milliseconds() < 3000,
            "{c}: first frame after {at} (made {made})"
        );
    }
    let list = nodes(&client, &a).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["camera_count"], 2);
    assert_eq!(list[0]["this_node"], true);
    assert!(list[0]["id"]
        .as_str()
        .unwrap()
        .ends_with(&format!("-{}", a.child.id())));

    let (status, _) = a.stop_with(Signal::SIGKILL);
    assert!(!status.success());
    // The killed process's leases would last 15 s; the new one on this machine sees its
    // predecessor's process is gone and takes the cameras at start-up.
    let b = start();
    let h = holdings(&client, &b).await;
    assert_eq!(h.len(), 1, "the dead node's row is gone: {h:?}");
    assert_eq!(h.values().next().unwrap().len(), 2, "{h:?}");
    let (status, logs) = b.stop_with(Signal::SIGTERM);
    assert!(status.success(), "{logs:?}");
    assert!(
        logs.iter()
            .any(|l| l.contains("a former node on this machine is gone")),
        "{logs:?}"
    );
}

#[test]
fn bad_lease_periods_and_node_ids_are_refused_with_a_sentence() {
    let dir = tempfile::tempdir().unwrap();
    for (var, value, says) in [
        ("HELDAR_LEASE_PERIOD_S", "2", "from 3 to 300"),
        ("HELDAR_LEASE_PERIOD_S", "301", "from 3 to 300"),
        ("HELDAR_LEASE_PERIOD_S", "soon", "from 3 to 300"),
        ("HELDAR_LEASE_PERIOD_S", "", "from 3 to 300"),
        ("HELDAR_NODE_ID", "two words", "letters, digits"),
    ] {
        let out = heldar_cmd(dir.path())
            .arg("serve")
            .env("HELDAR_API_PORT", "0")
            .env(var, value)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{var}={value}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(var) && err.contains(says),
            "{var}={value}: {err}"
        );
    }
}

/// A node started without `--demo` beside a live node running `--demo` leaves that node's demo
/// camera alone (only an earlier run's leftover demo camera is removed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_demo_leaves_a_live_nodes_demo_camera_alone() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let mut cmd = heldar_cmd(dir.path());
    cmd.args(["serve", "--demo"])
        .env("HELDAR_NODE_ID", "node-a")
        .env("HELDAR_LEASE_PERIOD_S", LEASE_S.to_string());
    let a = ServerProcess::start(cmd);
    wait_for(
        "A to hold the demo camera",
        Duration::from_secs(20),
        || async {
            let h = holdings(&client, &a).await;
            (h.get("node-a").map(Vec::len) == Some(1)).then_some(())
        },
    )
    .await;
    let b = node(dir.path(), "node-b");
    let cams: Value = client
        .get(b.url("/api/v1/cameras"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(cams.as_array().unwrap().len(), 1, "{cams}");
    assert_eq!(cams[0]["id"], "demo");
    let (_, logs) = b.stop_with(Signal::SIGTERM);
    assert!(
        !logs.iter().any(|l| l.contains("removed the demo camera")),
        "{logs:?}"
    );
    let (status, logs) = a.stop_with(Signal::SIGTERM);
    assert!(status.success(), "{logs:?}");
}

/// A second process started under the id of a live node is refused with a sentence naming the
/// id (two processes under one id would share its leases); the live node goes on holding its
/// cameras. Once that node is killed, a process under its id starts (a crashed node restarted
/// with a fixed id takes its row over, after at most 2/3 of a lease period).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_under_a_live_nodes_id_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cams = cameras(2).await;
    let client = reqwest::Client::new();
    let a = node(dir.path(), "edge-1");
    register(&client, &a, dir.path(), &cams, 60).await;
    wait_split(&client, &a, 1, 2).await;

    let began = std::time::Instant::now();
    let out = heldar_cmd(dir.path())
        .arg("serve")
        .env("HELDAR_NODE_ID", "edge-1")
        .env("HELDAR_LEASE_PERIOD_S", LEASE_S.to_string())
        .env("HELDAR_API_PORT", "0")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("another Heldar node is running with HELDAR_NODE_ID=edge-1"),
        "{err}"
    );
    assert!(
        began.elapsed() < Duration::from_secs(LEASE_S * 2),
        "refused after {:?}",
        began.elapsed()
    );
    let h = holdings(&client, &a).await;
    assert_eq!(h.len(), 1, "{h:?}");
    assert_eq!(
        h["edge-1"].len(),
        2,
        "the live node keeps its cameras: {h:?}"
    );

    let (status, _) = a.stop_with(Signal::SIGKILL);
    assert!(!status.success());
    let b = node(dir.path(), "edge-1");
    let h = wait_split(&client, &b, 1, 2).await;
    assert_eq!(
        h["edge-1"].len(),
        2,
        "the restarted node holds its cameras: {h:?}"
    );
    let (status, logs) = b.stop_with(Signal::SIGTERM);
    assert!(status.success(), "{logs:?}");
}

/// issue 19: a camera's gauges come from the node holding it. A lone node holds and captures
/// every camera; a second joins and takes its share; the first stops exporting
/// `heldar_camera_up` and `heldar_camera_last_success_timestamp_seconds` for the cameras it
/// gave up (a stale last success there fired the no-recent-frame alert after every handover),
/// keeps them for the ones it still holds, and the new holder exports them once it captures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_stops_exporting_the_gauges_of_cameras_it_gave_up() {
    let dir = tempfile::tempdir().unwrap();
    let cams = cameras(4).await;
    let client = reqwest::Client::new();
    let a = node(dir.path(), "node-a");
    register(&client, &a, dir.path(), &cams, INTERVAL_S).await;
    let scrape = |server: &ServerProcess| {
        let url = server.url("/metrics");
        let client = client.clone();
        async move { client.get(url).send().await.unwrap().text().await.unwrap() }
    };
    let gauge = |text: &str, name: &str, cam: &str| {
        text.lines()
            .any(|l| l.starts_with(&format!("{name}{{camera=\"{cam}\"}}")))
    };
    let all = ["c000", "c001", "c002", "c003"];
    wait_for(
        "node-a exporting a last success for every camera",
        Duration::from_secs(20),
        || async {
            let text = scrape(&a).await;
            all.iter()
                .all(|c| gauge(&text, "heldar_camera_last_success_timestamp_seconds", c))
                .then_some(())
        },
    )
    .await;
    let b = node(dir.path(), "node-b");
    let split = wait_split(&client, &a, 2, 4).await;
    let (kept, gone) = (&split["node-a"], &split["node-b"]);
    wait_for(
        "node-a to drop the gauges of the cameras node-b took, and node-b to export them",
        Duration::from_secs(20),
        || async {
            let (ta, tb) = (scrape(&a).await, scrape(&b).await);
            let a_dropped = gone.iter().all(|c| {
                !gauge(&ta, "heldar_camera_up", c)
                    && !gauge(&ta, "heldar_camera_last_success_timestamp_seconds", c)
            });
            let a_kept = kept
                .iter()
                .all(|c| gauge(&ta, "heldar_camera_last_success_timestamp_seconds", c));
            let b_exports = gone
                .iter()
                .all(|c| gauge(&tb, "heldar_camera_last_success_timestamp_seconds", c));
            let b_not_others = kept.iter().all(|c| !gauge(&tb, "heldar_camera_up", c));
            (a_dropped && a_kept && b_exports && b_not_others).then_some(())
        },
    )
    .await;
    // Counters stay on the node that counted: node-a's captures of the moved cameras are
    // still in its `heldar_captures_total` (sum across nodes for fleet totals).
    let ta = scrape(&a).await;
    for c in gone {
        assert!(
            ta.contains(&format!(
                "heldar_captures_total{{camera=\"{c}\",result=\"ok\"}}"
            )),
            "{ta}"
        );
    }
    for s in [a, b] {
        let (status, logs) = s.stop_with(Signal::SIGTERM);
        assert!(status.success(), "{logs:?}");
    }
}
