//! The retention sweeper: every HELDAR_RETENTION_INTERVAL_S (and at once when the frame store
//! finds free disk under the floor), delete frames oldest
//! first, in bounded batches — those older than HELDAR_SNAPSHOT_RETENTION_HOURS, except the
//! frames of a schedule with its own `retention_hours`, which are kept exactly that long
//! instead; then, for each camera with its own `max_gb`, that camera's oldest frames while it
//! is over its cap; then, while the stored frames exceed HELDAR_SNAPSHOT_MAX_GB or free disk is
//! under HELDAR_MIN_FREE_DISK_GB, the oldest frames. Only frames with a row (files Heldar wrote)
//! are ever deleted, through the frame store (docs/schedules.md "How long frames are kept").
//!
//! Timelapse videos (`$HELDAR_DATA_DIR/timelapses`) are pruned here too: those made more than
//! HELDAR_TIMELAPSE_TTL_HOURS ago, every sweep; and under the free-disk floor, after the frames:
//! the oldest frames go first, and videos (oldest first) only when no frame is left to prune.
//! A video is the long-lived summary of frames that retention removes anyway, and a small one.
//! Finished job rows are forgotten `ops::timelapses::JOB_KEEP` after they ended.
//!
//! Invariant: a file is deleted before its row, and the row goes only when the file is gone
//! (deleted now, or already absent). Any other delete error keeps the row for the next sweep, so
//! a file is never left without a row to find it by. Each sweep logs and counts what it removed
//! (`heldar_snapshots_pruned_total{reason}`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::db::{self, Pool};
use crate::metrics::Metrics;
use crate::store::{self, FrameStore};

/// Rows deleted per batch, and batches per limit per sweep.
const BATCH: i64 = 500;
const MAX_BATCHES: usize = 200;

/// How soon a sweep cut short by a database outage is tried again (at most the interval).
const OUTAGE_RETRY: Duration = Duration::from_secs(5);

/// Is this failure the database or the frame storage being away (an outage), not a fault?
pub fn is_outage(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<db::DbError>()
            .is_some_and(db::DbError::is_unavailable)
            || matches!(
                c.downcast_ref::<store::StoreError>(),
                Some(store::StoreError::Unavailable(_))
            )
            || matches!(
                c.downcast_ref::<crate::error::OpError>(),
                Some(crate::error::OpError::Unavailable { .. })
            )
    })
}

/// Pruning for free disk goes this far past the floor: a tenth of it, at most 1 GB. Without it,
/// a disk that is kept at its floor would see the floor crossed again by the next frame, and the
/// store would wake the sweeper (and measure free space) on nearly every write.
pub fn free_disk_slack(floor: u64) -> u64 {
    slack(floor)
}

/// A tenth of a limit, at most 1 GB: how far past it pruning goes when the store woke the sweeper.
fn slack(limit: u64) -> u64 {
    (limit / 10).min(1_000_000_000)
}

/// Free bytes on the snapshots filesystem (injectable for tests).
pub type FreeSpace = Arc<dyn Fn() -> std::io::Result<u64> + Send + Sync>;

pub struct Retention {
    pub db: Pool,
    pub store: FrameStore,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    pub max_age: Option<Duration>,
    pub max_bytes: Option<u64>,
    pub min_free_bytes: u64,
    pub free_space: FreeSpace,
    /// Timelapse videos to prune too (`None`: none, as in tests of frames alone).
    pub videos: Option<Videos>,
}

/// The timelapse videos' part of retention.
pub struct Videos {
    pub store: crate::store::videos::VideoStore,
    /// HELDAR_TIMELAPSE_TTL_HOURS; `None` keeps them forever.
    pub ttl: Option<Duration>,
}

/// What one sweep removed, by reason, and how many deletions failed (rows kept).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    /// Removed for their age: past the global limit, or past their schedule's own
    /// `retention_hours`.
    pub age: u64,
    /// Removed because their camera was over its own `max_gb`.
    pub camera_size: u64,
    pub size: u64,
    pub free_disk: u64,
    pub failed: u64,
    /// Timelapse videos removed for their age (HELDAR_TIMELAPSE_TTL_HOURS).
    pub videos_age: u64,
    /// Timelapse videos removed under the free-disk floor, once no frame was left.
    pub videos_free_disk: u64,
}

