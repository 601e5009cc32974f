//! Retention removes exactly the frames past each limit, oldest first, file before row — and
//! keeps the row of a file it could not delete.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, SubsecRound, Utc};
use common::{spawn_app_with, TestApp};
use heldar::app::BuildOptions;
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

/// The app with camera `c`, its background reconciliation held back for the whole test: the
/// frames written here are dated before the run and are not JPEGs, so a reconciliation that
/// reached one between its file and its row would rightly remove it as damaged.
async fn app_with_camera() -> TestApp {
    let app = spawn_app_with(
        |_| {},
        BuildOptions {
            reconcile_gate: Some(Arc::new(tokio::sync::Semaphore::new(0))),
            ..BuildOptions::default()
        },
    )
    .await;
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

/// Keep `n` real JPEGs of `camera` for `schedule` (`None`: kept through the API), one per hour
/// back from now (index 0 newest) plus `ms` (so two sets do not share a file name), through the
/// app's own store and writer. Returns their times and the size of each.
async fn kept(
    app: &TestApp,
    camera: &str,
    schedule: Option<&str>,
    n: i64,
    ms: i64,
) -> (Vec<DateTime<Utc>>, i64) {
    let jpeg = heldar::fakecam::pattern::solid_jpeg(32, 24, [120, 130, 140]);
    kept_frames(app, camera, schedule, n, ms, jpeg).await
}

/// [`kept`] with the given JPEG as every frame.
async fn kept_frames(
    app: &TestApp,
    camera: &str,
    schedule: Option<&str>,
    n: i64,
    ms: i64,
    jpeg: Vec<u8>,
) -> (Vec<DateTime<Utc>>, i64) {
    let cam = CameraId::parse(camera).unwrap();
    let (width, height) = heldar::capture::jpeg::validate(&jpeg).unwrap();
    let now = Utc::now().trunc_subsecs(3);
    let mut times = Vec::new();
    for i in 0..n {
        let taken_at = now - chrono::Duration::hours(i) - chrono::Duration::minutes(1)
            + chrono::Duration::milliseconds(ms);
        let file = app
            .state
            .ops
            .store
            .write_frame(&cam, taken_at, Bytes::from(jpeg.clone()))
            .await
            .unwrap();
        let s = Snapshot {
            id: new_id("snp"),
            camera_id: cam.clone(),
            schedule_id: schedule.map(str::to_string),
            path: file.rel_path,
            taken_at,
            size_bytes: jpeg.len() as i64,
            width: Some(width as i64),
            height: Some(height as i64),
            created_at: now,
            tag: None,
        };
        app.state.ops.writer.index(vec![s]).await.unwrap();
        times.push(taken_at);
    }
    (times, jpeg.len() as i64)
}

/// A paused schedule of `camera` (it never fires; its frames are made by [`kept`]).
async fn paused_schedule(app: &TestApp, camera: &str, extra: serde_json::Value) -> String {
    let mut body = json!({"enabled": false});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let r = app
        .post_json(
            &format!("/api/v1/cameras/{camera}/snapshot-schedules"),
            &body,
        )
        .await;
    assert_eq!(r.status(), 201);
    let v: serde_json::Value = r.json().await.unwrap();
    v["id"].as_str().unwrap().to_string()
}

/// `(schedule_id, taken_at)` of a camera's rows, each with its file.
async fn rows_of(app: &TestApp, camera: &str) -> Vec<(Option<String>, DateTime<Utc>)> {
    let rows = db::snapshots::list(
        &app.state.ops.db,
        &CameraId::parse(camera).unwrap(),
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
        std::fs::read_dir(app.state.ops.config.snapshots_dir.join(camera)).map_or(0, |d| d.count());
    assert_eq!(files, rows.len(), "every file has its row and no more");
    rows.into_iter()
        .map(|r| (r.schedule_id, r.taken_at))
        .collect()
}

#[tokio::test]
async fn a_schedules_retention_hours_replace_the_global_age_limit_for_its_frames_only() {
    let app = app_with_camera().await;
    let short = paused_schedule(&app, "c", json!({"retention_hours": 3})).await;
    let long = paused_schedule(&app, "c", json!({"retention_hours": 100})).await;
    let plain = paused_schedule(&app, "c", json!({})).await;
    let (short_t, _) = kept(&app, "c", Some(&short), 8, 1).await; // ages 0h01 … 7h01
    let (long_t, _) = kept(&app, "c", Some(&long), 8, 2).await;
    let (plain_t, _) = kept(&app, "c", Some(&plain), 8, 3).await;
    let (manual_t, _) = kept(&app, "c", None, 8, 4).await;

    // Global: 5 hours.
    let report = retention(&app, Some(5), None, 0, plenty())
        .sweep()
        .await
        .unwrap();
    assert_eq!(report.age, 3 + 5 + 3, "{report:?}");
    let rows = rows_of(&app, "c").await;
    let left = |s: Option<&str>| {
        let mut t: Vec<_> = rows
            .iter()
            .filter(|(id, _)| id.as_deref() == s)
            .map(|(_, t)| *t)
            .collect();
        t.sort_by(|a, b| b.cmp(a));
        t
    };
    assert_eq!(left(Some(&short)), short_t[..3], "kept 3 hours, not 5");
    assert_eq!(
        left(Some(&long)),
        long_t,
        "kept 100 hours: all 8, past the global 5"
    );
    assert_eq!(left(Some(&plain)), plain_t[..5], "the global rule");
    assert_eq!(
        left(None),
        manual_t[..5],
        "frames kept through the API: the global rule"
    );

    // Without a global limit, a schedule's own still holds: of 8 more, those past 3 hours go.
    kept(&app, "c", Some(&short), 8, 5).await;
    let report = retention(&app, None, None, 0, plenty())
        .sweep()
        .await
        .unwrap();
    assert_eq!(report.age, 5, "{report:?}");
    app.stop().await;
}

#[tokio::test]
async fn max_gb_prunes_one_camera_oldest_first_and_leaves_the_others() {
    let app = app_with_camera().await;
    app.create_camera(json!({"id": "other", "vendor": "axis", "address": "127.0.0.1"}))
        .await;
    // Frames of 250 kB or more, so that room for 4.5 of them is over the smallest cap (1 MB).
    let jpeg = heldar::fakecam::pattern::sized_jpeg(250);
    let (capped, size) = kept_frames(&app, "c", None, 10, 0, jpeg.clone()).await;
    let (other, _) = kept_frames(&app, "other", None, 10, 0, jpeg).await;
    // Room for 4.5 frames: the cap is in decimal GB.
    let gb = (size as f64 * 4.5) / 1e9;
    assert!(gb >= heldar::camera::spec::MIN_GB, "{gb}");
    let r = app
        .patch_json("/api/v1/cameras/c", &json!({"max_gb": gb}))
        .await;
    assert_eq!(r.status(), 200);

    let report = retention(&app, None, None, 0, plenty())
        .sweep()
        .await
        .unwrap();
    assert_eq!(
        report,
        SweepReport {
            camera_size: 6,
            ..Default::default()
        }
    );
    let newest_first = |rows: Vec<(Option<String>, DateTime<Utc>)>| {
        let mut t: Vec<_> = rows.into_iter().map(|(_, t)| t).collect();
        t.sort_by(|a, b| b.cmp(a));
        t
    };
    assert_eq!(
        newest_first(rows_of(&app, "c").await),
        capped[..4],
        "the oldest went"
    );
    assert_eq!(
        newest_first(rows_of(&app, "other").await),
        other,
        "another camera's stay"
    );
    let m = app.get("/metrics").await.text().await.unwrap();
    assert!(
        m.contains("heldar_snapshots_pruned_total{reason=\"camera_size\"} 6"),
        "{m}"
    );
    // A second sweep finds it under its cap.
    let report = retention(&app, None, None, 0, plenty())
        .sweep()
        .await
        .unwrap();
    assert_eq!(report, SweepReport::default());
    app.stop().await;
}
