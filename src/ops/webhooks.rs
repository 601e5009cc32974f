//! Webhook subscriptions: creating, listing, changing and deleting them, and reading a
//! subscription's delivery log — what `/api/v1/webhooks` calls. Delivery itself is the
//! `webhooks` service's (`services::webhooks`), which this module tells about every change
//! through [`WebhookState`].
//!
//! A subscription's URL is checked like a camera URL (`http`/`https`, a host, at most 2,048
//! characters; no user name or password; no cloud metadata address unless
//! HELDAR_ALLOW_METADATA_HOSTS). Its secret is sealed at rest like a camera password, generated
//! when not given, returned once by [`create`] and never again: views show it masked, the log
//! never names it. Bad input is an [`OpError::Invalid`] naming the field.

use chrono::SubsecRound;
use rand::RngCore;

use crate::db::{self, webhooks::WebhookRow};
use crate::error::{OpError, OpResult};
use crate::models::integrations::{
    Delivery, Webhook, WebhookCreate, WebhookId, WebhookPatch, WebhookView, WEBHOOK_EVENTS,
};
use crate::models::{truncate, CameraId};

use super::Ops;

/// The column a secret is sealed for (the sealer binds each value to its row and column).
const SECRET_COLUMN: &str = "webhook_secret";

/// Subscriptions changed: the webhook service re-reads them.
#[derive(Default)]
pub struct WebhookState {
    pub changed: tokio::sync::Notify,
}

/// The event types, checked: one or more of [`WEBHOOK_EVENTS`], without repeats.
fn check_events(events: &[String]) -> Result<Vec<String>, OpError> {
    if events.is_empty() {
        return Err(OpError::invalid(
            "events",
            format!(
                "events must name at least one event type: {}",
                WEBHOOK_EVENTS.join(", ")
            ),
        ));
    }
    let mut out: Vec<String> = Vec::new();
    for e in events {
        if !WEBHOOK_EVENTS.contains(&e.as_str()) {
            return Err(OpError::invalid(
                "events",
                format!(
                    "{:?} is not a webhook event type; use {}",
                    truncate(e, 40),
                    WEBHOOK_EVENTS.join(", ")
                ),
            ));
        }
        if !out.contains(e) {
            out.push(e.clone());
        }
    }
    Ok(out)
}

fn check_url(ops: &Ops, raw: &str) -> Result<String, OpError> {
    let url = crate::camera::spec::check_http_url("url", raw)?;
    if !ops.config.allow_metadata_hosts {
        use crate::capture::hosts::{refusal_as, HostUse};
        if let Some(why) = refusal_as(&url, HostUse::Webhook) {
            return Err(OpError::invalid("url", format!("url: {why}")));
        }
    }
    Ok(url.to_string())
}

fn check_secret(secret: &str) -> Result<(), OpError> {
    let ok = (16..=256).contains(&secret.len()) && secret.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        // Never quote it back.
        Err(OpError::invalid(
            "secret",
            "secret must be 16 to 256 printable ASCII characters without spaces (leave it out \
             and Heldar generates one)",
        ))
    }
}

async fn check_camera(ops: &Ops, raw: Option<&str>) -> Result<Option<CameraId>, OpError> {
    let Some(raw) = raw else { return Ok(None) };
    let id = CameraId::parse(raw).map_err(|m| OpError::invalid("camera_id", m))?;
    if !db::cameras::exists(&ops.db, &id).await? {
        return Err(OpError::invalid(
            "camera_id",
            format!("camera {:?} does not exist", id.as_str()),
        ));
    }
    Ok(Some(id))
}

/// A new secret: `whsec_` and 64 hex digits (256 random bits).
fn generate_secret() -> String {
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("whsec_{hex}")
}

