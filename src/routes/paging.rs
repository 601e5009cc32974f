//! What every list answer carries. The body stays a bare JSON array (as in v1 from the start:
//! clients, the dashboard and the tests read it so); the paging travels in headers:
//!
//! - `x-total-count`: how many items match the request's filters in all, whatever the page size
//!   and starting position;
//! - `link: <…?cursor=…>; rel="next"` (RFC 8288), only when more items remain: the same request
//!   with its other parameters unchanged and the cursor of the next page.
//!
//! Unpaged lists (cameras, one camera's schedules, tokens) carry `x-total-count` too, always
//! equal to the array's length, and never a link. This module owns the headers only; the
//! positions come from `ops`, the cursor's encoding from [`super::params`].

use axum::http::{header, HeaderName, HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use super::params::encode_cursor;
use crate::models::Page;

/// The header with the number of matching items.
pub static TOTAL_COUNT: HeaderName = HeaderName::from_static("x-total-count");

/// A list answer: the items as a JSON array, with [`TOTAL_COUNT`] and, when more remain, the
/// `link` to the next page.
pub struct Listed<T> {
    items: Vec<T>,
    total: i64,
    next: Option<String>,
}

impl<T> Listed<T> {
    /// A whole, unpaged list.
    pub fn all(items: Vec<T>) -> Listed<T> {
        let total = items.len() as i64;
        Listed {
            items,
            total,
            next: None,
        }
    }

    /// One page of a paged list, as an answer to the request for `uri`: its items (shown as
    /// `view` makes them) and, when more remain, the link to the next page.
    pub fn page<U>(page: Page<U>, uri: &Uri, view: impl Fn(&U) -> T) -> Listed<T> {
        Listed {
            items: page.items.iter().map(view).collect(),
            total: page.total,
            next: page.next.map(|p| next_page(uri, &encode_cursor(&p))),
        }
    }
}

/// `uri` with its `cursor` parameter replaced by `cursor`, every other parameter kept as sent:
/// an absolute path, which RFC 8288 resolves against the request's own URL.
pub fn next_page(uri: &Uri, cursor: &str) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    let kept = url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .filter(|(k, _)| k != "cursor");
    for (k, v) in kept {
        query.append_pair(&k, &v);
    }
    query.append_pair("cursor", cursor);
    format!("{}?{}", uri.path(), query.finish())
}

impl<T: Serialize> IntoResponse for Listed<T> {
    fn into_response(self) -> Response {
        let mut resp = Json(self.items).into_response();
        let headers = resp.headers_mut();
        headers.insert(TOTAL_COUNT.clone(), HeaderValue::from(self.total));
        if let Some(next) = self.next {
            // The path and query came in as a valid URI and were re-encoded: always a valid
            // header value. Should that ever fail, the page is still right, only unlinked.
            if let Ok(v) = HeaderValue::from_str(&format!("<{next}>; rel=\"next\"")) {
                headers.insert(header::LINK, v);
            }
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_link_keeps_the_filters_and_replaces_the_cursor() {
        let uri: Uri = "/api/v1/cameras/gate/snapshots?from=2026-11-29&limit=2&cursor=old"
            .parse()
            .unwrap();
        assert_eq!(
            next_page(&uri, "abc_-1"),
            "/api/v1/cameras/gate/snapshots?from=2026-11-29&limit=2&cursor=abc_-1"
        );
        let uri: Uri = "/api/v1/snapshot-schedules".parse().unwrap();
        assert_eq!(
            next_page(&uri, "xyz"),
            "/api/v1/snapshot-schedules?cursor=xyz"
        );
    }
}