impl Retention {
    /// The statvfs free space of `dir`.
    pub fn statvfs_free(dir: PathBuf) -> FreeSpace {
        Arc::new(move || store::free_bytes(&dir))
    }

    /// Sweep every `interval` until `token` is cancelled — and at once whenever the frame store
    /// finds free space under the floor or a full disk (see `store::DiskFloor`), so the floor
    /// holds between the timed sweeps.
    pub async fn run(&self, interval: Duration, token: CancellationToken) -> anyhow::Result<()> {
        let floor = self.store.floor().clone();
        floor.arm(self.min_free_bytes);
        floor.arm_cap(self.max_bytes.unwrap_or(0));
        let mut next = tokio::time::Instant::now();
        let mut woken = false;
        loop {
            floor.sweep_started();
            // Woken by the store: only the size and free-disk passes, which is what it needs.
            let report = if woken {
                self.sweep_woken().await
            } else {
                self.sweep().await
            };
            floor.sweep_done();
            let report = match report {
                Ok(report) => report,
                // The database (or the bucket) away for a while (docs/design.md §8.1): wait
                // and sweep again, rather than fail and restart the service over it. What was
                // not removed is still there for the next sweep.
                Err(e) if is_outage(&e) => {
                    tracing::warn!(error = %crate::error::report(&*e), "retention waits for the database");
                    let retry = tokio::time::Instant::now() + interval.min(OUTAGE_RETRY);
                    tokio::select! {
                        _ = token.cancelled() => return Ok(()),
                        _ = tokio::time::sleep_until(retry) => woken = false,
                    }
                    continue;
                }
                Err(e) => return Err(e),
            };
            if report != SweepReport::default() {
                tracing::info!(
                    age = report.age,
                    camera_size = report.camera_size,
                    size = report.size,
                    free_disk = report.free_disk,
                    failed = report.failed,
                    videos_age = report.videos_age,
                    videos_free_disk = report.videos_free_disk,
                    "retention sweep removed frames"
                );
            }
            let now = tokio::time::Instant::now();
            if next <= now {
                next = now + interval;
            }
            tokio::select! {
                _ = token.cancelled() => return Ok(()),
                _ = tokio::time::sleep_until(next) => woken = false,
                _ = floor.woken() => woken = true,
            }
        }
    }

    pub async fn sweep(&self) -> anyhow::Result<SweepReport> {
        let mut report = SweepReport::default();
        if let Some(age) = self.max_age {
            let cutoff = self.clock.now() - chrono::Duration::from_std(age)?;
            let mut failed = 0i64;
            for _ in 0..MAX_BATCHES {
                let rows =
                    db::snapshots::oldest_by_global_age(&self.db, cutoff, failed, BATCH).await?;
                if rows.is_empty() {
                    break;
                }
                let (removed, _, f) = self.delete(&rows, "age").await?;
                report.age += removed;
                failed += f as i64;
            }
            report.failed += failed as u64;
        }
        self.schedule_age_pass(&mut report).await?;
        self.camera_cap_pass(&mut report).await?;
        if let Some(max) = self.max_bytes {
            self.size_pass(&mut report, max, max).await?;
        }
        self.videos_age_pass(&mut report).await?;
        self.free_disk_pass(&mut report).await?;
        self.update_gauges().await;
        Ok(report)
    }

    /// Each schedule with its own `retention_hours`: its frames older than that.
    async fn schedule_age_pass(&self, report: &mut SweepReport) -> anyhow::Result<()> {
        let now = self.clock.now();
        for (schedule, hours) in db::schedules::retention_overrides(&self.db).await? {
            let cutoff = now - chrono::Duration::hours(hours.max(1));
            let mut failed = 0i64;
            for _ in 0..MAX_BATCHES {
                let rows =
                    db::snapshots::oldest_of_schedule(&self.db, &schedule, cutoff, failed, BATCH)
                        .await?;
                if rows.is_empty() {
                    break;
                }
                let (removed, _, f) = self.delete(&rows, "age").await?;
                report.age += removed;
                failed += f as i64;
            }
            report.failed += failed as u64;
        }
        Ok(())
    }

