//! The database going away for a while (docs/design.md §8.1), on PostgreSQL: the server is
//! stopped (`pg_ctl stop -m fast`, every connection ended) for 30 s while `heldar serve`
//! captures a fake HTTP camera every second, then started again. Meanwhile the outage is named
//! in the log and the health check and frames keep reaching the disk; afterwards the held rows
//! commit, every slot of the window is stored once or counted missed (none twice), rows and
//! files agree, and no service failed or restarted. The scheduler's camera cache TTL is set
//! to 5 s, shorter than the outage, so slots past it are served from the stale cache.
//!
//! A binary of its own with a cluster of its own (`Postgres::own`): stopping the shared
//! per-binary cluster would break the other tests running beside it.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::postgres::{health, OutageNode, Postgres};
use common::{metric, wait_for, ServerProcess};
use heldar::capture::jpeg;
use nix::sys::signal::Signal;
use sqlx::PgPool;

const INTERVAL_MS: i64 = 1000;
const OUTAGE: Duration = Duration::from_secs(30);

/// Every scheduled frame's time, by schedule, and each schedule's next slot.
async fn frames(pg: &PgPool) -> HashMap<String, (Vec<DateTime<Utc>>, DateTime<Utc>)> {
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT s.id, s.next_due_at, f.taken_at FROM snapshots f \
         JOIN snapshot_schedules s ON s.id = f.schedule_id ORDER BY f.taken_at",
    )
    .fetch_all(pg)
    .await
    .unwrap();
    let mut by: HashMap<String, (Vec<DateTime<Utc>>, DateTime<Utc>)> = HashMap::new();
    for (id, next, taken) in rows {
        let e = by
            .entry(id)
            .or_insert_with(|| (Vec::new(), next.parse().unwrap()));
        e.0.push(taken.parse().unwrap());
    }
    by
}

