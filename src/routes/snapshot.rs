//! `GET /api/v1/cameras/{id}/snapshot`: a live JPEG grabbed now.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::cameras::path_id;
use super::error::{ApiError, ApiPath};
use crate::app::AppState;
use crate::camera::registry;
use crate::models::ErrorBody;

#[utoipa::path(get, path = "/api/v1/cameras/{id}/snapshot", tag = "capture",
    params(("id" = String, Path, description = "camera id (slug)")),
    responses(
        (status = 200, description = "a JPEG grabbed now", content_type = "image/jpeg", body = Vec<u8>),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "bad id, or the camera has no URL to capture from"),
        (status = 502, body = ErrorBody, description = "camera unreachable (`unreachable`), refused the credentials (`auth_failed`), sent no valid JPEG (`bad_response`), or ffmpeg is missing (`ffmpeg_missing`)"),
        (status = 504, body = ErrorBody, description = "no frame within HELDAR_CAPTURE_TIMEOUT_S (`timeout`)")))]
pub async fn live(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let id = path_id(&id)?;
    let camera = registry::camera(&state, &id).await?;
    let frame = state.capturer.capture(&camera).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/jpeg".to_string()),
            (header::CACHE_CONTROL, "no-store".to_string()),
            (
                header::HeaderName::from_static("x-heldar-width"),
                frame.width.to_string(),
            ),
            (
                header::HeaderName::from_static("x-heldar-height"),
                frame.height.to_string(),
            ),
        ],
        frame.bytes,
    )
        .into_response())
}
