//! Where frame bytes live: the local filesystem under snapshots_dir, one directory per camera
//! (`snapshots_dir/{camera_id}/{YYYYmmddTHHMMSSfffZ}.jpg`; the id is a slug, so always a safe
//! directory name).
//!
//! Invariant (DESIGN.md §8): a final name only ever holds a complete JPEG. A frame is written to
//! a temporary name (`.tmp-…`) in its camera's directory, optionally fsynced, then linked to its
//! final name — which fails rather than overwrites, so two frames in one millisecond both survive
//! (`…Z-1.jpg`) — and the temporary name removed. The database row is written only after that
//! (by the caller), so a crash leaves at worst a file without a row or a stray temp file, which
//! reconciliation (`ops::reconcile`) cleans up. Disk full is a [`StoreError::DiskFull`], never a
//! partial file.

mod scan;

pub use scan::{scan_folder, scan_top, CameraFolder, FolderEntry, FrameFile, TempFile, TopLevel};

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDateTime, Utc};

use crate::models::CameraId;

/// Prefix of temporary files: `.tmp-{16 hex digits}` for a frame being written,
/// `.tmp-health-{16 hex digits}` for the health check's probe (see [`is_temp_name`]).
pub const TMP_PREFIX: &str = ".tmp-";

/// Is `name` exactly one of the temporary names the store makes? Only these are debris it may
/// remove; a `.tmp-notes` an operator left is not ours.
pub fn is_temp_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix(TMP_PREFIX) else {
        return false;
    };
    let hex = rest.strip_prefix("health-").unwrap_or(rest);
    hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the disk holding the snapshots directory is full ({0})")]
    DiskFull(String),
    #[error("cannot write the frame: {0}")]
    Io(String),
}

/// A frame file in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    /// Relative to snapshots_dir: `{camera_id}/{file}`.
    pub rel_path: String,
    pub size: u64,
}

/// The frame files of every camera.
#[derive(Debug, Clone)]
pub struct FrameStore {
    dir: PathBuf,
    fsync: bool,
}

impl FrameStore {
    pub fn new(dir: PathBuf, fsync: bool) -> FrameStore {
        FrameStore { dir, fsync }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Absolute path of a stored frame.
    pub fn abs(&self, rel_path: &str) -> PathBuf {
        self.dir.join(rel_path)
    }

    /// Write `bytes` atomically as the frame of `camera` taken at `taken_at`.
    pub async fn write_frame(
        &self,
        camera: &CameraId,
        taken_at: DateTime<Utc>,
        bytes: bytes::Bytes,
    ) -> Result<StoredFile, StoreError> {
        let store = self.clone();
        let camera = camera.clone();
        tokio::task::spawn_blocking(move || store.write_frame_blocking(&camera, taken_at, &bytes))
            .await
            .map_err(|e| StoreError::Io(format!("writer task failed: {e}")))?
    }

    /// [`FrameStore::write_frame`] on the calling thread, which it blocks for the file's I/O.
    pub fn write_frame_blocking(
        &self,
        camera: &CameraId,
        taken_at: DateTime<Utc>,
        bytes: &[u8],
    ) -> Result<StoredFile, StoreError> {
        write_atomic(
            &camera_dir(&self.dir, camera),
            camera,
            taken_at,
            bytes,
            self.fsync,
        )
    }

    /// List the top level of snapshots_dir (see [`scan_top`]), off the async threads.
    pub async fn scan_top(&self) -> std::io::Result<TopLevel> {
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || scan_top(&dir))
            .await
            .map_err(std::io::Error::other)?
    }

    /// List one camera's folder (see [`scan_folder`]), off the async threads.
    pub async fn scan_folder(&self, camera: &CameraId) -> std::io::Result<CameraFolder> {
        let (dir, camera) = (self.dir.clone(), camera.clone());
        tokio::task::spawn_blocking(move || scan_folder(&dir, &camera))
            .await
            .map_err(std::io::Error::other)?
    }

    /// The bytes of a stored frame.
    pub async fn read(&self, rel_path: &str) -> std::io::Result<Vec<u8>> {
        tokio::fs::read(self.abs(rel_path)).await
    }