fn open_row(ops: &Ops, row: WebhookRow) -> OpResult<Webhook> {
    let secret = ops
        .sealer
        .open(row.id.as_str(), SECRET_COLUMN, &row.sealed_secret)?;
    Ok(Webhook {
        id: row.id,
        url: row.url,
        events: row.events,
        camera_id: row.camera_id,
        secret,
        enabled: row.enabled,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

fn seal_row(ops: &Ops, w: &Webhook) -> WebhookRow {
    WebhookRow {
        id: w.id.clone(),
        url: w.url.clone(),
        events: w.events.clone(),
        camera_id: w.camera_id.clone(),
        sealed_secret: ops.sealer.seal(w.id.as_str(), SECRET_COLUMN, &w.secret),
        enabled: w.enabled,
        created_at: w.created_at,
        updated_at: w.updated_at,
    }
}

/// Create a subscription; returns its view and its secret (shown this once).
pub async fn create(ops: &Ops, body: WebhookCreate) -> OpResult<(WebhookView, String)> {
    let url = check_url(ops, &body.url)?;
    let events = check_events(&body.events)?;
    if let Some(s) = &body.secret {
        check_secret(s)?;
    }
    let camera_id = check_camera(ops, body.camera_id.as_deref()).await?;
    // Milliseconds, as every stored time: the answer shows what a later GET reads back.
    let now = ops.clock.now().trunc_subsecs(3);
    let w = Webhook {
        id: WebhookId::generate(),
        url,
        events,
        camera_id,
        secret: body.secret.unwrap_or_else(generate_secret),
        enabled: body.enabled.unwrap_or(true),
        created_at: now,
        updated_at: now,
    };
    db::webhooks::insert(&ops.db, &seal_row(ops, &w)).await?;
    tracing::info!(webhook = %w.id, url = %crate::camera::mask::mask_url(&w.url),
        events = %w.events.join(","), camera = ?w.camera_id.as_ref().map(|c| c.as_str()),
        "webhook created");
    ops.webhooks.changed.notify_one();
    Ok((WebhookView::from(&w), w.secret))
}

fn not_found(id: &WebhookId) -> OpError {
    OpError::not_found(format!("no webhook {id}"))
}

/// Every subscription, secrets open (the webhook service).
pub async fn all(ops: &Ops) -> OpResult<Vec<Webhook>> {
    db::webhooks::list(&ops.db)
        .await?
        .into_iter()
        .map(|r| open_row(ops, r))
        .collect()
}

pub async fn list(ops: &Ops) -> OpResult<Vec<WebhookView>> {
    Ok(db::webhooks::list(&ops.db)
        .await?
        .into_iter()
        .map(|r| {
            // The view needs no secret: no need to open it.
            WebhookView::from(&Webhook {
                id: r.id,
                url: r.url,
                events: r.events,
                camera_id: r.camera_id,
                secret: String::new(),
                enabled: r.enabled,
                created_at: r.created_at,
                updated_at: r.updated_at,
            })
        })
        .collect())
}

async fn get_full(ops: &Ops, id: &WebhookId) -> OpResult<Webhook> {
    let row = db::webhooks::get(&ops.db, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    open_row(ops, row)
}

pub async fn get(ops: &Ops, id: &WebhookId) -> OpResult<WebhookView> {
    Ok(WebhookView::from(&get_full(ops, id).await?))
}

/// Change the given fields.
pub async fn update(ops: &Ops, id: &WebhookId, patch: WebhookPatch) -> OpResult<WebhookView> {
    let mut w = get_full(ops, id).await?;
    if let Some(u) = &patch.url {
        w.url = check_url(ops, u)?;
    }
    if let Some(e) = &patch.events {
        w.events = check_events(e)?;
    }
    if let Some(s) = patch.secret {
        check_secret(&s)?;
        w.secret = s;
    }
    if let Some(c) = patch.camera_id {
        w.camera_id = check_camera(ops, c.as_deref()).await?;
    }
    if let Some(e) = patch.enabled {
        w.enabled = e;
    }
    w.updated_at = ops.clock.now().trunc_subsecs(3);
    if !db::webhooks::update(&ops.db, &seal_row(ops, &w)).await? {
        return Err(not_found(id));
    }
    tracing::info!(webhook = %w.id, url = %crate::camera::mask::mask_url(&w.url),
        events = %w.events.join(","), enabled = w.enabled, "webhook changed");
    ops.webhooks.changed.notify_one();
    Ok(WebhookView::from(&w))
}

pub async fn delete(ops: &Ops, id: &WebhookId) -> OpResult<()> {
    if !db::webhooks::delete(&ops.db, id).await? {
        return Err(not_found(id));
    }
    tracing::info!(webhook = %id, "webhook deleted");
    ops.webhooks.changed.notify_one();
    Ok(())
}

/// A subscription's delivery log, newest first, at most `limit`.
pub async fn deliveries(ops: &Ops, id: &WebhookId, limit: i64) -> OpResult<Vec<Delivery>> {
    if db::webhooks::get(&ops.db, id).await?.is_none() {
        return Err(not_found(id));
    }
    Ok(db::webhooks::deliveries(&ops.db, id, limit).await?)
}
