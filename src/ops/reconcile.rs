//! Reconciliation: every row has its file and every file Heldar wrote has its row — without
//! making start-up wait for a walk of the whole archive.
//!
//! What it may touch is exactly what Heldar writes (the store's rule, `store` module docs): its
//! temporary files, which it removes, and frame-named files inside a *registered* camera's
//! folder, which it re-indexes (a valid JPEG) or removes (a damaged one: the store only ever
//! puts complete JPEGs under a final name, so a damaged one is the debris of a lost write).
//! Rows whose file is gone are removed. Everything else is left where it is and reported with a
//! WARN naming the folder: files and folders an operator keeps in snapshots_dir, and frame-named
//! files in a folder that belongs to no registered camera (a deleted camera whose folder held
//! files Heldar did not write, or another install's frames). Those are not deleted because
//! Heldar cannot tell them from an operator's copy; re-creating the camera with that id
//! re-indexes them at the next start.
//!
//! It runs in two parts (the `meta` table's run marks, `db::meta`, say which):
//!
//! - [`crash_window`], before the scheduler starts and the API listens, and only after a run
//!   that did not stop cleanly: what a crash can have left is bounded by the crashed run — temp
//!   files, frames written since it began whose rows never committed, rows of that time whose
//!   files are gone. It lists only the registered cameras' folders modified since the crashed
//!   run began (a folder's modification time moves whenever an entry is added or removed), and
//!   compares only frames and rows taken since then ([`CLOCK_MARGIN`] earlier). After a clean
//!   stop, or when no run was recorded, it is not run at all.
//! - [`full_pass`], in the background on every start (`services::reconciler`), while the
//!   scheduler writes: the full cross-check, one camera folder at a time (so at most one
//!   camera's names and rows are in memory), re-indexing in batches of [`INDEX_BATCH`] through
//!   the writer and yielding between batches. It is safe against the running scheduler because
//!   it leaves alone everything this run wrote: frames named at or after the run's start, rows
//!   taken at or after it, and temp files modified since it (a write in progress). The store's
//!   write path keeps its own frames consistent (file, then row; a failed row removes the
//!   file). A frame that disappears under it (retention) is skipped; a row is removed only when
//!   its file is absent at that moment.
//!
//! Failure: an I/O or database error ends the part that hit it. Before start-up that stops the
//! start (as before this split); in the background the supervisor runs the pass again from
//! the start after a backoff — every step is idempotent.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, SubsecRound, Utc};
use tokio_util::sync::CancellationToken;

use crate::capture::jpeg;
use crate::clock::Clock;
use crate::db::{self, meta::LastRun, writer::Writer, Pool};
use crate::models::{new_id, CameraId, Snapshot};
use crate::store::{FrameFile, FrameStore, TempFile};

/// What a reconciliation did; logged at start-up and when the background pass ends.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReconcileReport {
    pub temp_files_removed: u64,
    pub rows_without_file_removed: u64,
    pub files_reindexed: u64,
    /// Frame-named files of registered cameras that were not valid JPEGs.
    pub damaged_frames_removed: u64,
    /// Entries Heldar did not write (or cannot claim), left in place.
    pub entries_left_alone: u64,
    /// Camera folders listed.
    pub folders_checked: u64,
}

/// How far before a crashed run's recorded start its frames may be named: the wall clock may
/// have been stepped back during the run. Anything older is left to the background pass.
pub const CLOCK_MARGIN: chrono::Duration = chrono::Duration::minutes(5);

/// Frames re-indexed per write, and checks between two yields of the background pass.
pub const INDEX_BATCH: usize = 512;

/// Where the crash window of the last run begins, if it did not stop cleanly.
pub fn crash_window_start(last: &LastRun) -> Option<DateTime<Utc>> {
    match last {
        LastRun::Unclean { started_at } => Some(*started_at - CLOCK_MARGIN),
        LastRun::Clean { .. } | LastRun::Unknown => None,
    }
}

/// Most names quoted in one warning.
const EXAMPLES: usize = 3;

fn examples(names: &[String]) -> String {
    let mut shown: Vec<&str> = names.iter().take(EXAMPLES).map(String::as_str).collect();
    shown.sort_unstable();
    let mut s = shown
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > EXAMPLES {
        s.push_str(&format!(" and {} more", names.len() - EXAMPLES));
    }
    s
}

