//! The `rtsp_warm` service: decides which cameras keep a warm native RTSP session, and keeps the
//! capture layer's set of sessions in line with it (`capture::native::session`).
//!
//! A camera is warm when its stream is read natively (`snapshot_source` `native`, or `auto`
//! with no snapshot URL and an `rtsp://` stream, and no fallback to ffmpeg) and its shortest
//! enabled schedule interval — of the schedules reading the camera's own source, not another
//! `stream` — is at most `HELDAR_RTSP_WARM_MAX_INTERVAL_S` (default 60 s): such
//! a camera is captured at least every minute, and a session that stays open costs less than a
//! connection and a wait for the next keyframe per slot. Cameras with only longer intervals, or
//! none, connect per capture (cold). At most `HELDAR_RTSP_WARM_MAX_SESSIONS` are warm, shortest
//! interval first.
//!
//! Only cameras this node holds are warm (`ops::nodes`; docs/fleet.md).
//!
//! It re-reads the schedules and cameras when a camera or schedule changes (the event bus), when
//! the cameras this node holds change, and
//! every few seconds (changes made by another process, a fallback found by a capture); a read
//! that fails leaves the sessions as they are until the next one. On shutdown it closes every
//! session.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::capture;
use crate::events::Event;
use crate::models::{CameraId, Stream};
use crate::ops::{self, Ops};

/// How often the wanted set is re-read without a change event.
pub const RESYNC: Duration = Duration::from_secs(5);

/// Bring the warm sessions in line with the schedules and cameras now.
///
/// Syncs run one at a time, each reading the schedules after the previous one applied its
/// reading: the service's and a scheduled capture's ([`ensure_for_slot`]) can then never undo
/// each other with an older reading.
pub async fn sync(ops: &Ops) -> anyhow::Result<usize> {
    let warm = ops.capturer.warm_sessions();
    let _one_at_a_time = warm.sync_lock().lock().await;
    let max = ops.config.rtsp.warm_max_interval;
    if max.is_zero() {
        warm.sync(Vec::new());
        return Ok(0);
    }
    // Cameras first: only those read natively can be warm, and without any (HTTP snapshot
    // cameras, ffmpeg) the schedules need not be read at all. That read is every enabled
    // schedule, every RESYNC: at 100,000 schedules it was most of an idle server's CPU.
    let native: Vec<(crate::models::Camera, crate::capture::GrabRequest)> =
        ops::cameras::for_capture(ops)
            .await?
            .into_iter()
            // Only cameras this node holds (docs/fleet.md): another node's keep their session
            // there.
            .filter(|(camera, _)| ops.nodes.holds(&camera.id))
            .filter_map(|(camera, _)| {
                let req = ops.capturer.native_request(&camera)?;
                Some((camera, req))
            })
            .collect();
    if native.is_empty() {
        warm.sync(Vec::new());
        return Ok(0);
    }
    let limit = i64::try_from(max.as_secs()).unwrap_or(i64::MAX);
    // Each camera's schedules that want a session now: their spacing and `stream`.
    let now = ops.clock.now();
    let mut schedules: HashMap<CameraId, Vec<(i64, Option<Stream>)>> = HashMap::new();
    for s in ops::schedules::enabled(ops).await? {
        if let Some(spacing) = warm_spacing(&s, now, limit) {
            schedules
                .entry(s.camera_id)
                .or_default()
                .push((spacing, s.stream));
        }
    }
    let mut wanted: Vec<(i64, crate::capture::GrabRequest)> = native
        .into_iter()
        .filter_map(|(camera, req)| {
            // Only schedules reading the camera's own source use its warm session (a schedule
            // on another stream captures cold: docs/schedules.md "Which stream").
            let own = capture::plan(&camera).ok();
            let interval = schedules
                .get(&camera.id)?
                .iter()
                .filter(|(_, st)| st.is_none() || capture::plan_stream(&camera, *st).ok() == own)
                .map(|(i, _)| *i)
                .min()?;
            if interval > limit {
                return None;
            }
            Some((interval, req))
        })
        .collect();
    wanted.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.camera.cmp(&b.1.camera)));
    let n = wanted.len();
    warm.sync(wanted.into_iter().map(|(_, r)| r).collect());
    Ok(n)
}

/// How far apart `s`'s slots are, in seconds, when it should keep its camera's session warm
/// now; `None` when it should not (docs/rtsp.md "Cold and warm").
///
/// A fixed-times schedule's spacing is the shortest gap between its times of day (its stored
/// interval is unused), and a schedule whose next slot is further off than the warm limit —
/// outside its window or weekdays, or a fixed time hours away — is idle: it holds no session
/// (which would pull a whole stream for nothing) until its next slot comes within the limit.
fn warm_spacing(
    s: &crate::models::Schedule,
    now: chrono::DateTime<chrono::Utc>,
    limit: i64,
) -> Option<i64> {
    let spacing = match s.at.as_deref() {
        Some(times) if !times.is_empty() => shortest_gap(times),
        _ => s.interval_seconds,
    };
    let idle = s
        .next_due_at
        .is_some_and(|due| (due - now).num_seconds() > limit + 2 * RESYNC.as_secs() as i64);
    (!idle).then_some(spacing)
}

