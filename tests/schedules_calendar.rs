//! Calendar schedules (issue 17, docs/schedules.md) through the real API and the real
//! scheduler: aligned slots in a zone, fixed times of day, a daily window, each across a real
//! restart of the application on the same SQLite file; the 422s; the preview over a DST day.
//! The app runs on the system clock, so the times are chosen seconds ahead (times of day with
//! seconds, a 7-second aligned interval) and every wait is a bounded `wait_for`.

mod common;

use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Timelike, Utc, Weekday};
use chrono_tz::Tz;
use common::{error_of, metric, test_config, wait_for};
use heldar::app::{Application, BuildOptions};
use heldar::fakecam::{pattern, FakeAuth, FakeCamera, FrameSupply};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

/// The application on a data dir that outlives it (so it can be started again on it).
struct Running {
    base: String,
    client: reqwest::Client,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn start(dir: &std::path::Path) -> Running {
    let shutdown = CancellationToken::new();
    let app = Application::build(test_config(dir), BuildOptions::default(), shutdown.clone())
        .await
        .expect("the app builds");
    Running {
        base: format!("http://127.0.0.1:{}", app.port()),
        client: reqwest::Client::new(),
        shutdown,
        server: tokio::spawn(app.run_until_stopped()),
    }
}

impl Running {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
    async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }
    async fn json(&self, path: &str) -> Value {
        let r = self.get(path).await;
        assert_eq!(r.status(), 200, "GET {path}");
        r.json().await.unwrap()
    }
    async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap()
    }
    async fn patch(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .patch(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap()
    }
    /// Create a schedule on camera `c1`, insisting on 201.
    async fn schedule(&self, body: Value) -> Value {
        let r = self
            .post("/api/v1/cameras/c1/snapshot-schedules", &body)
            .await;
        let status = r.status();
        let v: Value = r.json().await.unwrap();
        assert_eq!(status, 201, "{body}: {v}");
        v
    }
    /// The schedule's row as the API lists it.
    async fn row(&self, id: &str) -> Value {
        let all = self.json("/api/v1/cameras/c1/snapshot-schedules").await;
        all.as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .cloned()
            .expect("the schedule is listed")
    }
    /// Capture times of the camera's frames, oldest first.
    async fn taken(&self) -> Vec<DateTime<Utc>> {
        let v = self.json("/api/v1/cameras/c1/snapshots?limit=5000").await;
        let mut t: Vec<DateTime<Utc>> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|f| ts(f["taken_at"].as_str().unwrap()))
            .collect();
        t.sort();
        t
    }
    async fn missed(&self) -> u64 {
        let m = self.get("/metrics").await.text().await.unwrap();
        metric(&m, "heldar_missed_slots").unwrap_or(0)
    }
    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.server)
            .await
            .expect("stops within 30 s")
            .unwrap()
            .unwrap();
    }
}

