//! Retention removes exactly the frames past each limit, oldest first, file before row — and
//! keeps the row of a file it could not delete.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, SubsecRound, Utc};
use common::{spawn_app, TestApp};
use heldar::clock::{Clock, SystemClock};
use heldar::db;
use heldar::models::{new_id, CameraId, Snapshot};
use heldar::services::retention::{FreeSpace, Retention, SweepReport};
use serde_json::json;

/// Store `n` frames of `size` bytes for camera `c`, one per hour back from now (index 0 newest).
async fn frames(app: &TestApp, n: i64, size: usize) -> Vec<Snapshot> {
    let cam = CameraId::parse("c").unwrap();
    let now = Utc::now().trunc_subsecs(3);
    let mut out = Vec::new();
    for i in 0..n {
        let taken_at = now - chrono::Duration::hours(i) - chrono::Duration::minutes(1);
        let file = app
            .state
            .ops
            .store
            .write_frame(&cam, taken_at, Bytes::from(vec![0xAB; size]))
            .await
            .unwrap();
        let s = Snapshot {
            id: new_id("snp"),
            camera_id: cam.clone(),
            schedule_id: None,
            path: file.rel_path,
            taken_at,
            size_bytes: size as i64,
            width: None,
            height: None,
            created_at: now,
            tag: None,
        };
        app.state.ops.writer.index(vec![s.clone()]).await.unwrap();
        out.push(s);
    }
    out
}

fn retention(
    app: &TestApp,
    age_h: Option<u64>,
    max_bytes: Option<u64>,
    min_free: u64,
    free: FreeSpace,
) -> Retention {
    Retention {
        db: app.state.ops.db.clone(),
        store: app.state.ops.store.clone(),
        clock: Arc::new(SystemClock) as Arc<dyn Clock>,
        metrics: app.state.ops.metrics.clone(),
        max_age: age_h.map(|h| Duration::from_secs(h * 3600)),
        max_bytes,
        min_free_bytes: min_free,
        free_space: free,
        videos: None,
    }
}

async fn remaining(app: &TestApp) -> Vec<DateTime<Utc>> {
    let rows = db::snapshots::list(
        &app.state.ops.db,
        &CameraId::parse("c").unwrap(),
        None,
        None,
        5000,
    )
    .await
    .unwrap();
    for r in &rows {
        assert!(
            app.state.ops.store.abs(&r.path).exists(),
            "row {} lost its file",
            r.path
        );
    }
    let files =
        std::fs::read_dir(app.state.ops.config.snapshots_dir.join("c")).map_or(0, |d| d.count());
    assert_eq!(files, rows.len(), "every file has its row and no more");
    rows.iter().map(|r| r.taken_at).collect()
}

async fn app_with_camera() -> TestApp {
    let app = spawn_app().await;
    app.create_camera(json!({"id": "c", "vendor": "axis", "address": "127.0.0.1"}))
        .await;
    app
}

fn plenty() -> FreeSpace {
    Arc::new(|| Ok(u64::MAX / 2))
}

#[tokio::test]
async fn age_limit_removes_exactly_the_older_frames() {
    let app = app_with_camera().await;
    let all = frames(&app, 10, 100).await; // ages 0h01 … 9h01
    let report = retention(&app, Some(5), None, 0, plenty())
        .sweep()
        .await
        .unwrap();
    assert_eq!(
        report,
        SweepReport {
            age: 5,
            ..Default::default()
        }
    ); // 5h01 … 9h01
    let left = remaining(&app).await;
    assert_eq!(
        left,
        all[..5].iter().map(|s| s.taken_at).collect::<Vec<_>>()
    );
    // 0 = keep forever.
    let report = retention(&app, None, None, 0, plenty())
        .sweep()
        .await
        .unwrap();
    assert_eq!(report, SweepReport::default());
    let m = app.get("/metrics").await.text().await.unwrap();
    assert!(
        m.contains("heldar_snapshots_pruned_total{reason=\"age\"} 5"),
        "{m}"
    );
    app.stop().await;
}

#[tokio::test]
async fn size_cap_removes_the_oldest_until_under_the_cap() {
    let app = app_with_camera().await;
    let all = frames(&app, 10, 1000).await; // 10,000 bytes
    let report = retention(&app, None, Some(6500), 0, plenty())
        .sweep()
        .await
        .unwrap();
    assert_eq!(report.size, 4, "{report:?}"); // 6,000 bytes left
    let left = remaining(&app).await;
    assert_eq!(
        left,
        all[..6].iter().map(|s| s.taken_at).collect::<Vec<_>>()
    );
    app.stop().await;
}

#[tokio::test]
async fn free_disk_floor_removes_the_oldest_until_there_is_room() {
    let app = app_with_camera().await;
    let all = frames(&app, 200, 1000).await;
    // The "disk" has 50,000 bytes free plus whatever retention frees; the floor is 120,000.
    let freed = Arc::new(AtomicU64::new(0));
    let f = freed.clone();
    let dir = app.state.ops.config.snapshots_dir.join("c");
    let free: FreeSpace = Arc::new(move || {
        let files = std::fs::read_dir(&dir).map_or(0, |d| d.count()) as u64;
        f.store(200 - files, Ordering::SeqCst);
        Ok(50_000 + (200 - files) * 1000)
    });
    let report = retention(&app, None, None, 120_000, free)
        .sweep()
        .await
        .unwrap();
    assert!(
        report.free_disk >= 70 && report.free_disk < 120,
        "{report:?}"
    );
    let left = remaining(&app).await;
    let n = left.len();
    assert_eq!(
        left,
        all[..n].iter().map(|s| s.taken_at).collect::<Vec<_>>(),
        "oldest went first"
    );
    assert!(freed.load(Ordering::SeqCst) >= 70);
    app.stop().await;
}

#[tokio::test]
async fn a_file_that_cannot_be_deleted_keeps_its_row_and_a_missing_file_loses_it() {
    let app = app_with_camera().await;
    let all = frames(&app, 3, 100).await;
    // Oldest: its "file" becomes a non-empty directory (unlink fails even for root).
    let stuck = app.state.ops.store.abs(&all[2].path);
    std::fs::remove_file(&stuck).unwrap();
    std::fs::create_dir(&stuck).unwrap();
    std::fs::write(stuck.join("x"), b"x").unwrap();
    // Middle: already gone from disk.
    std::fs::remove_file(app.state.ops.store.abs(&all[1].path)).unwrap();
    let report = retention(&app, Some(1), None, 0, plenty())
        .sweep()
        .await
        .unwrap();
    assert_eq!((report.age, report.failed), (1, 1), "{report:?}");
    let rows = db::snapshots::list(
        &app.state.ops.db,
        &CameraId::parse("c").unwrap(),
        None,
        None,
        10,
    )
    .await
    .unwrap();
    let ids: Vec<_> = rows.iter().map(|r| r.id.clone()).collect();
    assert_eq!(ids, vec![all[0].id.clone(), all[2].id.clone()]);
    app.stop().await;
}