/// The handles reconciliation works with.
#[derive(Clone, Copy)]
pub struct Parts<'a> {
    pub store: &'a FrameStore,
    pub pool: &'a Pool,
    pub writer: &'a Writer,
    pub clock: &'a dyn Clock,
}

/// The synchronous part after an unclean stop: reconcile what was written since `since` (the
/// crashed run's start less [`CLOCK_MARGIN`]). Must run before anything else writes frames:
/// every temp file it finds is debris.
pub async fn crash_window(p: Parts<'_>, since: DateTime<Utc>) -> anyhow::Result<ReconcileReport> {
    let mut report = ReconcileReport::default();
    let top = p.store.scan_top().await?;
    remove_temps(p.store, &top.temp_files, None, &mut report).await?;
    let cameras: HashSet<String> = db::cameras::ids(p.pool).await?.into_iter().collect();
    for entry in &top.folders {
        let touched = entry
            .modified
            .is_none_or(|m| DateTime::<Utc>::from(m) >= since);
        if !touched || !cameras.contains(entry.camera.as_str()) {
            continue;
        }
        let folder = p.store.scan_folder_since(&entry.camera, since).await?;
        report.folders_checked += 1;
        remove_temps(p.store, &folder.temp_files, None, &mut report).await?;
        let frames: Vec<FrameFile> = folder
            .frames
            .into_iter()
            .filter(|f| f.taken_at >= since)
            .collect();
        let rows = db::snapshots::camera_paths(p.pool, &entry.camera, Some(since), None).await?;
        check_camera(p, &entry.camera, frames, rows, None, &mut report).await?;
    }
    Ok(report)
}

/// The full cross-check, run in the background while this run (started at `run_start`)
/// captures. Returns `None` if `token` was cancelled before it finished.
pub async fn full_pass(
    p: Parts<'_>,
    run_start: DateTime<Utc>,
    token: &CancellationToken,
) -> anyhow::Result<Option<ReconcileReport>> {
    let mut report = ReconcileReport::default();
    let top = p.store.scan_top().await?;
    remove_temps(p.store, &top.temp_files, Some(run_start), &mut report).await?;
    if !top.foreign.is_empty() {
        report.entries_left_alone += top.foreign.len() as u64;
        tracing::warn!(
            folder = %p.store.location(),
            entries = top.foreign.len(),
            "the snapshots folder holds entries Heldar did not write ({}); they are left alone",
            examples(&top.foreign)
        );
    }
    let cameras = db::cameras::ids(p.pool).await?;
    let registered: HashSet<&str> = cameras.iter().map(String::as_str).collect();
    // Registered cameras, folder or not (a missing folder means every row of it lost its file).
    for id in &cameras {
        if token.is_cancelled() {
            return Ok(None);
        }
        let Ok(camera) = CameraId::parse(id) else {
            continue;
        };
        let folder = p.store.scan_folder(&camera).await?;
        report.folders_checked += 1;
        if !folder.foreign.is_empty() {
            report.entries_left_alone += folder.foreign.len() as u64;
            tracing::warn!(
                folder = %p.store.location_of(id),
                entries = folder.foreign.len(),
                "camera {id}'s folder holds entries Heldar did not write ({}); they are left alone",
                examples(&folder.foreign)
            );
        }
        remove_temps(p.store, &folder.temp_files, Some(run_start), &mut report).await?;
        let frames: Vec<FrameFile> = folder
            .frames
            .into_iter()
            .filter(|f| f.taken_at < run_start)
            .collect();
        let rows = db::snapshots::camera_paths(p.pool, &camera, None, Some(run_start)).await?;
        check_camera(p, &camera, frames, rows, Some(token), &mut report).await?;
        tokio::task::yield_now().await;
    }
    // Folders named like a camera that is not registered: counted and reported, never touched.
    for entry in top
        .folders
        .iter()
        .filter(|f| !registered.contains(f.camera.as_str()))
    {
        if token.is_cancelled() {
            return Ok(None);
        }
        let folder = p.store.scan_folder(&entry.camera).await?;
        let n = folder.frames.len() + folder.temp_files.len() + folder.foreign.len();
        report.entries_left_alone += n as u64;
        if n > 0 {
            tracing::warn!(
                folder = %p.store.location_of(entry.camera.as_str()),
                frame_files = folder.frames.len(),
                other_entries = folder.foreign.len() + folder.temp_files.len(),
                "no camera {:?} is registered, so this folder is left alone; re-create the \
                 camera to re-index its frames at the next start, or delete the folder",
                entry.camera.as_str()
            );
        }
    }
    Ok(Some(report))
}

