//! The `outage_watch` service: the silence rule of `ops::outages` — a camera with an active
//! enabled schedule that gives no frame for HELDAR_OFFLINE_AFTER_S (by default 3 × its
//! shortest interval, at least 60 s) is offline.
//!
//! Every few seconds (a quarter of the shortest limit, between 250 ms and 5 s) it reads the
//! enabled schedules, works out which cameras are watched now and their limits, and hands them
//! to `ops::outages::silence`, which compares against the injected clock. Schedules with fixed
//! times of day (`at`) are left out: their gaps are hours, and the failure rule covers them. A
//! failed read is logged and tried again at the next tick. With HELDAR_OFFLINE_AFTER_S=0 it
//! does nothing.

use std::collections::HashMap;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::OfflineAfter;
use crate::models::CameraId;
use crate::ops::{self, Ops};
use crate::slot::plan::Timing;

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
    let mut shortest: HashMap<CameraId, Duration> = HashMap::new();
    for s in ops::schedules::enabled(ops).await? {
        let plan = s.plan();
        if matches!(plan.timing, Timing::At(_)) || !plan.active_at(now) {
            continue;
        }
        let i = Duration::from_secs(s.interval_seconds.max(1) as u64);
        let e = shortest.entry(s.camera_id).or_insert(i);
        *e = (*e).min(i);
    }
    let watched: HashMap<CameraId, Duration> = shortest
        .into_iter()
        .filter_map(|(c, i)| Some((c, limit(setting, i)?)))
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
    let every = tick(setting);
    loop {
        tokio::select! {
            _ = token.cancelled() => return Ok(()),
            _ = tokio::time::sleep(every) => {}
        }
        if let Err(e) = check(&ops).await {
            tracing::warn!(error = %format!("{e:#}"), "cannot check cameras for silence; trying again");
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
