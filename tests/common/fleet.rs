//! Helpers for tests of nodes on one PostgreSQL database (tests/postgres_serve.rs,
//! tests/fleet.rs): fake cameras, a fresh migrated database with a pool for the test's own
//! looks, the frames stored, each schedule's slots (asserting none twice), and the fleet as a
//! node's `GET /api/v1/nodes` shows it.

use std::collections::{BTreeMap, HashMap, HashSet};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use heldar::fakecam::{pattern, FakeAuth, FakeCamera, FrameSupply};
use serde_json::Value;
use sqlx::PgPool;

use super::ServerProcess;

/// `n` fake HTTP cameras serving a 20 KB JPEG.
pub async fn cameras(n: usize) -> Vec<FakeCamera> {
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

/// A fresh database on this binary's cluster, migrated, and a pool on it for the test's looks.
pub async fn database() -> (String, PgPool) {
    let url = super::postgres::fresh_database().await;
    let heldar::db::Pool::Postgres(pg) = heldar::db::connect(&url).await.unwrap() else {
        panic!("a postgres:// URL opens a PostgreSQL pool");
    };
    (url, pg)
}

/// Every stored scheduled frame: (schedule, camera, taken_at, path).
pub async fn frames(pg: &PgPool) -> Vec<(String, String, DateTime<Utc>, String)> {
    let rows: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT schedule_id, camera_id, taken_at, path FROM snapshots \
         WHERE schedule_id IS NOT NULL ORDER BY taken_at",
    )
    .fetch_all(pg)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(s, c, t, p)| (s, c, t.parse().unwrap(), p))
        .collect()
}

/// Each schedule's captured slot numbers, asserting that no slot was captured twice. A frame's
/// slot is the last slot at or before its capture began (measured from the schedule's phase,
/// its `next_due_at`).
pub async fn slots_once(pg: &PgPool, interval_s: i64) -> HashMap<String, Vec<i64>> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT id, next_due_at FROM snapshot_schedules")
            .fetch_all(pg)
            .await
            .unwrap();
    let phases: HashMap<String, i64> = rows
        .into_iter()
        .map(|(id, t)| (id, t.parse::<DateTime<Utc>>().unwrap().timestamp_millis()))
        .collect();
    let mut by: HashMap<String, Vec<i64>> = HashMap::new();
    for (s, _, t, _) in frames(pg).await {
        let slot = (t.timestamp_millis() - phases[&s]).div_euclid(interval_s * 1000);
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

pub async fn get_json(client: &reqwest::Client, server: &ServerProcess, path: &str) -> Value {
    let r = client.get(server.url(path)).send().await.unwrap();
    assert_eq!(r.status(), 200, "{path}");
    r.json().await.unwrap()
}

/// Node id → the cameras it holds, as `server` sees the fleet.
pub async fn holdings(
    client: &reqwest::Client,
    server: &ServerProcess,
) -> BTreeMap<String, Vec<String>> {
    get_json(client, server, "/api/v1/nodes")
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let cams = n["cameras"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap().to_string())
                .collect();
            (n["id"].as_str().unwrap().to_string(), cams)
        })
        .collect()
}
