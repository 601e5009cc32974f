//! Browsing stored frames: manual `?store=true`, the list with its bounds, `latest`, and
//! `/media` with its cache headers, ranges, and refusal of every path trick.

mod common;

use std::os::unix::fs::symlink;

use std::collections::BTreeSet;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use common::{error_of, spawn_app, TestApp};
use heldar::capture::jpeg;
use heldar::fakecam::{pattern, FakeAuth, FakeCamera, FrameSupply};
use heldar::models::{new_id, CameraId, Snapshot};
use serde_json::{json, Value};

async fn setup() -> (TestApp, FakeCamera) {
    let app = spawn_app().await;
    let cam = FakeCamera::start(
        FakeAuth::None,
        FrameSupply::Static(Bytes::from(pattern::solid_jpeg(96, 64, [0, 200, 0]))),
    )
    .await
    .unwrap();
    app.create_camera(json!({"id": "yard", "snapshot_url": cam.snapshot_url()}))
        .await;
    (app, cam)
}

async fn store_one(app: &TestApp) -> (String, Bytes) {
    let r = app.get("/api/v1/cameras/yard/snapshot?store=true").await;
    assert_eq!(r.status(), 200);
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    assert!(r.headers().contains_key("x-heldar-snapshot-id"));
    (loc, r.bytes().await.unwrap())
}

