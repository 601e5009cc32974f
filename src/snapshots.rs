//! Keeping frames: capture a camera, write the frame into the store, then record its row — in
//! that order, so a row never names a file that is not complete (DESIGN.md §8). Used by the
//! scheduler for every slot and by the live-snapshot API for `?store=true`.

use std::sync::Arc;

use chrono::{SubsecRound, Utc};

use crate::camera::cache::CameraCache;
use crate::camera::seal::Sealer;
use crate::capture::{CaptureError, Capturer};
use crate::clock::Clock;
use crate::db::{writer::Writer, DbError, Pool};
use crate::metrics::Metrics;
use crate::models::{new_id, Camera, Snapshot};
use crate::store::{FrameStore, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum KeepError {
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// What capturing-and-keeping needs; cheap to clone.
#[derive(Clone)]
pub struct Keeper {
    pub db: Pool,
    pub writer: Writer,
    pub capturer: Arc<Capturer>,
    pub store: FrameStore,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    /// Cameras as scheduled fires see them (no database read per slot).
    pub cameras: Arc<CameraCache>,
    /// Opens the cameras' sealed credentials.
    pub sealer: Arc<Sealer>,
}

impl Keeper {
    /// Capture `camera` now and keep the frame; `schedule_id` is `None` for a manual capture.
    pub async fn capture_and_keep(
        &self,
        camera: &Camera,
        schedule_id: Option<&str>,
    ) -> Result<(Snapshot, bytes::Bytes), KeepError> {
        // The frame's time is when its capture started: for a scheduled frame, slot + lateness.
        let taken_at = self.clock.now().trunc_subsecs(3);
        // The success is recorded with the frame's row (one write); if the frame is not kept, on
        // its own below.
        let frame = self.capturer.capture_deferring_success(camera).await?;
        let file = match self
            .store
            .write_frame(&camera.id, taken_at, frame.bytes.clone())
            .await
        {
            Ok(f) => f,
            Err(e) => {
                self.metrics.store_failures.inc();
                tracing::warn!(camera = %camera.id, error = %e, "frame captured but not stored");
                let _ = self.writer.record_success(&camera.id, Utc::now()).await;
                return Err(e.into());
            }
        };
        let snap = Snapshot {
            id: new_id("snp"),
            camera_id: camera.id.clone(),
            schedule_id: schedule_id.map(str::to_string),
            path: file.rel_path.clone(),
            taken_at,
            size_bytes: file.size as i64,
            width: Some(i64::from(frame.width)),
            height: Some(i64::from(frame.height)),
            created_at: Utc::now(),
        };
        if let Err(e) = self.writer.record_frame(snap.clone()).await {
            // No row, so no file: remove it rather than leave an orphan.
            let _ = self.store.remove(&file.rel_path).await;
            let _ = self.writer.record_success(&camera.id, Utc::now()).await;
            self.metrics.store_failures.inc();
            tracing::warn!(camera = %camera.id, error = %e, "frame not recorded; file removed");
            return Err(e.into());
        }
        Ok((snap, frame.bytes))
    }
}
