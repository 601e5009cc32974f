//! The interactive API docs at `/api/docs/`: Swagger UI, reading `/api/v1/openapi.json`.
//!
//! Swagger UI's files come from `utoipa-swagger-ui` with its `vendored` feature: the release
//! archive is a crate (`utoipa-swagger-ui-vendored`), unpacked by the build script and embedded
//! in the binary, so neither the build nor the browser fetches anything from elsewhere. The page
//! loads its script, styles and the document from this server only, and says so in its
//! Content-Security-Policy (no CDN, no inline script; the online validator is switched off).
//!
//! Only the files the page loads are served (the archive also holds source maps and other
//! bundles); each is prepared once, on its first request, with a strong ETag from its SHA-256,
//! and answered like the dashboard's files (`web::send`: `no-cache`, revalidated with a 304).
//! The page is public, like the document it shows; "Try it out" sends requests as the browser
//! is: with the dashboard's session cookie (reads), or with a token entered under "Authorize".
//! A file that cannot be prepared is a 404 with a sentence and an ERROR in the log.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};

use super::error::{ApiError, ApiPath};
use super::web;

/// Where the viewer lives. Its files are siblings (`/api/docs/swagger-ui.css`): the page
/// refers to them relatively, so it is served at the path with the trailing slash.
pub const PATH: &str = "/api/docs/";

/// The files of Swagger UI the page needs; anything else is a 404.
const FILES: &[&str] = &[
    "index.html",
    "index.css",
    "swagger-ui.css",
    "swagger-ui-bundle.js",
    "swagger-ui-standalone-preset.js",
    "swagger-initializer.js",
    "favicon-32x32.png",
    "favicon-16x16.png",
];

/// The page's policy: like the dashboard's, everything from this origin. Swagger UI sets styles
/// through the DOM, not in markup, and its SVG icons and images are `data:` URLs.
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; \
                   script-src 'self'; connect-src 'self'; object-src 'none'; \
                   base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/api/docs",
            get(|| async { Redirect::permanent(PATH).into_response() }),
        )
        .route(PATH, get(index))
        .route("/api/docs/{file}", get(file))
}

async fn index(headers: HeaderMap) -> Result<Response, ApiError> {
    serve("index.html", &headers)
}

async fn file(ApiPath(name): ApiPath<String>, headers: HeaderMap) -> Result<Response, ApiError> {
    serve(&name, &headers)
}

/// One prepared file: its bytes, type and ETag.
struct DocFile {
    bytes: bytes::Bytes,
    mime: String,
    etag: String,
}

fn serve(name: &str, headers: &HeaderMap) -> Result<Response, ApiError> {
    let f = files().get(name).ok_or_else(|| {
        ApiError::NotFound(format!(
            "no API docs file {:?}; the docs are at {PATH}",
            crate::models::truncate(name, 80)
        ))
    })?;
    let page = (name == "index.html").then_some(CSP);
    Ok(web::send(f.bytes.clone(), &f.mime, &f.etag, page, headers))
}

/// Every file in [`FILES`], prepared once.
fn files() -> &'static BTreeMap<&'static str, DocFile> {
    static FILES_READY: OnceLock<BTreeMap<&'static str, DocFile>> = OnceLock::new();
    FILES_READY.get_or_init(|| {
        let config = Arc::new(
            utoipa_swagger_ui::Config::new(["/api/v1/openapi.json"])
                // No top bar: it would let the page load any other document by URL.
                .use_base_layout()
                // Never send the document to the online validator.
                .validator_url("none")
                .display_request_duration(true),
        );
        let mut out = BTreeMap::new();
        for name in FILES {
            match utoipa_swagger_ui::serve(name, config.clone()) {
                Ok(Some(f)) => {
                    let mut bytes = web::bytes_of(f.bytes);
                    if *name == "index.html" {
                        let page = String::from_utf8_lossy(&bytes)
                            .replace("<title>Swagger UI</title>", "<title>Heldar API</title>");
                        bytes = bytes::Bytes::from(page);
                    }
                    let etag = web::etag_of(&Sha256::digest(&bytes));
                    out.insert(
                        *name,
                        DocFile {
                            bytes,
                            mime: f.content_type,
                            etag,
                        },
                    );
                }
                Ok(None) => tracing::error!(file = name, "Swagger UI file missing from the build"),
                Err(e) => {
                    tracing::error!(file = name, error = %e, "Swagger UI file cannot be prepared")
                }
            }
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_the_page_needs_is_embedded_and_typed() {
        let files = files();
        for name in FILES {
            let f = files
                .get(name)
                .unwrap_or_else(|| panic!("{name} is missing"));
            assert!(!f.bytes.is_empty(), "{name} is empty");
            assert_ne!(f.mime, "application/octet-stream", "{name}");
        }
        let init = String::from_utf8_lossy(&files["swagger-initializer.js"].bytes).to_string();
        assert!(init.contains("\"/api/v1/openapi.json\""), "{init}");
        assert!(init.contains("\"validatorUrl\": \"none\""), "{init}");
        assert!(!init.contains("petstore"), "{init}");
    }
}