fn ts(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

async fn camera(app: &Running) -> FakeCamera {
    let frame = FrameSupply::Static(Bytes::from(pattern::solid_jpeg(96, 72, [30, 140, 60])));
    let cam = FakeCamera::start(FakeAuth::None, frame).await.unwrap();
    let r = app
        .post(
            "/api/v1/cameras",
            &json!({"id": "c1", "snapshot_url": cam.snapshot_url()}),
        )
        .await;
    assert_eq!(r.status(), 201);
    cam
}

/// Seconds since local midnight in `zone`.
fn local_secs(zone: Tz, t: DateTime<Utc>) -> u32 {
    t.with_timezone(&zone).num_seconds_from_midnight()
}

/// The slot a frame belongs to: its capture time, down to the whole second (a slot fires on a
/// whole second and the fake camera answers within it).
fn slot_of(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap()
}

/// Every 7 s aligned in Asia/Kathmandu (UTC+05:45): local midnight is 18:15 UTC, and 7 does not
/// divide 5 h 45 min, so slots on the zone's grid are off the UTC grid — the test tells them
/// apart. Across a clean restart: no slot twice, none skipped but those of the downtime, and
/// the first one after it is the next on the grid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aligned_slots_are_on_the_zones_clock_and_survive_a_restart() {
    let zone: Tz = "Asia/Kathmandu".parse().unwrap();
    let on_grid = |t: DateTime<Utc>| local_secs(zone, t).is_multiple_of(7);
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path()).await;
    let _cam = camera(&app).await;
    let created_at = Utc::now();
    let s = app
        .schedule(json!({"interval_seconds": 7, "align": true, "timezone": "Asia/Kathmandu"}))
        .await;
    let id = s["id"].as_str().unwrap().to_string();
    assert_eq!(
        (s["align"].as_bool(), s["timezone"].as_str()),
        (Some(true), Some("Asia/Kathmandu"))
    );
    // Not "at once": the first slot is the next on the grid.
    let first = ts(s["next_due_at"].as_str().unwrap());
    assert!(
        on_grid(first) && first.timestamp_subsec_millis() == 0,
        "{first}"
    );
    assert!(first >= slot_of(created_at) && first <= created_at + chrono::Duration::seconds(7));

    let before = wait_for("two aligned frames", Duration::from_secs(40), || async {
        let t = app.taken().await;
        (t.len() >= 2).then_some(t)
    })
    .await;
    app.stop().await;
    let stopped_at = Utc::now();

    let app = start(dir.path()).await;
    let restarted_at = Utc::now();
    let after = wait_for(
        "two more frames after the restart",
        Duration::from_secs(40),
        || async {
            let t = app.taken().await;
            (t.len() >= before.len() + 2).then_some(t)
        },
    )
    .await;
    let slots: Vec<DateTime<Utc>> = after.iter().map(|t| slot_of(*t)).collect();
    for (t, s) in after.iter().zip(&slots) {
        assert!(on_grid(*s), "frame at {t} is not on the Kathmandu 7-s grid");
    }
    for w in slots.windows(2) {
        let gap = (w[1] - w[0]).num_seconds();
        assert!(gap > 0, "slot {} captured twice", w[0]);
        // Consecutive slots are one interval apart, except across the downtime.
        if w[1] <= stopped_at || w[0] >= restarted_at {
            assert_eq!(gap, 7, "a slot was skipped between {} and {}", w[0], w[1]);
        }
    }
    // The first slot after the restart is the next one on the grid, not a catch-up burst.
    let first_after = slots[before.len()];
    assert!(
        first_after > slot_of(stopped_at) - chrono::Duration::seconds(1)
            && first_after <= restarted_at + chrono::Duration::seconds(7),
        "first slot after the restart {first_after}, restarted at {restarted_at}"
    );
    let row = app.row(&id).await;
    let next = ts(row["next_due_at"].as_str().unwrap());
    assert!(on_grid(next), "{row}");
    app.stop().await;
}

/// Three fixed local times a few seconds apart (America/New_York, with seconds), the app
/// restarted between the first and the second: each fires exactly once, and after the last the
/// schedule waits for the first one tomorrow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_times_fire_once_each_across_a_restart() {
    let zone: Tz = "America/New_York".parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path()).await;
    let _cam = camera(&app).await;
    let base = slot_of(Utc::now());
    let times: Vec<DateTime<Utc>> = [4, 20, 24]
        .iter()
        .map(|s| base + chrono::Duration::seconds(*s))
        .collect();
    let at: Vec<String> = times
        .iter()
        .map(|t| t.with_timezone(&zone).format("%H:%M:%S").to_string())
        .collect();
    let s = app
        .schedule(json!({"at": at, "timezone": "America/New_York"}))
        .await;
    let id = s["id"].as_str().unwrap().to_string();
    assert_eq!(ts(s["next_due_at"].as_str().unwrap()), times[0], "{s}");

    wait_for("the first fixed time", Duration::from_secs(20), || async {
        (app.taken().await.len() == 1).then_some(())
    })
    .await;
    app.stop().await;
    let app = start(dir.path()).await;
    let taken = wait_for("all three fixed times", Duration::from_secs(40), || async {
        let t = app.taken().await;
        (t.len() >= 3).then_some(t)
    })
    .await;
    let slots: Vec<DateTime<Utc>> = taken.iter().map(|t| slot_of(*t)).collect();
    assert_eq!(slots, times, "each fixed time once, none twice");
    let row = wait_for(
        "the next day's first time",
        Duration::from_secs(10),
        || async {
            let row = app.row(&id).await;
            (row["next_due_at"].as_str().map(ts) == Some(times[0] + chrono::Duration::days(1))
                || row["next_due_at"].as_str().map(ts).is_some_and(|n| {
                    // Across a DST change the same local time is 23 or 25 hours on.
                    n.with_timezone(&zone).time() == times[0].with_timezone(&zone).time()
                        && n > times[2]
                }))
            .then_some(row)
        },
    )
    .await;
    assert_eq!(app.taken().await.len(), 3, "{row}");
    app.stop().await;
}

