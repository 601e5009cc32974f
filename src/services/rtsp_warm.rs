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
//! It re-reads the schedules and cameras when a camera or schedule changes (the event bus) and
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
pub async fn sync(ops: &Ops) -> anyhow::Result<usize> {
    let max = ops.config.rtsp.warm_max_interval;
    let warm = ops.capturer.warm_sessions();
    if max.is_zero() {
        warm.sync(Vec::new());
        return Ok(0);
    }
    // Each camera's schedules: interval and `stream`.
    let mut schedules: HashMap<CameraId, Vec<(i64, Option<Stream>)>> = HashMap::new();
    for s in ops::schedules::enabled(ops).await? {
        schedules
            .entry(s.camera_id)
            .or_default()
            .push((s.interval_seconds, s.stream));
    }
    let limit = i64::try_from(max.as_secs()).unwrap_or(i64::MAX);
    let mut wanted: Vec<(i64, crate::capture::GrabRequest)> = ops::cameras::for_capture(ops)
        .await?
        .into_iter()
        .filter_map(|(camera, _)| {
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
            Some((interval, ops.capturer.native_request(&camera)?))
        })
        .collect();
    wanted.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.camera.cmp(&b.1.camera)));
    let n = wanted.len();
    warm.sync(wanted.into_iter().map(|(_, r)| r).collect());
    Ok(n)
}

/// Run until `token` is cancelled (see the module docs).
pub async fn run(ops: Ops, token: CancellationToken) -> anyhow::Result<()> {
    let mut events = ops.events.subscribe();
    let mut tick = tokio::time::interval(RESYNC);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let result = loop {
        tokio::select! {
            _ = token.cancelled() => break Ok(()),
            _ = tick.tick() => {}
            ev = events.recv() => match ev {
                Ok(e) if matches!(*e, Event::CameraChanged { .. } | Event::ScheduleChanged { .. }) => {}
                Ok(_) => continue,
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => break Ok(()),
            },
        }
        if let Err(e) = sync(&ops).await {
            tracing::warn!(error = %format!("{e:#}"), "cannot read which cameras keep a warm RTSP session; keeping the current ones");
        }
    };
    ops.capturer.warm_sessions().close_all();
    result
}
