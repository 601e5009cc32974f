//! Where frame bytes live: the local filesystem under snapshots_dir, one directory per camera
//! (`snapshots_dir/{camera_id}/{YYYYmmddTHHMMSSfffZ}.jpg`; the id is a slug, so always a safe
//! directory name).
//!
//! Invariant (docs/design.md §8): a final name only ever holds a complete JPEG. A frame is written to
//! a temporary name (`.tmp-…`) in its camera's directory, optionally fsynced, then linked to its
//! final name — which fails rather than overwrites, so two frames in one millisecond both survive
//! (`…Z-1.jpg`) — and the temporary name removed. The database row is written only after that
//! (by the caller), so a crash leaves at worst a file without a row or a stray temp file, which
//! reconciliation (`ops::reconcile`) cleans up. Disk full is a [`StoreError::DiskFull`], never a
//! partial file.
//!
//! The free-disk floor (HELDAR_MIN_FREE_DISK_GB) holds between retention sweeps through
//! [`DiskFloor`], shared by every clone of a [`FrameStore`]: after each write the store
//! estimates the free space (the last statvfs minus the bytes written since) and measures it
//! again only when the estimate has used up half the headroom above the floor, or 1 s or 256
//! writes have passed — a few statvfs calls a second at 1,000 writes/s, not one per write. When
//! free space is under the floor — or the bytes written since the sweeper last counted take the
//! stored frames over the size cap (HELDAR_SNAPSHOT_MAX_GB) — it wakes the retention sweeper.
//! A write that meets a full disk (ENOSPC) wakes the sweeper, waits (bounded) for that sweep to
//! finish, and is retried once.
//!
//! With `HELDAR_STORAGE_URL=s3://bucket/prefix` the same [`FrameStore`] keeps frames as objects
//! in a bucket instead ([`object`]): the same names under the prefix, one PUT per frame that
//! completes before the caller writes the row, no temporary objects, no disk floor. Every
//! caller goes through `FrameStore`'s methods, so capture, `/media`, retention, reconciliation,
//! camera deletion and timelapses work the same on either back-end (docs/storage.md).

//! The storage's root holds one more file of Heldar's: the install marker ([`MARKER`],
//! [`FrameStore::claim`]), naming the database whose frames these are. A process started with
//! another database refuses to start on it rather than reconciling, pruning or deleting
//! frames it did not write; scans never report the marker (it is neither a frame nor foreign).

pub mod object;
mod scan;
pub mod videos;

pub use scan::{scan_folder, scan_top, CameraFolder, FolderEntry, FrameFile, TempFile, TopLevel};

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// The install marker at the storage's root (the snapshots folder, or the bucket prefix): its
/// first line is the install id of the database whose frames the storage holds.
pub const MARKER: &str = ".heldar-install";

/// The marker's text for `install`.
fn marker_text(install: &str) -> String {
    format!(
        "{install}\n# Heldar: the frames here belong to the database with this install id \
         (docs/storage.md \"One storage, one database\"). Do not copy this file elsewhere.\n"
    )
}

/// The install id a marker's text names (its first line), if it names one.
fn marker_id(text: &str) -> Option<&str> {
    text.lines().next().map(str::trim).filter(|l| !l.is_empty())
}

/// What [`FrameStore::claim`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The marker names this install.
    Ours,
    /// There was no marker; one naming this install was written (a new storage, or one from
    /// before the marker, adopted).
    Adopted,
}

/// Why the storage cannot be used by this install.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    /// The marker names another install.
    #[error("the frame storage {location} belongs to another Heldar database (its marker {MARKER} names install {found}, this database is install {ours})")]
    Foreign {
        location: String,
        found: String,
        ours: String,
    },
    #[error(
        "cannot read or write the frame storage's install marker {MARKER} in {location}: {why}"
    )]
    Store { location: String, why: String },
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the disk holding the snapshots directory is full ({0})")]
    DiskFull(String),
    #[error("cannot write the frame: {0}")]
    Io(String),
    /// The object storage failed or could not be reached; the text names it.
    #[error("{0}")]
    Unavailable(String),
}

