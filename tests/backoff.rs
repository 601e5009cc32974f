//! A dead camera backs off (`ops::backoff`), against the real application: real scheduler, real
//! SQLite, real sockets to fake cameras. The dead camera is a `heldar::fakecam` camera that
//! accepts and never answers (the `hang` kind of `fakecam::dead`), so every capture times out.
//! Its scheduled captures fail, then slots are skipped (counted in /metrics, not tried), the
//! camera's status says until when and why, a healthy camera beside it loses no slot, a live
//! snapshot still tries at once, and its success clears the backoff. The dashboard tile shows
//! "retrying at HH:MM:SS".
//!
//! Schedules are inserted with a 2 s interval (the API's minimum is 5 s) so a run of failures
//! fits in seconds; the scheduler and capture do not know the difference.

mod common;

use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, SubsecRound, Utc};
use common::browser::{browser, go, js, screenshot, until};
use common::{metric, spawn_app_with, wait_for, TestApp};
use heldar::app::BuildOptions;
use heldar::events::Event;
use heldar::fakecam::{pattern, Behavior, FakeAuth, FakeCamera, FrameSupply};
use heldar::models::{BackoffReason, CameraId, Schedule, ScheduleId};
use serde_json::{json, Value};

async fn app() -> TestApp {
    // A hung capture ends after 1 s, well inside the 2 s interval.
    spawn_app_with(
        |c| c.capture_timeout = Duration::from_secs(1),
        BuildOptions::default(),
    )
    .await
}

async fn camera(app: &TestApp, id: &str, behavior: Behavior) -> FakeCamera {
    let cam = FakeCamera::start(
        FakeAuth::None,
        FrameSupply::Static(Bytes::from(pattern::solid_jpeg(96, 64, [0, 120, 200]))),
    )
    .await
    .unwrap();
    cam.set_behavior(behavior);
    app.create_camera(json!({"id": id, "snapshot_url": cam.snapshot_url()}))
        .await;
    cam
}

/// A schedule of `camera` every `secs` seconds, due now.
async fn every(app: &TestApp, camera: &str, secs: i64) -> String {
    let now = Utc::now().trunc_subsecs(3);
    let s = Schedule::every(
        ScheduleId::generate().to_string(),
        CameraId::parse(camera).unwrap(),
        secs,
        now,
        now,
    );
    heldar::db::schedules::insert(&app.state.ops.db, &s)
        .await
        .unwrap();
    app.state.ops.scheduler.refresh(&s.id);
    s.id
}

async fn camera_json(app: &TestApp, id: &str) -> Value {
    app.get(&format!("/api/v1/cameras/{id}"))
        .await
        .json()
        .await
        .unwrap()
}

fn ts(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str().map(|s| s.parse().unwrap())
}

async fn metrics(app: &TestApp) -> String {
    app.get("/metrics").await.text().await.unwrap()
}