/// Remove the store's temp files; with `older_than`, only those last modified before it (a
/// newer one may be a write in progress; one whose time is unknown is kept).
async fn remove_temps(
    store: &FrameStore,
    temps: &[TempFile],
    older_than: Option<DateTime<Utc>>,
    report: &mut ReconcileReport,
) -> anyhow::Result<()> {
    for tmp in temps {
        let stale = match (older_than, tmp.modified) {
            (None, _) => true,
            (Some(t), Some(m)) => DateTime::<Utc>::from(m) < t,
            (Some(_), None) => false,
        };
        if stale && store.remove_temp(&tmp.path).await? {
            report.temp_files_removed += 1;
        }
    }
    Ok(())
}

/// Compare one camera's frame files with its rows (both already narrowed to the same span of
/// capture times): a row without its file is removed, a file without its row re-indexed or, if
/// damaged, removed. With a `token` (the background pass) it yields every [`INDEX_BATCH`] checks
/// and stops early when cancelled.
async fn check_camera(
    p: Parts<'_>,
    camera: &CameraId,
    frames: Vec<FrameFile>,
    rows: Vec<(String, String)>,
    token: Option<&CancellationToken>,
    report: &mut ReconcileReport,
) -> anyhow::Result<()> {
    let on_disk: HashSet<&str> = frames.iter().map(|f| f.rel_path.as_str()).collect();
    let mut steps = 0usize;
    let pause = |steps: &mut usize| {
        *steps += 1;
        token.is_some() && (*steps).is_multiple_of(INDEX_BATCH)
    };
    for (id, path) in &rows {
        // `exists` again: the file may have been written after the folder was listed.
        if !on_disk.contains(path.as_str()) && !p.store.exists(path).await {
            db::snapshots::delete(p.pool, id).await?;
            report.rows_without_file_removed += 1;
        }
        if pause(&mut steps) {
            if token.is_some_and(CancellationToken::is_cancelled) {
                return Ok(());
            }
            tokio::task::yield_now().await;
        }
    }
    let known: HashMap<&str, &str> = rows
        .iter()
        .map(|(id, path)| (path.as_str(), id.as_str()))
        .collect();
    let mut batch = Vec::new();
    for frame in frames
        .iter()
        .filter(|f| !known.contains_key(f.rel_path.as_str()))
    {
        let bytes = match p.store.read(&frame.rel_path).await {
            Ok(b) => b,
            // Removed meanwhile (retention, or the camera deleted): nothing to index.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e.into()),
        };
        match jpeg::validate(&bytes) {
            Ok((w, h)) => {
                batch.push(Snapshot {
                    id: new_id("snp"),
                    camera_id: camera.clone(),
                    schedule_id: None,
                    path: frame.rel_path.clone(),
                    taken_at: frame.taken_at,
                    size_bytes: bytes.len() as i64,
                    width: Some(i64::from(w)),
                    height: Some(i64::from(h)),
                    created_at: p.clock.now().trunc_subsecs(3),
                    tag: None,
                });
                if batch.len() >= INDEX_BATCH {
                    report.files_reindexed += batch.len() as u64;
                    p.writer.index(std::mem::take(&mut batch)).await?;
                }
            }
            Err(_) => {
                p.store.remove(&frame.rel_path).await?;
                report.damaged_frames_removed += 1;
            }
        }
        if pause(&mut steps) {
            if token.is_some_and(CancellationToken::is_cancelled) {
                break;
            }
            tokio::task::yield_now().await;
        }
    }
    report.files_reindexed += batch.len() as u64;
    if !batch.is_empty() {
        p.writer.index(batch).await?;
    }
    Ok(())
}
