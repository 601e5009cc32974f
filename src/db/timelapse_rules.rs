//! Queries on `timelapse_rules`. A run claims its period with a conditional update of
//! `covered_until` (from the value it read to the period's end), in the same transaction as the
//! job it queues: the period is made once across restarts and processes, and a claimed period
//! always has its job (docs/design.md §7's slot claim, for days).

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{parse_ts, step, DbError, Pool};
use crate::models::timelapse::{Job, RuleId, RulePeriod, TimelapseRule, VideoFormat, Weekday};
use crate::models::{fmt_ts, CameraId};

const COLUMNS: &str = "id, camera_id, period, at, time_zone, weekday, fps, width, format, \
     enabled, covered_until, created_at, updated_at";

fn corrupt(what: &str, v: &str) -> DbError {
    DbError::Corrupt(format!("timelapse_rules.{what} = {v:?}"))
}

fn from_row(row: &sqlx::sqlite::SqliteRow) -> Result<TimelapseRule, DbError> {
    let id: String = row.get("id");
    let camera: String = row.get("camera_id");
    let period: String = row.get("period");
    let at: String = row.get("at");
    let tz: String = row.get("time_zone");
    let weekday: Option<String> = row.get("weekday");
    let format: String = row.get("format");
    let width: Option<i64> = row.get("width");
    Ok(TimelapseRule {
        id: RuleId::parse(&id).map_err(|_| corrupt("id", &id))?,
        camera_id: CameraId::parse(&camera).map_err(|_| corrupt("camera_id", &camera))?,
        period: RulePeriod::from_db(&period).ok_or_else(|| corrupt("period", &period))?,
        at: chrono::NaiveTime::parse_from_str(&at, "%H:%M").map_err(|_| corrupt("at", &at))?,
        time_zone: tz.parse().map_err(|_| corrupt("time_zone", &tz))?,
        weekday: weekday
            .map(|w| Weekday::from_db(&w).ok_or_else(|| corrupt("weekday", &w)))
            .transpose()?,
        fps: row.get::<i64, _>("fps").clamp(1, 60) as u32,
        width: width.map(|w| w.clamp(0, i64::from(u32::MAX)) as u32),
        format: VideoFormat::from_db(&format).ok_or_else(|| corrupt("format", &format))?,
        enabled: row.get::<i64, _>("enabled") != 0,
        covered_until: parse_ts(row.get("covered_until"))?,
        created_at: parse_ts(row.get("created_at"))?,
        updated_at: parse_ts(row.get("updated_at"))?,
    })
}

fn at_text(r: &TimelapseRule) -> String {
    r.at.format("%H:%M").to_string()
}

/// Insert a rule. Its camera gone is a [`DbError::NoParent`].
pub async fn insert(pool: &Pool, r: &TimelapseRule) -> Result<(), DbError> {
    let pool = pool.sqlite_only("db::timelapse_rules::insert")?;
    sqlx::query(&format!(
        "INSERT INTO timelapse_rules ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ))
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
    .execute(pool)
    .await
    .map_err(|e| match e {
        sqlx::Error::Database(ref d) if d.is_foreign_key_violation() => {
            DbError::NoParent(format!("no camera with id {:?}", r.camera_id.as_str()))
        }
        other => DbError::Sqlx {
            step: "inserting a timelapse rule",
            source: other,
        },
    })?;
    Ok(())
}

/// Write every field of an existing rule; `false` if it is gone.
pub async fn update(pool: &Pool, r: &TimelapseRule) -> Result<bool, DbError> {
    let pool = pool.sqlite_only("db::timelapse_rules::update")?;
    let res = sqlx::query(
        "UPDATE timelapse_rules SET period = ?, at = ?, time_zone = ?, weekday = ?, fps = ?, \
         width = ?, format = ?, enabled = ?, covered_until = ?, updated_at = ? WHERE id = ?",
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
    .execute(pool)
    .await
    .map_err(step("updating a timelapse rule"))?;
    Ok(res.rows_affected() > 0)
}

pub async fn get(pool: &Pool, id: &str) -> Result<Option<TimelapseRule>, DbError> {
    let pool = pool.sqlite_only("db::timelapse_rules::get")?;
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM timelapse_rules WHERE id = ?"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await
    .map_err(step("reading a timelapse rule"))?;
    row.as_ref().map(from_row).transpose()
}

pub async fn list_for_camera(
    pool: &Pool,
    camera: &CameraId,
) -> Result<Vec<TimelapseRule>, DbError> {
    let pool = pool.sqlite_only("db::timelapse_rules::list_for_camera")?;
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM timelapse_rules WHERE camera_id = ? ORDER BY created_at, id"
    ))
    .bind(camera.as_str())
    .fetch_all(pool)
    .await
    .map_err(step("listing timelapse rules"))?;
    rows.iter().map(from_row).collect()
}

/// Every enabled rule (the rule runner's pass).
pub async fn list_enabled(pool: &Pool) -> Result<Vec<TimelapseRule>, DbError> {
    let pool = pool.sqlite_only("db::timelapse_rules::list_enabled")?;
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM timelapse_rules WHERE enabled = 1"
    ))
    .fetch_all(pool)
    .await
    .map_err(step("loading enabled timelapse rules"))?;
    rows.iter().map(from_row).collect()
}

pub async fn delete(pool: &Pool, id: &str) -> Result<bool, DbError> {
    let pool = pool.sqlite_only("db::timelapse_rules::delete")?;
    let r = sqlx::query("DELETE FROM timelapse_rules WHERE id = ?")
        .bind(id)
        .execute(pool)
        .await
        .map_err(step("deleting a timelapse rule"))?;
    Ok(r.rows_affected() > 0)
}

/// Claim the period ending at `to` for rule `id`, whose `covered_until` was read as `seen`,
/// and queue `job` for it (if any) in the same transaction. `false` — and nothing written — if
/// the rule moved on meanwhile (another process, a change, a deletion): the period is not ours.
pub async fn claim(
    pool: &Pool,
    id: &RuleId,
    seen: DateTime<Utc>,
    to: DateTime<Utc>,
    job: Option<&Job>,
) -> Result<bool, DbError> {
    let pool = pool.sqlite_only("db::timelapse_rules::claim")?;
    let mut tx = pool
        .begin()
        .await
        .map_err(step("claiming a rule's period"))?;
    let r = sqlx::query(
        "UPDATE timelapse_rules SET covered_until = ? \
         WHERE id = ? AND enabled = 1 AND covered_until = ?",
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
        super::jobs::insert_in(&mut tx, job).await?;
    }
    tx.commit()
        .await
        .map_err(step("claiming a rule's period"))?;
    Ok(true)
}
