//! The capture writer's PostgreSQL engine (`db::writer`, docs/scale-out.md "The PostgreSQL
//! writer") against a real PostgreSQL: two writers racing for the same slots win each once
//! (even when their claims lock rows in opposite orders and PostgreSQL picks a deadlock
//! victim); a frame's row, its schedule's `last_fired_at` and its camera's success commit
//! together; an operation that fails (its camera deleted) fails alone, its batch commits.

mod common;

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use heldar::db::schedules::Claim;
use heldar::db::writer::{Buffer, Writer};
use heldar::models::{fmt_ts, CameraId, CameraState, Snapshot};
use sqlx::{Connection, PgPool};

fn at(s: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_790_000_000 + s, 0).unwrap()
}

/// A fresh, migrated database with `cameras` cameras `cam-0…` and one 60 s schedule each,
/// `sch_0…`, due at `at(0)`.
async fn database(cameras: usize) -> PgPool {
    common::postgres::seeded_database(cameras, at(0)).await
}

fn snapshot(id: &str, camera: &str, schedule: Option<&str>, taken: i64) -> Snapshot {
    Snapshot {
        id: id.into(),
        camera_id: CameraId::parse(camera).unwrap(),
        schedule_id: schedule.map(str::to_string),
        path: format!("{camera}/{id}.jpg"),
        taken_at: at(taken),
        size_bytes: 1000,
        width: Some(64),
        height: Some(48),
        created_at: at(taken + 1),
        tag: None,
    }
}

