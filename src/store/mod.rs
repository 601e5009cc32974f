//! Where frame bytes live: the local filesystem under snapshots_dir, one directory per camera
//! (`snapshots_dir/{camera_id}/…`; the id is a slug, so it is always a safe directory name).
//!
//! This module owns the disk-side facts the rest of Heldar asks about: is the directory writable,
//! how much space is free, and removing a camera's frames when the camera goes. Writing frames
//! (atomic temp-file-and-rename) arrives with the scheduler.

use std::path::{Path, PathBuf};

use crate::models::CameraId;

/// The directory of one camera's frames.
pub fn camera_dir(snapshots_dir: &Path, id: &CameraId) -> PathBuf {
    snapshots_dir.join(id.as_str())
}

/// Can a file be created in `dir` right now?
pub async fn check_writable(dir: &Path) -> std::io::Result<()> {
    let probe = dir.join(format!(".health-{:016x}.tmp", rand::random::<u64>()));
    tokio::fs::write(&probe, b"ok").await?;
    tokio::fs::remove_file(&probe).await
}

/// Bytes available to an unprivileged writer on the filesystem holding `dir`.
pub fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    let st = nix::sys::statvfs::statvfs(dir).map_err(std::io::Error::from)?;
    #[allow(clippy::useless_conversion)] // the field types differ between platforms
    Ok(u64::from(st.blocks_available()) * u64::from(st.fragment_size()))
}

/// Remove every frame of a camera. A directory that is already gone is fine.
pub async fn remove_camera_dir(snapshots_dir: &Path, id: &CameraId) -> std::io::Result<()> {
    match tokio::fs::remove_dir_all(camera_dir(snapshots_dir, id)).await {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
