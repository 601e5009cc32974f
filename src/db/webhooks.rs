//! Queries on `webhooks` (subscriptions; the secret column holds what `ops::webhooks` sealed)
//! and `webhook_deliveries` (the delivery log, kept to the newest [`KEEP_DELIVERIES`] per
//! subscription).

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{parse_opt_ts, parse_ts, step, DbError, Pool};
use crate::models::integrations::{Delivery, DeliveryStatus, WebhookId};
use crate::models::{fmt_ts, CameraId};

/// Log entries kept per subscription; older ones are deleted as new ones come.
pub const KEEP_DELIVERIES: i64 = 1000;

/// A `webhooks` row as stored: the secret still sealed.
#[derive(Clone)]
pub struct WebhookRow {
    pub id: WebhookId,
    pub url: String,
    pub events: Vec<String>,
    pub camera_id: Option<CameraId>,
    pub sealed_secret: String,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, url, events, camera_id, secret, enabled, created_at, updated_at";

fn corrupt(what: &str, v: &str) -> DbError {
    DbError::Corrupt(format!("{what} = {v:?}"))
}

fn from_row(row: &sqlx::sqlite::SqliteRow) -> Result<WebhookRow, DbError> {
    let id: String = row.get("id");
    let events: String = row.get("events");
    let camera: Option<String> = row.get("camera_id");
    Ok(WebhookRow {
        id: WebhookId::parse(&id).map_err(|_| corrupt("webhooks.id", &id))?,
        url: row.get("url"),
        events: serde_json::from_str(&events).map_err(|_| corrupt("webhooks.events", &events))?,
        camera_id: camera
            .map(|c| CameraId::parse(&c).map_err(|_| corrupt("webhooks.camera_id", &c)))
            .transpose()?,
        sealed_secret: row.get("secret"),
        enabled: row.get::<i64, _>("enabled") != 0,
        created_at: parse_ts(row.get("created_at"))?,
        updated_at: parse_ts(row.get("updated_at"))?,
    })
}

fn map_write<'a>(
    what: &'static str,
    camera: Option<&'a CameraId>,
) -> impl FnOnce(sqlx::Error) -> DbError + 'a {
    move |e| match e {
        sqlx::Error::Database(d) if d.is_foreign_key_violation() => DbError::NoParent(format!(
            "camera {} does not exist",
            camera.map(|c| c.as_str()).unwrap_or("?")
        )),
        other => step(what)(other),
    }
}

pub async fn insert(pool: &Pool, w: &WebhookRow) -> Result<(), DbError> {
    sqlx::query(&format!(
        "INSERT INTO webhooks ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    ))
    .bind(w.id.as_str())
    .bind(&w.url)
    .bind(serde_json::to_string(&w.events).unwrap_or_else(|_| "[]".into()))
    .bind(w.camera_id.as_ref().map(|c| c.as_str()))
    .bind(&w.sealed_secret)
    .bind(i64::from(w.enabled))
    .bind(fmt_ts(w.created_at))
    .bind(fmt_ts(w.updated_at))
    .execute(pool)
    .await
    .map_err(map_write("adding a webhook", w.camera_id.as_ref()))?;
    Ok(())
}

/// Replace every field of an existing subscription; false when it is gone.
pub async fn update(pool: &Pool, w: &WebhookRow) -> Result<bool, DbError> {
    let r = sqlx::query(
        "UPDATE webhooks SET url = ?, events = ?, camera_id = ?, secret = ?, enabled = ?, \
         updated_at = ? WHERE id = ?",
    )
    .bind(&w.url)
    .bind(serde_json::to_string(&w.events).unwrap_or_else(|_| "[]".into()))
    .bind(w.camera_id.as_ref().map(|c| c.as_str()))
    .bind(&w.sealed_secret)
    .bind(i64::from(w.enabled))
    .bind(fmt_ts(w.updated_at))
    .bind(w.id.as_str())
    .execute(pool)
    .await
    .map_err(map_write("changing a webhook", w.camera_id.as_ref()))?;
    Ok(r.rows_affected() == 1)
}

pub async fn get(pool: &Pool, id: &WebhookId) -> Result<Option<WebhookRow>, DbError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM webhooks WHERE id = ?"))
        .bind(id.as_str())
        .fetch_optional(pool)
        .await
        .map_err(step("reading a webhook"))?;
    row.as_ref().map(from_row).transpose()
}

/// Every subscription, oldest first.
pub async fn list(pool: &Pool) -> Result<Vec<WebhookRow>, DbError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM webhooks ORDER BY created_at, id"
    ))
    .fetch_all(pool)
    .await
    .map_err(step("listing webhooks"))?;
    rows.iter().map(from_row).collect()
}

