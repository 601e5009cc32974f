//! `heldar serve` on PostgreSQL (docs/scale-out.md), as real processes on a real throw-away
//! cluster: one node captures a 1 s schedule through the API (rows listed, files on disk, each
//! slot once, no service failing); two nodes on one database split six cameras by lease, never
//! capture a slot twice, and when one is killed the other takes its cameras within a lease
//! period and its slots go on.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use chrono::Utc;
use common::fleet::{cameras, database, frames, get_json, holdings, slots_once};
use common::{heldar_cmd, wait_for, ServerProcess};
use heldar::fakecam::FakeCamera;
use heldar::models::fmt_ts;
use nix::sys::signal::Signal;
use serde_json::json;
use sqlx::PgPool;

const INTERVAL_S: i64 = 1;
const LEASE_S: u64 = 3;

/// `heldar serve` as node `id` on the database `url`, with `dir` as its data folder.
fn node(dir: &std::path::Path, url: &str, id: &str) -> ServerProcess {
    let mut cmd = heldar_cmd(dir);
    cmd.arg("serve")
        .env("HELDAR_DATABASE_URL", url)
        .env("HELDAR_NODE_ID", id)
        .env("HELDAR_LEASE_PERIOD_S", LEASE_S.to_string())
        .env("HELDAR_SNAPSHOT_SCHEDULER_INTERVAL_S", "5");
    ServerProcess::start(cmd)
}

/// Cameras `c000…` through `server`, each with a 1 s schedule `sch_fast…`. The API's shortest
/// interval is 5 s, so the schedule rows are written to the database directly (as another
/// node's API would: the node holding the camera picks its schedule up at its next look).
async fn register(
    client: &reqwest::Client,
    server: &ServerProcess,
    pg: &PgPool,
    cams: &[FakeCamera],
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
    }
    let now = Utc::now();
    for i in 0..cams.len() {
        let id = format!("sch_fast{i:03}");
        sqlx::query(
            "INSERT INTO snapshot_schedules \
             (id, camera_id, interval_seconds, next_due_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(&id)
        .bind(format!("c{i:03}"))
        .bind(INTERVAL_S)
        .bind(fmt_ts(now + chrono::Duration::seconds(1)))
        .bind(fmt_ts(now))
        .execute(pg)
        .await
        .unwrap();
        schedules.push(id);
    }
    schedules
}

