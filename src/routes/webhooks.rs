//! `/api/v1/webhooks`: admins manage webhook subscriptions and read their delivery logs. A
//! subscription's secret appears once, in the creation response (`signing_secret`), and is
//! masked in every other answer. docs/integrations.md describes the deliveries.

use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use utoipa::openapi::path::{Parameter, ParameterIn};

use super::error::{ApiError, ApiJson};
use super::paging::Listed;
use super::params::{self, WebhookPath};
use crate::db::webhooks::KEEP_DELIVERIES;
use crate::models::integrations::{
    Delivery, WebhookCreate, WebhookCreated, WebhookPatch, WebhookView,
};
use crate::models::{truncate, ErrorBody};
use crate::ops::{self, Ops};

#[utoipa::path(post, path = "/api/v1/webhooks", operation_id = "create_webhook", tag = "webhooks",
    request_body = WebhookCreate,
    extensions(("x-heldar-role" = json!("admin"))),
    responses(
        (status = 201, body = WebhookCreated, description = "created; `signing_secret` is shown this once",
            headers(("location" = String, description = "`/api/v1/webhooks/{id}`"))),
        (status = 400, body = ErrorBody, description = "the body is not JSON"),
        (status = 413, body = ErrorBody, description = "the body is over 64 KiB"),
        (status = 415, body = ErrorBody, description = "the body is not sent as application/json"),
        (status = 422, body = ErrorBody, description = "a field is unknown or invalid: the URL (scheme, user info, metadata host), an event type, the camera, the secret")))]
pub async fn create(
    State(ops): State<Ops>,
    ApiJson(body): ApiJson<WebhookCreate>,
) -> Result<Response, ApiError> {
    let (view, secret) = ops::webhooks::create(&ops, body).await?;
    let location = format!("/api/v1/webhooks/{}", view.id);
    let mut resp = (
        StatusCode::CREATED,
        Json(WebhookCreated {
            view,
            signing_secret: secret,
        }),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

#[utoipa::path(get, path = "/api/v1/webhooks", operation_id = "list_webhooks", tag = "webhooks",
    extensions(("x-heldar-role" = json!("admin"))),
    responses((status = 200, body = [WebhookView], description = "every subscription, oldest first, secrets masked (not paged)",
            headers(("x-total-count" = i64, description = "how many subscriptions there are (the array's length)")))))]
pub async fn list(State(ops): State<Ops>) -> Result<Listed<WebhookView>, ApiError> {
    Ok(Listed::all(ops::webhooks::list(&ops).await?))
}

#[utoipa::path(get, path = "/api/v1/webhooks/{id}", operation_id = "get_webhook", tag = "webhooks",
    extensions(("x-heldar-role" = json!("admin"))),
    params(WebhookPath),
    responses((status = 200, body = WebhookView),
        (status = 400, body = ErrorBody, description = "the path is not UTF-8"),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "the id is malformed")))]
pub async fn get_one(
    State(ops): State<Ops>,
    WebhookPath(id): WebhookPath,
) -> Result<Json<WebhookView>, ApiError> {
    Ok(Json(ops::webhooks::get(&ops, &id).await?))
}

#[utoipa::path(patch, path = "/api/v1/webhooks/{id}", operation_id = "update_webhook", tag = "webhooks",
    request_body = WebhookPatch,
    extensions(("x-heldar-role" = json!("admin"))),
    params(WebhookPath),
    responses((status = 200, body = WebhookView),
        (status = 400, body = ErrorBody, description = "the body is not JSON, or the path is not UTF-8"),
        (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody, description = "the body is over 64 KiB"),
        (status = 415, body = ErrorBody, description = "the body is not sent as application/json"),
        (status = 422, body = ErrorBody, description = "the id is malformed, or a field is unknown or invalid")))]
pub async fn patch(
    State(ops): State<Ops>,
    WebhookPath(id): WebhookPath,
    ApiJson(body): ApiJson<WebhookPatch>,
) -> Result<Json<WebhookView>, ApiError> {
    Ok(Json(ops::webhooks::update(&ops, &id, body).await?))
}

#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", operation_id = "delete_webhook", tag = "webhooks",
    extensions(("x-heldar-role" = json!("admin"))),
    params(WebhookPath),
    responses((status = 204, description = "deleted, with its delivery log"),
        (status = 400, body = ErrorBody, description = "the path is not UTF-8"),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "the id is malformed")))]
pub async fn delete(
    State(ops): State<Ops>,
    WebhookPath(id): WebhookPath,
) -> Result<StatusCode, ApiError> {
    ops::webhooks::delete(&ops, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Query of the delivery log.
#[derive(Debug, Deserialize)]
pub struct DeliveriesQuery {
    pub limit: Option<String>,
}

impl utoipa::IntoParams for DeliveriesQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let mut p = params::limit_param("deliveries", "newest first");
        p.description = Some(format!(
            "At most this many deliveries, newest first; 1 to {KEEP_DELIVERIES} (the log keeps \
             the newest {KEEP_DELIVERIES}), default 100."
        ));
        p.schema = Some(
            utoipa::openapi::ObjectBuilder::new()
                .schema_type(utoipa::openapi::Type::Integer)
                .minimum(Some(1))
                .maximum(Some(KEEP_DELIVERIES))
                .into(),
        );
        vec![p]
    }
}

#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", operation_id = "list_webhook_deliveries", tag = "webhooks",
    extensions(("x-heldar-role" = json!("admin"))),
    params(WebhookPath, DeliveriesQuery),
    responses((status = 200, body = [Delivery], description = "the subscription's newest deliveries, newest first",
            headers(("x-total-count" = i64, description = "how many are in this answer"))),
        (status = 400, body = ErrorBody, description = "the path is not UTF-8, or the query string cannot be read"),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "the id is malformed, or limit is invalid")))]
pub async fn deliveries(
    State(ops): State<Ops>,
    WebhookPath(id): WebhookPath,
    query: Result<Query<DeliveriesQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Listed<Delivery>, ApiError> {
    let Query(q) = query?;
    let limit = match q.limit.as_deref() {
        None => 100,
        Some(s) => match s.parse::<i64>() {
            Ok(n) if (1..=KEEP_DELIVERIES).contains(&n) => n,
            _ => {
                return Err(ApiError::invalid(
                    "limit",
                    format!(
                        "limit {:?} must be a whole number from 1 to {KEEP_DELIVERIES}",
                        truncate(s, 20)
                    ),
                ))
            }
        },
    };
    Ok(Listed::all(
        ops::webhooks::deliveries(&ops, &id, limit).await?,
    ))
}
