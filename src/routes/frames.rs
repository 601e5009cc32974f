//! Browsing kept frames: `GET /api/v1/cameras/{id}/snapshots?from&to&tag&limit&cursor` (paged,
//! newest first, see `paging`) and `…/latest`.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::openapi::path::{Parameter, ParameterIn};

use super::error::ApiError;
use super::paging::Listed;
use super::params::{self, CameraPath, End};
use crate::models::{ErrorBody, Jpeg, SnapshotView};
use crate::ops::{self, Ops};

/// Query of the snapshot list; all text, so each bad value gets its own sentence. Its
/// OpenAPI description is written below, with the helpers every list shares.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    pub from: Option<String>,
    pub to: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
    pub tag: Option<String>,
}

impl utoipa::IntoParams for ListQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![
            params::time_param(End::From, "frames taken"),
            params::time_param(End::To, "frames taken"),
            params::tag_param(
                "Only frames taken with this tag (`POST …/snapshot?store=true&tag=`, an MQTT \
                 capture trigger); the total counts only those.",
            ),
            params::limit_param("frames", "newest first"),
            params::cursor_param(),
        ]
    }
}

/// `from`, `to` and `limit` of a list query, checked.
pub type Bounds = (Option<DateTime<Utc>>, Option<DateTime<Utc>>, i64);

/// The checked bounds of a list query. Public for the fuzz targets (`fuzz/`).
#[doc(hidden)]
pub fn bounds(q: &ListQuery) -> Result<Bounds, ApiError> {
    let from = q
        .from
        .as_deref()
        .map(|s| params::time("from", s, End::From))
        .transpose()?;
    let to =
        q.to.as_deref()
            .map(|s| params::time("to", s, End::To))
            .transpose()?;
    if let (Some(f), Some(t)) = (from, to) {
        if f > t {
            return Err(ApiError::invalid("from", "from is later than to"));
        }
    }
    Ok((from, to, params::limit(q.limit.as_deref())?))
}

#[utoipa::path(get, path = "/api/v1/cameras/{id}/snapshots", operation_id = "list_snapshots", tag = "snapshots",
    extensions(("x-heldar-role" = json!("viewer"))),
    params(CameraPath, ListQuery),
    responses((status = 200, body = [SnapshotView],
            description = "one page of the camera's frames in [from, to], newest first",
            headers(("x-total-count" = i64, description = "how many frames lie in [from, to] in all, whatever `limit` and `cursor`"),
                ("link" = String, description = "only when more frames remain: `<…?cursor=…>; rel=\"next\"` (RFC 8288), this request with the next page's cursor"))),
        (status = 400, body = ErrorBody, description = "the path is not UTF-8, or the query string cannot be read"),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "the id is not a slug, or from, to, tag, limit or cursor is invalid")))]
pub async fn list(
    State(ops): State<Ops>,
    CameraPath(id): CameraPath,
    uri: Uri,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Listed<SnapshotView>, ApiError> {
    let Query(q) = query?;
    let (from, to, limit) = bounds(&q)?;
    let tag = params::tag(q.tag.as_deref())?;
    let after = q.cursor.as_deref().map(params::decode_cursor).transpose()?;
    let page = ops::frames::list(&ops, &id, from, to, tag, after.as_ref(), limit).await?;
    Ok(Listed::page(page, &uri, |s| SnapshotView::from(s)))
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
