//! `heldar migrate --to postgres://… --storage s3://…` (docs/scale-out.md "Moving up from one
//! box"): the real binary copies an install made by the real application (cameras, schedules,
//! frames as real JPEG files, a webhook, an outage, a timelapse video) into a real PostgreSQL
//! (tests/common/postgres.rs) and a real S3-compatible server (moto, tests/common/moto.rs).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use common::moto::Moto;
use common::postgres::fresh_database;
use common::{heldar_cmd, spawn_app, TestApp};
use heldar::fakecam::{pattern, FakeAuth, FakeCamera, FrameSupply};
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::Row;

const ACCESS_KEY: &str = "AKIAHELDARTEST0001";
const SECRET: &str = "hEldAr-migrate-s3cr3t-0123456789abcdef";

/// The tables an install has (every table of the schema but sqlx's own).
const TABLES: &[&str] = &[
    "api_tokens",
    "camera_leases",
    "camera_status",
    "cameras",
    "jobs",
    "meta",
    "nodes",
    "outages",
    "snapshot_schedules",
    "snapshots",
    "timelapse_rules",
    "timelapses",
    "webhook_deliveries",
    "webhooks",
];

/// An install made by the real application, stopped: its data folder.
struct Install {
    dir: tempfile::TempDir,
    /// `path` of every frame row and `file` of every video row, relative.
    frames: Vec<String>,
    videos: Vec<String>,
}

impl Install {
    fn data(&self) -> &Path {
        self.dir.path()
    }
    fn db_file(&self) -> PathBuf {
        self.data().join("heldar.db")
    }
}

/// Two cameras with schedules, six stored frames (real JPEGs from fake cameras), a webhook, an
/// outage and a finished timelapse video; then a clean stop.
async fn make_install() -> Install {
    let app = spawn_app().await;
    let mut cams = Vec::new();
    for (id, rgb) in [("gate", [40, 90, 160]), ("yard", [200, 30, 30])] {
        let jpeg = Bytes::from(pattern::solid_jpeg(96, 64, rgb));
        let cam = FakeCamera::start(FakeAuth::None, FrameSupply::Static(jpeg))
            .await
            .unwrap();
        app.create_camera(json!({"id": id, "snapshot_url": cam.snapshot_url()}))
            .await;
        let r = app
            .post_json(
                &format!("/api/v1/cameras/{id}/snapshot-schedules"),
                &json!({"interval_seconds": 86400, "enabled": false}),
            )
            .await;
        assert!(r.status().is_success(), "schedule: {}", r.status());
        for _ in 0..3 {
            let r = app
                .get(&format!("/api/v1/cameras/{id}/snapshot?store=true"))
                .await;
            assert!(r.status().is_success(), "store: {}", r.status());
        }
        cams.push(cam);
    }
    let r = app
        .post_json(
            "/api/v1/webhooks",
            &json!({"url": "http://127.0.0.1:9/hook", "events": ["frame.stored"]}),
        )
        .await;
    assert!(r.status().is_success(), "webhook: {}", r.status());
    let TestApp {
        shutdown,
        server,
        dir,
        state,
        ..
    } = app;
    drop(state);
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), server)
        .await
        .expect("the app stops")
        .unwrap()
        .unwrap();
    drop(cams);

    // An outage and a video, as the application would have written them.
    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        dir.path().join("heldar.db").display()
    ))
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO outages (id, camera_id, started_at, ended_at, first_error, last_error, \
         failures) VALUES ('out_1', 'yard', '2026-11-29T01:00:00.000Z', \
         '2026-11-29T01:05:00.000Z', 'timeout', 'timeout', 4)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let video = "gate/tl_0123456789abcdef0123456789abcdef.mp4";
    let video_bytes: Vec<u8> = (0..40_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::create_dir_all(dir.path().join("timelapses/gate")).unwrap();
    std::fs::write(dir.path().join("timelapses").join(video), &video_bytes).unwrap();
    sqlx::query(
        "INSERT INTO timelapses (id, camera_id, file, from_at, to_at, fps, width, height, frames, \
         format, size_bytes, created_at) VALUES ('tl_0123456789abcdef0123456789abcdef', 'gate', \
         $1, '2026-11-28T00:00:00.000Z', '2026-11-29T00:00:00.000Z', 25, 96, 64, 3, 'mp4', $2, \
         '2026-11-29T00:30:00.000Z')",
    )
    .bind(video)
    .bind(video_bytes.len() as i64)
    .execute(&pool)
    .await
    .unwrap();
    let frames: Vec<String> = sqlx::query_scalar("SELECT path FROM snapshots ORDER BY path")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(frames.len(), 6);
    // Fold the WAL into the file (the stopped app's writer may still hold a connection, so a
    // close alone need not): the file is then what the test checksums, and nothing is left in
    // the WAL for a later close to move into it.
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    Install {
        dir,
        frames,
        videos: vec![video.to_string()],
    }
}

