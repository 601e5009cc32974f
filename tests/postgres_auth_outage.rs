//! PostgreSQL refusing Heldar's password at run time (an operator's `ALTER ROLE … PASSWORD`,
//! every backend of the role ended): held like any outage (docs/design.md §8.1), named for what
//! it is in the health check and the log, no service fails or restarts, and captures go on to
//! disk; once the password is accepted again the held rows commit.
//!
//! A binary of its own with a cluster of its own (`Postgres::own`): the role's password is
//! changed, which would break other tests sharing a cluster.

mod common;

use std::time::Duration;

use common::postgres::{health, OutageNode, Postgres};
use common::wait_for;
use nix::sys::signal::Signal;
use sqlx::{Connection, PgConnection};

async fn admin(url: &str, sql: &str) {
    let mut c = PgConnection::connect(url).await.unwrap();
    sqlx::query(sql).execute(&mut c).await.unwrap();
    c.close().await.ok();
}

async fn count(url: &str, sql: &str) -> i64 {
    let mut c = PgConnection::connect(url).await.unwrap();
    let n: i64 = sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap();
    c.close().await.ok();
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_refused_at_run_time_is_an_outage_named_as_such_and_restarts_nothing() {
    let cluster = Postgres::own();
    let super_url = cluster.database().await;
    // A role of Heldar's own, owning the database, whose password the "operator" changes.
    let db_name = super_url.rsplit('/').next().unwrap().to_string();
    admin(
        cluster.admin_url(),
        "CREATE ROLE heldar_app LOGIN PASSWORD 'first-pass'",
    )
    .await;
    admin(
        cluster.admin_url(),
        &format!("ALTER DATABASE {db_name} OWNER TO heldar_app"),
    )
    .await;
    admin(&super_url, "ALTER SCHEMA public OWNER TO heldar_app").await;
    let server_part = super_url
        .split('@')
        .nth(1)
        .expect("the URL names a host after its credentials");
    let url = format!("postgres://heldar_app:first-pass@{server_part}");

    let dir = tempfile::tempdir().unwrap();
    let snapshots = dir.path().join("data/snapshots");
    let node = OutageNode::start(&url, dir.path(), 2).await;
    wait_for("frames stored", Duration::from_secs(30), || async {
        (count(&url, "SELECT count(*) FROM snapshots").await >= 2).then_some(())
    })
    .await;

    // The operator rotates the password and ends the role's sessions.
    admin(
        cluster.admin_url(),
        "ALTER ROLE heldar_app PASSWORD 'second-pass'",
    )
    .await;
    admin(
        cluster.admin_url(),
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'heldar_app'",
    )
    .await;
    let (code, h) = wait_for(
        "the health check names the refused password",
        Duration::from_secs(20),
        || async {
            let (code, h) = health(&node.client, &node.server).await;
            h["database"]
                .as_str()?
                .contains("the database refuses Heldar's password")
                .then_some((code, h))
        },
    )
    .await;
    assert_eq!(code, 503, "{h}");
    assert!(
        h["database"].as_str().unwrap().starts_with("unavailable"),
        "{h}"
    );
    let line = node
        .server
        .wait_for_log("refuses Heldar's password", Duration::from_secs(10))
        .await;
    assert!(
        !line.contains("first-pass") && !line.contains("second-pass"),
        "{line}"
    );
    // Frames keep reaching the disk past the camera cache's TTL.
    let files = || {
        std::fs::read_dir(snapshots.join("c000"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let on_disk = files();
    wait_for(
        "frames written while refused",
        Duration::from_secs(15),
        || async { (files() >= on_disk + 4).then_some(()) },
    )
    .await;

    // The password is put back: the held rows commit.
    admin(
        cluster.admin_url(),
        "ALTER ROLE heldar_app PASSWORD 'first-pass'",
    )
    .await;
    let back = node
        .server
        .wait_for_log("the database is available again", Duration::from_secs(30))
        .await;
    assert!(back.contains("held operations committed"), "{back}");

    let (status, logs) = node.server.stop_with(Signal::SIGTERM);
    assert!(status.success(), "{status}: {logs:#?}");
    let bad: Vec<&String> = logs
        .iter()
        .filter(|l| {
            l.contains("restarting")
                || l.contains("service failed")
                || l.contains("panicked")
                || l.contains("a database write batch failed")
                || l.contains("first-pass")
                || l.contains("second-pass")
        })
        .collect();
    assert!(bad.is_empty(), "{bad:#?}");
}
