//! Restarts: after a clean stop the API serves and the scheduler fires before the background
//! reconciliation pass has run at all; after an unclean stop, what the crashed run left is
//! reconciled before `Application::build` returns (so before the scheduler's first slot), and
//! only that — older debris waits for the background pass.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{SubsecRound, Utc};
use common::{test_config, wait_for};
use heldar::app::{Application, BuildOptions};
use heldar::fakecam::{pattern, FakeAuth, FakeCamera, FrameSupply};
use heldar::models::CameraId;
use heldar::store;
use serde_json::{json, Value};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

struct Running {
    base: String,
    client: reqwest::Client,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
    state: heldar::app::AppState,
}

impl Running {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn get(&self, path: &str) -> Value {
        let r = self.client.get(self.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "GET {path}");
        r.json().await.unwrap()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let r = self
            .client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "POST {path}");
        r.json().await.unwrap()
    }

    async fn frames(&self, camera: &str) -> Vec<String> {
        self.get(&format!("/api/v1/cameras/{camera}/snapshots"))
            .await
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["url"].as_str().unwrap().to_string())
            .collect()
    }

    /// A clean stop (the token, as SIGTERM does).
    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.server)
            .await
            .expect("stops within 30 s")
            .unwrap()
            .unwrap();
    }
}

async fn start(dir: &std::path::Path, gate: Option<Arc<Semaphore>>) -> Running {
    let shutdown = CancellationToken::new();
    let opts = BuildOptions {
        reconcile_gate: gate,
        ..BuildOptions::default()
    };
    let app = Application::build(test_config(dir), opts, shutdown.clone())
        .await
        .expect("the app builds");
    let base = format!("http://127.0.0.1:{}", app.port());
    let state = app.state().clone();
    Running {
        base,
        client: reqwest::Client::new(),
        shutdown,
        server: tokio::spawn(app.run_until_stopped()),
        state,
    }
}

fn jpeg() -> Vec<u8> {
    pattern::solid_jpeg(64, 48, [10, 20, 30])
}

