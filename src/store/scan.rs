//! What is in snapshots_dir, sorted into what the store wrote and what it did not.
//!
//! The store writes exactly two kinds of names: temporary files ([`super::is_temp_name`]) and
//! frame files ([`super::parse_file_name`]) inside a folder named like a camera id. A scan
//! reports those, and names everything else only so it can be reported: an operator may point
//! `HELDAR_SNAPSHOTS_DIR` at a folder that already holds their own files, and Heldar must never
//! delete or change them. The scan itself only reads directories; it never opens a file.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::{is_temp_name, parse_file_name};
use crate::models::CameraId;

/// The contents of snapshots_dir.
#[derive(Debug, Default)]
pub struct Scan {
    /// The store's temporary files (debris of interrupted writes), at the top or in a folder.
    pub temp_files: Vec<PathBuf>,
    /// Folders whose name is a camera id, registered or not.
    pub folders: Vec<CameraFolder>,
    /// Top-level entries the store did not write (files, folders not named like a camera id,
    /// symlinks), by name.
    pub foreign: Vec<String>,
}

/// One folder named like a camera id.
#[derive(Debug)]
pub struct CameraFolder {
    pub camera: CameraId,
    /// Its frame-named regular files.
    pub frames: Vec<FrameFile>,
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

/// List snapshots_dir (blocking the calling thread for directory reads only). A missing
/// snapshots_dir is an empty scan.
pub fn scan(dir: &Path) -> std::io::Result<Scan> {
    let mut out = Scan::default();
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
        if ft.is_file() && is_temp_name(&name) {
            out.temp_files.push(entry.path());
            continue;
        }
        let camera = match CameraId::parse(&name) {
            Ok(c) if ft.is_dir() => c,
            _ => {
                out.foreign.push(name);
                continue;
            }
        };
        let mut folder = CameraFolder {
            camera,
            frames: Vec::new(),
            foreign: Vec::new(),
        };
        for f in std::fs::read_dir(entry.path())? {
            let f = f?;
            let fname = f.file_name().to_string_lossy().into_owned();
            if !f.file_type()?.is_file() {
                folder.foreign.push(fname);
            } else if is_temp_name(&fname) {
                out.temp_files.push(f.path());
            } else if let Some(taken_at) = parse_file_name(&fname) {
                folder.frames.push(FrameFile {
                    rel_path: format!("{name}/{fname}"),
                    taken_at,
                });
            } else {
                folder.foreign.push(fname);
            }
        }
        out.folders.push(folder);
    }
    Ok(out)
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
        let s = scan(d).unwrap();
        assert_eq!(s.temp_files.len(), 2, "{:?}", s.temp_files);
        let mut foreign = s.foreign.clone();
        foreign.sort();
        assert_eq!(foreign, ["Holiday 2025", "notes.txt"]);
        assert_eq!(s.folders.len(), 1);
        let gate = &s.folders[0];
        assert_eq!(gate.camera.as_str(), "gate");
        assert_eq!(gate.frames.len(), 1);
        assert_eq!(gate.frames[0].rel_path, "gate/20260102T030405678Z.jpg");
        let mut inner = gate.foreign.clone();
        inner.sort();
        assert_eq!(inner, [".tmp-notes", "README.txt", "old"]);
    }

    #[test]
    fn a_missing_directory_is_an_empty_scan() {
        let dir = tempfile::tempdir().unwrap();
        let s = scan(&dir.path().join("nope")).unwrap();
        assert!(s.temp_files.is_empty() && s.folders.is_empty() && s.foreign.is_empty());
    }
}
