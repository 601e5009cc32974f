//! The real [`SlotRunner`]: one slot → one frame kept through `ops::frames`, unless the camera is
//! backing off (`ops::backoff`: after auth failures, 1 min doubling to 1 h until its credentials
//! are edited, docs/design.md §6; after unreachable or timed-out captures in a row, the schedule's
//! interval doubling up to HELDAR_UNREACHABLE_BACKOFF_MAX_S). A skipped slot costs no capture,
//! no socket and no permit of a capture lane, so a dead camera in backoff holds nothing the
//! others need. Each slot runs inside a `slot` span carrying its schedule and camera, so every
//! log line of its capture says which slot it was.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use tracing::Instrument;

use super::cameras::CameraCache;
use super::{Job, SlotRunner};
use crate::capture::CaptureError;
use crate::error::OpError;
use crate::models::CameraId;
use crate::ops::frames::Outcome;
use crate::ops::{self, Ops};

/// Captures each slot's frame; reads cameras from its cache.
pub struct CaptureRunner {
    pub ops: Ops,
    pub cameras: Arc<CameraCache>,
}

impl SlotRunner for CaptureRunner {
    fn run(&self, job: Job) -> BoxFuture<'static, ()> {
        let (ops, cameras) = (self.ops.clone(), self.cameras.clone());
        let span = tracing::info_span!("slot", schedule = %job.schedule_id, camera = %job.camera_id,
            slot = %job.slot.format("%Y-%m-%dT%H:%M:%S%.3fZ"));
        Box::pin(
            async move {
                let (camera, status) = match cameras.get(&ops, &job.camera_id).await {
                    Ok(Some(c)) => c,
                    Ok(None) => return,
                    // Not even a stale entry to serve it (the cache keeps serving the cameras
                    // it knows through an outage): the slot is missed, and counted, never
                    // dropped silently.
                    Err(e) => {
                        ops.metrics.missed_slots.inc();
                        if matches!(e, OpError::Unavailable { .. }) {
                            ops.metrics.db_outage_missed_slots.inc();
                        }
                        tracing::warn!(error = %e, "slot missed: cannot read the camera of a due schedule");
                        return;
                    }
                };
                if let Some((reason, until)) =
                    ops::backoff::holds(&ops, &camera.id, &status, job.slot)
                {
                    ops::backoff::skipped(&ops, &camera.id, reason, until);
                    return;
                }
                // One session per camera: a camera that should be warm is served by its warm
                // session, opened now if this slot came before the rtsp_warm service did.
                let interval = job.interval.to_std().unwrap_or_default();
                crate::services::rtsp_warm::ensure_for_slot(&ops, &camera, interval).await;
                // The frame at the slot: a warm RTSP session serves the newest frame at this
                // instant rather than the next one (docs/rtsp.md).
                let want = crate::capture::Want {
                    at: Some(job.slot),
                    max_age: None,
                    stream: job.rules.stream,
                };
                // A skipped frame (dark, unchanged) is a success of the camera's: `Ok`.
                let result = ops::frames::capture_slot(
                    &ops,
                    &camera,
                    &job.schedule_id,
                    want,
                    job.rules,
                    job.claim_held,
                )
                .await;
                let capture: Result<(), &CaptureError> = match &result {
                    Ok(_) => Ok(()),
                    Err(OpError::Capture(e)) => Err(e),
                    // The camera answered; storing failed, which is not its state.
                    Err(_) => Ok(()),
                };
                if let Err(e) = &result {
                    tracing::debug!(error = %e, "scheduled capture not kept");
                }
                let outcome = match capture {
                    Ok(()) => Outcome::Ok,
                    Err(CaptureError::AuthFailed(_)) => Outcome::AuthFailed,
                    Err(_) => Outcome::Failed,
                };
                if ops.shutdown.is_cancelled() && capture.is_err() {
                    // Cut by the shutdown, not the camera's doing (`ops::frames` does not record
                    // it either).
                    return;
                }
                let status = cameras
                    .note(&camera.id, outcome, ops.clock.now())
                    .unwrap_or(status);
                ops::backoff::after_slot(
                    &ops,
                    &camera.id,
                    capture,
                    job.slot,
                    job.interval,
                    &status,
                );
            }
            .instrument(span),
        )
    }

    fn camera_changed(&self, camera: &CameraId) {
        self.cameras.forget(camera);
    }
}
