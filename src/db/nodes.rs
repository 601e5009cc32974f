//! The `nodes` and `camera_leases` tables (docs/fleet.md): which Heldar processes share this
//! database, and which of them captures each camera's schedules.
//!
//! Every change is one conditional statement (an upsert guarded by the lease's expiry, an update
//! guarded by the holder), and the same SQL text runs on SQLite and PostgreSQL (`with_pool!`). Timestamps are RFC 3339
//! text in milliseconds, so comparing the text compares the times. Nothing here decides who
//! should hold what (`ops::nodes` does); a failure is a [`DbError`] naming the step.

use chrono::{DateTime, Utc};

use super::{parse_ts, step, with_pool, Cols, DbError, Pool};
use crate::models::fmt_ts;

/// A node's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRow {
    pub id: String,
    pub name: String,
    pub version: String,
    pub started_at: DateTime<Utc>,
    pub heartbeat_at: DateTime<Utc>,
    pub draining: bool,
}

/// Insert this node's row, or take over the row of a former run with the same id.
pub async fn register(pool: &Pool, n: &NodeRow) -> Result<(), DbError> {
    with_pool!(pool, p => {
        sqlx::query(
            "INSERT INTO nodes (id, name, version, started_at, heartbeat_at, draining) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, version = excluded.version, \
             started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, \
             draining = excluded.draining",
        )
        .bind(&n.id)
        .bind(&n.name)
        .bind(&n.version)
        .bind(fmt_ts(n.started_at))
        .bind(fmt_ts(n.heartbeat_at))
        // An integer column on both back-ends (PostgreSQL would refuse a boolean here).
        .bind(i64::from(n.draining))
        .execute(p)
        .await
        .map(|_| ())
    })
    .map_err(step("registering this node"))?;
    Ok(())
}

/// Move this node's heartbeat (and its draining flag). False if its row is gone (removed as dead
/// by another node after a long stall): the caller registers again.
pub async fn heartbeat(
    pool: &Pool,
    id: &str,
    now: DateTime<Utc>,
    draining: bool,
) -> Result<bool, DbError> {
    let n = with_pool!(pool, p => {
        sqlx::query("UPDATE nodes SET heartbeat_at = $1, draining = $2 WHERE id = $3")
            .bind(fmt_ts(now))
            .bind(i64::from(draining))
            .bind(id)
            .execute(p)
            .await
            .map(|r| r.rows_affected())
    })
    .map_err(step("writing this node's heartbeat"))?;
    Ok(n == 1)
}

/// Forget a node (its clean stop).
pub async fn delete(pool: &Pool, id: &str) -> Result<(), DbError> {
    with_pool!(pool, p => {
        sqlx::query("DELETE FROM nodes WHERE id = $1")
            .bind(id)
            .execute(p)
            .await
            .map(|_| ())
    })
    .map_err(step("removing this node's row"))
}

/// Remove the rows of nodes whose last heartbeat is older than `before`; how many.
pub async fn remove_dead(pool: &Pool, before: DateTime<Utc>) -> Result<u64, DbError> {
    with_pool!(pool, p => {
        sqlx::query("DELETE FROM nodes WHERE heartbeat_at < $1")
            .bind(fmt_ts(before))
            .execute(p)
            .await
            .map(|r| r.rows_affected())
    })
    .map_err(step("removing the rows of long-dead nodes"))
}

/// Every node row, by id.
pub async fn list(pool: &Pool) -> Result<Vec<NodeRow>, DbError> {
    fn from_row(r: &impl Cols) -> Result<NodeRow, DbError> {
        Ok(NodeRow {
            id: r.text("id")?,
            name: r.text("name")?,
            version: r.text("version")?,
            started_at: parse_ts(&r.text("started_at")?)?,
            heartbeat_at: parse_ts(&r.text("heartbeat_at")?)?,
            draining: r.int("draining")? != 0,
        })
    }
    with_pool!(pool, p => {
        sqlx::query(
            "SELECT id, name, version, started_at, heartbeat_at, draining FROM nodes ORDER BY id",
        )
        .fetch_all(p)
        .await
        .map_err(step("listing the nodes"))?
        .iter()
        .map(from_row)
        .collect()
    })
}

