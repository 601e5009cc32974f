//! Timelapse videos end to end, against the real server, real SQLite, real JPEG frames and the
//! real ffmpeg: an export of known frames is checked with ffprobe (frames, size, duration,
//! codec, faststart) and served with Range and ETag; a cancel stops ffmpeg and leaves no file;
//! bad requests get a sentence; a daily rule under a simulated clock makes exactly one video per
//! local day across restarts and both DST changes of Europe/Berlin; videos are pruned by their
//! TTL and, after the frames, under the disk floor.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, SubsecRound, Utc};
use common::frames::keep_frames;
use common::{error_of, spawn_app_with, test_config, wait_for, TestApp};
use futures_util::StreamExt;
use heldar::app::{Application, BuildOptions};
use heldar::clock::{Clock, SimulatedClock};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

fn ts(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn rfc(t: DateTime<Utc>) -> String {
    heldar::models::fmt_ts(t)
}

fn fast(c: &mut heldar::config::Config) {
    c.snapshot_fsync = false;
}

async fn camera(app: &TestApp, id: &str) {
    app.create_camera(json!({"id": id, "snapshot_url": "http://127.0.0.1:9/snapshot.jpg"}))
        .await;
}

/// Poll a job until it is in a final state.
async fn finished(app: &TestApp, location: &str) -> Value {
    wait_for("the job to finish", Duration::from_secs(120), || async {
        let v: Value = app.get(location).await.json().await.ok()?;
        matches!(v["state"].as_str(), Some("done" | "failed" | "cancelled")).then_some(v)
    })
    .await
}

/// ffprobe's view of a video: its first stream and its container.
fn probe(path: &Path) -> Value {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=codec_name,pix_fmt,width,height,nb_read_frames,avg_frame_rate:format=duration,format_name",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

async fn download(
    app: &TestApp,
    url: &str,
    dir: &Path,
    name: &str,
) -> (PathBuf, reqwest::header::HeaderMap) {
    let resp = app.get(url).await;
    assert_eq!(resp.status(), 200, "GET {url}");
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.unwrap();
    let path = dir.join(name);
    std::fs::write(&path, &bytes).unwrap();
    (path, headers)
}

/// Server-Sent Events of `GET /api/v1/events`, read as a client does.
struct Sse {
    body: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<Bytes>> + Send>>,
    buf: String,
}

impl Sse {
    async fn open(app: &TestApp, query: &str) -> Sse {
        let resp = app.get(&format!("/api/v1/events{query}")).await;
        assert_eq!(resp.status(), 200);
        let mut sse = Sse {
            body: Box::pin(resp.bytes_stream()),
            buf: String::new(),
        };
        assert_eq!(sse.next().await.0, "ready");
        sse
    }

    async fn next(&mut self) -> (String, Value) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let (mut name, mut data) = (String::new(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() {
                    continue;
                }
                return (name, serde_json::from_str(&data).unwrap());
            }
            let chunk = tokio::time::timeout_at(deadline, self.body.next())
                .await
                .expect("an event within 60 s")
                .expect("the stream stays open")
                .unwrap();
            self.buf.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_of_known_frames_is_an_mp4_ffprobe_agrees_with_and_it_is_served_with_range_and_etag(
) {
    let app = spawn_app_with(fast, BuildOptions::default()).await;
    camera(&app, "gate").await;
    // 48 frames, 10 s apart; most 640×360, some 1280×720 and some 4:3 (scaled and padded into
    // the first frame's 16:9).
    let t0 = (Utc::now() - chrono::Duration::hours(1)).trunc_subsecs(3);
    let times: Vec<_> = (0..48)
        .map(|i| t0 + chrono::Duration::seconds(10 * i))
        .collect();
    keep_frames(&app.state.ops, "gate", &times, |i| match i % 12 {
        5 => (1280, 720),
        9 => (640, 480),
        _ => (640, 360),
    })
    .await;
    // A frame just outside the range on each side: not in the video.
    keep_frames(
        &app.state.ops,
        "gate",
        &[
            t0 - chrono::Duration::seconds(1),
            times[47] + chrono::Duration::seconds(10),
        ],
        |_| (640, 360),
    )
    .await;
    let mut sse = Sse::open(&app, "?camera=gate").await;

    let resp = app
        .post_json(
            "/api/v1/cameras/gate/timelapses",
            &json!({"from": rfc(t0), "to": rfc(times[47] + chrono::Duration::seconds(10)), "fps": 12, "width": 320}),
        )
        .await;
    assert_eq!(resp.status(), 202);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let job: Value = resp.json().await.unwrap();
    assert_eq!(
        location,
        format!("/api/v1/jobs/{}", job["id"].as_str().unwrap())
    );
    assert_eq!(job["kind"], "timelapse");
    assert_eq!(job["camera_id"], "gate");
    assert_eq!(job["frames_total"], 48);
    assert!(
        matches!(job["state"].as_str(), Some("queued" | "running")),
        "{job}"
    );
    for field in [
        "eta_seconds",
        "error",
        "code",
        "timelapse",
        "started_at",
        "finished_at",
    ] {
        assert!(job.get(field).is_some(), "{field} missing: {job}");
    }

    // The event stream: progress (first at 0, last at 48), then the outcome, then the video.
    let mut progress = Vec::new();
    let (finished_ev, done_ev) = loop {
        let (name, v) = sse.next().await;
        match name.as_str() {
            "job.progress" => {
                assert_eq!(v["job_id"], job["id"]);
                assert_eq!(v["frames_total"], 48);
                progress.push(v["frames_done"].as_i64().unwrap());
            }
            "job.finished" => {
                let (n, done) = sse.next().await;
                assert_eq!(n, "timelapse.done");
                break (v, done);
            }
            _ => {}
        }
    };
    assert_eq!(progress.first(), Some(&0));
    assert_eq!(progress.last(), Some(&48));
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");
    assert_eq!(finished_ev["state"], "done");
    assert_eq!(finished_ev["timelapse_id"], done_ev["timelapse_id"]);

    let job = finished(&app, &location).await;
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["frames_done"], 48);
    let tl = &job["timelapse"];
    assert_eq!(tl["frames"], 48);
    assert_eq!(
        (tl["width"].as_u64(), tl["height"].as_u64()),
        (Some(320), Some(180))
    );
    assert_eq!(tl["duration_seconds"], 4.0);
    assert_eq!(tl["format"], "mp4");
    assert_eq!(tl["rule_id"], Value::Null);
    assert_eq!(tl["url"], done_ev["url"]);
    assert_eq!(job["output_bytes"], tl["size_bytes"]);
    let url = tl["url"].as_str().unwrap().to_string();
    assert!(
        url.starts_with("/media/timelapses/gate/tl_") && url.ends_with(".mp4"),
        "{url}"
    );

    // Listed for the camera, newest first.
    let list: Value = app
        .get("/api/v1/cameras/gate/timelapses")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], tl["id"]);

    // What ffprobe says of the file served.
    let (file, headers) = download(&app, &url, app.dir.path(), "export.mp4").await;
    assert_eq!(headers["content-type"], "video/mp4");
    assert_eq!(headers["accept-ranges"], "bytes");
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(bytes.len() as i64, tl["size_bytes"].as_i64().unwrap());
    let p = probe(&file);
    let s = &p["streams"][0];
    assert_eq!(s["codec_name"], "h264", "{p}");
    assert_eq!(s["pix_fmt"], "yuv420p", "{p}");
    assert_eq!(
        (s["width"].as_u64(), s["height"].as_u64()),
        (Some(320), Some(180))
    );
    assert_eq!(s["nb_read_frames"], "48", "{p}");
    assert_eq!(s["avg_frame_rate"], "12/1", "{p}");
    let duration: f64 = p["format"]["duration"].as_str().unwrap().parse().unwrap();
    assert!((duration - 4.0).abs() < 0.01, "duration {duration}");
    // faststart: the index (moov) comes before the media (mdat).
    let at = |tag: &[u8]| bytes.windows(4).position(|w| w == tag).unwrap();
    assert!(
        at(b"moov") < at(b"mdat"),
        "moov must come first (+faststart)"
    );

    // Range and ETag, like frames.
    let etag = headers["etag"].to_str().unwrap().to_string();
    assert_eq!(etag, format!("\"{}\"", tl["id"].as_str().unwrap()));
    let part = app
        .client
        .get(app.url(&url))
        .header("range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(
        part.headers()["content-range"],
        format!("bytes 100-199/{}", bytes.len()).as_str()
    );
    assert_eq!(&part.bytes().await.unwrap()[..], &bytes[100..200]);
    let tail = app
        .client
        .get(app.url(&url))
        .header("range", "bytes=-10")
        .send()
        .await
        .unwrap();
    assert_eq!(&tail.bytes().await.unwrap()[..], &bytes[bytes.len() - 10..]);
    let not_modified = app
        .client
        .get(app.url(&url))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(not_modified.status(), 304);
    let past = app
        .client
        .get(app.url(&url))
        .header("range", format!("bytes={}-", bytes.len()))
        .send()
        .await
        .unwrap();
    assert_eq!(past.status(), 416);

    // Nothing but a stored video's own path serves anything.
    let file_name = url.rsplit('/').next().unwrap().to_string();
    for bad in [
        "/media/timelapses/gate/..%2F..%2Fheldar.db".to_string(),
        format!("/media/timelapses/yard/{file_name}"),
        "/media/timelapses/gate/tl_0123456789abcdef0123456789abcdef.mp4".to_string(),
        format!(
            "/media/timelapses/gate/{}",
            file_name.replace(".mp4", ".webm")
        ),
    ] {
        assert_eq!(app.get(&bad).await.status(), 404, "{bad}");
    }

    // The same frames as WebM (VP9).
    let resp = app
        .post_json(
            "/api/v1/cameras/gate/timelapses",
            &json!({"from": rfc(t0), "to": rfc(times[23] + chrono::Duration::seconds(1)), "fps": 6, "format": "webm", "every_nth": 2}),
        )
        .await;
    assert_eq!(resp.status(), 202);
    let loc = resp.headers()["location"].to_str().unwrap().to_string();
    let job = finished(&app, &loc).await;
    assert_eq!(job["state"], "done", "{job}");
    let tl = &job["timelapse"];
    assert_eq!(tl["frames"], 12); // 24 frames, every 2nd
    assert_eq!(
        (tl["width"].as_u64(), tl["height"].as_u64()),
        (Some(640), Some(360))
    );
    let (file, headers) =
        download(&app, tl["url"].as_str().unwrap(), app.dir.path(), "x.webm").await;
    assert_eq!(headers["content-type"], "video/webm");
    let p = probe(&file);
    assert_eq!(p["streams"][0]["codec_name"], "vp9", "{p}");
    assert_eq!(p["streams"][0]["nb_read_frames"], "12", "{p}");

    // Both are listed, newest first; the jobs list too.
    let list: Value = app
        .get("/api/v1/cameras/gate/timelapses")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[0]["format"], "webm");
    let jobs: Value = app
        .get("/api/v1/jobs?camera=gate&state=done")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(jobs.as_array().unwrap().len(), 2);
    assert_eq!(jobs[0]["timelapse"]["format"], "webm");

    // A finished job cannot be cancelled; a video can be deleted (file, then row).
    let (status, body) = error_of(app.delete(&loc).await).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("conflict")),
        "{body}"
    );
    let video = app.dir.path().join("timelapses").join(
        tl["url"]
            .as_str()
            .unwrap()
            .trim_start_matches("/media/timelapses/"),
    );
    assert!(video.exists());
    let resp = app
        .delete(&format!(
            "/api/v1/timelapses/{}",
            tl["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(resp.status(), 204);
    assert!(!video.exists());
    assert_eq!(app.get(tl["url"].as_str().unwrap()).await.status(), 404);
    let again = app
        .delete(&format!(
            "/api/v1/timelapses/{}",
            tl["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(again.status(), 404);
    app.stop().await;
}

/// ffmpeg processes that are children of this test process and write under `dir`, with their
/// niceness.
fn ffmpeg_children(dir: &Path) -> Vec<(i32, i64)> {
    let me = std::process::id() as i32;
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid … ; fields after the comm's closing parenthesis.
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ppid: i32 = fields[1].parse().unwrap_or(0);
        let nice: i64 = fields[16].parse().unwrap_or(0);
        let state = fields[0];
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        if ppid == me
            && head.ends_with("(ffmpeg")
            && state != "Z"
            && cmdline.contains(&dir.display().to_string())
        {
            out.push((pid, nice));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_mid_way_stops_ffmpeg_and_leaves_no_file() {
    let app = spawn_app_with(fast, BuildOptions::default()).await;
    camera(&app, "yard").await;
    let t0 = (Utc::now() - chrono::Duration::hours(2)).trunc_subsecs(3);
    let times: Vec<_> = (0..400)
        .map(|i| t0 + chrono::Duration::seconds(5 * i))
        .collect();
    keep_frames(&app.state.ops, "yard", &times, |_| (320, 180)).await;
    // Upscaled to 3840 px wide, 400 frames take a while to encode: long enough to cancel.
    let resp = app
        .post_json(
            "/api/v1/cameras/yard/timelapses",
            &json!({"from": rfc(t0), "to": rfc(Utc::now()), "width": 3840}),
        )
        .await;
    assert_eq!(resp.status(), 202);
    let loc = resp.headers()["location"].to_str().unwrap().to_string();
    let dir = app.dir.path().join("timelapses");
    // Running, with progress to show, and its ffmpeg niced.
    let job = wait_for("the job to encode", Duration::from_secs(60), || async {
        let v: Value = app.get(&loc).await.json().await.ok()?;
        assert_ne!(
            v["state"], "done",
            "the job finished before it could be cancelled"
        );
        (v["state"] == "running" && v["frames_done"].as_i64() > Some(0)).then_some(v)
    })
    .await;
    assert_eq!(job["frames_total"], 400);
    assert!(
        job["eta_seconds"].as_f64().is_some_and(|e| e > 0.0),
        "{job}"
    );
    assert!(job["output_bytes"].as_i64().is_some(), "{job}");
    let children = ffmpeg_children(&dir);
    assert_eq!(children.len(), 1, "one ffmpeg encodes: {children:?}");
    assert_eq!(children[0].1, 10, "ffmpeg runs at nice 10");
    let temp_files = || {
        std::fs::read_dir(dir.join("yard"))
            .map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
            .unwrap_or_default()
    };
    assert_eq!(temp_files().len(), 1, "the partial file is being written");

    let resp = app.delete(&loc).await;
    assert_eq!(resp.status(), 200);
    let cancelled: Value = resp.json().await.unwrap();
    assert_eq!(cancelled["state"], "cancelled", "{cancelled}");
    assert_eq!(cancelled["code"], "cancelled");
    assert!(cancelled["finished_at"].is_string());
    assert_eq!(cancelled["timelapse"], Value::Null);
    // When the answer comes, ffmpeg is gone and so is every file.
    assert!(ffmpeg_children(&dir).is_empty(), "ffmpeg still running");
    assert!(temp_files().is_empty(), "left behind: {:?}", temp_files());
    let list: Value = app
        .get("/api/v1/cameras/yard/timelapses")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list, json!([]));
    // It stays cancelled, and cancelling again is a conflict with a sentence.
    let v: Value = app.get(&loc).await.json().await.unwrap();
    assert_eq!(v["state"], "cancelled");
    let (status, body) = error_of(app.delete(&loc).await).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("already cancelled"),
        "{body}"
    );

    // A queued job is cancelled before it starts.
    let mut more = Vec::new();
    for _ in 0..2 {
        let r = app
            .post_json(
                "/api/v1/cameras/yard/timelapses",
                &json!({"from": rfc(t0), "to": rfc(Utc::now()), "width": 3840}),
            )
            .await;
        assert_eq!(r.status(), 202);
        more.push(r.headers()["location"].to_str().unwrap().to_string());
    }
    // With one encoding at a time (the default), the second waits.
    let queued: Value = app.get(&more[1]).await.json().await.unwrap();
    assert_eq!(queued["state"], "queued", "{queued}");
    let r: Value = app.delete(&more[1]).await.json().await.unwrap();
    assert_eq!(r["state"], "cancelled");
    let r: Value = app.delete(&more[0]).await.json().await.unwrap();
    assert_eq!(r["state"], "cancelled");
    assert!(ffmpeg_children(&dir).is_empty());
    assert!(temp_files().is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_exports_get_a_4xx_with_a_sentence_and_no_job() {
    let app = spawn_app_with(
        |c| {
            fast(c);
            c.timelapse_max_frames = 10;
        },
        BuildOptions::default(),
    )
    .await;
    camera(&app, "gate").await;
    let t0 = ts("2026-01-10T10:00:00Z");
    let times: Vec<_> = (0..25).map(|i| t0 + chrono::Duration::minutes(i)).collect();
    keep_frames(&app.state.ops, "gate", &times, |_| (64, 48)).await;
    let post = |body: Value| {
        let app = &app;
        async move {
            error_of(
                app.post_json("/api/v1/cameras/gate/timelapses", &body)
                    .await,
            )
            .await
        }
    };
    let ok = json!({"from": "2026-01-10T10:00:00Z", "to": "2026-01-10T10:05:00Z"});
    let with = |k: &str, v: Value| {
        let mut b = ok.clone();
        b[k] = v;
        b
    };
    // Fields, each named.
    for (body, field) in [
        (with("fps", json!(0)), "fps"),
        (with("fps", json!(61)), "fps"),
        (with("width", json!(15)), "width"),
        (with("width", json!(641)), "width"),
        (with("width", json!(4000)), "width"),
        (with("format", json!("gif")), "format"),
        (with("every_nth", json!(0)), "every_nth"),
        (with("from", json!("yesterday")), "from"),
        (with("to", json!("2026-01-10T09:00:00Z")), "from"),
        (with("speed", json!(2)), "speed"),
        (json!({"to": "2026-01-10T10:05:00Z"}), "from"),
    ] {
        let (status, e) = post(body.clone()).await;
        assert_eq!(status, 422, "{body}: {e}");
        assert_eq!(e["code"], "invalid_field", "{body}: {e}");
        if field != "speed" {
            assert_eq!(e["field"], field, "{body}: {e}");
        }
    }
    // A zero-length range is empty too.
    let (status, e) =
        post(json!({"from": "2026-01-10T10:00:00Z", "to": "2026-01-10T10:00:00Z"})).await;
    assert_eq!(
        (status, e["code"].as_str()),
        (422, Some("no_frames")),
        "{e}"
    );
    assert!(
        e["error"]
            .as_str()
            .unwrap()
            .contains("2026-01-10T10:00:00.000Z"),
        "{e}"
    );
    // An empty range names the range.
    let (status, e) =
        post(json!({"from": "2026-01-11T00:00:00Z", "to": "2026-01-12T00:00:00Z"})).await;
    assert_eq!(
        (status, e["code"].as_str()),
        (422, Some("no_frames")),
        "{e}"
    );
    let msg = e["error"].as_str().unwrap();
    assert!(
        msg.contains("2026-01-11T00:00:00.000Z") && msg.contains("2026-01-12T00:00:00.000Z"),
        "{msg}"
    );
    // Over the frame limit: the count, the limit and an every_nth that fits.
    let (status, e) =
        post(json!({"from": "2026-01-10T10:00:00Z", "to": "2026-01-10T11:00:00Z"})).await;
    assert_eq!(
        (status, e["code"].as_str()),
        (422, Some("too_many_frames")),
        "{e}"
    );
    let msg = e["error"].as_str().unwrap();
    assert!(
        msg.contains("25 frames")
            && msg.contains("limit of 10")
            && msg.contains("every_nth of at least 3"),
        "{msg}"
    );
    // …which then fits.
    let r = app
        .post_json(
            "/api/v1/cameras/gate/timelapses",
            &json!({"from": "2026-01-10T10:00:00Z", "to": "2026-01-10T11:00:00Z", "every_nth": 3}),
        )
        .await;
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    let job: Value = r.json().await.unwrap();
    assert_eq!(job["frames_total"], 9);
    // Unknown camera, malformed and unknown job ids.
    let (status, _) = error_of(app.post_json("/api/v1/cameras/nope/timelapses", &ok).await).await;
    assert_eq!(status, 404);
    let (status, e) = error_of(app.get("/api/v1/jobs/job_nope").await).await;
    assert_eq!((status, e["field"].as_str()), (422, Some("id")));
    let (status, _) = error_of(
        app.get("/api/v1/jobs/job_0123456789abcdef0123456789abcdef")
            .await,
    )
    .await;
    assert_eq!(status, 404);
    let (status, e) = error_of(app.get("/api/v1/jobs?state=sleeping").await).await;
    assert_eq!((status, e["field"].as_str()), (422, Some("state")));
    let (status, _) = error_of(
        app.delete("/api/v1/timelapses/tl_0123456789abcdef0123456789abcdef")
            .await,
    )
    .await;
    assert_eq!(status, 404);
    // A rule's fields, each named.
    for (body, field) in [
        (
            json!({"period": "hourly", "at": "00:30", "time_zone": "UTC"}),
            "period",
        ),
        (
            json!({"period": "daily", "at": "25:00", "time_zone": "UTC"}),
            "at",
        ),
        (
            json!({"period": "daily", "at": "00:30", "time_zone": "Mars/Olympus"}),
            "time_zone",
        ),
        (
            json!({"period": "daily", "at": "00:30", "time_zone": "UTC", "weekday": "mon"}),
            "weekday",
        ),
        (
            json!({"period": "weekly", "at": "00:30", "time_zone": "UTC", "weekday": "someday"}),
            "weekday",
        ),
        (
            json!({"period": "daily", "at": "00:30", "time_zone": "UTC", "fps": 100}),
            "fps",
        ),
    ] {
        let (status, e) = error_of(
            app.post_json("/api/v1/cameras/gate/timelapse-rules", &body)
                .await,
        )
        .await;
        assert_eq!(
            (status, e["field"].as_str()),
            (422, Some(field)),
            "{body}: {e}"
        );
    }
    app.stop().await;

    // Without ffmpeg, an export is refused at once with a code of its own.
    let app = spawn_app_with(
        |c| c.ffmpeg_bin = "/nonexistent/ffmpeg".into(),
        BuildOptions::default(),
    )
    .await;
    camera(&app, "gate").await;
    keep_frames(&app.state.ops, "gate", &times[..2], |_| (64, 48)).await;
    let (status, e) = error_of(app.post_json("/api/v1/cameras/gate/timelapses", &ok).await).await;
    assert_eq!(
        (status, e["code"].as_str()),
        (503, Some("ffmpeg_missing")),
        "{e}"
    );
    assert!(
        e["error"].as_str().unwrap().contains("HELDAR_FFMPEG_BIN"),
        "{e}"
    );
    let jobs: Value = app.get("/api/v1/jobs").await.json().await.unwrap();
    assert_eq!(jobs, json!([]));
    app.stop().await;
}

/// One run of Heldar on `dir` with `clock`.
struct Run {
    app: TestApp,
}

async fn start(dir: &Path, clock: Arc<SimulatedClock>) -> Run {
    start_with(dir, clock, |_| {}).await
}

async fn start_with(
    dir: &Path,
    clock: Arc<SimulatedClock>,
    tweak: impl FnOnce(&mut heldar::config::Config),
) -> Run {
    let mut config = test_config(dir);
    fast(&mut config);
    tweak(&mut config);
    // The clock jumps months: nothing may be pruned by age meanwhile.
    config.retention_age = None;
    config.timelapse_ttl = None;
    let shutdown = CancellationToken::new();
    let opts = BuildOptions {
        clock: Some(clock as Arc<dyn Clock>),
        timelapse_rule_check: Some(Duration::from_millis(100)),
        ..BuildOptions::default()
    };
    let built = Application::build(config, opts, shutdown.clone())
        .await
        .expect("the app builds");
    let base = format!("http://127.0.0.1:{}", built.port());
    let state = built.state().clone();
    let server = tokio::spawn(built.run_until_stopped());
    Run {
        app: TestApp {
            base,
            client: reqwest::Client::new(),
            state,
            shutdown,
            server,
            // The data stays in `dir`; this one is only the harness's.
            dir: tempfile::tempdir().unwrap(),
        },
    }
}

/// The camera's videos, oldest period first, once there are `n`.
async fn videos(app: &TestApp, n: usize) -> Vec<Value> {
    let mut v = wait_for(&format!("{n} videos"), Duration::from_secs(120), || async {
        let list: Value = app
            .get("/api/v1/cameras/yard/timelapses")
            .await
            .json()
            .await
            .ok()?;
        let list = list.as_array()?.clone();
        assert!(list.len() <= n, "more videos than days: {list:#?}");
        (list.len() == n).then_some(list)
    })
    .await;
    v.sort_by_key(|t| t["from"].as_str().unwrap().to_string());
    v
}

fn hourly(from: &str, to: &str) -> Vec<DateTime<Utc>> {
    let (mut t, end) = (ts(from), ts(to));
    let mut out = Vec::new();
    while t <= end {
        out.push(t);
        t += chrono::Duration::hours(1);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daily_rule_makes_one_video_per_local_day_across_restarts_and_dst_changes() {
    let dir = tempfile::tempdir().unwrap();
    // 00:10 on Saturday 28 March 2026 in Berlin (CET); DST starts the next night.
    let clock = Arc::new(SimulatedClock::new(ts("2026-03-27T23:10:00Z")));
    let run = start(dir.path(), clock.clone()).await;
    camera(&run.app, "yard").await;
    // A frame every hour at half past, through both DST weeks.
    let mut times = hourly("2026-03-26T23:30:00Z", "2026-03-30T22:30:00Z");
    times.extend(hourly("2026-10-23T22:30:00Z", "2026-10-26T22:30:00Z"));
    keep_frames(&run.app.state.ops, "yard", &times, |_| (64, 48)).await;
    let rule: Value = {
        let r = run
            .app
            .post_json(
                "/api/v1/cameras/yard/timelapse-rules",
                &json!({"period": "daily", "at": "00:30", "time_zone": "Europe/Berlin", "fps": 24}),
            )
            .await;
        assert_eq!(r.status(), 201);
        r.json().await.unwrap()
    };
    assert_eq!(rule["next_run_at"], "2026-03-27T23:30:00Z");
    assert_eq!(rule["covered_until"], "2026-03-26T23:00:00Z");
    assert_eq!(rule["weekday"], Value::Null);

    // 00:30 comes: Friday 27 March's video.
    clock.jump(chrono::Duration::minutes(30));
    let v = videos(&run.app, 1).await;
    assert_eq!(
        (v[0]["from"].as_str(), v[0]["to"].as_str()),
        (Some("2026-03-26T23:00:00Z"), Some("2026-03-27T23:00:00Z"))
    );
    assert_eq!(v[0]["frames"], 24);
    assert_eq!(v[0]["rule_id"], rule["id"]);

    // Down for two days (a clean stop); on start the two missed days are made, once each: the
    // Saturday and the 23-hour Sunday.
    run.app.stop().await;
    clock.jump(chrono::Duration::days(2));
    let run = start(dir.path(), clock.clone()).await;
    let v = videos(&run.app, 3).await;
    let periods: Vec<(String, String, i64)> = v
        .iter()
        .map(|t| {
            (
                t["from"].as_str().unwrap().into(),
                t["to"].as_str().unwrap().into(),
                t["frames"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        periods[1..],
        [
            (
                "2026-03-27T23:00:00Z".into(),
                "2026-03-28T23:00:00Z".into(),
                24
            ),
            (
                "2026-03-28T23:00:00Z".into(),
                "2026-03-29T22:00:00Z".into(),
                23
            ),
        ]
    );
    // The 23-hour day's video, as ffprobe sees it.
    let (file, _) = download(
        &run.app,
        v[2]["url"].as_str().unwrap(),
        dir.path(),
        "sunday.mp4",
    )
    .await;
    assert_eq!(probe(&file)["streams"][0]["nb_read_frames"], "23");

    // A restart with nothing due makes nothing; the next day makes one more.
    run.app.stop().await;
    let run = start(dir.path(), clock.clone()).await;
    clock.jump(chrono::Duration::days(1));
    let v = videos(&run.app, 4).await;
    assert_eq!(v[3]["from"], "2026-03-29T22:00:00Z");
    assert_eq!(v[3]["frames"], 24);

    // October, while running: the last seven missed days are due; only two hold frames. Then
    // the 25-hour day of the return to CET.
    let target = ts("2026-10-25T23:40:00Z"); // 00:40 on Monday 26 October, CET
    clock.jump(target - clock.now());
    let v = videos(&run.app, 6).await;
    assert_eq!(
        (
            v[4]["from"].as_str(),
            v[4]["to"].as_str(),
            v[4]["frames"].as_i64()
        ),
        (
            Some("2026-10-23T22:00:00Z"),
            Some("2026-10-24T22:00:00Z"),
            Some(24)
        )
    );
    assert_eq!(
        (
            v[5]["from"].as_str(),
            v[5]["to"].as_str(),
            v[5]["frames"].as_i64()
        ),
        (
            Some("2026-10-24T22:00:00Z"),
            Some("2026-10-25T23:00:00Z"),
            Some(25)
        )
    );
    let (file, _) = download(
        &run.app,
        v[5]["url"].as_str().unwrap(),
        dir.path(),
        "long.mp4",
    )
    .await;
    assert_eq!(probe(&file)["streams"][0]["nb_read_frames"], "25");
    clock.jump(chrono::Duration::days(1));
    let v = videos(&run.app, 7).await;
    assert_eq!(
        (
            v[6]["from"].as_str(),
            v[6]["to"].as_str(),
            v[6]["frames"].as_i64()
        ),
        (
            Some("2026-10-25T23:00:00Z"),
            Some("2026-10-26T23:00:00Z"),
            Some(24)
        )
    );
    // Exactly one video per day, each of a rule's run.
    let mut froms: Vec<&str> = v.iter().map(|t| t["from"].as_str().unwrap()).collect();
    froms.dedup();
    assert_eq!(froms.len(), 7);
    let rules: Value = run
        .app
        .get("/api/v1/cameras/yard/timelapse-rules")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rules[0]["covered_until"], "2026-10-26T23:00:00Z");
    assert_eq!(rules[0]["next_run_at"], "2026-10-27T23:30:00Z");
    // Every job of the rule is done: none failed, none left queued.
    let jobs: Value = run
        .app
        .get("/api/v1/jobs?camera=yard")
        .await
        .json()
        .await
        .unwrap();
    assert!(
        jobs.as_array()
            .unwrap()
            .iter()
            .all(|j| j["state"] == "done"),
        "{jobs:#}"
    );
    assert_eq!(jobs.as_array().unwrap().len(), 7);
    run.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn videos_are_pruned_by_their_ttl_and_after_the_frames_under_the_disk_floor() {
    use heldar::services::retention::{Retention, Videos};
    let app = spawn_app_with(fast, BuildOptions::default()).await;
    camera(&app, "gate").await;
    let t0 = (Utc::now() - chrono::Duration::hours(1)).trunc_subsecs(3);
    let times: Vec<_> = (0..6).map(|i| t0 + chrono::Duration::seconds(i)).collect();
    keep_frames(&app.state.ops, "gate", &times, |_| (64, 48)).await;
    let r = app
        .post_json(
            "/api/v1/cameras/gate/timelapses",
            &json!({"from": rfc(t0), "to": rfc(Utc::now())}),
        )
        .await;
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    let job = finished(&app, &loc).await;
    let video = app.dir.path().join("timelapses").join(
        job["timelapse"]["url"]
            .as_str()
            .unwrap()
            .trim_start_matches("/media/timelapses/"),
    );
    assert!(video.exists());
    let ops = &app.state.ops;
    let retention = |ttl: Option<Duration>,
                     clock: Arc<dyn Clock>,
                     min_free: u64,
                     free: heldar::services::retention::FreeSpace| Retention {
        db: ops.db.clone(),
        store: ops.store.clone(),
        clock,
        metrics: ops.metrics.clone(),
        max_age: None,
        max_bytes: None,
        min_free_bytes: min_free,
        free_space: free,
        videos: Some(Videos {
            store: ops.videos.clone(),
            ttl,
        }),
    };
    let plenty: heldar::services::retention::FreeSpace = Arc::new(|| Ok(u64::MAX / 2));
    let in_a_day: Arc<dyn Clock> = Arc::new(SimulatedClock::new(
        Utc::now() + chrono::Duration::hours(24),
    ));
    // Younger than its TTL, or kept forever: kept.
    let r = retention(
        Some(Duration::from_secs(48 * 3600)),
        in_a_day.clone(),
        0,
        plenty.clone(),
    )
    .sweep()
    .await
    .unwrap();
    assert_eq!(r.videos_age, 0);
    let r = retention(None, in_a_day.clone(), 0, plenty.clone())
        .sweep()
        .await
        .unwrap();
    assert_eq!(r.videos_age, 0);
    assert!(video.exists());

    // Under the disk floor, frames go first: while one frame is left the video is kept…
    let frames_dir = app.dir.path().join("snapshots/gate");
    let f = frames_dir.clone();
    let free_while_frames: heldar::services::retention::FreeSpace = Arc::new(move || {
        let left = std::fs::read_dir(&f).map(|d| d.count()).unwrap_or(0);
        Ok(if left > 0 { 0 } else { u64::MAX / 2 })
    });
    let now: Arc<dyn Clock> = Arc::new(heldar::clock::SystemClock);
    let r = retention(None, now.clone(), 1_000_000, free_while_frames)
        .sweep()
        .await
        .unwrap();
    assert_eq!((r.free_disk, r.videos_free_disk), (6, 0), "{r:?}");
    assert!(video.exists());
    // …and with no frame left, the oldest videos go.
    let v = video.clone();
    let free_while_video: heldar::services::retention::FreeSpace =
        Arc::new(move || Ok(if v.exists() { 0 } else { u64::MAX / 2 }));
    let r = retention(None, now, 1_000_000, free_while_video)
        .sweep()
        .await
        .unwrap();
    assert_eq!(r.videos_free_disk, 1, "{r:?}");
    assert!(!video.exists());
    let list: Value = app
        .get("/api/v1/cameras/gate/timelapses")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list, json!([]));

    // Past its TTL, a video goes with its file.
    keep_frames(&app.state.ops, "gate", &times, |_| (64, 48)).await;
    let r = app
        .post_json(
            "/api/v1/cameras/gate/timelapses",
            &json!({"from": rfc(t0), "to": rfc(Utc::now())}),
        )
        .await;
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    let job = finished(&app, &loc).await;
    assert_eq!(job["state"], "done");
    let r = retention(Some(Duration::from_secs(3600)), in_a_day, 0, plenty)
        .sweep()
        .await
        .unwrap();
    assert_eq!(r.videos_age, 1, "{r:?}");
    let list: Value = app
        .get("/api/v1/cameras/gate/timelapses")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list, json!([]));
    // Deleting the camera removes its timelapse folder.
    assert_eq!(app.delete("/api/v1/cameras/gate").await.status(), 204);
    assert!(!app.dir.path().join("timelapses/gate").exists());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_never_touches_videos_even_where_the_folders_overlap() {
    // The worst case: frames straight in the data dir, so `timelapses/` sits among the camera
    // folders, and a camera named `timelapses` whose frame folder is the videos' folder.
    let app = spawn_app_with(
        |c| {
            fast(c);
            c.snapshots_dir = c.data_dir.clone();
        },
        BuildOptions::default(),
    )
    .await;
    camera(&app, "gate").await;
    camera(&app, "timelapses").await;
    let t0 = (Utc::now() - chrono::Duration::hours(1)).trunc_subsecs(3);
    let times: Vec<_> = (0..5).map(|i| t0 + chrono::Duration::seconds(i)).collect();
    keep_frames(&app.state.ops, "gate", &times, |_| (64, 48)).await;
    keep_frames(&app.state.ops, "timelapses", &times, |_| (64, 48)).await;
    let r = app
        .post_json(
            "/api/v1/cameras/gate/timelapses",
            &json!({"from": rfc(t0), "to": rfc(Utc::now())}),
        )
        .await;
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    let job = finished(&app, &loc).await;
    let url = job["timelapse"]["url"].as_str().unwrap().to_string();
    let video = app
        .dir
        .path()
        .join("timelapses")
        .join(url.trim_start_matches("/media/timelapses/"));
    assert!(video.exists());

    let ops = &app.state.ops;
    let parts = heldar::ops::reconcile::Parts {
        store: &ops.store,
        pool: &ops.db,
        writer: &ops.writer,
        clock: ops.clock.as_ref(),
    };
    let long_ago = ts("2000-01-01T00:00:00Z");
    heldar::ops::reconcile::crash_window(parts, long_ago)
        .await
        .unwrap();
    heldar::ops::reconcile::full_pass(parts, Utc::now(), &CancellationToken::new())
        .await
        .unwrap()
        .expect("the pass ran to its end");
    assert!(video.exists(), "reconciliation removed a video");
    assert_eq!(app.get(&url).await.status(), 200);
    // Deleting the camera named `timelapses` removes its frames, never the videos beside them.
    assert_eq!(app.delete("/api/v1/cameras/timelapses").await.status(), 204);
    assert!(
        video.exists(),
        "deleting a camera removed another camera's video"
    );
    assert_eq!(app.get(&url).await.status(), 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_running_when_heldar_stops_are_interrupted_at_the_next_start_and_a_rules_is_queued_again(
) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_path_buf();
    let clock = Arc::new(SimulatedClock::new(ts("2026-03-10T00:20:00Z")));
    let two = |c: &mut heldar::config::Config| c.timelapse_concurrency = 2;
    let run = start_with(&data, clock.clone(), two).await;
    camera(&run.app, "yard").await;
    // 400 small frames on 9 March; upscaled to 3840 px, they take a while to encode.
    let t0 = ts("2026-03-09T00:00:00Z");
    let times: Vec<_> = (0..400)
        .map(|i| t0 + chrono::Duration::minutes(3 * i))
        .collect();
    keep_frames(&run.app.state.ops, "yard", &times, |_| (320, 180)).await;
    let r = run
        .app
        .post_json(
            "/api/v1/cameras/yard/timelapses",
            &json!({"from": "2026-03-09T00:00:00Z", "to": "2026-03-10T00:00:00Z", "width": 3840}),
        )
        .await;
    assert_eq!(r.status(), 202);
    let export: Value = r.json().await.unwrap();
    let r = run
        .app
        .post_json(
            "/api/v1/cameras/yard/timelapse-rules",
            &json!({"period": "daily", "at": "00:30", "time_zone": "UTC", "width": 3840}),
        )
        .await;
    assert_eq!(r.status(), 201);
    clock.jump(chrono::Duration::minutes(15));
    // Both encode at once.
    let jobs = wait_for("two jobs encoding", Duration::from_secs(60), || async {
        let v: Value = run
            .app
            .get("/api/v1/jobs?camera=yard&state=running")
            .await
            .json()
            .await
            .ok()?;
        let v = v.as_array()?.clone();
        (v.len() == 2 && v.iter().all(|j| j["frames_done"].as_i64() > Some(0))).then_some(v)
    })
    .await;
    let rule_job = jobs.iter().find(|j| j["id"] != export["id"]).unwrap()["id"].clone();
    assert_eq!(ffmpeg_children(&data).len(), 2);
    run.app.stop().await;
    // The stop ended both ffmpeg processes; the jobs stay `running` in the database until the
    // next start. A crash would also have left a partial file:
    assert!(ffmpeg_children(&data).is_empty());
    let left = data.join(format!(
        "timelapses/yard/.tmp-{}.mp4",
        export["id"].as_str().unwrap()
    ));
    std::fs::write(&left, b"partial").unwrap();

    let run = start_with(&data, clock.clone(), |_| {}).await;
    let get = |id: &Value| {
        let app = &run.app;
        let path = format!("/api/v1/jobs/{}", id.as_str().unwrap());
        async move { app.get(&path).await.json::<Value>().await.unwrap() }
    };
    let interrupted = wait_for(
        "the export to be marked interrupted",
        Duration::from_secs(30),
        || async {
            let v = get(&export["id"]).await;
            (v["state"] == "failed").then_some(v)
        },
    )
    .await;
    assert_eq!(interrupted["code"], "interrupted", "{interrupted}");
    assert!(
        interrupted["error"]
            .as_str()
            .unwrap()
            .contains("Heldar stopped"),
        "{interrupted}"
    );
    let rule_old = get(&rule_job).await;
    assert_eq!(
        (rule_old["state"].as_str(), rule_old["code"].as_str()),
        (Some("failed"), Some("interrupted"))
    );
    assert!(!left.exists(), "the partial file was not removed");
    // The rule's day is owed its video: the same period is queued again, once.
    let all: Value = run
        .app
        .get("/api/v1/jobs?camera=yard")
        .await
        .json()
        .await
        .unwrap();
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 3, "{all:#?}");
    let again = &all[0];
    assert!(
        matches!(again["state"].as_str(), Some("queued" | "running")),
        "{again}"
    );
    assert_eq!(again["frames_total"], 400);
    // (Cancelled here rather than waited for: a 4K encode of 400 frames takes a while.)
    let r: Value = run
        .app
        .delete(&format!("/api/v1/jobs/{}", again["id"].as_str().unwrap()))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["state"], "cancelled");
    assert!(ffmpeg_children(&data).is_empty());
    let files: Vec<_> = std::fs::read_dir(data.join("timelapses/yard"))
        .unwrap()
        .flatten()
        .collect();
    assert!(files.is_empty(), "{files:?}");
    run.app.stop().await;
}
