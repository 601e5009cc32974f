//! Heldar shares snapshots_dir with whatever an operator keeps there: start-up reconciliation and
//! camera deletion touch only the store's temporary files and frame-named files inside a
//! registered camera's folder; everything else is left byte for byte, and reported with a WARN
//! that names the folder.

mod common;

use std::path::Path;
use std::time::Duration;

use chrono::SubsecRound;
use common::{heldar_cmd, ServerProcess};
use heldar::fakecam::pattern;
use heldar::store;
use nix::sys::signal::Signal;
use serde_json::{json, Value};

/// The operator's own files, as the path relative to snapshots_dir and the content.
const OPERATOR_FILES: &[(&str, &[u8])] = &[
    ("notes.txt", b"call the installer"),
    ("Holiday 2025/IMG_0001.jpg", b"\xff\xd8 not ours"),
    ("videos/birthday.mp4", b"mp4 bytes"),
    ("backup/heldar.db.bak", b"SQLite format 3"),
    ("gate/README.txt", b"this folder is the gate camera's"),
    ("gate/plans/site.pdf", b"%PDF"),
    // Names that look like Heldar's but are not exactly its own.
    (".tmp-notes", b"not a temp file of Heldar's"),
    ("gate/.tmp-draft", b"nor this"),
    ("gate/20260102T030405678Z.jpeg", b"wrong extension"),
    // Frame-named files of a camera that is not registered.
    ("ghost/20260102T030405678Z.jpg", b"a frame of nobody's"),
];

fn write(root: &Path, rel: &str, bytes: &[u8]) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, bytes).unwrap();
}

fn assert_operator_files_intact(root: &Path) {
    for (rel, bytes) in OPERATOR_FILES {
        let got = std::fs::read(root.join(rel))
            .unwrap_or_else(|e| panic!("{rel} was removed or unreadable: {e}"));
        assert_eq!(&got, bytes, "{rel} was changed");
    }
}

/// Start Heldar and wait for its background reconciliation pass (which reports and cleans what
/// a clean stop leaves to it) to finish.
async fn start(dir: &Path, photos: &Path) -> ServerProcess {
    let mut cmd = heldar_cmd(dir);
    cmd.args(["serve"])
        .env("HELDAR_SNAPSHOTS_DIR", photos)
        .env("HELDAR_SNAPSHOT_SCHEDULER_ENABLED", "false");
    let server = ServerProcess::start(cmd);
    server
        .wait_for_log("background reconciliation done", Duration::from_secs(60))
        .await;
    server
}

#[tokio::test]
async fn start_up_and_camera_deletion_never_touch_files_heldar_did_not_write() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    for (rel, bytes) in OPERATOR_FILES {
        write(&photos, rel, bytes);
    }
    let client = reqwest::Client::new();

    // First start on a folder Heldar has never used: nothing is removed, and the log says
    // which folder holds entries it leaves alone.
    let server = start(dir.path(), &photos).await;
    let r = client
        .post(server.url("/api/v1/cameras"))
        .json(&json!({"id": "gate", "snapshot_url": "http://127.0.0.1:9/snap.jpg"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let (status, logs) = server.stop_with(Signal::SIGTERM);
    assert!(status.success(), "{logs:?}");
    assert_operator_files_intact(&photos);
    let warned = |logs: &[String], needle: &str| {
        logs.iter()
            .any(|l| l.contains("WARN") && l.contains("left alone") && l.contains(needle))
    };
    assert!(warned(&logs, &photos.display().to_string()), "{logs:#?}");

    // What an interrupted run of Heldar leaves: a complete frame without its row, a damaged
    // frame, and temporary files.
    // (Recent, so retention's age limit keeps them.)
    let frame = pattern::solid_jpeg(64, 48, [1, 2, 3]);
    let at = chrono::Utc::now().trunc_subsecs(3) - chrono::Duration::minutes(1);
    let (good, damaged) = (
        format!("gate/{}", store::file_name(at, 0)),
        format!("gate/{}", store::file_name(at, 1)),
    );
    write(&photos, &good, &frame);
    write(&photos, &damaged, &frame[..frame.len() / 2]);
    write(&photos, "gate/.tmp-00000000000000ab", b"half a frame");
    write(&photos, ".tmp-health-00000000000000cd", b"ok");

    let server = start(dir.path(), &photos).await;
    let frames: Value = client
        .get(server.url("/api/v1/cameras/gate/snapshots"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let frames = frames.as_array().expect("a list");
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0]["url"], format!("/media/snapshots/{good}"));
    assert!(!photos.join(&damaged).exists());
    assert!(!photos.join("gate/.tmp-00000000000000ab").exists());
    assert!(!photos.join(".tmp-health-00000000000000cd").exists());
    assert_operator_files_intact(&photos);

    // Deleting the camera removes its frames, not the operator's files beside them.
    let r = client
        .delete(server.url("/api/v1/cameras/gate"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(!photos.join(&good).exists());
    let (status, logs) = server.stop_with(Signal::SIGTERM);
    assert!(status.success(), "{logs:?}");
    assert_operator_files_intact(&photos);
    assert!(
        warned(&logs, &photos.join("gate").display().to_string()),
        "{logs:#?}"
    );
    assert!(
        warned(&logs, &photos.join("ghost").display().to_string()),
        "{logs:#?}"
    );
}
