//! Backoff: when a camera's scheduled captures wait instead of trying at every slot, and why.
//!
//! Two reasons, one place:
//!
//! - **`auth_failed`** (docs/design.md §6): many cameras lock an account after a few bad logins, so
//!   after an auth failure the camera is retried after 1 min, doubling to 1 h, until its
//!   credentials are edited. Derived from the stored status ([`auth_until`]), so it survives a
//!   restart.
//! - **`unreachable`**: a camera that keeps being unreachable or timing out is not tried at
//!   every slot either. After the n-th such failure in a row of a scheduled capture, the wait is
//!   the schedule's interval × 2^(n−1), capped at HELDAR_UNREACHABLE_BACKOFF_MAX_S (default
//!   300 s; 0 turns this off), and the next try is the first slot of that schedule at or after
//!   the wait ([`unreachable_until`]): the first failure skips nothing, the second skips one
//!   slot, the third three, and so on up to the cap. Kept in memory: a restart tries at once.
//!   Another kind of failure (a bad response, a TLS refusal) ends the run, since the camera
//!   did answer.
//!
//! What ends a backoff: any success (scheduled or live), an edit of the camera, its deletion.
//! What it does not hold: a live snapshot (`ops::frames::live`) always tries at once — the
//! operator asking now wants the answer now. A skipped slot is counted
//! (`heldar_unreachable_backoff_skips_total`, `heldar_auth_backoff_skips_total`), not recorded as a
//! capture failure, so a dead camera costs one failure per try, not one per slot.
//!
//! The camera's status in the API shows it (`backoff_until`, `backoff_reason`, filled in by
//! [`fill`]); a backoff that starts or grows is published as `camera.backoff` and logged once
//! when it starts. The slot runner (`services::snapshot_scheduler::runner`) asks [`holds`]
//! before each scheduled capture and reports each outcome to [`after_slot`]. This module never
//! fails: it is arithmetic and a map.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

use crate::capture::CaptureError;
use crate::events::Event;
use crate::models::{BackoffReason, CameraId, CameraState, CameraStatus};

use super::Ops;

/// Until when a camera's scheduled captures wait after auth failures, if they do: 1 min after
/// the last failure, doubling per failure in a row, at most 1 h.
pub fn auth_until(status: &CameraStatus) -> Option<DateTime<Utc>> {
    if status.state != CameraState::AuthFailed {
        return None;
    }
    let failures = status.consecutive_failures.clamp(1, 7) as u32;
    let secs = (60i64 << (failures - 1)).min(3600);
    status.last_error_at.map(|t| t + Duration::seconds(secs))
}

/// The unreachable rule: after `failures` unreachable or timed-out scheduled captures in a row,
/// the last one for the slot `slot` of a schedule every `interval`, which failed at `failed_at`
/// — the first slot of that schedule at or after both `slot + wait` and `failed_at`, where
/// `wait = interval × 2^(failures−1)`, at most `cap`. `None` when that is the very next slot
/// (nothing would be skipped: the first failure, or an interval as long as the cap).
pub fn unreachable_until(
    failures: u32,
    slot: DateTime<Utc>,
    interval: Duration,
    failed_at: DateTime<Utc>,
    cap: Duration,
) -> Option<DateTime<Utc>> {
    let step = interval.num_milliseconds().max(1);
    let cap = cap.num_milliseconds();
    if failures == 0 || cap <= step {
        return None;
    }
    // 2^(n−1) × interval, without overflow: past 2^40 it is far beyond any cap anyway.
    let doublings = (failures - 1).min(40);
    let wait = step.saturating_mul(1i64 << doublings).min(cap);
    if wait <= step {
        return None;
    }
    let from_slot = wait.max((failed_at - slot).num_milliseconds());
    // Whole intervals, rounded up: the retry is one of the schedule's own slots.
    let k = (from_slot + step - 1) / step;
    (k >= 2).then(|| slot + Duration::milliseconds(k * step))
}

/// One camera's run of unreachable or timed-out scheduled captures.
#[derive(Debug, Clone, Copy, Default)]
struct Run {
    failures: u32,
    until: Option<DateTime<Utc>>,
}

