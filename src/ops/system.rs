//! The system as a whole: health (is the database answering, can frames be written, is there
//! disk) and the summary the dashboard's system page shows.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::db;
use crate::error::OpResult;
use crate::models::CameraState;

use super::Ops;

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `degraded` with the reasons in `problems`.
    pub status: &'static str,
    pub version: &'static str,
    pub database_ok: bool,
    /// `available`, or `unavailable since <time>` while the database cannot be written (locked
    /// by another process, unreachable); writes are held meanwhile (docs/operations.md).
    pub database: String,
    /// Slot claims and writes held in memory, waiting for the database.
    pub database_held_writes: u64,
    pub snapshots_dir_writable: bool,
    /// Bytes free for Heldar on the disk holding snapshots_dir.
    pub disk_free_bytes: Option<u64>,
    /// HELDAR_MIN_FREE_DISK_GB, in bytes.
    pub min_free_disk_bytes: u64,
    pub problems: Vec<String>,
}

/// How long the health check waits for the database, and for the frame storage, to answer.
const HEALTH_PING_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Check the database, the snapshots folder (or bucket) and the free disk.
pub async fn health(ops: &Ops) -> Health {
    let mut problems = Vec::new();
    // Both looks bounded and taken at once, so the answer comes within HEALTH_PING_WAIT
    // whatever is down: a health check must answer sooner than a load balancer's patience. A
    // PostgreSQL server that is down makes the pool retry its connection for up to its acquire
    // timeout (10 s); a bucket behind a network partition takes the connection and never
    // answers, holding a listing for the bucket client's whole request deadline (10 s).
    let (ping, writable) = tokio::join!(
        tokio::time::timeout(HEALTH_PING_WAIT, db::ping(&ops.db)),
        tokio::time::timeout(HEALTH_PING_WAIT, ops.store.check()),
    );
    let ping = ping.unwrap_or_else(|_| {
        Err(db::DbError::Unavailable {
            step: "checking the database",
            reason: format!("no answer within {} s", HEALTH_PING_WAIT.as_secs()),
        })
    });
    let writable = writable.unwrap_or_else(|_| {
        Err(crate::store::StoreError::Unavailable(format!(
            "no answer within {} s",
            HEALTH_PING_WAIT.as_secs()
        )))
    });
    // What the check found, as the sentence an operator acts on: a login refused at run time
    // (an `ALTER ROLE … PASSWORD`) is not "does not answer".
    let ping_problem = match &ping {
        Ok(()) => None,
        Err(db::DbError::Unavailable { reason, .. })
            if reason.starts_with("the database refuses") =>
        {
            Some(reason.clone())
        }
        Err(_) => Some("the database does not answer".to_string()),
    };
    if let Err(e) = &ping {
        tracing::warn!(error = %e, "health: database check failed");
    }
    let database_ok = ping_problem.is_none();
    // Reads may still work while another process holds the write lock: the writer's view of
    // the outage is what says whether frames are being committed.
    let outage = ops.writer.outage();
    let held = ops.writer.held() as u64;
    let database = match &outage {
        // The writer has not met the outage yet (nothing to write since it began): the check's
        // own finding, never "available" beside a failed check.
        None => match &ping_problem {
            Some(problem) => {
                problems.push(problem.clone());
                format!("unavailable ({problem})")
            }
            None => "available".to_string(),
        },
        Some(o) => {
            problems.extend(ping_problem.clone());
            let line = format!(
                "unavailable since {} ({}){}",
                crate::models::fmt_ts(o.since),
                o.reason,
                if o.refusing {
                    "; the outage buffer is full or outlasted: new frames are refused"
                } else {
                    ""
                }
            );
            problems.push(format!(
                "database: {line}; {held} writes held until it returns"
            ));
            line
        }
    };
    let database_ok = database_ok && outage.is_none();
    if writable.is_ok() {
        // The storage answers: an outage the captures met is over, even with no frame since
        // (a node whose cameras all moved away).
        super::store_outage::storage_answered(ops);
    }
    if let Err(e) = &writable {
        tracing::warn!(error = %e, "health: frames cannot be stored");
        problems.push(match ops.store.bucket() {
            Some(b) => format!("the frame storage {} does not answer", b.url()),
            None => format!("snapshots_dir {} is not writable", ops.store.location()),
        });
    }
    // A bucket has no free disk to report (`None`): the floor applies to local storage only.
    let free = ops.store.free_bytes().and_then(Result::ok);
    let min = ops.config.min_free_disk_bytes;
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
        database,
        database_held_writes: held,
        snapshots_dir_writable: writable.is_ok(),
        disk_free_bytes: free,
        min_free_disk_bytes: min,
        problems,
    }
}

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
    pub capture: CaptureSettings,
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