/// SHA-256 of every file under the data folder (the database and the frames), by path. The
/// WAL's side files are left out: a reader may create them, and they hold no data once the
/// database was closed cleanly.
fn checksums(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if !p.to_string_lossy().ends_with("-shm")
                && !p.to_string_lossy().ends_with("-wal")
            {
                let bytes = std::fs::read(&p).unwrap();
                out.insert(
                    p.strip_prefix(dir).unwrap().display().to_string(),
                    format!("{:x}", Sha256::digest(&bytes)),
                );
            }
        }
    }
    out
}

fn migrate_cmd(
    install: &Install,
    to: &str,
    moto: Option<&Moto>,
    storage: &str,
) -> std::process::Command {
    let mut cmd = heldar_cmd(install.data());
    cmd.env("HELDAR_DATA_DIR", install.data())
        .args(["migrate", "--to", to]);
    if let Some(m) = moto {
        cmd.args(["--storage", storage])
            .env("AWS_ENDPOINT_URL", m.endpoint())
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET);
    }
    cmd
}

fn run(mut cmd: std::process::Command) -> (bool, String) {
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The counts of every table, on SQLite (`sqlite://…`, opened read-only) or PostgreSQL.
async fn counts(url: &str) -> BTreeMap<&'static str, i64> {
    let mut out = BTreeMap::new();
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(&format!("{url}?mode=ro"))
            .await
            .unwrap();
        for t in TABLES {
            let sql = format!("SELECT COUNT(*) AS n FROM {t}");
            let n = sqlx::query(&sql).fetch_one(&pool).await.unwrap().get("n");
            out.insert(*t, n);
        }
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        for t in TABLES {
            let sql = format!("SELECT COUNT(*) AS n FROM {t}");
            let n = sqlx::query(&sql).fetch_one(&pool).await.unwrap().get("n");
            out.insert(*t, n);
        }
        pool.close().await;
    }
    out
}

fn password_of(url: &str) -> String {
    url::Url::parse(url)
        .unwrap()
        .password()
        .unwrap()
        .to_string()
}

