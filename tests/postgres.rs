//! PostgreSQL as Heldar's second database back-end (docs/scale-out.md "Database back-ends"),
//! against a real cluster started by `scripts/postgres-env` (tests/common/postgres.rs): the
//! test cluster itself, the schema of `migrations-postgres/` against SQLite's, and the queries
//! ported so far.

mod common;

use common::postgres::{fresh_database, Postgres};
use sqlx::Connection;

/// The cluster listens on loopback with a password, and every test gets a database of its own.
#[tokio::test]
async fn each_test_gets_its_own_database_on_a_loopback_cluster() {
    let pg = Postgres::start();
    let admin = url::Url::parse(pg.admin_url()).unwrap();
    assert_eq!(admin.host_str(), Some("127.0.0.1"));
    assert!(admin.password().is_some_and(|p| p.len() >= 16));

    let (a, b) = (fresh_database().await, fresh_database().await);
    assert_ne!(a, b);
    let mut ca = sqlx::PgConnection::connect(&a).await.unwrap();
    let mut cb = sqlx::PgConnection::connect(&b).await.unwrap();
    sqlx::query("CREATE TABLE only_here (x BIGINT)")
        .execute(&mut ca)
        .await
        .unwrap();
    let here: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = 'only_here'",
    )
    .fetch_one(&mut ca)
    .await
    .unwrap();
    let there: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = 'only_here'",
    )
    .fetch_one(&mut cb)
    .await
    .unwrap();
    assert_eq!((here, there), (1, 0));
}

