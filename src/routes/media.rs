//! Stored frames and timelapse videos as files: `GET /media/snapshots/{camera_id}/{file}`,
//! `GET /api/v1/cameras/{id}/snapshots/latest` and `GET /media/timelapses/{camera_id}/{file}`.
//!
//! Videos are served the same way as frames ([`respond`]: ETag = the row's id, Range,
//! If-None-Match, immutable caching) but streamed from the open file rather than read whole; the
//! same traversal rules hold (a slug, one of the store's names, a row naming it, no symlinks).
//!
//! `/media` serves only files a `snapshots` row names, under snapshots_dir: the camera segment
//! must be a slug, the file one of our frame names, the row must exist, and the file is opened
//! without following symlinks. Everything else — `..`, encoded separators, absolute paths,
//! symlinks, files no row names — is a 404. Frames never change once written, so responses carry
//! an ETag (the snapshot id), Last-Modified, Range support and a year-long immutable cache.
//!
//! With frames in an S3 bucket (docs/storage.md) the same checks run against the row, then the
//! frame is read from the bucket (a frame is small: read whole, the Range sliced from it) and a
//! video streamed by range; or, with HELDAR_S3_PRESIGN_SECONDS set, a frame is answered with a
//! 302 to a presigned GET URL of its object, so the bytes go from the bucket to the client.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::{ApiError, ApiPath};
use crate::models::{ErrorBody, Jpeg, Snapshot, Video};
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
        (status = 302, description = "frames in an S3 bucket with HELDAR_S3_PRESIGN_SECONDS set: the frame is at the presigned URL in `location`, valid that long",
            headers(("location" = String, description = "a presigned GET URL of the frame's object"))),
        (status = 304, description = "not modified: If-None-Match named this frame"),
        (status = 400, body = ErrorBody, description = "the path is not UTF-8"),
        (status = 404, body = ErrorBody, description = "no such frame; also every path that is not a stored frame's (traversal, symlinks, bad names)"),
        (status = 416, body = ErrorBody, description = "the range starts past the end of the file"),
        (status = 503, body = ErrorBody, description = "frames are in an S3 bucket that does not answer (`storage_unavailable`)")))]
pub async fn media(
    State(ops): State<Ops>,
    ApiPath((camera, file)): ApiPath<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let snap = ops::frames::by_media_path(&ops, &camera, &file).await?;
    serve(&ops, &snap, &headers).await
}

/// The bytes of a stored frame, honouring If-None-Match and Range; or a redirect to its presigned
/// URL (frames in a bucket, presigning on).
pub async fn serve(ops: &Ops, snap: &Snapshot, headers: &HeaderMap) -> Result<Response, ApiError> {
    if let Some(url) = ops::frames::presigned(ops, snap).await? {
        // The URL expires: the redirect itself must not be cached.
        let mut h = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(url.as_str()) {
            h.insert(header::LOCATION, v);
        }
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return Ok((StatusCode::FOUND, h).into_response());
    }
    let meta = MediaMeta {
        etag: format!("\"{}\"", snap.id),
        last_modified: snap.taken_at,
        content_type: "image/jpeg",
        extra: vec![(
            header::HeaderName::from_static("x-heldar-taken-at"),
            crate::models::fmt_ts(snap.taken_at),
        )],
    };
    respond(meta, headers, async {
        Ok(MediaBody::Bytes(ops::frames::read(ops, snap).await?))
    })
    .await
}

/// How a media file is identified for caching, and sent.
pub struct MediaMeta {
    /// Quoted; the id of the row that names the file (files never change once written).
    pub etag: String,
    pub last_modified: chrono::DateTime<chrono::Utc>,
    pub content_type: &'static str,
    pub extra: Vec<(header::HeaderName, String)>,
}

/// A media file's content: in memory (a frame), an open file streamed (a video), or an object
/// in the bucket streamed by range (a video).
pub enum MediaBody {
    Bytes(bytes::Bytes),
    File {
        file: tokio::fs::File,
        len: u64,
    },
    Object {
        bucket: std::sync::Arc<crate::store::object::Bucket>,
        rel: String,
        len: u64,
    },
}

