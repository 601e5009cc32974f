//! `GET /metrics`: Prometheus/OpenMetrics text (docs/design.md §12). Disk gauges are refreshed at
//! scrape time so they are current even between retention sweeps.
//!
//! It needs a viewer token while authentication is on, unless HELDAR_METRICS_AUTH=none: many
//! Prometheus set-ups scrape without credentials, and the series carry camera ids and counts,
//! never URLs or secrets. [`make_public`] is how that setting reaches the route's rule.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::ops::{self, Ops};

#[utoipa::path(get, path = "/metrics", operation_id = "metrics", tag = "system",
    extensions(("x-heldar-role" = json!("viewer"))),
    responses((status = 200, content_type = "application/openmetrics-text", body = String)))]
pub async fn metrics(State(ops): State<Ops>) -> impl IntoResponse {
    ops::system::refresh_gauges(&ops).await;
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        ops.metrics.encode(),
    )
}

/// Turn `/metrics`' role into `public` in an OpenAPI document (as JSON), before the access table
/// is read from it and in the document served.
pub fn make_public(doc: &mut serde_json::Value) {
    if let Some(op) = doc
        .pointer_mut("/paths/~1metrics/get")
        .and_then(serde_json::Value::as_object_mut)
    {
        op.insert(
            crate::routes::access::ROLE_EXTENSION.into(),
            serde_json::Value::from("public"),
        );
    }
}
