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
}

impl Postgres {
    /// This binary's cluster, started on first use.
    pub fn start() -> &'static Postgres {
        static CLUSTER: OnceLock<Postgres> = OnceLock::new();
        CLUSTER.get_or_init(|| {
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/postgres-env");
            let out = std::process::Command::new(script)
                .args(["--watch", &std::process::id().to_string()])
                .stderr(std::process::Stdio::inherit())
                .output()
                .expect("running scripts/postgres-env");
            assert!(
                out.status.success(),
                "scripts/postgres-env failed ({})",
                out.status
            );
            let admin_url = String::from_utf8(out.stdout)
                .expect("a UTF-8 URL")
                .trim()
                .to_string();
            assert!(
                admin_url.starts_with("postgres://"),
                "scripts/postgres-env printed no URL"
            );
            Postgres { admin_url }
        })
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
