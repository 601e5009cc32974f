//! A full disk fails captures cleanly — 507 for a manual store, a counted failure for a slot —
//! never a partial file or a dangling row, and captures recover when space returns. The
//! snapshots directory is a small tmpfs mounted by the test (it runs as root, as CI does).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use common::{error_of, metric, spawn_app_with, wait_for};
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

/// Every file under `dir` but the storage's install marker (`.heldar-install`, written at
/// start-up: docs/storage.md).
fn files_in(dir: &Path) -> Vec<String> {
    walk(dir)
        .into_iter()
        .map(|p| p.strip_prefix(dir).unwrap().display().to_string())
        .filter(|p| p != ".heldar-install")
        .collect()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_captures_cleanly_and_they_recover_when_space_returns() {
    let root = tempfile::tempdir().unwrap();
    let mnt = root.path().join("snaps");
    let _tmpfs = Tmpfs::mount(&mnt, "512k");
    let snaps = mnt.clone();
    let app = spawn_app_with(move |c| c.snapshots_dir = snaps, BuildOptions::default()).await;
    let frame = Bytes::from(pattern::sized_jpeg(60));
    let cam = FakeCamera::start(FakeAuth::None, FrameSupply::Static(frame.clone()))
        .await
        .unwrap();
    app.create_camera(json!({"id": "cam", "snapshot_url": cam.snapshot_url()}))
        .await;

    // Fill the disk: a filler file takes all but ~100 kB.
    let filler = mnt.join("filler.bin");
    let free = heldar::store::free_bytes(&mnt).unwrap();
    std::fs::write(&filler, vec![0u8; (free - 100 * 1024) as usize]).unwrap();

    // One frame fits, the next does not.
    let ok = app.get("/api/v1/cameras/cam/snapshot?store=true").await;
    assert_eq!(ok.status(), 200);
    let (status, body) = error_of(app.get("/api/v1/cameras/cam/snapshot?store=true").await).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (507, Some("disk_full")),
        "{body}"
    );

    // A scheduled slot on the full disk fails the same clean way.
    let s: Value = app
        .post_json(
            "/api/v1/cameras/cam/snapshot-schedules",
            &json!({"interval_seconds": 5}),
        )
        .await
        .json()
        .await
        .unwrap();
    wait_for(
        "the slot's failure to be counted",
        Duration::from_secs(10),
        || async {
            let m = app.get("/metrics").await.text().await.unwrap();
            metric(&m, "heldar_store_failures_total").filter(|n| *n >= 2)
        },
    )
    .await;

    // Nothing partial, nothing dangling: exactly the one stored frame, with its row.
    let files = files_in(&mnt);
    assert_eq!(files.len(), 2, "{files:?}"); // filler + one frame
    assert!(files.iter().all(|f| !f.contains(".tmp-")), "{files:?}");
    let list: Value = app
        .get("/api/v1/cameras/cam/snapshots")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    let stored = std::fs::read(
        mnt.join(
            list[0]["url"]
                .as_str()
                .unwrap()
                .trim_start_matches("/media/snapshots/"),
        ),
    )
    .unwrap();
    assert_eq!(stored, frame, "the stored frame is whole");

    // Space returns: the schedule's next slot and a manual store both succeed.
    std::fs::remove_file(&filler).unwrap();
    wait_for(
        "a scheduled frame after space returned",
        Duration::from_secs(15),
        || async {
            let list: Value = app
                .get("/api/v1/cameras/cam/snapshots")
                .await
                .json()
                .await
                .unwrap();
            list.as_array()
                .unwrap()
                .iter()
                .any(|r| r["schedule_id"] == s["id"])
                .then_some(())
        },
    )
    .await;
    assert_eq!(
        app.get("/api/v1/cameras/cam/snapshot?store=true")
            .await
            .status(),
        200
    );
    app.stop().await;
}