/// A whole install copied: every table's rows, every frame and video byte for byte, the source
/// untouched; a second run copies nothing and changes nothing.
#[tokio::test]
async fn migrate_copies_rows_and_frames_verified_and_leaves_the_source_alone() {
    let install = make_install().await;
    let before = checksums(install.data());
    let to = fresh_database().await;
    let moto = Moto::start().await;
    moto.create_bucket("fleet").await;

    let (ok, text) = run(migrate_cmd(&install, &to, Some(&moto), "s3://fleet/site-a"));
    assert!(ok, "{text}");
    assert!(text.contains("done:"), "{text}");
    // Not a terminal: progress as plain lines, one per table and per tenth of the way.
    assert!(text.contains("table snapshots: 6 rows copied"), "{text}");
    assert!(text.contains("heldar migrate: 100% ("), "{text}");
    assert!(
        !text.contains(&password_of(&to)),
        "the password is shown: {text}"
    );
    assert!(!text.contains(SECRET), "the S3 secret is shown: {text}");

    let source = counts(&format!("sqlite://{}", install.db_file().display())).await;
    assert_eq!(source["cameras"], 2);
    assert_eq!(source["snapshots"], 6);
    assert_eq!(source["snapshot_schedules"], 2);
    assert_eq!(source["webhooks"], 1);
    assert_eq!(source["outages"], 1);
    assert_eq!(source["timelapses"], 1);
    assert_eq!(counts(&to).await, source);

    // Every frame and the video, byte for byte, under the row's name.
    for rel in &install.frames {
        let local = std::fs::read(install.data().join("snapshots").join(rel)).unwrap();
        let object = moto.object("fleet", &format!("site-a/{rel}")).await;
        assert_eq!(object.as_deref(), Some(&local[..]), "{rel}");
    }
    for rel in &install.videos {
        let local = std::fs::read(install.data().join("timelapses").join(rel)).unwrap();
        let object = moto
            .object("fleet", &format!("site-a/_timelapses/{rel}"))
            .await;
        assert_eq!(object.as_deref(), Some(&local[..]), "{rel}");
    }
    // 6 frames and a video, and the install marker naming the source's install.
    assert_eq!(moto.keys("fleet", "site-a/").await.len(), 8);
    // A copied row reads back the same through PostgreSQL (the camera's sealed password too).
    let pg = sqlx::PgPool::connect(&to).await.unwrap();
    let lite =
        sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=ro", install.db_file().display()))
            .await
            .unwrap();
    let q = "SELECT id, snapshot_url, password, created_at FROM cameras ORDER BY id";
    let a: Vec<(String, Option<String>, Option<String>, String)> =
        sqlx::query_as(q).fetch_all(&pg).await.unwrap();
    let b: Vec<(String, Option<String>, Option<String>, String)> =
        sqlx::query_as(q).fetch_all(&lite).await.unwrap();
    assert_eq!(a, b);
    // The fleet is this install: the same install id, and the bucket marked with it.
    let q = "SELECT value FROM meta WHERE name = 'install_id'";
    let id: String = sqlx::query_scalar(q).fetch_one(&lite).await.unwrap();
    let pg_id: String = sqlx::query_scalar(q).fetch_one(&pg).await.unwrap();
    assert_eq!(pg_id, id);
    let marker = moto
        .object("fleet", "site-a/.heldar-install")
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&marker).lines().next(),
        Some(id.as_str())
    );
    lite.close().await;

    // Again: nothing new to copy, nothing doubled.
    let (ok, text) = run(migrate_cmd(&install, &to, Some(&moto), "s3://fleet/site-a"));
    assert!(ok, "{text}");
    assert!(text.contains("(0 copied now"), "{text}");
    assert!(text.contains("(0 sent"), "{text}");
    assert_eq!(counts(&to).await, source);
    // 6 frames and a video, and the install marker naming the source's install.
    assert_eq!(moto.keys("fleet", "site-a/").await.len(), 8);

    // The source is unchanged: the database file and every frame.
    assert_eq!(checksums(install.data()), before);
    pg.close().await;
}

