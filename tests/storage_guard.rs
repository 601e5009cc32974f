//! One frame storage, one database (docs/storage.md "One storage, one database"): the storage is
//! marked with its install, a process started with another database is refused before it reads
//! or deletes anything, and reconciliation never empties the index because the storage it sees
//! is absent (an unmounted disk) or the wrong one (another prefix).
//!
//! Every case runs the real `heldar serve` binary on a real database (SQLite, or PostgreSQL on
//! the suite's second pass) with real JPEG frames; the bucket cases against moto's S3 server.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use chrono::SubsecRound;
use common::moto::Moto;
use common::{heldar_cmd, metric, ServerProcess};
use heldar::fakecam::pattern;
use heldar::store;
use nix::sys::signal::Signal;
use serde_json::{json, Value};

const FRAMES: usize = 10;

/// `heldar serve` of the install in `dir`, without the scheduler, with `env` added.
fn serve(dir: &Path, env: &[(&str, String)]) -> Command {
    let mut cmd = heldar_cmd(dir);
    cmd.arg("serve")
        .env("HELDAR_SNAPSHOT_SCHEDULER_ENABLED", "false");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Start it and wait for its background reconciliation to finish.
async fn start(dir: &Path, env: &[(&str, String)]) -> ServerProcess {
    let server = ServerProcess::start(serve(dir, env));
    server
        .wait_for_log("background reconciliation done", Duration::from_secs(60))
        .await;
    server
}

/// Stop it cleanly; its log lines.
fn stop(server: ServerProcess) -> Vec<String> {
    let (status, logs) = server.stop_with(Signal::SIGTERM);
    assert!(status.success(), "{logs:#?}");
    logs
}

/// A start that must fail: its stderr.
fn refused(dir: &Path, env: &[(&str, String)]) -> String {
    let out = serve(dir, env)
        .env("HELDAR_API_PORT", "0")
        .env("HELDAR_MIN_FREE_DISK_GB", "0")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "it started: {text}");
    text
}

