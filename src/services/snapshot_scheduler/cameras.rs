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
//!
//! During a database outage (docs/design.md §8.1) the last known camera keeps serving: an entry
//! past its TTL is used as it is when a read finds the database unavailable (or gives no answer
//! within [`STALE_READ_WAIT`]), and once one read has found it so, slots stop reading at all
//! until a read succeeds again (the refresher retries every [`RETRY_WHILE_AWAY`]): on
//! PostgreSQL each read would wait the pool's 10 s for a connection and make its slot late. A
//! camera deleted meanwhile is found when the database returns (its entry is not refreshed,
//! expires and is read). A camera never read before the outage cannot be served: its slot gets
//! the error and the runner counts it missed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use crate::error::{OpError, OpResult};
use crate::models::{Camera, CameraId, CameraState, CameraStatus};
pub use crate::ops::frames::Outcome;
use crate::ops::{self, Ops};

struct Entry {
    camera: Camera,
    status: CameraStatus,
    read_at: Instant,
}

/// How long a slot waits for its camera's row when it has a stale entry to fall back on.
pub const STALE_READ_WAIT: Duration = Duration::from_secs(1);

/// How often the refresher tries again while the database is unavailable (instead of half the
/// TTL), so slots read fresh rows soon after it returns.
pub const RETRY_WHILE_AWAY: Duration = Duration::from_secs(2);

pub struct CameraCache {
    entries: Mutex<HashMap<CameraId, Entry>>,
    /// How long an entry is trusted before the row is read again.
    ttl: Duration,
    /// The last read found the database unavailable and none has succeeded since: slots serve
    /// what is cached without reading.
    away: AtomicBool,
}

impl Default for CameraCache {
    fn default() -> Self {
        CameraCache::new(CameraCache::TTL)
    }
}

impl CameraCache {
    /// How long an entry is trusted before the row is read again, by default
    /// (HELDAR_CAMERA_CACHE_TTL_S).
    pub const TTL: Duration = Duration::from_secs(30);

    pub fn new(ttl: Duration) -> CameraCache {
        CameraCache {
            entries: Mutex::default(),
            ttl,
            away: AtomicBool::new(false),
        }
    }

