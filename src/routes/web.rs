//! The dashboard (DESIGN.md §2 `web/`): plain HTML, CSS and JS modules embedded in the binary,
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
    let hash = file.metadata.sha256_hash();
    let etag: String = hash[..16].iter().map(|b| format!("{b:02x}")).collect();
    let etag = format!("\"{etag}\"");
    let mut out = HeaderMap::new();
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    out.insert(
        header::HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(v) = HeaderValue::from_str(&etag) {
        out.insert(header::ETAG, v);
    }
    if path == "index.html" {
        out.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
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
        return Ok((StatusCode::NOT_MODIFIED, out).into_response());
    }
    let mime = file.metadata.mimetype();
    let mime = if mime.starts_with("text/") || mime.ends_with("javascript") {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_string()
    };
    if let Ok(v) = HeaderValue::from_str(&mime) {
        out.insert(header::CONTENT_TYPE, v);
    }
    Ok((out, file.data.into_owned()).into_response())
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
