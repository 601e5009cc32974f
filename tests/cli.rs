//! The client commands end to end: the real `heldar` binary against a real server on a real
//! port, with fake cameras speaking HTTP over loopback. Every command, its human output and its
//! `--json` (parsed), the exit codes (0, 2–8, 130), an unreachable server, wrong tokens, the
//! event stream, timelapse exports (a real ffmpeg; ffprobe counts the frames) and their jobs,
//! shell completions, and that no password ever reaches an output.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use common::{heldar_cmd, spawn_app, spawn_app_with, TestApp};
use heldar::app::BuildOptions;
use heldar::capture::jpeg;
use heldar::fakecam::{pattern, Behavior, FakeAuth, FakeCamera, FrameSupply};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

/// What one run of the CLI did.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: Vec<u8>,
    out: String,
    err: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.out)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {:?} / {}", self.out, self.err))
    }

    /// Exit `code`, with one line on stderr: `heldar: ` and a sentence.
    fn failed(&self, code: i32) -> &str {
        assert_eq!(self.code, code, "{self:?}");
        let lines: Vec<&str> = self.err.lines().collect();
        assert_eq!(lines.len(), 1, "one line on stderr: {self:?}");
        assert!(
            lines[0].starts_with("heldar: ") && lines[0].len() > 20,
            "{self:?}"
        );
        lines[0]
    }

    fn ok(&self) -> &Self {
        assert_eq!(self.code, 0, "{self:?}");
        self
    }
}

/// The CLI, pointed at one server.
struct Cli {
    dir: tempfile::TempDir,
    url: String,
    env: Vec<(String, String)>,
}

impl Cli {
    fn new(app: &TestApp) -> Cli {
        Cli::at(&app.base)
    }

    fn at(url: &str) -> Cli {
        Cli {
            dir: tempfile::tempdir().unwrap(),
            url: url.to_string(),
            env: Vec::new(),
        }
    }

    fn with_env(mut self, k: &str, v: &str) -> Cli {
        self.env.push((k.into(), v.into()));
        self
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = heldar_cmd(self.dir.path());
        // The server's address by environment, as a script sets it.
        cmd.env("HELDAR_URL", &self.url).args(args);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut cmd = tokio::process::Command::from(cmd);
        cmd.kill_on_drop(true);
        cmd
    }

    async fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, None).await
    }

    async fn run_with(&self, args: &[&str], stdin: Option<&[u8]>) -> Run {
        let mut cmd = self.command(args);
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start heldar");
        if let Some(input) = stdin {
            use tokio::io::AsyncWriteExt;
            let mut pipe = child.stdin.take().unwrap();
            pipe.write_all(input).await.unwrap();
            drop(pipe);
        }
        let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("heldar {args:?} did not finish within 60 s"))
            .unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            out: String::from_utf8_lossy(&out.stdout).into_owned(),
            err: String::from_utf8_lossy(&out.stderr).into_owned(),
            stdout: out.stdout,
        }
    }
}

async fn fake_camera(auth: FakeAuth) -> FakeCamera {
    FakeCamera::start(
        auth,
        FrameSupply::Static(Bytes::from(pattern::solid_jpeg(64, 48, [9, 99, 199]))),
    )
    .await
    .unwrap()
}

async fn add_camera(app: &TestApp, id: &str, url: &str) {
    app.create_camera(json!({"id": id, "snapshot_url": url}))
        .await;
}

