//! Offline alerts and the outage history: when a camera counts as offline, when it recovers,
//! and the `outages` rows that record each such period (docs/integrations.md).
//!
//! Two rules open an outage, whichever comes first:
//!
//! - **failures in a row**: the HELDAR_OFFLINE_AFTER_FAILURES-th failed capture in a row
//!   (default 3; scheduled and live captures alike, since both ask the camera). The outage
//!   starts at the first failure of that run.
//! - **silence**: a camera whose enabled schedule is active now (inside its window; `at`
//!   schedules excepted, their gaps are hours) and that gave no frame for HELDAR_OFFLINE_AFTER_S
//!   — by default 3 × its shortest such interval, at least 60 s — counted from its last success
//!   or from when this process began watching it, whichever is later (so Heldar's own downtime
//!   or a window that just opened is never an outage). The `outage_watch` service asks
//!   [`silence`] every few seconds, against the injected clock. This catches what counting
//!   cannot: a camera in backoff whose slots are skipped, a capture that never ends, a scheduler
//!   that stopped.
//!
//! The next successful capture closes it. Each opening publishes `camera.offline` and each
//! closing `camera.recovered` (once per outage), counts `heldar_camera_outages_total{camera}`
//! and sets `heldar_camera_offline{camera}`. At most one outage per camera is open (a partial
//! unique index); an open one survives a restart ([`seed`]) and the first success after it
//! closes it.
//!
//! State lives in memory ([`OutageState`]) behind one async lock, held across the (rare) row
//! writes that open or close an outage, so an opening and a closing of one camera can never
//! land in the wrong order. A failure's note on an already-open outage is written without
//! holding it. A database failure is logged and the capture's own outcome stands: the row
//! catches up on the camera's next change.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};

use crate::capture::CaptureError;
use crate::db;
use crate::error::OpResult;
use crate::events::Event;
use crate::metrics::CameraLabels;
use crate::models::integrations::Outage;
use crate::models::{new_id, CameraId, Page, Position};

use super::Ops;

/// The open outage of a camera.
#[derive(Debug, Clone)]
struct Open {
    id: String,
    started_at: DateTime<Utc>,
    failures: i64,
}

/// What is known about one camera.
#[derive(Debug, Default)]
struct Track {
    /// Failed captures in a row, and the first and latest error of that run.
    run: i64,
    run_since: Option<DateTime<Utc>>,
    first_error: Option<String>,
    last_error: Option<String>,
    last_success: Option<DateTime<Utc>>,
    /// Since when the silence rule watches it (an active enabled schedule, continuously).
    watched_since: Option<DateTime<Utc>>,
    open: Option<Open>,
}

/// Every camera's track (held in [`Ops`]).
#[derive(Default)]
pub(crate) struct OutageState {
    tracks: tokio::sync::Mutex<HashMap<CameraId, Track>>,
}

fn labels(camera: &CameraId) -> CameraLabels {
    CameraLabels {
        camera: camera.as_str().to_string(),
    }
}

/// Learn each camera's last success and the open outages of the cameras this node holds from
/// the database (start-up, after the node has taken its cameras).
pub async fn seed(ops: &Ops) -> OpResult<()> {
    let cameras = db::cameras::list(&ops.db).await?;
    {
        let mut tracks = ops.outages.tracks.lock().await;
        for (camera, status) in cameras {
            let id = camera.spec.id;
            ops.metrics
                .camera_offline
                .get_or_create(&labels(&id))
                .set(0);
            tracks.entry(id).or_default().last_success = status.last_success_at;
        }
    }
    follow_held(ops).await
}

/// In a fleet only the node that holds a camera judges its outages and closes them
/// (docs/fleet.md): a node that does not capture a camera cannot tell its silence from its
/// health. After the held set changes (and at start-up), this forgets the open outages of
/// cameras this node no longer holds (the row stays open; their new holder closes it at its
/// first success, and its gauge reads 0 here) and takes up the open outages of the cameras it
/// now holds, whoever opened them (their former holder, or this node before a restart). A
/// camera that moves also starts its silence watch afresh on its new holder.
pub async fn follow_held(ops: &Ops) -> OpResult<()> {
    // The lock first: a success closing an outage between this read and the loop below would
    // otherwise see it taken up again, and closed (and announced) twice. The read is of the
    // open outages only (a partial index), so captures wait a moment at most.
    let mut tracks = ops.outages.tracks.lock().await;
    let open = db::outages::open_ones(&ops.db).await?;
    for (camera, t) in tracks.iter_mut() {
        if ops.nodes.holds(camera) {
            continue;
        }
        t.watched_since = None;
        if t.open.take().is_some() {
            // Its offline gauge is the holding node's to export now (`Metrics::camera_left`).
            ops.metrics.camera_offline.remove(&labels(camera));
        }
    }
    for o in open {
        if !ops.nodes.holds(&o.camera_id) {
            continue;
        }
        ops.metrics
            .camera_offline
            .get_or_create(&labels(&o.camera_id))
            .set(1);
        let t = tracks.entry(o.camera_id.clone()).or_default();
        if t.open.is_some() {
            continue;
        }
        t.run = o.failures;
        t.first_error = o.first_error.clone();
        t.last_error = o.last_error.clone();
        t.run_since = Some(o.started_at);
        t.open = Some(Open {
            id: o.id,
            started_at: o.started_at,
            failures: o.failures,
        });
    }
    Ok(())
}

