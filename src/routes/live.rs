//! `GET /api/v1/cameras/{id}/snapshot`: a live JPEG grabbed now; `?store=true` also keeps it as
//! a manual snapshot (no schedule).

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::params::CameraPath;
use crate::models::{ErrorBody, Jpeg};
use crate::ops::{self, Ops};

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LiveQuery {
    /// `true` (or `1`) keeps the frame as a manual snapshot (507 `disk_full` when the disk is
    /// full); `false` (or `0`, the default) only shows it.
    #[param(value_type = Option<bool>)]
    pub store: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/cameras/{id}/snapshot", operation_id = "live_snapshot", tag = "capture",
    extensions(("x-heldar-role" = json!("operator"))),
    params(CameraPath, LiveQuery),
    responses(
        (status = 200, description = "a JPEG grabbed now", content_type = "image/jpeg", body = Jpeg,
            headers(
                ("cache-control" = String, description = "`no-store`"),
                ("x-heldar-width" = i64, description = "width of the frame in pixels"),
                ("x-heldar-height" = i64, description = "height of the frame in pixels"),
                ("x-heldar-snapshot-id" = String, description = "with `?store=true`: id of the kept snapshot"),
                ("location" = String, description = "with `?store=true`: /media URL of the kept frame"))),
        (status = 400, body = ErrorBody, description = "the path is not UTF-8, or the query string cannot be read"),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "bad id or query, the camera has no URL to capture from (`no_source`), or its host is a cloud-metadata address (`forbidden_host`)"),
        (status = 502, body = ErrorBody, description = "camera unreachable (`unreachable`), refused the credentials (`auth_failed`), sent no valid JPEG (`bad_response`), failed TLS verification (`tls`), or ffmpeg is missing (`ffmpeg_missing`)"),
        (status = 504, body = ErrorBody, description = "no frame within HELDAR_CAPTURE_TIMEOUT_S (`timeout`)"),
        (status = 507, body = ErrorBody, description = "`?store=true` and the disk is full (`disk_full`)")))]
pub async fn live(
    State(ops): State<Ops>,
    CameraPath(id): CameraPath,
    query: Result<Query<LiveQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query?;
    let keep = match q.store.as_deref() {
        None => false,
        Some(v) => super::params::flag("store", v)?,
    };
    let camera = ops::cameras::camera(&ops, &id).await?;
    let mut headers = vec![(header::CACHE_CONTROL, "no-store".to_string())];
    let (bytes, width, height) = if keep {
        let (snap, bytes) = ops::frames::capture_and_keep(&ops, &camera, None).await?;
        headers.push((
            header::HeaderName::from_static("x-heldar-snapshot-id"),
            snap.id.clone(),
        ));
        headers.push((header::LOCATION, ops::frames::media_url(&snap)));
        (bytes, snap.width.unwrap_or(0), snap.height.unwrap_or(0))
    } else {
        // Concurrent viewers of one camera share one capture.
        let frame = ops::frames::live(&ops, &camera).await?;
        (frame.bytes, i64::from(frame.width), i64::from(frame.height))
    };
    headers.push((header::CONTENT_TYPE, "image/jpeg".to_string()));
    headers.push((
        header::HeaderName::from_static("x-heldar-width"),
        width.to_string(),
    ));
    headers.push((
        header::HeaderName::from_static("x-heldar-height"),
        height.to_string(),
    ));
    let mut resp = bytes.into_response();
    for (k, v) in headers {
        if let Ok(v) = header::HeaderValue::from_str(&v) {
            resp.headers_mut().insert(k, v);
        }
    }
    Ok(resp)
}