/// A copy cut short (rows of one table missing, objects missing or torn in the bucket) is
/// completed by the next run, without duplicates.
#[tokio::test]
async fn an_interrupted_migration_resumes_and_completes_without_duplicates() {
    let install = make_install().await;
    let to = fresh_database().await;
    let moto = Moto::start().await;
    moto.create_bucket("fleet").await;
    let (ok, text) = run(migrate_cmd(&install, &to, Some(&moto), "s3://fleet"));
    assert!(ok, "{text}");
    let full = counts(&to).await;

    // What an interruption leaves: half the frame rows and the outage not yet written, two
    // frames not yet uploaded, one cut off mid-upload (a shorter object).
    let pg = sqlx::PgPool::connect(&to).await.unwrap();
    let gone: Vec<String> =
        sqlx::query_scalar("DELETE FROM snapshots WHERE path LIKE 'yard/%' RETURNING path")
            .fetch_all(&pg)
            .await
            .unwrap();
    assert_eq!(gone.len(), 3);
    sqlx::query("DELETE FROM outages")
        .execute(&pg)
        .await
        .unwrap();
    moto.delete_object("fleet", &install.frames[0]).await;
    moto.delete_object("fleet", &install.frames[5]).await;
    let torn = &install.frames[2];
    let whole = std::fs::read(install.data().join("snapshots").join(torn)).unwrap();
    moto.put_object("fleet", torn, whole[..whole.len() / 2].to_vec())
        .await;

    let (ok, text) = run(migrate_cmd(&install, &to, Some(&moto), "s3://fleet"));
    assert!(ok, "{text}");
    // 3 frame rows and the outage; 3 objects sent again (two missing, one torn), 4 kept.
    assert!(text.contains("(4 copied now"), "{text}");
    assert!(text.contains("(3 sent"), "{text}");
    assert_eq!(counts(&to).await, full);
    let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM snapshots")
        .fetch_all(&pg)
        .await
        .unwrap();
    let distinct: std::collections::BTreeSet<_> = ids.iter().collect();
    assert_eq!((ids.len(), distinct.len()), (6, 6));
    for rel in &install.frames {
        let local = std::fs::read(install.data().join("snapshots").join(rel)).unwrap();
        assert_eq!(
            moto.object("fleet", rel).await.as_deref(),
            Some(&local[..]),
            "{rel}"
        );
    }
    assert_eq!(moto.keys("fleet", "").await.len(), 8);
    pg.close().await;
}

/// What cannot be used is said in a sentence, with a non-zero exit and the password masked: a
/// URL that is not PostgreSQL, a server that does not answer, a bucket that is not an S3 URL,
/// and a destination that holds another install's rows.
#[tokio::test]
async fn bad_destinations_are_refused_in_a_sentence_without_the_password() {
    let install = make_install().await;
    let before = checksums(install.data());

    let (ok, text) = run(migrate_cmd(&install, "mysql://u:pw@127.0.0.1/x", None, ""));
    assert!(!ok);
    assert!(text.contains("is not a PostgreSQL URL"), "{text}");
    assert!(!text.contains(":pw@"), "{text}");

    let to = fresh_database().await;
    let port = url::Url::parse(&to).unwrap().port().unwrap();
    let unreachable = to.replace(&format!(":{port}/"), ":1/");
    let (ok, text) = run(migrate_cmd(&install, &unreachable, None, ""));
    assert!(!ok);
    assert!(
        text.contains("cannot open the destination database postgres://heldar:***@"),
        "{text}"
    );
    assert!(!text.contains(&password_of(&to)), "{text}");

    let moto = Moto::start().await;
    let (ok, text) = run(migrate_cmd(&install, &to, Some(&moto), "gs://fleet"));
    assert!(!ok);
    assert!(text.contains("--storage"), "{text}");
    // A bucket that does not exist: named, before anything is copied, without the secret.
    let (ok, text) = run(migrate_cmd(&install, &to, Some(&moto), "s3://nowhere/x"));
    assert!(!ok);
    assert!(text.contains("s3://nowhere/x"), "{text}");
    assert!(!text.contains(SECRET), "{text}");

    // Another install's camera in the destination: refused, nothing copied.
    let pool = heldar::db::connect(&to).await.unwrap();
    sqlx::query(
        "INSERT INTO cameras (id, name, vendor, created_at, updated_at) \
         VALUES ('elsewhere', 'elsewhere', 'generic', '2026-01-01T00:00:00.000Z', \
         '2026-01-01T00:00:00.000Z')",
    )
    .execute(pool.postgres().unwrap())
    .await
    .unwrap();
    pool.close().await;
    let (ok, text) = run(migrate_cmd(&install, &to, None, ""));
    assert!(!ok);
    assert!(text.contains("another Heldar install"), "{text}");
    assert!(text.contains("\"elsewhere\""), "{text}");
    assert!(!text.contains(&password_of(&to)), "{text}");
    let after = counts(&to).await;
    assert_eq!(after["cameras"], 1);
    assert_eq!(after["snapshots"], 0);

    assert_eq!(checksums(install.data()), before);
}

