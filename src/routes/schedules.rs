//! Snapshot schedules: `/api/v1/cameras/{id}/snapshot-schedules` (one camera's, unpaged),
//! `/api/v1/snapshot-schedules` (every schedule, filtered and paged),
//! `/api/v1/snapshot-schedules/{id}` and its `preview`, and the preview of an unsaved schedule
//! (`/api/v1/cameras/{id}/snapshot-schedules/preview`).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{StatusCode, Uri};
use axum::Json;
use serde::Deserialize;
use utoipa::openapi::path::{Parameter, ParameterIn};

use super::error::{ApiError, ApiJson, OptionalJson};
use super::paging::Listed;
use super::params::{self, CameraPath, SchedulePath};
use crate::models::{
    truncate, CameraId, DraftPreview, ErrorBody, Schedule, ScheduleCreate, SchedulePatch,
    SchedulePreview,
};
use crate::ops::{self, Ops};

/// Query of the list of every schedule; all text, so each bad value gets its own sentence.
#[derive(Debug, Deserialize)]
pub struct AllQuery {
    pub camera: Option<String>,
    pub enabled: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

impl utoipa::IntoParams for AllQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![
            params::camera_filter_param(
                "Only this camera's schedules (404 if there is no such camera).",
            ),
            params::flag_param(
                "enabled",
                "Only enabled (`true`) or only disabled (`false`) schedules.",
            ),
            params::limit_param("schedules", "oldest first"),
            params::cursor_param(),
        ]
    }
}

/// Every schedule, optionally one camera's, enabled or disabled ones; paged, oldest first.
#[utoipa::path(get, path = "/api/v1/snapshot-schedules", operation_id = "list_all_schedules", tag = "schedules",
    extensions(("x-heldar-role" = json!("viewer"))),
    params(AllQuery),
    responses((status = 200, body = [Schedule],
            description = "one page of every schedule that matches the filters, oldest first",
            headers(("x-total-count" = i64, description = "how many schedules match the filters in all, whatever `limit` and `cursor`"),
                ("link" = String, description = "only when more schedules remain: `<…?cursor=…>; rel=\"next\"` (RFC 8288), this request with the next page's cursor"))),
        (status = 400, body = ErrorBody, description = "the query string cannot be read"),
        (status = 404, body = ErrorBody, description = "`camera` names no camera"),
        (status = 422, body = ErrorBody, description = "camera, enabled, limit or cursor is invalid")))]
pub async fn list_all(
    State(ops): State<Ops>,
    uri: Uri,
    query: Result<Query<AllQuery>, QueryRejection>,
) -> Result<Listed<Schedule>, ApiError> {
    let Query(q) = query?;
    let camera = q
        .camera
        .as_deref()
        .map(|c| CameraId::parse(c).map_err(|m| ApiError::invalid("camera", m)))
        .transpose()?;
    let enabled = q
        .enabled
        .as_deref()
        .map(|v| params::flag("enabled", v))
        .transpose()?;
    let limit = params::limit(q.limit.as_deref())?;
    let after = q.cursor.as_deref().map(params::decode_cursor).transpose()?;
    let page =
        ops::schedules::list_all(&ops, camera.as_ref(), enabled, after.as_ref(), limit).await?;
    Ok(Listed::page(page, &uri, Schedule::clone))
}

/// One schedule by its id.
#[utoipa::path(get, path = "/api/v1/snapshot-schedules/{id}", operation_id = "get_schedule", tag = "schedules",
    extensions(("x-heldar-role" = json!("viewer"))),
    params(SchedulePath),
    responses((status = 200, body = Schedule),
        (status = 400, body = ErrorBody, description = "the path is not UTF-8"),
        (status = 404, body = ErrorBody, description = "no schedule has this id"),
        (status = 422, body = ErrorBody, description = "the schedule id is malformed")))]
pub async fn get_one(
    State(ops): State<Ops>,
    SchedulePath(id): SchedulePath,
) -> Result<Json<Schedule>, ApiError> {
    Ok(Json(ops::schedules::get(&ops, &id).await?))
}

#[utoipa::path(get, path = "/api/v1/cameras/{id}/snapshot-schedules", operation_id = "list_schedules", tag = "schedules",
    extensions(("x-heldar-role" = json!("viewer"))),
    params(CameraPath),
    responses((status = 200, body = [Schedule], description = "every schedule of the camera, oldest first (not paged)",
            headers(("x-total-count" = i64, description = "how many schedules the camera has (the array's length)"))),
        (status = 400, body = ErrorBody, description = "the path is not UTF-8"),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "the camera id is not a slug")))]
pub async fn list(
    State(ops): State<Ops>,
    CameraPath(id): CameraPath,
) -> Result<Listed<Schedule>, ApiError> {
    Ok(Listed::all(ops::schedules::list(&ops, &id).await?))
}

#[utoipa::path(post, path = "/api/v1/cameras/{id}/snapshot-schedules", operation_id = "create_schedule", tag = "schedules",
    extensions(("x-heldar-role" = json!("operator"))),
    params(CameraPath),
    request_body(content = ScheduleCreate, description = "optional: no body means all defaults"),
    responses(
        (status = 201, body = Schedule, links(
            ("get" = (operation_id = "get_schedule", parameters(("id" = "$response.body#/id")))),
            ("update" = (operation_id = "update_schedule", parameters(("id" = "$response.body#/id")))),
            ("delete" = (operation_id = "delete_schedule", parameters(("id" = "$response.body#/id")))))),
        (status = 400, body = ErrorBody, description = "the body is not JSON, or the path is not UTF-8"),
        (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody, description = "the body is over 64 KiB"),
        (status = 415, body = ErrorBody, description = "the body (or its declared Content-Type) is not application/json"),
        (status = 422, body = ErrorBody, description = "the camera id is not a slug, or a field is unknown or invalid")))]