#[tokio::test]
async fn manual_store_list_latest_and_media() {
    let (app, _cam) = setup().await;
    let (loc1, _) = store_one(&app).await;
    let (loc2, body2) = store_one(&app).await;
    assert_ne!(loc1, loc2);
    // A plain live snapshot is not stored.
    assert_eq!(app.get("/api/v1/cameras/yard/snapshot").await.status(), 200);

    let list: Value = app
        .get("/api/v1/cameras/yard/snapshots")
        .await
        .json()
        .await
        .unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["url"], loc2, "newest first");
    assert!(list[0]["schedule_id"].is_null());
    assert_eq!(
        (list[0]["width"].as_i64(), list[0]["height"].as_i64()),
        (Some(96), Some(64))
    );
    assert_eq!(list[0]["size_bytes"].as_u64(), Some(body2.len() as u64));
    // The file is where the design says: snapshots_dir/{camera}/{YYYYmmddTHHMMSSfffZ}.jpg.
    let rel = loc2.strip_prefix("/media/snapshots/").unwrap();
    let on_disk = std::fs::read(app.state.ops.config.snapshots_dir.join(rel)).unwrap();
    assert_eq!(on_disk, body2);
    assert!(heldar::store::parse_file_name(rel.split('/').nth(1).unwrap()).is_some());

    let one: Value = app
        .get("/api/v1/cameras/yard/snapshots?limit=1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one.as_array().unwrap().len(), 1);
    let t1 = list[1]["taken_at"].as_str().unwrap();
    let from: Value = app
        .client
        .get(app.url("/api/v1/cameras/yard/snapshots"))
        .query(&[("to", t1)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(from.as_array().unwrap().len(), 1, "bounds are inclusive");
    assert_eq!(from[0]["url"], loc1);

    let latest = app.get("/api/v1/cameras/yard/snapshots/latest").await;
    assert_eq!(latest.status(), 200);
    assert_eq!(latest.headers()["content-type"], "image/jpeg");
    assert_eq!(latest.bytes().await.unwrap(), body2);

    // Media: cache headers, conditional requests, ranges.
    let m = app.get(&loc2).await;
    assert_eq!(m.status(), 200);
    let etag = m.headers()["etag"].to_str().unwrap().to_string();
    assert!(m.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
    assert!(m.headers().contains_key("last-modified"));
    assert!(jpeg::validate(&m.bytes().await.unwrap()).is_ok());
    let not_modified = app
        .client
        .get(app.url(&loc2))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(not_modified.status(), 304);
    let part = app
        .client
        .get(app.url(&loc2))
        .header("range", "bytes=0-9")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(
        part.headers()["content-range"].to_str().unwrap(),
        format!("bytes 0-9/{}", body2.len())
    );
    assert_eq!(part.bytes().await.unwrap(), body2.slice(0..10));
    let (status, _) = error_of(
        app.client
            .get(app.url(&loc2))
            .header("range", "bytes=999999-")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 416);
    app.stop().await;
}

#[tokio::test]
async fn bad_queries_get_a_422_naming_the_parameter() {
    let (app, _cam) = setup().await;
    for (q, field) in [
        ("limit=0", "limit"),
        ("limit=5001", "limit"),
        ("limit=ten", "limit"),
        ("from=yesterday", "from"),
        ("to=2026-13-01T00:00:00Z", "to"),
        ("from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", "from"),
        ("from=2026-1-5", "from"),
        ("to=2026-02-30", "to"),
        ("from=2026-11-30&to=2026-11-29", "from"),
        ("cursor=nonsense", "cursor"),
        ("cursor=", "cursor"),
    ] {
        let (status, body) = error_of(
            app.get(&format!("/api/v1/cameras/yard/snapshots?{q}"))
                .await,
        )
        .await;
        assert_eq!(
            (status, body["field"].as_str()),
            (422, Some(field)),
            "{q}: {body}"
        );
    }
    let (status, body) = error_of(app.get("/api/v1/cameras/yard/snapshot?store=maybe").await).await;
    assert_eq!((status, body["field"].as_str()), (422, Some("store")));
    let (status, _) = error_of(app.get("/api/v1/cameras/ghost/snapshots").await).await;
    assert_eq!(status, 404);
    let (status, _) = error_of(app.get("/api/v1/cameras/yard/snapshots/latest").await).await;
    assert_eq!(status, 404, "no frames yet");
    app.stop().await;
}

#[tokio::test]
async fn media_refuses_every_path_trick_with_404() {
    let (app, _cam) = setup().await;
    let (loc, _) = store_one(&app).await;
    let file = loc.rsplit('/').next().unwrap().to_string();
    let dir = app.state.ops.config.snapshots_dir.clone();
    // A frame file no row names, a symlink to a secret, a symlinked camera dir.
    std::fs::write(dir.join("yard/20200101T000000000Z.jpg"), b"orphan").unwrap();
    std::fs::write(app.dir.path().join("secret.txt"), b"top secret").unwrap();
    symlink(
        app.dir.path().join("secret.txt"),
        dir.join("yard/20200101T000000001Z.jpg"),
    )
    .unwrap();
    symlink(dir.join("yard"), dir.join("alias")).unwrap();

    let raw = |path: String| {
        let client = app.client.clone();
        let base = app.base.clone();
        async move {
            // reqwest would normalise `..`; send the path bytes as they are.
            let url = reqwest::Url::parse(&format!("{base}{path}")).unwrap();
            client.get(url).send().await.unwrap()
        }
    };
    for path in [
        "/media/snapshots/yard/20200101T000000000Z.jpg".to_string(),
        "/media/snapshots/yard/20200101T000000001Z.jpg".to_string(),
        format!("/media/snapshots/alias/{file}"),
        format!("/media/snapshots/yard/..%2F..%2F{file}"),
        "/media/snapshots/yard/%2e%2e%2fheldar.db".to_string(),
        "/media/snapshots/..%2F..%2Fheldar.db/x.jpg".to_string(),
        "/media/snapshots/%2Fetc%2Fpasswd/x.jpg".to_string(),
        "/media/snapshots/yard/%2Fetc%2Fpasswd".to_string(),
        "/media/snapshots/yard/..%252F..%252Fheldar.db".to_string(),
        "/media/snapshots/yard/%00.jpg".to_string(),
        format!("/media/snapshots/YARD/{file}"),
        format!("/media/snapshots/yard/{file}%00"),
        "/media/snapshots/yard".to_string(),
        "/media/snapshots/yard/".to_string(),
    ] {
        let r = raw(path.clone()).await;
        let status = r.status().as_u16();
        let body = r.text().await.unwrap();
        assert_eq!(status, 404, "{path}: {body}");
        assert!(
            !body.contains("top secret") && !body.contains("orphan"),
            "{path}"
        );
    }
    // The real one still works.
    assert_eq!(raw(loc).await.status(), 200);
    app.stop().await;
}

/// Keep a real JPEG for camera `yard` taken at `at` (file and row, as a capture would), without
/// a capture: the tests below need frames at chosen times. Returns the snapshot id.
async fn frame_at(app: &TestApp, at: &str) -> String {
    let taken_at: DateTime<Utc> = at.parse().unwrap();
    let cam = CameraId::parse("yard").unwrap();
    let jpeg = Bytes::from(pattern::solid_jpeg(32, 24, [10, 120, 10]));
    let file = app
        .state
        .ops
        .store
        .write_frame(&cam, taken_at, jpeg.clone())
        .await
        .unwrap();
    let s = Snapshot {
        id: new_id("snp"),
        camera_id: cam,
        schedule_id: None,
        path: file.rel_path,
        taken_at,
        size_bytes: jpeg.len() as i64,
        width: Some(32),
        height: Some(24),
        created_at: Utc::now(),
        tag: None,
    };
    app.state.ops.writer.index(vec![s.clone()]).await.unwrap();
    s.id
}

/// The `taken_at` of each frame a list request answers, and its x-total-count.
async fn taken(app: &TestApp, query: &str) -> (Vec<String>, u64) {
    let r = app
        .get(&format!("/api/v1/cameras/yard/snapshots?{query}"))
        .await;
    assert_eq!(r.status(), 200, "{query}");
    let total = r.headers()["x-total-count"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let rows: Value = r.json().await.unwrap();
    let times = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["taken_at"].as_str().unwrap().to_string())
        .collect();
    (times, total)
}

#[tokio::test]
async fn a_date_alone_is_the_whole_utc_day() {
    let (app, _cam) = setup().await;
    for at in [
        "2026-11-28T23:59:59.999Z",
        "2026-11-29T00:00:00.000Z",
        "2026-11-29T12:00:00.000Z",
        "2026-11-29T23:59:59.999Z",
        "2026-11-30T00:00:00.000Z",
    ] {
        frame_at(&app, at).await;
    }
    // (The API writes whole seconds without a fraction.)
    let day = [
        "2026-11-29T23:59:59.999Z".to_string(),
        "2026-11-29T00:00:00Z".into(),
    ];
    let (got, total) = taken(&app, "from=2026-11-29&to=2026-11-29").await;
    assert_eq!(
        got,
        [
            "2026-11-29T23:59:59.999Z",
            "2026-11-29T12:00:00Z",
            "2026-11-29T00:00:00Z"
        ],
        "both ends of the day are in it, the neighbours' edges are not"
    );
    assert_eq!(total, 3);
    // `from` alone starts at midnight; `to` alone ends at the day's last instant.
    let (got, _) = taken(&app, "from=2026-11-29").await;
    assert_eq!(got.len(), 4);
    assert_eq!(got.last(), day.last());
    let (got, _) = taken(&app, "to=2026-11-29").await;
    assert_eq!(got.len(), 4);
    assert_eq!(got.first(), day.first());
    // A date and an RFC 3339 time mix; the time keeps its exact meaning (and offset).
    let (got, _) = taken(&app, "from=2026-11-29T13:00:00%2B01:00&to=2026-11-29").await;
    assert_eq!(got, ["2026-11-29T23:59:59.999Z", "2026-11-29T12:00:00Z"]);
    let (status, body) = error_of(
        app.get("/api/v1/cameras/yard/snapshots?from=29.11.2026")
            .await,
    )
    .await;
    assert_eq!((status, body["field"].as_str()), (422, Some("from")));
    let sentence = body["error"].as_str().unwrap();
    assert!(
        sentence.contains("2026-01-31 (the whole day, UTC)") && sentence.contains("RFC 3339"),
        "{body}"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_cursor_walks_every_frame_exactly_once_while_new_frames_arrive() {
    let (app, _cam) = setup().await;
    // 23 frames a second apart, and 5 more that share one millisecond (the id breaks the tie,
    // across page boundaries too).
    let mut original = BTreeSet::new();
    for i in 0..23 {
        let at = format!("2026-11-29T10:00:{i:02}.000Z");
        original.insert(frame_at(&app, &at).await);
    }
    for _ in 0..5 {
        original.insert(frame_at(&app, "2026-11-29T09:59:59.500Z").await);
    }
    assert_eq!(original.len(), 28);

    let mut seen = Vec::new();
    let mut next = Some("/api/v1/cameras/yard/snapshots?limit=4&to=2026-11-29".to_string());
    let mut pages = 0;
    let mut last_taken: Option<String> = None;
    while let Some(url) = next.take() {
        let r = app.get(&url).await;
        assert_eq!(r.status(), 200, "{url}");
        let total: usize = r.headers()["x-total-count"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        // Counted when the page was read: the original frames and those added so far.
        assert_eq!(total, 28 + 2 * pages, "{url}");
        next = r.headers().get("link").map(|l| {
            let l = l.to_str().unwrap();
            assert!(l.ends_with(">; rel=\"next\""), "{l}");
            let target = l
                .trim_start_matches('<')
                .split('>')
                .next()
                .unwrap()
                .to_string();
            assert!(target.starts_with("/api/v1/cameras/yard/snapshots?"), "{l}");
            assert!(
                target.contains("limit=4") && target.contains("to=2026-11-29"),
                "{l}"
            );
            target
        });
        let rows: Value = r.json().await.unwrap();
        let rows = rows.as_array().unwrap();
        assert!(rows.len() <= 4);
        for f in rows {
            let t = f["taken_at"].as_str().unwrap().to_string();
            if let Some(prev) = &last_taken {
                assert!(t <= *prev, "newest first across pages: {t} after {prev}");
            }
            last_taken = Some(t);
            seen.push(f["id"].as_str().unwrap().to_string());
        }
        pages += 1;
        // Frames keep arriving while the client pages: newer ones, and one inside the range
        // but newer than anything listed so far.
        frame_at(&app, &format!("2026-11-29T11:00:{pages:02}.000Z")).await;
        frame_at(&app, &format!("2026-11-29T10:30:{pages:02}.000Z")).await;
    }
    let unique: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "no frame twice: {seen:?}");
    assert_eq!(
        unique, original,
        "every frame once, none that arrived behind the walk"
    );
    assert_eq!(pages, 7, "28 frames, 4 a page, no empty last page");

    // A whole list fits one page: no link; x-total-count is the number in range.
    let r = app
        .get("/api/v1/cameras/yard/snapshots?from=2026-11-29T09:00:00Z&to=2026-11-29T10:00:05Z")
        .await;
    assert!(r.headers().get("link").is_none());
    assert_eq!(r.headers()["x-total-count"], "11");
    app.stop().await;
}