/// The unreachable runs, per camera (held in [`Ops`]).
#[derive(Default)]
pub(crate) struct BackoffState {
    runs: Mutex<HashMap<CameraId, Run>>,
}

impl BackoffState {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<CameraId, Run>> {
        self.runs.lock().expect("backoff lock")
    }
}

/// Whether a scheduled slot of `camera` waits, and until when: an auth backoff (from `status`,
/// against the clock) or an unreachable one (against the slot's time, since its retry is a
/// slot).
pub fn holds(
    ops: &Ops,
    camera: &CameraId,
    status: &CameraStatus,
    slot: DateTime<Utc>,
) -> Option<(BackoffReason, DateTime<Utc>)> {
    if let Some(until) = auth_until(status) {
        if ops.clock.now() < until {
            return Some((BackoffReason::AuthFailed, until));
        }
    }
    let until = ops.backoff.lock().get(camera).and_then(|r| r.until)?;
    (slot < until).then_some((BackoffReason::Unreachable, until))
}

/// Count a slot skipped for `reason` (the runner calls it when [`holds`] said wait).
pub fn skipped(ops: &Ops, camera: &CameraId, reason: BackoffReason, until: DateTime<Utc>) {
    match reason {
        BackoffReason::AuthFailed => ops.metrics.auth_backoff_skips.inc(),
        BackoffReason::Unreachable => ops.metrics.unreachable_backoff_skips.inc(),
    };
    tracing::debug!(camera = %camera, reason = reason.as_str(), until = %until,
        "slot skipped: the camera is backing off");
}

/// What a scheduled capture's outcome means for backoff. `slot` and `interval` are the
/// schedule's; `status` is the camera's status after the outcome (for the auth rule).
pub fn after_slot(
    ops: &Ops,
    camera: &CameraId,
    result: Result<(), &CaptureError>,
    slot: DateTime<Utc>,
    interval: Duration,
    status: &CameraStatus,
) {
    let at = ops.clock.now();
    match result {
        Ok(()) => success(ops, camera),
        Err(CaptureError::Unreachable(_) | CaptureError::Timeout(_)) => {
            let cap = ops
                .config
                .unreachable_backoff_max
                .and_then(|d| Duration::from_std(d).ok());
            let (run, began) = {
                let mut runs = ops.backoff.lock();
                let run = runs.entry(camera.clone()).or_default();
                let was = run.until;
                run.failures = run.failures.saturating_add(1);
                let next =
                    cap.and_then(|cap| unreachable_until(run.failures, slot, interval, at, cap));
                // Another schedule of the camera may already wait longer: keep the later.
                run.until = match (was, next) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => b.or(a),
                };
                (*run, was.is_none() && run.until.is_some())
            };
            let Some(until) = run.until.filter(|u| *u > slot) else {
                return;
            };
            if began {
                tracing::info!(camera = %camera, failures = run.failures, until = %crate::models::fmt_ts(until),
                    "camera keeps failing to answer; backing off: its scheduled captures wait, doubling up to HELDAR_UNREACHABLE_BACKOFF_MAX_S (a live snapshot still tries at once)");
            }
            publish(
                ops,
                camera,
                BackoffReason::Unreachable,
                until,
                i64::from(run.failures),
                at,
            );
        }
        Err(CaptureError::AuthFailed(_)) => {
            ops.backoff.lock().remove(camera);
            if let Some(until) = auth_until(status) {
                publish(
                    ops,
                    camera,
                    BackoffReason::AuthFailed,
                    until,
                    status.consecutive_failures,
                    at,
                );
            }
        }
        // The camera answered, wrongly: not unreachable.
        Err(_) => {
            ops.backoff.lock().remove(camera);
        }
    }
}

fn publish(
    ops: &Ops,
    camera: &CameraId,
    reason: BackoffReason,
    until: DateTime<Utc>,
    failures: i64,
    at: DateTime<Utc>,
) {
    ops.events.publish(Event::CameraBackoff {
        camera: camera.clone(),
        reason,
        until,
        failures,
        at,
    });
}

