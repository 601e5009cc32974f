//! Cameras: what creating, editing and deleting one does across the database, the frame store,
//! the scheduler and the event bus — the one place where these stay consistent.
//!
//! Credentials are sealed here on the way to `db` and opened on the way back (`camera::seal`):
//! rows carry sealed strings, and only [`camera`]-style reads for capture return them opened.
//!
//! Every change is logged once, at INFO, naming the camera and what changed
//! (`camera::changes`: old → new for plain fields, URLs masked, credentials only "changed").
//! An edit also ends an unreachable-camera backoff (`ops::backoff`): the address or URL may be
//! what was fixed, so the next slot tries at once.

use std::collections::HashMap;

use crate::camera;
use crate::db;
use crate::error::{OpError, OpResult};
use crate::events::{Change, Event};
use crate::models::{
    Camera, CameraActivity, CameraCreate, CameraId, CameraPatch, CameraSpec, CameraStatus,
    CameraView,
};

use super::Ops;

fn not_found(id: &CameraId) -> OpError {
    OpError::NotFound(format!("no camera with id {:?}", id.as_str()))
}

/// Every camera as the API shows it (no password, URLs masked), by id, with its schedules and
/// newest frame in brief (its `health`).
pub async fn list(ops: &Ops) -> OpResult<Vec<CameraView>> {
    let mut activity: HashMap<CameraId, CameraActivity> = db::cameras::activity(&ops.db, None)
        .await?
        .into_iter()
        .collect();
    Ok(for_capture(ops)
        .await?
        .into_iter()
        .map(|(c, s)| {
            let a = activity.remove(&c.id).unwrap_or_default();
            shown(ops, &c, s, a)
        })
        .collect())
}

/// The API's view of a camera: its status with the backoff that holds now, its schedules and
/// newest frame in brief, and how its stream is read now.
fn shown(
    ops: &Ops,
    camera: &Camera,
    mut status: CameraStatus,
    activity: CameraActivity,
) -> CameraView {
    super::backoff::fill(ops, &camera.id, &mut status);
    let mut v = camera::view(camera, status, activity);
    v.rtsp = ops.capturer.rtsp_view(camera);
    v
}

/// Every camera with its credentials opened, and its status: what capture needs (the
/// scheduler's camera cache reads this in bulk).
pub async fn for_capture(ops: &Ops) -> OpResult<Vec<(Camera, CameraStatus)>> {
    db::cameras::list(&ops.db)
        .await?
        .into_iter()
        .map(|(c, s)| Ok((ops.sealer.open_camera(c)?, s)))
        .collect()
}

/// One camera with its credentials opened, and its status; `None` if it does not exist.
pub async fn one_for_capture(ops: &Ops, id: &CameraId) -> OpResult<Option<(Camera, CameraStatus)>> {
    match db::cameras::get(&ops.db, id).await? {
        Some((c, s)) => Ok(Some((ops.sealer.open_camera(c)?, s))),
        None => Ok(None),
    }
}

/// The stored camera, credentials opened (for capture).
pub async fn camera(ops: &Ops, id: &CameraId) -> OpResult<Camera> {
    Ok(one_for_capture(ops, id)
        .await?
        .ok_or_else(|| not_found(id))?
        .0)
}

/// Fail with not-found unless the camera exists.
pub async fn require(ops: &Ops, id: &CameraId) -> OpResult<()> {
    match db::cameras::exists(&ops.db, id).await? {
        true => Ok(()),
        false => Err(not_found(id)),
    }
}

