//! Start-up reconciliation: after any crash, every row has its file and every file Heldar wrote
//! has its row.
//!
//! What it may touch is exactly what Heldar writes (the store's rule, `store` module docs): its
//! temporary files, which it removes, and frame-named files inside a *registered* camera's
//! folder, which it re-indexes (a valid JPEG) or removes (a damaged one: the store only ever
//! puts complete JPEGs under a final name, so a damaged one is the debris of a lost write).
//! Rows whose file is gone are removed.
//!
//! Everything else is left where it is and reported once per start with a WARN naming the
//! folder: files and folders an operator keeps in snapshots_dir, and frame-named files in a
//! folder that belongs to no registered camera (a deleted camera whose folder held files Heldar
//! did not write, or another install's frames). Those are not deleted because Heldar cannot
//! tell them from an operator's copy; re-creating the camera with that id re-indexes them at the
//! next start.
//!
//! Runs before the scheduler starts, so nothing else writes frames meanwhile.

use std::collections::HashSet;

use chrono::SubsecRound;

use crate::capture::jpeg;
use crate::clock::Clock;
use crate::db::{self, writer::Writer, Pool};
use crate::models::{new_id, Snapshot};
use crate::store::FrameStore;

/// What a reconciliation did; logged at start-up.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReconcileReport {
    pub temp_files_removed: u64,
    pub rows_without_file_removed: u64,
    pub files_reindexed: u64,
    /// Frame-named files of registered cameras that were not valid JPEGs.
    pub damaged_frames_removed: u64,
    /// Entries Heldar did not write (or cannot claim), left in place.
    pub entries_left_alone: u64,
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

/// Frames re-indexed per write.
const INDEX_BATCH: usize = 512;

pub async fn reconcile(
    store: &FrameStore,
    pool: &Pool,
    writer: &Writer,
    clock: &dyn Clock,
) -> anyhow::Result<ReconcileReport> {
    let mut report = ReconcileReport::default();
    let scan = store.scan().await?;
    for tmp in &scan.temp_files {
        if store.remove_temp(tmp).await? {
            report.temp_files_removed += 1;
        }
    }
    let on_disk: HashSet<&str> = scan
        .folders
        .iter()
        .flat_map(|f| f.frames.iter().map(|fr| fr.rel_path.as_str()))
        .collect();
    let mut known: HashSet<String> = HashSet::new();
    for (id, path) in db::snapshots::all_paths(pool).await? {
        if on_disk.contains(path.as_str()) || store.exists(&path).await {
            known.insert(path);
        } else {
            db::snapshots::delete(pool, &id).await?;
            report.rows_without_file_removed += 1;
        }
    }
    let cameras: HashSet<String> = db::cameras::ids(pool).await?.into_iter().collect();

    if !scan.foreign.is_empty() {
        report.entries_left_alone += scan.foreign.len() as u64;
        tracing::warn!(
            folder = %store.dir().display(),
            entries = scan.foreign.len(),
            "the snapshots folder holds entries Heldar did not write ({}); they are left alone",
            examples(&scan.foreign)
        );
    }
    let mut rows = Vec::new();
    for folder in &scan.folders {
        let path = store.dir().join(folder.camera.as_str());
        if !cameras.contains(folder.camera.as_str()) {
            let n = folder.frames.len() + folder.foreign.len();
            report.entries_left_alone += n as u64;
            if n > 0 {
                tracing::warn!(
                    folder = %path.display(),
                    frame_files = folder.frames.len(),
                    other_entries = folder.foreign.len(),
                    "no camera {:?} is registered, so this folder is left alone; re-create the \
                     camera to re-index its frames at the next start, or delete the folder",
                    folder.camera.as_str()
                );
            }
            continue;
        }
        if !folder.foreign.is_empty() {
            report.entries_left_alone += folder.foreign.len() as u64;
            tracing::warn!(
                folder = %path.display(),
                entries = folder.foreign.len(),
                "camera {}'s folder holds entries Heldar did not write ({}); they are left alone",
                folder.camera,
                examples(&folder.foreign)
            );
        }
        for frame in folder
            .frames
            .iter()
            .filter(|f| !known.contains(&f.rel_path))
        {
            let bytes = store.read(&frame.rel_path).await?;
            match jpeg::validate(&bytes) {
                Ok((w, h)) => {
                    rows.push(Snapshot {
                        id: new_id("snp"),
                        camera_id: folder.camera.clone(),
                        schedule_id: None,
                        path: frame.rel_path.clone(),
                        taken_at: frame.taken_at,
                        size_bytes: bytes.len() as i64,
                        width: Some(i64::from(w)),
                        height: Some(i64::from(h)),
                        created_at: clock.now().trunc_subsecs(3),
                    });
                    if rows.len() >= INDEX_BATCH {
                        report.files_reindexed += rows.len() as u64;
                        writer.index(std::mem::take(&mut rows)).await?;
                    }
                }
                Err(_) => {
                    store.remove(&frame.rel_path).await?;
                    report.damaged_frames_removed += 1;
                }
            }
        }
    }
    report.files_reindexed += rows.len() as u64;
    if !rows.is_empty() {
        writer.index(rows).await?;
    }
    Ok(report)
}
