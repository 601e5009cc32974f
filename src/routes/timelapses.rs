//! Timelapses: exports (`POST /api/v1/cameras/{id}/timelapses` → a job), the jobs
//! (`/api/v1/jobs`), the finished videos (`GET …/timelapses`, `DELETE /api/v1/timelapses/{id}`)
//! and the rules that make them daily or weekly (`…/timelapse-rules`). The contract is written
//! down in docs/timelapse.md.

use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::error::{ApiError, ApiJson};
use super::params::{CameraPath, JobPath, RulePath, TimelapsePath};
use crate::models::timelapse::{
    JobState, JobView, RuleCreate, RulePatch, TimelapseCreate, TimelapseRuleView, TimelapseView,
};
use crate::models::{truncate, CameraId, ErrorBody};
use crate::ops::{self, Ops};

#[utoipa::path(post, path = "/api/v1/cameras/{id}/timelapses", operation_id = "create_timelapse", tag = "timelapses",
    extensions(("x-heldar-role" = json!("operator"))),
    params(CameraPath),
    request_body = TimelapseCreate,
    responses(
        (status = 202, body = JobView, description = "queued; follow it at `location` (and on the event stream)",
            headers(("location" = String, description = "`/api/v1/jobs/{job id}`")),
            // No link to cancel_job: a cancelled job stays readable (it is not deleted), which a
            // generic "use after delete" check would misread.
            links(
                ("job" = (operation_id = "get_job", parameters(("id" = "$response.body#/id")))))),
        (status = 400, body = ErrorBody, description = "the body is not JSON, or the path is not UTF-8"),
        (status = 404, body = ErrorBody, description = "no such camera"),
        (status = 413, body = ErrorBody, description = "the body is over 64 KiB"),
        (status = 415, body = ErrorBody, description = "the body is not sent as application/json"),
        (status = 422, body = ErrorBody, description = "a field is invalid (`invalid_field`, naming it), the range holds no frames (`no_frames`) or more than HELDAR_TIMELAPSE_MAX_FRAMES (`too_many_frames`)"),
        (status = 503, body = ErrorBody, description = "ffmpeg is not installed (`ffmpeg_missing`), or the queue is full (`queue_full`)")))]
pub async fn create(
    State(ops): State<Ops>,
    CameraPath(id): CameraPath,
    ApiJson(body): ApiJson<TimelapseCreate>,
) -> Result<Response, ApiError> {
    let job = ops::timelapses::create(&ops, &id, body).await?;
    let mut resp = (StatusCode::ACCEPTED, Json(&job)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/jobs/{}", job.id)) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

#[utoipa::path(get, path = "/api/v1/cameras/{id}/timelapses", operation_id = "list_timelapses", tag = "timelapses",
    extensions(("x-heldar-role" = json!("viewer"))),
    params(CameraPath),
    responses((status = 200, body = [TimelapseView], description = "the camera's videos, newest first (at most 500)"),
        (status = 400, body = ErrorBody, description = "the path is not UTF-8"),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "the camera id is not a slug")))]
pub async fn list(
    State(ops): State<Ops>,
    CameraPath(id): CameraPath,
) -> Result<Json<Vec<TimelapseView>>, ApiError> {
    Ok(Json(ops::timelapses::videos(&ops, &id).await?))
}

#[utoipa::path(delete, path = "/api/v1/timelapses/{id}", operation_id = "delete_timelapse", tag = "timelapses",
    extensions(("x-heldar-role" = json!("operator"))),
    params(TimelapsePath),
    responses((status = 204, description = "deleted: the file, then the row"),
        (status = 400, body = ErrorBody, description = "the path is not UTF-8"),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "the id is malformed")))]
pub async fn delete(
    State(ops): State<Ops>,
    TimelapsePath(id): TimelapsePath,
) -> Result<StatusCode, ApiError> {
    ops::timelapses::delete_video(&ops, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Query of the job list; text, so each bad value gets its own sentence.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobsQuery {
    /// Only this camera's jobs.
    #[param(pattern = r"^[a-z0-9][a-z0-9_-]{0,62}$", example = "demo")]
    pub camera: Option<String>,
    /// Only jobs in this state.
    #[param(value_type = Option<JobState>)]
    pub state: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/jobs", operation_id = "list_jobs", tag = "timelapses",
    extensions(("x-heldar-role" = json!("viewer"))),
    params(JobsQuery),
    responses((status = 200, body = [JobView], description = "jobs newest first (at most 500); finished ones are kept for 7 days"),
        (status = 400, body = ErrorBody, description = "the query string cannot be read"),
        (status = 404, body = ErrorBody, description = "no such camera"),
        (status = 422, body = ErrorBody, description = "camera is not a camera id, or state is not a job state")))]
pub async fn jobs(
    State(ops): State<Ops>,
    query: Result<Query<JobsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<JobView>>, ApiError> {
    let Query(q) = query?;
    let camera = q
        .camera
        .as_deref()
        .map(CameraId::parse)
        .transpose()
        .map_err(|m| ApiError::invalid("camera", m))?;
    let state = q
        .state
        .as_deref()
        .map(|s| {
            JobState::from_db(s).ok_or_else(|| {
                ApiError::invalid(
                    "state",
                    format!(
                        "state {:?} is not one of queued, running, done, failed, cancelled",
                        truncate(s, 40)
                    ),
                )
            })
        })
        .transpose()?;
    Ok(Json(
        ops::timelapses::list(&ops, camera.as_ref(), state).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/jobs/{id}", operation_id = "get_job", tag = "timelapses",
    extensions(("x-heldar-role" = json!("viewer"))),
    params(JobPath),
    responses((status = 200, body = JobView),
        (status = 400, body = ErrorBody, description = "the path is not UTF-8"),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "the id is malformed")))]
pub async fn job(State(ops): State<Ops>, JobPath(id): JobPath) -> Result<Json<JobView>, ApiError> {
    Ok(Json(ops::timelapses::get(&ops, &id).await?))
}

#[utoipa::path(delete, path = "/api/v1/jobs/{id}", operation_id = "cancel_job", tag = "timelapses",
    extensions(("x-heldar-role" = json!("operator"))),
    params(JobPath),
    responses((status = 200, body = JobView, description = "cancelled: its ffmpeg is stopped and its partial file removed"),
        (status = 400, body = ErrorBody, description = "the path is not UTF-8"),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the job has already finished (done, failed or cancelled)"),
        (status = 422, body = ErrorBody, description = "the id is malformed")))]