fn series(text: &str, line_start: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(line_start)?.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// The camera once it has failed `failures` times in a row and waits at least `margin` more.
async fn in_backoff(app: &TestApp, id: &str, failures: i64, margin: chrono::Duration) -> Value {
    wait_for(
        "the camera to back off",
        Duration::from_secs(30),
        || async {
            let v = camera_json(app, id).await;
            let s = &v["status"];
            let until = ts(&s["backoff_until"])?;
            (s["consecutive_failures"].as_i64()? >= failures && until - Utc::now() > margin)
                .then_some(v)
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_camera_backs_off_visibly_and_a_live_success_clears_it() {
    let app = app().await;
    let dead = camera(&app, "dead", Behavior::Hang).await;
    let _healthy = camera(&app, "healthy", Behavior::Ok).await;
    let mut events = app.state.ops.events.subscribe();
    let started = Utc::now();
    every(&app, "dead", 2).await;
    every(&app, "healthy", 2).await;

    // Fails at 0 s (timeout at 1 s: nothing skipped yet), at 2 s (next try at 6 s: one slot
    // skipped), at 6 s (next try at 14 s). Wait for the third failure, with time to spare
    // before the next try.
    let v = in_backoff(&app, "dead", 3, chrono::Duration::seconds(3)).await;
    let status = &v["status"];
    assert_eq!(status["state"], "failing", "{status}");
    assert_eq!(status["backoff_reason"], "unreachable", "{status}");
    let until = ts(&status["backoff_until"]).unwrap();
    let error = status["last_error"].as_str().unwrap();
    assert!(
        error.contains("within 1 s") || error.contains("in time"),
        "a timeout: {status}"
    );

    // The skipped slots are counted as skips, not as failures: one try per failure.
    let m = metrics(&app).await;
    let skips = metric(&m, "heldar_unreachable_backoff_skips_total").unwrap();
    assert!(skips >= 1, "{m}");
    let timeouts = series(
        &m,
        "heldar_captures_total{camera=\"dead\",result=\"timeout\"}",
    );
    assert_eq!(timeouts, dead.hits(), "one capture per try: {m}");
    let elapsed_slots = ((Utc::now() - started).num_milliseconds() / 2000 + 1) as u64;
    assert!(
        timeouts + skips <= elapsed_slots && timeouts < elapsed_slots,
        "{timeouts} tries and {skips} skips in {elapsed_slots} slots"
    );

    // The backoff was published as it grew, the last one with the status' time.
    let mut published = Vec::new();
    while let Ok(e) = events.try_recv() {
        if let Event::CameraBackoff {
            camera,
            reason,
            until,
            ..
        } = &*e
        {
            assert_eq!(camera.as_str(), "dead");
            assert_eq!(*reason, BackoffReason::Unreachable);
            published.push(*until);
        }
    }
    assert!(published.len() >= 2, "{published:?}");
    assert!(published.windows(2).all(|w| w[0] < w[1]), "{published:?}");
    assert_eq!(published.last(), Some(&until));

    // The healthy camera beside it lost no slot.
    let frames: Vec<Value> = app
        .get("/api/v1/cameras/healthy/snapshots")
        .await
        .json()
        .await
        .unwrap();
    let due = (Utc::now() - started).num_milliseconds() / 2000;
    assert!(
        frames.len() as i64 >= due,
        "{} frames for {due} elapsed slots",
        frames.len()
    );
    let h = camera_json(&app, "healthy").await;
    assert_eq!(h["status"]["backoff_until"], Value::Null, "{h}");

    // The camera comes back. A live snapshot does not wait for the backoff.
    dead.set_behavior(Behavior::Ok);
    assert!(Utc::now() < until);
    let r = app.get("/api/v1/cameras/dead/snapshot").await;
    assert_eq!(r.status(), 200);
    // Its success ends the backoff: the status says so, and the next slot captures.
    let v = wait_for("the backoff to clear", Duration::from_secs(10), || async {
        let v = camera_json(&app, "dead").await;
        (v["status"]["state"] == "online").then_some(v)
    })
    .await;
    assert_eq!(v["status"]["backoff_until"], Value::Null, "{v}");
    assert_eq!(v["status"]["backoff_reason"], Value::Null, "{v}");
    wait_for(
        "a scheduled frame of the recovered camera",
        Duration::from_secs(5),
        || async {
            let frames: Vec<Value> = app
                .get("/api/v1/cameras/dead/snapshots")
                .await
                .json()
                .await
                .unwrap();
            (!frames.is_empty()).then_some(())
        },
    )
    .await;
    assert!(Utc::now() < until, "it did not wait for the old backoff");
    app.stop().await;
}

/// The grid's tile of a camera in backoff says when it is retried, in one line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_tile_says_when_a_backing_off_camera_is_retried() {
    let app = app().await;
    let _dead = camera(&app, "dead", Behavior::Hang).await;
    let _healthy = camera(&app, "healthy", Behavior::Ok).await;
    every(&app, "dead", 2).await;
    let v = in_backoff(&app, "dead", 2, chrono::Duration::seconds(1)).await;
    let (_driver, c) = browser(1280, 900).await;
    go(&c, &app, "#/").await;
    let tile = "document.querySelector('li.tile[data-camera=\"dead\"] .tile-retry')";
    let line = until(
        &c,
        "the retry line",
        &format!("{tile} && !{tile}.hidden && {tile}.textContent"),
    )
    .await;
    let line = line.as_str().unwrap().to_string();
    // The time of day of the camera's backoff_until (or a later one, if it grew meanwhile), in
    // the browser's time zone.
    let first = js(
        &c,
        &format!(
            "return new Date({:?}).toTimeString().slice(0, 8);",
            v["status"]["backoff_until"].as_str().unwrap()
        ),
    )
    .await;
    let hhmmss = line
        .strip_prefix("retrying at ")
        .unwrap_or_else(|| panic!("{line}"));
    assert!(
        hhmmss.len() == 8 && hhmmss.as_bytes()[2] == b':' && hhmmss.as_bytes()[5] == b':',
        "{line}"
    );
    assert!(hhmmss >= first.as_str().unwrap(), "{line} vs {first}");
    let healthy = js(
        &c,
        "return document.querySelector('li.tile[data-camera=\"healthy\"] .tile-retry').hidden;",
    )
    .await;
    assert_eq!(healthy, json!(true));
    screenshot(&c, "grid-backoff", false).await;
    c.close().await.unwrap();
    app.stop().await;
}
