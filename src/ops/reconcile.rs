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
//! Rows without a file are removed only while the storage looks like the one the database was
//! written with. A storage that is not mounted, or another one named by mistake, shows every
//! row as missing its file; removing them would empty the index in a second. So per camera,
//! when [`mass_missing`] says the frames missing are too many (the camera's listing is empty
//! while it has rows, or more than [`MISSING_HANDFUL`] and more than half of its rows are
//! missing), nothing of that camera is removed, and the pass ends with ONE ERROR naming the
//! storage and its setting (the counts in [`ReconcileReport::rows_kept_missing_file`], the
//! `heldar_storage_missing_frames` gauge). The install marker (`store::FrameStore::claim`)
//! stops another database's process before it gets here; this guard covers the storage of
//! the right install that is absent (docs/storage.md "One storage, one database").
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
    /// Rows whose file was missing and which were kept, because their camera's listing showed
    /// too many missing ([`mass_missing`]): the storage looks absent or wrong.
    pub rows_kept_missing_file: u64,
    /// The rows checked of the cameras counted in `rows_kept_missing_file`.
    pub rows_checked_of_kept: u64,
    /// Those cameras (the first few, for the ERROR).
    pub cameras_kept: Vec<String>,
}

/// Up to this many rows of one camera may be missing their files and be removed, even if that
/// is every row it has (a camera with few frames, some deleted by hand), as long as its
/// listing is not empty.
pub const MISSING_HANDFUL: usize = 5;

/// Is `missing` of `rows` rows without a file too many to be frames deleted one by one? Yes
/// when the camera's listing held nothing at all (`listing_empty`: its folder or prefix is
/// gone) while it has rows, or when more than [`MISSING_HANDFUL`] and more than half are
/// missing. Then its rows are kept: the storage is far more likely unmounted or the wrong one
/// than emptied by retention's rules, which delete rows themselves.
pub fn mass_missing(missing: usize, rows: usize, listing_empty: bool) -> bool {
    missing > 0
        && ((listing_empty && missing == rows) || (missing > MISSING_HANDFUL && missing * 2 > rows))
}

/// The setting that names the storage, for the ERROR.
fn setting_of(store: &FrameStore) -> &'static str {
    match store.bucket() {
        Some(_) => "HELDAR_STORAGE_URL",
        None => "HELDAR_SNAPSHOTS_DIR / HELDAR_STORAGE_URL",
    }
}

/// The one ERROR of a pass that kept rows whose frames are missing.
fn log_kept(store: &FrameStore, report: &ReconcileReport) {
    if report.rows_kept_missing_file == 0 {
        return;
    }
    tracing::error!(
        storage = %store.location(),
        missing = report.rows_kept_missing_file,
        rows = report.rows_checked_of_kept,
        cameras = %report.cameras_kept.join(","),
        "the frame storage {} is missing {} of {} frames the database lists (cameras {}); \
         their rows are kept — is {} the storage this database was written with (an unmounted \
         disk?)",
        store.location(),
        report.rows_kept_missing_file,
        report.rows_checked_of_kept,
        examples(&report.cameras_kept),
        setting_of(store)
    );
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
        let empty = listing_empty(&folder);
        remove_temps(p.store, &folder.temp_files, None, &mut report).await?;
        let frames: Vec<FrameFile> = folder
            .frames
            .into_iter()
            .filter(|f| f.taken_at >= since)
            .collect();
        let rows = db::snapshots::camera_paths(p.pool, &entry.camera, Some(since), None).await?;
        check_camera(p, &entry.camera, frames, rows, empty, None, &mut report).await?;
    }
    log_kept(p.store, &report);
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
        let empty = listing_empty(&folder);
        remove_temps(p.store, &folder.temp_files, Some(run_start), &mut report).await?;
        let frames: Vec<FrameFile> = folder
            .frames
            .into_iter()
            .filter(|f| f.taken_at < run_start)
            .collect();
        let rows = db::snapshots::camera_paths(p.pool, &camera, None, Some(run_start)).await?;
        check_camera(p, &camera, frames, rows, empty, Some(token), &mut report).await?;
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
    log_kept(p.store, &report);
    Ok(Some(report))
}

/// Did a camera's listing hold nothing at all (no folder, or an empty prefix)?
fn listing_empty(folder: &crate::store::CameraFolder) -> bool {
    folder.frames.is_empty() && folder.temp_files.is_empty() && folder.foreign.is_empty()
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
/// damaged, removed — unless [`mass_missing`] says too many rows miss their files
/// (`listing_empty`: the camera's listing held nothing), when no row is removed and the
/// report counts them. With a `token` (the background pass) it yields every [`INDEX_BATCH`] checks
/// and stops early when cancelled.
async fn check_camera(
    p: Parts<'_>,
    camera: &CameraId,
    frames: Vec<FrameFile>,
    rows: Vec<(String, String)>,
    listing_empty: bool,
    token: Option<&CancellationToken>,
    report: &mut ReconcileReport,
) -> anyhow::Result<()> {
    let on_disk: HashSet<&str> = frames.iter().map(|f| f.rel_path.as_str()).collect();
    let mut steps = 0usize;
    let pause = |steps: &mut usize| {
        *steps += 1;
        token.is_some() && (*steps).is_multiple_of(INDEX_BATCH)
    };
    // Decided on the listing, before any row goes: a storage that is away must not cost the
    // index one row.
    let missing = rows
        .iter()
        .filter(|(_, path)| !on_disk.contains(path.as_str()))
        .count();
    let keep_rows = mass_missing(missing, rows.len(), listing_empty);
    if keep_rows {
        report.rows_kept_missing_file += missing as u64;
        report.rows_checked_of_kept += rows.len() as u64;
        report.cameras_kept.push(camera.to_string());
    }
    for (id, path) in rows.iter().filter(|_| !keep_rows) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_few_missing_frames_go_and_a_missing_storage_keeps_its_rows() {
        // One file deleted by hand, even a camera's only one, while its folder is there.
        assert!(!mass_missing(1, 1, false));
        assert!(!mass_missing(1, 100, false));
        // A handful is removed whatever the share; more than that only while under half.
        assert!(!mass_missing(MISSING_HANDFUL, MISSING_HANDFUL, false));
        assert!(!mass_missing(40, 100, false));
        assert!(!mass_missing(50, 100, false));
        assert!(mass_missing(51, 100, false));
        assert!(mass_missing(
            MISSING_HANDFUL + 1,
            MISSING_HANDFUL + 1,
            false
        ));
        // The camera's listing is empty (folder or prefix gone): every row is kept.
        assert!(mass_missing(1, 1, true));
        assert!(mass_missing(3, 3, true));
        assert!(!mass_missing(0, 0, true));
    }
}