/// The slots due in `[from, to)` and how many of them have a frame; asserts no slot has two.
fn window(
    frames: &HashMap<String, (Vec<DateTime<Utc>>, DateTime<Utc>)>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> (u64, u64) {
    let (mut due, mut stored) = (0, 0);
    for (id, (times, next)) in frames {
        let phase = next.timestamp_millis().rem_euclid(INTERVAL_MS);
        let mut per_slot: HashMap<i64, usize> = HashMap::new();
        for t in times {
            let t = t.timestamp_millis();
            *per_slot
                .entry((t - phase).div_euclid(INTERVAL_MS))
                .or_default() += 1;
        }
        let twice: Vec<_> = per_slot.iter().filter(|(_, n)| **n > 1).collect();
        assert!(
            twice.is_empty(),
            "schedule {id}: slots captured twice: {twice:?}"
        );
        let first = (from.timestamp_millis() - phase).div_euclid(INTERVAL_MS) + 1;
        let last = (to.timestamp_millis() - phase - 1).div_euclid(INTERVAL_MS);
        for slot in first..=last {
            due += 1;
            if per_slot.contains_key(&slot) {
                stored += 1;
            }
        }
    }
    (due, stored)
}

/// The frame files on disk, as `camera/file` (every one a whole JPEG, no temp file left).
fn files(snapshots: &Path) -> HashSet<String> {
    let mut files = HashSet::new();
    for cam in std::fs::read_dir(snapshots).unwrap() {
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
    files
}

/// Frames in place while captures run: a capture's temp file (renamed into place a moment
/// later) is not one, nor a fault; [`files`] checks for leftovers once the server stopped.
fn frames_on_disk(snapshots: &Path) -> usize {
    std::fs::read_dir(snapshots)
        .unwrap()
        .flatten()
        .filter(|cam| cam.file_type().is_ok_and(|t| t.is_dir()))
        .flat_map(|cam| std::fs::read_dir(cam.path()).unwrap().flatten())
        .filter(|f| !f.file_name().to_string_lossy().starts_with(".tmp-"))
        .count()
}

async fn missed(server: &ServerProcess) -> u64 {
    metric(&server.metrics().await, "heldar_missed_slots_total").unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_for_30_s_mid_run_stores_or_counts_every_slot_once_and_restarts_nothing() {
    let cluster = Postgres::own();
    let url = cluster.database().await;
    let heldar::db::Pool::Postgres(pg) = heldar::db::connect(&url).await.unwrap() else {
        panic!("a postgres:// URL opens a PostgreSQL pool");
    };
    let dir = tempfile::tempdir().unwrap();
    let snapshots = dir.path().join("data/snapshots");
    // A camera cache TTL shorter than the outage: the scheduler's cache must serve its stale
    // entry (before, slots past the TTL waited 10 s for a connection and were dropped uncounted).
    let OutageNode {
        server,
        client,
        cam: _cam,
    } = OutageNode::start(&url, dir.path(), 5).await;
    wait_for("three frames stored", Duration::from_secs(30), || async {
        let f = frames(&pg).await;
        f.values()
            .all(|(t, _)| t.len() >= 3)
            .then_some(())
            .filter(|_| !f.is_empty())
    })
    .await;
    let missed_before = missed(&server).await;

    // Stop PostgreSQL.
    let from = Utc::now();
    let stopped = Instant::now();
    cluster.pause();
    let line = server
        .wait_for_log("the database is unavailable", Duration::from_secs(10))
        .await;
    assert!(line.contains("ERROR"), "{line}");
    // Worded for PostgreSQL, not with SQLite's lock (issue 19).
    assert!(
        line.contains("the PostgreSQL server cannot be reached")
            && !line.contains("locked by another process"),
        "{line}"
    );
    let (code, h) = wait_for(
        "the health check names the outage",
        Duration::from_secs(15),
        || async {
            let (code, h) = health(&client, &server).await;
            h["database"]
                .as_str()?
                .starts_with("unavailable since ")
                .then_some((code, h))
        },
    )
    .await;
    assert_eq!(code, 503, "{h}");
    // Frames keep reaching the disk while their rows wait.
    let on_disk = frames_on_disk(&snapshots);
    wait_for(
        "frames written during the outage",
        Duration::from_secs(10),
        || async { (frames_on_disk(&snapshots) >= on_disk + 3).then_some(()) },
    )
    .await;
    let (_, h) = health(&client, &server).await;
    assert!(h["database_held_writes"].as_u64().unwrap() > 0, "{h}");
    // Pacing, not waiting for a condition: the server stays down for the outage's length.
    tokio::time::sleep(OUTAGE.saturating_sub(stopped.elapsed())).await;
    cluster.resume();
    let to = Utc::now();
    let back = server
        .wait_for_log("the database is available again", Duration::from_secs(30))
        .await;
    assert!(back.contains("held operations committed"), "{back}");
    // Caught up: a frame taken well after the return is committed (the writer commits in order,
    // so every held row before it is too).
    let after = to + chrono::Duration::seconds(2);
    wait_for(
        "captures after the outage",
        Duration::from_secs(30),
        || async {
            frames(&pg)
                .await
                .values()
                .all(|(t, _)| t.last().is_some_and(|t| *t > after))
                .then_some(())
        },
    )
    .await;
    let (due, stored) = window(&frames(&pg).await, from, to);
    let missed = missed(&server).await - missed_before;
    println!(
        "MEASURED PostgreSQL stopped {} s, 1 camera × 1 s: slots due {due}, stored {stored}, \
         counted missed {missed}",
        OUTAGE.as_secs()
    );
    assert!(due >= 29, "{due} slots due in the window");
    assert_eq!(
        stored + missed,
        due,
        "every slot of the window stored once or counted missed"
    );
    let (code, h) = health(&client, &server).await;
    assert_eq!(
        (code, h["database"].as_str()),
        (200, Some("available")),
        "{h}"
    );

    let (status, logs) = server.stop_with(Signal::SIGTERM);
    assert!(status.success(), "{status}: {logs:#?}");
    let bad: Vec<&String> = logs
        .iter()
        .filter(|l| {
            l.contains("restarting")
                || l.contains("panicked")
                || l.to_lowercase().contains("corrupt")
        })
        .collect();
    assert!(bad.is_empty(), "{bad:#?}");
    // Rows and files agree: no frame without its row, no row without its file.
    let rows: Vec<String> = sqlx::query_scalar("SELECT path FROM snapshots")
        .fetch_all(&pg)
        .await
        .unwrap();
    let rows: HashSet<String> = rows.into_iter().collect();
    assert_eq!(rows, files(&snapshots), "rows and files differ");
}
