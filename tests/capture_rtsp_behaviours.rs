//! Cameras as they really speak RTSP (docs/rtsp.md, the table of that name): one test per
//! behaviour, against a scripted fake camera that speaks raw RTSP over a real TCP socket and
//! replays H.264 recorded from the GStreamer camera (`tests/common/fake_rtsp.rs`), through the
//! real application on port 0. ffmpeg is pointed at a path that does not exist, so a silent
//! fallback would fail the capture with `ffmpeg_missing`.

mod common;

use std::time::Duration;

use chrono::{DateTime, Utc};
use common::fake_rtsp::{Auth, FakeCamera, Keepalive, Script, CLIP_240P, CLIP_360P};
use common::{spawn_app_with, wait_for, TestApp};
use heldar::app::BuildOptions;
use heldar::capture::jpeg;
use serde_json::{json, Value};

/// The app: native only, captures bounded at 6 s (a busy machine), a session silent for 3 s
/// reconnected; `tweak` sets the rest.
async fn app(tweak: impl FnOnce(&mut heldar::config::Config)) -> TestApp {
    spawn_app_with(
        |c| {
            c.ffmpeg_bin = "/nonexistent/ffmpeg".into();
            c.capture_timeout = Duration::from_secs(6);
            c.rtsp.stall = Duration::from_secs(3);
            tweak(c);
        },
        BuildOptions::default(),
    )
    .await
}

async fn add_camera(app: &TestApp, id: &str, cam: &FakeCamera, extra: Value) {
    let mut body = json!({"id": id, "main_stream_url": cam.url(), "snapshot_source": "native"});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    app.create_camera(body).await;
}

