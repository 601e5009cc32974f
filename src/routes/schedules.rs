//! Snapshot schedules: `/api/v1/cameras/{id}/snapshot-schedules` and
//! `/api/v1/snapshot-schedules/{id}`.

use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use super::cameras::path_id;
use super::error::{json_or_default, ApiError, ApiJson, ApiPath};
use crate::app::AppState;
use crate::models::{truncate, ErrorBody, Schedule, ScheduleCreate, SchedulePatch};
use crate::schedules;

/// Check a schedule id from the path: `sch_` and 32 lower-case hex digits, as
/// [`crate::models::new_id`] makes them. Anything else is a 422 and never reaches the database.
pub fn schedule_id(raw: &str) -> Result<&str, ApiError> {
    let ok = raw.strip_prefix("sch_").is_some_and(|h| {
        h.len() == 32 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    });
    if ok {
        Ok(raw)
    } else {
        Err(ApiError::invalid(
            "id",
            format!(
                "schedule id {:?} is not of the form sch_ followed by 32 hex digits",
                truncate(raw, 80)
            ),
        ))
    }
}

#[utoipa::path(get, path = "/api/v1/cameras/{id}/snapshot-schedules", operation_id = "list_schedules", tag = "schedules",
    params(("id" = String, Path, description = "camera id (slug)",
        pattern = r"^[a-z0-9][a-z0-9_-]{0,62}$", example = "demo")),
    responses((status = 200, body = [Schedule]),
        (status = 400, body = ErrorBody, description = "the path is not UTF-8"),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "the camera id is not a slug")))]
pub async fn list(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Vec<Schedule>>, ApiError> {
    let id = path_id(&id)?;
    Ok(Json(schedules::list(&state, &id).await?))
}

#[utoipa::path(post, path = "/api/v1/cameras/{id}/snapshot-schedules", operation_id = "create_schedule", tag = "schedules",
    params(("id" = String, Path, description = "camera id (slug)",
        pattern = r"^[a-z0-9][a-z0-9_-]{0,62}$", example = "demo")),
    request_body(content = ScheduleCreate, description = "optional: no body means all defaults"),
    responses(
        (status = 201, body = Schedule, links(
            ("update" = (operation_id = "update_schedule", parameters(("id" = "$response.body#/id")))),
            ("delete" = (operation_id = "delete_schedule", parameters(("id" = "$response.body#/id")))))),
        (status = 400, body = ErrorBody, description = "the body is not JSON, or the path is not UTF-8"),
        (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody, description = "the body is over 64 KiB"),
        (status = 422, body = ErrorBody, description = "the camera id is not a slug, or a field is unknown or invalid")))]
pub async fn create(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Schedule>), ApiError> {
    let id = path_id(&id)?;
    // An empty body means all defaults.
    let body: ScheduleCreate = json_or_default(&body?)?;
    Ok((
        StatusCode::CREATED,
        Json(schedules::create(&state, &id, body).await?),
    ))
}

#[utoipa::path(patch, path = "/api/v1/snapshot-schedules/{id}", operation_id = "update_schedule", tag = "schedules",
    params(("id" = String, Path, description = "schedule id",
        pattern = r"^sch_[0-9a-f]{32}$")),
    request_body = SchedulePatch,
    responses((status = 200, body = Schedule),
        (status = 400, body = ErrorBody, description = "the body is not JSON, or the path is not UTF-8"),
        (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody, description = "the body is over 64 KiB"),
        (status = 415, body = ErrorBody, description = "the body is not sent as application/json"),
        (status = 422, body = ErrorBody, description = "the schedule id is malformed, or a field is unknown or invalid")))]
pub async fn patch(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<SchedulePatch>,
) -> Result<Json<Schedule>, ApiError> {
    let id = schedule_id(&id)?;
    Ok(Json(schedules::update(&state, id, body).await?))
}

#[utoipa::path(delete, path = "/api/v1/snapshot-schedules/{id}", operation_id = "delete_schedule", tag = "schedules",
    params(("id" = String, Path, description = "schedule id",
        pattern = r"^sch_[0-9a-f]{32}$")),
    responses((status = 204, description = "deleted"),
        (status = 400, body = ErrorBody, description = "the path is not UTF-8"),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "the schedule id is malformed")))]
pub async fn delete(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let id = schedule_id(&id)?;
    schedules::delete(&state, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
