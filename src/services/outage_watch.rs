//! The `outage_watch` service: the silence rule of `ops::outages` — a camera with an active
//! enabled schedule that gives no frame for HELDAR_OFFLINE_AFTER_S (by default 3 × its
//! shortest interval, at least 60 s) is offline.
//!
//! Every few seconds (a quarter of the shortest limit, between 250 ms and 5 s) it asks the
//! database which cameras are watched now and their shortest interval
//! (`db::schedules::watched_intervals`: enabled interval schedules whose next slot is at most one
//! interval away — outside its window or weekdays, a schedule's next slot is the window's
//! opening, further off), turns them into limits, and hands them to `ops::outages::silence`,
//! which compares against the injected clock. Schedules with fixed times of day (`at`) are left
//! out: their gaps are hours, and the failure rule covers them. SQLite does the grouping: at
//! 100,000 idle windowed schedules, reading and planning them all in Heldar every few seconds
//! stalled captures (docs/benchmarks.md, issue 17). A failed read is logged and tried again at
//! the next tick. With HELDAR_OFFLINE_AFTER_S=0 it does nothing. In a fleet it watches only the
//! cameras this node holds (docs/fleet.md): another node's camera is silent here by design.

use std::collections::HashMap;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::OfflineAfter;
use crate::models::CameraId;
use crate::ops::{self, Ops};

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

/// One look: the watched cameras and their limits, to `ops::outages::silence`.
pub async fn check(ops: &Ops) -> anyhow::Result<()> {
    let setting = ops.config.offline_after;
    let now = ops.clock.now();
    let watched: HashMap<CameraId, Duration> =
        crate::db::schedules::watched_intervals(&ops.db, now)
            .await?
            .into_iter()
            .filter_map(|(camera, secs)| {
                let camera = CameraId::parse(&camera).ok()?;
                // In a fleet, only the node that captures a camera can tell it is silent.
                if !ops.nodes.holds(&camera) {
                    return None;
                }
                let interval = Duration::from_secs(secs.max(1) as u64);
                Some((camera, limit(setting, interval)?))
            })
            .collect();
    ops::outages::silence(ops, &watched, now).await;
    Ok(())
}

/// Run until `token` is cancelled.
pub async fn run(ops: Ops, token: CancellationToken) -> anyhow::Result<()> {
    let setting = ops.config.offline_after;
    if setting == OfflineAfter::Off {
        token.cancelled().await;
        return Ok(());
    }
    let mut ticker = tokio::time::interval(tick(setting));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = token.cancelled() => return Ok(()),
            _ = ticker.tick() => {}
        }
        if let Err(e) = check(&ops).await {
            tracing::warn!(error = %crate::error::report(&*e), "cannot check cameras for silence; trying again");
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