/// How many nodes take cameras: heartbeat at or after `since`, not draining.
pub async fn count_live(pool: &Pool, since: DateTime<Utc>) -> Result<i64, DbError> {
    with_pool!(pool, p => {
        sqlx::query_scalar("SELECT COUNT(*) FROM nodes WHERE heartbeat_at >= $1 AND draining = 0")
            .bind(fmt_ts(since))
            .fetch_one(p)
            .await
    })
    .map_err(step("counting the live nodes"))
}

/// How many cameras there are to lease.
pub async fn count_cameras(pool: &Pool) -> Result<i64, DbError> {
    with_pool!(pool, p => sqlx::query_scalar("SELECT COUNT(*) FROM cameras").fetch_one(p).await)
        .map_err(step("counting the cameras"))
}

/// The cameras `node` holds a lease on that has not expired at `now`, by id.
pub async fn held(pool: &Pool, node: &str, now: DateTime<Utc>) -> Result<Vec<String>, DbError> {
    with_pool!(pool, p => {
        sqlx::query_scalar(
            "SELECT camera_id FROM camera_leases WHERE node_id = $1 AND expires_at > $2 \
             ORDER BY camera_id",
        )
        .bind(node)
        .bind(fmt_ts(now))
        .fetch_all(p)
        .await
    })
    .map_err(step("reading this node's camera leases"))
}

/// Every unexpired lease: (camera, node), by camera.
pub async fn leases(pool: &Pool, now: DateTime<Utc>) -> Result<Vec<(String, String)>, DbError> {
    with_pool!(pool, p => {
        sqlx::query_as(
            "SELECT camera_id, node_id FROM camera_leases WHERE expires_at > $1 \
             ORDER BY camera_id",
        )
        .bind(fmt_ts(now))
        .fetch_all(p)
        .await
    })
    .map_err(step("reading the camera leases"))
}

/// Up to `limit` cameras no node holds at `now` (no lease, or an expired one), by id.
pub async fn free(pool: &Pool, now: DateTime<Utc>, limit: i64) -> Result<Vec<String>, DbError> {
    with_pool!(pool, p => {
        sqlx::query_scalar(
            "SELECT c.id FROM cameras c LEFT JOIN camera_leases l ON l.camera_id = c.id \
             WHERE l.camera_id IS NULL OR l.expires_at <= $1 ORDER BY c.id LIMIT $2",
        )
        .bind(fmt_ts(now))
        .bind(limit)
        .fetch_all(p)
        .await
    })
    .map_err(step("looking for cameras no node holds"))
}

/// Take the lease of each camera in `cameras` that is still free at `now`, until `expires`; the
/// ones this call took. One transaction; each row is a conditional upsert, so two nodes racing
/// for a camera never both get it.
pub async fn acquire(
    pool: &Pool,
    node: &str,
    cameras: &[String],
    now: DateTime<Utc>,
    expires: DateTime<Utc>,
) -> Result<Vec<String>, DbError> {
    with_pool!(pool, p => {
        let mut tx = p
            .begin()
            .await
            .map_err(step("starting to take camera leases"))?;
        let mut won = Vec::new();
        for camera in cameras {
            // A camera deleted meanwhile matches no row to insert: not taken, not an error.
            let r = sqlx::query(
                "INSERT INTO camera_leases (camera_id, node_id, expires_at) \
                 SELECT id, $1, $2 FROM cameras WHERE id = $3 \
                 ON CONFLICT (camera_id) DO UPDATE SET node_id = excluded.node_id, \
                 expires_at = excluded.expires_at WHERE camera_leases.expires_at <= $4",
            )
            .bind(node)
            .bind(fmt_ts(expires))
            .bind(camera)
            .bind(fmt_ts(now))
            .execute(&mut *tx)
            .await
            .map_err(step("taking a camera lease"))?;
            if r.rows_affected() == 1 {
                won.push(camera.clone());
            }
        }
        tx.commit()
            .await
            .map_err(step("committing camera leases"))?;
        Ok(won)
    })
}

/// Extend every lease `node` still holds at `now` to `expires`; how many.
pub async fn renew(
    pool: &Pool,
    node: &str,
    now: DateTime<Utc>,
    expires: DateTime<Utc>,
) -> Result<u64, DbError> {
    with_pool!(pool, p => {
        sqlx::query(
            "UPDATE camera_leases SET expires_at = $1 WHERE node_id = $2 AND expires_at > $3",
        )
        .bind(fmt_ts(expires))
        .bind(node)
        .bind(fmt_ts(now))
        .execute(p)
        .await
        .map(|r| r.rows_affected())
    })
    .map_err(step("renewing this node's camera leases"))
}