pub async fn cancel(
    State(ops): State<Ops>,
    JobPath(id): JobPath,
) -> Result<Json<JobView>, ApiError> {
    Ok(Json(ops::timelapses::cancel(&ops, &id).await?))
}

#[utoipa::path(get, path = "/api/v1/cameras/{id}/timelapse-rules", operation_id = "list_timelapse_rules", tag = "timelapses",
    extensions(("x-heldar-role" = json!("viewer"))),
    params(CameraPath),
    responses((status = 200, body = [TimelapseRuleView]),
        (status = 400, body = ErrorBody, description = "the path is not UTF-8"),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "the camera id is not a slug")))]
pub async fn rules(
    State(ops): State<Ops>,
    CameraPath(id): CameraPath,
) -> Result<Json<Vec<TimelapseRuleView>>, ApiError> {
    Ok(Json(ops::timelapse_rules::list(&ops, &id).await?))
}

#[utoipa::path(post, path = "/api/v1/cameras/{id}/timelapse-rules", operation_id = "create_timelapse_rule", tag = "timelapses",
    extensions(("x-heldar-role" = json!("operator"))),
    params(CameraPath),
    request_body = RuleCreate,
    responses(
        (status = 201, body = TimelapseRuleView, links(
            ("update" = (operation_id = "update_timelapse_rule", parameters(("id" = "$response.body#/id")))),
            ("delete" = (operation_id = "delete_timelapse_rule", parameters(("id" = "$response.body#/id")))))),
        (status = 400, body = ErrorBody, description = "the body is not JSON, or the path is not UTF-8"),
        (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody, description = "the body is over 64 KiB"),
        (status = 415, body = ErrorBody, description = "the body is not sent as application/json"),
        (status = 422, body = ErrorBody, description = "the camera id is not a slug, or a field is unknown or invalid")))]
pub async fn create_rule(
    State(ops): State<Ops>,
    CameraPath(id): CameraPath,
    ApiJson(body): ApiJson<RuleCreate>,
) -> Result<(StatusCode, Json<TimelapseRuleView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(ops::timelapse_rules::create(&ops, &id, body).await?),
    ))
}

#[utoipa::path(patch, path = "/api/v1/timelapse-rules/{id}", operation_id = "update_timelapse_rule", tag = "timelapses",
    extensions(("x-heldar-role" = json!("operator"))),
    params(RulePath),
    request_body = RulePatch,
    responses((status = 200, body = TimelapseRuleView),
        (status = 400, body = ErrorBody, description = "the body is not JSON, or the path is not UTF-8"),
        (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody, description = "the body is over 64 KiB"),
        (status = 415, body = ErrorBody, description = "the body is not sent as application/json"),
        (status = 422, body = ErrorBody, description = "the rule id is malformed, or a field is unknown or invalid")))]
pub async fn patch_rule(
    State(ops): State<Ops>,
    RulePath(id): RulePath,
    ApiJson(body): ApiJson<RulePatch>,
) -> Result<Json<TimelapseRuleView>, ApiError> {
    Ok(Json(ops::timelapse_rules::update(&ops, &id, body).await?))
}

#[utoipa::path(delete, path = "/api/v1/timelapse-rules/{id}", operation_id = "delete_timelapse_rule", tag = "timelapses",
    extensions(("x-heldar-role" = json!("operator"))),
    params(RulePath),
    responses((status = 204, description = "deleted; the videos it made are kept"),
        (status = 400, body = ErrorBody, description = "the path is not UTF-8"),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "the rule id is malformed")))]
pub async fn delete_rule(
    State(ops): State<Ops>,
    RulePath(id): RulePath,
) -> Result<StatusCode, ApiError> {
    ops::timelapse_rules::delete(&ops, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
