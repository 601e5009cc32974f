//! One camera's page in a real browser (headless Chromium over WebDriver, as in
//! tests/dashboard.rs): the time-proportional scrubber and its gaps, the empty timeline's
//! sentences, the page's width at 1280 px with many frames, toasts that cover no control, and a
//! live snapshot of a camera that never answers (progress, Cancel, how long it waited).
//!
//! Frames with chosen times are written the way start-up reconciliation writes them: the file
//! through the store, the row through the writer (`index`), so the server serves real JPEGs at
//! exactly those times.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, SubsecRound, Utc};
use common::browser::{browser, free_port, go, js, press, screenshot, until, PAGE_WAIT};
use common::{camera_in_state, spawn_app_with, TestApp};
use fantoccini::actions::{InputSource, MouseActions, PointerAction, MOUSE_BUTTON_LEFT};
use fantoccini::key::Key;
use fantoccini::{Client, Locator};
use heldar::app::BuildOptions;
use heldar::fakecam::pattern::{demo_frame, solid_jpeg};
use heldar::fakecam::{Behavior, FakeAuth, FakeCamera, FrameSupply};
use heldar::models::{new_id, CameraId, Snapshot};
use serde_json::{json, Value};

/// Store one real JPEG per time in `times` for `camera`; returns the rows (in `times`' order).
async fn put_frames(app: &TestApp, camera: &str, times: &[DateTime<Utc>]) -> Vec<Snapshot> {
    put_frames_with(app, camera, times, |_| solid_jpeg(320, 180, [40, 90, 160])).await
}

/// The same with each frame's bytes made from its time.
async fn put_frames_with(
    app: &TestApp,
    camera: &str,
    times: &[DateTime<Utc>],
    frame: impl Fn(DateTime<Utc>) -> Vec<u8>,
) -> Vec<Snapshot> {
    let id = CameraId::parse(camera).unwrap();
    let mut rows = Vec::new();
    for t in times {
        let jpeg = Bytes::from(frame(*t));
        let file = app
            .state
            .ops
            .store
            .write_frame(&id, *t, jpeg.clone())
            .await
            .unwrap();
        rows.push(Snapshot {
            id: new_id("snp"),
            camera_id: id.clone(),
            schedule_id: None,
            path: file.rel_path,
            taken_at: *t,
            size_bytes: jpeg.len() as i64,
            width: Some(320),
            height: Some(180),
            created_at: Utc::now().trunc_subsecs(3),
            tag: None,
        });
    }
    app.state.ops.writer.index(rows.clone()).await.unwrap();
    rows
}

/// The application, with its one background pass over the frame files held back: that pass
/// indexes files it finds without a row, and would race `put_frames` for them.
async fn app_for_frames() -> TestApp {
    spawn_app_with(
        |_| {},
        BuildOptions {
            reconcile_gate: Some(Arc::new(tokio::sync::Semaphore::new(0))),
            ..BuildOptions::default()
        },
    )
    .await
}

/// A camera whose address nothing listens on (its captures fail at once, quietly).
async fn quiet_camera(app: &TestApp, id: &str) {
    app.create_camera(
        json!({"id": id, "vendor": "axis", "address": "127.0.0.1", "http_port": free_port()}),
    )
    .await;
}

async fn schedule(app: &TestApp, camera: &str, interval: i64, enabled: bool) -> Value {
    let r = app
        .post_json(
            &format!("/api/v1/cameras/{camera}/snapshot-schedules"),
            &json!({"interval_seconds": interval, "enabled": enabled}),
        )
        .await;
    assert_eq!(r.status(), 201);
    r.json().await.unwrap()
}

