//! Camera credentials sealed at rest (docs/design.md §11): each camera's password and explicit URLs
//! (which may carry `user:password@` or a `password=` query) are stored encrypted with
//! XChaCha20-Poly1305 under a 32-byte key in HELDAR_SECRET_KEY_FILE. A copy of the database alone
//! — a backup, a stolen disk image — does not yield camera passwords.
//!
//! The stored form is `sealed:v1:<base64(nonce ‖ ciphertext ‖ tag)>`. The associated data is the
//! camera id and the column, so a sealed value moved to another camera or field fails to open.
//!
//! Start-up (`ops::secrets`, which holds the order of the steps; this module reads and keeps the
//! key file):
//! - the key file is read; when there is none and the database has no key check, a new key is
//!   made in memory, and its file (mode 0600) written only once the database has stored that
//!   key's check — processes starting at once on one new database agree on one key, and a key
//!   file that does not match the database is never left behind;
//! - a database that *has* been sealed but whose key file is missing is a start-up error — a new
//!   key would silently make every password unreadable;
//! - the key is checked against `meta.key_check` (a known text sealed with it), so a wrong key is a
//!   start-up error naming the file, never garbage or a plaintext fallback;
//! - values written before sealing existed are sealed in place, in one transaction (by
//!   `ops::secrets`; this module holds no SQL).
//!
//! Errors never contain key bytes or plaintext.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

#[cfg(doc)]
use crate::models::SEALED_FIELDS;
use crate::models::{Camera, CameraSpec};

const PREFIX: &str = "sealed:v1:";
const KEY_CHECK_TEXT: &str = "heldar key check v1";

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("HELDAR_SECRET_KEY_FILE={path:?} cannot be used: {why}")]
    KeyFile { path: PathBuf, why: String },
    #[error(
        "a sealed value could not be opened ({0}); the key does not match, or the value is damaged"
    )]
    Open(String),
}

/// Seals and opens camera secrets with the process's key.
pub struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)") // never the key
    }
}

fn aad(camera: &str, column: &str) -> String {
    format!("heldar/cameras/{camera}/{column}")
}

impl Sealer {
    pub fn from_key(key: [u8; 32]) -> Sealer {
        Sealer {
            cipher: XChaCha20Poly1305::new(&key.into()),
        }
    }

    pub fn is_sealed(stored: &str) -> bool {
        stored.starts_with(PREFIX)
    }

    /// Seal `plain` for `column` of camera `camera`.
    pub fn seal(&self, camera: &str, column: &str, plain: &str) -> String {
        let mut nonce = [0u8; 24];
        rand::thread_rng().fill_bytes(&mut nonce);
        let aad = aad(camera, column);
        let ct = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plain.as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            .expect("XChaCha20-Poly1305 encryption does not fail for in-memory buffers");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        format!(
            "{PREFIX}{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(out)
        )
    }

