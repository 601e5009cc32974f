//! Registry operations: what creating, editing and deleting a camera does across the database
//! and the frame store. Handlers call these; this is where the two stay consistent.

use chrono::Utc;

use crate::app::AppState;
use crate::camera::{spec::CameraSpec, view};
use crate::models::{Camera, CameraCreate, CameraId, CameraPatch, CameraView};
use crate::routes::error::ApiError;
use crate::{db, store};

fn not_found(id: &CameraId) -> ApiError {
    ApiError::NotFound(format!("no camera with id {:?}", id.as_str()))
}

pub async fn list(state: &AppState) -> Result<Vec<CameraView>, ApiError> {
    Ok(db::cameras::list(&state.db, &state.sealer)
        .await?
        .into_iter()
        .map(|(c, s)| view(&c, s))
        .collect())
}

/// The stored camera (with its secrets, for capture).
pub async fn camera(state: &AppState, id: &CameraId) -> Result<Camera, ApiError> {
    db::cameras::get(&state.db, &state.sealer, id)
        .await?
        .map(|(c, _)| c)
        .ok_or_else(|| not_found(id))
}

pub async fn get(state: &AppState, id: &CameraId) -> Result<CameraView, ApiError> {
    let (c, s) = db::cameras::get(&state.db, &state.sealer, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    Ok(view(&c, s))
}

pub async fn create(state: &AppState, body: CameraCreate) -> Result<CameraView, ApiError> {
    let spec = CameraSpec::from_create(body)?;
    let camera = db::cameras::insert(&state.db, &state.sealer, &spec, Utc::now()).await?;
    tracing::info!(camera = %camera.id, vendor = camera.vendor.as_str(), "camera created");
    get(state, &camera.id).await
}

pub async fn update(
    state: &AppState,
    id: &CameraId,
    patch: CameraPatch,
) -> Result<CameraView, ApiError> {
    let current = camera(state, id).await?;
    let spec = CameraSpec::from_patch(&current, patch)?;
    db::cameras::update(&state.db, &state.sealer, &spec, Utc::now())
        .await?
        .ok_or_else(|| not_found(id))?;
    state.keeper.cameras.forget(id);
    tracing::info!(camera = %id, "camera updated");
    get(state, id).await
}

/// Delete the camera, then its frame files. The rows go first (one transaction, cascading to
/// schedules and snapshot rows), so no row can point at a deleted file; a file that cannot be
/// removed is logged and left for start-up reconciliation, never served (no row names it).
pub async fn delete(state: &AppState, id: &CameraId) -> Result<(), ApiError> {
    if !db::cameras::delete(&state.db, id).await? {
        return Err(not_found(id));
    }
    state.keeper.cameras.forget(id);
    state.metrics.forget_camera(id);
    // Its schedules went with it (cascade): the scheduler drops them now.
    state.scheduler.refresh_all();
    if let Err(e) = store::remove_camera_dir(&state.config.snapshots_dir, id).await {
        tracing::warn!(camera = %id, error = %e, "camera deleted but its frame directory could not be removed");
    }
    tracing::info!(camera = %id, "camera deleted");
    Ok(())
}
