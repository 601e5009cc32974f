//! The scheduler's view of cameras: each fire needs the camera's URLs and credentials and
//! whether it is in auth-failure backoff. Reading that row on every slot cost a database round
//! trip per capture (a hop to SQLite's worker thread and back), so fires read it from here.
//!
//! Freshness: an entry is re-read from the database after [`CameraCache::TTL`] (edits made by
//! another process reach us within that), and the registry calls [`CameraCache::forget`] on every
//! edit or delete made through this process, so those take effect on the next slot. The status
//! half is kept current by [`CameraCache::note`] after each scheduled capture, mirroring what the
//! capturer writes to `camera_status`. A read error is returned, never cached.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::camera::seal::Sealer;
use crate::db::{self, DbError, Pool};
use crate::models::{Camera, CameraId, CameraState, CameraStatus};

struct Entry {
    camera: Camera,
    status: CameraStatus,
    read_at: Instant,
}

#[derive(Default)]
pub struct CameraCache {
    entries: Mutex<HashMap<CameraId, Entry>>,
}

/// How a scheduled capture ended, for [`CameraCache::note`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    AuthFailed,
    Failed,
}

impl CameraCache {
    /// How long an entry is trusted before the row is read again.
    pub const TTL: Duration = Duration::from_secs(30);

    /// The camera and its status; `None` if it no longer exists.
    pub async fn get(
        &self,
        pool: &Pool,
        sealer: &Sealer,
        id: &CameraId,
    ) -> Result<Option<(Camera, CameraStatus)>, DbError> {
        if let Some(e) = self.lock().get(id) {
            if e.read_at.elapsed() < Self::TTL {
                return Ok(Some((e.camera.clone(), e.status.clone())));
            }
        }
        let read = db::cameras::get(pool, sealer, id).await?;
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

    /// Drop what we know of `id` (edited or deleted): the next fire reads the row.
    pub fn forget(&self, id: &CameraId) {
        self.lock().remove(id);
    }

    /// Record a scheduled capture's outcome in the cached status, as the capturer records it in
    /// the database, so auth-failure backoff is decided without a read.
    pub fn note(&self, id: &CameraId, outcome: Outcome, at: DateTime<Utc>) {
        let mut entries = self.lock();
        let Some(e) = entries.get_mut(id) else { return };
        let s = &mut e.status;
        match outcome {
            Outcome::Ok => {
                s.state = CameraState::Online;
                s.last_success_at = Some(at);
                s.consecutive_failures = 0;
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
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<CameraId, Entry>> {
        self.entries.lock().expect("camera cache poisoned")
    }
}
