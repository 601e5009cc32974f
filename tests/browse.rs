//! Browsing stored frames: manual `?store=true`, the list with its bounds, `latest`, and
//! `/media` with its cache headers, ranges, and refusal of every path trick.

mod common;

use std::os::unix::fs::symlink;

use bytes::Bytes;
use common::{error_of, spawn_app, TestApp};
use heldar::capture::jpeg;
use heldar::fakecam::{pattern, FakeAuth, FakeCamera, FrameSupply};
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