/// Pick a fixed range (`1h`, `24h`, `7d`, `30d`) and wait until the scrubber's scale is that
/// range: the page draws the default range first, and a check made before the redraw would see
/// the old scale (its frames can be the same ones).
async fn pick_range(c: &Client, key: &str) {
    let hours = match key {
        "1h" => 1,
        "24h" => 24,
        "7d" => 7 * 24,
        "30d" => 30 * 24,
        other => panic!("pick_range: {other} is not a fixed range"),
    };
    c.find(Locator::Css(&format!("#range option[value='{key}']")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        c,
        &format!("the scrubber's scale to be {key}"),
        &format!(
            "(() => {{ const t = document.getElementById('scrub-track'); \
             if (!t || !t.dataset.from || !t.dataset.to) return false; \
             const w = Date.parse(t.dataset.to) - Date.parse(t.dataset.from); \
             return Math.abs(w - {hours} * 3600e3) < 120e3; }})()"
        ),
    )
    .await;
}

/// The viewport point of time `t` on the scrubber's track.
async fn track_point(c: &Client, t: DateTime<Utc>) -> (f64, f64) {
    let v = js(
        c,
        &format!(
            "const tr = document.getElementById('scrub-track'); \
             const r = tr.getBoundingClientRect(); \
             const from = Date.parse(tr.dataset.from), to = Date.parse(tr.dataset.to); \
             return [r.left + ({t} - from) / (to - from) * r.width, r.top + r.height / 2];",
            t = t.timestamp_millis()
        ),
    )
    .await;
    (v[0].as_f64().unwrap(), v[1].as_f64().unwrap())
}

/// Where time `t` falls on the scrubber's scale, as a fraction of its width.
async fn scale_fraction(c: &Client, t: DateTime<Utc>) -> f64 {
    js(
        c,
        &format!(
            "const tr = document.getElementById('scrub-track'); \
             const from = Date.parse(tr.dataset.from), to = Date.parse(tr.dataset.to); \
             return ({} - from) / (to - from);",
            t.timestamp_millis()
        ),
    )
    .await
    .as_f64()
    .unwrap()
}

/// Where the thumb's centre is, as a fraction of the track's width.
async fn thumb_fraction(c: &Client) -> f64 {
    js(
        c,
        "const r = document.getElementById('scrub-track').getBoundingClientRect(); \
         const t = document.getElementById('scrub-thumb').getBoundingClientRect(); \
         return (t.left + t.width / 2 - r.left) / r.width;",
    )
    .await
    .as_f64()
    .unwrap()
}

async fn click_at(c: &Client, (x, y): (f64, f64)) {
    c.perform_actions(
        MouseActions::new("mouse".into())
            .then(PointerAction::MoveTo {
                duration: None,
                x: x.round() as i64,
                y: y.round() as i64,
            })
            .then(PointerAction::Down {
                button: MOUSE_BUTTON_LEFT,
            })
            .then(PointerAction::Up {
                button: MOUSE_BUTTON_LEFT,
            }),
    )
    .await
    .expect("a click");
}

async fn drag(c: &Client, from: (f64, f64), to: (f64, f64)) {
    c.perform_actions(
        MouseActions::new("mouse".into())
            .then(PointerAction::MoveTo {
                duration: None,
                x: from.0.round() as i64,
                y: from.1.round() as i64,
            })
            .then(PointerAction::Down {
                button: MOUSE_BUTTON_LEFT,
            })
            .then(PointerAction::MoveTo {
                duration: Some(Duration::from_millis(150)),
                x: ((from.0 + to.0) / 2.0).round() as i64,
                y: from.1.round() as i64,
            })
            .then(PointerAction::MoveTo {
                duration: Some(Duration::from_millis(150)),
                x: to.0.round() as i64,
                y: to.1.round() as i64,
            })
            .then(PointerAction::Up {
                button: MOUSE_BUTTON_LEFT,
            }),
    )
    .await
    .expect("a drag");
}

/// Wait until the viewer shows `snap`.
async fn shows(c: &Client, what: &str, snap: &Snapshot) {
    until(
        c,
        what,
        &format!(
            "document.getElementById('frame').dataset.id === {:?}",
            snap.id
        ),
    )
    .await;
}

/// A gap mark on the scrubber: its times, where it sits (fractions of the track), its texts.
#[derive(Debug)]
struct GapMark {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    left: f64,
    right: f64,
    title: String,
}

async fn gaps(c: &Client) -> Vec<GapMark> {
    let v = js(
        c,
        "const r = document.getElementById('scrub-track').getBoundingClientRect(); \
         return [...document.querySelectorAll('#scrub-gaps .gap')].map(g => { \
           const b = g.getBoundingClientRect(); \
           return {from: g.dataset.from, to: g.dataset.to, title: g.title + ' | ' + g.textContent, \
                   left: (b.left - r.left) / r.width, right: (b.right - r.left) / r.width}; });",
    )
    .await;
    let time = |v: &Value| {
        DateTime::parse_from_rfc3339(v.as_str().unwrap())
            .unwrap()
            .with_timezone(&Utc)
    };
    v.as_array()
        .unwrap()
        .iter()
        .map(|g| GapMark {
            from: time(&g["from"]),
            to: time(&g["to"]),
            left: g["left"].as_f64().unwrap(),
            right: g["right"].as_f64().unwrap(),
            title: g["title"].as_str().unwrap().to_string(),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scrubber_is_proportional_to_time_and_marks_gaps() {
    let app = app_for_frames().await;
    quiet_camera(&app, "yard").await;
    // A paused schedule every 60 s: a gap is more than 150 s without a frame.
    let sched = schedule(&app, "yard", 60, false).await;
    let now = Utc::now().trunc_subsecs(3);
    let at = |s: i64| now + chrono::Duration::seconds(s);
    // Every 10 s from 50 to 30 min ago, with a 100 s hole (not a gap at 60 s a frame) …
    let mut times: Vec<_> = (-3000..=-1800)
        .step_by(10)
        .filter(|s| !(-2400 < *s && *s < -2300))
        .map(at)
        .collect();
    let hole_start = at(-2400);
    // … then nothing for 20 minutes (a gap), then every 10 s up to now.
    times.extend((-600..=0).step_by(10).map(at));
    // Frames with their time on them (the docs' screenshot shows them).
    let frames = put_frames_with(&app, "yard", &times, |t| demo_frame(320, 180, "yard", t)).await;
    let n = frames.len();
    let before_gap = frames.iter().find(|f| f.taken_at == at(-1800)).unwrap();
    let after_gap = frames.iter().find(|f| f.taken_at == at(-600)).unwrap();
    let i_after = frames.iter().position(|f| f.id == after_gap.id).unwrap();

    let (_driver, c) = browser(1280, 1100).await;
    go(&c, &app, "#/cameras/yard").await;
    until(&c, "the timeline", "document.getElementById('range')").await;
    pick_range(&c, "1h").await;
    until(
        &c,
        "every frame of the last hour on the scrubber",
        &format!(
            "document.getElementById('scrubber').getAttribute('aria-valuemax') === '{}' && \
             document.getElementById('frame').dataset.index === '{}'",
            n - 1,
            n - 1
        ),
    )
    .await;
    // The scale is the range: the last hour, ending now.
    let scale = js(
        &c,
        "const t = document.getElementById('scrub-track'); \
         return [Date.parse(t.dataset.to) - Date.parse(t.dataset.from), Date.parse(t.dataset.to) - Date.now()];",
    )
    .await;
    let width_ms = scale[0].as_f64().unwrap();
    assert!(
        (width_ms - 3_600_000.0).abs() < 2_000.0,
        "the scale spans one hour: {scale}"
    );
    assert!(
        scale[1].as_f64().unwrap().abs() < 60_000.0,
        "and ends now: {scale}"
    );

    // The thumb sits where the newest frame's time is.
    let newest = frames.last().unwrap();
    let want = scale_fraction(&c, newest.taken_at).await;
    let got = thumb_fraction(&c).await;
    assert!(
        (got - want).abs() < 0.005,
        "newest frame at {want}, thumb at {got}"
    );

    // A click picks the frame nearest that time: just after the gap's end …
    js(
        &c,
        "document.getElementById('scrubber').scrollIntoView({block: 'center'});",
    )
    .await;
    click_at(
        &c,
        track_point(&c, after_gap.taken_at + chrono::Duration::seconds(2)).await,
    )
    .await;
    shows(&c, "the first frame after the gap", after_gap).await;
    let f_after = thumb_fraction(&c).await;
    let want = scale_fraction(&c, after_gap.taken_at).await;
    assert!(
        (f_after - want).abs() < 0.005,
        "thumb at {f_after}, time at {want}"
    );
    assert_eq!(
        js(&c, "return document.getElementById('frame').dataset.index;").await,
        json!(i_after.to_string())
    );

    // … and ← steps one frame, however far back it is: across the 20-minute gap the thumb
    // moves a third of the track, one more step moves it 10 s.
    press(&c, Key::Left).await;
    shows(&c, "the last frame before the gap", before_gap).await;
    let f_before = thumb_fraction(&c).await;
    assert!(
        ((f_after - f_before) - 1200.0 / 3600.0).abs() < 0.005,
        "the gap is a third of the hour: {f_before} → {f_after}"
    );
    press(&c, Key::Left).await;
    shows(&c, "one frame further back", &frames[i_after - 2]).await;
    let f_prev = thumb_fraction(&c).await;
    assert!(
        ((f_before - f_prev) - 10.0 / 3600.0).abs() < 0.002,
        "10 s is 1/360 of the hour: {f_prev} → {f_before}"
    );
    press(&c, Key::Right).await;
    press(&c, Key::Right).await;
    shows(&c, "back after the gap", after_gap).await;

    // A click inside the gap picks the nearer side.
    click_at(
        &c,
        track_point(&c, before_gap.taken_at + chrono::Duration::seconds(200)).await,
    )
    .await;
    shows(&c, "the frame before the gap (nearer)", before_gap).await;
    click_at(
        &c,
        track_point(&c, after_gap.taken_at - chrono::Duration::seconds(200)).await,
    )
    .await;
    shows(&c, "the frame after the gap (nearer)", after_gap).await;

    // A drag ends on the frame nearest where it was let go.
    let target = frames.iter().find(|f| f.taken_at == at(-2700)).unwrap();
    drag(
        &c,
        track_point(&c, newest.taken_at).await,
        track_point(&c, target.taken_at).await,
    )
    .await;
    shows(&c, "the frame dragged to", target).await;

    // The gap is marked where it is, with its span readable; the 100 s hole is not a gap at
    // one frame a minute.
    let marks = gaps(&c).await;
    let gap = marks
        .iter()
        .find(|g| g.from == before_gap.taken_at)
        .unwrap_or_else(|| panic!("a gap from the frame before it: {marks:?}"));
    assert_eq!(gap.to, after_gap.taken_at, "{gap:?}");
    let (l, r) = (
        scale_fraction(&c, before_gap.taken_at).await,
        scale_fraction(&c, after_gap.taken_at).await,
    );
    assert!(
        (gap.left - l).abs() < 0.005 && (gap.right - r).abs() < 0.005,
        "the gap spans {l}..{r}: {gap:?}"
    );
    assert!(gap.title.starts_with("No frames "), "{gap:?}");
    assert!(gap.title.contains("(20 min 0 s)"), "{gap:?}");
    assert!(
        !marks.iter().any(|g| g.from == hole_start),
        "100 s without a frame is no gap at one a minute: {marks:?}"
    );
    let note = js(
        &c,
        "return document.getElementById('gap-note').textContent;",
    )
    .await;
    assert!(note.as_str().unwrap().contains("No frames"), "{note}");
    let described = js(
        &c,
        "return document.getElementById('scrubber').getAttribute('aria-describedby');",
    )
    .await;
    assert_eq!(described, "gap-note");
    screenshot(&c, "timeline-gaps", true).await;

    // Without a schedule the frames' own spacing (10 s) decides: now the hole is a gap too.
    let r = app
        .delete(&format!(
            "/api/v1/snapshot-schedules/{}",
            sched["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(r.status(), 204);
    let hole = until(
        &c,
        "the 100 s hole marked once the schedule is gone",
        &format!(
            "[...document.querySelectorAll('#scrub-gaps .gap')].find(g => Date.parse(g.dataset.from) === {})?.title",
            hole_start.timestamp_millis()
        ),
    )
    .await;
    assert!(hole.as_str().unwrap().contains("1 min 40 s"), "{hole}");
    c.close().await.unwrap();
    app.stop().await;
}

/// The JS that lists every visible control whose box meets a toast's.
const TOAST_OVERLAPS: &str = "
    const boxes = [...document.querySelectorAll('#toasts .toast')].map(t => t.getBoundingClientRect());
    if (!boxes.length) return null;
    const vw = window.innerWidth, vh = window.innerHeight;
    const hits = [];
    for (const el of document.querySelectorAll('a[href], button, input, select, textarea, [role=slider]')) {
      if (el.closest('#toasts')) continue;
      const r = el.getBoundingClientRect();
      if (!r.width || !r.height || r.bottom <= 0 || r.top >= vh || r.right <= 0 || r.left >= vw) continue;
      for (const b of boxes) {
        if (r.left < b.right && b.left < r.right && r.top < b.bottom && b.top < r.bottom) {
          hits.push((el.id || el.tagName) + ' ' + (el.textContent || '').trim().slice(0, 20));
        }
      }
    }
    return hits;";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_1280_px_the_page_fits_and_toasts_cover_no_control() {
    let app = app_for_frames().await;
    quiet_camera(&app, "lot").await;
    let now = Utc::now().trunc_subsecs(3);
    let times: Vec<_> = (0..1200)
        .rev()
        .map(|i| now - chrono::Duration::seconds(5 * i))
        .collect();
    let frames = put_frames(&app, "lot", &times).await;
    let (_driver, c) = browser(1280, 800).await;
    go(&c, &app, "#/cameras/lot").await;
    until(
        &c,
        "the first page of frames and the strip",
        "document.getElementById('scrubber')?.getAttribute('aria-valuemax') === '499' && \
         document.querySelectorAll('#strip img').length === 9",
    )
    .await;
    let fits = "return [document.documentElement.scrollWidth, window.innerWidth];";
    let w = js(&c, fits).await;
    assert!(
        w[0].as_i64() <= w[1].as_i64(),
        "page wider than the window: {w}"
    );
    // Every thumbnail is inside the strip and the window; the current one is among them.
    let strip = js(
        &c,
        "const s = document.getElementById('strip'); const sr = s.getBoundingClientRect(); \
         return [...s.querySelectorAll('button')].map(b => { const r = b.getBoundingClientRect(); \
           return [r.left >= sr.left - 0.5 && r.right <= sr.right + 0.5, r.left >= 0 && r.right <= window.innerWidth, b.classList.contains('current')]; });",
    )
    .await;
    let strip = strip.as_array().unwrap();
    assert_eq!(strip.len(), 9);
    for (i, s) in strip.iter().enumerate() {
        assert!(
            s[0] == json!(true) && s[1] == json!(true),
            "thumbnail {i} is outside the strip or the page: {s}"
        );
    }
    assert!(strip.iter().any(|s| s[2] == json!(true)));

    // The 700 older frames are not loaded yet, and shown as such (not as a gap).
    let unloaded = js(
        &c,
        "const u = document.getElementById('scrub-unloaded'); return [u.hidden, u.getBoundingClientRect().width, document.querySelectorAll('#scrub-gaps .gap').length];",
    )
    .await;
    assert_eq!(unloaded[0], json!(false), "{unloaded}");
    assert!(unloaded[1].as_f64().unwrap() > 10.0, "{unloaded}");
    // Clicking there loads back to that time and shows the oldest frame.
    js(
        &c,
        "document.getElementById('scrubber').scrollIntoView({block: 'center'});",
    )
    .await;
    let (x, y) = js(
        &c,
        "const r = document.getElementById('scrub-track').getBoundingClientRect(); return [r.left + 1, r.top + r.height / 2];",
    )
    .await
    .as_array()
    .map(|v| (v[0].as_f64().unwrap(), v[1].as_f64().unwrap()))
    .unwrap();
    click_at(&c, (x, y)).await;
    until(
        &c,
        "every frame loaded and the oldest shown",
        "document.getElementById('scrubber').getAttribute('aria-valuemax') === '1199' && \
         document.getElementById('scrub-unloaded').hidden",
    )
    .await;
    shows(&c, "the oldest frame", &frames[0]).await;
    until(
        &c,
        "the strip around the oldest frame",
        "document.querySelector('#strip button.current') && document.querySelectorAll('#strip img').length === 9",
    )
    .await;
    let w = js(&c, fits).await;
    assert!(
        w[0].as_i64() <= w[1].as_i64(),
        "page wider than the window: {w}"
    );

    // A toast ("Schedule added.") covers no control, where the page is scrolled to as well.
    let interval = c.find(Locator::Id("new-interval")).await.unwrap();
    interval.clear().await.unwrap();
    interval.send_keys("3600").await.unwrap();
    c.find(Locator::Css("#schedule-form button[type='submit']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // Found and focused in one step (a focused toast stays), so it cannot go before it is looked at.
    let text = until(
        &c,
        "the toast",
        "(() => { const b = document.querySelector('#toasts .toast-close'); \
           if (!b) return null; b.focus(); return b.closest('.toast').textContent; })()",
    )
    .await;
    assert!(text.as_str().unwrap().contains("Schedule added."), "{text}");
    let hits = js(&c, TOAST_OVERLAPS).await;
    assert_eq!(hits, json!([]), "the toast covers controls");
    screenshot(&c, "toast", false).await;
    for scroll in [
        "window.scrollTo(0, document.documentElement.scrollHeight)",
        "window.scrollTo(0, 200)",
    ] {
        js(&c, &format!("{scroll}; return null;")).await;
        until(
            &c,
            "the toast to move off every control",
            &format!("(() => {{ {TOAST_OVERLAPS} }})()?.length === 0"),
        )
        .await;
    }
    let w = js(&c, fits).await;
    assert!(
        w[0].as_i64() <= w[1].as_i64(),
        "page wider than the window: {w}"
    );
    // It can be dismissed …
    c.find(Locator::Css("#toasts .toast-close"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        &c,
        "the toast to go",
        "document.querySelectorAll('#toasts .toast').length === 0",
    )
    .await;
    // … and one left alone goes by itself.
    js(
        &c,
        "document.getElementById('schedule-form').requestSubmit(); return null;",
    )
    .await;
    until(
        &c,
        "a second toast",
        "document.querySelectorAll('#toasts .toast').length === 1",
    )
    .await;
    until(
        &c,
        "the second toast to go by itself",
        "document.querySelectorAll('#toasts .toast').length === 0",
    )
    .await;
    c.close().await.unwrap();
    app.stop().await;
}

/// The empty timeline's text, once it contains `contains`.
async fn empty_text(c: &Client, what: &str, contains: &str) -> String {
    let v = until(
        c,
        what,
        &format!(
            "!document.getElementById('timeline-empty')?.hidden && \
             document.getElementById('timeline-empty').textContent.includes({contains:?}) && \
             document.getElementById('timeline-empty').textContent"
        ),
    )
    .await;
    let text = v.as_str().unwrap().to_string();
    assert!(
        !text.contains("null") && !text.contains("undefined"),
        "{text}"
    );
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_empty_timeline_says_why() {
    let app = app_for_frames().await;
    let (_driver, c) = browser(1280, 800).await;

    // No schedule: say how frames come.
    quiet_camera(&app, "bare").await;
    go(&c, &app, "#/cameras/bare").await;
    let t = empty_text(&c, "the no-schedule text", "No frames yet").await;
    assert!(t.contains("Add a schedule"), "{t}");

    // An enabled schedule: when it takes the next frame (and that the camera fails).
    quiet_camera(&app, "due").await;
    schedule(&app, "due", 3600, true).await;
    // The first slot fires at once and fails; the next is an hour away.
    camera_in_state(&app, "due", "failing").await;
    let s: Value = app
        .get("/api/v1/cameras/due/snapshot-schedules")
        .await
        .json()
        .await
        .unwrap();
    let next_due = s[0]["next_due_at"].as_str().unwrap().to_string();
    go(&c, &app, "#/cameras/due").await;
    let t = empty_text(&c, "the schedule's next frame", "takes the next at").await;
    let clock = js(
        &c,
        &format!(
            "return new Date({next_due:?}).toLocaleTimeString(undefined, {{hour: '2-digit', minute: '2-digit', second: '2-digit'}});"
        ),
    )
    .await;
    assert!(
        t.contains(&format!(
            "No frames yet — the schedule (every 3600 s) takes the next at {}.",
            clock.as_str().unwrap()
        )),
        "{t}"
    );
    assert!(t.contains("last capture failed"), "{t}");
    screenshot(&c, "timeline-empty-scheduled", false).await;
    assert!(!t.contains("Add a schedule"), "{t}");

    // Only a paused schedule: it says so.
    quiet_camera(&app, "paused").await;
    schedule(&app, "paused", 300, false).await;
    go(&c, &app, "#/cameras/paused").await;
    let t = empty_text(&c, "the paused text", "paused").await;
    assert!(
        t.contains("No frames yet — the camera's schedule (every 300 s) is paused."),
        "{t}"
    );

    // Frames, but none in the chosen range: say where they are, and offer them.
    quiet_camera(&app, "old").await;
    let three_h = Utc::now().trunc_subsecs(3) - chrono::Duration::hours(3);
    let old = put_frames(
        &app,
        "old",
        &[three_h - chrono::Duration::seconds(30), three_h],
    )
    .await;
    go(&c, &app, "#/cameras/old").await;
    until(
        &c,
        "the frames of the last 24 hours",
        "document.getElementById('scrubber')?.getAttribute('aria-valuemax') === '1'",
    )
    .await;
    pick_range(&c, "1h").await;
    let t = empty_text(&c, "the out-of-range text", "No frames in this range").await;
    assert!(
        t.contains("The camera's newest frame is from") && t.contains("3 h ago"),
        "{t}"
    );
    c.find(Locator::Id("show-all"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    shows(&c, "the newest frame under All frames", &old[1]).await;
    assert_eq!(
        js(&c, "return document.getElementById('range').value;").await,
        "all"
    );
    app.stop().await;

    // A server with its scheduler off: an enabled schedule will not take anything.
    let app = spawn_app_with(|c| c.scheduler_enabled = false, BuildOptions::default()).await;
    quiet_camera(&app, "idle").await;
    schedule(&app, "idle", 60, true).await;
    go(&c, &app, "#/cameras/idle").await;
    let t = empty_text(&c, "the scheduler-off text", "scheduler off").await;
    assert!(
        t.contains(
            "the schedule (every 60 s) is enabled, but this server runs with its scheduler off"
        ),
        "{t}"
    );
    c.close().await.unwrap();
    app.stop().await;
}

/// Seconds in a "… after 3.2 s" sentence.
fn waited(text: &str, after: &str) -> f64 {
    let rest = text
        .split(after)
        .nth(1)
        .unwrap_or_else(|| panic!("{after:?} in {text:?}"));
    rest.split(" s").next().unwrap().trim().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_snapshot_of_a_dead_camera_shows_its_wait_and_can_be_cancelled() {
    const DEADLINE: u64 = 8;
    let app = spawn_app_with(
        |c| c.capture_timeout = Duration::from_secs(DEADLINE),
        BuildOptions::default(),
    )
    .await;
    let cam = FakeCamera::start(
        FakeAuth::None,
        FrameSupply::Pattern {
            width: 320,
            height: 180,
            label: "dead".into(),
        },
    )
    .await
    .unwrap();
    cam.set_behavior(Behavior::Hang);
    app.create_camera(json!({"id": "dead", "name": "Dead", "snapshot_url": cam.snapshot_url()}))
        .await;
    let sys: Value = app.get("/api/v1/system").await.json().await.unwrap();
    assert_eq!(sys["capture"]["timeout_seconds"], DEADLINE, "{sys}");

    let (_driver, c) = browser(1280, 800).await;
    go(&c, &app, "#/cameras/dead").await;
    until(&c, "the live button", "document.getElementById('live-btn')").await;
    c.find(Locator::Id("live-btn"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // Progress: a bar and the seconds waited, of the server's deadline.
    until(
        &c,
        "a second of waiting shown",
        &format!(
            "parseFloat(document.getElementById('live-elapsed')?.textContent) >= 1.0 && \
             document.getElementById('live-deadline').textContent === ' of {DEADLINE} s' && \
             document.getElementById('live-progress').max === {DEADLINE}"
        ),
    )
    .await;
    assert_eq!(
        js(&c, "return document.getElementById('live-btn').disabled;").await,
        json!(true)
    );
    screenshot(&c, "live-waiting", true).await;

    // The page stays usable meanwhile: the API answers at once, the timeline changes range.
    let took = c
        .execute_async(
            "const done = arguments[arguments.length - 1]; const t0 = performance.now(); \
             Promise.all([fetch('/api/v1/cameras/dead'), fetch('/api/v1/cameras/dead/snapshot-schedules')]) \
               .then(rs => done([rs.map(r => r.status), performance.now() - t0]));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(took[0], json!([200, 200]));
    assert!(
        took[1].as_f64().unwrap() < 1500.0,
        "the API waits for nothing: {took}"
    );
    pick_range(&c, "1h").await;
    until(
        &c,
        "the timeline to answer the range change",
        "document.getElementById('frame-count').textContent === '0 frames'",
    )
    .await;
    let still = js(
        &c,
        "return [!!document.getElementById('live-wait'), parseFloat(document.getElementById('live-elapsed').textContent)];",
    )
    .await;
    assert_eq!(still[0], json!(true), "still waiting: {still}");

    // Cancel: the wait ends at once and says how long it was.
    c.find(Locator::Id("live-cancel"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let text = until(
        &c,
        "the cancelled message",
        "document.getElementById('live-cancelled')?.textContent",
    )
    .await;
    let text = text.as_str().unwrap();
    screenshot(&c, "live-cancelled", false).await;
    let secs = waited(text, "Cancelled after ");
    assert!(
        secs >= still[1].as_f64().unwrap() && secs < DEADLINE as f64,
        "{text}"
    );
    assert_eq!(
        js(&c, "return document.getElementById('live-btn').disabled;").await,
        json!(false)
    );

    // The server's own wait ends at its deadline; then a new attempt waits the full deadline
    // and says so, with the API's sentence.
    camera_in_state(&app, "dead", "failing").await;
    c.find(Locator::Id("live-btn"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let err = wait_long(&c).await;
    let secs = waited(&err, "No answer after ");
    assert!(
        secs >= DEADLINE as f64 - 0.1 && secs < DEADLINE as f64 + 5.0,
        "{err}"
    );
    // The API's sentence follows: `camera dead: … did not answer in time` or `… no frame within`.
    assert!(err.contains(": camera dead"), "{err}");
    c.close().await.unwrap();
    app.stop().await;
}

/// The live snapshot's failure, waiting past PAGE_WAIT if the deadline needs it.
async fn wait_long(c: &Client) -> String {
    let script = "return document.getElementById('live-error')?.textContent || null;";
    let v = common::wait_for(
        "the live snapshot's failure",
        PAGE_WAIT + Duration::from_secs(10),
        || {
            let f = c.execute(script, vec![]);
            async move { f.await.ok().filter(|v| !v.is_null()) }
        },
    )
    .await;
    v.as_str().unwrap().to_string()
}
