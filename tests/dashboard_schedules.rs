//! The dashboard's schedule form in a real browser (headless Chromium over WebDriver, see
//! `common::browser`): a fixed-times schedule added through the form, whose live five-slot
//! preview matches the API's preview of the saved schedule; the same schedule edited into an
//! aligned interval; the list's words for both; and a bad time of day answered with the API's
//! 422 sentence under the field.

mod common;

use chrono::{DateTime, Timelike};
use common::browser::{browser, go, js, screenshot, until};
use common::{error_of, spawn_app};
use serde_json::{json, Value};

/// Set an input's value as typing would (an `input` event that bubbles to the form).
async fn set(c: &fantoccini::Client, id: &str, value: &str) {
    js(
        c,
        &format!(
            "const e = document.getElementById({id:?}); e.value = {value:?}; \
             e.dispatchEvent(new Event('input', {{bubbles: true}})); return null;"
        ),
    )
    .await;
}

/// Click an element (a radio, a checkbox, a button) by CSS selector.
async fn click(c: &fantoccini::Client, css: &str) {
    js(
        c,
        &format!("document.querySelector({css:?}).click(); return null;"),
    )
    .await;
}

/// The form's preview once it is current: its slots' `local` strings.
async fn preview(c: &fantoccini::Client, p: &str) -> Vec<String> {
    let v = until(
        c,
        "the form's preview",
        &format!(
            "(() => {{ const f = document.getElementById('{p}-preview').closest('form'); \
             const li = [...document.querySelectorAll('#{p}-preview li')]; \
             return f.dataset.preview === 'ok' && li.length === 5 && li.map(l => l.dataset.local); }})()"
        ),
    )
    .await;
    serde_json::from_value(v).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schedule_form_previews_adds_and_edits_calendar_schedules() {
    let app = spawn_app().await;
    app.create_camera(
        json!({"id": "gate", "name": "Gate", "snapshot_url": "http://127.0.0.1:9/snapshot.jpg"}),
    )
    .await;
    let (_driver, c) = browser(1280, 1400).await;
    go(&c, &app, "#/cameras/gate").await;
    until(
        &c,
        "the schedule form",
        "document.getElementById('schedule-form') && document.getElementById('new-tz')",
    )
    .await;
    // The zone defaults to the browser's own.
    let zones = js(
        &c,
        "return [document.getElementById('new-tz').value, Intl.DateTimeFormat().resolvedOptions().timeZone];",
    )
    .await;
    assert_eq!(zones[0], zones[1], "{zones}");

    // Fixed times on weekdays in New York.
    click(&c, "#new-mode-at").await;
    set(&c, "new-at", "18:30, 06:00").await;
    set(&c, "new-tz", "America/New_York").await;
    click(&c, "#new-wd-sat").await;
    click(&c, "#new-wd-sun").await;
    let shown = preview(&c, "new").await;
    for l in &shown {
        let t = DateTime::parse_from_rfc3339(l).unwrap();
        assert!(
            matches!((t.hour(), t.minute()), (6, 0) | (18, 30)),
            "{l} is 06:00 or 18:30 in New York"
        );
    }
    screenshot(&c, "schedule-form-fixed-times", true).await;
    click(&c, "#schedule-form button[type='submit']").await;
    let words = until(
        &c,
        "the schedule in the list, in words",
        "document.querySelector('#schedules li[data-schedule] .sched-words')?.textContent",
    )
    .await;
    assert_eq!(words, "at 06:00, 18:30 on Mon–Fri, America/New_York");
    let list: Value = app
        .get("/api/v1/cameras/gate/snapshot-schedules")
        .await
        .json()
        .await
        .unwrap();
    let s = &list[0];
    assert_eq!(
        (
            s["at"].clone(),
            s["timezone"].clone(),
            s["weekdays"].clone()
        ),
        (
            json!(["06:00", "18:30"]),
            json!("America/New_York"),
            json!(["mon", "tue", "wed", "thu", "fri"])
        ),
        "{s}"
    );
    let id = s["id"].as_str().unwrap().to_string();
    let api: Value = app
        .get(&format!("/api/v1/snapshot-schedules/{id}/preview?n=5"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        json!(shown),
        api["local"],
        "the form previewed what the server fires"
    );

    // Edit it into every 5 minutes on the clock.
    click(&c, &format!("li[data-schedule='{id}'] button.sched-edit")).await;
    until(&c, "the edit form", "document.getElementById('edit-form')").await;
    click(&c, "#edit-mode-every").await;
    set(&c, "edit-interval", "5").await;
    js(
        &c,
        "const u = document.getElementById('edit-unit'); u.value = 'min'; \
         u.dispatchEvent(new Event('change', {bubbles: true})); return null;",
    )
    .await;
    click(&c, "#edit-align").await;
    // And its frame rules: skip dark frames (below 30) and unchanged ones, keep 48 hours.
    click(&c, "#edit-skip-dark").await;
    set(&c, "edit-dark-threshold", "30").await;
    click(&c, "#edit-skip-unchanged").await;
    set(&c, "edit-retention-hours", "48").await;
    let shown = preview(&c, "edit").await;
    for l in &shown {
        let t = DateTime::parse_from_rfc3339(l).unwrap();
        assert!(
            t.minute() % 5 == 0 && t.second() == 0,
            "{l} is on a 5-minute mark"
        );
    }
    click(&c, "#edit-form button[type='submit']").await;
    let words = until(
        &c,
        "the edited schedule's words",
        "!document.getElementById('edit-form') && document.querySelector('#schedules li[data-schedule] .sched-words')?.textContent",
    )
    .await;
    assert_eq!(words, "every 5 min on Mon–Fri, aligned, America/New_York");
    let s: Value = app
        .get(&format!("/api/v1/snapshot-schedules/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            s["interval_seconds"].clone(),
            s["align"].clone(),
            s["at"].clone()
        ),
        (json!(300), json!(true), Value::Null),
        "{s}"
    );
    assert_eq!(
        (
            s["skip_dark"].clone(),
            s["dark_threshold"].clone(),
            s["skip_unchanged"].clone(),
            s["retention_hours"].clone(),
            s["stream"].clone()
        ),
        (json!(true), json!(30), json!(true), json!(48), Value::Null),
        "{s}"
    );
    let rules = js(
        &c,
        "return document.querySelector('#schedules li[data-schedule] .sched-rules')?.textContent;",
    )
    .await;
    assert_eq!(rules, "skips dark (< 30) and unchanged frames, kept 48 h");
    let next = js(
        &c,
        "return document.querySelector('#schedules li[data-schedule] .sched-next-slot').textContent;",
    )
    .await;
    assert!(next.as_str().unwrap().starts_with("next "), "{next}");

    // A time that is not one: the API's sentence under the field, live and on saving.
    let body = json!({"at": ["06:00", "25:00"], "timezone": "America/New_York",
        "weekdays": ["mon", "tue", "wed", "thu", "fri"]});
    let (status, e) = error_of(
        app.post_json("/api/v1/cameras/gate/snapshot-schedules/preview", &body)
            .await,
    )
    .await;
    assert_eq!((status, e["field"].as_str()), (422, Some("at")), "{e}");
    set(&c, "new-at", "06:00, 25:00").await;
    let shown = until(
        &c,
        "the sentence under the times",
        "(() => { const e = document.getElementById('new-err-at'); return !e.hidden && e.textContent; })()",
    )
    .await;
    assert_eq!(shown, e["error"]);
    click(&c, "#schedule-form button[type='submit']").await;
    until(
        &c,
        "the sentence after saving",
        &format!(
            "document.getElementById('new-err-at').textContent === {:?} && !document.getElementById('new-err-at').hidden && document.getElementById('schedule-form').dataset.preview === 'error'",
            e["error"].as_str().unwrap()
        ),
    )
    .await;
    let list: Value = app
        .get("/api/v1/cameras/gate/snapshot-schedules")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1, "nothing added: {list}");
    screenshot(&c, "schedule-form-error", false).await;

    // A stream the camera does not have (it has a snapshot URL only): the sentence under it.
    set(&c, "new-at", "06:00").await;
    js(
        &c,
        "const s = document.getElementById('new-stream'); s.value = 'sub'; \
         s.dispatchEvent(new Event('change', {bubbles: true})); return null;",
    )
    .await;
    click(&c, "#schedule-form button[type='submit']").await;
    let said = until(
        &c,
        "the sentence under the stream",
        "(() => { const e = document.getElementById('new-err-stream'); return !e.hidden && e.textContent; })()",
    )
    .await;
    assert!(said.as_str().unwrap().contains("sub"), "{said}");
    let list: Value = app
        .get("/api/v1/cameras/gate/snapshot-schedules")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1, "nothing added: {list}");
    c.close().await.unwrap();
    app.stop().await;
}
