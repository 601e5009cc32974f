//! A real PostgreSQL for tests: one throw-away cluster per test binary, made by
//! `scripts/postgres-env` (Debian's `postgresql` package, installed by the script if missing),
//! on 127.0.0.1 and a free port, and a fresh database per test.
//!
//! The cluster is started on first use and lives as long as the test process: the script is
//! told this process's id (`--watch`) and stops the server and deletes its folder within a
//! second of the process ending, however it ends (a static is never dropped, and a SIGKILLed
//! test runs no destructor, so a guard could not promise that). A cluster that cannot be made
//! fails the test that asked for it with the script's own words.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use sqlx::Connection;

/// The cluster of this test binary.
pub struct Postgres {
    /// `postgres://heldar:…@127.0.0.1:PORT/postgres`: the superuser on the maintenance database.
    admin_url: String,
    /// The cluster's folder, for a cluster of a test's own ([`Postgres::own`]).
    dir: Option<std::path::PathBuf>,
}

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/postgres-env");

/// Run the script with `args`; its URL line, if it printed one.
fn script(args: &[&str]) -> String {
    let out = std::process::Command::new(SCRIPT)
        .args(args)
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("running scripts/postgres-env");
    assert!(
        out.status.success(),
        "scripts/postgres-env {args:?} failed ({})",
        out.status
    );
    String::from_utf8(out.stdout)
        .expect("UTF-8 output")
        .trim()
        .to_string()
}

