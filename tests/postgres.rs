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

/// Run one statement (binds as given) on either back-end: the test's own raw rows (frames are
/// written by the SQLite-only writer in the application).
macro_rules! raw {
    ($pool:expr, $sql:expr $(, $b:expr)*) => {
        match $pool {
            Pool::Sqlite(p) => {
                sqlx::query($sql)$(.bind($b))*.execute(p).await.unwrap();
            }
            Pool::Postgres(p) => {
                sqlx::query($sql)$(.bind($b))*.execute(p).await.unwrap();
            }
        }
    };
}

use heldar::db::{self, DbError, Pool};
use heldar::models::{fmt_ts, CameraId, CameraSpec, Role, Schedule};

fn spec(id: &str) -> CameraSpec {
    let body = serde_json::json!({"id": id, "snapshot_url": "http://127.0.0.1:9/snap.jpg",
        "username": "admin", "password": "sealed:v1:not-really"});
    CameraSpec::from_create(serde_json::from_value(body).unwrap()).unwrap()
}

/// The ported query modules, one sequence of calls with the same expectations, run on each
/// back-end (`postgres_and_sqlite_answer_the_ported_queries_alike`).
async fn exercise_ported_queries(pool: &Pool) {
    let now = Utc.with_ymd_and_hms(2026, 11, 29, 22, 0, 0).unwrap();
    let s = |secs: i64| now + chrono::Duration::seconds(secs);

    // meta: run marks and the authentication switch.
    assert_eq!(
        db::meta::last_run(pool).await.unwrap(),
        db::meta::LastRun::Unknown
    );
    db::meta::record_run_start(pool, now).await.unwrap();
    assert_eq!(
        db::meta::last_run(pool).await.unwrap(),
        db::meta::LastRun::Unclean { started_at: now }
    );
    db::meta::record_clean_stop(pool, s(1)).await.unwrap();
    assert_eq!(
        db::meta::last_run(pool).await.unwrap(),
        db::meta::LastRun::Clean { stopped_at: s(1) }
    );
    assert_eq!(
        db::meta::set_auth_switch(pool, false, now, "a test")
            .await
            .unwrap(),
        None
    );
    let switch = db::meta::auth_switch(pool).await.unwrap().unwrap();
    assert!(!switch.on);
    assert_eq!(switch.changed_by.as_deref(), Some("a test"));
    assert_eq!(db::meta::key_check(pool).await.unwrap(), None);
    db::meta::set_key_check(pool, "check").await.unwrap();
    assert_eq!(
        db::meta::key_check(pool).await.unwrap().as_deref(),
        Some("check")
    );
    // Insert-if-absent: a second start-up's check does not replace (or trip over) the first.
    db::meta::set_key_check(pool, "another").await.unwrap();
    assert_eq!(
        db::meta::key_check(pool).await.unwrap().as_deref(),
        Some("check")
    );

    // tokens: hashes as bytes, one live token per name.
    let token = db::tokens::TokenRow {
        id: "tok1".into(),
        name: "ci".into(),
        role: Role::Admin,
        hash: vec![0, 1, 254, 255],
        created_at: now,
        revoked_at: None,
    };
    assert!(!db::tokens::any_ever(pool).await.unwrap());
    db::tokens::insert(pool, &token).await.unwrap();
    let twin = db::tokens::TokenRow {
        id: "tok2".into(),
        ..token.clone()
    };
    assert!(matches!(
        db::tokens::insert(pool, &twin).await,
        Err(DbError::Conflict(_))
    ));
    assert_eq!(
        db::tokens::get_live(pool, "tok1")
            .await
            .unwrap()
            .unwrap()
            .hash,
        token.hash
    );
    assert_eq!(db::tokens::count_live(pool).await.unwrap(), 1);
    let revoked = db::tokens::revoke(pool, "ci", s(2)).await.unwrap().unwrap();
    assert_eq!(revoked.revoked_at, Some(s(2)));
    assert!(db::tokens::get_live(pool, "tok1").await.unwrap().is_none());
    assert!(db::tokens::any_ever(pool).await.unwrap());
    assert_eq!(db::tokens::list(pool).await.unwrap().len(), 1);

    // cameras, with their status rows.
    for id in ["gate", "yard"] {
        db::cameras::insert(pool, &spec(id), now).await.unwrap();
    }
    assert!(matches!(
        db::cameras::insert(pool, &spec("gate"), now).await,
        Err(DbError::Conflict(_))
    ));
    let gate = CameraId::parse("gate").unwrap();
    let (camera, status) = db::cameras::get(pool, &gate).await.unwrap().unwrap();
    assert_eq!(camera.spec, spec("gate"));
    assert_eq!(camera.created_at, now);
    assert_eq!(status.consecutive_failures, 0);
    let renamed = CameraSpec {
        name: "Front gate".into(),
        max_bytes: Some(5_000_000_000),
        ..spec("gate")
    };
    assert!(db::cameras::update(pool, &renamed, s(3), true)
        .await
        .unwrap());
    assert!(!db::cameras::update(pool, &spec("nowhere"), s(3), false)
        .await
        .unwrap());
    assert_eq!(
        db::cameras::list(pool).await.unwrap()[0].0.spec.name,
        "Front gate"
    );
    assert_eq!(
        db::cameras::caps(pool).await.unwrap(),
        vec![(gate.clone(), 5_000_000_000)]
    );
    assert!(db::cameras::exists(pool, &gate).await.unwrap());
    assert_eq!(db::cameras::ids(pool).await.unwrap(), vec!["gate", "yard"]);
    // The snapshot URLs were stored plain (the password was "sealed"): sealing them in place.
    let plain = db::cameras::unsealed_values(pool).await.unwrap();
    assert_eq!(plain.len(), 2, "{plain:?}");
    assert!(plain.iter().all(|(_, column, _)| *column == "snapshot_url"));
    let sealed: Vec<_> = plain
        .into_iter()
        .map(|(id, column, v)| (id, column, format!("sealed:v1:{v}")))
        .collect();
    db::cameras::store_sealed(pool, &sealed).await.unwrap();
    assert!(db::cameras::unsealed_values(pool).await.unwrap().is_empty());

    // schedules: paging, the offline watch's look, changes since.
    let mut due = Schedule::every("s1".into(), gate.clone(), 5, s(3), now);
    db::schedules::insert(pool, &due).await.unwrap();
    let mut idle = Schedule::every(
        "s2".into(),
        CameraId::parse("yard").unwrap(),
        60,
        s(0),
        s(1),
    );
    idle.next_due_at = None;
    db::schedules::insert(pool, &idle).await.unwrap();
    let orphan = Schedule::every("s3".into(), CameraId::parse("gone").unwrap(), 5, s(0), s(1));
    assert!(matches!(
        db::schedules::insert(pool, &orphan).await,
        Err(DbError::NoParent(_))
    ));
    let mut watched = db::schedules::watched_intervals(pool, now).await.unwrap();
    watched.sort();
    assert_eq!(
        watched,
        vec![("gate".to_string(), 5), ("yard".to_string(), 60)]
    );
    let first = db::schedules::page_all(pool, None, Some(true), None, 1)
        .await
        .unwrap();
    assert_eq!((first.total, first.items[0].id.as_str()), (2, "s1"));
    let second = db::schedules::page_all(pool, None, Some(true), first.next.as_ref(), 1)
        .await
        .unwrap();
    assert_eq!((second.items[0].id.as_str(), second.next), ("s2", None));
    assert_eq!(
        db::schedules::page_all(pool, Some(&gate), None, None, 10)
            .await
            .unwrap()
            .total,
        1
    );
    due.retention_hours = Some(48);
    due.enabled = false;
    due.updated_at = s(10);
    assert!(db::schedules::update(pool, &due).await.unwrap());
    assert_eq!(db::schedules::get(pool, "s1").await.unwrap().unwrap(), due);
    assert_eq!(db::schedules::list_enabled(pool).await.unwrap().len(), 1);
    let changed = db::schedules::list_changed_since(pool, s(5)).await.unwrap();
    assert_eq!(
        changed.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        ["s1"]
    );
    assert_eq!(
        db::schedules::retention_overrides(pool).await.unwrap(),
        vec![("s1".to_string(), 48)]
    );

    // nodes and camera leases: a taken camera is not taken twice.
    for (id, beat) in [("a", now), ("b", now)] {
        let node = db::nodes::NodeRow {
            id: id.into(),
            name: "host".into(),
            version: "test".into(),
            started_at: now,
            heartbeat_at: beat,
            draining: false,
        };
        db::nodes::register(pool, &node).await.unwrap();
    }
    let both = vec!["gate".to_string(), "yard".to_string()];
    assert_eq!(
        db::nodes::acquire(pool, "a", &both, now, s(15))
            .await
            .unwrap(),
        both
    );
    assert!(db::nodes::acquire(pool, "b", &both, s(1), s(16))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(db::nodes::renew(pool, "a", s(2), s(17)).await.unwrap(), 2);
    assert_eq!(
        db::nodes::release(pool, "a", Some(&both[1..]))
            .await
            .unwrap(),
        1
    );
    assert_eq!(db::nodes::free(pool, s(2), 10).await.unwrap(), vec!["yard"]);
    assert_eq!(
        db::nodes::acquire(pool, "b", &both, s(3), s(18))
            .await
            .unwrap(),
        vec!["yard"]
    );
    assert_eq!(
        db::nodes::leases(pool, s(3)).await.unwrap(),
        vec![
            ("gate".to_string(), "a".to_string()),
            ("yard".to_string(), "b".to_string())
        ]
    );
    assert!(db::nodes::heartbeat(pool, "b", s(4), true).await.unwrap());
    assert_eq!(db::nodes::count_live(pool, now).await.unwrap(), 1);
    assert!(db::nodes::list(pool).await.unwrap()[1].draining);
    assert_eq!(
        db::nodes::held(pool, "a", s(18)).await.unwrap(),
        Vec::<String>::new()
    );

    // snapshots: rows as the writer writes them; pages, sums, retention's reads.
    for (i, size) in [(0, 1000_i64), (1, 2000), (2, 3000)] {
        let taken = fmt_ts(s(i));
        raw!(
            pool,
            "INSERT INTO snapshots (id, camera_id, schedule_id, path, taken_at, size_bytes, \
             width, height, created_at, tag) VALUES ($1, 'gate', 's1', $2, $3, $4, 640, 480, $3, $5)",
            format!("f{i}"),
            format!("gate/{i}.jpg"),
            taken,
            size,
            (i == 2).then_some("doorbell")
        );
    }
    let page = db::snapshots::page(pool, &gate, None, None, None, None, 2)
        .await
        .unwrap();
    assert_eq!(page.total, 3);
    assert_eq!(
        page.items.iter().map(|f| f.id.as_str()).collect::<Vec<_>>(),
        ["f2", "f1"]
    );
    let rest = db::snapshots::page(pool, &gate, None, None, None, page.next.as_ref(), 2)
        .await
        .unwrap();
    assert_eq!(
        (rest.items.len(), rest.items[0].id.as_str(), rest.next),
        (1, "f0", None)
    );
    let tagged = db::snapshots::page(pool, &gate, None, None, Some("doorbell"), None, 5)
        .await
        .unwrap();
    assert_eq!((tagged.total, tagged.items[0].width), (1, Some(640)));
    assert_eq!(db::snapshots::total_bytes(pool).await.unwrap(), 6000);
    assert_eq!(
        db::snapshots::camera_bytes(pool, &gate).await.unwrap(),
        6000
    );
    let per = db::snapshots::per_camera(pool).await.unwrap();
    assert_eq!(
        (per[0].frames, per[0].bytes, per[0].newest_at),
        (3, 6000, Some(s(2)))
    );
    let oldest = db::snapshots::oldest(pool, Some(s(2)), 1, 10)
        .await
        .unwrap();
    assert_eq!(
        oldest.iter().map(|f| f.id.as_str()).collect::<Vec<_>>(),
        ["f1"]
    );
    assert!(db::snapshots::oldest_by_global_age(pool, s(9), 0, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        db::snapshots::oldest_of_schedule(pool, "s1", s(9), 0, 10)
            .await
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        db::snapshots::latest(pool, &gate)
            .await
            .unwrap()
            .unwrap()
            .id,
        "f2"
    );
    assert_eq!(
        db::snapshots::by_path(pool, "gate/1.jpg")
            .await
            .unwrap()
            .unwrap()
            .size_bytes,
        2000
    );
    db::snapshots::delete(pool, "f1").await.unwrap();
    assert_eq!(
        db::snapshots::camera_paths(pool, &gate, None, None)
            .await
            .unwrap()
            .len(),
        2
    );

    // outages: one open per camera, failures only grow, closing once.
    let outage = heldar::models::integrations::Outage {
        id: "out1".into(),
        camera_id: gate.clone(),
        started_at: s(5),
        ended_at: None,
        first_error: Some("timed out".into()),
        last_error: Some("timed out".into()),
        failures: 3,
        duration_s: None,
    };
    db::outages::open(pool, &outage).await.unwrap();
    let twin = heldar::models::integrations::Outage {
        id: "out2".into(),
        ..outage.clone()
    };
    assert!(matches!(
        db::outages::open(pool, &twin).await,
        Err(DbError::Conflict(_))
    ));
    db::outages::note_failure(pool, "out1", "refused", 5)
        .await
        .unwrap();
    db::outages::note_failure(pool, "out1", "refused again", 4)
        .await
        .unwrap();
    assert_eq!(db::outages::open_ones(pool).await.unwrap()[0].failures, 5);
    assert!(db::outages::close(pool, "out1", s(65), None, 2)
        .await
        .unwrap());
    assert!(!db::outages::close(pool, "out1", s(66), None, 2)
        .await
        .unwrap());
    let closed = db::outages::get(pool, "out1").await.unwrap().unwrap();
    assert_eq!(
        (closed.failures, closed.last_error.as_deref()),
        (5, Some("refused again"))
    );
    assert_eq!(closed.duration_s, Some(60.0));
    let filter = db::outages::Filter {
        camera: Some(gate.clone()),
        open: Some(false),
        ..Default::default()
    };
    let listed = db::outages::page(pool, &filter, None, 10).await.unwrap();
    assert_eq!((listed.total, listed.items[0].id.as_str()), (1, "out1"));
    let open_only = db::outages::Filter {
        open: Some(true),
        ..Default::default()
    };
    assert_eq!(
        db::outages::page(pool, &open_only, None, 10)
            .await
            .unwrap()
            .total,
        0
    );

    // webhooks and their delivery log (rewritten in place as attempts go on).
    let hook_id =
        heldar::models::integrations::WebhookId::parse(&format!("whk_{}", "0".repeat(32))).unwrap();
    let hook = db::webhooks::WebhookRow {
        id: hook_id.clone(),
        url: "http://127.0.0.1:9/hook".into(),
        events: vec!["frame.stored".into()],
        camera_id: Some(gate.clone()),
        sealed_secret: "sealed:v1:x".into(),
        enabled: true,
        created_at: now,
        updated_at: now,
    };
    db::webhooks::insert(pool, &hook).await.unwrap();
    let stray = db::webhooks::WebhookRow {
        id: heldar::models::integrations::WebhookId::parse(&format!("whk_{}", "1".repeat(32)))
            .unwrap(),
        camera_id: Some(CameraId::parse("gone").unwrap()),
        ..hook.clone()
    };
    assert!(matches!(
        db::webhooks::insert(pool, &stray).await,
        Err(DbError::NoParent(_))
    ));
    let mut delivery = heldar::models::integrations::Delivery {
        id: "d1".into(),
        webhook_id: hook_id.clone(),
        event_id: "e1".into(),
        event_type: "frame.stored".into(),
        status: heldar::models::integrations::DeliveryStatus::Pending,
        attempts: 1,
        response_code: Some(500),
        last_error: Some("500".into()),
        created_at: now,
        last_attempt_at: Some(now),
        next_attempt_at: Some(s(2)),
        finished_at: None,
    };
    db::webhooks::save_delivery(pool, &delivery, true)
        .await
        .unwrap();
    delivery.attempts = 2;
    delivery.status = heldar::models::integrations::DeliveryStatus::Delivered;
    delivery.response_code = Some(204);
    db::webhooks::save_delivery(pool, &delivery, false)
        .await
        .unwrap();
    let log = db::webhooks::deliveries(pool, &hook_id, 10).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!((log[0].attempts, log[0].response_code), (2, Some(204)));
    assert_eq!(
        db::webhooks::get(pool, &hook_id)
            .await
            .unwrap()
            .unwrap()
            .events,
        hook.events
    );
    assert_eq!(db::webhooks::list(pool).await.unwrap().len(), 1);

    // Deleting a camera takes its schedules, frames and lease with it.
    assert!(db::cameras::delete(pool, &gate).await.unwrap());
    assert!(db::snapshots::all_paths(pool).await.unwrap().is_empty());
    assert!(db::schedules::get(pool, "s1").await.unwrap().is_none());
    assert!(db::webhooks::list(pool).await.unwrap().is_empty());
    assert_eq!(db::nodes::count_cameras(pool).await.unwrap(), 1);
    db::ping(pool).await.unwrap();
}

/// A migrated SQLite file (in the returned folder, kept while it lives) and a fresh PostgreSQL
/// database: the two engines the same calls are run against.
async fn both_engines() -> (tempfile::TempDir, Pool, Pool) {
    let dir = tempfile::tempdir().unwrap();
    let lite = db::connect(&format!(
        "sqlite://{}",
        dir.path().join("heldar.db").display()
    ))
    .await
    .unwrap();
    let pg = db::connect(&fresh_database().await).await.unwrap();
    (dir, lite, pg)
}

/// The same calls with the same answers on SQLite and on PostgreSQL.
#[tokio::test]
async fn postgres_and_sqlite_answer_the_ported_queries_alike() {
    let (_dir, lite, pg) = both_engines().await;
    assert_eq!(lite.backend(), db::Backend::Sqlite);
    exercise_ported_queries(&lite).await;
    assert_eq!(pg.backend(), db::Backend::Postgres);
    exercise_ported_queries(&pg).await;
}

use heldar::db::jobs::Outcome;
use heldar::models::timelapse::{
    Job, JobId, JobState, RuleId, RulePeriod, Timelapse, TimelapseId, TimelapseRule, TimelapseSpec,
    VideoFormat,
};

fn job(camera: &str, created: chrono::DateTime<Utc>, rule: Option<&RuleId>) -> Job {
    Job {
        id: JobId::generate(),
        camera_id: CameraId::parse(camera).unwrap(),
        state: JobState::Queued,
        spec: TimelapseSpec {
            from: created - chrono::Duration::hours(1),
            to: created,
            fps: 25,
            width: Some(640),
            every_nth: 2,
            format: VideoFormat::Mp4,
        },
        rule_id: rule.map(|r| r.as_str().to_string()),
        frames_done: 0,
        frames_total: 0,
        output_bytes: 0,
        error: None,
        code: None,
        timelapse_id: None,
        created_at: created,
        started_at: None,
        finished_at: None,
    }
}

fn video(camera: &str, created: chrono::DateTime<Utc>, size: i64) -> Timelapse {
    let id = TimelapseId::generate();
    Timelapse {
        file: format!("{camera}/{}.mp4", id.as_str()),
        id,
        camera_id: CameraId::parse(camera).unwrap(),
        rule_id: None,
        from: created - chrono::Duration::hours(1),
        to: created,
        fps: 25,
        width: 640,
        height: 480,
        frames: 90,
        format: VideoFormat::Mp4,
        size_bytes: size,
        created_at: created,
    }
}

/// `db::jobs` and `db::timelapse_rules`, one sequence of calls with the same expectations, run
/// on each back-end.
async fn exercise_jobs_and_rules(pool: &Pool) {
    let now = Utc.with_ymd_and_hms(2026, 11, 29, 22, 0, 0).unwrap();
    let s = |secs: i64| now + chrono::Duration::seconds(secs);
    for id in ["gate", "yard"] {
        db::cameras::insert(pool, &spec(id), now).await.unwrap();
    }
    let gate = CameraId::parse("gate").unwrap();

    // Queue, read back, list with and without filters.
    let first = job("gate", s(1), None);
    let second = job("yard", s(2), None);
    db::jobs::insert(pool, &first).await.unwrap();
    assert!(db::jobs::insert_bounded(pool, &second, 2).await.unwrap());
    // The queue holds two: a third is refused, and nothing is written.
    assert!(!db::jobs::insert_bounded(pool, &job("gate", s(3), None), 2)
        .await
        .unwrap());
    assert!(matches!(
        db::jobs::insert(pool, &job("nowhere", s(3), None)).await,
        Err(DbError::NoParent(_))
    ));
    assert_eq!(
        db::jobs::get(pool, first.id.as_str()).await.unwrap(),
        Some(first.clone())
    );
    let all = db::jobs::list(pool, None, None, 10).await.unwrap();
    assert_eq!(all, vec![second.clone(), first.clone()]);
    assert_eq!(
        db::jobs::list(pool, Some(&gate), Some(JobState::Queued), 10)
            .await
            .unwrap(),
        vec![first.clone()]
    );
    assert!(db::jobs::list(pool, None, Some(JobState::Running), 10)
        .await
        .unwrap()
        .is_empty());

    // The oldest queued job is claimed first, each once.
    let claimed = db::jobs::claim_next(pool, s(10), "node-a")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, first.id);
    assert_eq!(
        (claimed.state, claimed.started_at),
        (JobState::Running, Some(s(10)))
    );
    assert_eq!(
        db::jobs::get(pool, first.id.as_str()).await.unwrap(),
        Some(claimed.clone())
    );
    let next = db::jobs::claim_next(pool, s(11), "node-a")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next.id, second.id);
    assert_eq!(
        db::jobs::claim_next(pool, s(12), "node-a").await.unwrap(),
        None
    );
    assert_eq!(db::jobs::running(pool).await.unwrap().len(), 2);
    db::jobs::set_total(pool, &first.id, 45).await.unwrap();

    // The first ends with a video (job and video in one transaction); the second is cancelled,
    // after which its own outcome no longer wins.
    let tl = video("gate", s(20), 5000);
    let done = Outcome {
        state: JobState::Done,
        frames_done: 45,
        output_bytes: 5000,
        error: None,
        code: None,
        at: s(20),
    };
    assert!(db::jobs::complete(pool, &first.id, &tl, &done)
        .await
        .unwrap());
    let first_now = db::jobs::get(pool, first.id.as_str())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first_now.state, JobState::Done);
    assert_eq!(first_now.frames_total, 45);
    assert_eq!(first_now.timelapse_id.as_deref(), Some(tl.id.as_str()));
    let cancel = Outcome {
        state: JobState::Cancelled,
        frames_done: 0,
        output_bytes: 0,
        error: Some("cancelled by a test".into()),
        code: Some("cancelled".into()),
        at: s(21),
    };
    assert!(db::jobs::finish(
        pool,
        &second.id,
        &[JobState::Queued, JobState::Running],
        &cancel
    )
    .await
    .unwrap());
    // A video for the cancelled job is not recorded.
    let late = video("yard", s(22), 7000);
    assert!(!db::jobs::complete(pool, &second.id, &late, &done)
        .await
        .unwrap());
    assert_eq!(db::jobs::video(pool, late.id.as_str()).await.unwrap(), None);

    // Videos: by id, by file, per camera, oldest first, totals, deletion.
    let other = video("gate", s(30), 3000);
    db::jobs::insert(pool, &job("gate", s(29), None))
        .await
        .unwrap();
    let third = db::jobs::claim_next(pool, s(29), "node-a")
        .await
        .unwrap()
        .unwrap();
    assert!(db::jobs::complete(pool, &third.id, &other, &done)
        .await
        .unwrap());
    assert_eq!(
        db::jobs::video(pool, tl.id.as_str()).await.unwrap(),
        Some(tl.clone())
    );
    assert_eq!(
        db::jobs::video_by_file(pool, &tl.file).await.unwrap(),
        Some(tl.clone())
    );
    assert_eq!(
        db::jobs::videos(pool, &gate, 10).await.unwrap(),
        vec![other.clone(), tl.clone()]
    );
    assert_eq!(
        db::jobs::oldest_videos(pool, None, 0, 10).await.unwrap(),
        vec![tl.clone(), other.clone()]
    );
    assert_eq!(
        db::jobs::oldest_videos(pool, Some(s(25)), 0, 10)
            .await
            .unwrap(),
        vec![tl.clone()]
    );
    assert_eq!(
        db::jobs::oldest_videos(pool, None, 1, 10).await.unwrap(),
        vec![other.clone()]
    );
    assert_eq!(db::jobs::video_totals(pool).await.unwrap(), (2, 8000));
    assert!(db::jobs::delete_video(pool, tl.id.as_str()).await.unwrap());
    assert!(!db::jobs::delete_video(pool, tl.id.as_str()).await.unwrap());
    assert_eq!(db::jobs::video_totals(pool).await.unwrap(), (1, 3000));

    // Frames of a range, as an export reads them.
    for i in 0..3_i64 {
        raw!(
            pool,
            "INSERT INTO snapshots (id, camera_id, path, taken_at, size_bytes, width, height,              created_at) VALUES ($1, 'gate', $2, $3, 100, 640, 480, $3)",
            format!("f{i}"),
            format!("gate/{i}.jpg"),
            fmt_ts(s(100 + i))
        );
    }
    assert_eq!(
        db::jobs::count_frames(pool, &gate, s(100), s(102))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        db::jobs::frames_in(pool, &gate, s(101), s(200))
            .await
            .unwrap(),
        vec![
            ("gate/1.jpg".to_string(), Some(640), Some(480)),
            ("gate/2.jpg".to_string(), Some(640), Some(480))
        ]
    );

    // Retention of finished jobs.
    // Two ended at s(20) (done), one at s(21) (cancelled); the rule's job below is queued.
    assert_eq!(db::jobs::prune_finished(pool, s(21)).await.unwrap(), 2);
    assert_eq!(db::jobs::prune_finished(pool, s(1000)).await.unwrap(), 1);
    assert!(db::jobs::list(pool, None, None, 10)
        .await
        .unwrap()
        .is_empty());

    // Rules: insert, read, list, change.
    let mut rule = TimelapseRule {
        id: RuleId::generate(),
        camera_id: gate.clone(),
        period: RulePeriod::Daily,
        at: chrono::NaiveTime::from_hms_opt(0, 30, 0).unwrap(),
        time_zone: chrono_tz::Europe::Berlin,
        weekday: None,
        fps: 30,
        width: None,
        format: VideoFormat::Webm,
        enabled: true,
        covered_until: now,
        created_at: now,
        updated_at: now,
    };
    db::timelapse_rules::insert(pool, &rule).await.unwrap();
    let mut stray = rule.clone();
    stray.id = RuleId::generate();
    stray.camera_id = CameraId::parse("nowhere").unwrap();
    assert!(matches!(
        db::timelapse_rules::insert(pool, &stray).await,
        Err(DbError::NoParent(_))
    ));
    assert_eq!(
        db::timelapse_rules::get(pool, rule.id.as_str())
            .await
            .unwrap(),
        Some(rule.clone())
    );
    rule.fps = 10;
    rule.updated_at = s(1);
    assert!(db::timelapse_rules::update(pool, &rule).await.unwrap());
    assert_eq!(
        db::timelapse_rules::list_for_camera(pool, &gate)
            .await
            .unwrap(),
        vec![rule.clone()]
    );
    assert_eq!(
        db::timelapse_rules::list_enabled(pool).await.unwrap(),
        vec![rule.clone()]
    );

    // A claim moves `covered_until` and queues the period's job together; a claim from a stale
    // read changes nothing.
    let day = now + chrono::Duration::days(1);
    let made = job("gate", s(40), Some(&rule.id));
    assert!(
        db::timelapse_rules::claim(pool, &rule.id, now, day, Some(&made))
            .await
            .unwrap()
    );
    assert_eq!(
        db::jobs::get(pool, made.id.as_str()).await.unwrap(),
        Some(made.clone())
    );
    let again = job("gate", s(41), Some(&rule.id));
    assert!(
        !db::timelapse_rules::claim(pool, &rule.id, now, day, Some(&again))
            .await
            .unwrap()
    );
    assert_eq!(db::jobs::get(pool, again.id.as_str()).await.unwrap(), None);
    // One transaction: a job that cannot be written (its id taken) leaves the period unclaimed.
    let next_day = day + chrono::Duration::days(1);
    let mut clash = job("gate", s(42), Some(&rule.id));
    clash.id = made.id.clone();
    assert!(
        db::timelapse_rules::claim(pool, &rule.id, day, next_day, Some(&clash))
            .await
            .is_err()
    );
    let read = db::timelapse_rules::get(pool, rule.id.as_str())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.covered_until, day);
    // A claim without a job (a period skipped as missed) moves the rule alone.
    assert!(
        db::timelapse_rules::claim(pool, &rule.id, day, next_day, None)
            .await
            .unwrap()
    );
    rule.enabled = false;
    assert!(db::timelapse_rules::update(pool, &rule).await.unwrap());
    assert!(db::timelapse_rules::list_enabled(pool)
        .await
        .unwrap()
        .is_empty());
    assert!(db::timelapse_rules::delete(pool, rule.id.as_str())
        .await
        .unwrap());
    // The rule's job stays, without its rule.
    let orphan = db::jobs::get(pool, made.id.as_str())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(orphan.rule_id, None);
}