/// A plain 5-s interval with a daily window a few seconds wide (times with seconds, UTC):
/// before the window it waits for the opening (not "at once"), fires at the opening and every
/// 5 s inside, and after the closing idles until tomorrow's opening with nothing counted missed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_schedule_idles_outside_its_window() {
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path()).await;
    let _cam = camera(&app).await;
    let open = slot_of(Utc::now()) + chrono::Duration::seconds(5);
    let close = open + chrono::Duration::seconds(12);
    let hms = |t: DateTime<Utc>| t.format("%H:%M:%S").to_string();
    let s = app
        .schedule(json!({"interval_seconds": 5, "active_from": hms(open), "active_to": hms(close)}))
        .await;
    let id = s["id"].as_str().unwrap().to_string();
    assert_eq!(ts(s["next_due_at"].as_str().unwrap()), open, "{s}");
    let missed_before = app.missed().await;

    let row = wait_for("the window to close", Duration::from_secs(40), || async {
        let row = app.row(&id).await;
        row["next_due_at"]
            .as_str()
            .is_some_and(|n| ts(n) > close)
            .then_some(row)
    })
    .await;
    assert_eq!(
        ts(row["next_due_at"].as_str().unwrap()),
        open + chrono::Duration::days(1),
        "idle until tomorrow's opening: {row}"
    );
    let taken = wait_for(
        "the last frame of the window",
        Duration::from_secs(10),
        || async {
            let t = app.taken().await;
            (t.len() >= 3).then_some(t)
        },
    )
    .await;
    let slots: Vec<DateTime<Utc>> = taken.iter().map(|t| slot_of(*t)).collect();
    let want: Vec<DateTime<Utc>> = [0, 5, 10]
        .iter()
        .map(|s| open + chrono::Duration::seconds(*s))
        .collect();
    assert_eq!(
        slots, want,
        "the opening and every 5 s inside [open, close)"
    );
    assert_eq!(
        app.missed().await,
        missed_before,
        "idle slots are not missed"
    );
    app.stop().await;
}

