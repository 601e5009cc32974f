//! `/api/v1/cameras/{id}/snapshot`: a live JPEG grabbed now. `?store=true` also keeps it as a
//! manual snapshot (no schedule), with `POST`'s `&tag=` as its tag, through the same operation
//! as a scheduled frame
//! (`ops::frames::capture_and_keep`), and names the kept frame in `x-heldar-snapshot-id` and
//! `content-location`.
//!
//! `POST` is the way to keep a frame (it changes state, so it carries the session's CSRF token
//! and is never prefetched or cached). `GET ?store=true` is kept for the clients of the Heldar
//! kernel, which used it. Both refuse query parameters they do not declare (`routes::query`).

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::params::CameraPath;
use crate::models::{truncate, CameraId, ErrorBody, Jpeg};
use crate::ops::{self, Ops};

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LiveQuery {
    /// `true` (or `1`) keeps the frame as a manual snapshot (507 `disk_full` when the disk is
    /// full); `false` (or `0`, the default) only shows it.
    #[param(value_type = Option<bool>)]
    pub store: Option<String>,
    /// A camera with a warm RTSP session may answer with a frame decoded earlier if that frame
    /// is at most this many milliseconds old (0 to 60000); without it, the newest frame is
    /// decoded now. Other cameras ignore it.
    #[param(value_type = Option<i64>, minimum = 0, maximum = 60000)]
    pub max_age_ms: Option<String>,
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
                ("x-heldar-taken-at" = String, description = "when the camera captured the frame (RFC 3339), when the back-end knows (native RTSP)"),
                ("x-heldar-snapshot-id" = String, description = "with `?store=true`: id of the kept snapshot"),
                ("content-location" = String, description = "with `?store=true`: /media URL of the kept frame"),
                ("location" = String, description = "with `?store=true`: the same /media URL"))),
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
    let max_age = match q.max_age_ms.as_deref() {
        None => None,
        Some(v) => match v.parse::<u64>() {
            Ok(ms) if ms <= 60_000 => Some(std::time::Duration::from_millis(ms)),
            _ => {
                return Err(ApiError::invalid(
                    "max_age_ms",
                    format!(
                        "max_age_ms {:?} must be a whole number of milliseconds from 0 to 60000",
                        truncate(v, 20)
                    ),
                ))
            }
        },
    };
    snapshot(&ops, &id, keep(q.store.as_deref())?, max_age, None).await
}

/// The query of `POST …/snapshot`. Unknown parameters are refused (400), so a parameter added
/// later (as `tag` was) can never have been silently ignored by an older server.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TakeQuery {
    /// `true` (or `1`) keeps the frame as a manual snapshot (507 `disk_full` when the disk is
    /// full); `false` (or `0`, the default) only shows it.
    #[param(value_type = Option<bool>)]
    pub store: Option<String>,
    /// With `store=true`: the kept frame's tag, 1 to 64 characters of letters, digits, `_`,
    /// `.` and `-` (422 otherwise); list them with `GET …/snapshots?tag=`. Refused (422)
    /// without `store=true`: a frame that is not kept has nowhere to carry it.
    #[param(
        pattern = "^[A-Za-z0-9_.-]{1,64}$",
        min_length = 1,
        max_length = 64,
        example = "doorbell"
    )]
    pub tag: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/cameras/{id}/snapshot", operation_id = "take_snapshot", tag = "capture",
    extensions(("x-heldar-role" = json!("operator"))),
    params(CameraPath, TakeQuery),
    responses(
        (status = 200, description = "a JPEG grabbed now; with `?store=true` also kept as a manual snapshot (no schedule), the way scheduled frames are kept", content_type = "image/jpeg", body = Jpeg,
            headers(
                ("cache-control" = String, description = "`no-store`"),
                ("x-heldar-width" = i64, description = "width of the frame in pixels"),
                ("x-heldar-height" = i64, description = "height of the frame in pixels"),
                ("x-heldar-snapshot-id" = String, description = "with `?store=true`: id of the kept snapshot"),
                ("content-location" = String, description = "with `?store=true`: /media URL of the kept frame"),
                ("location" = String, description = "with `?store=true`: the same /media URL"))),
        (status = 400, body = ErrorBody, description = "the path is not UTF-8, or the query string cannot be read or has a parameter other than `store` and `tag`"),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "bad id, `store` or `tag` value (or a `tag` without `store=true`), the camera has no URL to capture from (`no_source`), or its host is a cloud-metadata address (`forbidden_host`)"),
        (status = 502, body = ErrorBody, description = "camera unreachable (`unreachable`), refused the credentials (`auth_failed`), sent no valid JPEG (`bad_response`), failed TLS verification (`tls`), or ffmpeg is missing (`ffmpeg_missing`)"),
        (status = 504, body = ErrorBody, description = "no frame within HELDAR_CAPTURE_TIMEOUT_S (`timeout`)"),
        (status = 507, body = ErrorBody, description = "`?store=true` and the disk is full (`disk_full`)")))]
pub async fn take(
    State(ops): State<Ops>,
    CameraPath(id): CameraPath,
    query: Result<Query<TakeQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query?;
    let keep = keep(q.store.as_deref())?;
    let tag = super::params::tag(q.tag.as_deref())?;
    if tag.is_some() && !keep {
        return Err(ApiError::invalid(
            "tag",
            "tag needs store=true: only a kept frame carries a tag",
        ));
    }
    snapshot(&ops, &id, keep, None, tag).await
}

/// `store`'s value: whether to keep the frame (absent: no), read like every yes/no parameter.
fn keep(store: Option<&str>) -> Result<bool, ApiError> {
    store.map_or(Ok(false), |s| super::params::flag("store", s))
}

/// A live frame of camera `id` as a JPEG response; kept first when `keep`.
async fn snapshot(
    ops: &Ops,
    id: &CameraId,
    keep: bool,
    max_age: Option<std::time::Duration>,
    tag: Option<&str>,
) -> Result<Response, ApiError> {
    let camera = ops::cameras::camera(ops, id).await?;
    let mut headers = vec![(header::CACHE_CONTROL, "no-store".to_string())];
    let (bytes, width, height, taken_at) = if keep {
        // The path scheduled frames take: capture, file, row, `frame.stored`.
        let (snap, bytes) = ops::frames::capture_and_keep_tagged(
            ops,
            &camera,
            None,
            crate::capture::Want {
                at: None,
                max_age,
                stream: None,
            },
            tag,
        )
        .await?;
        let url = ops::frames::media_url(&snap);
        headers.push((
            header::HeaderName::from_static("x-heldar-snapshot-id"),
            snap.id.clone(),
        ));
        headers.push((header::CONTENT_LOCATION, url.clone()));
        headers.push((header::LOCATION, url));
        let taken = snap.taken_at;
        (
            bytes,
            snap.width.unwrap_or(0),
            snap.height.unwrap_or(0),
            Some(taken),
        )
    } else {
        // Concurrent viewers of one camera share one capture.
        let frame = ops::frames::live(ops, &camera, max_age).await?;
        (
            frame.bytes,
            i64::from(frame.width),
            i64::from(frame.height),
            frame.taken_at,
        )
    };
    if let Some(t) = taken_at {
        headers.push((
            header::HeaderName::from_static("x-heldar-taken-at"),
            crate::models::fmt_ts(t),
        ));
    }
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