    /// Each camera with its own `max_gb`: while its frames are over it, its oldest frames.
    async fn camera_cap_pass(&self, report: &mut SweepReport) -> anyhow::Result<()> {
        for (camera, max) in db::cameras::caps(&self.db).await? {
            let mut total = db::snapshots::camera_bytes(&self.db, &camera).await?.max(0) as u64;
            let mut failed = 0i64;
            for _ in 0..MAX_BATCHES {
                if total <= max {
                    break;
                }
                let excess = total - max;
                let rows =
                    db::snapshots::oldest_of_camera(&self.db, &camera, failed, BATCH).await?;
                let mut need = 0u64;
                let take: Vec<_> = rows
                    .into_iter()
                    .take_while(|r| {
                        let more = need < excess;
                        need += r.size_bytes.max(0) as u64;
                        more
                    })
                    .collect();
                if take.is_empty() {
                    break;
                }
                let (removed, bytes, f) = self.delete(&take, "camera_size").await?;
                report.camera_size += removed;
                failed += f as i64;
                total = total.saturating_sub(bytes);
            }
            report.failed += failed as u64;
        }
        Ok(())
    }

    /// Videos made more than the TTL ago, and finished jobs older than `JOB_KEEP`.
    async fn videos_age_pass(&self, report: &mut SweepReport) -> anyhow::Result<()> {
        let Some(v) = &self.videos else {
            return Ok(());
        };
        let now = self.clock.now();
        db::jobs::prune_finished(&self.db, now - crate::ops::timelapses::JOB_KEEP).await?;
        let Some(ttl) = v.ttl else { return Ok(()) };
        let cutoff = now - chrono::Duration::from_std(ttl)?;
        let mut failed = 0i64;
        for _ in 0..MAX_BATCHES {
            let rows = db::jobs::oldest_videos(&self.db, Some(cutoff), failed, BATCH).await?;
            if rows.is_empty() {
                break;
            }
            let (removed, _, f) = self.delete_videos(v, &rows, "timelapse_age").await?;
            report.videos_age += removed;
            failed += f as i64;
        }
        report.failed += failed as u64;
        Ok(())
    }

    /// File first, then row, as for frames. Returns (removed, bytes removed, failed).
    async fn delete_videos(
        &self,
        v: &Videos,
        rows: &[crate::models::timelapse::Timelapse],
        reason: &str,
    ) -> anyhow::Result<(u64, u64, u64)> {
        let (mut removed, mut bytes, mut failed) = (0, 0, 0);
        for row in rows {
            match v.store.remove(&row.file).await {
                Ok(_) => {
                    db::jobs::delete_video(&self.db, row.id.as_str()).await?;
                    tracing::info!(timelapse = %row.id, camera = %row.camera_id, reason, "timelapse video pruned");
                    removed += 1;
                    bytes += row.size_bytes.max(0) as u64;
                }
                Err(e) => {
                    tracing::warn!(file = %row.file, error = %e, "cannot delete a timelapse video; keeping its row for the next sweep");
                    failed += 1;
                }
            }
        }
        self.metrics.pruned(reason, removed);
        Ok((removed, bytes, failed))
    }

    /// Stored bytes and free disk into the metrics, and the stored bytes into the store's count
    /// for the size cap.
    async fn update_gauges(&self) {
        if let Ok(total) = db::snapshots::total_bytes(&self.db).await {
            self.metrics.snapshot_bytes.set(total);
            self.store.floor().set_stored(total.max(0) as u64);
        }
        if let Ok(free) = (self.free_space)() {
            self.metrics
                .disk_free_bytes
                .set(free.min(i64::MAX as u64) as i64);
        }
    }

    /// What a wake-up from the frame store runs: the size pass — down to the cap less a slack,
    /// so the next frames do not cross it again at once — and the free-disk pass.
    pub async fn sweep_woken(&self) -> anyhow::Result<SweepReport> {
        let mut report = SweepReport::default();
        if let Some(max) = self.max_bytes {
            self.size_pass(&mut report, max, max - slack(max)).await?;
        }
        self.free_disk_pass(&mut report).await?;
        self.update_gauges().await;
        Ok(report)
    }