/// The timelapse jobs and rules answer alike on SQLite and on PostgreSQL.
#[tokio::test]
async fn postgres_and_sqlite_answer_the_job_and_rule_queries_alike() {
    let (_dir, lite, pg) = both_engines().await;
    exercise_jobs_and_rules(&lite).await;
    exercise_jobs_and_rules(&pg).await;
}

/// Jobs record the node that claimed them, and recovery (`db::jobs::orphaned`) offers only
/// running jobs no live node runs: this node's past runs', a dead node's, a node that is gone,
/// and jobs from before nodes were recorded — never a live node's. On both back-ends.
#[tokio::test]
async fn recovery_never_offers_a_job_another_live_node_runs() {
    let (_dir, lite, pg) = both_engines().await;
    orphans_on(&lite).await;
    orphans_on(&pg).await;
}

async fn orphans_on(pool: &db::Pool) {
    let now = Utc.with_ymd_and_hms(2026, 11, 30, 6, 0, 0).unwrap();
    db::cameras::insert(pool, &spec("gate"), now).await.unwrap();
    for (id, heartbeat) in [("live", now), ("dead", now - chrono::Duration::hours(1))] {
        db::nodes::register(
            pool,
            &db::nodes::NodeRow {
                id: id.into(),
                name: "box".into(),
                version: "test".into(),
                started_at: heartbeat,
                heartbeat_at: heartbeat,
                draining: false,
            },
        )
        .await
        .unwrap();
    }
    // One job claimed by each of: a live node, a dead one, this node, a node with no row.
    let mut by = std::collections::BTreeMap::new();
    for (i, node) in ["live", "dead", "me", "gone"].into_iter().enumerate() {
        let j = job("gate", now + chrono::Duration::milliseconds(i as i64), None);
        db::jobs::insert(pool, &j).await.unwrap();
        let claimed = db::jobs::claim_next(pool, now, node)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(claimed.id, j.id);
        by.insert(node, j.id.as_str().to_string());
    }
    // And one queued, never claimed.
    db::jobs::insert(pool, &job("gate", now + chrono::Duration::seconds(9), None))
        .await
        .unwrap();
    let live_since = now - chrono::Duration::seconds(15);
    let orphaned: BTreeSet<String> = db::jobs::orphaned(pool, "me", live_since)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.id.as_str().to_string())
        .collect();
    let want: BTreeSet<String> = ["dead", "me", "gone"]
        .iter()
        .map(|n| by[n].clone())
        .collect();
    assert_eq!(orphaned, want);
}

