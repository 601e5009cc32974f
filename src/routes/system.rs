//! `GET /api/v1/system`: one read for the dashboard's system page: version and uptime, the
//! health checks, disk use, the retention and scheduler settings in effect, and per camera its
//! state and capture counts. The counts are read from the same counters `/metrics` exports, so
//! the page and a Prometheus scrape never disagree.

use std::collections::HashMap;

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::error::ApiError;
use super::health::{self, Health};
use crate::app::AppState;
use crate::camera::registry;
use crate::db;
use crate::models::{CameraState, ErrorBody};

#[derive(Debug, Serialize, ToSchema)]
pub struct System {
    pub version: &'static str,
    /// Seconds since this process started.
    pub uptime_seconds: u64,
    /// The same checks as `GET /api/v1/health`.
    pub health: Health,
    pub disk: Disk,
    pub retention: RetentionSettings,
    pub scheduler: SchedulerSettings,
    pub cameras: Vec<CameraSummary>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Disk {
    pub snapshots_dir: String,
    /// Free bytes on the snapshots filesystem; `null` when it cannot be read.
    pub free_bytes: Option<u64>,
    /// Bytes of all stored frames.
    pub stored_bytes: i64,
    /// Number of stored frames.
    pub stored_frames: i64,
}

/// Retention as configured (HELDAR_SNAPSHOT_RETENTION_HOURS, HELDAR_SNAPSHOT_MAX_GB,
/// HELDAR_MIN_FREE_DISK_GB, HELDAR_RETENTION_INTERVAL_S).
#[derive(Debug, Serialize, ToSchema)]
pub struct RetentionSettings {
    /// Frames older than this are removed; `null` keeps them forever.
    pub max_age_hours: Option<u64>,
    /// Oldest frames are removed above this total; `null` is no cap.
    pub max_bytes: Option<u64>,
    /// Oldest frames are removed while free disk is below this.
    pub min_free_disk_bytes: u64,
    /// Seconds between retention sweeps.
    pub sweep_interval_seconds: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SchedulerSettings {
    pub enabled: bool,
    /// Seconds between the scheduler's rescans of the schedule table.
    pub rescan_interval_seconds: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CameraSummary {
    pub id: String,
    pub name: String,
    pub state: CameraState,
    /// Successful captures since start-up (`heldar_captures{result="ok"}`).
    pub captures_ok: u64,
    /// Failed captures since start-up (every other `result`).
    pub captures_failed: u64,
    pub consecutive_failures: i64,
    /// The last failure, credentials masked.
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub stored_frames: i64,
    pub stored_bytes: i64,
    pub newest_frame_at: Option<DateTime<Utc>>,
}

#[utoipa::path(get, path = "/api/v1/system", tag = "system",
    responses((status = 200, body = System), (status = 500, body = ErrorBody)))]
pub async fn system(State(state): State<AppState>) -> Result<Json<System>, ApiError> {
    let health = health::check(&state).await;
    let cameras = registry::list(&state).await?;
    let frames: HashMap<String, db::snapshots::CameraFrames> = db::snapshots::per_camera(&state.db)
        .await?
        .into_iter()
        .map(|f| (f.camera_id.clone(), f))
        .collect();
    let config = &state.config;
    let cameras: Vec<CameraSummary> = cameras
        .into_iter()
        .map(|c| {
            let (ok, failed) = state.metrics.capture_counts(c.id.as_str());
            let f = frames.get(c.id.as_str());
            CameraSummary {
                id: c.id.to_string(),
                name: c.name,
                state: c.status.state,
                captures_ok: ok,
                captures_failed: failed,
                consecutive_failures: c.status.consecutive_failures,
                last_error: c.status.last_error,
                last_error_at: c.status.last_error_at,
                last_success_at: c.status.last_success_at,
                stored_frames: f.map_or(0, |f| f.frames),
                stored_bytes: f.map_or(0, |f| f.bytes),
                newest_frame_at: f.and_then(|f| f.newest_at),
            }
        })
        .collect();
    Ok(Json(System {
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: state.metrics.uptime().as_secs(),
        disk: Disk {
            snapshots_dir: config.snapshots_dir.display().to_string(),
            free_bytes: health.disk_free_bytes,
            stored_bytes: frames.values().map(|f| f.bytes).sum(),
            stored_frames: frames.values().map(|f| f.frames).sum(),
        },
        health,
        retention: RetentionSettings {
            max_age_hours: config.retention_age.map(|d| d.as_secs() / 3600),
            max_bytes: config.snapshot_max_bytes,
            min_free_disk_bytes: config.min_free_disk_bytes,
            sweep_interval_seconds: config.retention_interval.as_secs(),
        },
        scheduler: SchedulerSettings {
            enabled: config.scheduler_enabled,
            rescan_interval_seconds: config.scheduler_interval.as_secs(),
        },
        cameras,
    }))
}
