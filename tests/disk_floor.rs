//! The free-disk floor holds between retention sweeps: a small real filesystem (a tmpfs mounted
//! by the test — it runs as root, as CI does) is filled far faster than the sweep interval
//! (300 s here), and no frame is lost: the store wakes the sweeper as free space crosses the
//! floor, and a write that meets a full disk has the sweeper prune and is retried once.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use common::{metric, spawn_app_with, wait_for, TestApp};
use heldar::app::BuildOptions;
use heldar::fakecam::{pattern, FakeAuth, FakeCamera, FrameSupply};
use serde_json::{json, Value};

struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "heldar-test"])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "this test mounts a small tmpfs: run it as root (CI and scripts/test in a root container do)");
        Tmpfs(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn frame_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| {
        d.filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".jpg"))
            .count()
    })
}

async fn stored_rows(app: &TestApp, cam: &str) -> usize {
    let list: Value = app
        .get(&format!("/api/v1/cameras/{cam}/snapshots?limit=1000"))
        .await
        .json()
        .await
        .unwrap();
    list.as_array().unwrap().len()
}

async fn app_on_tmpfs(mnt: &Path, floor: u64) -> (TestApp, FakeCamera) {
    let snaps = mnt.to_path_buf();
    let app = spawn_app_with(
        move |c| {
            c.snapshots_dir = snaps;
            c.min_free_disk_bytes = floor;
            c.retention_interval = Duration::from_secs(300);
            c.snapshot_fsync = false;
        },
        BuildOptions::default(),
    )
    .await;
    let frame = Bytes::from(pattern::sized_jpeg(60));
    let cam = FakeCamera::start(FakeAuth::None, FrameSupply::Static(frame))
        .await
        .unwrap();
    app.create_camera(json!({"id": "cam", "snapshot_url": cam.snapshot_url()}))
        .await;
    (app, cam)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_floor_holds_between_sweeps_and_no_frame_is_lost() {
    let root = tempfile::tempdir().unwrap();
    let mnt = root.path().join("snaps");
    let _tmpfs = Tmpfs::mount(&mnt, "6m");
    let floor = 2_000_000;
    let (app, _cam) = app_on_tmpfs(&mnt, floor).await;

    // ~12 MB of frames into a 6 MB filesystem, 4 at a time, well within one sweep interval.
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (client, url) = (
            app.client.clone(),
            app.url("/api/v1/cameras/cam/snapshot?store=true"),
        );
        tasks.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            for _ in 0..50 {
                statuses.push(client.get(&url).send().await.unwrap().status().as_u16());
            }
            statuses
        }));
    }
    let mut failed = 0;
    for t in tasks {
        failed += t.await.unwrap().iter().filter(|s| **s != 200).count();
    }
    let took = started.elapsed();
    assert!(took < Duration::from_secs(120), "{took:?}");
    assert_eq!(failed, 0, "every frame of 200 stored");

    // Rows and files agree and account for every frame, once the sweep woken last is done.
    let (rows, pruned) = wait_for(
        "the last sweep to finish",
        Duration::from_secs(10),
        || async {
            let m = app.get("/metrics").await.text().await.unwrap();
            assert_eq!(metric(&m, "heldar_store_failures_total"), Some(0));
            let pruned = m
                .lines()
                .find_map(|l| {
                    l.strip_prefix(r#"heldar_snapshots_pruned_total{reason="free_disk"} "#)
                })
                .and_then(|v| v.trim().parse::<u64>().ok())?;
            let rows = stored_rows(&app, "cam").await;
            (rows == frame_files(&mnt.join("cam")) && rows as u64 + pruned == 200)
                .then_some((rows, pruned))
        },
    )
    .await;
    assert!(pruned >= 50, "{pruned} pruned, {rows} left");
    // The floor holds (give or take the last frame or two written after the last sweep).
    let free = heldar::store::free_bytes(&mnt).unwrap();
    assert!(free + 200_000 >= floor, "free {free} vs floor {floor}");
    // statvfs was not called on every write.
    let measured = app.state.ops.store.floor().measurements();
    assert!(measured < 200, "{measured} statvfs calls for 200 writes");
    eprintln!(
        "200 frames in {took:?}; {pruned} pruned; {measured} statvfs calls; {free} bytes free"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_that_meets_a_full_disk_prunes_and_retries_once() {
    let root = tempfile::tempdir().unwrap();
    let mnt = root.path().join("snaps");
    let _tmpfs = Tmpfs::mount(&mnt, "4m");
    let floor = 300_000;
    let (app, _cam) = app_on_tmpfs(&mnt, floor).await;
    for _ in 0..20 {
        assert_eq!(
            app.get("/api/v1/cameras/cam/snapshot?store=true")
                .await
                .status(),
            200
        );
    }
    // Someone else fills the disk behind the store's back: 20 kB left, no frame fits.
    let filler = mnt.join("filler.bin");
    let free = heldar::store::free_bytes(&mnt).unwrap();
    std::fs::write(&filler, vec![0u8; (free - 20_000) as usize]).unwrap();

    let resp = app.get("/api/v1/cameras/cam/snapshot?store=true").await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let m = app.get("/metrics").await.text().await.unwrap();
    assert_eq!(metric(&m, "heldar_store_failures_total"), Some(0));
    let rows = stored_rows(&app, "cam").await;
    // Only the oldest frames the floor needed went: ~300 kB of 60 kB frames, not all 20.
    assert!((12..21).contains(&rows), "{rows} frames left");
    assert_eq!(rows, frame_files(&mnt.join("cam")));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_size_cap_holds_between_sweeps_too() {
    // No tmpfs needed: the cap is about stored bytes, not the disk.
    let cap = 1_000_000;
    let app = spawn_app_with(
        move |c| {
            c.snapshot_max_bytes = Some(cap);
            c.retention_interval = Duration::from_secs(300);
            c.snapshot_fsync = false;
        },
        BuildOptions::default(),
    )
    .await;
    let frame = Bytes::from(pattern::sized_jpeg(60));
    let size = frame.len() as u64;
    let cam = FakeCamera::start(FakeAuth::None, FrameSupply::Static(frame))
        .await
        .unwrap();
    app.create_camera(json!({"id": "cam", "snapshot_url": cam.snapshot_url()}))
        .await;
    // ~3.6 MB into a 1 MB cap, well within one sweep interval.
    for _ in 0..60 {
        assert_eq!(
            app.get("/api/v1/cameras/cam/snapshot?store=true")
                .await
                .status(),
            200
        );
    }
    let stored = wait_for(
        "the last sweep to finish",
        Duration::from_secs(10),
        || async {
            let rows = stored_rows(&app, "cam").await as u64;
            (rows * size <= cap + size).then_some(rows * size)
        },
    )
    .await;
    let m = app.get("/metrics").await.text().await.unwrap();
    let pruned = m
        .lines()
        .find_map(|l| l.strip_prefix(r#"heldar_snapshots_pruned_total{reason="size"} "#))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .expect("frames were pruned for the size cap");
    assert!(pruned >= 40, "{pruned} pruned; {stored} bytes stored");
    app.stop().await;
}
