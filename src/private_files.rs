//! Owner-only permissions for what Heldar keeps private: the data directory and the database
//! (`heldar.db` and SQLite's `-wal`, `-shm` and `-journal` files beside it). The sealing key
//! (`secret.key`) is already written 0600 by `camera::seal`.
//!
//! The rule: a folder Heldar creates is created 0700 (the data dir, the snapshots dir, and any
//! missing parents of them); a folder that already exists is never chmodded — it may be shared
//! on purpose — but a data dir that other users can read or enter gets a WARN naming the fix.
//! The database file is created 0600 before SQLite opens it, so SQLite creates its `-wal` and
//! `-shm` files 0600 too (it gives them the database file's mode); database files left
//! group/world-readable by an older Heldar are tightened to 0600 at start-up, with an INFO line.

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Owner-only directory mode.
pub const DIR_MODE: u32 = 0o700;
/// Owner-only file mode.
pub const FILE_MODE: u32 = 0o600;

/// What [`ensure_dir`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirOrigin {
    /// Heldar created it (0700).
    Created,
    /// It was there already, with this mode (left as it is).
    Existing { mode: u32 },
}

/// Create `dir` (and missing parents) owner-only, or leave an existing one as it is.
pub fn ensure_dir(dir: &Path) -> std::io::Result<DirOrigin> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(DirOrigin::Existing {
            mode: m.permissions().mode() & 0o7777,
        }),
        Ok(_) => Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "it exists and is not a directory",
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(DIR_MODE)
                .create(dir)?;
            // Whatever the umask did.
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(DIR_MODE))?;
            Ok(DirOrigin::Created)
        }
        Err(e) => Err(e),
    }
}

/// The files of the SQLite database at `db`: the database and its sidecars.
pub fn database_files(db: &Path) -> Vec<PathBuf> {
    let mut files = vec![db.to_path_buf()];
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut name = db.as_os_str().to_os_string();
        name.push(suffix);
        files.push(PathBuf::from(name));
    }
    files
}

/// Create the database file 0600 if it does not exist yet, and tighten an existing database
/// and its sidecar files to 0600. Returns the files it tightened.
pub fn secure_database(db: &Path) -> std::io::Result<Vec<PathBuf>> {
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(db)
    {
        Ok(_) => {
            std::fs::set_permissions(db, std::fs::Permissions::from_mode(FILE_MODE))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let mut tightened = Vec::new();
    for f in database_files(db) {
        let Ok(m) = std::fs::metadata(&f) else {
            continue;
        };
        if m.is_file() && m.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(FILE_MODE))?;
            tightened.push(f);
        }
    }
    Ok(tightened)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_dirs_are_owner_only_and_existing_ones_are_left_alone() {
        let root = tempfile::tempdir().unwrap();
        let shared = root.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(
            ensure_dir(&shared).unwrap(),
            DirOrigin::Existing { mode: 0o755 }
        );
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&shared), 0o755);
        let new = shared.join("a/b");
        assert_eq!(ensure_dir(&new).unwrap(), DirOrigin::Created);
        assert_eq!(mode(&new), 0o700);
        assert_eq!(mode(&shared.join("a")), 0o700);
    }

    #[test]
    fn database_files_end_up_0600() {
        let root = tempfile::tempdir().unwrap();
        let db = root.path().join("heldar.db");
        assert!(secure_database(&db).unwrap().is_empty());
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&db), 0o600);
        let wal = root.path().join("heldar.db-wal");
        std::fs::write(&wal, b"").unwrap();
        std::fs::set_permissions(&wal, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(secure_database(&db).unwrap(), vec![wal.clone()]);
        assert_eq!(mode(&wal), 0o600);
    }
}
