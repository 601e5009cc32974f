//! Browsing kept frames: `GET /api/v1/cameras/{id}/snapshots?from&to&limit` and `…/latest`.

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::error::ApiError;
use super::params::CameraPath;
use crate::models::{truncate, ErrorBody, Jpeg, SnapshotView};
use crate::ops::{self, Ops};

/// Query of the snapshot list; all text, so each bad value gets its own sentence.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// RFC 3339 lower bound (inclusive).
    #[param(value_type = Option<DateTime<Utc>>)]
    pub from: Option<String>,
    /// RFC 3339 upper bound (inclusive).
    #[param(value_type = Option<DateTime<Utc>>)]
    pub to: Option<String>,
    /// At most this many frames, newest first; 1..=5000, default 500.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 5000)]
    pub limit: Option<String>,
}

fn time(field: &'static str, v: &Option<String>) -> Result<Option<DateTime<Utc>>, ApiError> {
    v.as_deref()
        .map(|s| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| {
                    ApiError::invalid(
                        field,
                        format!(
                            "{field} {:?} is not an RFC 3339 time such as 2026-01-31T12:00:00Z",
                            truncate(s, 60)
                        ),
                    )
                })
        })
        .transpose()
}

/// `from`, `to` and `limit` of a list query, checked.
pub type Bounds = (Option<DateTime<Utc>>, Option<DateTime<Utc>>, i64);

/// The checked bounds of a list query. Public for the fuzz targets (`fuzz/`).
#[doc(hidden)]
pub fn bounds(q: &ListQuery) -> Result<Bounds, ApiError> {
    let from = time("from", &q.from)?;
    let to = time("to", &q.to)?;
    if let (Some(f), Some(t)) = (from, to) {
        if f > t {
            return Err(ApiError::invalid("from", "from is later than to"));
        }
    }
    let limit = match q.limit.as_deref() {
        None => 500,
        Some(s) => match s.parse::<i64>() {
            Ok(n) if (1..=5000).contains(&n) => n,
            _ => {
                return Err(ApiError::invalid(
                    "limit",
                    format!(
                        "limit {:?} must be a whole number from 1 to 5000",
                        truncate(s, 20)
                    ),
                ))
            }
        },
    };
    Ok((from, to, limit))
}

#[utoipa::path(get, path = "/api/v1/cameras/{id}/snapshots", operation_id = "list_snapshots", tag = "snapshots",
    extensions(("x-heldar-role" = json!("viewer"))),
    params(CameraPath, ListQuery),
    responses((status = 200, body = [SnapshotView]),
        (status = 400, body = ErrorBody, description = "the path is not UTF-8, or the query string cannot be read"),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "the id is not a slug, or from, to or limit is invalid")))]
pub async fn list(
    State(ops): State<Ops>,
    CameraPath(id): CameraPath,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<SnapshotView>>, ApiError> {
    let Query(q) = query?;
    let (from, to, limit) = bounds(&q)?;
    let rows = ops::frames::list(&ops, &id, from, to, limit).await?;
    Ok(Json(rows.iter().map(SnapshotView::from).collect()))
}

#[utoipa::path(get, path = "/api/v1/cameras/{id}/snapshots/latest", operation_id = "latest_snapshot", tag = "snapshots",
    extensions(("x-heldar-role" = json!("viewer"))),
    params(CameraPath,
        ("range" = Option<String>, Header, description = "one range `bytes=a-b`, `bytes=a-` or `bytes=-n`; other forms get the whole file"),
        ("if-none-match" = Option<String>, Header, description = "ETag(s) of a copy the client holds")),
    responses(
        (status = 200, description = "the newest stored frame", content_type = "image/jpeg", body = Jpeg,
            headers(("etag" = String, description = "the snapshot id, quoted"),
                ("cache-control" = String, description = "`no-cache`: the newest frame changes"),
                ("x-heldar-taken-at" = String, description = "RFC 3339 time the frame was taken"))),
        (status = 206, description = "the requested byte range", content_type = "image/jpeg", body = Jpeg,
            headers(("content-range" = String, description = "`bytes a-b/total`"))),
        (status = 304, description = "not modified: If-None-Match named this frame"),
        (status = 400, body = ErrorBody, description = "the path is not UTF-8"),
        (status = 404, body = ErrorBody, description = "no such camera, or it has no stored frames yet"),
        (status = 416, body = ErrorBody, description = "the range starts past the end of the file"),
        (status = 422, body = ErrorBody, description = "the id is not a slug")))]
pub async fn latest(
    State(ops): State<Ops>,
    CameraPath(id): CameraPath,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let snap = ops::frames::latest(&ops, &id).await?;
    let mut resp = super::media::serve(&ops, &snap, &headers).await?;
    // "Latest" changes: it must not be cached like an immutable media file.
    resp.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-cache"),
    );
    Ok(resp)
}