async fn schedule(app: &TestApp, camera: &str, interval: i64) -> Value {
    let resp = app
        .post_json(
            &format!("/api/v1/cameras/{camera}/snapshot-schedules"),
            &json!({"interval_seconds": interval}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    resp.json().await.unwrap()
}

async fn camera(app: &TestApp, id: &str) -> Value {
    app.get(&format!("/api/v1/cameras/{id}"))
        .await
        .json()
        .await
        .unwrap()
}

/// One stored snapshot: when, and the size its JPEG really decodes to.
#[derive(Debug, Clone)]
struct Stored {
    taken_at: DateTime<Utc>,
    size: (u16, u16),
}

/// Every stored snapshot of `camera`, oldest first, each JPEG fetched and decoded.
async fn stored(app: &TestApp, camera: &str) -> Vec<Stored> {
    let list: Value = app
        .get(&format!("/api/v1/cameras/{camera}/snapshots?limit=500"))
        .await
        .json()
        .await
        .unwrap();
    let mut out = Vec::new();
    for s in list.as_array().unwrap() {
        let bytes = app
            .get(s["url"].as_str().unwrap())
            .await
            .bytes()
            .await
            .unwrap();
        let size = jpeg::validate(&bytes).expect("a stored frame decodes");
        assert_eq!(
            (s["width"].as_i64(), s["height"].as_i64()),
            (Some(i64::from(size.0)), Some(i64::from(size.1))),
            "{s}"
        );
        out.push(Stored {
            taken_at: s["taken_at"].as_str().unwrap().parse().unwrap(),
            size,
        });
    }
    out.sort_by_key(|s| s.taken_at);
    out
}

/// Wait until `camera` has at least `n` stored frames.
async fn wait_stored(app: &TestApp, camera: &str, n: usize, limit: Duration) -> Vec<Stored> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let list: Value = app
            .get(&format!("/api/v1/cameras/{camera}/snapshots?limit=500"))
            .await
            .json()
            .await
            .unwrap();
        if list.as_array().unwrap().len() >= n {
            return stored(app, camera).await;
        }
        if tokio::time::Instant::now() >= deadline {
            let c = self::camera(app, camera).await;
            panic!(
                "timed out waiting for {n} stored frames of {camera}: {} stored; camera {c}",
                list.as_array().unwrap().len()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `camera`'s captures by result, from /metrics: (ok, anything else).
async fn captures(app: &TestApp, camera: &str) -> (u64, u64) {
    let text = app.get("/metrics").await.text().await.unwrap();
    let mut ok = 0;
    let mut failed = 0;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("heldar_captures_total{") else {
            continue;
        };
        if !rest.contains(&format!("camera=\"{camera}\"")) {
            continue;
        }
        let n: u64 = rest.rsplit(' ').next().unwrap().parse().unwrap();
        if rest.contains("result=\"ok\"") {
            ok += n;
        } else {
            failed += n;
        }
    }
    (ok, failed)
}

/// Wait until `camera`'s session is warm with frames at hand.
async fn warm(app: &TestApp, id: &str) -> Value {
    wait_for(
        "a warm session with frames",
        Duration::from_secs(20),
        || async {
            let cam = camera(app, id).await;
            (cam["rtsp"]["session"] == "warm" && cam["rtsp"]["note"].is_null()).then_some(cam)
        },
    )
    .await
}

/// A live frame of `camera`: its size and `X-Heldar-Taken-At`.
async fn live(app: &TestApp, camera: &str) -> ((u16, u16), DateTime<Utc>) {
    let resp = app.get(&format!("/api/v1/cameras/{camera}/snapshot")).await;
    let status = resp.status();
    let taken: Option<DateTime<Utc>> = resp
        .headers()
        .get("x-heldar-taken-at")
        .and_then(|h| h.to_str().ok())
        .and_then(|t| t.parse().ok());
    let body = resp.bytes().await.unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    (jpeg::validate(&body).expect("a valid JPEG"), taken.unwrap())
}

/// Every slot since the schedule began was captured: `n` frames, no failed capture, no missed
/// slot, one frame per slot (consecutive frames about one interval apart).
async fn no_slot_lost(app: &TestApp, camera: &str, interval_s: i64, n: usize) -> Vec<Stored> {
    let frames = wait_stored(app, camera, n, Duration::from_secs(40)).await;
    let (ok, failed) = captures(app, camera).await;
    assert_eq!(failed, 0, "{ok} captures ok, {failed} failed");
    let text = app.get("/metrics").await.text().await.unwrap();
    assert_eq!(
        common::metric(&text, "heldar_missed_slots_total"),
        Some(0),
        "missed slots"
    );
    // The first slot fired as the schedule was made; each later one has its frame, taken at
    // most a second before its slot or, across a reconnect, after it: never two slots apart.
    for w in frames[1..].windows(2) {
        let gap = (w[1].taken_at - w[0].taken_at).num_milliseconds();
        assert!(
            gap < (2 * interval_s * 1000) - 500 && gap > 0,
            "frames {:?} are {gap} ms apart",
            (w[0].taken_at, w[1].taken_at)
        );
    }
    frames
}

// ---------------------------------------------------------------------------------------------
// a. Long GOPs ("smart codecs", one keyframe at PLAY only).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_gop_is_served_while_it_fits_then_the_status_says_no_keyframe_is_at_hand() {
    // One keyframe per PLAY, and a camera that drops the connection every 4 s, so each
    // connection has a GOP that fits for a while (64 KiB: the keyframe and 21 frames, 1.4 s)
    // and then outgrows the bound for the rest of its life.
    let cam = FakeCamera::start(Script {
        keyframe_only_at_play: true,
        drop_after: Some(Duration::from_secs(4)),
        ..Script::default()
    })
    .await;
    let app = app(|c| c.rtsp.gop_max_bytes = 65_536).await;
    add_camera(&app, "smart", &cam, json!({})).await;
    schedule(&app, "smart", 5).await;
    let note = wait_for(
        "the status to say no keyframe is at hand",
        Duration::from_secs(20),
        || async {
            let c = camera(&app, "smart").await;
            c["rtsp"]["note"]
                .as_str()
                .filter(|n| n.contains("no keyframe at hand"))
                .map(str::to_string)
        },
    )
    .await;
    assert!(note.contains("HELDAR_RTSP_GOP_MAX_BYTES"), "{note}");
    // While the GOP fits, slots get frames.
    let frames = wait_stored(&app, "smart", 2, Duration::from_secs(30)).await;
    // Every stored frame decodes at the camera's size and lies within a GOP that fitted: no
    // frame from after the bound was outgrown (they reference a keyframe no longer held, or —
    // here — one the camera never sent) was decoded.
    let plays = cam.stats().played_at;
    for f in &frames {
        assert_eq!(f.size, (640, 360));
        let fits = plays.iter().any(|p| {
            let ms = (f.taken_at - *p).num_milliseconds();
            (-100..=1_600).contains(&ms)
        });
        assert!(
            fits,
            "frame {:?} is not within 1.5 s of a PLAY {plays:?}",
            f.taken_at
        );
    }
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// b. Keepalives rejected or answered with a wrong CSeq; a camera dropping the session (Tapo).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalives_rejected_or_answered_with_a_wrong_cseq_lose_no_slot() {
    // A 2 s session timeout: retina keeps alive every second. The first keepalive (OPTIONS)
    // is answered; the next, GET_PARAMETER, gets 405; the third gets 200 with the previous
    // request's CSeq, which ends retina's session (every 3 s).
    let cam = FakeCamera::start(Script {
        session_timeout_s: 2,
        keepalives: vec![Keepalive::Ok, Keepalive::Status(405), Keepalive::WrongCseq],
        ..Script::default()
    })
    .await;
    let app = app(|_| {}).await;
    add_camera(&app, "tapo", &cam, json!({})).await;
    schedule(&app, "tapo", 5).await;
    let frames = no_slot_lost(&app, "tapo", 5, 4).await;
    assert!(frames.iter().all(|f| f.size == (640, 360)));
    let st = cam.stats();
    // OPTIONS first, then GET_PARAMETER (listed by the camera); a session outlived its 405:
    // it got to its third keepalive.
    let on = |c: usize| -> Vec<&str> {
        st.keepalives
            .iter()
            .filter(|k| k.0 == c)
            .map(|k| k.1.as_str())
            .collect()
    };
    assert!(
        (1..=st.connections).any(|c| on(c) == ["OPTIONS", "GET_PARAMETER", "GET_PARAMETER"]),
        "{:?}",
        st.keepalives
    );
    assert!(
        st.plays >= 3,
        "reconnected after each wrong CSeq: {} PLAYs",
        st.plays
    );
    assert!(
        st.max_active <= 1,
        "{} sessions at once: {:?}",
        st.max_active,
        st.events
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_that_drops_the_session_every_few_seconds_loses_no_slot() {
    // TP-Link Tapo drops the session about every 15 s; here every 3 s.
    let cam = FakeCamera::start(Script {
        drop_after: Some(Duration::from_secs(3)),
        ..Script::default()
    })
    .await;
    let app = app(|_| {}).await;
    add_camera(&app, "tapo", &cam, json!({})).await;
    schedule(&app, "tapo", 5).await;
    let frames = no_slot_lost(&app, "tapo", 5, 4).await;
    assert!(frames.iter().all(|f| f.size == (640, 360)));
    let st = cam.stats();
    assert!(st.plays >= 3, "{} PLAYs", st.plays);
    let c = camera(&app, "tapo").await;
    assert_eq!(c["status"]["consecutive_failures"], 0, "{c}");
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// c. Stale sessions (old live555 firmware).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_live555_cameras_stale_session_is_torn_down_and_frames_go_on() {
    // A live555 version with the stale-session bug: a session whose connection the camera
    // dropped lives on, and its packets land on the next connections until a TEARDOWN names
    // it (and for at least 2 s).
    let cam = FakeCamera::start(Script {
        tool: Some("LIVE555 Streaming Media v2016.11.28".into()),
        stale_sessions: Some(Duration::from_secs(2)),
        drop_after: Some(Duration::from_secs(3)),
        ..Script::default()
    })
    .await;
    let app = app(|_| {}).await;
    add_camera(&app, "reolink", &cam, json!({})).await;
    schedule(&app, "reolink", 5).await;
    wait_for(
        "stale packets on a connection opening a session, and TEARDOWNs",
        Duration::from_secs(30),
        || async {
            let st = cam.stats();
            (st.stale_after_describe >= 1 && st.teardowns.len() >= 2 && st.plays >= 3).then_some(())
        },
    )
    .await;
    // Frames go on after the stale data: stored frames after the first stale delivery.
    let since = Utc::now();
    let frames = wait_for(
        "frames after the stale session",
        Duration::from_secs(30),
        || async {
            let f = stored(&app, "reolink").await;
            (f.iter().filter(|f| f.taken_at > since).count() >= 2).then_some(f)
        },
    )
    .await;
    assert!(frames.iter().all(|f| f.size == (640, 360)));
    // Each dropped session was torn down by name on a fresh connection (retina's
    // TeardownPolicy::Auto for a known-buggy live555).
    let st = cam.stats();
    let named = common::fake_rtsp::distinct(&st.teardowns);
    assert!(named.len() >= 2, "{:?}", st.teardowns);
    assert!(st.max_active <= 2, "{} sessions at once", st.max_active);
    let c = camera(&app, "reolink").await;
    assert_eq!(c["rtsp"]["backend"], "native", "{c}");
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// d. Cameras that serve one session (453 Not Enough Bandwidth).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_session_camera_never_gets_two_sessions_and_a_453_is_unreachable() {
    // One session at a time; keepalives every second, the third answered with a wrong CSeq,
    // which makes Heldar reconnect (and retina TEARDOWN the old session first).
    let cam = FakeCamera::start(Script {
        max_sessions: Some(1),
        session_timeout_s: 2,
        keepalives: vec![Keepalive::Ok, Keepalive::Ok, Keepalive::WrongCseq],
        ..Script::default()
    })
    .await;
    let app = app(|_| {}).await;
    add_camera(&app, "single", &cam, json!({})).await;
    schedule(&app, "single", 5).await;
    warm(&app, "single").await;
    // Live snapshots and slots share the one session, across the forced reconnects.
    for _ in 0..3 {
        assert_eq!(live(&app, "single").await.0, (640, 360));
    }
    wait_for("two reconnects", Duration::from_secs(30), || async {
        (cam.stats().plays >= 3).then_some(())
    })
    .await;
    no_slot_lost(&app, "single", 5, 3).await;
    let st = cam.stats();
    assert_eq!(st.max_active, 1, "Heldar held two sessions at once: {st:?}");
    assert_eq!(st.refused_453, 0, "a reconnect met its own old session");
    assert!(!st.teardowns.is_empty(), "the old sessions were torn down");
    // Another client (here, a second camera on the same stream) gets 453: unreachable, why.
    add_camera(&app, "other", &cam, json!({})).await;
    let (status, body) = common::error_of(app.get("/api/v1/cameras/other/snapshot").await).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (502, Some("unreachable")),
        "{body}"
    );
    assert!(body["error"].as_str().unwrap().contains("453"), "{body}");
    // The camera's status: failing, with the reason.
    let c = common::camera_in_state(&app, "other", "failing").await;
    assert!(
        c["status"]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("Not Enough Bandwidth")),
        "{c}"
    );
    assert_eq!(cam.stats().refused_453, 1);
    // Idle: the schedule goes, the session is torn down.
    let list: Value = app
        .get("/api/v1/cameras/single/snapshot-schedules")
        .await
        .json()
        .await
        .unwrap();
    for s in list.as_array().unwrap() {
        let id = s["id"].as_str().unwrap();
        assert_eq!(
            app.delete(&format!("/api/v1/snapshot-schedules/{id}"))
                .await
                .status(),
            204
        );
    }
    wait_for(
        "the idle session torn down",
        Duration::from_secs(15),
        || async { (cam.stats().active == 0).then_some(()) },
    )
    .await;
    assert_eq!(cam.stats().max_active, 1);
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// e. Parameter sets only in-band, and a resolution switch.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameter_sets_only_in_band_and_a_resolution_switch_rebuild_the_decoder() {
    // No sprop-parameter-sets in the SDP; 4 s of 640×360, then 320×240 for ever.
    let cam = FakeCamera::start(Script {
        sprop: false,
        clips: vec![CLIP_360P, CLIP_240P],
        ..Script::default()
    })
    .await;
    let app = app(|_| {}).await;
    add_camera(&app, "switch", &cam, json!({})).await;
    schedule(&app, "switch", 5).await;
    let frames = wait_for("frames of both sizes", Duration::from_secs(30), || async {
        let f = stored(&app, "switch").await;
        let small = f.iter().filter(|f| f.size == (320, 240)).count();
        (small >= 1).then_some(f)
    })
    .await;
    assert_eq!(frames[0].size, (640, 360), "{frames:?}");
    // The sizes switch once: every frame after the first small one is small.
    let first_small = frames.iter().position(|f| f.size == (320, 240)).unwrap();
    assert!(
        frames[first_small..].iter().all(|f| f.size == (320, 240)),
        "{frames:?}"
    );
    assert!(frames[..first_small].iter().all(|f| f.size == (640, 360)));
    // Live frames too, from the session that switched.
    assert_eq!(live(&app, "switch").await.0, (320, 240));
    assert_eq!(cam.stats().plays, 1, "one session throughout");
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// f. Bogus RTP-Info.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bogus_rtp_info_still_gives_frames_with_sane_times() {
    let cam = FakeCamera::start(Script {
        rtp_info: Some((0, 0)),
        auth: Auth::Basic("viewer".into(), "b4sic-pw".into()),
        ..Script::default()
    })
    .await;
    let app = app(|_| {}).await;
    add_camera(
        &app,
        "bogus",
        &cam,
        json!({"username": "viewer", "password": "b4sic-pw"}),
    )
    .await;
    let started = Utc::now();
    schedule(&app, "bogus", 5).await;
    let frames = wait_stored(&app, "bogus", 3, Duration::from_secs(30)).await;
    let now = Utc::now();
    for f in &frames {
        assert_eq!(f.size, (640, 360));
        assert!(
            f.taken_at >= started - chrono::Duration::seconds(1) && f.taken_at <= now,
            "taken_at {} outside [{started}, {now}]",
            f.taken_at
        );
    }
    for w in frames.windows(2) {
        assert!(
            w[1].taken_at > w[0].taken_at,
            "times go forward: {frames:?}"
        );
    }
    let ((w, h), taken) = live(&app, "bogus").await;
    assert_eq!((w, h), (640, 360));
    assert!(
        (Utc::now() - taken).num_milliseconds().abs() < 2_000,
        "{taken}"
    );
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// g. Packet loss inside a frame.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_with_a_lost_fragment_is_never_decoded_and_the_next_keyframe_recovers() {
    // Frame 8 (a P frame, three FU-A fragments) loses its middle fragment; the next keyframe
    // is frame 30, 1.5 s later.
    let cam = FakeCamera::start(Script {
        lose_fragment_of: Some(8),
        ..Script::default()
    })
    .await;
    let app = app(|_| {}).await;
    add_camera(&app, "lossy", &cam, json!({})).await;
    schedule(&app, "lossy", 60).await;
    // Live frames from the warm session while it waits for the keyframe: never one after the
    // loss.
    // (A polling loop of its own, bounded as wait_for is: it keeps what it saw.)
    let mut during = Vec::new();
    let mut noted = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let st = loop {
        let st = cam.stats();
        if !st.keyframe_after_loss_at.is_empty() {
            break st;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for the keyframe after the loss"
        );
        if !st.lost_frame_at.is_empty() {
            let resp = app.get("/api/v1/cameras/lossy/snapshot?store=true").await;
            if resp.status() == 200 {
                let taken: DateTime<Utc> = resp.headers()["x-heldar-taken-at"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                during.push(taken);
            }
            let c = camera(&app, "lossy").await;
            if let Some(n) = c["rtsp"]["note"].as_str() {
                assert!(n.contains("packets lost"), "{n}");
                noted = true;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let lost = st.lost_frame_at[0];
    let recovered = st.keyframe_after_loss_at[0];
    assert!(noted, "the status said packets were lost");
    for t in &during {
        assert!(
            *t < lost || *t >= recovered - chrono::Duration::milliseconds(50),
            "a frame taken at {t}, between the loss at {lost} and the keyframe at {recovered}"
        );
    }
    // After the keyframe, frames again, and the note is gone.
    warm(&app, "lossy").await;
    let (size, taken) = live(&app, "lossy").await;
    assert_eq!(size, (640, 360));
    assert!(
        taken >= recovered - chrono::Duration::milliseconds(50),
        "{taken}"
    );
    for f in stored(&app, "lossy").await {
        assert_eq!(f.size, (640, 360));
        assert!(
            f.taken_at < lost || f.taken_at >= recovered - chrono::Duration::milliseconds(50),
            "stored frame taken at {} between the loss and the keyframe",
            f.taken_at
        );
    }
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// h. A Digest re-challenge with a new nonce on a keepalive.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_digest_rechallenge_on_a_keepalive_is_survived_and_the_password_never_shows() {
    const PASSWORD: &str = "Dig3st-s3cr3t!x";
    // Keepalives every second; the second is answered 401 with a new nonce (stale=true), and
    // the old nonce is refused from then on; after 5 s the camera drops the connection, so the
    // next one must answer the new challenge.
    let cam = FakeCamera::start(Script {
        auth: Auth::Digest("admin".into(), PASSWORD.into()),
        session_timeout_s: 2,
        keepalives: vec![Keepalive::Ok, Keepalive::Rechallenge],
        drop_after: Some(Duration::from_secs(5)),
        ..Script::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = common::heldar_cmd(dir.path());
    cmd.arg("serve")
        .env("HELDAR_LOG", "debug")
        .env("HELDAR_FFMPEG_BIN", "/nonexistent/ffmpeg")
        .env("HELDAR_CAPTURE_TIMEOUT_S", "6")
        .env("HELDAR_RTSP_STALL_S", "3");
    let server = common::ServerProcess::start(cmd);
    let client = reqwest::Client::new();
    let resp = client
        .post(server.url("/api/v1/cameras"))
        .json(
            &json!({"id": "digest", "main_stream_url": cam.url(), "snapshot_source": "native",
            "username": "admin", "password": PASSWORD}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let resp = client
        .post(server.url("/api/v1/cameras/digest/snapshot-schedules"))
        .json(&json!({"interval_seconds": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    // The re-challenge came, and a later connection authenticated with the new nonce.
    wait_for(
        "a session on the new nonce",
        Duration::from_secs(30),
        || async {
            let st = cam.stats();
            st.authenticated
                .iter()
                .any(|(m, n)| m == "PLAY" && *n >= 1)
                .then_some(())
        },
    )
    .await;
    let count = |c: reqwest::Client, url: String| async move {
        let v: Value = c.get(url).send().await.unwrap().json().await.unwrap();
        v.as_array().unwrap().len()
    };
    let before = count(
        client.clone(),
        server.url("/api/v1/cameras/digest/snapshots"),
    )
    .await;
    wait_for(
        "slots after the re-challenge",
        Duration::from_secs(20),
        || {
            let (c, u) = (
                client.clone(),
                server.url("/api/v1/cameras/digest/snapshots"),
            );
            async move { (count(c, u).await >= before + 2).then_some(()) }
        },
    )
    .await;
    let cam_json: Value = client
        .get(server.url("/api/v1/cameras/digest"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let metrics = server.metrics().await;
    assert!(
        !metrics.contains("camera=\"digest\",result=\"auth_failed\""),
        "no capture failed on the re-challenge"
    );
    let st = cam.stats();
    assert!(st.nonces.len() >= 2, "{:?}", st.nonces);
    let (_, logs) = server.stop_with(nix::sys::signal::Signal::SIGTERM);
    let all = logs.join("\n");
    assert!(
        all.contains("keepalive failed") || all.contains("401"),
        "retina's note of the refused keepalive is in the debug log"
    );
    for text in [&all, &cam_json.to_string(), &metrics] {
        assert!(!text.contains(PASSWORD), "the password shows: {text}");
    }
}