#[tokio::test]
async fn bad_calendar_fields_are_422s_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path()).await;
    let _cam = camera(&app).await;
    let cases = [
        (json!({"timezone": "Mars/Olympus"}), "timezone", "IANA"),
        (
            json!({"at": ["06:00"], "interval_seconds": 60}),
            "at",
            "exclude each other",
        ),
        (json!({"at": ["25:00"]}), "at", "not a time of day"),
        (
            json!({"weekdays": ["caturday"]}),
            "weekdays",
            "not a weekday",
        ),
        (json!({"active_from": "08:00"}), "active_to", "needs both"),
        (
            json!({"daylight": {"lat": 91.0, "lon": 0.0}}),
            "daylight",
            "latitude",
        ),
        // serde names the unknown key (and the known ones), not its parent.
        (
            json!({"daylight": {"lat": 1.0, "lon": 1.0, "height": 3}}),
            "body",
            "unknown field `height`",
        ),
        (json!({"cron": "* * * * *"}), "body", "unknown field"),
    ];
    for (body, field, words) in cases {
        let (status, e) = error_of(
            app.post("/api/v1/cameras/c1/snapshot-schedules", &body)
                .await,
        )
        .await;
        assert_eq!(status, 422, "{body}: {e}");
        let msg = e["error"].as_str().unwrap();
        assert!(msg.contains(words), "{body}: {e}");
        if field != "body" {
            assert_eq!(e["field"], field, "{body}: {e}");
        }
    }
    let none = app.json("/api/v1/cameras/c1/snapshot-schedules").await;
    assert_eq!(
        none.as_array().unwrap().len(),
        0,
        "a refused body creates nothing"
    );

    // PATCH merges: interval_seconds on a fixed-times schedule is refused unless `at` is
    // cleared in the same request.
    let s = app
        .schedule(json!({"at": ["06:00", "18:00"], "enabled": false}))
        .await;
    assert_eq!(s["at"], json!(["06:00", "18:00"]));
    let path = format!("/api/v1/snapshot-schedules/{}", s["id"].as_str().unwrap());
    let (status, e) = error_of(app.patch(&path, &json!({"interval_seconds": 60})).await).await;
    assert_eq!((status, e["field"].as_str()), (422, Some("at")), "{e}");
    let r = app
        .patch(
            &path,
            &json!({"interval_seconds": 60, "at": null, "weekdays": ["sat", "mon"]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let p: Value = r.json().await.unwrap();
    assert_eq!(
        (
            p["at"].clone(),
            p["interval_seconds"].clone(),
            p["weekdays"].clone()
        ),
        (Value::Null, json!(60), json!(["mon", "sat"])),
        "{p}"
    );

    // The preview's query.
    let pre = format!("{path}/preview");
    let (status, e) = error_of(app.get(&format!("{pre}?n=0")).await).await;
    assert_eq!((status, e["field"].as_str()), (422, Some("n")), "{e}");
    let (status, _) = error_of(app.get(&format!("{pre}?n=101")).await).await;
    assert_eq!(status, 422);
    let (status, _) = error_of(app.get(&format!("{pre}?count=3")).await).await;
    assert_eq!(status, 400);
    let (status, _) = error_of(
        app.get("/api/v1/snapshot-schedules/sch_00000000000000000000000000000000/preview")
            .await,
    )
    .await;
    assert_eq!(status, 404);
    let v = app.json(&pre).await;
    assert_eq!(v["slots"].as_array().unwrap().len(), 5, "default n: {v}");
    app.stop().await;
}

/// Last Sunday of `month` in `year`.
fn last_sunday(year: i32, month: u32) -> NaiveDate {
    let mut d = NaiveDate::from_ymd_opt(year, month + 1, 1)
        .unwrap()
        .pred_opt()
        .unwrap();
    while d.weekday() != Weekday::Sun {
        d = d.pred_opt().unwrap();
    }
    d
}

/// Fixed times 01:30, 02:30, 03:30 on Sundays in Europe/Berlin, previewed over the next DST
/// change (the last Sunday of March or of October, whichever comes first; 100 slots reach 33
/// weeks ahead): in March 02:30 does not exist and fires at 03:00 CEST; in October 02:30 fires
/// once, at its first occurrence (CEST).
#[tokio::test]
async fn the_preview_follows_berlins_dst_rules() {
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path()).await;
    let _cam = camera(&app).await;
    let s = app
        .schedule(
            json!({"at": ["01:30", "02:30", "03:30"], "weekdays": ["sun"],
            "timezone": "Europe/Berlin"}),
        )
        .await;
    let v = app
        .json(&format!(
            "/api/v1/snapshot-schedules/{}/preview?n=100",
            s["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        (v["schedule_id"].clone(), v["timezone"].clone()),
        (s["id"].clone(), json!("Europe/Berlin"))
    );
    let slots: Vec<DateTime<Utc>> = v["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| ts(t.as_str().unwrap()))
        .collect();
    let local: Vec<&str> = v["local"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!((slots.len(), local.len()), (100, 100));
    for (u, l) in slots.iter().zip(&local) {
        assert_eq!(ts(l), *u, "local {l} is the same instant as {u}");
    }
    assert!(slots.windows(2).all(|w| w[0] < w[1]));

    let now = Utc::now();
    let berlin = chrono_tz::Europe::Berlin;
    let today = now.with_timezone(&berlin).date_naive();
    let change = [today.year(), today.year() + 1]
        .iter()
        .flat_map(|y| [last_sunday(*y, 3), last_sunday(*y, 10)])
        .filter(|d| {
            berlin
                .from_local_datetime(&d.and_hms_opt(1, 30, 0).unwrap())
                .unwrap()
                > now
        })
        .min()
        .unwrap();
    let on_day: Vec<&str> = local
        .iter()
        .copied()
        .filter(|l| l.starts_with(&change.format("%Y-%m-%d").to_string()))
        .collect();
    let d = change.format("%Y-%m-%d");
    let want = if change.month() == 3 {
        vec![
            format!("{d}T01:30:00+01:00"),
            format!("{d}T03:00:00+02:00"),
            format!("{d}T03:30:00+02:00"),
        ]
    } else {
        vec![
            format!("{d}T01:30:00+02:00"),
            format!("{d}T02:30:00+02:00"),
            format!("{d}T03:30:00+01:00"),
        ]
    };
    assert_eq!(on_day, want, "{v}");
    app.stop().await;
}

/// The preview of an unsaved body (`POST …/snapshot-schedules/preview`, the dashboard form's):
/// the same slots the saved schedule's preview shows, the create's 422 for a bad field, its own
/// for a bad `n`, a 404 for no camera, and nothing stored.
#[tokio::test]
async fn an_unsaved_schedule_previews_as_it_would_be_saved() {
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path()).await;
    let _cam = camera(&app).await;
    let draft = "/api/v1/cameras/c1/snapshot-schedules/preview";
    let body = json!({"at": ["12:00", "06:00"], "weekdays": ["mon", "tue", "wed", "thu", "fri"],
        "timezone": "America/New_York"});

    let r = app.post(draft, &body).await;
    assert_eq!(r.status(), 200);
    let unsaved: Value = r.json().await.unwrap();
    assert_eq!(
        (unsaved["camera_id"].clone(), unsaved["timezone"].clone()),
        (json!("c1"), json!("America/New_York")),
        "{unsaved}"
    );
    let local: Vec<&str> = unsaved["local"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(local.len(), 5, "default n: {unsaved}");
    for l in &local {
        let t = DateTime::parse_from_rfc3339(l).unwrap();
        let ny = t.with_timezone(&chrono_tz::America::New_York);
        assert!(
            matches!(ny.hour(), 6 | 12) && ny.minute() == 0,
            "{l} is at 06:00 or 12:00 New York time"
        );
        assert!(
            ny.weekday().number_from_monday() <= 5,
            "{l} is on a weekday"
        );
    }
    assert_eq!(
        app.json("/api/v1/cameras/c1/snapshot-schedules").await,
        json!([]),
        "a preview creates nothing"
    );

    // The saved schedule previews the same slots.
    let s = app.schedule(body.clone()).await;
    let saved = app
        .json(&format!(
            "/api/v1/snapshot-schedules/{}/preview",
            s["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        (saved["slots"].clone(), saved["local"].clone()),
        (unsaved["slots"].clone(), unsaved["local"].clone())
    );

    // n up to 100; a plain interval starts now and steps by its interval.
    let r = app
        .post(&format!("{draft}?n=100"), &json!({"interval_seconds": 60}))
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let slots: Vec<DateTime<Utc>> = v["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| ts(t.as_str().unwrap()))
        .collect();
    assert_eq!(slots.len(), 100);
    assert!((Utc::now() - slots[0]).num_seconds().abs() < 30, "{v}");
    assert!(slots
        .windows(2)
        .all(|w| w[1] - w[0] == chrono::Duration::seconds(60)));
    assert_eq!(v["timezone"], "UTC");

    // The create's refusal, word for word; the query's own.
    let bad = json!({"at": ["06:00", "25:00"], "timezone": "Europe/Berlin"});
    let (status, from_preview) = error_of(app.post(draft, &bad).await).await;
    let (_, from_create) = error_of(
        app.post("/api/v1/cameras/c1/snapshot-schedules", &bad)
            .await,
    )
    .await;
    assert_eq!(
        (status, from_preview["field"].as_str()),
        (422, Some("at")),
        "{from_preview}"
    );
    assert_eq!(from_preview["error"], from_create["error"]);
    // The frame rules are checked as the create checks them, too (the camera has no main
    // stream URL, so `stream: main` cannot be).
    for bad in [
        json!({"skip_dark": true, "dark_threshold": 256}),
        json!({"dark_threshold": -1}),
        json!({"stream": "thermal"}),
        json!({"stream": "main"}),
        json!({"retention_hours": 0}),
        json!({"retention_hours": 876_001}),
    ] {
        let (status, from_preview) = error_of(app.post(draft, &bad).await).await;
        let (_, from_create) = error_of(
            app.post("/api/v1/cameras/c1/snapshot-schedules", &bad)
                .await,
        )
        .await;
        assert_eq!(status, 422, "{bad}: {from_preview}");
        assert_eq!(from_preview["error"], from_create["error"], "{bad}");
    }
    let (status, e) = error_of(app.post(&format!("{draft}?n=0"), &body).await).await;
    assert_eq!((status, e["field"].as_str()), (422, Some("n")), "{e}");
    let (status, _) = error_of(app.post(&format!("{draft}?n=101"), &body).await).await;
    assert_eq!(status, 422);
    let (status, _) = error_of(app.post(&format!("{draft}?count=3"), &body).await).await;
    assert_eq!(status, 400);
    let (status, _) = error_of(
        app.post("/api/v1/cameras/nope/snapshot-schedules/preview", &body)
            .await,
    )
    .await;
    assert_eq!(status, 404);
    let r = app
        .client
        .post(app.url(draft))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // No body: the defaults (every 300 s from now), as for the create.
    let r = app.client.post(app.url(draft)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let slots: Vec<DateTime<Utc>> = v["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| ts(t.as_str().unwrap()))
        .collect();
    assert_eq!(slots.len(), 5, "{v}");
    assert_eq!(slots[1] - slots[0], chrono::Duration::seconds(300), "{v}");
    assert_eq!(
        app.json("/api/v1/cameras/c1/snapshot-schedules")
            .await
            .as_array()
            .unwrap()
            .len(),
        1,
        "only the one created"
    );
    app.stop().await;
}
