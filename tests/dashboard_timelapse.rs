//! The dashboard's timelapse export in a real browser (headless Chromium over WebDriver, see
//! `common::browser`): on a camera's page, "Export timelapse" over the timeline's range shows a
//! progress bar fed by the event stream, and then the finished video in the list, which plays in
//! a `<video>` and downloads.

mod common;

use chrono::{SubsecRound, Utc};
use common::browser::{browser, go, js, screenshot, until};
use common::frames::keep_frames;
use common::spawn_app_with;
use fantoccini::Locator;
use heldar::app::BuildOptions;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exporting_the_timelines_range_shows_progress_then_the_video_which_plays() {
    let app = spawn_app_with(|c| c.snapshot_fsync = false, BuildOptions::default()).await;
    app.create_camera(
        json!({"id": "gate", "name": "Gate", "snapshot_url": "http://127.0.0.1:9/snapshot.jpg"}),
    )
    .await;
    // 120 frames in the last hour, so in the timeline's default range (the last 24 hours).
    let t0 = (Utc::now() - chrono::Duration::minutes(50)).trunc_subsecs(3);
    let times: Vec<_> = (0..120)
        .map(|i| t0 + chrono::Duration::seconds(20 * i))
        .collect();
    keep_frames(&app.state.ops, "gate", &times, |_| (640, 360)).await;

    let (_driver, c) = browser(1280, 1000).await;
    go(&c, &app, "#/cameras/gate").await;
    until(
        &c,
        "the timeline with every frame",
        "document.getElementById('frame-count')?.textContent.startsWith('Frame 120 of 120')",
    )
    .await;
    until(
        &c,
        "the event stream",
        "document.body.dataset.live === 'on'",
    )
    .await;
    let note = until(
        &c,
        "the range note",
        "document.getElementById('tl-range')?.textContent",
    )
    .await;
    assert!(
        note.as_str().unwrap().contains("timeline's range"),
        "{note}"
    );

    // 12 frames/s at 1280 px.
    let fps = c.find(Locator::Id("tl-fps")).await.unwrap();
    fps.clear().await.unwrap();
    fps.send_keys("12").await.unwrap();
    c.find(Locator::Css("#tl-width option[value='1280']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.find(Locator::Id("tl-export"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    // A progress bar for the job at once…
    let job_id = until(
        &c,
        "the export's progress bar",
        "document.querySelector('#tl-jobs li[data-job] progress') && document.querySelector('#tl-jobs li[data-job]').dataset.job",
    )
    .await;
    let job_id = job_id.as_str().unwrap().to_string();
    let bar = js(&c, "const p = document.querySelector('#tl-jobs li progress'); return [Number(p.max), p.getAttribute('aria-label')];").await;
    assert_eq!(bar, json!([120, "Export progress"]));
    // …that the event stream fills: done, with the bar full, after progress events.
    until(
        &c,
        "the job to be shown done",
        "document.querySelector('#tl-jobs li[data-job]').dataset.state === 'done'",
    )
    .await;
    let done = js(&c, "const li = document.querySelector('#tl-jobs li[data-job]'); const p = li.querySelector('progress'); return [Number(p.value), Number(p.max), Number(li.dataset.events), li.textContent];").await;
    assert_eq!(done[0], json!(120), "{done}");
    assert_eq!(done[1], json!(120), "{done}");
    assert!(
        done[2].as_i64().unwrap() >= 1,
        "no job.progress event reached the page: {done}"
    );
    assert!(done[3].as_str().unwrap().contains("Done"), "{done}");
    // The server agrees: the range exported was the timeline's, at 12 frames/s and 1280 px.
    let job: Value = app
        .get(&format!("/api/v1/jobs/{job_id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(job["state"], "done", "{job}");
    let tl = &job["timelapse"];
    assert_eq!(
        (
            tl["frames"].as_i64(),
            tl["fps"].as_i64(),
            tl["width"].as_i64()
        ),
        (Some(120), Some(12), Some(1280))
    );

    // Then the video is listed, with play and download.
    let listed = until(
        &c,
        "the video in the list",
        "document.querySelector('#timelapses li[data-timelapse]')?.dataset.timelapse",
    )
    .await;
    assert_eq!(listed, tl["id"]);
    let download = js(&c, "const a = [...document.querySelectorAll('#timelapses li[data-timelapse] a')].find(a => a.textContent === 'Download'); return [a.getAttribute('href'), a.hasAttribute('download')];").await;
    assert_eq!(download, json!([tl["url"], true]));
    js(&c, "[...document.querySelectorAll('#timelapses li[data-timelapse] button')].find(b => b.textContent === 'Play').click();").await;
    let duration = until(
        &c,
        "the video's metadata",
        "(() => { const v = document.querySelector('#timelapses video'); return v && v.readyState >= 1 && v.duration; })()",
    )
    .await;
    assert!(
        (duration.as_f64().unwrap() - 10.0).abs() < 0.2,
        "120 frames at 12/s: {duration}"
    );
    let size = js(&c, "const v = document.querySelector('#timelapses video'); return [v.videoWidth, v.videoHeight];").await;
    assert_eq!(size, json!([1280, 720]));
    // The card in view: a window tall enough for the page.
    c.set_window_size(1280, 1500).await.unwrap();
    until(&c, "the tall window", "window.innerHeight > 1200").await;
    screenshot(&c, "timelapse", true).await;

    // A bad value gets the server's sentence under the form, and no job.
    fps.clear().await.unwrap();
    fps.send_keys("99").await.unwrap();
    js(&c, "document.getElementById('tl-fps').removeAttribute('max'); document.getElementById('tl-export').click();").await;
    let err = until(&c, "the form's error", "!document.getElementById('tl-error').hidden && document.getElementById('tl-error').textContent").await;
    assert!(err.as_str().unwrap().contains("fps 99"), "{err}");
    let jobs: Value = app.get("/api/v1/jobs").await.json().await.unwrap();
    assert_eq!(jobs.as_array().unwrap().len(), 1, "{jobs}");
    app.stop().await;
}