/// Several nodes claiming from one PostgreSQL queue at once: every job is handed to exactly one
/// of them (`FOR UPDATE SKIP LOCKED`), and none is left behind.
#[tokio::test]
async fn concurrent_claimers_on_postgres_get_different_jobs() {
    let url = fresh_database().await;
    let now = Utc.with_ymd_and_hms(2026, 11, 29, 22, 0, 0).unwrap();
    let setup = db::connect(&url).await.unwrap();
    db::cameras::insert(&setup, &spec("gate"), now)
        .await
        .unwrap();
    const JOBS: i64 = 40;
    for i in 0..JOBS {
        let j = job("gate", now + chrono::Duration::milliseconds(i), None);
        db::jobs::insert(&setup, &j).await.unwrap();
    }
    // Four "nodes", each its own pool, each with two workers claiming until the queue is empty.
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(8));
    let mut workers = Vec::new();
    for _node in 0..4 {
        let pool = db::connect(&url).await.unwrap();
        for _ in 0..2 {
            let (pool, barrier) = (pool.clone(), barrier.clone());
            workers.push(tokio::spawn(async move {
                barrier.wait().await;
                let mut got = Vec::new();
                while let Some(j) = db::jobs::claim_next(&pool, now, "node-a").await.unwrap() {
                    got.push(j.id.as_str().to_string());
                }
                got
            }));
        }
    }
    let mut claimed = Vec::new();
    for w in workers {
        claimed.extend(w.await.unwrap());
    }
    let distinct: BTreeSet<_> = claimed.iter().cloned().collect();
    assert_eq!(
        claimed.len() as i64,
        JOBS,
        "a job was claimed twice: {claimed:?}"
    );
    assert_eq!(distinct.len() as i64, JOBS);
    assert_eq!(db::jobs::running(&setup).await.unwrap().len() as i64, JOBS);
}