    /// The plaintext of a stored value. A value without the sealed prefix was written before
    /// sealing (or by an older Heldar sharing the database) and is returned as it is; the next
    /// start-up seals it.
    pub fn open(&self, camera: &str, column: &str, stored: &str) -> Result<String, SealError> {
        let Some(b64) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_string());
        };
        let what = || format!("cameras.{column} of camera {camera:?}");
        let raw = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(b64)
            .map_err(|_| SealError::Open(what()))?;
        if raw.len() < 24 + 16 {
            return Err(SealError::Open(what()));
        }
        let (nonce, ct) = raw.split_at(24);
        let aad = aad(camera, column);
        let plain = self
            .cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| SealError::Open(what()))?;
        String::from_utf8(plain).map_err(|_| SealError::Open(what()))
    }

    /// The key in `key_file`, or `None` when there is no such file.
    pub fn read_key_file(key_file: &Path) -> Result<Option<[u8; 32]>, SealError> {
        match std::fs::read_to_string(key_file) {
            Ok(text) => {
                let key = parse_key(&text).map_err(|why| key_err(key_file, why))?;
                warn_if_readable_by_others(key_file);
                Ok(Some(key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(key_err(key_file, format!("cannot read it ({e})"))),
        }
    }

    /// A new random key (kept in memory until it is the database's: [`Sealer::keep_key_file`]).
    pub fn new_key() -> [u8; 32] {
        let mut key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        key
    }

    /// The key check of this key, for a database that has none yet.
    pub fn key_check(&self) -> String {
        self.seal("-", "key_check", KEY_CHECK_TEXT)
    }

    /// Was the database's key check `check` made with this key?
    pub fn opens_key_check(&self, check: &str) -> bool {
        self.open("-", "key_check", check)
            .is_ok_and(|t| t == KEY_CHECK_TEXT)
    }

    /// Write `key` to `key_file` (mode 0600) unless a file is there already; the key the file
    /// holds afterwards is returned (another process sharing the path may have written its own
    /// first). The file appears whole or not at all: the key is written to a file of its own
    /// and linked into place, so a concurrent reader never sees half a key.
    pub fn keep_key_file(key_file: &Path, key: [u8; 32]) -> Result<[u8; 32], SealError> {
        create_key(key_file, key).map_err(|why| key_err(key_file, why))?;
        Sealer::read_key_file(key_file)?
            .ok_or_else(|| key_err(key_file, "it vanished right after it was written".into()))
    }

    /// The start-up error for a key file that is missing while the database has a key check.
    /// `sealed_cameras`: cameras whose credentials that key sealed (0 in a fleet's first
    /// seconds, when another node's start-up stored the check).
    pub fn missing_key_error(key_file: &Path, sealed_cameras: usize) -> SealError {
        let why = if sealed_cameras == 0 {
            "the file is missing, and this database already has a key: another Heldar sharing \
             the database created it (it seals no camera password yet). Every node of a fleet \
             needs the same key file: copy it from that node (or point HELDAR_SECRET_KEY_FILE \
             at a copy of it); a new key here could not read what the others seal"
                .to_string()
        } else {
            format!(
                "the file is missing, but this database's camera passwords ({sealed_cameras} \
                 camera(s)) were sealed with a key; restore that key file (from a backup of the \
                 data dir, or copy it from another node sharing the database) — a new key could \
                 not read them"
            )
        };
        key_err(key_file, why)
    }

    /// The start-up error for a key that did not make the database's key check.
    pub fn wrong_key_error(key_file: &Path) -> SealError {
        key_err(
            key_file,
            "it is not the key this database was sealed with (the key check does not open); \
             point HELDAR_SECRET_KEY_FILE at the right file"
                .into(),
        )
    }

    /// `spec` with its secret-bearing fields ([`SEALED_FIELDS`]) sealed, as `db::cameras`
    /// stores it.
    pub fn seal_spec(&self, spec: &CameraSpec) -> CameraSpec {
        let id = spec.id.as_str();
        let seal = |col: &str, v: &Option<String>| v.as_deref().map(|v| self.seal(id, col, v));
        CameraSpec {
            password: seal("password", &spec.password),
            main_stream_url: seal("main_stream_url", &spec.main_stream_url),
            sub_stream_url: seal("sub_stream_url", &spec.sub_stream_url),
            snapshot_url: seal("snapshot_url", &spec.snapshot_url),
            ..spec.clone()
        }
    }

    /// A stored camera with its secret-bearing fields opened.
    pub fn open_camera(&self, mut camera: Camera) -> Result<Camera, SealError> {
        let id = camera.spec.id.to_string();
        let open = |col: &str, v: &mut Option<String>| -> Result<(), SealError> {
            if let Some(stored) = v.as_deref() {
                *v = Some(self.open(&id, col, stored)?);
            }
            Ok(())
        };
        let s = &mut camera.spec;
        open("password", &mut s.password)?;
        open("main_stream_url", &mut s.main_stream_url)?;
        open("sub_stream_url", &mut s.sub_stream_url)?;
        open("snapshot_url", &mut s.snapshot_url)?;
        Ok(camera)
    }
}

fn parse_key(text: &str) -> Result<[u8; 32], String> {
    let t = text.trim();
    let bad = || "it must hold one 32-byte key as 64 hex digits".to_string();
    if t.len() != 64 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let mut key = [0u8; 32];
    for (i, k) in key.iter_mut().enumerate() {
        *k = u8::from_str_radix(&t[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(key)
}

fn key_err(key_file: &Path, why: String) -> SealError {
    SealError::KeyFile {
        path: key_file.to_path_buf(),
        why,
    }
}

/// Write `key` to `path` with mode 0600 unless a file is there: written and synced under a name
/// of its own in the same directory, then hard-linked to `path` (which fails, leaving the other
/// file alone, if one appeared meanwhile), then the temporary name removed.
fn create_key(path: &Path, key: [u8; 32]) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create its directory ({e})"))?;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(
        ".{name}.{}-{:016x}.new",
        std::process::id(),
        rand::thread_rng().next_u64()
    ));
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| format!("cannot create it ({e})"))
        .and_then(|mut f| {
            f.write_all(format!("{hex}\n").as_bytes())
                .and_then(|_| f.sync_all())
                .map_err(|e| format!("cannot write it ({e})"))
        });
    let linked = written.and_then(|()| match std::fs::hard_link(&tmp, path) {
        Ok(()) => {
            tracing::info!(path = %path.display(), "created a new secret key for sealing camera credentials; back it up with the database");
            Ok(())
        }
        // Another process sharing this path kept its key first: the caller reads that one.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(format!("cannot create it ({e})")),
    });
    let _ = std::fs::remove_file(&tmp);
    linked
}

fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = std::fs::metadata(path) {
        if m.permissions().mode() & 0o077 != 0 {
            tracing::warn!(path = %path.display(), mode = format!("{:o}", m.permissions().mode() & 0o777),
                "the secret key file is readable by other users; chmod 600 it");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_the_same_key_camera_and_column() {
        let s = Sealer::from_key([7; 32]);
        let sealed = s.seal("door", "password", "hunter2");
        assert!(Sealer::is_sealed(&sealed) && !sealed.contains("hunter2"));
        assert_ne!(
            sealed,
            s.seal("door", "password", "hunter2"),
            "nonces differ"
        );
        assert_eq!(s.open("door", "password", &sealed).unwrap(), "hunter2");
        assert!(s.open("gate", "password", &sealed).is_err());
        assert!(s.open("door", "snapshot_url", &sealed).is_err());
        assert!(Sealer::from_key([8; 32])
            .open("door", "password", &sealed)
            .is_err());
        let e = s
            .open("door", "password", "sealed:v1:!!!")
            .unwrap_err()
            .to_string();
        assert!(e.contains("door") && e.contains("password"), "{e}");
        assert!(s.open("door", "password", "sealed:v1:AAAA").is_err());
        // Legacy plaintext reads as it is.
        assert_eq!(s.open("door", "password", "plain").unwrap(), "plain");
    }

    #[test]
    fn key_files_must_hold_64_hex_digits() {
        assert!(parse_key(&"ab".repeat(32)).is_ok());
        assert!(parse_key(&format!("{}\n", "AB".repeat(32))).is_ok());
        for bad in [
            "",
            "abc",
            &"zz".repeat(32),
            &"ab".repeat(33),
            &"é".repeat(32),
            &format!("aé{}", "a".repeat(61)),
        ] {
            assert!(parse_key(bad).is_err(), "{bad:?}");
        }
    }
}
