//! `GET /api/v1/health`: liveness and readiness. 200 when the database answers, snapshots_dir is
//! writable and free disk is above HELDAR_MIN_FREE_DISK_GB; 503 otherwise, with every check's
//! result so an operator sees which one failed.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use crate::ops::{self, system::Health, Ops};

#[utoipa::path(get, path = "/api/v1/health", operation_id = "health", tag = "system",
    extensions(("x-heldar-role" = json!("public"))),
    responses((status = 200, body = Health), (status = 503, body = Health)))]
pub async fn health(State(ops): State<Ops>) -> (StatusCode, Json<Health>) {
    let health = ops::system::health(&ops).await;
    let code = if health.problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(health))
}