    /// If the stored bytes are over `over`, delete the oldest frames until they are at most
    /// `max`.
    async fn size_pass(&self, report: &mut SweepReport, over: u64, max: u64) -> anyhow::Result<()> {
        let mut total = db::snapshots::total_bytes(&self.db).await?.max(0) as u64;
        if total <= over {
            return Ok(());
        }
        for _ in 0..MAX_BATCHES {
            if total <= max {
                break;
            }
            let excess = total - max;
            let rows = db::snapshots::oldest(&self.db, None, report.failed as i64, BATCH).await?;
            // Only as many as the excess needs, oldest first.
            let mut need = 0u64;
            let take: Vec<_> = rows
                .into_iter()
                .take_while(|r| {
                    let more = need < excess;
                    need += r.size_bytes.max(0) as u64;
                    more
                })
                .collect();
            if take.is_empty() {
                break;
            }
            let (removed, bytes, failed) = self.delete(&take, "size").await?;
            report.size += removed;
            report.failed += failed;
            total = total.saturating_sub(bytes);
        }
        Ok(())
    }

    /// While free disk is under the floor, delete the oldest frames until it is at the floor
    /// plus [`free_disk_slack`].
    async fn free_disk_pass(&self, report: &mut SweepReport) -> anyhow::Result<()> {
        if self.min_free_bytes > 0 {
            let target = self.min_free_bytes + free_disk_slack(self.min_free_bytes);
            let mut videos_failed = 0u64;
            for _ in 0..MAX_BATCHES {
                let free = (self.free_space)()?;
                // Under the floor: prune up to the floor plus a slack, so that the next writes
                // do not find it crossed again at once.
                let pruned = report.free_disk + report.videos_free_disk;
                if free >= self.min_free_bytes && (pruned == 0 || free >= target) {
                    break;
                }
                // Small batches, and only as many frames as the deficit needs: each batch frees
                // real space, then free space is measured again.
                let rows = db::snapshots::oldest(&self.db, None, report.failed as i64, 50).await?;
                let deficit = target.saturating_sub(free);
                let mut need = 0u64;
                let rows: Vec<_> = rows
                    .into_iter()
                    .take_while(|r| {
                        let more = need < deficit;
                        need += r.size_bytes.max(0) as u64;
                        more
                    })
                    .collect();
                if rows.is_empty() && free >= self.min_free_bytes {
                    break;
                }
                if rows.is_empty() {
                    // No frame left: the oldest timelapse videos go next.
                    if let Some(v) = &self.videos {
                        let videos =
                            db::jobs::oldest_videos(&self.db, None, videos_failed as i64, 5)
                                .await?;
                        if !videos.is_empty() {
                            let (removed, _, failed) = self
                                .delete_videos(v, &videos, "timelapse_free_disk")
                                .await?;
                            report.videos_free_disk += removed;
                            videos_failed += failed;
                            continue;
                        }
                    }
                    tracing::warn!(free, floor = self.min_free_bytes,
                        "free disk ({}) is under HELDAR_MIN_FREE_DISK_GB ({}) and no frames or timelapse videos are left to prune",
                        crate::units::fmt_bytes(free), crate::units::fmt_bytes(self.min_free_bytes));
                    break;
                }
                let (removed, _, failed) = self.delete(&rows, "free_disk").await?;
                report.free_disk += removed;
                report.failed += failed;
            }
            report.failed += videos_failed;
        }
        Ok(())
    }

    /// File first, then row. Returns (removed, bytes removed, failed).
    async fn delete(
        &self,
        rows: &[crate::models::Snapshot],
        reason: &str,
    ) -> anyhow::Result<(u64, u64, u64)> {
        let (mut removed, mut bytes, mut failed) = (0, 0, 0);
        for row in rows {
            match self.store.remove(&row.path).await {
                Ok(_) => {
                    db::snapshots::delete(&self.db, &row.id).await?;
                    removed += 1;
                    bytes += row.size_bytes.max(0) as u64;
                }
                Err(e) => {
                    tracing::warn!(path = %row.path, error = %e, "cannot delete a frame; keeping its row for the next sweep");
                    failed += 1;
                }
            }
        }
        self.metrics.pruned(reason, removed);
        Ok((removed, bytes, failed))
    }
}
