//! `/api/v1/cameras`: the camera registry over HTTP.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;

use super::error::{ApiError, ApiJson};
use super::paging::Listed;
use super::params::CameraPath;
use crate::models::{CameraCreate, CameraPatch, CameraView, ErrorBody};
use crate::ops::{self, Ops};

#[utoipa::path(get, path = "/api/v1/cameras", operation_id = "list_cameras", tag = "cameras",
    extensions(("x-heldar-role" = json!("viewer"))),
    responses((status = 200, body = [CameraView], description = "every camera (not paged)",
        headers(("x-total-count" = i64, description = "how many cameras there are (the array's length)")))))]
pub async fn list(State(ops): State<Ops>) -> Result<Listed<CameraView>, ApiError> {
    Ok(Listed::all(ops::cameras::list(&ops).await?))
}

#[utoipa::path(post, path = "/api/v1/cameras", operation_id = "create_camera", tag = "cameras", request_body = CameraCreate,
    extensions(("x-heldar-role" = json!("admin"))),
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
    State(ops): State<Ops>,
    ApiJson(body): ApiJson<CameraCreate>,
) -> Result<impl IntoResponse, ApiError> {
    let view = ops::cameras::create(&ops, body).await?;
    let location = format!("/api/v1/cameras/{}", view.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(view),
    ))
}

#[utoipa::path(get, path = "/api/v1/cameras/{id}", operation_id = "get_camera", tag = "cameras",
    extensions(("x-heldar-role" = json!("viewer"))),
    params(CameraPath),
    responses((status = 200, body = CameraView),
        (status = 400, body = ErrorBody, description = "the path is not UTF-8"),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "the id is not a slug")))]
pub async fn get_one(
    State(ops): State<Ops>,
    CameraPath(id): CameraPath,
) -> Result<Json<CameraView>, ApiError> {
    Ok(Json(ops::cameras::get(&ops, &id).await?))
}

#[utoipa::path(patch, path = "/api/v1/cameras/{id}", operation_id = "update_camera", tag = "cameras", request_body = CameraPatch,
    extensions(("x-heldar-role" = json!("admin"))),
    params(CameraPath),
    responses((status = 200, body = CameraView),
        (status = 400, body = ErrorBody, description = "the body is not JSON, or the path is not UTF-8"),
        (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody, description = "the body is over 64 KiB"),
        (status = 415, body = ErrorBody, description = "the body is not sent as application/json"),
        (status = 422, body = ErrorBody, description = "the id is not a slug, or a field is unknown or invalid")))]
pub async fn patch(
    State(ops): State<Ops>,
    CameraPath(id): CameraPath,
    ApiJson(body): ApiJson<CameraPatch>,
) -> Result<Json<CameraView>, ApiError> {
    Ok(Json(ops::cameras::update(&ops, &id, body).await?))
}

#[utoipa::path(delete, path = "/api/v1/cameras/{id}", operation_id = "delete_camera", tag = "cameras",
    extensions(("x-heldar-role" = json!("admin"))),
    params(CameraPath),
    responses((status = 204, description = "deleted with its schedules, rows and frame files"),
        (status = 400, body = ErrorBody, description = "the path is not UTF-8"),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "the id is not a slug")))]
pub async fn delete(
    State(ops): State<Ops>,
    CameraPath(id): CameraPath,
) -> Result<StatusCode, ApiError> {
    ops::cameras::delete(&ops, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