    /// The bytes of a stored frame for serving: neither the camera's folder nor the file may be
    /// a symlink, and the file must be a regular file (`/media` serves only what the store
    /// wrote, DESIGN.md §11).
    pub async fn read_frame(&self, rel_path: &str) -> std::io::Result<bytes::Bytes> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.abs(rel_path);
        let dir_is_link = match path.parent() {
            Some(d) => tokio::fs::symlink_metadata(d)
                .await
                .map(|m| m.file_type().is_symlink())
                .unwrap_or(true),
            None => true,
        };
        if dir_is_link {
            return Err(std::io::Error::other("the camera's folder is a symlink"));
        }
        let read = tokio::task::spawn_blocking(move || {
            use std::io::Read;
            let mut f = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(nix::libc::O_NOFOLLOW)
                .open(&path)?;
            if !f.metadata()?.is_file() {
                return Err(std::io::Error::other("not a regular file"));
            }
            let mut buf = Vec::new();
            f.read_to_end(&mut buf)?;
            Ok::<_, std::io::Error>(buf)
        })
        .await
        .map_err(std::io::Error::other)??;
        Ok(bytes::Bytes::from(read))
    }

    /// Does a stored frame's file exist? An error other than "not found" counts as yes, so a
    /// passing fault never makes a caller give up on a frame.
    pub async fn exists(&self, rel_path: &str) -> bool {
        tokio::fs::try_exists(self.abs(rel_path))
            .await
            .unwrap_or(true)
    }

    /// Remove one of the store's temporary files (a path from a [`Scan`]). `Ok(false)` if it was
    /// already gone. Refuses any other name.
    pub async fn remove_temp(&self, path: &Path) -> std::io::Result<bool> {
        let ours = path
            .file_name()
            .is_some_and(|n| is_temp_name(&n.to_string_lossy()));
        if !ours || !path.starts_with(&self.dir) {
            return Err(std::io::Error::other(format!(
                "{} is not one of the store's temporary files",
                path.display()
            )));
        }
        match tokio::fs::remove_file(path).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Delete a stored frame. `Ok(false)` if it was already gone.
    pub async fn remove(&self, rel_path: &str) -> std::io::Result<bool> {
        match tokio::fs::remove_file(self.abs(rel_path)).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }
}

fn write_atomic(
    dir: &Path,
    camera: &CameraId,
    taken_at: DateTime<Utc>,
    bytes: &[u8],
    fsync: bool,
) -> Result<StoredFile, StoreError> {
    let classify = |e: std::io::Error| {
        if e.raw_os_error() == Some(nix::libc::ENOSPC)
            || e.raw_os_error() == Some(nix::libc::EDQUOT)
        {
            StoreError::DiskFull(e.to_string())
        } else {
            StoreError::Io(e.to_string())
        }
    };
    std::fs::create_dir_all(dir).map_err(classify)?;
    let tmp = dir.join(format!("{TMP_PREFIX}{:016x}", rand::random::<u64>()));
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        if fsync {
            f.sync_all()?;
        }
        Ok::<_, std::io::Error>(())
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(classify(e));
    }
    let mut n = 0u32;
    let name = loop {
        let name = file_name(taken_at, n);
        match std::fs::hard_link(&tmp, dir.join(&name)) {
            Ok(()) => break name,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => n += 1,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(classify(e));
            }
        }
    };
    let _ = std::fs::remove_file(&tmp);
    if fsync {
        // Make the new name durable.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(StoredFile {
        rel_path: format!("{camera}/{name}"),
        size: bytes.len() as u64,
    })
}

/// `20260102T030405678Z.jpg`, or `…Z-N.jpg` for the Nth frame in the same millisecond.
pub fn file_name(t: DateTime<Utc>, n: u32) -> String {
    let stamp = t.format("%Y%m%dT%H%M%S%3fZ");
    if n == 0 {
        format!("{stamp}.jpg")
    } else {
        format!("{stamp}-{n}.jpg")
    }
}

/// The capture time in a frame file name, if the name is exactly one of ours.
pub fn parse_file_name(name: &str) -> Option<DateTime<Utc>> {
    let stem = name.strip_suffix(".jpg")?;
    let (stamp, suffix) = match stem.split_once('-') {
        Some((s, n)) => (s, Some(n)),
        None => (stem, None),
    };
    if let Some(n) = suffix {
        if n.is_empty()
            || n.len() > 4
            || !n.bytes().all(|b| b.is_ascii_digit())
            || n.starts_with('0')
        {
            return None;
        }
    }
    // Fixed shape: 8 digits, T, 9 digits, Z.
    let b = stamp.as_bytes();
    if b.len() != 19 || b[8] != b'T' || b[18] != b'Z' {
        return None;
    }
    if !b[..8].iter().chain(&b[9..18]).all(u8::is_ascii_digit) {
        return None;
    }
    let naive = NaiveDateTime::parse_from_str(&stamp[..18], "%Y%m%dT%H%M%S%3f").ok()?;
    Some(naive.and_utc())
}

/// The directory of one camera's frames.
pub fn camera_dir(snapshots_dir: &Path, id: &CameraId) -> PathBuf {
    snapshots_dir.join(id.as_str())
}

/// Can a file be created in `dir` right now?
pub async fn check_writable(dir: &Path) -> std::io::Result<()> {
    let probe = dir.join(format!("{TMP_PREFIX}health-{:016x}", rand::random::<u64>()));
    tokio::fs::write(&probe, b"ok").await?;
    tokio::fs::remove_file(&probe).await
}

/// Bytes available to an unprivileged writer on the filesystem holding `dir`.
pub fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    let st = nix::sys::statvfs::statvfs(dir).map_err(std::io::Error::from)?;
    #[allow(clippy::useless_conversion)] // the field types differ between platforms
    Ok(u64::from(st.blocks_available()) * u64::from(st.fragment_size()))
}

/// What removing a camera's frames did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FolderRemoval {
    /// Frame-named and temporary files removed.
    pub removed: u64,
    /// Entries Heldar did not write, left in place (the folder stays while they are there).
    pub kept: u64,
}

