//! The real [`Firer`]: one slot → one capture kept through [`Keeper`], unless the camera is in
//! auth-failure backoff (DESIGN.md §6: many cameras lock an account after a few bad logins, so
//! after `auth_failed` a camera is retried after 1 min, doubling to 1 h, until its credentials
//! are edited — which clears the state).

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;

use super::{Fire, Firer};
use crate::camera::cache::Outcome;
use crate::capture::CaptureError;
use crate::models::{CameraState, CameraStatus};
use crate::snapshots::{KeepError, Keeper};

pub struct CaptureFirer(pub Keeper);

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

impl Firer for CaptureFirer {
    fn fire(&self, job: Fire) -> BoxFuture<'static, ()> {
        let keeper = self.0.clone();
        Box::pin(async move {
            let (camera, status) = match keeper
                .cameras
                .get(&keeper.db, &keeper.sealer, &job.camera_id)
                .await
            {
                Ok(Some(c)) => c,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(schedule = %job.schedule_id, error = %e, "cannot read the camera of a due schedule");
                    return;
                }
            };
            if let Some(until) = auth_backoff_until(&status) {
                if keeper.clock.now() < until {
                    keeper.metrics.auth_backoff_skips.inc();
                    tracing::debug!(camera = %camera.id, %until, "camera in auth-failure backoff; slot skipped");
                    return;
                }
            }
            let outcome = match keeper
                .capture_and_keep(&camera, Some(&job.schedule_id))
                .await
            {
                Ok(_) => Outcome::Ok,
                Err(e) => {
                    tracing::debug!(schedule = %job.schedule_id, camera = %camera.id, error = %e, "scheduled capture not kept");
                    match e {
                        KeepError::Capture(CaptureError::AuthFailed(_)) => Outcome::AuthFailed,
                        KeepError::Capture(_) => Outcome::Failed,
                        // The camera answered; storing failed, which is not the camera's state.
                        KeepError::Store(_) | KeepError::Db(_) => Outcome::Ok,
                    }
                }
            };
            keeper.cameras.note(&camera.id, outcome, keeper.clock.now());
        })
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
