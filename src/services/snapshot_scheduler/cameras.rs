//! The scheduler's view of cameras: each slot needs the camera's URLs and credentials and
//! whether it is in auth-failure backoff. Reading that row on every slot cost a database round
//! trip per capture (a hop to SQLite's worker thread and back), so slots read it from here.
//! Reads go through `ops::cameras` (which opens the sealed credentials); ages are measured on
//! tokio's clock, so a paused test clock drives the TTL.
//!
//! Freshness: [`CameraCache::keep_fresh`] re-reads every camera in one query each half
//! [`CameraCache::TTL`], so a fire finds its camera without waiting for a read; an entry that is
//! older than the TTL all the same (a camera added since, the refresher failing) is re-read by
//! the slot that needs it. Edits made by another process reach us within the TTL; an edit or
//! delete made through this process reaches the scheduler as a command
//! (`ops::scheduler::Command::CameraChanged`), which calls [`CameraCache::forget`], so it takes
//! effect on the next slot. Why the bulk refresh: when entries expired one by one,
//! the fire that found its camera expired waited for the row, and that wait counted in the
//! frame's lateness (the bench's worst lateness, 90–130 ms, was always 30 s into the run). The status
//! half is kept current by [`CameraCache::note`] after each scheduled capture, mirroring what the
//! capturer writes to `camera_status`. A read error is returned, never cached.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use crate::error::OpResult;
use crate::models::{Camera, CameraId, CameraState, CameraStatus};
pub use crate::ops::frames::Outcome;
use crate::ops::{self, Ops};

struct Entry {
    camera: Camera,
    status: CameraStatus,
    read_at: Instant,
}

#[derive(Default)]
pub struct CameraCache {
    entries: Mutex<HashMap<CameraId, Entry>>,
}

impl CameraCache {
    /// How long an entry is trusted before the row is read again.
    pub const TTL: Duration = Duration::from_secs(30);

    /// The camera and its status; `None` if it no longer exists.
    pub async fn get(&self, ops: &Ops, id: &CameraId) -> OpResult<Option<(Camera, CameraStatus)>> {
        if let Some(e) = self.lock().get(id) {
            if e.read_at.elapsed() < Self::TTL {
                return Ok(Some((e.camera.clone(), e.status.clone())));
            }
        }
        let read = ops::cameras::one_for_capture(ops, id).await?;
        let mut entries = self.lock();
        match &read {
            Some((camera, status)) => {
                entries.insert(
                    id.clone(),
                    Entry {
                        camera: camera.clone(),
                        status: status.clone(),
                        read_at: Instant::now(),
                    },
                );
            }
            None => {
                entries.remove(id);
            }
        }
        Ok(read)
    }

    /// Read every camera at once (start-up), so the first slot of each camera does not wait
    /// for its row: that read would count in the frame's lateness. Returns how many.
    pub async fn warm(&self, ops: &Ops) -> OpResult<usize> {
        let all = ops::cameras::for_capture(ops).await?;
        let read_at = Instant::now();
        let mut entries = self.lock();
        for (camera, status) in all {
            entries.insert(
                camera.id.clone(),
                Entry {
                    camera,
                    status,
                    read_at,
                },
            );
        }
        Ok(entries.len())
    }

    /// Re-read every camera `every` (half the TTL in the application) until `token` is
    /// cancelled. A failed read is logged and retried at the next turn: fires then fall back
    /// to reading their own row.
    pub async fn keep_fresh(
        &self,
        ops: &Ops,
        every: Duration,
        token: tokio_util::sync::CancellationToken,
    ) -> anyhow::Result<()> {
        let mut next = tokio::time::Instant::now();
        loop {
            next += every;
            tokio::select! {
                _ = token.cancelled() => return Ok(()),
                _ = tokio::time::sleep_until(next) => {}
            }
            if let Err(e) = self.warm(ops).await {
                tracing::warn!(error = %e, "cannot refresh the scheduler's camera cache");
            }
        }
    }