/// Two nodes claiming one rule's period at once on PostgreSQL: one wins, and exactly one job is
/// queued for the period.
#[tokio::test]
async fn concurrent_rule_claims_on_postgres_queue_one_job() {
    let url = fresh_database().await;
    let now = Utc.with_ymd_and_hms(2026, 11, 29, 22, 0, 0).unwrap();
    let setup = db::connect(&url).await.unwrap();
    db::cameras::insert(&setup, &spec("gate"), now)
        .await
        .unwrap();
    let rule = TimelapseRule {
        id: RuleId::generate(),
        camera_id: CameraId::parse("gate").unwrap(),
        period: RulePeriod::Daily,
        at: chrono::NaiveTime::from_hms_opt(0, 30, 0).unwrap(),
        time_zone: chrono_tz::UTC,
        weekday: None,
        fps: 30,
        width: None,
        format: VideoFormat::Mp4,
        enabled: true,
        covered_until: now,
        created_at: now,
        updated_at: now,
    };
    db::timelapse_rules::insert(&setup, &rule).await.unwrap();
    let day = now + chrono::Duration::days(1);
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(6));
    let mut nodes = Vec::new();
    for _ in 0..6 {
        let pool = db::connect(&url).await.unwrap();
        let (rule_id, barrier) = (rule.id.clone(), barrier.clone());
        nodes.push(tokio::spawn(async move {
            let j = job("gate", now, Some(&rule_id));
            barrier.wait().await;
            db::timelapse_rules::claim(&pool, &rule_id, now, day, Some(&j))
                .await
                .unwrap()
        }));
    }
    let mut wins = 0;
    for n in nodes {
        wins += i32::from(n.await.unwrap());
    }
    assert_eq!(wins, 1);
    assert_eq!(
        db::jobs::list(&setup, None, None, 100).await.unwrap().len(),
        1
    );
}

