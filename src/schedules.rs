//! Schedule operations behind the API: create, change, delete — each written to the database and
//! then announced to the scheduler, so it acts at once (DESIGN.md §7).
//!
//! Semantics follow the Heldar kernel: `interval_seconds` defaults to 300 and is clamped to
//! 5..=86400 (not refused); `enabled` defaults to true. A new schedule is due at once; a changed
//! interval or a re-enable makes it due when `last_fired_at + interval` comes (at once if that
//! has passed).

use chrono::SubsecRound;

use crate::app::AppState;
use crate::db;
use crate::models::{
    new_id, CameraId, Schedule, ScheduleCreate, SchedulePatch, DEFAULT_INTERVAL_S, MAX_INTERVAL_S,
    MIN_INTERVAL_S,
};
use crate::routes::error::ApiError;
use crate::services::snapshot_scheduler::slots;

fn clamp(interval: i64) -> i64 {
    interval.clamp(MIN_INTERVAL_S, MAX_INTERVAL_S)
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!(
        "no snapshot schedule with id {:?}",
        crate::models::truncate(id, 80)
    ))
}

async fn require_camera(state: &AppState, camera: &CameraId) -> Result<(), ApiError> {
    match db::cameras::exists(&state.db, camera).await? {
        true => Ok(()),
        false => Err(ApiError::NotFound(format!(
            "no camera with id {:?}",
            camera.as_str()
        ))),
    }
}

pub async fn list(state: &AppState, camera: &CameraId) -> Result<Vec<Schedule>, ApiError> {
    require_camera(state, camera).await?;
    Ok(db::schedules::list_for_camera(&state.db, camera).await?)
}

pub async fn create(
    state: &AppState,
    camera: &CameraId,
    body: ScheduleCreate,
) -> Result<Schedule, ApiError> {
    require_camera(state, camera).await?;
    let now = state.clock.now().trunc_subsecs(3);
    let s = Schedule {
        id: new_id("sch"),
        camera_id: camera.clone(),
        interval_seconds: clamp(body.interval_seconds.unwrap_or(DEFAULT_INTERVAL_S)),
        enabled: body.enabled.unwrap_or(true),
        last_fired_at: None,
        next_due_at: Some(now),
        created_at: now,
        updated_at: now,
    };
    // The camera may vanish between the check and the insert: the foreign key says so.
    db::schedules::insert(&state.db, &s)
        .await
        .map_err(|e| match e {
            db::DbError::Sqlx {
                source: sqlx::Error::Database(ref d),
                ..
            } if d.is_foreign_key_violation() => {
                ApiError::NotFound(format!("no camera with id {:?}", camera.as_str()))
            }
            other => other.into(),
        })?;
    state.scheduler.refresh(&s.id);
    tracing::info!(schedule = %s.id, camera = %camera, interval_s = s.interval_seconds, "schedule created");
    Ok(s)
}

pub async fn update(
    state: &AppState,
    id: &str,
    patch: SchedulePatch,
) -> Result<Schedule, ApiError> {
    let mut s = db::schedules::get(&state.db, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    let now = state.clock.now().trunc_subsecs(3);
    let was_enabled = s.enabled;
    let old_interval = s.interval_seconds;
    if let Some(i) = patch.interval_seconds {
        s.interval_seconds = clamp(i);
    }
    if let Some(e) = patch.enabled {
        s.enabled = e;
    }
    if s.enabled && (!was_enabled || s.interval_seconds != old_interval) {
        let interval = chrono::Duration::seconds(s.interval_seconds);
        s.next_due_at = Some(slots::first_due(s.last_fired_at, interval, now).trunc_subsecs(3));
    }
    s.updated_at = now;
    if !db::schedules::update(&state.db, &s).await? {
        return Err(not_found(id));
    }
    state.scheduler.refresh(id);
    Ok(s)
}

pub async fn delete(state: &AppState, id: &str) -> Result<(), ApiError> {
    if !db::schedules::delete(&state.db, id).await? {
        return Err(not_found(id));
    }
    state.scheduler.refresh(id);
    Ok(())
}