async fn count(pg: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pg).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_racing_for_the_same_slots_win_each_once() {
    const SCHEDULES: usize = 40;
    const ROUNDS: i64 = 5;
    let pg = database(SCHEDULES).await;
    let (a, task_a) = Writer::start_postgres(&pg, Duration::ZERO, Buffer::default()).unwrap();
    let (b, task_b) = Writer::start_postgres(&pg, Duration::ZERO, Buffer::default()).unwrap();
    let mut wins = [0usize; 2];
    for round in 0..ROUNDS {
        let claims: Vec<Claim> = (0..SCHEDULES)
            .map(|i| Claim {
                id: format!("sch_{i}"),
                slot: at(round * 60),
                next: Some(at((round + 1) * 60)),
            })
            .collect();
        // B asks in the opposite order; the writer claims in the order of schedule ids, so
        // the two transactions wait for each other instead of deadlocking.
        let mut reversed = claims.clone();
        reversed.reverse();
        let (wa, wb) = tokio::join!(a.claim_many(claims), b.claim_many(reversed));
        let wa = wa.unwrap();
        let mut wb = wb.unwrap();
        wb.reverse();
        for (i, (x, y)) in wa.iter().zip(&wb).enumerate() {
            assert!(
                *x ^ *y,
                "round {round}, sch_{i}: won by A {x}, by B {y}: exactly one must win"
            );
        }
        wins[0] += wa.iter().filter(|w| **w).count();
        wins[1] += wb.iter().filter(|w| **w).count();
    }
    assert_eq!(wins[0] + wins[1], SCHEDULES * ROUNDS as usize);
    // Every schedule moved to the slot after the last round, once per round.
    assert_eq!(
        count(
            &pg,
            &format!(
                "SELECT count(*) FROM snapshot_schedules WHERE next_due_at = '{}'",
                fmt_ts(at(ROUNDS * 60))
            )
        )
        .await,
        SCHEDULES as i64
    );
    // A stale view of a past slot wins nothing.
    assert!(!a.claim("sch_0", at(0), at(60)).await.unwrap());
    task_a.finish().await;
    task_b.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_row_its_schedules_last_fired_at_and_the_cameras_success_commit_together() {
    let pg = database(1).await;
    let (w, task) = Writer::start_postgres(&pg, Duration::ZERO, Buffer::default()).unwrap();
    let cam = CameraId::parse("cam-0").unwrap();
    assert!(w.claim("sch_0", at(0), at(60)).await.unwrap());
    // A failure first: the success that comes with the frame clears it.
    w.record_failure(&cam, CameraState::Failing, "timed out", at(0))
        .await
        .unwrap();
    w.record_frame(snapshot("snp_1", "cam-0", Some("sch_0"), 0))
        .await
        .unwrap();
    let (id, schedule, taken, size, width): (String, Option<String>, String, i64, Option<i64>) =
        sqlx::query_as(
            "SELECT id, schedule_id, taken_at, size_bytes, width FROM snapshots WHERE camera_id = 'cam-0'",
        )
        .fetch_one(&pg)
        .await
        .unwrap();
    assert_eq!(
        (id.as_str(), schedule.as_deref(), taken, size, width),
        ("snp_1", Some("sch_0"), fmt_ts(at(0)), 1000, Some(64))
    );
    let (next, last): (String, Option<String>) =
        sqlx::query_as("SELECT next_due_at, last_fired_at FROM snapshot_schedules")
            .fetch_one(&pg)
            .await
            .unwrap();
    assert_eq!((next, last), (fmt_ts(at(60)), Some(fmt_ts(at(0)))));
    let (state, success, failures, error): (String, Option<String>, i64, Option<String>) =
        sqlx::query_as(
            "SELECT state, last_success_at, consecutive_failures, last_error FROM camera_status",
        )
        .fetch_one(&pg)
        .await
        .unwrap();
    assert_eq!(
        (state.as_str(), success, failures, error),
        ("online", Some(fmt_ts(at(1))), 0, None)
    );
    // A skipped slot: the schedule fired and says why nothing was kept.
    assert!(w.claim("sch_0", at(60), at(120)).await.unwrap());
    w.record_skip(&cam, "sch_0", at(60), "dark", at(61))
        .await
        .unwrap();
    let (last, skipped, reason): (String, String, String) = sqlx::query_as(
        "SELECT last_fired_at, last_skipped_at, last_skip_reason FROM snapshot_schedules",
    )
    .fetch_one(&pg)
    .await
    .unwrap();
    assert_eq!(
        (last, skipped, reason.as_str()),
        (fmt_ts(at(60)), fmt_ts(at(60)), "dark")
    );
    // Re-indexed files (start-up reconciliation): all rows or none.
    w.index(vec![
        snapshot("snp_2", "cam-0", None, 5),
        snapshot("snp_3", "cam-0", None, 6),
    ])
    .await
    .unwrap();
    let err = w
        .index(vec![
            snapshot("snp_4", "cam-0", None, 7),
            snapshot("snp_5", "no-such-camera", None, 8),
        ])
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("recording a snapshot"), "{err}");
    assert_eq!(count(&pg, "SELECT count(*) FROM snapshots").await, 3);
    // A frame whose row is already there (a batch replayed after a lost commit answer, or a
    // file another node's reconciliation indexed first) is left as it is and counts as
    // recorded: failing would make its caller delete a file that has a row.
    w.index(vec![snapshot("snp_2", "cam-0", None, 5)])
        .await
        .unwrap();
    w.record_frame(snapshot("snp_3", "cam-0", None, 6))
        .await
        .unwrap();
    assert_eq!(count(&pg, "SELECT count(*) FROM snapshots").await, 3);
    task.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operation_that_fails_fails_alone_and_the_rest_of_its_batch_commits() {
    let pg = database(2).await;
    // A long linger: scheduled frames wait for company, so the four operations below share
    // one transaction (the failure, urgent, ends the wait).
    let (w, task) = Writer::start_postgres(&pg, Duration::from_secs(2), Buffer::default()).unwrap();
    sqlx::query("DELETE FROM cameras WHERE id = 'cam-1'")
        .execute(&pg)
        .await
        .unwrap();
    let cam0 = CameraId::parse("cam-0").unwrap();
    let (claimed, bad, good, failed) = tokio::join!(
        w.claim_many(vec![Claim {
            id: "sch_0".into(),
            slot: at(0),
            next: Some(at(60)),
        }]),
        // Its camera was deleted meanwhile: the foreign key refuses the row.
        w.record_frame(snapshot("snp_bad", "cam-1", Some("sch_1"), 0)),
        w.record_frame(snapshot("snp_good", "cam-0", Some("sch_0"), 0)),
        // Queued after the two frames: `join!` first polls its futures in order, and each
        // sends its operation to the writer's queue on that first poll. Being urgent, it ends
        // the frames' linger.
        w.record_failure(&cam0, CameraState::Failing, "timed out", at(3)),
    );
    assert_eq!(claimed.unwrap(), vec![true]);
    let err = bad.unwrap_err().to_string();
    assert!(err.contains("recording a snapshot"), "{err}");
    good.unwrap();
    failed.unwrap();
    assert_eq!(
        count(&pg, "SELECT count(*) FROM snapshots WHERE id = 'snp_good'").await,
        1
    );
    assert_eq!(count(&pg, "SELECT count(*) FROM snapshots").await, 1);
    let (state, failures, success): (String, i64, Option<String>) = sqlx::query_as(
        "SELECT state, consecutive_failures, last_success_at FROM camera_status \
         WHERE camera_id = 'cam-0'",
    )
    .fetch_one(&pg)
    .await
    .unwrap();
    // The good frame's success, then the failure after it: committed in that order.
    assert_eq!(
        (state.as_str(), failures, success),
        ("failing", 1, Some(fmt_ts(at(1))))
    );
    assert_eq!(
        count(
            &pg,
            "SELECT count(*) FROM snapshot_schedules WHERE last_fired_at IS NOT NULL"
        )
        .await,
        1
    );
    task.finish().await;
}

/// A deadlock PostgreSQL resolves by ending the writer's transaction: the writer runs the batch
/// again and the caller only sees the claims won. The deadlock is made with a transaction of
/// the test's own that locks the two schedule rows in the other order (and waits 10 s before
/// looking for deadlocks itself, so the writer is the one PostgreSQL ends).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_ended_by_a_deadlock_runs_again_and_wins_its_claims() {
    let pg = database(2).await;
    let (w, task) = Writer::start_postgres(&pg, Duration::ZERO, Buffer::default()).unwrap();
    let deadlocks = || async {
        let n: i64 = sqlx::query_scalar(
            "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()",
        )
        .fetch_one(&pg)
        .await
        .unwrap();
        n
    };
    let before = deadlocks().await;
    let opts = (*pg.connect_options()).clone();
    let mut other = sqlx::PgConnection::connect_with(&opts).await.unwrap();
    sqlx::query("BEGIN").execute(&mut other).await.unwrap();
    sqlx::query("SET LOCAL deadlock_timeout = '10s'")
        .execute(&mut other)
        .await
        .unwrap();
    sqlx::query("UPDATE snapshot_schedules SET updated_at = updated_at WHERE id = 'sch_1'")
        .execute(&mut other)
        .await
        .unwrap();
    // The writer locks sch_0, then waits for sch_1.
    let claims = vec![
        Claim {
            id: "sch_0".into(),
            slot: at(0),
            next: Some(at(60)),
        },
        Claim {
            id: "sch_1".into(),
            slot: at(0),
            next: Some(at(60)),
        },
    ];
    let writer = w.clone();
    let claimed = tokio::spawn(async move { writer.claim_many(claims).await });
    common::wait_for(
        "the writer to wait for the row lock",
        Duration::from_secs(10),
        || async {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND application_name = 'heldar-writer' AND wait_event_type = 'Lock'",
            )
            .fetch_one(&pg)
            .await
            .unwrap();
            (waiting > 0).then_some(())
        },
    )
    .await;
    // Now the cycle: this waits for the writer's sch_0, which waits for this sch_1.
    sqlx::query("UPDATE snapshot_schedules SET updated_at = updated_at WHERE id = 'sch_0'")
        .execute(&mut other)
        .await
        .unwrap();
    sqlx::query("COMMIT").execute(&mut other).await.unwrap();
    assert_eq!(claimed.await.unwrap().unwrap(), vec![true, true]);
    // PostgreSQL publishes its statistics within a second or so.
    common::wait_for(
        "PostgreSQL to count the deadlock",
        Duration::from_secs(10),
        || async { (deadlocks().await > before).then_some(()) },
    )
    .await;
    assert_eq!(
        count(
            &pg,
            &format!(
                "SELECT count(*) FROM snapshot_schedules WHERE next_due_at = '{}'",
                fmt_ts(at(60))
            )
        )
        .await,
        2
    );
    // No outage was declared for it.
    assert!(w.outage().is_none());
    task.finish().await;
}