/// PostgreSQL answers the offline watch's look from its expression index (migration 0017), as
/// SQLite does: the planner is told to avoid table scans, and must still find a plan through
/// the index rather than fall back to one.
#[tokio::test]
async fn postgres_answers_the_watch_look_from_its_index() {
    let url = fresh_database().await;
    drop(db::connect(&url).await.unwrap());
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("SET enable_seqscan = off")
        .execute(&mut conn)
        .await
        .unwrap();
    let plan: Vec<String> = sqlx::query_scalar(&format!(
        "EXPLAIN {}",
        db::schedules::watched_sql(db::Backend::Postgres)
    ))
    .bind("2026-11-29T22:00:00.000Z")
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let plan = plan.join("\n");
    assert!(plan.contains("snapshot_schedules_watch"), "{plan}");
    assert!(plan.contains("heldar_epoch(next_due_at)"), "{plan}");
}

/// `heldar serve` on a PostgreSQL server that does not answer stops with a sentence naming the
/// database, its password masked (`heldar serve` on a live one: tests/postgres_serve.rs).
#[tokio::test]
async fn serve_on_an_unreachable_postgres_names_it_without_the_password() {
    let url = fresh_database().await;
    let password = url::Url::parse(&url)
        .unwrap()
        .password()
        .unwrap()
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on port 1.
    let unreachable = url.replace(
        &format!(":{}/", url::Url::parse(&url).unwrap().port().unwrap()),
        ":1/",
    );
    let out = common::heldar_cmd(dir.path())
        .args(["serve"])
        .env("HELDAR_DATABASE_URL", &unreachable)
        .env("HELDAR_API_PORT", "0")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("cannot open the database postgres://heldar:***@127.0.0.1:1/"),
        "{text}"
    );
    assert!(!text.contains(&password), "the password is shown: {text}");
}