/// A copy killed mid-way (SIGKILL while the frame rows are going in) is finished by the next
/// run: every row once, counts equal.
#[tokio::test]
async fn a_killed_migration_is_finished_by_the_next_run() {
    let install = make_install().await;
    // Enough frame rows that the copy takes a while (files do not matter without --storage).
    const ROWS: i64 = 100_000;
    let lite = sqlx::SqlitePool::connect(&format!("sqlite://{}", install.db_file().display()))
        .await
        .unwrap();
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1) \
         INSERT INTO snapshots (id, camera_id, path, taken_at, size_bytes, created_at) \
         SELECT printf('bulk_%06d', i), 'gate', printf('gate/bulk_%06d.jpg', i), \
         '2026-11-01T00:00:00.000Z', 1000, '2026-11-01T00:00:00.000Z' FROM n",
    )
    .bind(ROWS)
    .execute(&lite)
    .await
    .unwrap();
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&lite)
        .await
        .unwrap();
    lite.close().await;
    let source = counts(&format!("sqlite://{}", install.db_file().display())).await;

    let to = fresh_database().await;
    let mut child = migrate_cmd(&install, &to, None, "")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pg = sqlx::PgPool::connect(&to).await.unwrap();
    common::wait_for(
        "the first frame rows in PostgreSQL",
        Duration::from_secs(60),
        || {
            let pg = pg.clone();
            async move {
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM snapshots")
                    .fetch_one(&pg)
                    .await
                    .ok()?;
                (n > 0).then_some(())
            }
        },
    )
    .await;
    child.kill().unwrap();
    child.wait().unwrap();
    let partial: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM snapshots")
        .fetch_one(&pg)
        .await
        .unwrap();
    assert!(
        partial < source["snapshots"],
        "the copy finished before it was killed ({partial} rows)"
    );

    let (ok, text) = run(migrate_cmd(&install, &to, None, ""));
    assert!(ok, "{text}");
    assert_eq!(counts(&to).await, source);
    // What the first run had not committed, give or take its last page of 500 rows: a killed
    // client's statement in flight still runs to its commit on the server, after the count.
    let missing = source["snapshots"] - partial;
    let copied_now: i64 = text
        .split("table snapshots: ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no snapshots line: {text}"));
    assert!(
        copied_now <= missing && copied_now >= missing - 500,
        "{copied_now} rows copied where {missing} were missing: {text}"
    );
    pg.close().await;
}

/// The source written to during the copy (a frame row added behind the copy's position): the
/// count check catches it, names the table, says why, and exits non-zero.
#[tokio::test]
async fn a_count_that_does_not_verify_names_the_table_and_fails() {
    let install = make_install().await;
    let url = format!("sqlite://{}", install.db_file().display());
    let lite = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000) \
         INSERT INTO snapshots (id, camera_id, path, taken_at, size_bytes, created_at) \
         SELECT printf('bulk_%06d', i), 'gate', printf('gate/bulk_%06d.jpg', i), \
         '2026-11-01T00:00:00.000Z', 1000, '2026-11-01T00:00:00.000Z' FROM n",
    )
    .execute(&lite)
    .await
    .unwrap();

    let to = fresh_database().await;
    let child = migrate_cmd(&install, &to, None, "")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pg = sqlx::PgPool::connect(&to).await.unwrap();
    common::wait_for(
        "the first frame rows in PostgreSQL",
        Duration::from_secs(60),
        || {
            let pg = pg.clone();
            async move {
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM snapshots")
                    .fetch_one(&pg)
                    .await
                    .ok()?;
                (n > 0).then_some(())
            }
        },
    )
    .await;
    // A key that sorts before every page the copy has done: it will never be read.
    sqlx::query(
        "INSERT INTO snapshots (id, camera_id, path, taken_at, size_bytes, created_at) \
         VALUES ('0_late', 'gate', 'gate/late.jpg', '2026-11-02T00:00:00.000Z', 1, \
         '2026-11-02T00:00:00.000Z')",
    )
    .execute(&lite)
    .await
    .unwrap();
    lite.close().await;
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("verification failed: table snapshots has 100007 rows here and 100006 in"),
        "{text}"
    );
    assert!(
        text.contains("the source changed during the copy"),
        "{text}"
    );
    assert!(!text.contains(&password_of(&to)), "{text}");
    pg.close().await;
}

