//! Rows and API bodies of the integrations: outages (a camera's offline periods) and webhook
//! subscriptions with their delivery log (docs/integrations.md). Ids are parsed, not checked
//! later: a [`WebhookId`] that exists is `whk_` and 32 hex digits.
//!
//! Request bodies keep loose JSON types (text, lists of text) so that `ops::webhooks` can say
//! which field is wrong in a sentence of its own.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{truncate, CameraId};

/// One outage of a camera: from the moment it went dark (the first failure of the run, or its
/// last frame) to its next successful capture (`ended_at`, `null` while it lasts).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Outage {
    #[schema(example = "out_0123456789abcdef0123456789abcdef")]
    pub id: String,
    pub camera_id: CameraId,
    pub started_at: DateTime<Utc>,
    /// `null` while the camera is still offline.
    pub ended_at: Option<DateTime<Utc>>,
    /// The error that began it (credentials masked); `null` when it was opened by silence (no
    /// frame for HELDAR_OFFLINE_AFTER_S) without any failure.
    pub first_error: Option<String>,
    /// The latest error during it.
    pub last_error: Option<String>,
    /// Failed captures during it, counting the ones that opened it.
    pub failures: i64,
    /// Seconds it lasted; `null` while open.
    pub duration_s: Option<f64>,
}

/// The webhook event types a subscription may name.
pub const WEBHOOK_EVENTS: [&str; 5] = [
    "frame.stored",
    "capture.failed",
    "camera.offline",
    "camera.recovered",
    "timelapse.done",
];

/// The id of a webhook subscription: `whk_` and 32 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, pattern = "^whk_[0-9a-f]{32}$")]
pub struct WebhookId(String);

impl WebhookId {
    pub const PATTERN: &'static str = "^whk_[0-9a-f]{32}$";

    pub fn parse(raw: &str) -> Result<WebhookId, String> {
        let ok = raw.strip_prefix("whk_").is_some_and(|h| {
            h.len() == 32 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        });
        if ok {
            Ok(WebhookId(raw.to_string()))
        } else {
            Err(format!(
                "webhook id {:?} is not of the form whk_ followed by 32 hex digits",
                truncate(raw, 80)
            ))
        }
    }

    pub fn generate() -> WebhookId {
        WebhookId(super::new_id("whk"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WebhookId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A `webhooks` row, its secret in the clear (opened by `ops::webhooks`; sealed at rest).
#[derive(Clone, PartialEq, Eq)]
pub struct Webhook {
    pub id: WebhookId,
    pub url: String,
    pub events: Vec<String>,
    pub camera_id: Option<CameraId>,
    pub secret: String,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl fmt::Debug for Webhook {
    // Never the secret, not even in a debug print.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("events", &self.events)
            .field("camera_id", &self.camera_id)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

/// A subscription as the API shows it: the secret masked.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookView {
    pub id: WebhookId,
    #[schema(example = "https://hooks.example.net/heldar")]
    pub url: String,
    /// Event types delivered: `frame.stored`, `capture.failed`, `camera.offline`,
    /// `camera.recovered`, `timelapse.done`.
    pub events: Vec<String>,
    /// Only this camera's events; `null` for every camera.
    pub camera_id: Option<CameraId>,
    /// Always `***`: the secret is shown once, in the response that created it.
    #[schema(example = "***")]
    pub secret: String,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&Webhook> for WebhookView {
    fn from(w: &Webhook) -> Self {
        WebhookView {
            id: w.id.clone(),
            url: w.url.clone(),
            events: w.events.clone(),
            camera_id: w.camera_id.clone(),
            secret: crate::camera::mask::MASK.to_string(),
            enabled: w.enabled,
            created_at: w.created_at,
            updated_at: w.updated_at,
        }
    }
}

/// `POST /api/v1/webhooks`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"url": "https://hooks.example.net/heldar", "events": ["camera.offline", "camera.recovered"]}))]
pub struct WebhookCreate {
    /// `http` or `https`, no user name or password in it.
    pub url: String,
    /// One or more of `frame.stored`, `capture.failed`, `camera.offline`, `camera.recovered`,
    /// `timelapse.done`.
    pub events: Vec<String>,
    /// Only this camera's events; leave out (or `null`) for every camera.
    #[schema(value_type = Option<String>, pattern = r"^[a-z0-9][a-z0-9_-]{0,62}$")]
    pub camera_id: Option<String>,
    /// The HMAC key (16 to 256 printable characters, no spaces); generated when left out and
    /// returned once in the answer.
    pub secret: Option<String>,
    /// Default true.
    pub enabled: Option<bool>,
}

/// `PATCH /api/v1/webhooks/{id}`: the fields to change.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookPatch {
    #[serde(default, deserialize_with = "not_null")]
    pub url: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    pub events: Option<Vec<String>>,
    /// A camera id, or `null` (given explicitly) for every camera.
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<String>, pattern = r"^[a-z0-9][a-z0-9_-]{0,62}$")]
    pub camera_id: Option<Option<String>>,
    /// A new secret (never echoed back).
    #[serde(default, deserialize_with = "not_null")]
    pub secret: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    pub enabled: Option<bool>,
}

/// A field that has no "none" (`url`, `events`, `secret`, `enabled`): absent keeps it, `null` is
/// refused (a 422 naming the field) rather than read as "absent", because a client that sends
/// `null` means to clear something and would otherwise be told it worked.
fn not_null<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    match Option::<T>::deserialize(d)? {
        Some(v) => Ok(Some(v)),
        None => Err(serde::de::Error::custom(
            "null cannot clear this field: give a value, or leave the field out to keep it",
        )),
    }
}

/// `camera_id: null` (every camera) is not the same as leaving it out (unchanged).
mod double_option {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<String>>, D::Error> {
        Ok(Some(Option::<String>::deserialize(d)?))
    }
}

/// The answer to a create: the view, and the secret, this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookCreated {
    #[serde(flatten)]
    pub view: WebhookView,
    /// The secret in the clear: shown in this answer only, never again (`secret` above is
    /// masked like everywhere else).
    pub signing_secret: String,
}

/// Where one delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Being tried, or waiting for its next try.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Given up: a 4xx other than 429, a redirect elsewhere, or every attempt failed.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    pub fn from_db(s: &str) -> Option<DeliveryStatus> {
        match s {
            "pending" => Some(DeliveryStatus::Pending),
            "delivered" => Some(DeliveryStatus::Delivered),
            "failed" => Some(DeliveryStatus::Failed),
            _ => None,
        }
    }
}

/// One entry of a subscription's delivery log.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Delivery {
    /// Also the `Heldar-Delivery` header of each attempt.
    pub id: String,
    pub webhook_id: WebhookId,
    /// The event's id (the body's `id`).
    pub event_id: String,
    pub event_type: String,
    pub status: DeliveryStatus,
    pub attempts: i64,
    /// The receiver's last HTTP status; `null` when it never answered.
    pub response_code: Option<i64>,
    /// Why the last attempt failed; `null` after a success.
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// When the next attempt is due, while `pending` between attempts.
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}
