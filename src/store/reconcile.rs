//! Start-up reconciliation (DESIGN.md §8): after any crash, make every row have its file and
//! every file its row. Temporary files are removed; rows whose file is missing are removed;
//! files with no row are re-indexed when they are a valid JPEG with one of our names under a
//! known camera, and removed otherwise. Runs before the scheduler starts, so nothing else writes.

use std::collections::HashSet;

use chrono::Utc;

use super::{parse_file_name, FrameStore, TMP_PREFIX};
use crate::capture::jpeg;
use crate::db::{self, Pool};
use crate::models::{new_id, CameraId, Snapshot};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReconcileReport {
    pub temp_files_removed: u64,
    pub rows_without_file_removed: u64,
    pub files_reindexed: u64,
    pub files_removed: u64,
}

pub async fn reconcile(store: &FrameStore, pool: &Pool) -> anyhow::Result<ReconcileReport> {
    let mut report = ReconcileReport::default();
    let rows = db::snapshots::all_paths(pool).await?;
    let mut known: HashSet<String> = HashSet::with_capacity(rows.len());
    for (id, path) in rows {
        if tokio::fs::try_exists(store.abs(&path))
            .await
            .unwrap_or(true)
        {
            known.insert(path);
        } else {
            db::snapshots::delete(pool, &id).await?;
            report.rows_without_file_removed += 1;
        }
    }
    let cameras: HashSet<String> = db::cameras::ids(pool).await?.into_iter().collect();

    let mut top = match tokio::fs::read_dir(store.dir()).await {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(report),
        Err(e) => return Err(e.into()),
    };
    while let Some(entry) = top.next_entry().await? {
        let name = entry.file_name().to_string_lossy().into_owned();
        let ft = entry.file_type().await?;
        if !ft.is_dir() {
            if name.starts_with(TMP_PREFIX) {
                tokio::fs::remove_file(entry.path()).await?;
                report.temp_files_removed += 1;
            }
            continue;
        }
        let camera = CameraId::parse(&name)
            .ok()
            .filter(|c| cameras.contains(c.as_str()));
        let mut files = tokio::fs::read_dir(entry.path()).await?;
        while let Some(f) = files.next_entry().await? {
            let fname = f.file_name().to_string_lossy().into_owned();
            let rel = format!("{name}/{fname}");
            if !f.file_type().await?.is_file() {
                continue;
            }
            if fname.starts_with(TMP_PREFIX) {
                tokio::fs::remove_file(f.path()).await?;
                report.temp_files_removed += 1;
                continue;
            }
            if known.contains(&rel) {
                continue;
            }
            let reindexed = match (&camera, parse_file_name(&fname)) {
                (Some(cam), Some(taken_at)) => {
                    let bytes = tokio::fs::read(f.path()).await?;
                    match jpeg::validate(&bytes) {
                        Ok((w, h)) => {
                            db::snapshots::insert(
                                pool,
                                &Snapshot {
                                    id: new_id("snp"),
                                    camera_id: cam.clone(),
                                    schedule_id: None,
                                    path: rel.clone(),
                                    taken_at,
                                    size_bytes: bytes.len() as i64,
                                    width: Some(i64::from(w)),
                                    height: Some(i64::from(h)),
                                    created_at: Utc::now(),
                                },
                            )
                            .await?;
                            true
                        }
                        Err(_) => false,
                    }
                }
                _ => false,
            };
            if reindexed {
                report.files_reindexed += 1;
            } else {
                tokio::fs::remove_file(f.path()).await?;
                report.files_removed += 1;
            }
        }
        if camera.is_none() {
            // A deleted camera's directory: now empty of frames.
            let _ = tokio::fs::remove_dir(entry.path()).await;
        }
    }
    Ok(report)
}