/// The client-side commands that open the database work on PostgreSQL: a token made with
/// `heldar token create` is in PostgreSQL's table and listed back.
#[tokio::test]
async fn heldar_token_works_on_postgres() {
    let url = fresh_database().await;
    let dir = tempfile::tempdir().unwrap();
    let out = common::heldar_cmd(dir.path())
        .args(["token", "create", "--name", "ci", "--role", "admin"])
        .env("HELDAR_DATABASE_URL", &url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let (name, role): (String, String) = sqlx::query_as("SELECT name, role FROM api_tokens")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!((name.as_str(), role.as_str()), ("ci", "admin"));
    let out = common::heldar_cmd(dir.path())
        .args(["token", "list", "--json"])
        .env("HELDAR_DATABASE_URL", &url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed[0]["name"], "ci");
}

/// TLS to PostgreSQL, asked for in the URL as libpq reads it: `sslmode=require` encrypts, and
/// `sslmode=verify-full` with `sslrootcert=` checks the server's certificate against the CA
/// given (the test cluster's throw-away CA, from scripts/postgres-env). A CA that did not sign
/// the server's certificate stops `heldar serve` with a sentence naming the database, its
/// password masked.
#[tokio::test]
async fn tls_to_postgres_is_used_when_asked_and_checked_against_the_given_ca() {
    let url = fresh_database().await;
    let password = url::Url::parse(&url)
        .unwrap()
        .password()
        .unwrap()
        .to_string();
    let mut admin = sqlx::PgConnection::connect(Postgres::start().admin_url())
        .await
        .unwrap();
    let data_dir: String = sqlx::query_scalar("SHOW data_directory")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    let ca = std::path::Path::new(&data_dir).join("root.crt");
    assert!(ca.exists(), "the test cluster has no TLS certificate");
    for with in [
        "sslmode=require".to_string(),
        format!("sslmode=verify-full&sslrootcert={}", ca.display()),
    ] {
        let pool = db::connect(&format!("{url}?{with}")).await.unwrap();
        let encrypted: bool =
            sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                .fetch_one(pool.postgres().unwrap())
                .await
                .unwrap();
        assert!(encrypted, "{with}: the connection is not encrypted");
        pool.close().await;
    }

    let dir = tempfile::tempdir().unwrap();
    let other = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    let wrong = dir.path().join("other-ca.crt");
    std::fs::write(&wrong, other.cert.pem()).unwrap();
    let out = common::heldar_cmd(dir.path())
        .args(["serve"])
        .env(
            "HELDAR_DATABASE_URL",
            format!("{url}?sslmode=verify-full&sslrootcert={}", wrong.display()),
        )
        .env("HELDAR_API_PORT", "0")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("cannot open the database postgres://heldar:***@127.0.0.1:"),
        "{text}"
    );
    assert!(!text.contains(&password), "the password is shown: {text}");
}