/// A frame file in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    /// Relative to snapshots_dir: `{camera_id}/{file}`.
    pub rel_path: String,
    pub size: u64,
}

/// The frame files of every camera: in snapshots_dir, or — with `HELDAR_STORAGE_URL=s3://…` —
/// objects in a bucket ([`object::Bucket`]). Every caller goes through these methods, which
/// pick the back-end; the free-disk floor and temporary files exist only for the local one.
#[derive(Debug, Clone)]
pub struct FrameStore {
    dir: PathBuf,
    fsync: bool,
    floor: Arc<DiskFloor>,
    bucket: Option<Arc<object::Bucket>>,
}

/// Measure free space again after this many writes or this long, whatever the estimate says
/// (other writers share the filesystem).
const CHECK_EVERY_WRITES: u64 = 256;
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// How long a write that met a full disk waits for the sweep it asked for before its retry.
const FULL_DISK_WAIT: Duration = Duration::from_secs(10);

/// The free-disk floor as the store sees it: an estimate of free space kept between writes,
/// and the link to the sweeper that prunes when it is crossed.
///
/// Inactive (floor 0) until the retention sweeper arms it with [`DiskFloor::arm`].
#[derive(Debug)]
pub struct DiskFloor {
    /// Bytes to keep free; 0 = no floor (and no pruning on a full disk).
    min_free: AtomicU64,
    /// The size cap (0 = none) and the stored bytes as last counted plus writes since.
    max_stored: AtomicU64,
    stored: AtomicU64,
    /// Free bytes at the last measurement, and what was written since.
    last_free: AtomicU64,
    written_since: AtomicU64,
    writes_since: AtomicU64,
    measured_at: Mutex<Option<Instant>>,
    /// Wakes the sweeper.
    wake: tokio::sync::Notify,
    /// Sweeps completed (the sweeper bumps it after each), so a write can wait for the next.
    sweeps: tokio::sync::watch::Sender<u64>,
    sweeping: AtomicBool,
    /// statvfs calls made (tests and the docs' figures read it).
    measurements: AtomicU64,
}

impl Default for DiskFloor {
    fn default() -> Self {
        DiskFloor {
            min_free: AtomicU64::new(0),
            max_stored: AtomicU64::new(0),
            stored: AtomicU64::new(0),
            last_free: AtomicU64::new(u64::MAX),
            written_since: AtomicU64::new(0),
            writes_since: AtomicU64::new(0),
            measured_at: Mutex::new(None),
            wake: tokio::sync::Notify::new(),
            sweeps: tokio::sync::watch::channel(0).0,
            sweeping: AtomicBool::new(false),
            measurements: AtomicU64::new(0),
        }
    }
}

impl DiskFloor {
    /// Enforce `min_free` bytes between sweeps (the sweeper calls this when it starts).
    pub fn arm(&self, min_free: u64) {
        self.min_free.store(min_free, Ordering::Relaxed);
        *self.measured_at.lock().expect("floor lock") = None;
    }

    /// Hold the size cap (HELDAR_SNAPSHOT_MAX_GB) between sweeps too: wake the sweeper when the
    /// frames written since its last count take the stored bytes over `max` (0 = no cap).
    pub fn arm_cap(&self, max: u64) {
        self.max_stored.store(max, Ordering::Relaxed);
    }

    /// The sweeper's count of stored bytes, which writes add to until the next count.
    pub fn set_stored(&self, bytes: u64) {
        self.stored.store(bytes, Ordering::Relaxed);
    }

    pub fn min_free(&self) -> u64 {
        self.min_free.load(Ordering::Relaxed)
    }

    /// Resolves when a write has found free space under the floor (or a full disk).
    pub async fn woken(&self) {
        self.wake.notified().await
    }

    /// The sweeper starts a sweep.
    pub fn sweep_started(&self) {
        self.sweeping.store(true, Ordering::SeqCst);
    }

