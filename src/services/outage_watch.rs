//! The `outage_watch` service: the silence rule of `ops::outages` — a camera with an active
//! enabled schedule that gives no frame for HELDAR_OFFLINE_AFTER_S (by default 3 × its
//! shortest interval, at least 60 s) is offline.
//!
//! Every few seconds (a quarter of the shortest limit, between 250 ms and 5 s) it works out
//! which cameras are watched now and their limits, and hands them to `ops::outages::silence`,
//! which compares against the injected clock. Schedules with fixed times of day (`at`) are left
//! out: their gaps are hours, and the failure rule covers them. A schedule is active now when
//! its next slot is at most one interval away (outside its window or weekdays, the next slot is
//! the window's opening, further off).
//!
//! The enabled schedules are read again when one changes (`schedule.changed`) and every
//! [`REREAD`], not at every tick: at 100,000 idle windowed schedules, reading and planning them
//! all every few seconds was most of an idle server's CPU (docs/benchmarks.md, issue 17). A
//! failed read is logged and tried again at the next tick. With HELDAR_OFFLINE_AFTER_S=0 it
//! does nothing.

use std::collections::HashMap;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use chrono::{DateTime, Utc};

use crate::config::OfflineAfter;
use crate::events::Event;
use crate::models::CameraId;
use crate::ops::{self, Ops};
use crate::slot::plan::Timing;

/// How often the enabled schedules are read again without a change event: well under the
/// shortest `auto` limit, so a window that closed is seen before its silence could count.
pub const REREAD: Duration = Duration::from_secs(20);

/// What the watch needs of one enabled schedule with an interval.
#[derive(Debug, Clone)]
pub struct Watched {
    camera: CameraId,
    interval: Duration,
    next_due_at: Option<DateTime<Utc>>,
}

/// The enabled interval schedules (fixed-times ones left out), as the watch reads them.
pub async fn read(ops: &Ops) -> anyhow::Result<Vec<Watched>> {
    Ok(ops::schedules::enabled(ops)
        .await?
        .into_iter()
        .filter(|s| !matches!(s.plan().timing, Timing::At(_)))
        .map(|s| Watched {
            interval: Duration::from_secs(s.interval_seconds.max(1) as u64),
            camera: s.camera_id,
            next_due_at: s.next_due_at,
        })
        .collect())
}

/// `auto`: this many intervals without a frame…
const AUTO_INTERVALS: u32 = 3;
/// …but never less than this.
const AUTO_MIN: Duration = Duration::from_secs(60);

/// The limit for a camera whose shortest watched interval is `interval`.
pub fn limit(setting: OfflineAfter, interval: Duration) -> Option<Duration> {
    match setting {
        OfflineAfter::Off => None,
        OfflineAfter::Fixed(d) => Some(d),
        OfflineAfter::Auto => Some((interval * AUTO_INTERVALS).max(AUTO_MIN)),
    }
}

/// How often to look.
pub fn tick(setting: OfflineAfter) -> Duration {
    match setting {
        OfflineAfter::Fixed(d) => (d / 4).clamp(Duration::from_millis(250), Duration::from_secs(5)),
        _ => Duration::from_secs(5),
    }
}

/// One look at `schedules` ([`read`]): the watched cameras and their limits, to
/// `ops::outages::silence`.
pub async fn check(ops: &Ops, schedules: &[Watched]) {
    let setting = ops.config.offline_after;
    let now = ops.clock.now();
    let mut shortest: HashMap<CameraId, Duration> = HashMap::new();
    for s in schedules {
        let step = chrono::Duration::from_std(s.interval).unwrap_or(chrono::Duration::MAX);
        // A read a little old says "next slot in the past" for a busy schedule: still active.
        if s.next_due_at.is_some_and(|due| due - now > step) {
            continue;
        }
        let e = shortest.entry(s.camera.clone()).or_insert(s.interval);
        *e = (*e).min(s.interval);
    }
    let watched: HashMap<CameraId, Duration> = shortest
        .into_iter()
        .filter_map(|(c, i)| Some((c, limit(setting, i)?)))
        .collect();
    ops::outages::silence(ops, &watched, now).await;
}

/// Run until `token` is cancelled.
pub async fn run(ops: Ops, token: CancellationToken) -> anyhow::Result<()> {
    let setting = ops.config.offline_after;
    if setting == OfflineAfter::Off {
        token.cancelled().await;
        return Ok(());
    }
    // A ticker, not a sleep per turn: events arrive far more often than ticks on a busy server.
    let mut ticker = tokio::time::interval(tick(setting));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut events = ops.events.subscribe();
    let mut schedules: Option<Vec<Watched>> = None;
    let mut read_at = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = token.cancelled() => return Ok(()),
            _ = ticker.tick() => {}
            got = events.recv() => {
                // A schedule changed (or events were lost): read them all again at the tick.
                match got {
                    Ok(e) if matches!(*e, Event::ScheduleChanged { .. }) => schedules = None,
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => schedules = None,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                        token.cancelled().await;
                        return Ok(());
                    }
                }
                continue;
            }
        }
        if schedules.is_none() || read_at.elapsed() >= REREAD {
            match read(&ops).await {
                Ok(s) => {
                    schedules = Some(s);
                    read_at = tokio::time::Instant::now();
                }
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "cannot read the schedules to check cameras for silence; trying again");
                    continue;
                }
            }
        }
        if let Some(s) = &schedules {
            check(&ops, s).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_is_three_intervals_and_at_least_a_minute() {
        let s = Duration::from_secs;
        assert_eq!(limit(OfflineAfter::Auto, s(5)), Some(s(60)));
        assert_eq!(limit(OfflineAfter::Auto, s(300)), Some(s(900)));
        assert_eq!(limit(OfflineAfter::Fixed(s(7)), s(300)), Some(s(7)));
        assert_eq!(limit(OfflineAfter::Off, s(5)), None);
        assert_eq!(tick(OfflineAfter::Fixed(s(1))), Duration::from_millis(250));
        assert_eq!(tick(OfflineAfter::Auto), s(5));
    }
}