/// A port nothing listens on: bound, then closed, so the connection is refused at once.
fn refused_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// `heldar serve` on a PostgreSQL port that refuses connections stops at once (not after the
/// pool's 10 s wait), naming the server and the cause, without the password; the driver's
/// message is not repeated ("X: X").
#[test]
fn serve_on_a_refused_postgres_port_names_the_server_and_the_cause_at_once() {
    let port = refused_port();
    let dir = tempfile::tempdir().unwrap();
    let began = std::time::Instant::now();
    let out = common::heldar_cmd(dir.path())
        .args(["serve"])
        .env(
            "HELDAR_DATABASE_URL",
            format!("postgres://heldar:s3cretpw@127.0.0.1:{port}/heldar"),
        )
        .env("HELDAR_API_PORT", "0")
        .output()
        .unwrap();
    let took = began.elapsed();
    let text = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains(&format!(
            "cannot connect to the PostgreSQL server at 127.0.0.1:{port}: connection refused"
        )),
        "{text}"
    );
    assert!(!text.contains("pool timed out"), "{text}");
    assert!(!text.contains("s3cretpw"), "the password is shown: {text}");
    assert!(
        took < std::time::Duration::from_secs(5),
        "a refused connection waited {took:?}"
    );
    assert!(
        !dir.path().join("data").exists(),
        "nothing is created before the database is known to open"
    );
}