/// The shortest gap, in seconds, between times of day `HH:MM` (around midnight too); a day
/// for one time. Times that do not parse are left out (the API refuses them anyway).
fn shortest_gap(times: &[String]) -> i64 {
    let mut mins: Vec<i64> = times
        .iter()
        .filter_map(|t| {
            let (h, m) = t.split_once(':')?;
            Some(h.parse::<i64>().ok()? * 60 + m.parse::<i64>().ok()?)
        })
        .collect();
    mins.sort_unstable();
    mins.dedup();
    let day = 24 * 60;
    let gap = match mins.as_slice() {
        [] | [_] => day,
        all => all
            .windows(2)
            .map(|w| w[1] - w[0])
            .chain(std::iter::once(all[0] + day - all[all.len() - 1]))
            .min()
            .unwrap_or(day),
    };
    gap * 60
}

/// Before a slot of `interval` on `camera`: if the camera should keep a warm session and has
/// none yet, open it now.
///
/// The first slot of a new schedule fires as the schedule is made (and the first after
/// start-up as soon as the scheduler runs), perhaps before this service has seen the change.
/// Without this, that slot would connect cold beside the warm session being opened: two
/// sessions at once on one camera, which a camera serving one session refuses with 453.
pub async fn ensure_for_slot(ops: &Ops, camera: &crate::models::Camera, interval: Duration) {
    let max = ops.config.rtsp.warm_max_interval;
    let warm = ops.capturer.warm_sessions();
    // At the cap, the cameras left over connect cold by design: no re-reading at each slot.
    if max.is_zero()
        || interval > max
        || warm.len() >= ops.config.rtsp.warm_max_sessions
        || !ops.capturer.warm_missing(camera)
    {
        return;
    }
    if let Err(e) = sync(ops).await {
        tracing::debug!(camera = %camera.id, error = %crate::error::report(&*e), "cannot open the warm RTSP session before a slot; the slot connects cold");
    }
}

/// Run until `token` is cancelled (see the module docs).
pub async fn run(ops: Ops, token: CancellationToken) -> anyhow::Result<()> {
    let mut events = ops.events.subscribe();
    let mut held = ops.nodes.subscribe();
    let mut tick = tokio::time::interval(RESYNC);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let result = loop {
        tokio::select! {
            _ = token.cancelled() => break Ok(()),
            _ = tick.tick() => {}
            // The cameras this node holds changed (docs/fleet.md).
            Ok(()) = held.changed() => {}
            ev = events.recv() => match ev {
                Ok(e) if matches!(*e, Event::CameraChanged { .. } | Event::ScheduleChanged { .. }) => {}
                Ok(_) => continue,
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => break Ok(()),
            },
        }
        if let Err(e) = sync(&ops).await {
            tracing::warn!(error = %crate::error::report(&*e), "cannot read which cameras keep a warm RTSP session; keeping the current ones");
        }
    };
    ops.capturer.warm_sessions().close_all();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Warm sessions follow the cameras this node holds (docs/fleet.md): none before it holds
    /// the camera, one while it does, none once it has handed the camera over.
    #[tokio::test]
    async fn only_cameras_this_node_holds_keep_a_warm_session() {
        let dir = tempfile::tempdir().unwrap();
        let (plain, _writer) = crate::ops::test_ops(dir.path()).await;
        let body: crate::models::CameraCreate = serde_json::from_value(serde_json::json!({
            "id": "door", "main_stream_url": "rtsp://127.0.0.1:9/stream", "snapshot_source": "native"
        }))
        .unwrap();
        ops::cameras::create(&plain, body).await.unwrap();
        let door = CameraId::parse("door").unwrap();
        let every5: crate::models::ScheduleCreate =
            serde_json::from_value(serde_json::json!({"interval_seconds": 5})).unwrap();
        ops::schedules::create(&plain, &door, every5).await.unwrap();
        // Not a node (a unit test's default): every camera is its own, as on a lone server.
        assert_eq!(sync(&plain).await.unwrap(), 1);
        plain.capturer.warm_sessions().close_all();

        let config = crate::config::NodeConfig {
            id: "n1".into(),
            name: "host".into(),
            lease_period: Duration::from_secs(15),
        };
        let node = plain
            .clone()
            .with_nodes(ops::nodes::NodeState::node(config, plain.clock.now()));
        assert_eq!(sync(&node).await.unwrap(), 0, "not held yet");
        ops::nodes::start(&node).await.unwrap();
        assert!(node.nodes.holds(&door));
        assert_eq!(sync(&node).await.unwrap(), 1, "held: warm");
        ops::nodes::drain(&node).await.unwrap();
        assert_eq!(sync(&node).await.unwrap(), 0, "handed over: closed");
        assert_eq!(node.capturer.warm_sessions().len(), 0);
    }

    fn times(t: &[&str]) -> Vec<String> {
        t.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_fixed_times_schedules_spacing_is_its_shortest_gap_around_midnight_too() {
        assert_eq!(shortest_gap(&times(&["12:00"])), 86_400);
        assert_eq!(shortest_gap(&times(&["06:00", "12:00", "18:00"])), 6 * 3600);
        assert_eq!(shortest_gap(&times(&["23:59", "00:00", "12:00"])), 60);
        assert_eq!(shortest_gap(&times(&["08:00", "08:01"])), 60);
    }
}