/// A loopback port with nothing listening on it.
fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn jpeg_size(bytes: &[u8]) -> (u16, u16) {
    jpeg::validate(bytes).expect("a valid JPEG")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn camera_add_list_show_edit_test_and_rm_with_the_password_kept_off_every_output() {
    let app = spawn_app().await;
    let secret = "Tr0ub4dor&3-cli";
    let cam = fake_camera(FakeAuth::Basic {
        user: "admin".into(),
        pass: secret.into(),
    })
    .await;
    let cli = Cli::new(&app);
    let mut seen = String::new();
    let mut keep = |r: &Run| seen.push_str(&format!("{}{}", r.out, r.err));

    // Add, the password on stdin, tested at once: the capture proves it arrived intact.
    let r = cli
        .run_with(
            &[
                "camera",
                "add",
                "gate",
                "--name",
                "Gate",
                "--snapshot-url",
                &cam.snapshot_url(),
                "--username",
                "admin",
                "--password-stdin",
                "--test",
            ],
            Some(format!("{secret}\n").as_bytes()),
        )
        .await;
    keep(&r);
    r.ok();
    assert!(r.out.contains("added camera gate"), "{r:?}");
    assert!(r.out.contains("camera gate: ok, a 64×48 JPEG"), "{r:?}");

    // The same id again is a conflict (7), with the API's sentence.
    let r = cli
        .run(&[
            "camera",
            "add",
            "gate",
            "--snapshot-url",
            &cam.snapshot_url(),
        ])
        .await;
    keep(&r);
    assert!(r.failed(7).contains("gate"), "{r:?}");
    // An id that is no slug is invalid input (7).
    let r = cli.run(&["camera", "add", "Bad Id"]).await;
    assert!(r.failed(7).contains("slug"), "{r:?}");

    let r = cli.run(&["camera", "list"]).await;
    keep(&r);
    r.ok();
    let header = r.out.lines().next().unwrap();
    assert!(
        header.starts_with("ID") && header.contains("STATE"),
        "{r:?}"
    );
    let row = r
        .out
        .lines()
        .find(|l| l.starts_with("gate"))
        .expect("a row");
    assert!(row.contains("online"), "{row}");
    // `--test` took a live frame and kept none: the last frame is "never", though the camera
    // answered (its last capture).
    assert!(row.contains("never"), "{row}");
    let r = cli.run(&["camera", "list", "--json"]).await;
    keep(&r);
    let list = r.ok().json();
    assert_eq!(list[0]["id"], "gate");
    assert_eq!(list[0]["has_password"], true);

    let r = cli.run(&["camera", "show", "gate"]).await;
    keep(&r);
    assert!(r.ok().out.contains("set (never shown)"), "{r:?}");
    assert!(r.out.contains(&cam.snapshot_url()), "{r:?}");
    let field = |name: &str| {
        r.out
            .lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("no {name} line: {r:?}"))
            .to_string()
    };
    assert!(field("last frame").ends_with("never"), "{r:?}");
    assert!(field("last capture").contains("s ago"), "{r:?}");
    let r = cli.run(&["camera", "show", "gate", "--json"]).await;
    keep(&r);
    assert_eq!(r.ok().json()["name"], "Gate");

    let r = cli
        .run(&["camera", "edit", "gate", "--name", "Gate A", "--json"])
        .await;
    keep(&r);
    assert_eq!(r.ok().json()["name"], "Gate A");
    let r = cli.run(&["camera", "edit", "gate"]).await;
    assert!(r.failed(2).contains("nothing to change"), "{r:?}");

    let r = cli.run(&["camera", "test", "gate", "--json"]).await;
    keep(&r);
    let t = r.ok().json();
    assert_eq!(
        (t["ok"].clone(), t["width"].clone()),
        (json!(true), json!(64))
    );
    assert!(t["size_bytes"].as_u64().unwrap() > 100);

    // Without its password the camera refuses: the test fails with the camera's error (5).
    let r = cli
        .run(&["camera", "edit", "gate", "--clear", "password"])
        .await;
    keep(&r);
    r.ok();
    let r = cli.run(&["camera", "test", "gate"]).await;
    keep(&r);
    assert!(r.failed(5).contains("test capture failed"), "{r:?}");
    let r = cli.run(&["camera", "test", "gate", "--json"]).await;
    keep(&r);
    assert_eq!(r.code, 5);
    assert_eq!(r.json()["code"], "auth_failed");

    // The password typed after `=` works too (and is, as documented, visible in `ps`).
    let r = cli
        .run(&[
            "camera",
            "edit",
            "gate",
            &format!("--password={secret}"),
            "--test",
        ])
        .await;
    keep(&r);
    assert!(r.ok().out.contains("ok, a 64×48 JPEG"), "{r:?}");

    // `--password` alone asks on the terminal; with none, it says how else to give it.
    let r = {
        let mut cmd = cli.command(&["camera", "edit", "gate", "--password"]);
        // SAFETY: setsid is async-signal-safe; the child drops its controlling terminal.
        unsafe {
            cmd.pre_exec(|| {
                nix::unistd::setsid().map_err(std::io::Error::from)?;
                Ok(())
            });
        }
        let out = cmd.stdin(Stdio::null()).output().await.unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            out: String::from_utf8_lossy(&out.stdout).into_owned(),
            err: String::from_utf8_lossy(&out.stderr).into_owned(),
            stdout: out.stdout,
        }
    };
    assert!(r.failed(2).contains("--password-stdin"), "{r:?}");

    // rm asks first; where nobody can answer it needs --yes.
    let r = cli.run(&["camera", "rm", "gate"]).await;
    assert!(r.failed(2).contains("--yes"), "{r:?}");
    cli.run(&["camera", "show", "gate"]).await.ok();
    let r = cli.run(&["camera", "rm", "gate", "--yes"]).await;
    assert!(r.ok().out.contains("removed camera gate"), "{r:?}");
    let r = cli.run(&["camera", "show", "gate"]).await;
    assert_eq!(r.failed(3), "heldar: no camera with id \"gate\"");
    let r = cli.run(&["camera", "rm", "gate", "--yes", "--json"]).await;
    r.failed(3);

    assert!(
        !seen.contains(secret),
        "the camera password reached an output"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snap_saves_live_frames_and_frames_lists_and_downloads_the_stored_ones() {
    let app = spawn_app().await;
    let cam = fake_camera(FakeAuth::None).await;
    add_camera(&app, "yard", &cam.snapshot_url()).await;
    let cli = Cli::new(&app);

    // Default name: CAMERA-YYYYmmdd-HHMMSS.jpg in the current folder.
    let r = cli.run(&["snap", "yard"]).await;
    assert!(r.ok().out.starts_with("saved yard-"), "{r:?}");
    let saved: Vec<_> = std::fs::read_dir(cli.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("yard-") && n.ends_with(".jpg"))
        .collect();
    assert_eq!(saved.len(), 1, "{saved:?}");
    assert_eq!(
        jpeg_size(&std::fs::read(cli.path(&saved[0])).unwrap()),
        (64, 48)
    );

    // -o -: the JPEG on stdout, the words on stderr.
    let r = cli.run(&["snap", "yard", "-o", "-"]).await;
    assert_eq!(jpeg_size(&r.ok().stdout), (64, 48));
    assert!(r.err.contains("saved stdout"), "{r:?}");
    let r = cli.run(&["snap", "yard", "-o", "-", "--json"]).await;
    r.failed(2);

    // --store keeps it; --json says where.
    let r = cli
        .run(&["snap", "yard", "-o", "kept.jpg", "--store", "--json"])
        .await;
    let snap = r.ok().json();
    let id = snap["snapshot_id"].as_str().expect("an id").to_string();
    assert!(id.starts_with("snp_"), "{snap}");
    assert_eq!(
        (snap["width"].clone(), snap["file"].clone()),
        (json!(64), json!("kept.jpg"))
    );
    let kept = std::fs::read(cli.path("kept.jpg")).unwrap();

    // The list, as a table and as the API's JSON.
    let r = cli.run(&["frames", "yard"]).await;
    let row = r
        .ok()
        .out
        .lines()
        .find(|l| l.starts_with(&id))
        .expect("the frame's row");
    assert!(row.contains("64×48") && row.contains("manual"), "{row}");
    let r = cli.run(&["frames", "yard", "--json"]).await;
    let list = r.ok().json();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], id.as_str());
    // Friendly times: today…now holds it; a day in 2000 does not; -1h ago is before it.
    let r = cli
        .run(&[
            "frames", "list", "yard", "--from", "today", "--to", "now", "--json",
        ])
        .await;
    assert_eq!(r.ok().json()[0]["id"], id.as_str());
    let r = cli
        .run(&[
            "frames",
            "yard",
            "--from",
            "2000-01-01 00:00",
            "--to",
            "2000-01-02",
            "--json",
        ])
        .await;
    assert_eq!(r.ok().json(), json!([]));
    let r = cli
        .run(&["frames", "yard", "--from", "-2h", "--limit", "1"])
        .await;
    assert!(r.ok().out.contains(&id));
    assert!(r.err.contains("newest 1 frames only"), "{r:?}");
    let r = cli
        .run(&["frames", "yard", "--from", "the other day"])
        .await;
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.err.contains("RFC 3339") && r.err.contains("-2h"), "{r:?}");

    // Get: by id, the newest, and at a time; each the same bytes as kept.
    let r = cli
        .run(&["frames", "get", "yard", &id, "-o", "by-id.jpg"])
        .await;
    assert!(r.ok().out.contains("saved by-id.jpg"), "{r:?}");
    assert_eq!(std::fs::read(cli.path("by-id.jpg")).unwrap(), kept);
    let r = cli
        .run(&[
            "frames",
            "get",
            "yard",
            "--latest",
            "-o",
            "latest.jpg",
            "--json",
        ])
        .await;
    assert_eq!(r.ok().json()["id"], id.as_str());
    assert_eq!(std::fs::read(cli.path("latest.jpg")).unwrap(), kept);
    let r = cli
        .run(&["frames", "get", "yard", "--at", "now", "-o", "-"])
        .await;
    assert_eq!(r.ok().stdout, kept);
    let file = list[0]["url"].as_str().unwrap().rsplit('/').next().unwrap();
    let r = cli.run(&["frames", "get", "yard", file]).await;
    r.ok();
    assert!(
        r.out.starts_with("saved yard-"),
        "named by the time taken: {r:?}"
    );

    // Not found (3): nothing before an hour ago, an unknown id or file, an unknown camera.
    let r = cli.run(&["frames", "get", "yard", "--at", "-1h"]).await;
    assert!(r.failed(3).contains("no stored frames"), "{r:?}");
    let r = cli
        .run(&[
            "frames",
            "get",
            "yard",
            "snp_00000000000000000000000000000000",
        ])
        .await;
    r.failed(3);
    let r = cli
        .run(&["frames", "get", "yard", "20000101T000000000Z.jpg"])
        .await;
    r.failed(3);
    let r = cli.run(&["frames", "nowhere"]).await;
    assert!(r.failed(3).contains("nowhere"), "{r:?}");
    let r = cli.run(&["snap", "nowhere"]).await;
    r.failed(3);
    let r = cli.run(&["frames", "get", "yard"]).await;
    assert_eq!(r.code, 2, "one of ID, --latest, --at is needed: {r:?}");

    // --tag keeps it with a tag, and `frames --tag` lists only those.
    let r = cli
        .run(&[
            "snap",
            "yard",
            "-o",
            "tagged.jpg",
            "--store",
            "--tag",
            "doorbell",
            "--json",
        ])
        .await;
    let tagged = r.ok().json()["snapshot_id"].as_str().unwrap().to_string();
    let r = cli.run(&["frames", "yard", "--tag", "doorbell"]).await;
    let out = r.ok().out.clone();
    assert!(out.contains(&tagged) && out.contains("doorbell"), "{out}");
    assert!(!out.contains(&id), "untagged frames are not listed: {out}");
    cli.run(&["snap", "yard", "--tag", "doorbell"])
        .await
        .failed(2);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_camera_exits_5_and_leaves_no_file() {
    let app = spawn_app().await;
    add_camera(
        &app,
        "dead",
        &format!("http://127.0.0.1:{}/snapshot.jpg", dead_port()),
    )
    .await;
    let hanging = fake_camera(FakeAuth::None).await;
    hanging.set_behavior(Behavior::Hang);
    add_camera(&app, "slow", &hanging.snapshot_url()).await;
    let cli = Cli::new(&app);

    let r = cli.run(&["snap", "dead", "-o", "dead.jpg"]).await;
    assert!(r.failed(5).contains("dead"), "{r:?}");
    assert!(!cli.path("dead.jpg").exists());
    assert_eq!(
        std::fs::read_dir(cli.dir.path()).unwrap().count(),
        0,
        "no partial or temporary file either"
    );
    let r = cli.run(&["camera", "test", "dead"]).await;
    r.failed(5);
    // A camera that never answers: the server's capture deadline (504), still the camera's fault.
    let r = cli.run(&["snap", "slow", "--store"]).await;
    r.failed(5);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_are_added_listed_changed_and_removed() {
    let app = spawn_app().await;
    let cam = fake_camera(FakeAuth::None).await;
    add_camera(&app, "north", &cam.snapshot_url()).await;
    add_camera(&app, "south", &cam.snapshot_url()).await;
    let cli = Cli::new(&app);

    let r = cli
        .run(&["schedule", "add", "north", "--every", "1m", "--json"])
        .await;
    let a = r.ok().json();
    assert_eq!(
        (a["interval_seconds"].clone(), a["enabled"].clone()),
        (json!(60), json!(true))
    );
    let a = a["id"].as_str().unwrap().to_string();
    let r = cli
        .run(&["schedule", "add", "north", "--every", "1h30m", "--disabled"])
        .await;
    assert!(r.ok().out.contains("north every 1h30m, paused"), "{r:?}");
    let r = cli.run(&["schedule", "add", "south"]).await;
    assert!(
        r.ok().out.contains("south every 5m"),
        "the server's default: {r:?}"
    );

    let r = cli.run(&["schedule", "list", "north"]).await;
    assert_eq!(
        r.ok().out.lines().count(),
        3,
        "a header and two rows: {r:?}"
    );
    assert!(r.out.contains(&a), "{r:?}");
    let r = cli.run(&["schedule", "list", "north", "--json"]).await;
    assert_eq!(r.ok().json().as_array().unwrap().len(), 2);
    // Every camera's, whether or not the server has a list-all route.
    let r = cli.run(&["schedule", "list", "--json"]).await;
    let all = r.ok().json();
    let mut cams: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["camera_id"].as_str().unwrap())
        .collect();
    cams.sort();
    assert_eq!(cams, ["north", "north", "south"]);
    let r = cli.run(&["schedule", "ls"]).await;
    assert_eq!(r.ok().out.lines().count(), 4, "{r:?}");

    let r = cli
        .run(&["schedule", "set", &a, "--disable", "--json"])
        .await;
    assert_eq!(r.ok().json()["enabled"], false);
    let r = cli
        .run(&["schedule", "set", &a, "--enable", "--every", "2s"])
        .await;
    r.ok();
    assert!(r.out.contains("every 5s"), "{r:?}");
    assert!(
        r.err.contains("between 5s and 1d"),
        "the clamp is said: {r:?}"
    );
    let r = cli.run(&["schedule", "set", &a]).await;
    assert_eq!(r.code, 2, "nothing to set: {r:?}");
    let r = cli
        .run(&["schedule", "add", "north", "--every", "soon"])
        .await;
    assert_eq!(r.code, 2, "{r:?}");
    let r = cli.run(&["schedule", "set", "not-an-id", "--enable"]).await;
    assert!(r.failed(7).contains("sch_"), "{r:?}");

    let r = cli.run(&["schedule", "rm", &a, "--json"]).await;
    assert!(r.ok().out.is_empty(), "{r:?}");
    let r = cli.run(&["schedule", "rm", &a]).await;
    r.failed(3);
    let r = cli.run(&["schedule", "list", "north", "--json"]).await;
    assert_eq!(r.ok().json().as_array().unwrap().len(), 1);
    app.stop().await;
}

