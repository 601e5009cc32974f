//! The real [`SlotRunner`]: one slot → one frame kept through `ops::frames`, unless the camera is
//! in auth-failure backoff (DESIGN.md §6: many cameras lock an account after a few bad logins,
//! so after `auth_failed` a camera is retried after 1 min, doubling to 1 h, until its credentials
//! are edited — which clears the state). Each slot runs inside a `slot` span carrying its
//! schedule and camera, so every log line of its capture says which slot it was.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use tracing::Instrument;

use super::cameras::CameraCache;
use super::{Job, SlotRunner};
use crate::capture::CaptureError;
use crate::error::OpError;
use crate::models::{CameraId, CameraState, CameraStatus};
use crate::ops::frames::Outcome;
use crate::ops::{self, Ops};

/// Captures each slot's frame; reads cameras from its cache.
pub struct CaptureRunner {
    pub ops: Ops,
    pub cameras: Arc<CameraCache>,
}

/// Until when a camera's scheduled captures wait after auth failures, if they do.
pub fn auth_backoff_until(status: &CameraStatus) -> Option<DateTime<Utc>> {
    if status.state != CameraState::AuthFailed {
        return None;
    }
    let failures = status.consecutive_failures.clamp(1, 7) as u32;
    let secs = (60i64 << (failures - 1)).min(3600);
    status
        .last_error_at
        .map(|t| t + chrono::Duration::seconds(secs))
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
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read the camera of a due schedule");
                        return;
                    }
                };
                if let Some(until) = auth_backoff_until(&status) {
                    if ops.clock.now() < until {
                        ops.metrics.auth_backoff_skips.inc();
                        tracing::debug!(%until, "camera in auth-failure backoff; slot skipped");
                        return;
                    }
                }
                let want = crate::capture::Want {
                    at: Some(job.slot),
                    max_age: None,
                };
                let outcome = match ops::frames::capture_and_keep(
                    &ops,
                    &camera,
                    Some(&job.schedule_id),
                    want,
                )
                .await
                {
                    Ok(_) => Outcome::Ok,
                    Err(e) => {
                        tracing::debug!(error = %e, "scheduled capture not kept");
                        match e {
                            OpError::Capture(CaptureError::AuthFailed(_)) => Outcome::AuthFailed,
                            OpError::Capture(_) => Outcome::Failed,
                            // The camera answered; storing failed, which is not its state.
                            _ => Outcome::Ok,
                        }
                    }
                };
                cameras.note(&camera.id, outcome, ops.clock.now());
            }
            .instrument(span),
        )
    }

    fn camera_changed(&self, camera: &CameraId) {
        self.cameras.forget(camera);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_backoff_doubles_from_a_minute_to_an_hour() {
        let at = Utc::now();
        let st = |n| CameraStatus {
            state: CameraState::AuthFailed,
            last_success_at: None,
            last_error: None,
            last_error_at: Some(at),
            consecutive_failures: n,
        };
        let mins = |n| (auth_backoff_until(&st(n)).unwrap() - at).num_minutes();
        assert_eq!(
            [mins(1), mins(2), mins(3), mins(7), mins(50)],
            [1, 2, 4, 60, 60]
        );
        let online = CameraStatus {
            state: CameraState::Online,
            ..st(3)
        };
        assert_eq!(auth_backoff_until(&online), None);
    }
}