pub async fn create(
    State(ops): State<Ops>,
    CameraPath(id): CameraPath,
    // No body (and no Content-Type) means all defaults.
    OptionalJson(body): OptionalJson<ScheduleCreate>,
) -> Result<(StatusCode, Json<Schedule>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(ops::schedules::create(&ops, &id, body).await?),
    ))
}

#[utoipa::path(patch, path = "/api/v1/snapshot-schedules/{id}", operation_id = "update_schedule", tag = "schedules",
    extensions(("x-heldar-role" = json!("operator"))),
    params(SchedulePath),
    request_body = SchedulePatch,
    responses((status = 200, body = Schedule),
        (status = 400, body = ErrorBody, description = "the body is not JSON, or the path is not UTF-8"),
        (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody, description = "the body is over 64 KiB"),
        (status = 415, body = ErrorBody, description = "the body is not sent as application/json"),
        (status = 422, body = ErrorBody, description = "the schedule id is malformed, or a field is unknown or invalid")))]
pub async fn patch(
    State(ops): State<Ops>,
    SchedulePath(id): SchedulePath,
    ApiJson(body): ApiJson<SchedulePatch>,
) -> Result<Json<Schedule>, ApiError> {
    Ok(Json(ops::schedules::update(&ops, &id, body).await?))
}

#[utoipa::path(delete, path = "/api/v1/snapshot-schedules/{id}", operation_id = "delete_schedule", tag = "schedules",
    extensions(("x-heldar-role" = json!("operator"))),
    params(SchedulePath),
    responses((status = 204, description = "deleted"),
        (status = 400, body = ErrorBody, description = "the path is not UTF-8"),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "the schedule id is malformed")))]
pub async fn delete(
    State(ops): State<Ops>,
    SchedulePath(id): SchedulePath,
) -> Result<StatusCode, ApiError> {
    ops::schedules::delete(&ops, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Query of the preview; text, so a bad `n` gets its own sentence.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PreviewQuery {
    /// How many slots, 1..=100; default 5.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub n: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/snapshot-schedules/{id}/preview", operation_id = "preview_schedule", tag = "schedules",
    extensions(("x-heldar-role" = json!("viewer"))),
    params(SchedulePath, PreviewQuery),
    responses((status = 200, body = SchedulePreview),
        (status = 400, body = ErrorBody, description = "the query names an unknown parameter, or the path is not UTF-8"),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "the schedule id is malformed, or n is not 1 to 100")))]
pub async fn preview(
    State(ops): State<Ops>,
    SchedulePath(id): SchedulePath,
    query: Result<Query<PreviewQuery>, QueryRejection>,
) -> Result<Json<SchedulePreview>, ApiError> {
    let n = preview_n(query)?;
    Ok(Json(ops::schedules::preview(&ops, &id, n).await?))
}

/// The preview's `n`: default 5, else 1..=[`ops::schedules::MAX_PREVIEW`] (a 422 naming `n`).
fn preview_n(query: Result<Query<PreviewQuery>, QueryRejection>) -> Result<usize, ApiError> {
    let Query(q) = query?;
    let max = ops::schedules::MAX_PREVIEW;
    let n = match q.n.as_deref() {
        None => 5,
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => n,
            _ => {
                return Err(ApiError::invalid(
                    "n",
                    format!(
                        "n {:?} must be a whole number from 1 to {max}",
                        truncate(raw, 20)
                    ),
                ))
            }
        },
    };
    Ok(n)
}

/// The slots an unsaved schedule would fire: the body is a create body, checked as `create`
/// checks it (a bad field is the same 422 with the same sentence), and nothing is stored. For
/// a form that shows the next slots while the operator edits.
#[utoipa::path(post, path = "/api/v1/cameras/{id}/snapshot-schedules/preview", operation_id = "preview_draft_schedule", tag = "schedules",
    extensions(("x-heldar-role" = json!("viewer"))),
    params(CameraPath, PreviewQuery),
    request_body(content = ScheduleCreate, description = "a create body (optional: no body means all defaults); nothing is created"),
    responses((status = 200, body = DraftPreview, description = "the first n slots the schedule would fire if it were created now"),
        (status = 400, body = ErrorBody, description = "the body is not JSON, the query names an unknown parameter, or the path is not UTF-8"),
        (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody, description = "the body is over 64 KiB"),
        (status = 415, body = ErrorBody, description = "the body (or its declared Content-Type) is not application/json"),
        (status = 422, body = ErrorBody, description = "the camera id is not a slug, n is not 1 to 100, or a field is unknown or invalid")))]
pub async fn preview_draft(
    State(ops): State<Ops>,
    CameraPath(id): CameraPath,
    query: Result<Query<PreviewQuery>, QueryRejection>,
    OptionalJson(body): OptionalJson<ScheduleCreate>,
) -> Result<Json<DraftPreview>, ApiError> {
    let n = preview_n(query)?;
    Ok(Json(
        ops::schedules::preview_draft(&ops, &id, body, n).await?,
    ))
}