/// The calendar flags (issue 17): aligned, fixed times, weekdays, a window, daylight; the words
/// form in `add`, `list` and `show`; `preview`; `edit` changing the kind of a schedule in one
/// command; the server's 422 sentence for a bad time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calendar_schedules_are_added_shown_previewed_and_edited() {
    let app = spawn_app().await;
    add_camera(
        &app,
        "north",
        &format!("http://127.0.0.1:{}/x.jpg", dead_port()),
    )
    .await;
    let cli = Cli::new(&app);

    let r = cli
        .run(&[
            "schedule",
            "add",
            "north",
            "--every",
            "5m",
            "--align",
            "--tz",
            "Europe/Berlin",
            "--weekdays",
            "mon,tue,wed,thu,fri",
            "--from",
            "07:00",
            "--to",
            "19:00",
            "--json",
        ])
        .await;
    let a = r.ok().json();
    assert_eq!(
        (
            a["interval_seconds"].clone(),
            a["align"].clone(),
            a["timezone"].clone(),
            a["weekdays"].clone(),
            a["active_from"].clone(),
            a["active_to"].clone()
        ),
        (
            json!(300),
            json!(true),
            json!("Europe/Berlin"),
            json!(["mon", "tue", "wed", "thu", "fri"]),
            json!("07:00"),
            json!("19:00")
        ),
        "{a}"
    );
    let a = a["id"].as_str().unwrap().to_string();
    let r = cli
        .run(&[
            "schedule",
            "add",
            "north",
            "--at",
            "12:00",
            "--at",
            "06:00",
            "--tz",
            "America/New_York",
            "--weekdays",
            "mon,tue,wed,thu,fri",
        ])
        .await;
    assert!(
        r.ok()
            .out
            .contains("north at 06:00, 12:00 on Mon–Fri, America/New_York, next frame"),
        "{r:?}"
    );
    let b = r
        .out
        .split(':')
        .next()
        .unwrap()
        .trim_start_matches("added schedule ")
        .to_string();
    assert!(b.starts_with("sch_"), "{r:?}");

    let r = cli.run(&["schedule", "list", "north"]).await;
    assert!(
        r.ok()
            .out
            .contains("every 5m on Mon–Fri, 07:00–19:00, aligned, Europe/Berlin"),
        "{r:?}"
    );
    assert!(
        r.out
            .contains("at 06:00, 12:00 on Mon–Fri, America/New_York"),
        "{r:?}"
    );
    assert!(
        !r.out.contains("every 5m on Mon–Fri, America"),
        "fixed times are not an interval: {r:?}"
    );
    let r = cli.run(&["schedule", "show", &b]).await;
    let out = &r.ok().out;
    for want in [
        "at 06:00, 12:00 on Mon–Fri, America/New_York",
        "time zone:",
        "America/New_York",
        "- (fixed times)",
    ] {
        assert!(out.contains(want), "{want}: {r:?}");
    }

    // The preview: n slots, each at 06:00 or 12:00 New York time.
    let r = cli
        .run(&["schedule", "preview", &b, "-n", "3", "--json"])
        .await;
    let v = r.ok().json();
    let local: Vec<&str> = v["local"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(local.len(), 3, "{v}");
    for l in &local {
        assert!(
            l.contains("T06:00:00-0") || l.contains("T12:00:00-0"),
            "{l} is 06:00 or 12:00 in New York"
        );
    }
    let r = cli.run(&["schedule", "preview", &b, "-n", "3"]).await;
    assert_eq!(
        r.ok().out.lines().count(),
        4,
        "a header and three slots: {r:?}"
    );
    assert!(r.out.contains(local[0]), "{r:?}");
    let r = cli.run(&["schedule", "preview", &b, "-n", "101"]).await;
    assert!(r.failed(7).contains("1 to 100"), "{r:?}");

    // Edit: fixed times into an interval, then daylight, then back to all day, every day.
    let r = cli
        .run(&["schedule", "edit", &b, "--every", "10m", "--json"])
        .await;
    let v = r.ok().json();
    assert_eq!(
        (v["at"].clone(), v["interval_seconds"].clone()),
        (Value::Null, json!(600)),
        "{v}"
    );
    let r = cli
        .run(&[
            "schedule",
            "edit",
            &b,
            "--daylight",
            "-33.92,18.42,30",
            "--align",
        ])
        .await;
    assert!(
        r.ok()
            .out
            .contains("every 10m on Mon–Fri, sunrise to sunset +30 min, aligned, America/New_York"),
        "{r:?}"
    );
    let r = cli
        .run(&[
            "schedule",
            "set",
            &b,
            "--all-day",
            "--weekdays",
            "all",
            "--no-align",
            "--tz",
            "UTC",
            "--json",
        ])
        .await;
    let v = r.ok().json();
    assert_eq!(
        (
            v["daylight"].clone(),
            v["weekdays"].clone(),
            v["align"].clone(),
            v["timezone"].clone()
        ),
        (Value::Null, Value::Null, json!(false), json!("UTC")),
        "{v}"
    );
    let r = cli
        .run(&["schedule", "edit", &a, "--from", "22:00", "--to", "06:00"])
        .await;
    assert!(r.ok().out.contains("22:00–06:00"), "{r:?}");

    // The server's sentence for a bad time; clap's for flags that exclude each other.
    let r = cli
        .run(&["schedule", "add", "north", "--at", "25:00"])
        .await;
    assert!(r.failed(7).contains("not a time of day"), "{r:?}");
    let r = cli
        .run(&["schedule", "add", "north", "--at", "06:00", "--every", "5m"])
        .await;
    assert_eq!(r.code, 2, "{r:?}");
    let r = cli.run(&["schedule", "list", "north", "--json"]).await;
    assert_eq!(r.ok().json().as_array().unwrap().len(), 2);
    app.stop().await;
}

