//! What is in snapshots_dir, sorted into what the store wrote and what it did not.
//!
//! The store writes exactly two kinds of names: temporary files ([`super::is_temp_name`]) and
//! frame files ([`super::parse_file_name`]) inside a folder named like a camera id. A scan
//! reports those, and names everything else only so it can be reported: an operator may point
//! `HELDAR_SNAPSHOTS_DIR` at a folder that already holds their own files, and Heldar must never
//! delete or change them. The scan itself only reads directories (and the metadata of folders
//! and temporary files); it never opens a file.
//!
//! It comes in two steps so that a caller never holds every frame name at once: [`scan_top`]
//! lists snapshots_dir itself (one entry per camera folder, with the folder's modification time,
//! so a caller can skip folders nothing was written to since a given moment), and
//! [`scan_folder`] lists one camera's folder.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use chrono::{DateTime, Utc};

use super::{is_temp_name, parse_file_name};
use crate::models::CameraId;

/// The top level of snapshots_dir.
#[derive(Debug, Default)]
pub struct TopLevel {
    /// The store's temporary files at the top (the health check's probes).
    pub temp_files: Vec<TempFile>,
    /// Folders whose name is a camera id, registered or not.
    pub folders: Vec<FolderEntry>,
    /// Top-level entries the store did not write (files, folders not named like a camera id,
    /// symlinks), by name.
    pub foreign: Vec<String>,
}

/// A folder named like a camera id.
#[derive(Debug, Clone)]
pub struct FolderEntry {
    pub camera: CameraId,
    /// When an entry was last added to or removed from it (`None` if the system cannot say).
    pub modified: Option<SystemTime>,
}

/// One of the store's temporary files.
#[derive(Debug, Clone)]
pub struct TempFile {
    pub path: PathBuf,
    /// Its modification time (`None` if the system cannot say).
    pub modified: Option<SystemTime>,
}

/// One camera's folder.
#[derive(Debug)]
pub struct CameraFolder {
    pub camera: CameraId,
    /// Its frame-named regular files.
    pub frames: Vec<FrameFile>,
    /// Its temporary files (debris of interrupted writes, or writes in progress).
    pub temp_files: Vec<TempFile>,
    /// Entries inside it the store did not write (other files, subfolders, symlinks), by name.
    pub foreign: Vec<String>,
}

/// A frame-named file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameFile {
    /// Relative to snapshots_dir: `{camera_id}/{file}`.
    pub rel_path: String,
    /// The capture time its name carries.
    pub taken_at: DateTime<Utc>,
}

fn temp_file(entry: &std::fs::DirEntry) -> TempFile {
    TempFile {
        path: entry.path(),
        modified: entry.metadata().and_then(|m| m.modified()).ok(),
    }
}

/// List the top level of snapshots_dir (blocking the calling thread). A missing snapshots_dir
/// is an empty listing.
pub fn scan_top(dir: &Path) -> std::io::Result<TopLevel> {
    let mut out = TopLevel::default();
    let top = match std::fs::read_dir(dir) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for entry in top {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // `file_type` does not follow symlinks: a link is never ours.
        let ft = entry.file_type()?;
        // The install marker is the store's own, neither a frame nor someone else's.
        if ft.is_file() && name == super::MARKER {
            continue;
        }
        if ft.is_file() && is_temp_name(&name) {
            out.temp_files.push(temp_file(&entry));
            continue;
        }
        match CameraId::parse(&name) {
            Ok(camera) if ft.is_dir() => out.folders.push(FolderEntry {
                camera,
                modified: entry.metadata().and_then(|m| m.modified()).ok(),
            }),
            _ => out.foreign.push(name),
        }
    }
    Ok(out)
}

/// List one camera's folder (blocking the calling thread). A missing folder, or one that is
/// not a real folder (a symlink), is an empty listing: nothing in it is the store's.
pub fn scan_folder(dir: &Path, camera: &CameraId) -> std::io::Result<CameraFolder> {
    let mut folder = CameraFolder {
        camera: camera.clone(),
        frames: Vec::new(),
        temp_files: Vec::new(),
        foreign: Vec::new(),
    };
    let path = dir.join(camera.as_str());
    match std::fs::symlink_metadata(&path) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Ok(folder),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(folder),
        Err(e) => return Err(e),
    }
    for f in std::fs::read_dir(&path)? {
        let f = f?;
        let fname = f.file_name().to_string_lossy().into_owned();
        if !f.file_type()?.is_file() {
            folder.foreign.push(fname);
        } else if is_temp_name(&fname) {
            folder.temp_files.push(temp_file(&f));
        } else if let Some(taken_at) = parse_file_name(&fname) {
            folder.frames.push(FrameFile {
                rel_path: format!("{camera}/{fname}"),
                taken_at,
            });
        } else {
            folder.foreign.push(fname);
        }
    }
    Ok(folder)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_the_stores_names_from_everything_else() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("gate")).unwrap();
        std::fs::create_dir_all(d.join("Holiday 2025")).unwrap();
        std::fs::write(d.join("notes.txt"), b"x").unwrap();
        std::fs::write(d.join(".tmp-health-00000000000000aa"), b"x").unwrap();
        std::fs::write(d.join("gate/20260102T030405678Z.jpg"), b"x").unwrap();
        std::fs::write(d.join("gate/.tmp-00000000000000ff"), b"x").unwrap();
        std::fs::write(d.join("gate/.tmp-notes"), b"x").unwrap();
        std::fs::write(d.join("gate/README.txt"), b"x").unwrap();
        std::fs::create_dir(d.join("gate/old")).unwrap();
        let s = scan_top(d).unwrap();
        assert_eq!(s.temp_files.len(), 1, "{:?}", s.temp_files);
        assert!(s.temp_files[0].modified.is_some());
        let mut foreign = s.foreign.clone();
        foreign.sort();
        assert_eq!(foreign, ["Holiday 2025", "notes.txt"]);
        assert_eq!(s.folders.len(), 1);
        assert_eq!(s.folders[0].camera.as_str(), "gate");
        assert!(s.folders[0].modified.is_some());
        let gate = scan_folder(d, &s.folders[0].camera).unwrap();
        assert_eq!(gate.temp_files.len(), 1, "{:?}", gate.temp_files);
        assert_eq!(gate.frames.len(), 1);
        assert_eq!(gate.frames[0].rel_path, "gate/20260102T030405678Z.jpg");
        let mut inner = gate.foreign.clone();
        inner.sort();
        assert_eq!(inner, [".tmp-notes", "README.txt", "old"]);
    }

    #[test]
    fn a_missing_directory_is_an_empty_scan() {
        let dir = tempfile::tempdir().unwrap();
        let s = scan_top(&dir.path().join("nope")).unwrap();
        assert!(s.temp_files.is_empty() && s.folders.is_empty() && s.foreign.is_empty());
        let f = scan_folder(dir.path(), &CameraId::parse("gate").unwrap()).unwrap();
        assert!(f.frames.is_empty() && f.temp_files.is_empty() && f.foreign.is_empty());
    }
}
