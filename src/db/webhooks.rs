//! Queries on `webhooks` (subscriptions; the secret column holds what `ops::webhooks` sealed)
//! and `webhook_deliveries` (the delivery log, kept to the newest [`KEEP_DELIVERIES`] per
//! subscription). Every query runs on both back-ends (`with_pool!`).

use chrono::{DateTime, Utc};

use super::{parse_opt_ts, parse_ts, step, with_pool, Cols, DbError, Pool};
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

fn from_row(row: &impl Cols) -> Result<WebhookRow, DbError> {
    let id = row.text("id")?;
    let events = row.text("events")?;
    let camera = row.opt_text("camera_id")?;
    Ok(WebhookRow {
        id: WebhookId::parse(&id).map_err(|_| corrupt("webhooks.id", &id))?,
        url: row.text("url")?,
        events: serde_json::from_str(&events).map_err(|_| corrupt("webhooks.events", &events))?,
        camera_id: camera
            .map(|c| CameraId::parse(&c).map_err(|_| corrupt("webhooks.camera_id", &c)))
            .transpose()?,
        sealed_secret: row.text("secret")?,
        enabled: row.int("enabled")? != 0,
        created_at: parse_ts(&row.text("created_at")?)?,
        updated_at: parse_ts(&row.text("updated_at")?)?,
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
    let sql = format!("INSERT INTO webhooks ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)");
    let events = serde_json::to_string(&w.events).unwrap_or_else(|_| "[]".into());
    with_pool!(pool, p => {
        sqlx::query(&sql)
            .bind(w.id.as_str())
            .bind(&w.url)
            .bind(&events)
            .bind(w.camera_id.as_ref().map(|c| c.as_str()))
            .bind(&w.sealed_secret)
            .bind(i64::from(w.enabled))
            .bind(fmt_ts(w.created_at))
            .bind(fmt_ts(w.updated_at))
            .execute(p)
            .await
            .map(|_| ())
    })
    .map_err(map_write("adding a webhook", w.camera_id.as_ref()))
}

/// Replace every field of an existing subscription; false when it is gone.
pub async fn update(pool: &Pool, w: &WebhookRow) -> Result<bool, DbError> {
    let events = serde_json::to_string(&w.events).unwrap_or_else(|_| "[]".into());
    let n = with_pool!(pool, p => {
        sqlx::query(
            "UPDATE webhooks SET url = $1, events = $2, camera_id = $3, secret = $4, \
             enabled = $5, updated_at = $6 WHERE id = $7",
        )
        .bind(&w.url)
        .bind(&events)
        .bind(w.camera_id.as_ref().map(|c| c.as_str()))
        .bind(&w.sealed_secret)
        .bind(i64::from(w.enabled))
        .bind(fmt_ts(w.updated_at))
        .bind(w.id.as_str())
        .execute(p)
        .await
        .map(|r| r.rows_affected())
    })
    .map_err(map_write("changing a webhook", w.camera_id.as_ref()))?;
    Ok(n == 1)
}

pub async fn get(pool: &Pool, id: &WebhookId) -> Result<Option<WebhookRow>, DbError> {
    let sql = format!("SELECT {COLUMNS} FROM webhooks WHERE id = $1");
    with_pool!(pool, p => {
        let row = sqlx::query(&sql)
            .bind(id.as_str())
            .fetch_optional(p)
            .await
            .map_err(step("reading a webhook"))?;
        row.as_ref().map(from_row).transpose()
    })
}

/// Every subscription, oldest first.
pub async fn list(pool: &Pool) -> Result<Vec<WebhookRow>, DbError> {
    let sql = format!("SELECT {COLUMNS} FROM webhooks ORDER BY created_at, id");
    with_pool!(pool, p => {
        sqlx::query(&sql)
            .fetch_all(p)
            .await
            .map_err(step("listing webhooks"))?
            .iter()
            .map(from_row)
            .collect()
    })
}

pub async fn delete(pool: &Pool, id: &WebhookId) -> Result<bool, DbError> {
    let n = with_pool!(pool, p => {
        sqlx::query("DELETE FROM webhooks WHERE id = $1")
            .bind(id.as_str())
            .execute(p)
            .await
            .map(|r| r.rows_affected())
    })
    .map_err(step("deleting a webhook"))?;
    Ok(n == 1)
}

const DELIVERY_COLUMNS: &str = "id, webhook_id, event_id, event_type, status, attempts, \
     response_code, last_error, created_at, last_attempt_at, next_attempt_at, finished_at";

fn delivery_from_row(row: &impl Cols) -> Result<Delivery, DbError> {
    let hook = row.text("webhook_id")?;
    let status = row.text("status")?;
    Ok(Delivery {
        id: row.text("id")?,
        webhook_id: WebhookId::parse(&hook)
            .map_err(|_| corrupt("webhook_deliveries.webhook_id", &hook))?,
        event_id: row.text("event_id")?,
        event_type: row.text("event_type")?,
        status: DeliveryStatus::from_db(&status)
            .ok_or_else(|| corrupt("webhook_deliveries.status", &status))?,
        attempts: row.int("attempts")?,
        response_code: row.opt_int("response_code")?,
        last_error: row.opt_text("last_error")?,
        created_at: parse_ts(&row.text("created_at")?)?,
        last_attempt_at: parse_opt_ts(row.opt_text("last_attempt_at")?)?,
        next_attempt_at: parse_opt_ts(row.opt_text("next_attempt_at")?)?,
        finished_at: parse_opt_ts(row.opt_text("finished_at")?)?,
    })
}

/// Write a delivery's row as it stands now (insert or replace), and trim the subscription's
/// log to the newest [`KEEP_DELIVERIES`] when it is new.
pub async fn save_delivery(pool: &Pool, d: &Delivery, new: bool) -> Result<(), DbError> {
    // An upsert on the id rather than SQLite's INSERT OR REPLACE: the same row afterwards, in
    // words both back-ends read.
    let sql = format!(
        "INSERT INTO webhook_deliveries ({DELIVERY_COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
         ON CONFLICT (id) DO UPDATE SET webhook_id = excluded.webhook_id, \
         event_id = excluded.event_id, event_type = excluded.event_type, \
         status = excluded.status, attempts = excluded.attempts, \
         response_code = excluded.response_code, last_error = excluded.last_error, \
         created_at = excluded.created_at, last_attempt_at = excluded.last_attempt_at, \
         next_attempt_at = excluded.next_attempt_at, finished_at = excluded.finished_at"
    );
    with_pool!(pool, p => {
    let mut tx = p.begin().await.map_err(step("starting a write"))?;
    sqlx::query(&sql)
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
            "DELETE FROM webhook_deliveries WHERE webhook_id = $1 AND id NOT IN \
             (SELECT id FROM webhook_deliveries WHERE webhook_id = $1 \
              ORDER BY created_at DESC, id DESC LIMIT $2)",
        )
        .bind(d.webhook_id.as_str())
        .bind(KEEP_DELIVERIES)
        .execute(&mut *tx)
        .await
        .map_err(step("trimming a webhook's delivery log"))?;
    }
    tx.commit().await.map_err(step("ending a write"))
    })
}

/// A subscription's log, newest first, at most `limit`.
pub async fn deliveries(
    pool: &Pool,
    hook: &WebhookId,
    limit: i64,
) -> Result<Vec<Delivery>, DbError> {
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE webhook_id = $1 \
         ORDER BY created_at DESC, id DESC LIMIT $2"
    );
    with_pool!(pool, p => {
        sqlx::query(&sql)
            .bind(hook.as_str())
            .bind(limit)
            .fetch_all(p)
            .await
            .map_err(step("listing webhook deliveries"))?
            .iter()
            .map(delivery_from_row)
            .collect()
    })
}