/// A `sslrootcert=` file that does not exist is named in the start-up error.
#[test]
fn a_missing_sslrootcert_file_is_named() {
    let port = refused_port();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing").join("root.crt");
    let out = common::heldar_cmd(dir.path())
        .args(["serve"])
        .env(
            "HELDAR_DATABASE_URL",
            format!(
                "postgres://heldar:s3cretpw@127.0.0.1:{port}/heldar?sslmode=verify-full&sslrootcert={}",
                missing.display()
            ),
        )
        .env("HELDAR_API_PORT", "0")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains(&format!(
            "cannot read the CA certificate file {} (sslrootcert in the database URL): no such file",
            missing.display()
        )),
        "{text}"
    );
    assert!(!text.contains("s3cretpw"), "the password is shown: {text}");
}

/// issue 19: fresh nodes started at once on one new PostgreSQL database agree on one sealing key.
/// Those sharing a key file path (one data directory or a shared mount) all start, with the key
/// whose check the database stored; those with a key file path of their own are refused with a
/// sentence saying another node made the key (not "restore it from a backup": there are no
/// cameras yet) and leave no key file behind. No start sees a raw duplicate-key error.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fresh_nodes_started_at_once_on_a_new_database_agree_on_one_key() {
    let url = fresh_database().await;
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("shared").join("secret.key");
    let mut pools = Vec::new();
    for _ in 0..8 {
        pools.push(heldar::db::connect(&url).await.unwrap());
    }
    // Six at once sharing one key file path; then, once the key is made, two with key file
    // paths of their own (a fleet whose operator did not copy the key).
    let start = |i: usize, pool: heldar::db::Pool| {
        let path = if i < 6 {
            shared.clone()
        } else {
            dir.path().join(format!("own-{i}")).join("secret.key")
        };
        tokio::spawn(async move {
            let r = heldar::ops::secrets::open_sealer(&path, &pool).await;
            (path, r.map_err(|e| format!("{e:#}")))
        })
    };
    let shared_starts: Vec<_> = (0..6).map(|i| start(i, pools[i].clone())).collect();
    let mut sealers = Vec::new();
    for (i, s) in shared_starts.into_iter().enumerate() {
        let (_, r) = s.await.unwrap();
        sealers.push(r.unwrap_or_else(|e| panic!("start {i} sharing the key file failed: {e}")));
    }
    let own_starts: Vec<_> = (6..8).map(|i| start(i, pools[i].clone())).collect();
    for s in own_starts {
        let (path, r) = s.await.unwrap();
        let Err(e) = r else {
            panic!("a node with a key file of its own cannot share the key")
        };
        assert!(
            e.contains("another Heldar sharing the database created it")
                && e.contains("copy it from that node")
                && !e.contains("backup")
                && !e.contains("duplicate key"),
            "{e}"
        );
        assert!(!path.exists(), "{} was left behind", path.display());
    }
    // One key: what any of them sealed, every other opens, and the database's check opens.
    let check = heldar::db::meta::key_check(&pools[0])
        .await
        .unwrap()
        .unwrap();
    for (i, a) in sealers.iter().enumerate() {
        assert!(a.opens_key_check(&check), "start {i}");
        let sealed = a.seal("cam1", "password", "hunter2");
        for b in &sealers {
            assert_eq!(b.open("cam1", "password", &sealed).unwrap(), "hunter2");
        }
    }
    // The one key file there is, is that key, and a later start with it goes on.
    let again = heldar::ops::secrets::open_sealer(&shared, &pools[0])
        .await
        .unwrap();
    assert!(again.opens_key_check(&check));
    let leftovers: Vec<_> = std::fs::read_dir(shared.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(leftovers, ["secret.key"], "temporary key files left behind");
}