/// No supervised service failed, panicked or restarted in `logs`.
fn no_service_failed(logs: &[String]) {
    let bad: Vec<&String> = logs
        .iter()
        .filter(|l| {
            l.contains("service failed")
                || l.contains("panicked")
                || l.contains("restarting after backoff")
        })
        .collect();
    assert!(bad.is_empty(), "{bad:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_postgres_captures_a_1s_schedule_through_the_api_each_slot_once() {
    let dir = tempfile::tempdir().unwrap();
    let (url, pg) = database().await;
    let cams = cameras(1).await;
    let client = reqwest::Client::new();
    let server = node(dir.path(), &url, "pg-solo");
    let health = get_json(&client, &server, "/api/v1/health").await;
    assert!(
        health["problems"].as_array().unwrap().is_empty(),
        "{health}"
    );
    let schedules = register(&client, &server, &pg, &cams).await;

    // Frames, listed by the API (from PostgreSQL) and on disk.
    let listed = wait_for(
        "five frames of the 1 s schedule listed",
        Duration::from_secs(30),
        || async {
            let list = get_json(&client, &server, "/api/v1/cameras/c000/snapshots?limit=100").await;
            let list = list.as_array().unwrap().clone();
            (list.len() >= 5).then_some(list)
        },
    )
    .await;
    for f in &listed {
        assert_eq!(f["schedule_id"], schedules[0].as_str(), "{f}");
        let url = f["url"].as_str().unwrap();
        let rel = url.strip_prefix("/media/snapshots/").unwrap();
        let bytes = std::fs::read(dir.path().join("data/snapshots").join(rel)).unwrap();
        assert!(bytes.starts_with(&[0xff, 0xd8]), "{url} is a JPEG");
        assert_eq!(bytes.len() as u64, f["size_bytes"].as_u64().unwrap());
        // The media route serves the same bytes.
        let served = client.get(server.url(url)).send().await.unwrap();
        assert_eq!(served.status(), 200);
        assert_eq!(served.bytes().await.unwrap().len(), bytes.len());
    }
    let slots = slots_once(&pg, INTERVAL_S).await;
    assert!(slots[&schedules[0]].len() >= 5, "{slots:?}");
    // The timelapse jobs' queue reads from PostgreSQL too.
    let r = client.get(server.url("/api/v1/jobs")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // The schedule's and the camera's rows moved with the frames (the writer's one batch).
    let (last, status): (Option<String>, Option<String>) = sqlx::query_as(
        "SELECT s.last_fired_at, c.state FROM snapshot_schedules s \
         JOIN camera_status c ON c.camera_id = s.camera_id",
    )
    .fetch_one(&pg)
    .await
    .unwrap();
    assert!(last.is_some());
    assert_eq!(status.as_deref(), Some("online"));

    let (status, logs) = server.stop_with(Signal::SIGTERM);
    assert!(status.success(), "{status}: {logs:#?}");
    no_service_failed(&logs);
    // Every frame on disk has its row: nothing was left uncommitted at the stop.
    let rows: HashSet<String> = frames(&pg).await.into_iter().map(|f| f.3).collect();
    let files: HashSet<String> = std::fs::read_dir(dir.path().join("data/snapshots/c000"))
        .unwrap()
        .map(|e| format!("c000/{}", e.unwrap().file_name().to_string_lossy()))
        .filter(|f| f.ends_with(".jpg"))
        .collect();
    assert_eq!(rows, files);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_postgres_split_cameras_and_a_killed_nodes_cameras_move_without_a_slot_twice(
) {
    let dir = tempfile::tempdir().unwrap();
    let (url, pg) = database().await;
    let cams = cameras(6).await;
    let client = reqwest::Client::new();
    let a = node(dir.path(), &url, "node-a");
    let b = node(dir.path(), &url, "node-b");
    register(&client, &a, &pg, &cams).await;
    let split = wait_for(
        "the cameras split between the nodes",
        Duration::from_secs(20),
        || async {
            let h = holdings(&client, &a).await;
            let held: usize = h.values().map(Vec::len).sum();
            (h.len() == 2 && held == 6 && h.values().all(|c| c.len() == 3)).then_some(h)
        },
    )
    .await;
    assert_eq!(
        holdings(&client, &b).await,
        split,
        "both nodes see one fleet"
    );

    // Several slots of every camera, then each node has captured only the cameras it holds.
    wait_for(
        "three frames from every camera",
        Duration::from_secs(30),
        || async {
            let mut per: HashMap<String, usize> = HashMap::new();
            for (_, c, _, _) in frames(&pg).await {
                *per.entry(c).or_default() += 1;
            }
            (per.len() == 6 && per.values().all(|n| *n >= 3)).then_some(())
        },
    )
    .await;
    for (server, id) in [(&a, "node-a"), (&b, "node-b")] {
        let sys = get_json(&client, server, "/api/v1/system").await;
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
    slots_once(&pg, INTERVAL_S).await;

    // Kill B: its cameras come to A within a lease period (plus A's look), and their slots go on.
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
    let moved = started.elapsed();
    let after = wait_for(
        "two frames of each of B's cameras taken after the kill",
        limit + Duration::from_secs(10),
        || async {
            let mut per: HashMap<String, usize> = HashMap::new();
            for (_, c, t, _) in frames(&pg).await {
                if t > killed && split["node-b"].contains(&c) {
                    *per.entry(c).or_default() += 1;
                }
            }
            (per.len() == 3 && per.values().all(|n| *n >= 2)).then_some(per)
        },
    )
    .await;
    let slots = slots_once(&pg, INTERVAL_S).await;
    assert_eq!(slots.len(), 6, "{slots:?}");
    eprintln!(
        "MEASURED PostgreSQL kill -9 handover (lease {LEASE_S} s, interval {INTERVAL_S} s): \
         leases moved after {} ms; frames of B's cameras since: {after:?}",
        moved.as_millis()
    );
    let (status, logs) = a.stop_with(Signal::SIGTERM);
    assert!(status.success(), "{status}: {logs:#?}");
    no_service_failed(&logs);
    drop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_stopped_with_sigterm_on_postgres_hands_its_cameras_over_without_a_missed_slot() {
    let dir = tempfile::tempdir().unwrap();
    let (url, pg) = database().await;
    let cams = cameras(6).await;
    let client = reqwest::Client::new();
    let a = node(dir.path(), &url, "node-a");
    let b = node(dir.path(), &url, "node-b");
    let schedules = register(&client, &a, &pg, &cams).await;
    wait_for(
        "the cameras split between the nodes",
        Duration::from_secs(20),
        || async {
            let h = holdings(&client, &a).await;
            (h.len() == 2 && h.values().all(|c| c.len() == 3)).then_some(())
        },
    )
    .await;
    wait_for(
        "three frames from every camera",
        Duration::from_secs(30),
        || async {
            let mut per: HashMap<String, usize> = HashMap::new();
            for (_, c, _, _) in frames(&pg).await {
                *per.entry(c).or_default() += 1;
            }
            (per.len() == 6 && per.values().all(|n| *n >= 3)).then_some(())
        },
    )
    .await;

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
    let (status, logs) = stopping.await.unwrap();
    assert!(status.success(), "{logs:?}");
    assert!(
        logs.iter()
            .any(|l| l.contains("draining: gave back every camera lease")),
        "{logs:?}"
    );
    no_service_failed(&logs);
    // A node that left cleanly is not listed.
    let list = get_json(&client, &a, "/api/v1/nodes").await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["camera_count"], 6, "{list}");

    let now = Utc::now();
    wait_for("three more rounds", Duration::from_secs(15), || async {
        ((Utc::now() - now).num_milliseconds() > 3 * INTERVAL_S * 1000 + 500).then_some(())
    })
    .await;
    let (status, logs) = a.stop_with(Signal::SIGTERM);
    assert!(status.success(), "{logs:?}");
    no_service_failed(&logs);

    // Every schedule: each slot once, and no slot missing from its first frame to its last.
    let slots = slots_once(&pg, INTERVAL_S).await;
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
}
