//! Queries on `timelapse_rules`. A run claims its period with a conditional update of
//! `covered_until` (from the value it read to the period's end), in the same transaction as the
//! job it queues: the period is made once across restarts and processes, and a claimed period
//! always has its job (docs/design.md §7's slot claim, for days). Every query runs on both
//! back-ends (`with_pool!`), the claim's transaction included.

use chrono::{DateTime, Utc};

use super::{parse_ts, step, with_pool, Cols, DbError, Pool};
use crate::models::timelapse::{Job, RuleId, RulePeriod, TimelapseRule, VideoFormat, Weekday};
use crate::models::{fmt_ts, CameraId};

const COLUMNS: &str = "id, camera_id, period, at, time_zone, weekday, fps, width, format, \
     enabled, covered_until, created_at, updated_at";

fn corrupt(what: &str, v: &str) -> DbError {
    DbError::Corrupt(format!("timelapse_rules.{what} = {v:?}"))
}

fn from_row(row: &impl Cols) -> Result<TimelapseRule, DbError> {
    let id = row.text("id")?;
    let camera = row.text("camera_id")?;
    let period = row.text("period")?;
    let at = row.text("at")?;
    let tz = row.text("time_zone")?;
    let weekday = row.opt_text("weekday")?;
    let format = row.text("format")?;
    let width = row.opt_int("width")?;
    Ok(TimelapseRule {
        id: RuleId::parse(&id).map_err(|_| corrupt("id", &id))?,
        camera_id: CameraId::parse(&camera).map_err(|_| corrupt("camera_id", &camera))?,
        period: RulePeriod::from_db(&period).ok_or_else(|| corrupt("period", &period))?,
        at: chrono::NaiveTime::parse_from_str(&at, "%H:%M").map_err(|_| corrupt("at", &at))?,
        time_zone: tz.parse().map_err(|_| corrupt("time_zone", &tz))?,
        weekday: weekday
            .map(|w| Weekday::from_db(&w).ok_or_else(|| corrupt("weekday", &w)))
            .transpose()?,
        fps: row.int("fps")?.clamp(1, 60) as u32,
        width: width.map(|w| w.clamp(0, i64::from(u32::MAX)) as u32),
        format: VideoFormat::from_db(&format).ok_or_else(|| corrupt("format", &format))?,
        enabled: row.int("enabled")? != 0,
        covered_until: parse_ts(&row.text("covered_until")?)?,
        created_at: parse_ts(&row.text("created_at")?)?,
        updated_at: parse_ts(&row.text("updated_at")?)?,
    })
}

fn at_text(r: &TimelapseRule) -> String {
    r.at.format("%H:%M").to_string()
}

/// Insert a rule. Its camera gone is a [`DbError::NoParent`].
pub async fn insert(pool: &Pool, r: &TimelapseRule) -> Result<(), DbError> {
    let sql = format!(
        "INSERT INTO timelapse_rules ({COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
    );
    with_pool!(pool, p => {
        sqlx::query(&sql)
            .bind(r.id.as_str())
            .bind(r.camera_id.as_str())
            .bind(r.period.as_str())
            .bind(at_text(r))
            .bind(r.time_zone.name())
            .bind(r.weekday.map(Weekday::as_str))
            .bind(i64::from(r.fps))
            .bind(r.width.map(i64::from))
            .bind(r.format.as_str())
            .bind(i64::from(r.enabled))
            .bind(fmt_ts(r.covered_until))
            .bind(fmt_ts(r.created_at))
            .bind(fmt_ts(r.updated_at))
            .execute(p)
            .await
            .map(|_| ())
    })
    .map_err(|e| match e {
        sqlx::Error::Database(ref d) if d.is_foreign_key_violation() => {
            DbError::NoParent(format!("no camera with id {:?}", r.camera_id.as_str()))
        }
        other => step("inserting a timelapse rule")(other),
    })
}