/// `heldar migrate` with no destination says how to give one, naming both the flag and the
/// variable (a URL with a password belongs in the variable), and exits 2 (a usage error).
#[test]
fn migrate_without_a_destination_names_the_flag_and_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = heldar_cmd(dir.path());
    cmd.env_remove("HELDAR_MIGRATE_TO").args(["migrate"]);
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("give the destination with --to postgres://… or HELDAR_MIGRATE_TO"),
        "{text}"
    );
    assert!(
        !dir.path().join("data").exists(),
        "nothing is written before the destination is known"
    );
}

/// The peak resident memory of `child` (kB, Linux's VmHWM), read until it exits.
fn peak_memory_kb(mut child: std::process::Child) -> (std::process::ExitStatus, u64) {
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    loop {
        if let Ok(text) = std::fs::read_to_string(&status_file) {
            if let Some(kb) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak = peak.max(kb);
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            return (status, peak);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A file larger than the memory a copy may take (a long timelapse video) is sent and read
/// back in pieces: the migrate process's peak memory stays well under the file's size, and the
/// object in the bucket is the file byte for byte.
#[tokio::test]
async fn migrate_streams_a_large_video_without_holding_it_in_memory() {
    const SIZE: usize = 96 * 1024 * 1024;
    let install = make_install().await;
    let video = install.data().join("timelapses").join(&install.videos[0]);
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&video).unwrap());
        let block: Vec<u8> = (0..1024 * 1024u32).map(|i| (i * 7 % 251) as u8).collect();
        for i in 0..SIZE / block.len() {
            f.write_all(&block).unwrap();
            f.write_all(&[i as u8]).unwrap();
        }
    }
    let size = std::fs::metadata(&video).unwrap().len();
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", install.db_file().display()))
        .await
        .unwrap();
    sqlx::query("UPDATE timelapses SET size_bytes = $1")
        .bind(size as i64)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let want = format!("{:x}", Sha256::digest(std::fs::read(&video).unwrap()));

    let moto = Moto::start().await;
    moto.create_bucket("fleet").await;
    let to = fresh_database().await;
    let log = install.data().join("migrate.log");
    let child = migrate_cmd(&install, &to, Some(&moto), "s3://fleet")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let (status, peak_kb) = tokio::task::spawn_blocking(move || peak_memory_kb(child))
        .await
        .unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{text}");
    eprintln!("peak memory of heldar migrate: {peak_kb} kB for a {size}-byte video");
    assert!(
        // Held whole, the file alone would take its size; in pieces the process stays near
        // its own ~50 MB (8 MiB parts, two in flight) whatever the file's size.
        peak_kb * 1024 < size * 3 / 4,
        "heldar migrate peaked at {peak_kb} kB copying a {size}-byte file"
    );
    let back = moto
        .object("fleet", &format!("_timelapses/{}", install.videos[0]))
        .await
        .expect("the video is in the bucket");
    assert_eq!(format!("{:x}", Sha256::digest(&back)), want);
}

/// Without --storage the rows move and the files stay: the summary says so, names the folders,
/// and says how to bring the files along before a node with a bucket starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_without_storage_says_the_files_stayed_on_this_disk() {
    let install = make_install().await;
    let to = fresh_database().await;
    let (ok, text) = run(migrate_cmd(&install, &to, None, ""));
    assert!(ok, "{text}");
    assert!(text.contains("done:"), "{text}");
    assert!(
        text.contains("6 frames and 1 videos were not copied (no --storage)"),
        "{text}"
    );
    assert!(
        text.contains(&install.data().join("snapshots").display().to_string()),
        "{text}"
    );
    assert!(text.contains("--storage s3://bucket/prefix"), "{text}");
    assert!(!text.contains(&password_of(&to)), "{text}");
    assert_eq!(counts(&to).await["snapshots"], 6);
}