async fn add_camera(server: &ServerProcess, id: &str) {
    let r = reqwest::Client::new()
        .post(server.url("/api/v1/cameras"))
        .json(&json!({"id": id, "snapshot_url": "http://127.0.0.1:9/snap.jpg"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
}

/// The media URLs of a camera's frames, as the API lists them.
async fn frames(server: &ServerProcess, id: &str) -> Vec<String> {
    let v: Value = reqwest::get(server.url(&format!("/api/v1/cameras/{id}/snapshots?limit=100")))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut urls: Vec<String> = v
        .as_array()
        .expect("a list")
        .iter()
        .map(|f| f["url"].as_str().unwrap().to_string())
        .collect();
    urls.sort();
    urls
}

async fn missing_gauge(server: &ServerProcess) -> Option<u64> {
    metric(&server.metrics().await, "heldar_storage_missing_frames")
}

/// `FRAMES` real JPEG frames of camera `cam`, named as the store names them (a few minutes
/// old, so retention keeps them): relative path → bytes.
fn frame_set(cam: &str) -> BTreeMap<String, Vec<u8>> {
    let t = chrono::Utc::now().trunc_subsecs(3) - chrono::Duration::minutes(5);
    (0..FRAMES)
        .map(|i| {
            let at = t + chrono::Duration::seconds(i as i64);
            (
                format!("{cam}/{}", store::file_name(at, 0)),
                pattern::solid_jpeg(64, 48, [i as u8 * 20, 80, 160]),
            )
        })
        .collect()
}

fn write_files(root: &Path, set: &BTreeMap<String, Vec<u8>>) {
    for (rel, bytes) in set {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
}

/// Every file under `root`, relative path → bytes.
fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().display().to_string();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn media(set: &BTreeMap<String, Vec<u8>>) -> Vec<String> {
    set.keys()
        .map(|r| format!("/media/snapshots/{r}"))
        .collect()
}

/// An install in `dir` with a camera `gate` (its frames are put in place by the test and
/// indexed by the next start's reconciliation).
async fn install_with_camera(dir: &Path, env: &[(&str, String)]) {
    let server = start(dir, env).await;
    add_camera(&server, "gate").await;
    stop(server);
}

#[tokio::test]
async fn a_second_database_on_the_same_snapshots_folder_is_refused_and_touches_nothing() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let shared = a.path().join("frames");
    let env = [("HELDAR_SNAPSHOTS_DIR", shared.display().to_string())];
    let set = frame_set("gate");
    install_with_camera(a.path(), &env).await;
    write_files(&shared, &set);
    let server = start(a.path(), &env).await;
    assert_eq!(frames(&server, "gate").await, media(&set));
    stop(server);
    let marker = std::fs::read_to_string(shared.join(".heldar-install")).unwrap();
    assert!(marker.starts_with("ins_"), "{marker}");
    let before = tree(&shared);

    // Another install (its own database) pointed at the same folder stops at once.
    let text = refused(b.path(), &env);
    assert!(
        text.contains("belongs to another Heldar database")
            && text.contains("HELDAR_SNAPSHOTS_DIR")
            && text.contains(&shared.display().to_string()),
        "{text}"
    );
    assert_eq!(
        tree(&shared),
        before,
        "the refused start changed the folder"
    );

    // The install it belongs to still starts and has every frame.
    let server = start(a.path(), &env).await;
    assert_eq!(frames(&server, "gate").await, media(&set));
    let logs = stop(server);
    assert!(!logs.iter().any(|l| l.contains("ERROR")), "{logs:#?}");
    assert_eq!(tree(&shared), before);
}

#[tokio::test]
async fn an_unmounted_snapshots_folder_keeps_every_row_and_nothing_is_lost_when_it_returns() {
    let dir = tempfile::tempdir().unwrap();
    let snaps = dir.path().join("data/snapshots");
    let set = frame_set("gate");
    install_with_camera(dir.path(), &[]).await;
    write_files(&snaps, &set);
    let server = start(dir.path(), &[]).await;
    assert_eq!(frames(&server, "gate").await, media(&set));
    stop(server);

    // A frame deleted by hand: its row goes at the next start, as ever.
    let (gone, _) = set.iter().next().unwrap();
    std::fs::remove_file(snaps.join(gone)).unwrap();
    let mut kept = set.clone();
    kept.remove(gone.as_str());
    let server = start(dir.path(), &[]).await;
    assert_eq!(frames(&server, "gate").await, media(&kept));
    assert_eq!(missing_gauge(&server).await, Some(0));
    let logs = stop(server);
    assert!(
        logs.iter()
            .any(|l| l.contains("background reconciliation done")
                && l.contains("rows_without_file_removed=1")),
        "{logs:#?}"
    );

    // The disk is not mounted: the folder is away (an empty mount point in its place).
    let away = dir.path().join("snapshots-away");
    std::fs::rename(&snaps, &away).unwrap();
    let server = start(dir.path(), &[]).await;
    assert_eq!(
        frames(&server, "gate").await,
        media(&kept),
        "rows were removed"
    );
    assert_eq!(missing_gauge(&server).await, Some(kept.len() as u64));
    let logs = stop(server);
    let errors: Vec<&String> = logs.iter().filter(|l| l.contains("ERROR")).collect();
    assert_eq!(errors.len(), 1, "{logs:#?}");
    let n = kept.len();
    assert!(
        errors[0].contains(&format!("is missing {n} of {n} frames"))
            && errors[0].contains("their rows are kept")
            && errors[0].contains("HELDAR_SNAPSHOTS_DIR")
            && errors[0].contains(&snaps.display().to_string()),
        "{}",
        errors[0]
    );

    // The disk is back: every frame is there, with its row, and nothing is reported.
    std::fs::remove_dir_all(&snaps).unwrap();
    std::fs::rename(&away, &snaps).unwrap();
    let server = start(dir.path(), &[]).await;
    assert_eq!(frames(&server, "gate").await, media(&kept));
    let r = reqwest::get(server.url(&media(&kept)[0])).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(missing_gauge(&server).await, Some(0));
    let logs = stop(server);
    assert!(!logs.iter().any(|l| l.contains("ERROR")), "{logs:#?}");
    let mut files = tree(&snaps);
    assert!(files.remove(".heldar-install").is_some());
    assert_eq!(files, kept);
}

fn s3_env(moto: &Moto, prefix: &str) -> Vec<(&'static str, String)> {
    vec![
        ("HELDAR_STORAGE_URL", format!("s3://frames/{prefix}")),
        ("AWS_ENDPOINT_URL", moto.endpoint()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "AKIAHELDARTEST0001".into()),
        ("AWS_SECRET_ACCESS_KEY", "guard-secret-0123456789".into()),
    ]
}

async fn bucket(moto: &Moto) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for k in moto.keys("frames", "").await {
        let v = moto.object("frames", &k).await.unwrap().to_vec();
        out.insert(k, v);
    }
    out
}

#[tokio::test]
async fn a_second_database_on_the_same_bucket_prefix_is_refused_and_a_wrong_prefix_removes_no_row()
{
    let moto = Moto::start().await;
    moto.create_bucket("frames").await;
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let env = s3_env(&moto, "fleet");
    let set = frame_set("gate");
    install_with_camera(a.path(), &env).await;
    for (rel, bytes) in &set {
        moto.put_object("frames", &format!("fleet/{rel}"), bytes.clone())
            .await;
    }
    let server = start(a.path(), &env).await;
    assert_eq!(frames(&server, "gate").await, media(&set));
    stop(server);
    let before = bucket(&moto).await;
    assert!(
        before.contains_key("fleet/.heldar-install"),
        "{:?}",
        before.keys()
    );

    // A node with its own database on the fleet's bucket: refused before it lists, reads or
    // deletes anything (so no `camera rm` of it can delete the fleet's frames either).
    let text = refused(b.path(), &env);
    assert!(
        text.contains("s3://frames/fleet belongs to another Heldar database")
            && text.contains("HELDAR_STORAGE_URL"),
        "{text}"
    );
    assert!(!text.contains("guard-secret"), "{text}");
    assert_eq!(bucket(&moto).await, before);

    // The fleet's own database with a wrong prefix: that prefix is adopted (it is empty), and
    // the frames it lacks keep their rows, with the ERROR.
    let server = start(a.path(), &s3_env(&moto, "elsewhere")).await;
    assert_eq!(
        frames(&server, "gate").await,
        media(&set),
        "rows were removed"
    );
    assert_eq!(missing_gauge(&server).await, Some(FRAMES as u64));
    let logs = stop(server);
    let errors: Vec<&String> = logs.iter().filter(|l| l.contains("ERROR")).collect();
    assert_eq!(errors.len(), 1, "{logs:#?}");
    assert!(
        errors[0].contains("s3://frames/elsewhere")
            && errors[0].contains(&format!("is missing {FRAMES} of {FRAMES} frames"))
            && errors[0].contains("HELDAR_STORAGE_URL"),
        "{}",
        errors[0]
    );
    // Back on the right prefix, nothing was lost.
    let server = start(a.path(), &env).await;
    assert_eq!(frames(&server, "gate").await, media(&set));
    stop(server);
    let mut now = bucket(&moto).await;
    assert!(now.remove("elsewhere/.heldar-install").is_some());
    assert_eq!(now, before);
}
