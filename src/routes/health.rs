//! `GET /api/v1/health`: liveness and readiness. 200 when the database answers, snapshots_dir is
//! writable and free disk is above HELDAR_MIN_FREE_DISK_GB; 503 otherwise, with every check's
//! result so an operator sees which one failed.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::AppState;
use crate::{db, store};

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` or `degraded`.
    pub status: &'static str,
    pub version: &'static str,
    pub database_ok: bool,
    pub snapshots_dir_writable: bool,
    pub disk_free_bytes: Option<u64>,
    pub min_free_disk_bytes: u64,
    /// What is wrong, one sentence per failed check.
    pub problems: Vec<String>,
}

#[utoipa::path(get, path = "/api/v1/health", operation_id = "health", tag = "system",
    responses((status = 200, body = Health), (status = 503, body = Health)))]
pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let health = check(&state).await;
    let code = if health.problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(health))
}

/// Run every check (shared with `GET /api/v1/system`).
pub async fn check(state: &AppState) -> Health {
    let mut problems = Vec::new();
    let database_ok = match db::ping(&state.db).await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, "health: database check failed");
            problems.push("the database does not answer".to_string());
            false
        }
    };
    let dir = state.config.snapshots_dir.clone();
    let writable = store::check_writable(&dir).await;
    if let Err(e) = &writable {
        tracing::warn!(error = %e, "health: snapshots_dir is not writable");
        problems.push(format!("snapshots_dir {} is not writable", dir.display()));
    }
    let free = store::free_bytes(&dir).ok();
    let min = state.config.min_free_disk_bytes;
    if let Some(f) = free.filter(|f| *f < min) {
        problems.push(format!(
            "free disk {f} bytes is below the floor of {min} bytes"
        ));
    }
    let status = if problems.is_empty() {
        "ok"
    } else {
        "degraded"
    };
    Health {
        status,
        version: env!("CARGO_PKG_VERSION"),
        database_ok,
        snapshots_dir_writable: writable.is_ok(),
        disk_free_bytes: free,
        min_free_disk_bytes: min,
        problems,
    }
}