pub async fn get(ops: &Ops, id: &CameraId) -> OpResult<CameraView> {
    let (c, s) = one_for_capture(ops, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    let a = db::cameras::activity(&ops.db, Some(id))
        .await?
        .pop()
        .map(|(_, a)| a)
        .unwrap_or_default();
    Ok(shown(ops, &c, s, a))
}

/// Register a camera from an API body.
pub async fn create(ops: &Ops, body: CameraCreate) -> OpResult<CameraView> {
    let spec = CameraSpec::from_create(body)?;
    let camera = create_spec(ops, &spec).await?;
    get(ops, &camera.id).await
}

/// Register a checked camera (the demo camera; [`create`] after parsing).
pub async fn create_spec(ops: &Ops, spec: &CameraSpec) -> OpResult<Camera> {
    let now = ops.clock.now();
    let stored = db::cameras::insert(&ops.db, &ops.sealer.seal_spec(spec), now).await?;
    tracing::info!(camera = %spec.id, fields = %crate::camera::changes::described(spec), "camera created");
    // Lease it here at once if this node's share allows (docs/fleet.md): its first slot then
    // fires here without waiting for a node's look.
    super::nodes::camera_created(ops).await;
    ops.events.publish(Event::CameraChanged {
        camera: spec.id.clone(),
        change: Change::Created,
    });
    Ok(Camera {
        spec: spec.clone(),
        ..stored
    })
}

/// Apply an API patch; the result is checked as a whole (`camera::spec`).
pub async fn update(ops: &Ops, id: &CameraId, patch: CameraPatch) -> OpResult<CameraView> {
    let current = camera(ops, id).await?;
    let spec = CameraSpec::from_patch(&current, patch)?;
    update_spec(ops, &current, &spec).await?;
    get(ops, id).await
}

/// Replace `current`'s fields with `spec`'s. Changed credentials clear an auth-failure backoff.
pub async fn update_spec(ops: &Ops, current: &CameraSpec, spec: &CameraSpec) -> OpResult<()> {
    let credentials_changed =
        (&current.username, &current.password) != (&spec.username, &spec.password);
    let now = ops.clock.now();
    if !db::cameras::update(
        &ops.db,
        &ops.sealer.seal_spec(spec),
        now,
        credentials_changed,
    )
    .await?
    {
        return Err(not_found(&spec.id));
    }
    ops.scheduler.camera_changed(&spec.id);
    super::backoff::clear(ops, &spec.id);
    ops.capturer.camera_changed(&spec.id);
    tracing::info!(camera = %spec.id, changed = %crate::camera::changes::changes(current, spec), "camera updated");
    ops.events.publish(Event::CameraChanged {
        camera: spec.id.clone(),
        change: Change::Updated,
    });
    Ok(())
}

/// Delete the camera, then its frame files. The rows go first (one transaction, cascading to
/// schedules and snapshot rows), so no row can point at a deleted file; a file that cannot be
/// removed is logged and left for start-up reconciliation, never served (no row names it).
/// Files in its folder that Heldar did not write stay (`store::remove_camera_frames`).
pub async fn delete(ops: &Ops, id: &CameraId) -> OpResult<()> {
    let name = db::cameras::get(&ops.db, id)
        .await?
        .map(|(c, _)| c.spec.name);
    if !db::cameras::delete(&ops.db, id).await? {
        return Err(not_found(id));
    }
    ops.scheduler.camera_changed(id);
    // Its schedules went with it (cascade): the scheduler drops them now.
    ops.scheduler.refresh_all();
    ops.frames.forget(id);
    super::backoff::clear(ops, id);
    super::outages::forget(ops, id).await;
    ops.capturer.camera_changed(id);
    ops.metrics.forget_camera(id);
    // Its jobs, videos and rules went with the rows; its running ffmpeg and its files go now.
    super::timelapses::forget_camera(ops, id).await;
    match ops.store.remove_camera(id).await {
        Ok(r) if r.kept > 0 => tracing::warn!(camera = %id, entries = r.kept,
            "camera deleted; its folder is kept because it holds entries Heldar did not write"),
        Ok(_) => {}
        Err(e) => tracing::warn!(camera = %id, error = %e,
            "camera deleted but its frame files could not all be removed"),
    }
    tracing::info!(camera = %id, name = ?name.unwrap_or_default(),
        "camera deleted, with its schedules and frames");
    ops.events.publish(Event::CameraChanged {
        camera: id.clone(),
        change: Change::Deleted,
    });
    Ok(())
}