/// What a capture's outcome means for `camera`'s outages (called for every capture that was
/// recorded, scheduled or live).
pub async fn after_capture(
    ops: &Ops,
    camera: &CameraId,
    result: Result<(), &CaptureError>,
    at: DateTime<Utc>,
) {
    let at = at.trunc_subsecs(3);
    let mut tracks = ops.outages.tracks.lock().await;
    let t = tracks.entry(camera.clone()).or_insert_with(|| {
        // A camera added since start-up: its gauge reads 0 from its first capture on.
        ops.metrics
            .camera_offline
            .get_or_create(&labels(camera))
            .set(0);
        Track::default()
    });
    match result {
        Ok(()) => {
            t.run = 0;
            t.run_since = None;
            t.first_error = None;
            t.last_error = None;
            t.last_success = Some(at);
            if let Some(open) = t.open.take() {
                close(ops, camera, open, at).await;
            }
        }
        Err(e) => {
            let error = e.to_string();
            t.run += 1;
            if t.run == 1 || t.run_since.is_none() {
                t.run_since = Some(at);
                t.first_error = Some(error.clone());
            }
            t.last_error = Some(error.clone());
            if let Some(open) = t.open.as_mut() {
                open.failures += 1;
                let (pool, id, n) = (ops.db.clone(), open.id.clone(), open.failures);
                // Off the lock: a late note cannot touch a closed outage (the update is
                // conditional on it being open).
                tokio::spawn(async move {
                    if let Err(e) = db::outages::note_failure(&pool, &id, &error, n).await {
                        tracing::warn!(outage = %id, error = %e, "could not note an outage's failure");
                    }
                });
                return;
            }
            let n = i64::from(ops.config.offline_after_failures);
            // A live snapshot through a node that does not hold the camera counts its failure
            // but opens no outage there: the holder judges (see [`follow_held`]).
            if n > 0 && t.run >= n && ops.nodes.holds(camera) {
                let since = t.run_since.unwrap_or(at);
                let (first, last, failures) = (t.first_error.clone(), t.last_error.clone(), t.run);
                t.open = open(
                    ops,
                    camera,
                    since,
                    first,
                    last,
                    failures,
                    "failures in a row",
                )
                .await;
            }
        }
    }
}

/// The silence rule, at `now`: `watched` holds each camera that has an active enabled
/// schedule now and how long it may go without a frame. Cameras not in it stop being watched.
pub async fn silence(ops: &Ops, watched: &HashMap<CameraId, Duration>, now: DateTime<Utc>) {
    let now = now.trunc_subsecs(3);
    let mut tracks = ops.outages.tracks.lock().await;
    for (camera, t) in tracks.iter_mut() {
        if !watched.contains_key(camera) {
            t.watched_since = None;
        }
    }
    for (camera, limit) in watched {
        let t = tracks.entry(camera.clone()).or_default();
        let since = *t.watched_since.get_or_insert(now);
        if t.open.is_some() {
            continue;
        }
        let quiet_since = t.last_success.map_or(since, |s| s.max(since));
        let Ok(limit) = chrono::Duration::from_std(*limit) else {
            continue;
        };
        if now - quiet_since >= limit {
            let (first, last, failures) = (t.first_error.clone(), t.last_error.clone(), t.run);
            t.open = open(ops, camera, quiet_since, first, last, failures, "no frame").await;
        }
    }
}

/// Open an outage: the row, the event, the metrics, one WARN. `None` when the row could not
/// be written (the camera was deleted meanwhile, the database failed): the next failure tries
/// again.
#[allow(clippy::too_many_arguments)]
async fn open(
    ops: &Ops,
    camera: &CameraId,
    since: DateTime<Utc>,
    first_error: Option<String>,
    last_error: Option<String>,
    failures: i64,
    why: &'static str,
) -> Option<Open> {
    let row = Outage {
        id: new_id("out"),
        camera_id: camera.clone(),
        started_at: since,
        ended_at: None,
        first_error: first_error.clone(),
        last_error,
        failures,
        duration_s: None,
    };
    if let Err(e) = db::outages::open(&ops.db, &row).await {
        tracing::warn!(camera = %camera, error = %e, "could not record the camera's outage");
        return None;
    }
    tracing::warn!(camera = %camera, outage = %row.id, since = %crate::models::fmt_ts(since),
        failures, reason = why, "camera offline");
    ops.metrics
        .camera_outages
        .get_or_create(&labels(camera))
        .inc();
    ops.metrics
        .camera_offline
        .get_or_create(&labels(camera))
        .set(1);
    ops.events.publish(Event::CameraOffline {
        camera_id: camera.clone(),
        outage_id: row.id.clone(),
        since,
        first_error,
        consecutive_failures: failures,
    });
    Some(Open {
        id: row.id,
        started_at: since,
        failures,
    })
}