/// A capture of `camera` succeeded (scheduled or live): its unreachable backoff ends.
pub fn success(ops: &Ops, camera: &CameraId) {
    let ended = ops.backoff.lock().remove(camera);
    if let Some(Run {
        failures,
        until: Some(_),
    }) = ended
    {
        tracing::info!(camera = %camera, failures, "camera answers again; backoff ended");
    }
}

/// Forget `camera`'s unreachable backoff (it was edited or deleted).
pub fn clear(ops: &Ops, camera: &CameraId) {
    ops.backoff.lock().remove(camera);
}

/// Fill in `status`' backoff fields for the API: the backoff that holds now, if any.
pub fn fill(ops: &Ops, camera: &CameraId, status: &mut CameraStatus) {
    let now = ops.clock.now();
    let auth = auth_until(status)
        .filter(|u| *u > now)
        .map(|u| (BackoffReason::AuthFailed, u));
    let unreachable = ops
        .backoff
        .lock()
        .get(camera)
        .and_then(|r| r.until)
        .filter(|u| *u > now)
        .map(|u| (BackoffReason::Unreachable, u));
    let (reason, until) = auth.or(unreachable).unzip();
    status.backoff_reason = reason;
    status.backoff_until = until;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, SimulatedClock};

    fn t0() -> DateTime<Utc> {
        "2026-03-01T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn auth_backoff_doubles_from_a_minute_to_an_hour() {
        let at = t0();
        let st = |n| CameraStatus {
            state: CameraState::AuthFailed,
            last_error_at: Some(at),
            consecutive_failures: n,
            ..CameraStatus::default()
        };
        let mins = |n| (auth_until(&st(n)).unwrap() - at).num_minutes();
        assert_eq!(
            [mins(1), mins(2), mins(3), mins(7), mins(50)],
            [1, 2, 4, 60, 60]
        );
        let online = CameraStatus {
            state: CameraState::Online,
            ..st(3)
        };
        assert_eq!(auth_until(&online), None);
    }

    /// The seconds after `slot` at which each failure in a row sends the next try, for a
    /// schedule every `interval_s` whose captures fail `takes_ms` after their slot.
    fn retries(interval_s: i64, cap_s: i64, takes_ms: i64, n: u32) -> Vec<Option<i64>> {
        (1..=n)
            .map(|f| {
                let slot = t0();
                unreachable_until(
                    f,
                    slot,
                    Duration::seconds(interval_s),
                    slot + Duration::milliseconds(takes_ms),
                    Duration::seconds(cap_s),
                )
                .map(|u| (u - slot).num_seconds())
            })
            .collect()
    }

    #[test]
    fn unreachable_backoff_doubles_from_the_interval_to_the_cap_on_the_schedules_slots() {
        // A refused connection (fails in 2 ms), every 10 s, cap 5 min: nothing skipped after the
        // first failure, then 20 s, 40 s, … 300 s (a slot: 30 intervals).
        assert_eq!(
            retries(10, 300, 2, 7),
            [
                None,
                Some(20),
                Some(40),
                Some(80),
                Some(160),
                Some(300),
                Some(300)
            ]
        );
        // A cap that is not a whole number of intervals: the first slot after it.
        assert_eq!(retries(7, 300, 2, 8)[7], Some(301));
        // An interval as long as the cap: every slot is tried (nothing to skip).
        assert_eq!(retries(300, 300, 2, 5), vec![None; 5]);
        assert_eq!(retries(600, 300, 2, 5), vec![None; 5]);
        // A timeout that outlasts the wait: the first slot at or after the failure was known
        // (the timeout itself spaces the tries until the wait grows past it).
        assert_eq!(
            retries(5, 300, 20_000, 5),
            [None, Some(20), Some(20), Some(40), Some(80)]
        );
        // Huge runs do not overflow.
        assert_eq!(retries(5, 300, 2, 200)[199], Some(300));
    }

    /// The arithmetic driven the way the scheduler drives it, under the virtual clock: a schedule
    /// every 5 s against a camera that refuses connections for a minute, then answers.
    #[tokio::test]
    async fn under_the_virtual_clock_a_dead_camera_is_tried_ever_less_often_and_a_success_resets() {
        let dir = tempfile::tempdir().unwrap();
        let (mut ops, _writer) = crate::ops::test_ops(dir.path()).await;
        // The database is open; from here on time is virtual.
        tokio::time::pause();
        let clock = std::sync::Arc::new(SimulatedClock::new(t0()));
        ops.clock = clock.clone();
        let cam = CameraId::parse("gate").unwrap();
        let interval = Duration::seconds(5);
        let mut events = ops.events.subscribe();
        let status = CameraStatus::default();
        let (mut tried, mut skipped_slots) = (Vec::new(), 0);
        for k in 0..24 {
            let slot = t0() + interval * k;
            tokio::time::sleep_until(
                tokio::time::Instant::now() + (slot - clock.now()).to_std().unwrap(),
            )
            .await;
            if holds(&ops, &cam, &status, slot).is_some() {
                skipped_slots += 1;
                continue;
            }
            tried.push((slot - t0()).num_seconds());
            let dead = CaptureError::Unreachable("connection refused".into());
            if slot < t0() + Duration::seconds(60) {
                after_slot(&ops, &cam, Err(&dead), slot, interval, &status);
            } else {
                after_slot(&ops, &cam, Ok(()), slot, interval, &status);
            }
        }
        // Tries at 0 and 5 (nothing skipped after the first failure), then waits of 10, 20, 40 s,
        // then the success at 75 s ends the backoff: every slot after it is tried.
        assert_eq!(
            tried,
            [0, 5, 15, 35, 75, 80, 85, 90, 95, 100, 105, 110, 115]
        );
        assert_eq!(skipped_slots, 24 - tried.len());
        let mut view = CameraStatus::default();
        fill(&ops, &cam, &mut view);
        assert_eq!((view.backoff_until, view.backoff_reason), (None, None));
        // One event per backoff that started or grew: after the failures at 5, 15 and 35 s.
        let mut untils = Vec::new();
        while let Ok(e) = events.try_recv() {
            if let Event::CameraBackoff { until, reason, .. } = &*e {
                assert_eq!(*reason, BackoffReason::Unreachable);
                untils.push((*until - t0()).num_seconds());
            }
        }
        assert_eq!(untils, [15, 35, 75]);
    }

    #[tokio::test]
    async fn the_status_shows_the_backoff_that_holds_now_and_other_failures_end_it() {
        let dir = tempfile::tempdir().unwrap();
        let (ops, _writer) = crate::ops::test_ops(dir.path()).await;
        let cam = CameraId::parse("yard").unwrap();
        let now = ops.clock.now();
        let status = CameraStatus::default();
        let dead = CaptureError::Timeout("no answer".into());
        for k in 0..3 {
            let slot = now + Duration::seconds(5 * k);
            after_slot(&ops, &cam, Err(&dead), slot, Duration::seconds(5), &status);
        }
        let mut view = CameraStatus::default();
        fill(&ops, &cam, &mut view);
        assert_eq!(view.backoff_reason, Some(BackoffReason::Unreachable));
        assert_eq!(view.backoff_until, Some(now + Duration::seconds(30)));
        assert!(holds(&ops, &cam, &status, now + Duration::seconds(25)).is_some());
        assert!(holds(&ops, &cam, &status, now + Duration::seconds(30)).is_none());
        // The camera answered, with garbage: it is reachable, the backoff ends.
        let bad = CaptureError::BadResponse("not a JPEG".into());
        after_slot(&ops, &cam, Err(&bad), now, Duration::seconds(5), &status);
        fill(&ops, &cam, &mut view);
        assert_eq!(view.backoff_until, None);
        // An auth backoff shows from the status alone.
        let auth = CameraStatus {
            state: CameraState::AuthFailed,
            last_error_at: Some(now),
            consecutive_failures: 2,
            ..CameraStatus::default()
        };
        let mut view = auth.clone();
        fill(&ops, &cam, &mut view);
        assert_eq!(view.backoff_reason, Some(BackoffReason::AuthFailed));
        assert_eq!(view.backoff_until, Some(now + Duration::minutes(2)));
    }
}