/// Write every field of an existing rule; `false` if it is gone.
pub async fn update(pool: &Pool, r: &TimelapseRule) -> Result<bool, DbError> {
    let n = with_pool!(pool, p => {
        sqlx::query(
            "UPDATE timelapse_rules SET period = $1, at = $2, time_zone = $3, weekday = $4, \
             fps = $5, width = $6, format = $7, enabled = $8, covered_until = $9, \
             updated_at = $10 WHERE id = $11",
        )
        .bind(r.period.as_str())
        .bind(at_text(r))
        .bind(r.time_zone.name())
        .bind(r.weekday.map(Weekday::as_str))
        .bind(i64::from(r.fps))
        .bind(r.width.map(i64::from))
        .bind(r.format.as_str())
        .bind(i64::from(r.enabled))
        .bind(fmt_ts(r.covered_until))
        .bind(fmt_ts(r.updated_at))
        .bind(r.id.as_str())
        .execute(p)
        .await
        .map(|r| r.rows_affected())
    })
    .map_err(step("updating a timelapse rule"))?;
    Ok(n > 0)
}

pub async fn get(pool: &Pool, id: &str) -> Result<Option<TimelapseRule>, DbError> {
    let sql = format!("SELECT {COLUMNS} FROM timelapse_rules WHERE id = $1");
    with_pool!(pool, p => {
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(p)
            .await
            .map_err(step("reading a timelapse rule"))?;
        row.as_ref().map(from_row).transpose()
    })
}

pub async fn list_for_camera(
    pool: &Pool,
    camera: &CameraId,
) -> Result<Vec<TimelapseRule>, DbError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM timelapse_rules WHERE camera_id = $1 ORDER BY created_at, id"
    );
    with_pool!(pool, p => {
        sqlx::query(&sql)
            .bind(camera.as_str())
            .fetch_all(p)
            .await
            .map_err(step("listing timelapse rules"))?
            .iter()
            .map(from_row)
            .collect()
    })
}

/// Every enabled rule (the rule runner's pass).
pub async fn list_enabled(pool: &Pool) -> Result<Vec<TimelapseRule>, DbError> {
    let sql = format!("SELECT {COLUMNS} FROM timelapse_rules WHERE enabled = 1");
    with_pool!(pool, p => {
        sqlx::query(&sql)
            .fetch_all(p)
            .await
            .map_err(step("loading enabled timelapse rules"))?
            .iter()
            .map(from_row)
            .collect()
    })
}

pub async fn delete(pool: &Pool, id: &str) -> Result<bool, DbError> {
    let n = with_pool!(pool, p => {
        sqlx::query("DELETE FROM timelapse_rules WHERE id = $1")
            .bind(id)
            .execute(p)
            .await
            .map(|r| r.rows_affected())
    })
    .map_err(step("deleting a timelapse rule"))?;
    Ok(n > 0)
}

/// Claim the period ending at `to` for rule `id`, whose `covered_until` was read as `seen`,
/// and queue `job` for it (if any) in the same transaction. `false` — and nothing written — if
/// the rule moved on meanwhile (another process, a change, a deletion): the period is not ours.
/// On PostgreSQL two nodes claiming at once serialise on the rule's row lock: the second's
/// update waits for the first to commit, then finds `covered_until` moved and changes nothing.
pub async fn claim(
    pool: &Pool,
    id: &RuleId,
    seen: DateTime<Utc>,
    to: DateTime<Utc>,
    job: Option<&Job>,
) -> Result<bool, DbError> {
    with_pool!(pool, p => {
        let mut tx = p.begin().await.map_err(step("claiming a rule's period"))?;
        let r = sqlx::query(
            "UPDATE timelapse_rules SET covered_until = $1 \
             WHERE id = $2 AND enabled = 1 AND covered_until = $3",
        )
        .bind(fmt_ts(to))
        .bind(id.as_str())
        .bind(fmt_ts(seen))
        .execute(&mut *tx)
        .await
        .map_err(step("claiming a rule's period"))?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        if let Some(job) = job {
            super::jobs::insert_in!(tx, job)?;
        }
        tx.commit().await.map_err(step("claiming a rule's period"))?;
        Ok(true)
    })
}