pub async fn delete(pool: &Pool, id: &WebhookId) -> Result<bool, DbError> {
    let r = sqlx::query("DELETE FROM webhooks WHERE id = ?")
        .bind(id.as_str())
        .execute(pool)
        .await
        .map_err(step("deleting a webhook"))?;
    Ok(r.rows_affected() == 1)
}

const DELIVERY_COLUMNS: &str = "id, webhook_id, event_id, event_type, status, attempts, \
     response_code, last_error, created_at, last_attempt_at, next_attempt_at, finished_at";

fn delivery_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Delivery, DbError> {
    let hook: String = row.get("webhook_id");
    let status: String = row.get("status");
    Ok(Delivery {
        id: row.get("id"),
        webhook_id: WebhookId::parse(&hook)
            .map_err(|_| corrupt("webhook_deliveries.webhook_id", &hook))?,
        event_id: row.get("event_id"),
        event_type: row.get("event_type"),
        status: DeliveryStatus::from_db(&status)
            .ok_or_else(|| corrupt("webhook_deliveries.status", &status))?,
        attempts: row.get("attempts"),
        response_code: row.get("response_code"),
        last_error: row.get("last_error"),
        created_at: parse_ts(row.get("created_at"))?,
        last_attempt_at: parse_opt_ts(row.get("last_attempt_at"))?,
        next_attempt_at: parse_opt_ts(row.get("next_attempt_at"))?,
        finished_at: parse_opt_ts(row.get("finished_at"))?,
    })
}

/// Write a delivery's row as it stands now (insert or replace), and trim the subscription's
/// log to the newest [`KEEP_DELIVERIES`] when it is new.
pub async fn save_delivery(pool: &Pool, d: &Delivery, new: bool) -> Result<(), DbError> {
    let mut tx = pool.begin().await.map_err(step("starting a write"))?;
    sqlx::query(&format!(
        "INSERT OR REPLACE INTO webhook_deliveries ({DELIVERY_COLUMNS}) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ))
    .bind(&d.id)
    .bind(d.webhook_id.as_str())
    .bind(&d.event_id)
    .bind(&d.event_type)
    .bind(d.status.as_str())
    .bind(d.attempts)
    .bind(d.response_code)
    .bind(&d.last_error)
    .bind(fmt_ts(d.created_at))
    .bind(d.last_attempt_at.map(fmt_ts))
    .bind(d.next_attempt_at.map(fmt_ts))
    .bind(d.finished_at.map(fmt_ts))
    .execute(&mut *tx)
    .await
    .map_err(|e| match e {
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
            DbError::NoParent(format!("webhook {} was deleted", d.webhook_id))
        }
        other => step("recording a webhook delivery")(other),
    })?;
    if new {
        sqlx::query(
            "DELETE FROM webhook_deliveries WHERE webhook_id = ?1 AND id NOT IN \
             (SELECT id FROM webhook_deliveries WHERE webhook_id = ?1 \
              ORDER BY created_at DESC, id DESC LIMIT ?2)",
        )
        .bind(d.webhook_id.as_str())
        .bind(KEEP_DELIVERIES)
        .execute(&mut *tx)
        .await
        .map_err(step("trimming a webhook's delivery log"))?;
    }
    tx.commit().await.map_err(step("ending a write"))?;
    Ok(())
}

/// A subscription's log, newest first, at most `limit`.
pub async fn deliveries(
    pool: &Pool,
    hook: &WebhookId,
    limit: i64,
) -> Result<Vec<Delivery>, DbError> {
    let rows = sqlx::query(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE webhook_id = ? \
         ORDER BY created_at DESC, id DESC LIMIT ?"
    ))
    .bind(hook.as_str())
    .bind(limit)
    .fetch_all(pool)
    .await
    .map_err(step("listing webhook deliveries"))?;
    rows.iter().map(delivery_from_row).collect()
}
