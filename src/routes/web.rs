//! The dashboard (docs/design.md §2 `web/`): plain HTML, CSS and JS modules embedded in the binary,
//! so `heldar serve` needs nothing beside it and no Node toolchain builds it. In debug builds
//! `rust-embed` reads the files from `web/` on disk, so editing them needs no rebuild.
//!
//! `GET /` is `index.html`; `GET /assets/{*path}` is any other file. Every answer carries a
//! strong ETag (from the file's SHA-256) and `Cache-Control: no-cache`: browsers keep the files
//! and revalidate them with `If-None-Match`, which costs a 304 and no body, and an upgraded
//! binary is picked up at once. The dashboard talks to the public API only.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::error::{ApiError, ApiPath};

#[derive(rust_embed::Embed)]
#[folder = "web/"]
struct Assets;

/// Scripts, styles, images and API calls come from this origin only; no inline script.
const CSP: &str = "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; \
                   script-src 'self'; connect-src 'self'; object-src 'none'; \
                   base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/assets/{*path}", get(asset))
}

async fn index(headers: HeaderMap) -> Result<Response, ApiError> {
    serve("index.html", &headers)
}

async fn asset(ApiPath(path): ApiPath<String>, headers: HeaderMap) -> Result<Response, ApiError> {
    serve(&path, &headers)
}

fn serve(path: &str, headers: &HeaderMap) -> Result<Response, ApiError> {
    // Debug builds read `web/` from disk: no `..`, hidden or empty segments ever reach it.
    let plain = path
        .split('/')
        .all(|seg| !seg.is_empty() && !seg.starts_with('.') && !seg.contains('\\'));
    let file = plain.then(|| Assets::get(path)).flatten().ok_or_else(|| {
        ApiError::NotFound(format!(
            "no dashboard file {:?}",
            crate::models::truncate(path, 80)
        ))
    })?;
    let etag = etag_of(&file.metadata.sha256_hash());
    let page = (path == "index.html").then_some(CSP);
    Ok(send(
        bytes_of(file.data),
        file.metadata.mimetype(),
        &etag,
        page,
        headers,
    ))
}

/// Embedded bytes without a copy (release builds); what debug builds read from disk, as is.
pub(super) fn bytes_of(data: std::borrow::Cow<'static, [u8]>) -> bytes::Bytes {
    match data {
        std::borrow::Cow::Borrowed(b) => bytes::Bytes::from_static(b),
        std::borrow::Cow::Owned(v) => bytes::Bytes::from(v),
    }
}

/// A strong ETag from a file's SHA-256: its first 16 bytes in hex, quoted.
pub(super) fn etag_of(sha256: &[u8]) -> String {
    let hex: String = sha256.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// An embedded file as a response: its ETag, `Cache-Control: no-cache` (revalidate every time:
/// an upgraded binary is picked up at once, an unchanged file costs a 304), `nosniff`, and for
/// an HTML page its Content-Security-Policy and Referrer-Policy. A 304 when If-None-Match names
/// the ETag. Shared with the API docs viewer (`routes::docs`).
pub(super) fn send(
    data: bytes::Bytes,
    mime: &str,
    etag: &str,
    page_csp: Option<&'static str>,
    headers: &HeaderMap,
) -> Response {
    let mut out = HeaderMap::new();
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    out.insert(
        header::HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(v) = HeaderValue::from_str(etag) {
        out.insert(header::ETAG, v);
    }
    if let Some(csp) = page_csp {
        out.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(csp),
        );
        out.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        );
    }
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if fresh {
        return (StatusCode::NOT_MODIFIED, out).into_response();
    }
    let mime = if mime.starts_with("text/") || mime.ends_with("javascript") {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_string()
    };
    if let Ok(v) = HeaderValue::from_str(&mime) {
        out.insert(header::CONTENT_TYPE, v);
    }
    (out, data).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_has_a_known_type_and_the_index_is_there() {
        assert!(Assets::get("index.html").is_some());
        // Every page module is embedded (rust-embed takes the whole of `web/`).
        for module in ["app", "camera", "timeline", "timelapse", "util", "api"] {
            assert!(
                Assets::get(&format!("js/{module}.js")).is_some(),
                "{module}"
            );
        }
        for name in Assets::iter() {
            let f = Assets::get(&name).unwrap();
            assert_ne!(
                f.metadata.mimetype(),
                "application/octet-stream",
                "{name} has no known Content-Type"
            );
        }
    }
}