    /// The sweeper finished a sweep: writes waiting to retry go ahead.
    pub fn sweep_done(&self) {
        self.sweeping.store(false, Ordering::SeqCst);
        self.sweeps.send_modify(|n| *n += 1);
        // Measure again on the next write: the sweep freed space.
        *self.measured_at.lock().expect("floor lock") = None;
    }

    /// statvfs calls made so far.
    pub fn measurements(&self) -> u64 {
        self.measurements.load(Ordering::Relaxed)
    }

    /// After a write of `bytes` into `dir`: measure when due, and wake the sweeper if free space
    /// is (or is estimated) under the floor.
    fn after_write(&self, dir: &Path, bytes: u64) {
        let cap = self.max_stored.load(Ordering::Relaxed);
        if cap > 0 && self.stored.fetch_add(bytes, Ordering::Relaxed) + bytes > cap {
            self.wake.notify_one();
        }
        let floor = self.min_free();
        if floor == 0 {
            return;
        }
        let written = self.written_since.fetch_add(bytes, Ordering::Relaxed) + bytes;
        let writes = self.writes_since.fetch_add(1, Ordering::Relaxed) + 1;
        let last = self.last_free.load(Ordering::Relaxed);
        let headroom = last.saturating_sub(floor);
        let due = {
            let at = self.measured_at.lock().expect("floor lock");
            match *at {
                None => true,
                Some(t) => {
                    written.saturating_mul(2) >= headroom
                        || writes >= CHECK_EVERY_WRITES
                        || t.elapsed() >= CHECK_EVERY
                }
            }
        };
        let free = if due {
            match free_bytes(dir) {
                Ok(free) => {
                    self.measurements.fetch_add(1, Ordering::Relaxed);
                    self.last_free.store(free, Ordering::Relaxed);
                    self.written_since.store(0, Ordering::Relaxed);
                    self.writes_since.store(0, Ordering::Relaxed);
                    *self.measured_at.lock().expect("floor lock") = Some(Instant::now());
                    free
                }
                Err(_) => return,
            }
        } else {
            last.saturating_sub(written)
        };
        if free < floor {
            self.wake.notify_one();
        }
    }

    /// A write met a full disk: wake the sweeper and wait (bounded) until a sweep that started
    /// after now has finished. `false` if there is no floor to prune for or no sweep came.
    async fn prune_now(&self) -> bool {
        if self.min_free() == 0 {
            return false;
        }
        let mut sweeps = self.sweeps.subscribe();
        let seen = *sweeps.borrow_and_update();
        // A sweep already running may be past its free-disk pass: then wait for the one after
        // it (the wake below is kept by the Notify until the sweeper waits again).
        let target = seen
            + if self.sweeping.load(Ordering::SeqCst) {
                2
            } else {
                1
            };
        self.wake.notify_one();
        let done = tokio::time::timeout(FULL_DISK_WAIT, sweeps.wait_for(|n| *n >= target))
            .await
            .is_ok_and(|r| r.is_ok());
        done
    }
}

impl FrameStore {
    pub fn new(dir: PathBuf, fsync: bool) -> FrameStore {
        FrameStore {
            dir,
            fsync,
            floor: Arc::default(),
            bucket: None,
        }
    }

    /// Frames in `bucket` instead of `dir` (which then holds nothing of the store's).
    pub fn with_bucket(mut self, bucket: Arc<object::Bucket>) -> FrameStore {
        self.bucket = Some(bucket);
        self
    }

    /// The bucket, when frames are stored in one.
    pub fn bucket(&self) -> Option<&Arc<object::Bucket>> {
        self.bucket.as_ref()
    }

    /// Where frames are: snapshots_dir's path, or `s3://bucket/prefix` (for logs, errors and
    /// the system page; never with credentials).
    pub fn location(&self) -> String {
        match &self.bucket {
            Some(b) => b.url().to_string(),
            None => self.dir.display().to_string(),
        }
    }

