//! `/api/v1/cameras`: the camera registry over HTTP.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;

use super::error::{ApiError, ApiJson, ApiPath};
use crate::app::AppState;
use crate::camera::registry;
use crate::models::{CameraCreate, CameraId, CameraPatch, CameraView, ErrorBody};

/// Parse a camera id from the path: a malformed one is a 422, not a lookup.
pub fn path_id(raw: &str) -> Result<CameraId, ApiError> {
    CameraId::parse(raw).map_err(|m| ApiError::invalid("id", m))
}

#[utoipa::path(get, path = "/api/v1/cameras", operation_id = "list_cameras", tag = "cameras",
    responses((status = 200, body = [CameraView])))]
pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<CameraView>>, ApiError> {
    Ok(Json(registry::list(&state).await?))
}

#[utoipa::path(post, path = "/api/v1/cameras", operation_id = "create_camera", tag = "cameras", request_body = CameraCreate,
    responses(
        (status = 201, body = CameraView,
            headers(("location" = String, description = "/api/v1/cameras/{id} of the new camera")),
            links(
                ("get" = (operation_id = "get_camera", parameters(("id" = "$response.body#/id")))),
                ("update" = (operation_id = "update_camera", parameters(("id" = "$response.body#/id")))),
                ("delete" = (operation_id = "delete_camera", parameters(("id" = "$response.body#/id")))),
                ("live_snapshot" = (operation_id = "live_snapshot", parameters(("id" = "$response.body#/id")))),
                ("list_snapshots" = (operation_id = "list_snapshots", parameters(("id" = "$response.body#/id")))),
                ("latest_snapshot" = (operation_id = "latest_snapshot", parameters(("id" = "$response.body#/id")))),
                ("list_schedules" = (operation_id = "list_schedules", parameters(("id" = "$response.body#/id")))),
                ("create_schedule" = (operation_id = "create_schedule", parameters(("id" = "$response.body#/id")))))),
        (status = 400, body = ErrorBody, description = "the body is not JSON"),
        (status = 409, body = ErrorBody, description = "a camera with this id exists"),
        (status = 413, body = ErrorBody, description = "the body is over 64 KiB"),
        (status = 415, body = ErrorBody, description = "the body is not sent as application/json"),
        (status = 422, body = ErrorBody, description = "a field is missing, unknown or invalid")))]
pub async fn create(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CameraCreate>,
) -> Result<impl IntoResponse, ApiError> {
    let view = registry::create(&state, body).await?;
    let location = format!("/api/v1/cameras/{}", view.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(view),
    ))
}

#[utoipa::path(get, path = "/api/v1/cameras/{id}", operation_id = "get_camera", tag = "cameras",
    params(("id" = String, Path, description = "camera id (slug)", pattern = r"^[a-z0-9][a-z0-9_-]{0,62}$", example = "demo")),
    responses((status = 200, body = CameraView),
        (status = 400, body = ErrorBody, description = "the path is not UTF-8"),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "the id is not a slug")))]
pub async fn get_one(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<CameraView>, ApiError> {
    let id = path_id(&id)?;
    Ok(Json(registry::get(&state, &id).await?))
}

#[utoipa::path(patch, path = "/api/v1/cameras/{id}", operation_id = "update_camera", tag = "cameras", request_body = CameraPatch,
    params(("id" = String, Path, description = "camera id (slug)", pattern = r"^[a-z0-9][a-z0-9_-]{0,62}$", example = "demo")),
    responses((status = 200, body = CameraView),
        (status = 400, body = ErrorBody, description = "the body is not JSON, or the path is not UTF-8"),
        (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody, description = "the body is over 64 KiB"),
        (status = 415, body = ErrorBody, description = "the body is not sent as application/json"),
        (status = 422, body = ErrorBody, description = "the id is not a slug, or a field is unknown or invalid")))]
pub async fn patch(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<CameraPatch>,
) -> Result<Json<CameraView>, ApiError> {
    let id = path_id(&id)?;
    Ok(Json(registry::update(&state, &id, body).await?))
}

#[utoipa::path(delete, path = "/api/v1/cameras/{id}", operation_id = "delete_camera", tag = "cameras",
    params(("id" = String, Path, description = "camera id (slug)", pattern = r"^[a-z0-9][a-z0-9_-]{0,62}$", example = "demo")),
    responses((status = 204, description = "deleted with its schedules, rows and frame files"),
        (status = 400, body = ErrorBody, description = "the path is not UTF-8"),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "the id is not a slug")))]
pub async fn delete(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let id = path_id(&id)?;
    registry::delete(&state, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
