//! Stored frames as files: `GET /media/snapshots/{camera_id}/{file}` and
//! `GET /api/v1/cameras/{id}/snapshots/latest`.
//!
//! `/media` serves only files a `snapshots` row names, under snapshots_dir: the camera segment
//! must be a slug, the file one of our frame names, the row must exist, and the file is opened
//! without following symlinks. Everything else — `..`, encoded separators, absolute paths,
//! symlinks, files no row names — is a 404. Frames never change once written, so responses carry
//! an ETag (the snapshot id), Last-Modified, Range support and a year-long immutable cache.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::{ApiError, ApiPath};
use crate::models::{ErrorBody, Jpeg, Snapshot};
use crate::ops::{self, Ops};

#[utoipa::path(get, path = "/media/snapshots/{camera_id}/{file}", operation_id = "get_media_frame", tag = "snapshots",
    extensions(("x-heldar-role" = json!("viewer"))),
    params(("camera_id" = String, Path, description = "camera id (slug)",
            pattern = r"^[a-z0-9][a-z0-9_-]{0,62}$", example = "demo"),
        ("file" = String, Path, description = "`YYYYmmddTHHMMSSfffZ.jpg`, with `-N` before `.jpg` when two frames share a millisecond",
            pattern = r"^[0-9]{8}T[0-9]{9}Z(-[1-9][0-9]{0,3})?\.jpg$", example = "20260131T120000000Z.jpg"),
        ("range" = Option<String>, Header, description = "one range `bytes=a-b`, `bytes=a-` or `bytes=-n`; other forms get the whole file"),
        ("if-none-match" = Option<String>, Header, description = "ETag(s) of a copy the client holds")),
    responses(
        (status = 200, description = "the frame", content_type = "image/jpeg", body = Jpeg,
            headers(("etag" = String, description = "the snapshot id, quoted"),
                ("cache-control" = String, description = "`public, max-age=31536000, immutable`"),
                ("x-heldar-taken-at" = String, description = "RFC 3339 time the frame was taken"))),
        (status = 206, description = "the requested byte range", content_type = "image/jpeg", body = Jpeg,
            headers(("content-range" = String, description = "`bytes a-b/total`"))),
        (status = 304, description = "not modified: If-None-Match named this frame"),
        (status = 400, body = ErrorBody, description = "the path is not UTF-8"),
        (status = 404, body = ErrorBody, description = "no such frame; also every path that is not a stored frame's (traversal, symlinks, bad names)"),
        (status = 416, body = ErrorBody, description = "the range starts past the end of the file")))]
pub async fn media(
    State(ops): State<Ops>,
    ApiPath((camera, file)): ApiPath<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let snap = ops::frames::by_media_path(&ops, &camera, &file).await?;
    serve(&ops, &snap, &headers).await
}

/// The bytes of a stored frame, honouring If-None-Match and Range.
pub async fn serve(ops: &Ops, snap: &Snapshot, headers: &HeaderMap) -> Result<Response, ApiError> {
    let etag = format!("\"{}\"", snap.id);
    let last_modified = snap
        .taken_at
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    let mut common = HeaderMap::new();
    let put = |h: &mut HeaderMap, k: header::HeaderName, v: &str| {
        if let Ok(v) = HeaderValue::from_str(v) {
            h.insert(k, v);
        }
    };
    put(&mut common, header::ETAG, &etag);
    put(&mut common, header::LAST_MODIFIED, &last_modified);
    put(
        &mut common,
        header::CACHE_CONTROL,
        "public, max-age=31536000, immutable",
    );
    put(&mut common, header::ACCEPT_RANGES, "bytes");
    put(
        &mut common,
        header::HeaderName::from_static("x-heldar-taken-at"),
        &crate::models::fmt_ts(snap.taken_at),
    );
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        return Ok((StatusCode::NOT_MODIFIED, common).into_response());
    }
    let bytes = ops::frames::read(ops, snap).await?;
    let total = bytes.len() as u64;
    put(&mut common, header::CONTENT_TYPE, "image/jpeg");
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    match range.map(|r| parse_range(r, total)) {
        None | Some(RangeSpec::Ignore) => Ok((StatusCode::OK, common, bytes).into_response()),
        Some(RangeSpec::Unsatisfiable) => Err(ApiError::RangeNotSatisfiable(total)),
        Some(RangeSpec::Bytes(a, b)) => {
            put(
                &mut common,
                header::CONTENT_RANGE,
                &format!("bytes {a}-{b}/{total}"),
            );
            let part = bytes.slice(a as usize..=b as usize);
            Ok((StatusCode::PARTIAL_CONTENT, common, part).into_response())
        }
    }
}

/// How to answer a `Range` header. Public for the fuzz targets (`fuzz/`).
#[doc(hidden)]
#[derive(Debug, PartialEq, Eq)]
pub enum RangeSpec {
    /// Serve the whole file (no range, several ranges, or a form we do not honour).
    Ignore,
    Unsatisfiable,
    /// Inclusive byte range.
    Bytes(u64, u64),
}

/// Read a `Range` header for a file of `total` bytes. Public for the fuzz targets (`fuzz/`).
#[doc(hidden)]
pub fn parse_range(h: &str, total: u64) -> RangeSpec {
    let Some(spec) = h.trim().strip_prefix("bytes=") else {
        return RangeSpec::Ignore;
    };
    if spec.contains(',') {
        return RangeSpec::Ignore;
    }
    let Some((a, b)) = spec.split_once('-') else {
        return RangeSpec::Ignore;
    };
    let (a, b) = (a.trim(), b.trim());
    let parsed = match (a.is_empty(), b.is_empty()) {
        (false, _) => {
            let Ok(start) = a.parse::<u64>() else {
                return RangeSpec::Ignore;
            };
            let end = if b.is_empty() {
                Some(u64::MAX)
            } else {
                b.parse::<u64>().ok()
            };
            match end {
                Some(end) if end >= start => (start, end.min(total.saturating_sub(1))),
                _ => return RangeSpec::Ignore,
            }
        }
        (true, false) => {
            let Ok(n) = b.parse::<u64>() else {
                return RangeSpec::Ignore;
            };
            if n == 0 {
                return RangeSpec::Unsatisfiable;
            }
            (total.saturating_sub(n), total.saturating_sub(1))
        }
        (true, true) => return RangeSpec::Ignore,
    };
    if total == 0 || parsed.0 >= total {
        RangeSpec::Unsatisfiable
    } else {
        RangeSpec::Bytes(parsed.0, parsed.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), RangeSpec::Bytes(0, 9));
        assert_eq!(parse_range("bytes=90-", 100), RangeSpec::Bytes(90, 99));
        assert_eq!(parse_range("bytes=90-500", 100), RangeSpec::Bytes(90, 99));
        assert_eq!(parse_range("bytes=-10", 100), RangeSpec::Bytes(90, 99));
        assert_eq!(parse_range("bytes=100-", 100), RangeSpec::Unsatisfiable);
        assert_eq!(parse_range("bytes=9-1", 100), RangeSpec::Ignore);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), RangeSpec::Ignore);
        assert_eq!(parse_range("items=0-1", 100), RangeSpec::Ignore);
        assert_eq!(parse_range("bytes=x-1", 100), RangeSpec::Ignore);
    }
}