    /// Drop what we know of `id` (edited or deleted): the next fire reads the row.
    pub fn forget(&self, id: &CameraId) {
        self.lock().remove(id);
    }

    /// Record a scheduled capture's outcome in the cached status, as the capturer records it in
    /// the database, so auth-failure backoff is decided without a read. Returns the status as
    /// it now is (`None` if the camera is not cached).
    pub fn note(&self, id: &CameraId, outcome: Outcome, at: DateTime<Utc>) -> Option<CameraStatus> {
        let mut entries = self.lock();
        let e = entries.get_mut(id)?;
        let s = &mut e.status;
        match outcome {
            Outcome::Ok => {
                s.state = CameraState::Online;
                s.last_success_at = Some(at);
                s.consecutive_failures = 0;
                // As the status row (db::cameras::RECORD_SUCCESS_SQL).
                s.last_error = None;
                s.last_error_at = None;
            }
            Outcome::AuthFailed | Outcome::Failed => {
                s.state = if outcome == Outcome::AuthFailed {
                    CameraState::AuthFailed
                } else {
                    CameraState::Failing
                };
                s.last_error_at = Some(at);
                s.consecutive_failures += 1;
            }
        }
        Some(s.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<CameraId, Entry>> {
        self.entries.lock().expect("camera cache poisoned")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db;
    use crate::models::CameraSpec;

    fn spec(id: &str) -> CameraSpec {
        let body = serde_json::json!({"id": id, "snapshot_url": "http://127.0.0.1:9/snap.jpg",
            "username": "admin", "password": "s3cret"});
        CameraSpec::from_create(serde_json::from_value(body).unwrap()).unwrap()
    }

    #[tokio::test]
    async fn warm_reads_every_camera_so_the_first_slot_needs_no_row() {
        let dir = tempfile::tempdir().unwrap();
        let (ops, _writer) = ops::test_ops(dir.path()).await;
        for id in ["gate", "yard"] {
            ops::cameras::create_spec(&ops, &spec(id)).await.unwrap();
        }
        let cache = CameraCache::default();
        assert_eq!(cache.warm(&ops).await.unwrap(), 2);
        // The rows are gone, yet both cameras are known (with their opened credentials): the
        // reads came from the warm-up, not from the database.
        for id in ["gate", "yard"] {
            let id = CameraId::parse(id).unwrap();
            assert!(db::cameras::delete(&ops.db, &id).await.unwrap());
            let (camera, _) = cache.get(&ops, &id).await.unwrap().unwrap();
            assert_eq!(camera.password.as_deref(), Some("s3cret"));
        }
    }

    #[tokio::test]
    async fn keep_fresh_picks_up_an_edit_made_elsewhere_without_a_read_by_the_slot() {
        let dir = tempfile::tempdir().unwrap();
        let (ops, _writer) = ops::test_ops(dir.path()).await;
        ops::cameras::create_spec(&ops, &spec("gate"))
            .await
            .unwrap();
        let cache = std::sync::Arc::new(CameraCache::default());
        cache.warm(&ops).await.unwrap();
        // Another process renames it; the cached entry is fresh, so only a refresh sees it.
        let renamed = CameraSpec {
            name: "Front gate".into(),
            ..spec("gate")
        };
        db::cameras::update(&ops.db, &ops.sealer.seal_spec(&renamed), Utc::now(), false)
            .await
            .unwrap();
        let token = tokio_util::sync::CancellationToken::new();
        let refresher = {
            let (cache, ops, token) = (cache.clone(), ops.clone(), token.clone());
            tokio::spawn(async move {
                cache
                    .keep_fresh(&ops, Duration::from_millis(20), token)
                    .await
            })
        };
        let id = CameraId::parse("gate").unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (camera, _) = cache.get(&ops, &id).await.unwrap().unwrap();
            if camera.name == "Front gate" {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the refresher never re-read the camera"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        token.cancel();
        refresher.await.unwrap().unwrap();
    }
}