/// Close `open` at `at`: the row, the event, the gauge, one INFO.
async fn close(ops: &Ops, camera: &CameraId, open: Open, at: DateTime<Utc>) {
    match db::outages::close(&ops.db, &open.id, at, None, open.failures).await {
        Ok(_) => {}
        Err(e) => {
            // The row stays open; the next start-up reads it as open and the first success
            // after that closes it.
            tracing::warn!(camera = %camera, outage = %open.id, error = %e,
                "could not record the end of the camera's outage");
        }
    }
    let duration_s = (at - open.started_at).num_milliseconds() as f64 / 1000.0;
    tracing::info!(camera = %camera, outage = %open.id, duration_s, "camera recovered");
    ops.metrics
        .camera_offline
        .get_or_create(&labels(camera))
        .set(0);
    ops.events.publish(Event::CameraRecovered {
        camera_id: camera.clone(),
        outage_id: open.id,
        from: open.started_at,
        to: at,
        duration_s,
    });
}

/// Forget a deleted camera (its rows went with it).
pub async fn forget(ops: &Ops, camera: &CameraId) {
    ops.outages.tracks.lock().await.remove(camera);
}

/// Whether `camera` is offline now, as this process knows it.
pub async fn is_offline(ops: &Ops, camera: &CameraId) -> bool {
    ops.outages
        .tracks
        .lock()
        .await
        .get(camera)
        .is_some_and(|t| t.open.is_some())
}

/// A page of outages, newest first.
pub async fn list(
    ops: &Ops,
    filter: &db::outages::Filter,
    after: Option<&Position>,
    limit: i64,
) -> OpResult<Page<Outage>> {
    if let Some(c) = &filter.camera {
        super::cameras::require(ops, c).await?;
    }
    Ok(db::outages::page(&ops.db, filter, after, limit).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::CameraCreate;

    async fn camera(ops: &Ops, id: &str) -> CameraId {
        let body: CameraCreate = serde_json::from_value(serde_json::json!({
            "id": id, "snapshot_url": "http://127.0.0.1:9/snap.jpg"
        }))
        .unwrap();
        super::super::cameras::create(ops, body).await.unwrap();
        CameraId::parse(id).unwrap()
    }

    /// The silence rule against given instants (what the service passes from the injected
    /// clock): nothing before the limit, one outage at it, counted from when watching began; a
    /// success closes it; a camera no longer watched starts afresh.
    #[tokio::test]
    async fn silence_opens_one_outage_after_the_limit_and_a_success_closes_it() {
        let dir = tempfile::tempdir().unwrap();
        let (ops, _writer) = crate::ops::test_ops(dir.path()).await;
        let cam = camera(&ops, "yard").await;
        let mut rx = ops.events.subscribe();
        let start: DateTime<Utc> = "2026-03-01T12:00:00Z".parse().unwrap();
        let t = |s: i64| start + chrono::Duration::seconds(s);
        let watched = HashMap::from([(cam.clone(), Duration::from_secs(60))]);
        silence(&ops, &watched, t(0)).await;
        silence(&ops, &watched, t(59)).await;
        assert!(!is_offline(&ops, &cam).await, "not before the limit");
        silence(&ops, &watched, t(60)).await;
        assert!(is_offline(&ops, &cam).await);
        silence(&ops, &watched, t(90)).await; // still the one outage
        match &*rx.try_recv().unwrap() {
            Event::CameraOffline {
                since,
                consecutive_failures,
                first_error,
                ..
            } => {
                assert_eq!(*since, start);
                assert_eq!(*consecutive_failures, 0);
                assert_eq!(*first_error, None);
            }
            other => panic!("{other:?}"),
        }
        assert!(rx.try_recv().is_err(), "exactly one offline event");
        after_capture(&ops, &cam, Ok(()), t(90)).await;
        match &*rx.try_recv().unwrap() {
            Event::CameraRecovered {
                from,
                to,
                duration_s,
                ..
            } => {
                assert_eq!((*from, *to, *duration_s), (start, t(90), 90.0));
            }
            other => panic!("{other:?}"),
        }
        // Its last success counts: 59 s later it is not offline, 60 s later it is.
        silence(&ops, &watched, t(149)).await;
        assert!(!is_offline(&ops, &cam).await);
        // Not watched (its window closed), then watched again: it starts afresh.
        silence(&ops, &HashMap::new(), t(149)).await;
        silence(&ops, &watched, t(600)).await;
        assert!(!is_offline(&ops, &cam).await);
        silence(&ops, &watched, t(659)).await;
        assert!(!is_offline(&ops, &cam).await);
        let page = db::outages::page(&ops.db, &db::outages::Filter::default(), None, 10)
            .await
            .unwrap();
        assert_eq!(page.total, 1);
        assert_eq!(page.items[0].duration_s, Some(90.0));
    }
}