/// Remove every frame of a camera: its frame-named and temporary files, then its folder if
/// nothing else is in it. Files Heldar did not write are left where they are, and so is the
/// folder holding them. A folder that is already gone is fine.
pub async fn remove_camera_frames(
    snapshots_dir: &Path,
    id: &CameraId,
) -> std::io::Result<FolderRemoval> {
    let dir = camera_dir(snapshots_dir, id);
    tokio::task::spawn_blocking(move || {
        let mut out = FolderRemoval::default();
        let entries = match std::fs::read_dir(&dir) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let ours = entry.file_type()?.is_file()
                && (is_temp_name(&name) || parse_file_name(&name).is_some());
            if !ours {
                out.kept += 1;
                continue;
            }
            match std::fs::remove_file(entry.path()) {
                Ok(()) => out.removed += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        if out.kept == 0 {
            match std::fs::remove_dir(&dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(out)
    })
    .await
    .map_err(std::io::Error::other)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_round_trip_and_nothing_else_parses() {
        let t = DateTime::parse_from_rfc3339("2026-01-02T03:04:05.678Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(file_name(t, 0), "20260102T030405678Z.jpg");
        assert_eq!(file_name(t, 2), "20260102T030405678Z-2.jpg");
        assert_eq!(parse_file_name("20260102T030405678Z.jpg"), Some(t));
        assert_eq!(parse_file_name("20260102T030405678Z-2.jpg"), Some(t));
        for bad in [
            "20260102T030405678Z.jpeg",
            "20260102T030405678.jpg",
            "../20260102T030405678Z.jpg",
            "20261302T030405678Z.jpg",
            "20260102T030405678Z-.jpg",
            "20260102T030405678Z-01.jpg",
            "x20260102T030405678Z.jpg",
            ".tmp-1234",
            "20260102T030405678Z-1-2.jpg",
            "",
            "２0260102T030405678Z.jpg",
        ] {
            assert_eq!(parse_file_name(bad), None, "{bad}");
        }
    }

    #[tokio::test]
    async fn frames_in_the_same_millisecond_both_survive_and_no_temp_file_remains() {
        let dir = tempfile::tempdir().unwrap();
        let store = FrameStore::new(dir.path().to_path_buf(), true);
        let cam = CameraId::parse("c1").unwrap();
        let t = Utc::now();
        let a = store
            .write_frame(&cam, t, bytes::Bytes::from_static(b"first"))
            .await
            .unwrap();
        let b = store
            .write_frame(&cam, t, bytes::Bytes::from_static(b"second"))
            .await
            .unwrap();
        assert_ne!(a.rel_path, b.rel_path);
        assert_eq!(std::fs::read(store.abs(&a.rel_path)).unwrap(), b"first");
        assert_eq!(std::fs::read(store.abs(&b.rel_path)).unwrap(), b"second");
        let names: Vec<String> = std::fs::read_dir(dir.path().join("c1"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(
            names.iter().all(|n| parse_file_name(n).is_some()),
            "{names:?}"
        );
    }

    #[test]
    fn only_the_stores_own_temporary_names_are_temporary() {
        assert!(is_temp_name(".tmp-0123456789abcdef"));
        assert!(is_temp_name(".tmp-health-0123456789abcdef"));
        for not in [
            ".tmp-notes",
            ".tmp-0123",
            ".tmp-0123456789abcdefg",
            "tmp-0123456789abcdef",
            ".tmp-health-xyz",
            ".tmp-",
            "",
        ] {
            assert!(!is_temp_name(not), "{not}");
        }
    }

    #[tokio::test]
    async fn removing_a_cameras_frames_keeps_what_heldar_did_not_write() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let cam = CameraId::parse("gate").unwrap();
        std::fs::create_dir_all(d.join("gate/plans")).unwrap();
        std::fs::write(d.join("gate/20260102T030405678Z.jpg"), b"x").unwrap();
        std::fs::write(d.join("gate/20260102T030405678Z-1.jpg"), b"x").unwrap();
        std::fs::write(d.join("gate/.tmp-00000000000000ff"), b"x").unwrap();
        std::fs::write(d.join("gate/README.txt"), b"keep me").unwrap();
        let r = remove_camera_frames(d, &cam).await.unwrap();
        assert_eq!(
            r,
            FolderRemoval {
                removed: 3,
                kept: 2
            }
        );
        assert_eq!(
            std::fs::read(d.join("gate/README.txt")).unwrap(),
            b"keep me"
        );
        assert!(d.join("gate/plans").is_dir());

        // With only its own files, the folder goes too; a missing one is fine.
        let other = CameraId::parse("yard").unwrap();
        std::fs::create_dir_all(d.join("yard")).unwrap();
        std::fs::write(d.join("yard/20260102T030405678Z.jpg"), b"x").unwrap();
        let r = remove_camera_frames(d, &other).await.unwrap();
        assert_eq!(
            r,
            FolderRemoval {
                removed: 1,
                kept: 0
            }
        );
        assert!(!d.join("yard").exists());
        assert_eq!(
            remove_camera_frames(d, &other).await.unwrap(),
            FolderRemoval::default()
        );
    }
}
