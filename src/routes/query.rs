//! Query strings: every API operation takes the query parameters its OpenAPI description lists,
//! and no others. A parameter it does not take — a typo such as `limt`, or any parameter on an
//! operation that takes none — is a 400 (`unknown_parameter`) naming it and the parameters the
//! operation does take, instead of being silently ignored (a mistyped filter would otherwise
//! answer with everything).
//!
//! The table is read from the route list's OpenAPI document ([`table_from`]), like the access
//! table, so the parameters are declared once (each handler's `params(…)`) and the document
//! cannot disagree with what is refused. The check ([`guard`]) runs after the access guard and
//! before every handler. Routes outside the document (the dashboard's page and files, the API
//! docs viewer) are not checked: a browser may add what it likes to a page's URL.
//!
//! The values themselves are parsed by the handlers (`params`): this module only knows names.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::error::ApiError;
use crate::state::ApiDescription;

/// Method and route pattern → the names of the query parameters its operation takes.
pub type QueryTable = BTreeMap<(String, String), Vec<String>>;

/// The query parameters of every operation in a route list's OpenAPI document (as JSON).
pub fn table_from(doc: &Value) -> QueryTable {
    let mut table = QueryTable::new();
    let paths = doc.get("paths").and_then(Value::as_object);
    for (path, item) in paths.into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            let names = op
                .get("parameters")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|p| p.get("in").and_then(Value::as_str) == Some("query"))
                .filter_map(|p| p.get("name").and_then(Value::as_str))
                .map(str::to_string)
                .collect();
            table.insert((method.to_ascii_uppercase(), path.clone()), names);
        }
    }
    table
}

/// Whether the query string `query` of a request for `method` on the route pattern `path` names
/// only parameters the operation takes. `Ok` for routes the table does not know.
pub fn check(
    table: &QueryTable,
    method: &str,
    path: &str,
    query: Option<&str>,
) -> Result<(), ApiError> {
    let Some(query) = query.filter(|q| !q.is_empty()) else {
        return Ok(());
    };
    let method = if method.eq_ignore_ascii_case("HEAD") {
        "GET".to_string()
    } else {
        method.to_ascii_uppercase()
    };
    let Some(known) = table.get(&(method, path.to_string())) else {
        return Ok(());
    };
    // Decoded as the handlers' `Query` decodes it (`li%6Dit` is `limit`).
    let unknown = url::form_urlencoded::parse(query.as_bytes())
        .map(|(name, _)| name)
        .find(|name| !known.iter().any(|k| k == name));
    match unknown {
        None => Ok(()),
        Some(name) => Err(ApiError::UnknownParameter {
            name: crate::models::truncate(&name, 60),
            known: known.clone(),
        }),
    }
}

/// The middleware: refuse a request whose query string names a parameter its operation does
/// not take.
pub async fn guard(State(api): State<Arc<ApiDescription>>, req: Request, next: Next) -> Response {
    let checked = match req.extensions().get::<MatchedPath>() {
        Some(path) => check(
            &api.query,
            req.method().as_str(),
            path.as_str(),
            req.uri().query(),
        ),
        // The 404 fallback: no operation, nothing to check.
        None => Ok(()),
    };
    match checked {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> QueryTable {
        table_from(&serde_json::json!({"paths": {
            "/api/v1/cameras/{id}/snapshots": {"get": {"parameters": [
                {"name": "id", "in": "path"},
                {"name": "from", "in": "query"},
                {"name": "limit", "in": "query"},
                {"name": "range", "in": "header"}]}},
            "/api/v1/cameras": {"get": {}, "post": {}}
        }}))
    }

    #[test]
    fn only_the_declared_query_parameters_pass() {
        let t = table();
        let frames = "/api/v1/cameras/{id}/snapshots";
        for ok in [
            None,
            Some(""),
            Some("limit=5"),
            Some("from=x&limit=5"),
            Some("li%6Dit=5"),
        ] {
            assert!(check(&t, "GET", frames, ok).is_ok(), "{ok:?}");
        }
        assert!(check(&t, "HEAD", frames, Some("limit=1")).is_ok());
        let e = check(&t, "GET", frames, Some("limit=5&limt=5")).unwrap_err();
        assert_eq!(e.status().as_u16(), 400);
        assert_eq!(
            e.to_string(),
            "unknown query parameter \"limt\"; this endpoint takes from, limit"
        );
        // Neither a path nor a header parameter is a query parameter.
        assert!(check(&t, "GET", frames, Some("id=x")).is_err());
        assert!(check(&t, "GET", frames, Some("range=x")).is_err());
        let e = check(&t, "POST", "/api/v1/cameras", Some("force")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown query parameter \"force\"; this endpoint takes no query parameters"
        );
        // A route the document does not describe (the dashboard's files) is not checked.
        assert!(check(&t, "GET", "/assets/{*path}", Some("v=2")).is_ok());
    }
}
