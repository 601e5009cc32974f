//! PostgreSQL as Heldar's second database back-end (docs/scale-out.md "Database back-ends"),
//! against a real cluster started by `scripts/postgres-env` (tests/common/postgres.rs): the
//! test cluster itself, the schema of `migrations-postgres/` against SQLite's, and the queries
//! ported so far.

mod common;

use std::collections::BTreeSet;

use chrono::{TimeZone, Utc};
use common::postgres::{fresh_database, Postgres};
use sqlx::{Connection, Row};

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

/// (table, column, type, not null) of every column, in one vocabulary for both engines.
type Columns = BTreeSet<(String, String, String, bool)>;

async fn sqlite_schema(dir: &std::path::Path) -> (Vec<i64>, Columns, BTreeSet<(String, String)>) {
    let url = format!("sqlite://{}?mode=rwc", dir.join("heldar.db").display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::migrate!("./migrations").run(&pool).await.unwrap();
    let versions = sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
        .fetch_all(&pool)
        .await
        .unwrap();
    let rows = sqlx::query(
        "SELECT m.name AS t, p.name AS c, p.type AS ty, p.\"notnull\" AS nn, p.pk AS pk \
         FROM sqlite_master m JOIN pragma_table_info(m.name) p \
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name <> '_sqlx_migrations'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let columns = rows
        .iter()
        .map(|r| {
            let ty = match r.get::<String, _>("ty").as_str() {
                "INTEGER" => "bigint",
                "TEXT" => "text",
                "BLOB" => "bytea",
                other => panic!("a SQLite column type the test does not know: {other}"),
            };
            // A primary key is never null in PostgreSQL; SQLite says so only when written.
            let not_null = r.get::<i64, _>("nn") != 0 || r.get::<i64, _>("pk") != 0;
            (r.get("t"), r.get("c"), ty.to_string(), not_null)
        })
        .collect();
    let indexes = sqlx::query_as(
        "SELECT tbl_name, name FROM sqlite_master WHERE type = 'index' \
         AND name NOT LIKE 'sqlite_autoindex%'",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    .into_iter()
    .collect();
    pool.close().await;
    (versions, columns, indexes)
}

async fn postgres_schema(url: &str) -> (Vec<i64>, Columns, BTreeSet<(String, String)>) {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    sqlx::migrate!("./migrations-postgres")
        .run(&pool)
        .await
        .unwrap();
    let versions = sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
        .fetch_all(&pool)
        .await
        .unwrap();
    let rows = sqlx::query(
        "SELECT table_name::text AS t, column_name::text AS c, data_type::text AS ty, \
         is_nullable::text AS nullable FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name <> '_sqlx_migrations'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let columns = rows
        .iter()
        .map(|r| {
            (
                r.get("t"),
                r.get("c"),
                r.get("ty"),
                r.get::<String, _>("nullable") == "NO",
            )
        })
        .collect();
    // Unique constraints and primary keys are indexes of their own in PostgreSQL
    // (`…_key`, `…_pkey`), automatic ones in SQLite: only the named indexes are compared.
    let indexes = sqlx::query_as(
        "SELECT tablename::text, indexname::text FROM pg_indexes WHERE schemaname = 'public' \
         AND tablename <> '_sqlx_migrations' AND indexname NOT LIKE '%\\_pkey' \
         AND indexname NOT LIKE '%\\_key'",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    .into_iter()
    .collect();
    pool.close().await;
    (versions, columns, indexes)
}

/// `migrations-postgres/` builds the schema of `migrations/`: the same versions (so
/// `_sqlx_migrations` lines up between back-ends), tables, columns, types, nullability and
/// indexes.
#[tokio::test]
async fn postgres_migrations_build_the_same_schema_as_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let (lite_versions, lite_columns, lite_indexes) = sqlite_schema(dir.path()).await;
    let (pg_versions, pg_columns, pg_indexes) = postgres_schema(&fresh_database().await).await;
    assert_eq!(pg_versions, lite_versions);
    assert!(lite_versions.contains(&17), "{lite_versions:?}");
    let only_lite: Vec<_> = lite_columns.difference(&pg_columns).collect();
    let only_pg: Vec<_> = pg_columns.difference(&lite_columns).collect();
    assert!(
        only_lite.is_empty() && only_pg.is_empty(),
        "columns differ: only on SQLite {only_lite:?}, only on PostgreSQL {only_pg:?}"
    );
    assert!(lite_columns.len() > 80, "{}", lite_columns.len());
    assert_eq!(pg_indexes, lite_indexes);
}

/// The watch index's function reads Heldar's timestamps as the instants they name, whatever the
/// session's time zone or date style (which is why it may be declared IMMUTABLE).
#[tokio::test]
async fn heldar_epoch_reads_heldar_timestamps_in_any_session_setting() {
    let url = fresh_database().await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::migrate!("./migrations-postgres")
        .run(&pool)
        .await
        .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    sqlx::query("SET TimeZone = 'America/St_Johns'")
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query("SET DateStyle = 'SQL, DMY'")
        .execute(&mut *conn)
        .await
        .unwrap();
    for t in [
        Utc.with_ymd_and_hms(2026, 3, 29, 1, 30, 0).unwrap(),
        Utc.with_ymd_and_hms(2026, 11, 29, 22, 0, 0).unwrap() + chrono::Duration::milliseconds(123),
        Utc.with_ymd_and_hms(1999, 12, 31, 23, 59, 59).unwrap(),
    ] {
        let text = heldar::models::fmt_ts(t);
        let got: f64 = sqlx::query_scalar("SELECT heldar_epoch($1)")
            .bind(&text)
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        let want = t.timestamp_millis() as f64 / 1000.0;
        assert!((got - want).abs() < 1e-6, "{text}: {got} != {want}");
    }
}