/// Capture as configured (HELDAR_CAPTURE_TIMEOUT_S, HELDAR_CAPTURE_CONCURRENCY,
/// HELDAR_CAPTURE_MAX_BYTES). The dashboard shows a live snapshot's wait against the deadline.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaptureSettings {
    /// One capture's deadline in seconds, waiting for the camera included: a camera that does
    /// not answer fails with `timeout` after this long.
    pub timeout_seconds: u64,
    /// Captures in flight at once per lane (cameras in good standing, cameras failing).
    pub concurrency: usize,
    /// Largest frame accepted, in bytes.
    pub max_bytes: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CameraSummary {
    pub id: String,
    pub name: String,
    pub state: CameraState,
    /// Successful captures by the node answering, since it started
    /// (`heldar_captures{result="ok"}`). Per node: 0 for a camera another node of a fleet holds;
    /// the fleet's count is the sum over nodes (docs/monitoring.md).
    pub captures_ok: u64,
    /// Failed captures by the node answering, since it started (every other `result`); per node
    /// like `captures_ok`.
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

pub async fn system(ops: &Ops) -> OpResult<System> {
    let health = health(ops).await;
    let cameras = db::cameras::list(&ops.db).await?;
    let frames: HashMap<String, db::snapshots::CameraFrames> = db::snapshots::per_camera(&ops.db)
        .await?
        .into_iter()
        .map(|f| (f.camera_id.clone(), f))
        .collect();
    let config = &ops.config;
    let cameras: Vec<CameraSummary> = cameras
        .into_iter()
        .map(|(c, status)| {
            let (ok, failed) = ops.metrics.capture_counts(c.id.as_str());
            let f = frames.get(c.id.as_str());
            CameraSummary {
                id: c.id.to_string(),
                name: c.spec.name,
                state: status.state,
                captures_ok: ok,
                captures_failed: failed,
                consecutive_failures: status.consecutive_failures,
                last_error: status.last_error,
                last_error_at: status.last_error_at,
                last_success_at: status.last_success_at,
                stored_frames: f.map_or(0, |f| f.frames),
                stored_bytes: f.map_or(0, |f| f.bytes),
                newest_frame_at: f.and_then(|f| f.newest_at),
            }
        })
        .collect();
    Ok(System {
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: ops.metrics.uptime().as_secs(),
        disk: Disk {
            snapshots_dir: ops.store.location(),
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
        capture: CaptureSettings {
            timeout_seconds: config.capture_timeout.as_secs(),
            concurrency: config.capture_concurrency,
            max_bytes: config.capture_max_bytes,
        },
        cameras,
    })
}

/// Refresh the gauges `/metrics` reports that are read, not counted (disk free, bytes stored).
pub async fn refresh_gauges(ops: &Ops) {
    if let Some(Ok(free)) = ops.store.free_bytes() {
        ops.metrics
            .disk_free_bytes
            .set(free.min(i64::MAX as u64) as i64);
    }
    if let Ok(total) = db::snapshots::total_bytes(&ops.db).await {
        ops.metrics.snapshot_bytes.set(total);
    }
}