    /// Where one camera's frames are (for warnings).
    pub fn location_of(&self, camera: &str) -> String {
        match &self.bucket {
            Some(b) => format!("{}/{camera}/", b.url()),
            None => self.dir.join(camera).display().to_string(),
        }
    }

    /// Can a frame be stored right now? Local: a probe file in snapshots_dir; a bucket: a
    /// listing of the prefix.
    pub async fn check(&self) -> Result<(), StoreError> {
        match &self.bucket {
            Some(b) => b.check().await,
            None => check_writable(&self.dir)
                .await
                .map_err(|e| StoreError::Io(e.to_string())),
        }
    }

    /// Check that the storage is `install`'s: read the marker at its root, write it if there
    /// is none (created exclusively, so two nodes of a new fleet starting at once agree), and
    /// refuse a marker naming another install. Start-up calls this before anything reads or
    /// deletes a frame.
    pub async fn claim(&self, install: &str) -> Result<Claim, ClaimError> {
        if let Some(b) = &self.bucket {
            return claim_bucket(b, install).await;
        }
        let (dir, text) = (self.dir.clone(), marker_text(install));
        let found = tokio::task::spawn_blocking(move || claim_local(&dir, &text))
            .await
            .map_err(std::io::Error::other)
            .and_then(|r| r);
        decide(self.location(), found, install)
    }

    /// Free bytes on the disk under snapshots_dir; `None` for a bucket (no disk to fill).
    pub fn free_bytes(&self) -> Option<std::io::Result<u64>> {
        self.bucket.is_none().then(|| free_bytes(&self.dir))
    }

    /// Remove every frame of a camera ([`remove_camera_frames`] for local files; in a bucket,
    /// its frame-named objects). What Heldar did not write stays.
    pub async fn remove_camera(&self, id: &CameraId) -> std::io::Result<FolderRemoval> {
        match &self.bucket {
            Some(b) => b.remove_camera(id).await,
            None => remove_camera_frames(&self.dir, id).await,
        }
    }

    /// The free-disk floor this store (and every clone of it) reports to.
    pub fn floor(&self) -> &Arc<DiskFloor> {
        &self.floor
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Absolute path of a stored frame.
    pub fn abs(&self, rel_path: &str) -> PathBuf {
        self.dir.join(rel_path)
    }

    /// Write `bytes` atomically as the frame of `camera` taken at `taken_at`. On a full disk
    /// with a floor set, the sweeper prunes and the write is tried once more.
    pub async fn write_frame(
        &self,
        camera: &CameraId,
        taken_at: DateTime<Utc>,
        bytes: bytes::Bytes,
    ) -> Result<StoredFile, StoreError> {
        if let Some(b) = &self.bucket {
            // No disk floor for a bucket: it does not fill up the way a disk does (its size is
            // the operator's bill, capped by HELDAR_SNAPSHOT_MAX_GB and retention).
            return b.put_frame(camera, taken_at, bytes).await;
        }
        match self.write_frame_once(camera, taken_at, bytes.clone()).await {
            Err(StoreError::DiskFull(e)) => {
                if !self.floor.prune_now().await {
                    return Err(StoreError::DiskFull(e));
                }
                tracing::info!(camera = %camera, "disk was full; retrying the frame after pruning");
                self.write_frame_once(camera, taken_at, bytes).await
            }
            other => other,
        }
    }

    async fn write_frame_once(
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
        let result = write_atomic(
            &camera_dir(&self.dir, camera),
            camera,
            taken_at,
            bytes,
            self.fsync,
        );
        match &result {
            Ok(f) => self.floor.after_write(&self.dir, f.size),
            Err(StoreError::DiskFull(_)) => self.floor.wake.notify_one(),
            Err(_) => {}
        }
        result
    }

    /// List the top level of snapshots_dir (see [`scan_top`]), off the async threads.
    pub async fn scan_top(&self) -> std::io::Result<TopLevel> {
        if let Some(b) = &self.bucket {
            return b.scan_top().await;
        }
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || scan_top(&dir))
            .await
            .map_err(std::io::Error::other)?
    }