    /// This cache's TTL.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The camera and its status; `None` if it no longer exists. During a database outage the
    /// last known entry, however old (see the module docs).
    pub async fn get(&self, ops: &Ops, id: &CameraId) -> OpResult<Option<(Camera, CameraStatus)>> {
        let stale = match self.lock().get(id) {
            Some(e) if e.read_at.elapsed() < self.ttl => {
                return Ok(Some((e.camera.clone(), e.status.clone())));
            }
            Some(e) => Some((e.camera.clone(), e.status.clone())),
            None => None,
        };
        if self.away.load(Ordering::Relaxed) {
            return match stale {
                Some(known) => Ok(Some(known)),
                None => Err(OpError::Unavailable {
                    code: "database_unavailable",
                    message: format!(
                        "{} while reading a camera the scheduler has not seen before",
                        crate::db::UNAVAILABLE
                    ),
                }),
            };
        }
        let read = ops::cameras::one_for_capture(ops, id);
        let read = match &stale {
            // Bounded: the stale entry serves the slot rather than the slot waiting for a
            // connection the pool cannot make.
            Some(_) => match tokio::time::timeout(STALE_READ_WAIT, read).await {
                Ok(r) => r,
                Err(_) => Err(OpError::Unavailable {
                    code: "database_unavailable",
                    message: format!(
                        "{} while reading a camera: no answer within {} s",
                        crate::db::UNAVAILABLE,
                        STALE_READ_WAIT.as_secs()
                    ),
                }),
            },
            None => read.await,
        };
        let read = match read {
            Ok(read) => read,
            Err(e @ OpError::Unavailable { .. }) => {
                self.went_away(&e);
                return match stale {
                    Some(known) => Ok(Some(known)),
                    None => Err(e),
                };
            }
            Err(e) => return Err(e),
        };
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

    /// A read found the database unavailable: say so once, and serve from the cache until a
    /// read succeeds.
    fn went_away(&self, e: &OpError) {
        if !self.away.swap(true, Ordering::Relaxed) {
            tracing::warn!(error = %e, "the scheduler's camera cache keeps serving the cameras it knows until the database returns");
        }
    }

    /// Is the cache serving without reading (the database found unavailable)?
    pub fn serving_stale(&self) -> bool {
        self.away.load(Ordering::Relaxed)
    }

    /// Read every camera at once (start-up), so the first slot of each camera does not wait
    /// for its row: that read would count in the frame's lateness. Returns how many.
    pub async fn warm(&self, ops: &Ops) -> OpResult<usize> {
        let all = match ops::cameras::for_capture(ops).await {
            Ok(all) => all,
            Err(e) => {
                if matches!(e, OpError::Unavailable { .. }) {
                    self.went_away(&e);
                }
                return Err(e);
            }
        };
        if self.away.swap(false, Ordering::Relaxed) {
            tracing::info!("the scheduler's camera cache reads the database again");
        }
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
    /// to reading their own row. While the database is unavailable the next turn comes after
    /// [`RETRY_WHILE_AWAY`] (at most `every`), and only the first failure is a WARN.
    pub async fn keep_fresh(
        &self,
        ops: &Ops,
        every: Duration,
        token: tokio_util::sync::CancellationToken,
    ) -> anyhow::Result<()> {
        // The start-up warm-up may have found the database away: try again soon, not in `every`.
        let first = if self.serving_stale() {
            RETRY_WHILE_AWAY.min(every)
        } else {
            every
        };
        let mut next = tokio::time::Instant::now() + first;
        loop {
            tokio::select! {
                _ = token.cancelled() => return Ok(()),
                _ = tokio::time::sleep_until(next) => {}
            }
            let was_away = self.serving_stale();
            match self.warm(ops).await {
                Ok(_) => next += every,
                Err(e) => {
                    if !was_away && !self.serving_stale() {
                        tracing::warn!(error = %e, "cannot refresh the scheduler's camera cache");
                    } else {
                        tracing::debug!(error = %e, "cannot refresh the scheduler's camera cache");
                    }
                    next = tokio::time::Instant::now() + RETRY_WHILE_AWAY.min(every);
                }
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

    /// A database outage (here: every connection of the pool taken, so a read waits for one
    /// as it does on PostgreSQL while the server is away) with every entry past its TTL: the
    /// slot is served the last known camera within the stale-read bound, later slots without
    /// reading at all, a camera never seen is an error (the runner counts its slot missed), and
    /// a camera deleted during the outage is found gone once the database answers again.
    #[tokio::test]
    async fn an_outage_serves_the_last_known_camera_and_a_delete_is_seen_when_it_ends() {
        let dir = tempfile::tempdir().unwrap();
        let (ops, _writer) = ops::test_ops(dir.path()).await;
        ops::cameras::create_spec(&ops, &spec("gate"))
            .await
            .unwrap();
        // TTL zero: every entry is stale at once, so every get would read the row.
        let cache = CameraCache::new(Duration::ZERO);
        cache.warm(&ops).await.unwrap();
        let db::Pool::Sqlite(pool) = &ops.db else {
            panic!("test_ops runs on SQLite");
        };
        let mut taken = Vec::new();
        while taken.len() < pool.options().get_max_connections() as usize {
            taken.push(pool.acquire().await.unwrap());
        }
        let gate = CameraId::parse("gate").unwrap();
        let began = std::time::Instant::now();
        let (camera, _) = cache.get(&ops, &gate).await.unwrap().unwrap();
        assert_eq!(camera.password.as_deref(), Some("s3cret"));
        assert!(
            began.elapsed() < STALE_READ_WAIT * 3,
            "the slot waited {:?} for its camera",
            began.elapsed()
        );
        assert!(cache.serving_stale());
        // Known away: no read, no wait.
        let began = std::time::Instant::now();
        assert!(cache.get(&ops, &gate).await.unwrap().is_some());
        let unknown = cache.get(&ops, &CameraId::parse("yard").unwrap()).await;
        assert!(
            matches!(unknown, Err(OpError::Unavailable { .. })),
            "{unknown:?}"
        );
        assert!(began.elapsed() < STALE_READ_WAIT, "{:?}", began.elapsed());
        // Deleted meanwhile (by whoever held the database), then the outage ends.
        sqlx::query("DELETE FROM cameras WHERE id = 'gate'")
            .execute(&mut *taken[0])
            .await
            .unwrap();
        drop(taken);
        assert!(
            cache.get(&ops, &gate).await.unwrap().is_some(),
            "still away until a read succeeds"
        );
        cache.warm(&ops).await.unwrap();
        assert!(!cache.serving_stale());
        assert!(cache.get(&ops, &gate).await.unwrap().is_none());
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
