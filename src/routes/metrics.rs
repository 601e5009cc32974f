//! `GET /metrics`: Prometheus/OpenMetrics text (DESIGN.md §12). Disk gauges are refreshed at
//! scrape time so they are current even between retention sweeps.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::app::AppState;
use crate::{db, store};

#[utoipa::path(get, path = "/metrics", operation_id = "metrics", tag = "system",
    responses((status = 200, content_type = "application/openmetrics-text", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    if let Ok(free) = store::free_bytes(&state.config.snapshots_dir) {
        state
            .metrics
            .disk_free_bytes
            .set(free.min(i64::MAX as u64) as i64);
    }
    if let Ok(total) = db::snapshots::total_bytes(&state.db).await {
        state.metrics.snapshot_bytes.set(total);
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
}