/// Give up `node`'s leases: of these cameras, or (`None`) all of them.
pub async fn release(pool: &Pool, node: &str, cameras: Option<&[String]>) -> Result<u64, DbError> {
    with_pool!(pool, p => match cameras {
        None => sqlx::query("DELETE FROM camera_leases WHERE node_id = $1")
            .bind(node)
            .execute(p)
            .await
            .map(|r| r.rows_affected())
            .map_err(step("releasing this node's camera leases")),
        Some(cameras) => {
            let mut tx = p
                .begin()
                .await
                .map_err(step("starting to release camera leases"))?;
            let mut n = 0;
            for camera in cameras {
                let r = sqlx::query(
                    "DELETE FROM camera_leases WHERE node_id = $1 AND camera_id = $2",
                )
                .bind(node)
                .bind(camera)
                .execute(&mut *tx)
                .await
                .map_err(step("releasing a camera lease"))?;
                n += r.rows_affected();
            }
            tx.commit()
                .await
                .map_err(step("committing released camera leases"))?;
            Ok(n)
        }
    })
}

/// The query of [`changed_schedules`] (its own item so a test can check SQLite's plan for it).
const CHANGED_SQL: &str = "SELECT id, camera_id FROM snapshot_schedules WHERE updated_at >= $1";

/// Schedules changed at or after `since`, as `(id, camera_id)`: the caller keeps those of the
/// cameras its node holds (a schedule made or edited through another node reaches the holder's
/// scheduler without waiting for its periodic re-read).
///
/// Asked twice a second, so it must cost nothing when nothing changed: it range-scans the
/// `updated_at` index (migration 0002) and touches only the changed rows, in no particular
/// order (an `ORDER BY id` makes SQLite prefer walking the primary key). Joining the node's
/// leases here instead made SQLite walk every schedule of every held camera to test its
/// `updated_at`: 70-90 ms of CPU per look with 101,000 schedules on 1,000 cameras, which
/// stalled captures every half second (issue 17's capture p99; docs/benchmarks.md).
pub async fn changed_schedules(
    pool: &Pool,
    since: DateTime<Utc>,
) -> Result<Vec<(String, String)>, DbError> {
    with_pool!(pool, p => {
        sqlx::query_as(CHANGED_SQL)
            .bind(fmt_ts(since))
            .fetch_all(p)
            .await
    })
    .map_err(step("reading schedules changed elsewhere"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// The look's query returns the changed rows only, and SQLite answers it from the
    /// `updated_at` index: a plan that walks the schedules again would bring back the stall.
    #[tokio::test]
    async fn changed_schedules_reads_only_changed_rows_through_the_updated_index() {
        let dir = tempfile::tempdir().unwrap();
        let now = Utc.with_ymd_and_hms(2026, 11, 30, 1, 0, 0).unwrap();
        let ts = |secs: i64| fmt_ts(now + chrono::Duration::seconds(secs));
        let pool =
            crate::db::plan_test::pool_with_cameras(dir.path(), &["a", "b"], &ts(-7200)).await;
        // (id, camera, updated_at)
        for (id, cam, updated) in [
            ("s1", "a", -3600),
            ("s2", "a", -1),
            ("s3", "b", 0),
            ("s4", "b", -2),
        ] {
            sqlx::query(
                "INSERT INTO snapshot_schedules (id, camera_id, interval_seconds, enabled, \
                 created_at, updated_at) VALUES (?1, ?2, 60, 1, ?3, ?4)",
            )
            .bind(id)
            .bind(cam)
            .bind(ts(-7200))
            .bind(ts(updated))
            .execute(pool.sqlite().unwrap())
            .await
            .unwrap();
        }
        let mut got = changed_schedules(&pool, now - chrono::Duration::seconds(1))
            .await
            .unwrap();
        got.sort();
        let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(got, vec![pair("s2", "a"), pair("s3", "b")]);

        let plan = crate::db::plan_test::plan(&pool, CHANGED_SQL, &ts(0)).await;
        assert!(
            plan.iter()
                .any(|d| d.contains("snapshot_schedules_updated")),
            "the look's query no longer uses the updated_at index: {plan:?}"
        );
        assert!(
            !plan
                .iter()
                .any(|d| d.starts_with("SCAN snapshot_schedules")),
            "the look's query scans every schedule: {plan:?}"
        );
    }
}