/// Answer a media request: 304 for a matching If-None-Match (before the file is opened), else
/// the whole file or the one byte range asked for. `load` opens the file.
pub async fn respond(
    meta: MediaMeta,
    headers: &HeaderMap,
    load: impl std::future::Future<Output = Result<MediaBody, ApiError>>,
) -> Result<Response, ApiError> {
    let mut common = HeaderMap::new();
    let put = |h: &mut HeaderMap, k: header::HeaderName, v: &str| {
        if let Ok(v) = HeaderValue::from_str(v) {
            h.insert(k, v);
        }
    };
    put(&mut common, header::ETAG, &meta.etag);
    put(
        &mut common,
        header::LAST_MODIFIED,
        &meta
            .last_modified
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string(),
    );
    put(
        &mut common,
        header::CACHE_CONTROL,
        "public, max-age=31536000, immutable",
    );
    put(&mut common, header::ACCEPT_RANGES, "bytes");
    for (k, v) in &meta.extra {
        put(&mut common, k.clone(), v);
    }
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim() == meta.etag || t.trim() == "*")
        })
    {
        return Ok((StatusCode::NOT_MODIFIED, common).into_response());
    }
    let body = load.await?;
    let total = match &body {
        MediaBody::Bytes(b) => b.len() as u64,
        MediaBody::File { len, .. } | MediaBody::Object { len, .. } => *len,
    };
    put(&mut common, header::CONTENT_TYPE, meta.content_type);
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (status, a, b) = match range.map(|r| parse_range(r, total)) {
        None | Some(RangeSpec::Ignore) => (StatusCode::OK, 0, total.saturating_sub(1)),
        Some(RangeSpec::Unsatisfiable) => return Err(ApiError::RangeNotSatisfiable(total)),
        Some(RangeSpec::Bytes(a, b)) => {
            put(
                &mut common,
                header::CONTENT_RANGE,
                &format!("bytes {a}-{b}/{total}"),
            );
            (StatusCode::PARTIAL_CONTENT, a, b)
        }
    };
    match body {
        MediaBody::Bytes(bytes) => {
            let part = if status == StatusCode::OK {
                bytes
            } else {
                bytes.slice(a as usize..=b as usize)
            };
            Ok((status, common, part).into_response())
        }
        MediaBody::File { mut file, len } => {
            use tokio::io::{AsyncReadExt, AsyncSeekExt};
            let count = if len == 0 { 0 } else { b - a + 1 };
            if a > 0 {
                file.seek(std::io::SeekFrom::Start(a))
                    .await
                    .map_err(|e| ApiError::Internal(e.into()))?;
            }
            put(&mut common, header::CONTENT_LENGTH, &count.to_string());
            let stream = tokio_util::io::ReaderStream::new(file.take(count));
            Ok((status, common, axum::body::Body::from_stream(stream)).into_response())
        }
        MediaBody::Object { bucket, rel, len } => {
            if len == 0 {
                put(&mut common, header::CONTENT_LENGTH, "0");
                return Ok((status, common).into_response());
            }
            let stream = bucket.stream_range(&rel, a, b).await.map_err(|e| {
                tracing::warn!(key = %rel, error = %e, "video not served: the storage failed");
                ApiError::Unavailable {
                    code: "storage_unavailable",
                    message: format!(
                        "the frame storage {} does not answer; try again later",
                        bucket.url()
                    ),
                }
            })?;
            put(
                &mut common,
                header::CONTENT_LENGTH,
                &(b - a + 1).to_string(),
            );
            Ok((status, common, axum::body::Body::from_stream(stream)).into_response())
        }
    }
}

#[utoipa::path(get, path = "/media/timelapses/{camera_id}/{file}", operation_id = "get_media_timelapse", tag = "timelapses",
    extensions(("x-heldar-role" = json!("viewer"))),
    params(("camera_id" = String, Path, description = "camera id (slug)",
            pattern = r"^[a-z0-9][a-z0-9_-]{0,62}$", example = "demo"),
        ("file" = String, Path, description = "`{timelapse id}.mp4` or `.webm`",
            pattern = r"^tl_[0-9a-f]{32}\.(mp4|webm)$", example = "tl_0123456789abcdef0123456789abcdef.mp4"),
        ("range" = Option<String>, Header, description = "one range `bytes=a-b`, `bytes=a-` or `bytes=-n`; other forms get the whole file"),
        ("if-none-match" = Option<String>, Header, description = "ETag(s) of a copy the client holds")),
    responses(
        (status = 200, description = "the video (`video/mp4` or `video/webm`, as its name says)",
            content((Video = "video/mp4"), (Video = "video/webm")),
            headers(("etag" = String, description = "the timelapse id, quoted"),
                ("cache-control" = String, description = "`public, max-age=31536000, immutable`"))),
        (status = 206, description = "the requested byte range",
            content((Video = "video/mp4"), (Video = "video/webm")),
            headers(("content-range" = String, description = "`bytes a-b/total`"))),
        (status = 304, description = "not modified: If-None-Match named this video"),
        (status = 400, body = ErrorBody, description = "the path is not UTF-8"),
        (status = 404, body = ErrorBody, description = "no such video; also every path that is not a stored video's (traversal, symlinks, bad names)"),
        (status = 416, body = ErrorBody, description = "the range starts past the end of the file")))]
pub async fn timelapse(
    State(ops): State<Ops>,
    ApiPath((camera, file)): ApiPath<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let tl = ops::timelapses::by_media_path(&ops, &camera, &file).await?;
    let meta = MediaMeta {
        etag: format!("\"{}\"", tl.id),
        last_modified: tl.created_at,
        content_type: tl.format.content_type(),
        extra: Vec::new(),
    };
    respond(meta, &headers, async {
        Ok(match ops::timelapses::open(&ops, &tl).await? {
            crate::store::videos::OpenVideo::File { file, len } => MediaBody::File { file, len },
            crate::store::videos::OpenVideo::Object { bucket, rel, len } => {
                MediaBody::Object { bucket, rel, len }
            }
        })
    })
    .await
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
