//! Schedules over the real API, and the real scheduler end to end: real HTTP fake cameras, real
//! SQLite, real files.

mod common;

use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use common::{error_of, spawn_app, wait_for, TestApp};
use heldar::capture::jpeg;
use heldar::fakecam::{pattern, Behavior, FakeAuth, FakeCamera, FrameSupply};
use serde_json::{json, Value};

fn frame() -> FrameSupply {
    FrameSupply::Static(Bytes::from(pattern::solid_jpeg(160, 120, [90, 90, 200])))
}

async fn json_of(resp: reqwest::Response) -> Value {
    resp.json().await.unwrap()
}

#[tokio::test]
async fn schedule_crud_defaults_clamping_and_bad_input() {
    let app = spawn_app().await;
    let cam = FakeCamera::start(FakeAuth::None, frame()).await.unwrap();
    app.create_camera(json!({"id": "c1", "snapshot_url": cam.snapshot_url()}))
        .await;

    // Defaults: 300 s, enabled; an empty body is fine.
    let r = app
        .client
        .post(app.url("/api/v1/cameras/c1/snapshot-schedules"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let s = json_of(r).await;
    assert_eq!(
        (s["interval_seconds"].as_i64(), s["enabled"].as_bool()),
        (Some(300), Some(true))
    );
    // Clamped like the Heldar kernel: to 5..=86400.
    let low = json_of(
        app.post_json(
            "/api/v1/cameras/c1/snapshot-schedules",
            &json!({"interval_seconds": 1}),
        )
        .await,
    )
    .await;
    assert_eq!(low["interval_seconds"], 5);
    let high = json_of(
        app.post_json(
            "/api/v1/cameras/c1/snapshot-schedules",
            &json!({"interval_seconds": 10_000_000, "enabled": false}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (high["interval_seconds"].as_i64(), high["enabled"].as_bool()),
        (Some(86400), Some(false))
    );

    let list = json_of(app.get("/api/v1/cameras/c1/snapshot-schedules").await).await;
    assert_eq!(list.as_array().unwrap().len(), 3);

    let id = high["id"].as_str().unwrap();
    let p = app
        .patch_json(
            &format!("/api/v1/snapshot-schedules/{id}"),
            &json!({"interval_seconds": 60, "enabled": true}),
        )
        .await;
    assert_eq!(p.status(), 200);
    let p = json_of(p).await;
    assert_eq!(
        (p["interval_seconds"].as_i64(), p["enabled"].as_bool()),
        (Some(60), Some(true))
    );

    // Bad input: a 4xx with a sentence, and nothing changes.
    let cases = [
        (json!({"interval_seconds": "sixty"}), 422),
        (json!({"interval_seconds": 1.5}), 422),
        (json!({"enabled": "yes"}), 422),
        (json!({"every": 5}), 422),
    ];
    for (body, want) in cases {
        let (status, e) = error_of(
            app.post_json("/api/v1/cameras/c1/snapshot-schedules", &body)
                .await,
        )
        .await;
        assert_eq!(status, want, "{body} → {e}");
        let (status, e) = error_of(
            app.patch_json(&format!("/api/v1/snapshot-schedules/{id}"), &body)
                .await,
        )
        .await;
        assert_eq!(status, want, "{body} → {e}");
    }
    let (status, _) = error_of(
        app.client
            .post(app.url("/api/v1/cameras/c1/snapshot-schedules"))
            .header("content-type", "application/json")
            .body("{\"interval_seconds\": ")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = error_of(
        app.post_json("/api/v1/cameras/nope/snapshot-schedules", &json!({}))
            .await,
    )
    .await;
    assert_eq!(status, 404, "unknown camera");
    let (status, _) = error_of(
        app.post_json("/api/v1/cameras/Bad!/snapshot-schedules", &json!({}))
            .await,
    )
    .await;
    assert_eq!(status, 422);
    // A schedule id is checked before any lookup: malformed is a 422 naming the field, well-formed
    // but unknown a 404.
    for bad in [
        "sch_nope",
        "..%2F..%2Fetc",
        "sch_0123456789ABCDEF0123456789abcdef",
        "%00",
    ] {
        let (status, body) = error_of(
            app.patch_json(
                &format!("/api/v1/snapshot-schedules/{bad}"),
                &json!({"enabled": false}),
            )
            .await,
        )
        .await;
        assert_eq!((status, body["field"].as_str()), (422, Some("id")), "{bad}");
        let (status, _) = error_of(
            app.delete(&format!("/api/v1/snapshot-schedules/{bad}"))
                .await,
        )
        .await;
        assert_eq!(status, 422, "{bad}");
    }
    // Bodies are JSON objects: an array of the field values in order is refused, not read
    // positionally.
    let (status, body) = error_of(
        app.post_json(
            "/api/v1/cameras/c1/snapshot-schedules",
            &json!([null, null]),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (422, Some("body")),
        "{body}"
    );
    let (status, _) = error_of(
        app.patch_json(
            &format!("/api/v1/snapshot-schedules/{id}"),
            &json!([60, false]),
        )
        .await,
    )
    .await;
    assert_eq!(status, 422);
    let unknown = format!("/api/v1/snapshot-schedules/sch_{}", "0".repeat(32));
    let (status, _) = error_of(app.patch_json(&unknown, &json!({"enabled": false})).await).await;
    assert_eq!(status, 404);
    let (status, _) = error_of(app.delete(&unknown).await).await;
    assert_eq!(status, 404);
    let list = json_of(app.get("/api/v1/cameras/c1/snapshot-schedules").await).await;
    assert_eq!(
        list.as_array().unwrap().len(),
        3,
        "bad input created nothing"
    );

    assert_eq!(
        app.delete(&format!("/api/v1/snapshot-schedules/{id}"))
            .await
            .status(),
        204
    );
    assert_eq!(
        app.delete(&format!("/api/v1/snapshot-schedules/{id}"))
            .await
            .status(),
        404
    );
    // Deleting the camera deletes its schedules.
    assert_eq!(app.delete("/api/v1/cameras/c1").await.status(), 204);
    let (status, _) = error_of(app.get("/api/v1/cameras/c1/snapshot-schedules").await).await;
    assert_eq!(status, 404);
    app.stop().await;
}

async fn snapshots_of(app: &TestApp, camera: &str) -> Vec<Value> {
    let v = json_of(
        app.get(&format!("/api/v1/cameras/{camera}/snapshots?limit=5000"))
            .await,
    )
    .await;
    v.as_array().unwrap().clone()
}

fn taken(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v["taken_at"].as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_cameras_at_5s_get_every_slot_while_one_hangs_and_one_answers_401() {
    let app = spawn_app().await;
    let mut cams = Vec::new();
    for i in 0..20 {
        let cam = FakeCamera::start(FakeAuth::None, frame()).await.unwrap();
        app.create_camera(json!({"id": format!("cam{i:02}"), "snapshot_url": cam.snapshot_url()}))
            .await;
        cams.push(cam);
    }
    let hung = FakeCamera::start(FakeAuth::None, frame()).await.unwrap();
    hung.set_behavior(Behavior::Hang);
    app.create_camera(json!({"id": "hung", "snapshot_url": hung.snapshot_url()}))
        .await;
    let locked = FakeCamera::start(
        FakeAuth::Digest {
            user: "admin".into(),
            pass: "right".into(),
        },
        frame(),
    )
    .await
    .unwrap();
    app.create_camera(
        json!({"id": "locked", "snapshot_url": locked.snapshot_url(),
        "username": "admin", "password": "wrong"}),
    )
    .await;

    let started = Utc::now();
    let mut ids = Vec::new();
    for id in (0..20)
        .map(|i| format!("cam{i:02}"))
        .chain(["hung".to_string(), "locked".to_string()])
    {
        let s = json_of(
            app.post_json(
                &format!("/api/v1/cameras/{id}/snapshot-schedules"),
                &json!({"interval_seconds": 5}),
            )
            .await,
        )
        .await;
        ids.push((id, s["id"].as_str().unwrap().to_string()));
    }
    // Slots at 0, 5, 10 s after each schedule's creation: wait for the third of every camera.
    wait_for(
        "three frames from each of the 20 cameras",
        Duration::from_secs(30),
        || async {
            for i in 0..20 {
                if snapshots_of(&app, &format!("cam{i:02}")).await.len() < 3 {
                    return None;
                }
            }
            Some(())
        },
    )
    .await;
    let elapsed = (Utc::now() - started).num_milliseconds();

    for i in 0..20 {
        let snaps = snapshots_of(&app, &format!("cam{i:02}")).await;
        let mut times: Vec<_> = snaps.iter().map(taken).collect();
        times.sort();
        // Every due slot captured: one per 5 s since creation (creation fires at once).
        assert!(
            times.len() as i64 >= elapsed / 5000,
            "cam{i:02}: {} frames in {elapsed} ms",
            times.len()
        );
        for w in times.windows(2) {
            let gap = (w[1] - w[0]).num_milliseconds();
            assert!(
                (4800..=5200).contains(&gap),
                "cam{i:02}: gap {gap} ms between frames"
            );
        }
        for s in &snaps {
            assert!(s["url"]
                .as_str()
                .unwrap()
                .starts_with(&format!("/media/snapshots/cam{i:02}/")));
        }
    }
    // The hung camera only hurt itself; the locked one failed once and is in backoff, not
    // hammered with a login at every slot.
    assert!(snapshots_of(&app, "hung").await.is_empty());
    assert!(snapshots_of(&app, "locked").await.is_empty());
    let locked_cam = json_of(app.get("/api/v1/cameras/locked").await).await;
    assert_eq!(locked_cam["status"]["state"], "auth_failed");
    assert_eq!(locked_cam["status"]["consecutive_failures"], 1);
    assert!(
        locked.hits() <= 2,
        "one attempt (challenge + answer), got {}",
        locked.hits()
    );
    let hung_cam = json_of(app.get("/api/v1/cameras/hung").await).await;
    assert_eq!(hung_cam["status"]["state"], "failing");

    // Metrics saw it all.
    let m = app.get("/metrics").await.text().await.unwrap();
    assert!(
        m.contains("heldar_captures_total{camera=\"cam00\",result=\"ok\"}"),
        "{m}"
    );
    assert!(
        m.contains("heldar_captures_total{camera=\"hung\",result=\"timeout\"}"),
        "{m}"
    );
    assert!(m.contains("heldar_schedule_lateness_seconds_bucket"), "{m}");
    assert!(m.contains("heldar_auth_backoff_skips_total"), "{m}");
    assert!(!m.contains("wrong"), "no secrets in metrics");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_stops_captures_and_deleting_a_schedule_keeps_its_frames() {
    let app = spawn_app().await;
    let cam = FakeCamera::start(FakeAuth::None, frame()).await.unwrap();
    app.create_camera(json!({"id": "c", "snapshot_url": cam.snapshot_url()}))
        .await;
    let s = json_of(
        app.post_json(
            "/api/v1/cameras/c/snapshot-schedules",
            &json!({"interval_seconds": 5}),
        )
        .await,
    )
    .await;
    let id = s["id"].as_str().unwrap();
    // Creation fires at once.
    let first = wait_for("the first frame", Duration::from_secs(10), || async {
        snapshots_of(&app, "c").await.into_iter().next()
    })
    .await;
    assert_eq!(first["schedule_id"], id);
    let body = app
        .get(first["url"].as_str().unwrap())
        .await
        .bytes()
        .await
        .unwrap();
    assert!(jpeg::validate(&body).is_ok());
    let sched = json_of(app.get("/api/v1/cameras/c/snapshot-schedules").await).await;
    assert_eq!(sched[0]["last_fired_at"], first["taken_at"]);

    app.patch_json(
        &format!("/api/v1/snapshot-schedules/{id}"),
        &json!({"enabled": false}),
    )
    .await;
    let hits = cam.hits();
    // Past the next slot: nothing more is captured.
    let disabled_at = tokio::time::Instant::now();
    wait_for("the next slot to pass", Duration::from_secs(10), || async {
        (disabled_at.elapsed() > Duration::from_secs(6)).then_some(())
    })
    .await;
    assert_eq!(cam.hits(), hits, "a disabled schedule fired");
    assert_eq!(
        app.delete(&format!("/api/v1/snapshot-schedules/{id}"))
            .await
            .status(),
        204
    );
    let snaps = snapshots_of(&app, "c").await;
    assert_eq!(snaps.len(), 1);
    assert!(
        snaps[0]["schedule_id"].is_null(),
        "the frame stays, its schedule link is cleared"
    );
    app.stop().await;
}

/// Scheduled fires read cameras from a cache (no row read per slot); an edit made through the
/// API must still reach the very next slot, and a camera whose password is fixed leaves its
/// auth-failure backoff at once.
#[tokio::test]
async fn a_camera_edit_reaches_the_next_scheduled_slot() {
    let app = spawn_app().await;
    let first = FakeCamera::start(FakeAuth::None, frame()).await.unwrap();
    let second = FakeCamera::start(FakeAuth::None, frame()).await.unwrap();
    app.create_camera(json!({"id": "moved", "snapshot_url": first.snapshot_url()}))
        .await;
    let r = app
        .post_json(
            "/api/v1/cameras/moved/snapshot-schedules",
            &json!({"interval_seconds": 5}),
        )
        .await;
    assert_eq!(r.status(), 201);
    wait_for(
        "a frame from the first address",
        Duration::from_secs(10),
        || async { (first.hits() >= 1).then_some(()) },
    )
    .await;

    let r = app
        .patch_json(
            "/api/v1/cameras/moved",
            &json!({"snapshot_url": second.snapshot_url()}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let before = first.hits();
    wait_for(
        "a frame from the new address",
        Duration::from_secs(12),
        || async { (second.hits() >= 1).then_some(()) },
    )
    .await;
    assert_eq!(
        first.hits(),
        before,
        "the old address was used after the edit"
    );
    wait_for("both frames stored", Duration::from_secs(5), || async {
        (snapshots_of(&app, "moved").await.len() >= 2).then_some(())
    })
    .await;
    app.stop().await;
}

/// The schedule-create body is read raw (an empty one means the defaults), so the body limit is
/// hit there outside the JSON extractor: it must still be our JSON 413, not axum's plain text.
/// A script that creates a schedule (300 s) and sends `patches` while the first capture is still
/// running: the claimed slot counts as fired, so the schedule's next slot is `created + next_in`
/// seconds. Before, the edit made the schedule due at once: the scheduler counted that slot
/// missed ("the previous capture is still running"), or, after a pause and resume (which drop
/// the running capture from the scheduler's view), captured the slot a second time.
async fn edited_during_the_first_capture(patches: &[Value], next_in: i64) {
    let app = spawn_app().await;
    let cam = FakeCamera::start(FakeAuth::None, frame()).await.unwrap();
    // Under the test capture timeout (2 s), long enough to edit the schedule meanwhile.
    cam.set_behavior(Behavior::Delay(Duration::from_millis(1500)));
    app.create_camera(json!({"id": "slow", "snapshot_url": cam.snapshot_url()}))
        .await;
    let s = json_of(
        app.post_json(
            "/api/v1/cameras/slow/snapshot-schedules",
            &json!({"interval_seconds": 300}),
        )
        .await,
    )
    .await;
    let id = s["id"].as_str().unwrap().to_string();
    let created: DateTime<Utc> = s["created_at"].as_str().unwrap().parse().unwrap();
    // The first slot is claimed (next_due_at moved on) while its capture waits on the camera.
    let path = format!("/api/v1/snapshot-schedules/{id}");
    wait_for(
        "the first slot claimed",
        Duration::from_secs(10),
        || async {
            let s = json_of(app.get(&path).await).await;
            let due: DateTime<Utc> = s["next_due_at"].as_str()?.parse().ok()?;
            (due > created).then_some(())
        },
    )
    .await;
    assert!(
        snapshots_of(&app, "slow").await.is_empty(),
        "still capturing"
    );
    let mut edited = Value::Null;
    for patch in patches {
        edited = json_of(app.patch_json(&path, patch).await).await;
    }
    let due: DateTime<Utc> = edited["next_due_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        due,
        created + chrono::Duration::seconds(next_in),
        "the schedule runs on from the claimed slot: {edited}"
    );
    wait_for("the first frame", Duration::from_secs(15), || async {
        snapshots_of(&app, "slow").await.into_iter().next()
    })
    .await;
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert_eq!(
        common::metric(&metrics, "heldar_missed_slots_total"),
        Some(0),
        "no slot missed"
    );
    assert_eq!(snapshots_of(&app, "slow").await.len(), 1, "one frame");
    app.stop().await;
}

#[tokio::test]
async fn an_interval_edited_during_the_first_capture_counts_no_missed_slot() {
    edited_during_the_first_capture(&[json!({"interval_seconds": 30})], 30).await;
}

#[tokio::test]
async fn a_pause_and_resume_during_the_first_capture_captures_its_slot_once() {
    edited_during_the_first_capture(&[json!({"enabled": false}), json!({"enabled": true})], 300)
        .await;
}

#[tokio::test]
async fn an_oversized_schedule_body_is_a_json_413_and_creates_nothing() {
    let app = spawn_app().await;
    let cam = FakeCamera::start(FakeAuth::None, frame()).await.unwrap();
    app.create_camera(json!({"id": "c1", "snapshot_url": cam.snapshot_url()}))
        .await;
    let padding = " ".repeat(70 * 1024);
    let resp = app
        .client
        .post(app.url("/api/v1/cameras/c1/snapshot-schedules"))
        .header("content-type", "application/json")
        .body(format!("{{\"enabled\": true}}{padding}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let (status, body) = error_of(resp).await;
    assert_eq!((status, body["code"].as_str()), (413, Some("too_large")));
    assert!(body["error"].as_str().unwrap().contains("64 KiB"), "{body}");
    let list = json_of(app.get("/api/v1/cameras/c1/snapshot-schedules").await).await;
    assert_eq!(list, json!([]));
    app.stop().await;
}

/// Status, `x-total-count`, `link` target and JSON body of a GET.
async fn listed(app: &TestApp, path: &str) -> (u16, Option<u64>, Option<String>, Value) {
    let r = app.get(path).await;
    let status = r.status().as_u16();
    let total = r
        .headers()
        .get("x-total-count")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    let next = r.headers().get("link").map(|l| {
        let l = l.to_str().unwrap();
        assert!(l.ends_with(">; rel=\"next\""), "{l}");
        l.trim_start_matches('<')
            .split('>')
            .next()
            .unwrap()
            .to_string()
    });
    (status, total, next, r.json().await.unwrap())
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn every_schedule_is_listed_filtered_paged_and_found_by_id() {
    let app = spawn_app().await;
    let cam = FakeCamera::start(FakeAuth::None, frame()).await.unwrap();
    for id in ["a", "b"] {
        app.create_camera(json!({"id": id, "snapshot_url": cam.snapshot_url()}))
            .await;
    }
    // a: two enabled, one disabled; b: one enabled, one disabled. A day apart, so the enabled
    // ones fire once and then stay quiet.
    let mut created = Vec::new();
    for (camera, enabled) in [
        ("a", true),
        ("a", false),
        ("b", true),
        ("a", true),
        ("b", false),
    ] {
        let r = app
            .post_json(
                &format!("/api/v1/cameras/{camera}/snapshot-schedules"),
                &json!({"interval_seconds": 86400, "enabled": enabled}),
            )
            .await;
        assert_eq!(r.status(), 201);
        created.push(json_of(r).await);
    }
    // Oldest first: by created_at, then id.
    let mut order = created.clone();
    order.sort_by_key(|s| {
        (
            s["created_at"].as_str().unwrap().to_string(),
            s["id"].as_str().unwrap().to_string(),
        )
    });
    let order: Vec<String> = order
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();

    let (status, total, next, all) = listed(&app, "/api/v1/snapshot-schedules").await;
    assert_eq!((status, total, next), (200, Some(5), None));
    assert_eq!(ids(&all), order);

    let id_of = |i: usize| created[i]["id"].as_str().unwrap().to_string();
    let without = |skip: &[usize]| -> Vec<String> {
        order
            .iter()
            .filter(|id| !skip.iter().any(|i| **id == id_of(*i)))
            .cloned()
            .collect()
    };
    for (query, expect) in [
        ("camera=a", without(&[2, 4])),
        ("camera=b", without(&[0, 1, 3])),
        ("enabled=true", without(&[1, 4])),
        ("enabled=0", without(&[0, 2, 3])),
        ("camera=b&enabled=false", vec![id_of(4)]),
        ("camera=a&enabled=1", without(&[1, 2, 4])),
    ] {
        let (status, total, _, list) =
            listed(&app, &format!("/api/v1/snapshot-schedules?{query}")).await;
        assert_eq!(status, 200, "{query}");
        assert_eq!(ids(&list), expect, "{query}");
        assert_eq!(total, Some(expect.len() as u64), "{query}");
    }

    // Paged: two at a time, the filter kept in every link.
    let mut walked = Vec::new();
    let mut next = Some("/api/v1/snapshot-schedules?limit=2&camera=a".to_string());
    let mut pages = 0;
    while let Some(url) = next.take() {
        let (status, total, link, page) = listed(&app, &url).await;
        assert_eq!((status, total), (200, Some(3)), "{url}");
        if let Some(l) = &link {
            assert!(l.contains("camera=a") && l.contains("limit=2"), "{l}");
        }
        walked.extend(ids(&page));
        next = link;
        pages += 1;
    }
    assert_eq!(pages, 2);
    assert_eq!(walked, without(&[2, 4]));

    // Bad filters are said.
    let (status, body) = error_of(app.get("/api/v1/snapshot-schedules?camera=ghost").await).await;
    assert_eq!(status, 404, "{body}");
    assert!(body["error"].as_str().unwrap().contains("ghost"), "{body}");
    for (query, field) in [
        ("camera=Bad!", "camera"),
        ("enabled=maybe", "enabled"),
        ("limit=0", "limit"),
        ("cursor=abc", "cursor"),
    ] {
        let (status, body) = error_of(
            app.get(&format!("/api/v1/snapshot-schedules?{query}"))
                .await,
        )
        .await;
        assert_eq!(
            (status, body["field"].as_str()),
            (422, Some(field)),
            "{query}: {body}"
        );
    }

    // One by id: the same body the creation answered.
    for s in &created {
        let (status, _, _, one) = listed(
            &app,
            &format!("/api/v1/snapshot-schedules/{}", s["id"].as_str().unwrap()),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(one["id"], s["id"]);
        assert_eq!(one["camera_id"], s["camera_id"]);
        assert_eq!(one["enabled"], s["enabled"]);
        assert_eq!(one["interval_seconds"], 86400);
        assert_eq!(one["created_at"], s["created_at"]);
    }
    let unknown = format!("/api/v1/snapshot-schedules/sch_{}", "0".repeat(32));
    let (status, body) = error_of(app.get(&unknown).await).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("no snapshot schedule with id"),
        "{body}"
    );
    let (status, body) = error_of(app.get("/api/v1/snapshot-schedules/sch_nope").await).await;
    assert_eq!((status, body["field"].as_str()), (422, Some("id")));
    // Deleted: gone from the one and the list.
    assert_eq!(
        app.delete(&format!("/api/v1/snapshot-schedules/{}", id_of(0)))
            .await
            .status(),
        204
    );
    let (status, _) = error_of(
        app.get(&format!("/api/v1/snapshot-schedules/{}", id_of(0)))
            .await,
    )
    .await;
    assert_eq!(status, 404);
    let (_, total, _, all) = listed(&app, "/api/v1/snapshot-schedules").await;
    assert_eq!(total, Some(4));
    assert!(!ids(&all).contains(&id_of(0)));
    // One camera's list (unpaged) carries its count too.
    let (_, total, next, list) = listed(&app, "/api/v1/cameras/b/snapshot-schedules").await;
    assert_eq!((total, next), (Some(2), None));
    assert_eq!(list.as_array().unwrap().len(), 2);
    app.stop().await;
}