    /// List one camera's folder (see [`scan_folder`]), off the async threads.
    pub async fn scan_folder(&self, camera: &CameraId) -> std::io::Result<CameraFolder> {
        if let Some(b) = &self.bucket {
            return b.scan_folder(camera, None).await;
        }
        let (dir, camera) = (self.dir.clone(), camera.clone());
        tokio::task::spawn_blocking(move || scan_folder(&dir, &camera))
            .await
            .map_err(std::io::Error::other)?
    }

    /// One camera's folder as far as frames taken since `since` go (the crash window): in a
    /// bucket only those are listed; a local folder is read whole (one directory read).
    pub async fn scan_folder_since(
        &self,
        camera: &CameraId,
        since: DateTime<Utc>,
    ) -> std::io::Result<CameraFolder> {
        match &self.bucket {
            Some(b) => b.scan_folder(camera, Some(since)).await,
            None => self.scan_folder(camera).await,
        }
    }

    /// The bytes of a stored frame.
    pub async fn read(&self, rel_path: &str) -> std::io::Result<Vec<u8>> {
        if let Some(b) = &self.bucket {
            return Ok(b.get(rel_path).await?.to_vec());
        }
        tokio::fs::read(self.abs(rel_path)).await
    }

    /// The bytes of a stored frame for serving: neither the camera's folder nor the file may be
    /// a symlink, and the file must be a regular file (`/media` serves only what the store
    /// wrote, docs/design.md §11).
    pub async fn read_frame(&self, rel_path: &str) -> std::io::Result<bytes::Bytes> {
        use std::os::unix::fs::OpenOptionsExt;
        if let Some(b) = &self.bucket {
            // A bucket has no symlinks: the key is built from a checked camera id and name.
            return b.get(rel_path).await;
        }
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
        if let Some(b) = &self.bucket {
            return b.exists(rel_path).await;
        }
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
        if let Some(b) = &self.bucket {
            // S3 does not say whether the key was there; either way it is gone now.
            return b.delete(rel_path).await.map(|()| true);
        }
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

/// [`FrameStore::claim`] on a bucket (`heldar migrate` marks its destination with it).
pub async fn claim_bucket(bucket: &object::Bucket, install: &str) -> Result<Claim, ClaimError> {
    let found = bucket.claim(MARKER, &marker_text(install)).await;
    decide(bucket.url().to_string(), found, install)
}

/// What a marker found (`None`: none was there, and ours was written) means for `install`.
fn decide(
    location: String,
    found: std::io::Result<Option<String>>,
    install: &str,
) -> Result<Claim, ClaimError> {
    let found = found.map_err(|e| ClaimError::Store {
        location: location.clone(),
        why: e.to_string(),
    })?;
    match found {
        None => Ok(Claim::Adopted),
        Some(text) => match marker_id(&text) {
            Some(id) if id == install => Ok(Claim::Ours),
            Some(id) => Err(ClaimError::Foreign {
                location,
                found: id.to_string(),
                ours: install.to_string(),
            }),
            None => Err(ClaimError::Store {
                location,
                why: "it is empty (remove it to let this install adopt the storage)".into(),
            }),
        },
    }
}

/// The local half of [`FrameStore::claim`]: the marker's text if there is one (`None`: it was
/// just written with `text`). Written under a temporary name and linked to its own, which
/// fails rather than replaces, so a marker is whole or absent and never overwritten.
fn claim_local(dir: &Path, text: &str) -> std::io::Result<Option<String>> {
    let path = dir.join(MARKER);
    match std::fs::read_to_string(&path) {
        Ok(t) => return Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!("{TMP_PREFIX}{:016x}", rand::random::<u64>()));
    std::fs::write(&tmp, text)?;
    let linked = std::fs::hard_link(&tmp, &path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(None),
        // Another process wrote one first: what it says decides.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            std::fs::read_to_string(&path).map(Some)
        }
        Err(e) => Err(e),
    }
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