/// Start `heldar events …` and wait until it says it is listening.
async fn start_events(
    cli: &Cli,
    args: &[&str],
) -> (
    tokio::process::Child,
    tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    tokio::io::Lines<BufReader<tokio::process::ChildStderr>>,
) {
    let mut child = cli
        .command(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut err = BufReader::new(child.stderr.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), err.next_line())
        .await
        .expect("events says something within 20 s")
        .unwrap()
        .expect("a line");
    assert!(line.contains("listening to events"), "{line}");
    (child, out, err)
}

async fn next_line(lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>) -> String {
    tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("a line within 20 s")
        .unwrap()
        .expect("the stream goes on")
}

async fn exit_code(child: &mut tokio::process::Child) -> i32 {
    tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("events exits within 20 s")
        .unwrap()
        .code()
        .unwrap_or(-1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_tails_the_stream_and_ends_cleanly_on_ctrl_c_and_when_the_server_closes() {
    let app = spawn_app().await;
    let cam = fake_camera(FakeAuth::None).await;
    add_camera(&app, "gate", &cam.snapshot_url()).await;
    add_camera(&app, "other", &cam.snapshot_url()).await;
    let cli = Cli::new(&app);

    let (mut json_child, mut json_out, _json_err) =
        start_events(&cli, &["events", "--json", "--camera", "gate"]).await;
    let (mut human_child, mut human_out, mut human_err) = start_events(&cli, &["events"]).await;

    // A frame of the other camera is filtered out.
    cli.run(&["snap", "other", "--store", "-o", "o.jpg"])
        .await
        .ok();
    let r = cli
        .run(&["snap", "gate", "--store", "-o", "g.jpg", "--json"])
        .await;
    let id = r.ok().json()["snapshot_id"].as_str().unwrap().to_string();
    // Its state changes (unknown → online) come too; the frame is among the first lines.
    let mut ev = Value::Null;
    for _ in 0..20 {
        ev = serde_json::from_str(&next_line(&mut json_out).await).unwrap();
        assert_eq!(ev["camera"], "gate", "only gate's events: {ev}");
        if ev["type"] == "frame.stored" {
            break;
        }
    }
    assert_eq!(ev["type"], "frame.stored");
    assert_eq!(ev["camera"], "gate");
    assert_eq!(ev["snapshot_id"], id.as_str());
    assert_eq!(ev["width"], 64);

    // People get one line per event: kind, camera, what (the other camera's frame first).
    let mut line = String::new();
    for _ in 0..20 {
        line = next_line(&mut human_out).await;
        if line.contains(&id) {
            break;
        }
    }
    assert!(
        line.contains(&id) && line.contains("frame.stored") && line.contains("gate"),
        "{line}"
    );
    assert!(line.contains("64×48") && line.contains("manual"), "{line}");

    // Ctrl-C ends it with status 0.
    let pid = nix::unistd::Pid::from_raw(json_child.id().unwrap() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    assert_eq!(exit_code(&mut json_child).await, 0);

    // The server going away ends it too, with status 0 and a word on stderr.
    app.stop().await;
    assert_eq!(exit_code(&mut human_child).await, 0);
    let mut said = Vec::new();
    while let Ok(Some(l)) = human_err.next_line().await {
        said.push(l);
    }
    assert!(
        said.iter().any(|l| l.contains("closed the event stream")),
        "{said:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_health_disk_and_each_camera_and_exits_8_when_degraded() {
    let app = spawn_app().await;
    let cam = fake_camera(FakeAuth::None).await;
    add_camera(&app, "gate", &cam.snapshot_url()).await;
    let cli = Cli::new(&app);
    cli.run(&["snap", "gate", "--store", "-o", "g.jpg"])
        .await
        .ok();

    let r = cli.run(&["status"]).await;
    r.ok();
    assert!(r.out.lines().next().unwrap().ends_with(": ok"), "{r:?}");
    assert!(r.out.contains("1 frame,"), "{r:?}");
    let row = r
        .out
        .lines()
        .find(|l| l.starts_with("gate"))
        .expect("gate's row");
    assert!(row.contains("online"), "{row}");
    let r = cli.run(&["status", "--json"]).await;
    let s = r.ok().json();
    assert_eq!(s["health"]["status"], "ok");
    assert_eq!(s["cameras"][0]["id"], "gate");
    assert_eq!(s["disk"]["stored_frames"], 1);
    app.stop().await;

    // Free disk below the floor: degraded, exit 8, the problem on stderr, the tables still out.
    let app = spawn_app_with(
        |c| c.min_free_disk_bytes = u64::MAX / 4,
        BuildOptions::default(),
    )
    .await;
    let cli = Cli::new(&app);
    let r = cli.run(&["status"]).await;
    assert!(r.failed(8).contains("free disk"), "{r:?}");
    assert!(r.out.contains("degraded"), "{r:?}");
    let r = cli.run(&["status", "--json"]).await;
    assert_eq!(r.code, 8);
    assert_eq!(r.json()["health"]["status"], "degraded");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_missing_wrong_or_too_weak_exit_4() {
    const ADMIN: &str = "bootstrap-admin-token-0123456789";
    let app = spawn_app_with(
        |c| c.api_token = Some(ADMIN.into()),
        BuildOptions::default(),
    )
    .await;
    let cli = Cli::new(&app);

    let r = cli.run(&["camera", "list"]).await;
    let line = r.failed(4);
    assert!(
        line.contains("needs a token") && line.contains("HELDAR_TOKEN"),
        "{r:?}"
    );
    let r = cli.run(&["status", "--token", "wrong-token"]).await;
    assert!(r.failed(4).contains("not valid"), "{r:?}");
    let r = cli
        .run(&["camera", "list", "--json", "--token", ADMIN])
        .await;
    assert_eq!(r.ok().json(), json!([]));

    // A viewer token (from HELDAR_TOKEN) reads but cannot add cameras.
    let viewer = heldar::ops::tokens::create(
        &app.state.ops.db,
        &heldar::clock::SystemClock,
        "wall",
        heldar::models::Role::Viewer,
    )
    .await
    .unwrap()
    .1;
    let cli = Cli::new(&app).with_env("HELDAR_TOKEN", &viewer);
    cli.run(&["status"]).await.ok();
    let r = cli
        .run(&["camera", "add", "gate", "--address", "127.0.0.1"])
        .await;
    assert!(r.failed(4).contains("admin role"), "{r:?}");
    assert!(!r.err.contains(&viewer), "a token is never printed");

    // HELDAR_API_TOKEN of the local settings is used for the local default URL only, never
    // sent to a --url the user named.
    let port = app.base.rsplit(':').next().unwrap().to_string();
    let mut local = Cli::at("unused");
    local.env = vec![
        ("HELDAR_API_PORT".into(), port),
        ("HELDAR_API_TOKEN".into(), ADMIN.into()),
    ];
    let mut cmd = local.command(&["camera", "list", "--json"]);
    cmd.env_remove("HELDAR_URL");
    let out = cmd.stdin(Stdio::null()).output().await.unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let r = local.run(&["camera", "list", "--url", &app.base]).await;
    r.failed(4);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_or_silent_server_exits_6_and_a_bad_url_exits_2() {
    let cli = Cli::at(&format!("http://127.0.0.1:{}", dead_port()));
    let r = cli.run(&["status"]).await;
    assert!(r.failed(6).contains("cannot reach Heldar"), "{r:?}");
    assert!(r.err.contains("refused"), "the cause is named: {r:?}");
    let r = cli.run(&["camera", "list", "--json"]).await;
    r.failed(6);
    assert!(r.out.is_empty());

    // A socket that takes the connection and never answers: --timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let started = std::time::Instant::now();
    let r = Cli::at(&url).run(&["snap", "x", "--timeout", "0.5"]).await;
    assert!(r.failed(6).contains("did not answer within 0.5 s"), "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(20));

    for bad in [
        "127.0.0.1:8000",
        "ftp://127.0.0.1/",
        "http://u:p@127.0.0.1/",
    ] {
        let r = Cli::at(bad).run(&["status"]).await;
        assert!(r.failed(2).contains("--url"), "{bad}: {r:?}");
    }
    let r = cli.run(&["status", "--timeout", "soon"]).await;
    assert_eq!(r.code, 2, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_and_help() {
    let cli = Cli::at("http://127.0.0.1:9");
    for shell in ["bash", "zsh", "fish"] {
        let r = cli.run(&["completions", shell]).await;
        r.ok();
        assert!(r.out.len() > 1000, "{shell}: {} bytes", r.out.len());
        for word in ["heldar", "snap", "frames", "schedule", "timeout"] {
            assert!(r.out.contains(word), "{shell} completions lack {word}");
        }
    }
    // The bash script is valid bash.
    let r = cli.run(&["completions", "bash"]).await;
    let script = cli.path("heldar.bash");
    std::fs::write(&script, &r.stdout).unwrap();
    let check = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(check.status.success(), "{check:?}");
    let r = cli.run(&["completions", "tcsh"]).await;
    assert_eq!(r.code, 2);

    // The exit codes: in --help, from the one table, and in docs/cli.md.
    let r = cli.run(&["--help"]).await;
    r.ok();
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/cli.md")).unwrap();
    for (exit, meaning) in heldar::cli::exit::CODES {
        let code = exit.code();
        assert!(
            r.out.contains(&format!("  {code}  {meaning}")),
            "--help lacks {code}"
        );
        assert!(
            doc.contains(&format!("| {code} | {meaning} |")),
            "docs/cli.md lacks exit code {code} as `| {code} | {meaning} |`"
        );
    }
    let r = cli.run(&["snap"]).await;
    assert_eq!(r.code, 2, "clap's usage error: {r:?}");
}

/// Frames of `camera` kept at chosen times (real JPEGs, through the frame store), `n` of them
/// 10 s apart from an hour ago; returns the range `[first, last + 10 s)` as RFC 3339.
async fn stored_frames(
    app: &TestApp,
    camera: &str,
    n: i64,
    (w, h): (u16, u16),
) -> (String, String) {
    use chrono::SubsecRound;
    let t0 = (chrono::Utc::now() - chrono::Duration::hours(1)).trunc_subsecs(3);
    let times: Vec<_> = (0..n)
        .map(|i| t0 + chrono::Duration::seconds(10 * i))
        .collect();
    common::frames::keep_frames(&app.state.ops, camera, &times, |_| (w, h)).await;
    (
        heldar::models::fmt_ts(t0),
        heldar::models::fmt_ts(t0 + chrono::Duration::seconds(10 * n)),
    )
}

/// ffprobe's count of the video frames in `path`.
fn video_frames(path: &Path) -> u64 {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// An MP4 starts with its `ftyp` box: 4 bytes of size, then `ftyp`.
fn is_mp4(bytes: &[u8]) -> bool {
    bytes.len() > 8 && &bytes[4..8] == b"ftyp"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timelapse_exports_follows_and_downloads_an_mp4_and_jobs_lists_shows_and_cancels() {
    let app = spawn_app().await;
    add_camera(&app, "gate", "http://127.0.0.1:9/snapshot.jpg").await;
    let (from, to) = stored_frames(&app, "gate", 12, (64, 48)).await;
    let cli = Cli::new(&app);

    // Followed to the end (progress lines on stderr, not a terminal here), then downloaded.
    let r = cli
        .run(&[
            "timelapse",
            "gate",
            "--from",
            &from,
            "--to",
            &to,
            "--fps",
            "6",
            "-o",
            "tl.mp4",
        ])
        .await;
    r.ok();
    assert!(
        r.out.starts_with("saved tl.mp4 (") && r.out.contains("12 frames, 64×48, 2.0 s at 6 fps"),
        "{r:?}"
    );
    assert!(
        r.err.contains(" done: 12/12 frames"),
        "progress is said: {r:?}"
    );
    let video = std::fs::read(cli.path("tl.mp4")).unwrap();
    assert!(is_mp4(&video), "an MP4");
    assert_eq!(video_frames(&cli.path("tl.mp4")), 12);

    // --json: the final job, with the file it went to (the default name: camera, from, to).
    let r = cli
        .run(&["timelapse", "gate", "--from", &from, "--to", &to, "--json"])
        .await;
    let job = r.ok().json();
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["frames_done"], 12);
    assert!(r.err.is_empty(), "nothing but JSON with --json: {r:?}");
    let file = job["file"].as_str().unwrap().to_string();
    assert!(
        file.starts_with("gate-") && file.ends_with(".mp4"),
        "{file}"
    );
    let saved = std::fs::read(cli.path(&file)).unwrap();
    assert!(is_mp4(&saved));
    assert_eq!(
        saved.len() as u64,
        job["timelapse"]["size_bytes"].as_u64().unwrap()
    );
    let id = job["id"].as_str().unwrap().to_string();

    // -o -: the video on stdout, the words on stderr.
    let r = cli
        .run(&["timelapse", "gate", "--from", &from, "--to", &to, "-o", "-"])
        .await;
    assert!(is_mp4(&r.ok().stdout), "{}", r.err);
    assert!(r.err.contains("saved stdout"), "{r:?}");

    // On a terminal (a pty from `script`), progress is a bar, not lines.
    let line = format!(
        "{} timelapse gate --from {from} --to {to} -o pty.mp4",
        env!("CARGO_BIN_EXE_heldar")
    );
    let mut pty = std::process::Command::new("script");
    pty.args(["-qec", &line, "/dev/null"])
        .current_dir(cli.dir.path())
        .env("HELDAR_URL", &cli.url)
        .env("TERM", "xterm")
        .stdin(Stdio::null());
    for (k, _) in std::env::vars() {
        if k.starts_with("HELDAR_") && k != "HELDAR_URL" {
            pty.env_remove(k);
        }
    }
    let out = tokio::process::Command::from(pty).output().await.unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(shown.contains("/12 frames"), "a bar: {shown:?}");
    assert!(
        !shown.contains("heldar: job_"),
        "no progress lines: {shown:?}"
    );
    assert!(shown.contains("saved pty.mp4"), "{shown:?}");
    assert!(is_mp4(&std::fs::read(cli.path("pty.mp4")).unwrap()));

    // jobs: the four, newest first, as a table and as the API's JSON; filters.
    let r = cli.run(&["jobs", "--json"]).await;
    let jobs = r.ok().json();
    assert_eq!(jobs.as_array().unwrap().len(), 4, "{jobs}");
    assert!(jobs
        .as_array()
        .unwrap()
        .iter()
        .any(|j| j["id"] == id.as_str()));
    let r = cli.run(&["jobs"]).await;
    let header = r.ok().out.lines().next().unwrap().to_string();
    for col in ["ID", "CAMERA", "STATE", "PROGRESS", "OUTPUT", "CREATED"] {
        assert!(header.contains(col), "{header}");
    }
    let row = r.out.lines().find(|l| l.starts_with(&id)).expect("its row");
    assert!(
        row.contains("gate") && row.contains("done") && row.contains("12/12 (100%)"),
        "{row}"
    );
    let r = cli
        .run(&["jobs", "--camera", "gate", "--state", "done", "--json"])
        .await;
    assert_eq!(r.ok().json().as_array().unwrap().len(), 4);
    let r = cli
        .run(&["jobs", "list", "--state", "failed", "--json"])
        .await;
    assert_eq!(r.ok().json(), json!([]));
    let r = cli.run(&["jobs", "--state", "lost"]).await;
    assert_eq!(r.code, 2, "not a state: {r:?}");
    let r = cli.run(&["jobs", "--camera", "nowhere"]).await;
    r.failed(3);

    // jobs show: its state and video; --json is the API's.
    let r = cli.run(&["jobs", "show", &id]).await;
    r.ok();
    assert!(
        r.out.contains("done") && r.out.contains("/media/timelapses/gate/tl_"),
        "{r:?}"
    );
    assert!(r.out.contains("12, 64×48, 0.5 s at 24 fps, mp4"), "{r:?}");
    let r = cli.run(&["jobs", "show", &id, "--json"]).await;
    assert_eq!(r.ok().json()["id"], id.as_str());
    let r = cli
        .run(&["jobs", "show", "job_00000000000000000000000000000000"])
        .await;
    r.failed(3);

    // Cancelling a finished job is a conflict (7) with the API's sentence.
    let r = cli.run(&["jobs", "cancel", &id]).await;
    assert!(r.failed(7).contains("already done"), "{r:?}");

    // --no-wait: the job is started and printed, nothing downloaded.
    let r = cli
        .run(&[
            "timelapse",
            "gate",
            "--from",
            &from,
            "--to",
            &to,
            "--no-wait",
            "--json",
        ])
        .await;
    let started = r.ok().json();
    assert!(
        started["id"].as_str().unwrap().starts_with("job_"),
        "{started}"
    );
    assert_eq!(started["frames_total"], 12);
    let r = cli
        .run(&[
            "timelapse",
            "gate",
            "--from",
            &from,
            "--no-wait",
            "-o",
            "x.mp4",
        ])
        .await;
    assert_eq!(r.code, 2, "nothing to save without waiting: {r:?}");

    // An empty range (7) and a range without frames (7), with the API's sentence; an unknown
    // camera (3). No file is left by any.
    let r = cli
        .run(&["timelapse", "gate", "--from", &from, "--to", &from])
        .await;
    assert!(r.failed(7).contains("is empty"), "{r:?}");
    let r = cli
        .run(&[
            "timelapse",
            "gate",
            "--from",
            "2000-01-01",
            "--to",
            "2000-01-02",
        ])
        .await;
    assert!(r.failed(7).contains("has no stored frames"), "{r:?}");
    let r = cli.run(&["timelapse", "nowhere", "--from", "-1h"]).await;
    assert!(r.failed(3).contains("nowhere"), "{r:?}");
    let r = cli.run(&["timelapse", "gate", "--from", "whenever"]).await;
    assert_eq!(r.code, 2, "{r:?}");
    let mut files: Vec<String> = std::fs::read_dir(cli.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(
        files,
        vec![file, "pty.mp4".to_string(), "tl.mp4".to_string()]
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_while_a_timelapse_encodes_cancels_the_job_and_exits_130() {
    let app = spawn_app().await;
    add_camera(&app, "yard", "http://127.0.0.1:9/snapshot.jpg").await;
    // 400 small frames upscaled to 3840 px: long enough to interrupt.
    let (from, to) = stored_frames(&app, "yard", 400, (320, 180)).await;
    let cli = Cli::new(&app);
    let mut child = cli
        .command(&[
            "timelapse",
            "yard",
            "--from",
            &from,
            "--to",
            &to,
            "--width",
            "3840",
            "-o",
            "y.mp4",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap()).lines();
    // Its progress lines: wait for the encoding to run.
    let running = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(l) = err.next_line().await.unwrap() {
            assert!(
                !l.contains(" done:"),
                "finished before it could be interrupted: {l}"
            );
            if l.contains(" running: ") {
                return l;
            }
        }
        panic!("the command ended before the job ran");
    })
    .await
    .expect("the job runs within 60 s");
    let id = running
        .split_whitespace()
        .find(|w| w.starts_with("job_"))
        .expect("the job id")
        .to_string();
    let pid = nix::unistd::Pid::from_raw(child.id().unwrap() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    assert_eq!(exit_code(&mut child).await, 130);
    let mut said = Vec::new();
    while let Ok(Some(l)) = err.next_line().await {
        said.push(l);
    }
    assert!(
        said.iter()
            .any(|l| l.contains(&format!("cancelled {id} on the server"))),
        "{said:?}"
    );
    // Cancelled on the server, and nothing saved here.
    let job: Value = app
        .get(&format!("/api/v1/jobs/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(job["state"], "cancelled", "{job}");
    assert_eq!(std::fs::read_dir(cli.dir.path()).unwrap().count(), 0);
    let r = cli.run(&["jobs", "show", &id]).await;
    assert!(r.ok().out.contains("cancelled"), "{r:?}");

    // `jobs cancel` stops one started without waiting; a second cancel is refused (7).
    let r = cli
        .run(&[
            "timelapse",
            "yard",
            "--from",
            &from,
            "--to",
            &to,
            "--width",
            "3840",
            "--no-wait",
        ])
        .await;
    assert!(r.ok().out.starts_with("started job_"), "{r:?}");
    assert!(r.out.contains("400 frames of yard"), "{r:?}");
    let id = r
        .out
        .split_whitespace()
        .nth(1)
        .unwrap()
        .trim_end_matches(':');
    let r = cli.run(&["jobs", "cancel", id]).await;
    assert!(r.ok().out.starts_with(&format!("cancelled {id}")), "{r:?}");
    let r = cli.run(&["jobs", "cancel", id, "--json"]).await;
    assert!(r.failed(7).contains("already cancelled"), "{r:?}");
    let r = cli.run(&["jobs", "--state", "cancelled", "--json"]).await;
    assert_eq!(r.ok().json().as_array().unwrap().len(), 2);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timelapse_the_servers_ffmpeg_cannot_make_exits_8_with_the_sentence() {
    // No ffmpeg at all: refused up front (503 ffmpeg_missing), the server's fault, not a camera's.
    let app = spawn_app_with(
        |c| c.ffmpeg_bin = "/nonexistent/ffmpeg".into(),
        BuildOptions::default(),
    )
    .await;
    add_camera(&app, "gate", "http://127.0.0.1:9/snapshot.jpg").await;
    let (from, to) = stored_frames(&app, "gate", 3, (64, 48)).await;
    let cli = Cli::new(&app);
    let r = cli
        .run(&["timelapse", "gate", "--from", &from, "--to", &to])
        .await;
    assert!(r.failed(8).contains("HELDAR_FFMPEG_BIN"), "{r:?}");
    app.stop().await;

    // An "ffmpeg" that runs and fails: the job fails; its sentence, exit 8, and no file.
    let app = spawn_app_with(
        |c| c.ffmpeg_bin = "/bin/false".into(),
        BuildOptions::default(),
    )
    .await;
    add_camera(&app, "gate", "http://127.0.0.1:9/snapshot.jpg").await;
    let (from, to) = stored_frames(&app, "gate", 3, (64, 48)).await;
    let cli = Cli::new(&app);
    let r = cli
        .run(&[
            "timelapse",
            "gate",
            "--from",
            &from,
            "--to",
            &to,
            "-o",
            "x.mp4",
        ])
        .await;
    assert_eq!(r.code, 8, "{r:?}");
    let last = r.err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("heldar: job_") && last.contains(" failed: ") && !last.ends_with("frames"),
        "the job's sentence comes last: {r:?}"
    );
    assert!(!cli.path("x.mp4").exists());
    let r = cli.run(&["jobs", "--state", "failed"]).await;
    assert!(r.ok().out.contains("failed ("), "the code is shown: {r:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_frame_rules_and_a_camera_size_cap_are_set_and_cleared_from_the_cli() {
    let app = spawn_app().await;
    let cam = fake_camera(FakeAuth::None).await;
    add_camera(&app, "north", &cam.snapshot_url()).await;
    let cli = Cli::new(&app);

    let r = cli
        .run(&[
            "schedule",
            "add",
            "north",
            "--every",
            "1h",
            "--disabled",
            "--skip-dark",
            "--dark-threshold",
            "30",
            "--skip-unchanged",
            "--stream",
            "snapshot",
            "--retention-hours",
            "48",
            "--json",
        ])
        .await;
    let s = r.ok().json();
    assert_eq!(
        [
            &s["skip_dark"],
            &s["dark_threshold"],
            &s["skip_unchanged"],
            &s["stream"],
            &s["retention_hours"]
        ],
        [
            &json!(true),
            &json!(30),
            &json!(true),
            &json!("snapshot"),
            &json!(48)
        ],
        "{s}"
    );
    let id = s["id"].as_str().unwrap().to_string();
    // The list shows the rules in a column: skips (with the threshold), stream, retention.
    let r = cli.run(&["schedule", "list", "north"]).await;
    let out = r.ok().out.clone();
    let header = out.lines().next().unwrap_or_default();
    assert!(header.ends_with("RULES"), "{out}");
    let row = out.lines().find(|l| l.contains(&id)).unwrap_or_default();
    assert!(row.contains("dark<30, unchanged, snapshot, 48h"), "{out}");

    // Back to the defaults, one flag each; what is not named stays.
    let r = cli
        .run(&[
            "schedule",
            "set",
            &id,
            "--no-skip-dark",
            "--dark-threshold",
            "default",
            "--stream",
            "camera",
            "--retention-hours",
            "global",
        ])
        .await;
    assert!(
        r.ok().out.contains("skips unchanged frames") && !r.out.contains("dark"),
        "{r:?}"
    );
    let v: Value = app
        .get(&format!("/api/v1/snapshot-schedules/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        [
            &v["skip_dark"],
            &v["dark_threshold"],
            &v["skip_unchanged"],
            &v["stream"],
            &v["retention_hours"]
        ],
        [
            &json!(false),
            &Value::Null,
            &json!(true),
            &Value::Null,
            &Value::Null
        ],
        "{v}"
    );
    let r = cli.run(&["schedule", "set", &id, "--skip-dark"]).await;
    assert!(
        r.ok()
            .out
            .contains("skips dark (< 16) and unchanged frames"),
        "{r:?}"
    );
    // Refused by the command line, and by the server (no sub stream: 422, exit 7).
    let r = cli
        .run(&["schedule", "set", &id, "--dark-threshold", "300"])
        .await;
    assert_eq!(r.code, 2, "{r:?}");
    let r = cli.run(&["schedule", "set", &id, "--stream", "sub"]).await;
    assert!(r.failed(7).contains("sub-stream"), "{r:?}");

    let r = cli
        .run(&["camera", "edit", "north", "--max-gb", "0.5", "--json"])
        .await;
    assert_eq!(r.ok().json()["max_gb"], json!(0.5));
    let r = cli.run(&["camera", "show", "north"]).await;
    assert!(r.ok().out.contains("500 MB"), "{r:?}");
    let r = cli.run(&["camera", "edit", "north", "--max-gb", "0"]).await;
    assert!(r.failed(7).contains("max_gb"), "{r:?}");
    let r = cli
        .run(&["camera", "edit", "north", "--clear", "max-gb", "--json"])
        .await;
    assert_eq!(r.ok().json()["max_gb"], Value::Null);
    app.stop().await;
}