fn media(rel: &str) -> String {
    format!("/media/snapshots/{rel}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_restart_serves_and_fires_before_the_background_pass_runs() {
    let dir = tempfile::tempdir().unwrap();
    let cam = FakeCamera::start(FakeAuth::None, FrameSupply::Static(Bytes::from(jpeg())))
        .await
        .unwrap();
    let first = start(dir.path(), None).await;
    first
        .post(
            "/api/v1/cameras",
            json!({"id": "gate", "snapshot_url": cam.snapshot_url()}),
        )
        .await;
    first.stop().await;

    // Left behind while Heldar was stopped: a frame without its row (an older install, a
    // copied folder), a damaged frame, a stray temp file. Only the background pass handles
    // them after a clean stop.
    let snaps = dir.path().join("snapshots");
    std::fs::create_dir_all(snaps.join("gate")).unwrap();
    let at = Utc::now().trunc_subsecs(3) - chrono::Duration::hours(1);
    let (orphan, damaged) = (
        format!("gate/{}", store::file_name(at, 0)),
        format!("gate/{}", store::file_name(at, 1)),
    );
    std::fs::write(snaps.join(&orphan), jpeg()).unwrap();
    std::fs::write(snaps.join(&damaged), &jpeg()[..50]).unwrap();
    let temp = snaps.join("gate/.tmp-00000000000000ab");
    std::fs::write(&temp, b"half").unwrap();

    let gate = Arc::new(Semaphore::new(0));
    let app = start(dir.path(), Some(gate.clone())).await;
    // Serving, and firing: a scheduled frame lands while the background pass is held back.
    app.get("/api/v1/health").await;
    app.post(
        "/api/v1/cameras/gate/snapshot-schedules",
        json!({"interval_seconds": 5}),
    )
    .await;
    let fired = wait_for(
        "the first scheduled frame",
        Duration::from_secs(30),
        || async {
            let frames = app.frames("gate").await;
            frames.into_iter().find(|f| *f != media(&orphan))
        },
    )
    .await;
    assert!(fired.starts_with("/media/snapshots/gate/"), "{fired}");
    assert!(
        !app.frames("gate").await.contains(&media(&orphan)),
        "the orphan was indexed before the background pass ran"
    );
    assert!(snaps.join(&damaged).exists() && temp.exists());

    // Let the pass run: it cleans what the clean stop left to it, and keeps the new frames.
    gate.add_permits(1);
    wait_for("the orphan re-indexed", Duration::from_secs(30), || async {
        app.frames("gate")
            .await
            .contains(&media(&orphan))
            .then_some(())
    })
    .await;
    wait_for("the debris removed", Duration::from_secs(30), || async {
        (!snaps.join(&damaged).exists() && !temp.exists()).then_some(())
    })
    .await;
    assert!(app.frames("gate").await.contains(&fired));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_crash_the_crashed_runs_debris_is_reconciled_before_start_up_ends() {
    let dir = tempfile::tempdir().unwrap();
    let first = start(dir.path(), None).await;
    first
        .post(
            "/api/v1/cameras",
            json!({"id": "gate", "snapshot_url": "http://127.0.0.1:9/snap.jpg"}),
        )
        .await;
    // A frame whose row commits, and whose file the crash (a bad disk) will lose.
    let lost_at = Utc::now().trunc_subsecs(3);
    let cam = CameraId::parse("gate").unwrap();
    let stored = first
        .state
        .ops
        .store
        .write_frame(&cam, lost_at, Bytes::from(jpeg()))
        .await
        .unwrap();
    first
        .state
        .ops
        .writer
        .index(vec![heldar::models::Snapshot {
            id: heldar::models::new_id("snp"),
            camera_id: cam.clone(),
            schedule_id: None,
            path: stored.rel_path.clone(),
            taken_at: lost_at,
            size_bytes: stored.size as i64,
            width: Some(64),
            height: Some(48),
            created_at: lost_at,
            tag: None,
        }])
        .await
        .unwrap();
    first.stop().await;

    // Make the last run look like a run that began a minute ago and was killed.
    let pool = heldar::db::connect(&test_config(dir.path()).database_url)
        .await
        .unwrap();
    let began = Utc::now() - chrono::Duration::minutes(1);
    heldar::db::meta::record_run_start(&pool, began)
        .await
        .unwrap();
    pool.close().await;

    // Its debris: a temp file, a torn frame, a frame whose row never committed, a row whose
    // file is gone. And debris from long before it, which is the background pass's.
    let snaps = dir.path().join("snapshots");
    let now = Utc::now().trunc_subsecs(3);
    let (torn, unindexed) = (
        format!("gate/{}", store::file_name(now, 1)),
        format!("gate/{}", store::file_name(now, 2)),
    );
    let old = format!(
        "gate/{}",
        store::file_name(now - chrono::Duration::days(2), 0)
    );
    std::fs::write(snaps.join(&torn), &jpeg()[..50]).unwrap();
    std::fs::write(snaps.join(&unindexed), jpeg()).unwrap();
    std::fs::write(snaps.join(&old), jpeg()).unwrap();
    let temp = snaps.join("gate/.tmp-00000000000000cd");
    std::fs::write(&temp, b"half").unwrap();
    std::fs::remove_file(snaps.join(&stored.rel_path)).unwrap();

    let gate = Arc::new(Semaphore::new(0));
    let app = start(dir.path(), Some(gate.clone())).await;
    // Already done when build returned (the scheduler is started after this check).
    assert!(!temp.exists(), "temp file left");
    assert!(!snaps.join(&torn).exists(), "torn frame left");
    let frames = app.frames("gate").await;
    assert!(frames.contains(&media(&unindexed)), "{frames:?}");
    assert!(!frames.contains(&media(&stored.rel_path)), "{frames:?}");
    // Older than the crashed run: untouched until the background pass runs.
    assert!(!frames.contains(&media(&old)), "{frames:?}");
    gate.add_permits(1);
    wait_for(
        "the old frame re-indexed",
        Duration::from_secs(30),
        || async {
            app.frames("gate")
                .await
                .contains(&media(&old))
                .then_some(())
        },
    )
    .await;
    app.stop().await;
}