impl Postgres {
    /// This binary's cluster, started on first use.
    pub fn start() -> &'static Postgres {
        static CLUSTER: OnceLock<Postgres> = OnceLock::new();
        CLUSTER.get_or_init(|| {
            let admin_url = script(&["--watch", &std::process::id().to_string()]);
            assert!(
                admin_url.starts_with("postgres://"),
                "scripts/postgres-env printed no URL"
            );
            Postgres {
                admin_url,
                dir: None,
            }
        })
    }

    /// A cluster of the caller's own, apart from the binary's shared one: for a test that
    /// stops and starts the server ([`Postgres::pause`], [`Postgres::resume`]), which would
    /// break the other tests of a shared cluster. Stopped and deleted when the test process
    /// ends, like the shared one.
    pub fn own() -> Postgres {
        static N: AtomicU32 = AtomicU32::new(0);
        // Not inside a TempDir: the server's user must reach the folder, and a TempDir is
        // private to its owner.
        let dir = std::env::temp_dir().join(format!(
            "heldar-pg-own-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let dir_arg = dir.to_str().expect("a UTF-8 temp path").to_string();
        let admin_url = script(&[
            "--dir",
            &dir_arg,
            "--watch",
            &std::process::id().to_string(),
        ]);
        assert!(
            admin_url.starts_with("postgres://"),
            "scripts/postgres-env printed no URL"
        );
        Postgres {
            admin_url,
            dir: Some(dir),
        }
    }

    fn own_dir(&self) -> &str {
        self.dir
            .as_ref()
            .expect("only a cluster of a test's own (Postgres::own) is stopped and started")
            .to_str()
            .expect("a UTF-8 temp path")
    }

    /// Stop the server (`pg_ctl stop -m fast`: connections are ended), keeping its data.
    pub fn pause(&self) {
        script(&["--pause", self.own_dir()]);
    }

    /// Start the server again on the same port with the same settings.
    pub fn resume(&self) {
        script(&["--resume", self.own_dir()]);
    }

    /// The superuser's URL (with its password) on the maintenance database.
    pub fn admin_url(&self) -> &str {
        &self.admin_url
    }

    /// A new, empty database of its own for one test; its URL (password included).
    pub async fn database(&self) -> String {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "t{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = sqlx::PgConnection::connect(&self.admin_url)
            .await
            .expect("connecting to the test cluster");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("creating a test database");
        admin.close().await.ok();
        let base = self
            .admin_url
            .strip_suffix("/postgres")
            .expect("the script's URL ends in /postgres");
        format!("{base}/{name}")
    }
}

/// A fresh database on this binary's cluster (started on first use): its URL.
pub async fn fresh_database() -> String {
    Postgres::start().database().await
}

/// `url` (a database on a test cluster, over 127.0.0.1) rewritten to reach the same database
/// through the cluster's Unix socket, for a process in a network namespace of its own, which
/// has no route to this machine's loopback but shares its files. Its socket folder is found by
/// the port in its name (`…/socket/.s.PGSQL.PORT`, `scripts/postgres-env`); local connections
/// need no password there.
pub fn unix_socket_url(url: &str) -> String {
    let rest = url
        .strip_prefix("postgres://")
        .expect("a test cluster's postgres:// URL");
    let (_, at_host) = rest.split_once('@').expect("user and password in the URL");
    let (host_port, database) = at_host.split_once('/').expect("a database in the URL");
    let port = host_port
        .strip_prefix("127.0.0.1:")
        .expect("a test cluster on 127.0.0.1");
    let tmp = std::env::temp_dir();
    let socket_dir = std::fs::read_dir(&tmp)
        .expect("the temp folder")
        .filter_map(Result::ok)
        .map(|e| e.path().join("socket"))
        .find(|d| d.join(format!(".s.PGSQL.{port}")).exists())
        .unwrap_or_else(|| panic!("no socket of the cluster on port {port} under {tmp:?}"));
    format!(
        "postgres://heldar@localhost/{database}?host={}&port={port}",
        socket_dir.display()
    )
}

/// One `heldar serve` child process on the PostgreSQL at `url` (its data folder in `dir`),
/// holding one fake camera `c000` with a 1 s schedule: the outage tests' node. The schedule
/// row is written directly, since 1 s is below the API's shortest interval; the node picks it
/// up at its next look (`HELDAR_SNAPSHOT_SCHEDULER_INTERVAL_S=5`). Retention sweeps every 2 s,
/// so an outage meets them; `cache_ttl_s` is the scheduler's camera cache TTL.
pub struct OutageNode {
    pub server: super::ServerProcess,
    pub client: reqwest::Client,
    pub cam: heldar::fakecam::FakeCamera,
}

impl OutageNode {
    pub async fn start(url: &str, dir: &std::path::Path, cache_ttl_s: u64) -> OutageNode {
        use heldar::fakecam::{pattern, FakeAuth, FakeCamera, FrameSupply};
        let cam = FakeCamera::start(
            FakeAuth::None,
            FrameSupply::Static(bytes::Bytes::from(pattern::sized_jpeg(20))),
        )
        .await
        .unwrap();
        let client = reqwest::Client::new();
        let mut cmd = super::heldar_cmd(dir);
        cmd.arg("serve")
            .env("RUST_LOG", "info")
            .env("HELDAR_DATABASE_URL", url)
            .env("HELDAR_SNAPSHOT_SCHEDULER_INTERVAL_S", "5")
            // Sweeps during the outage: retention must wait it out, not fail and restart.
            .env("HELDAR_RETENTION_INTERVAL_S", "2")
            .env("HELDAR_CAMERA_CACHE_TTL_S", cache_ttl_s.to_string());
        let server = super::ServerProcess::start(cmd);
        let r = client
            .post(server.url("/api/v1/cameras"))
            .json(&serde_json::json!({"id": "c000", "snapshot_url": cam.snapshot_url()}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let now = chrono::Utc::now();
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query(
            "INSERT INTO snapshot_schedules \
             (id, camera_id, interval_seconds, next_due_at, created_at, updated_at) \
             VALUES ('sch_fast', 'c000', 1, $1, $2, $2)",
        )
        .bind(heldar::models::fmt_ts(now + chrono::Duration::seconds(1)))
        .bind(heldar::models::fmt_ts(now))
        .execute(&mut c)
        .await
        .unwrap();
        c.close().await.ok();
        OutageNode {
            server,
            client,
            cam,
        }
    }
}

/// `GET /api/v1/health` of `server`: its status code and body.
pub async fn health(
    client: &reqwest::Client,
    server: &super::ServerProcess,
) -> (u16, serde_json::Value) {
    let r = client
        .get(server.url("/api/v1/health"))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// A fresh, migrated database with `cameras` cameras `cam-0…` and one 60 s schedule each,
/// `sch_0…`, created and due at `due`: the writer tests' fixture. Its pool.
pub async fn seeded_database(cameras: usize, due: chrono::DateTime<chrono::Utc>) -> sqlx::PgPool {
    let url = fresh_database().await;
    let heldar::db::Pool::Postgres(pg) = heldar::db::connect(&url).await.unwrap() else {
        panic!("a postgres:// URL opens a PostgreSQL pool");
    };
    let due = heldar::models::fmt_ts(due);
    for i in 0..cameras {
        sqlx::query(
            "INSERT INTO cameras (id, name, vendor, created_at, updated_at) \
             VALUES ($1, $1, 'generic', $2, $2)",
        )
        .bind(format!("cam-{i}"))
        .bind(&due)
        .execute(&pg)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO snapshot_schedules \
             (id, camera_id, interval_seconds, next_due_at, created_at, updated_at) \
             VALUES ($1, $2, 60, $3, $3, $3)",
        )
        .bind(format!("sch_{i}"))
        .bind(format!("cam-{i}"))
        .bind(&due)
        .execute(&pg)
        .await
        .unwrap();
    }
    pg
}
