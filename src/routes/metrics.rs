//! `GET /metrics`: Prometheus/OpenMetrics text (DESIGN.md §12). Disk gauges are refreshed at
//! scrape time so they are current even between retention sweeps.

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
