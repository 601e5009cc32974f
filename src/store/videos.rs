//! Where timelapse videos live: `$DATA_DIR/timelapses/{camera_id}/{tl_id}.{mp4|webm}`, apart
//! from snapshots_dir, so the frame store's scan and reconciliation (which know only frame and
//! `.tmp-{16 hex}` names) never see them.
//!
//! A video is encoded into a temporary name in its camera's folder (`.tmp-{job_id}.{ext}`, one
//! per job, so recovery after a crash can name it) and renamed to its final name only when
//! ffmpeg has finished it: a final name only ever holds a complete video. Like the frame store,
//! this module deletes only its own names ([`parse_file_name`], [`is_temp_name`]) and serves only
//! regular files reached without following a symlink. It knows nothing of the database.
//!
//! With a bucket (`HELDAR_STORAGE_URL=s3://…`), ffmpeg still encodes into the local temporary
//! file (it needs a seekable local file for MP4); [`VideoStore::finalize`] then uploads it to
//! `{prefix}/_timelapses/{camera}/{tl_id}.{ext}` and removes the local file, and serving and
//! deleting go to the bucket. Temporary files stay local only.

use std::path::{Path, PathBuf};

use crate::models::timelapse::{JobId, TimelapseId, VideoFormat};
use crate::models::CameraId;

/// The timelapse videos of every camera.
#[derive(Debug, Clone)]
pub struct VideoStore {
    dir: PathBuf,
    bucket: Option<std::sync::Arc<super::object::Bucket>>,
}

/// An open video, ready to serve.
#[derive(Debug)]
pub enum OpenVideo {
    /// A local file.
    File { file: tokio::fs::File, len: u64 },
    /// An object in the bucket, read by range as it is sent.
    Object {
        bucket: std::sync::Arc<super::object::Bucket>,
        rel: String,
        len: u64,
    },
}

/// `{tl_id}.{ext}`, if `name` is exactly one of the final names this store makes.
pub fn parse_file_name(name: &str) -> Option<(TimelapseId, VideoFormat)> {
    let (stem, ext) = name.rsplit_once('.')?;
    let format = VideoFormat::from_db(ext)?;
    Some((TimelapseId::parse(stem).ok()?, format))
}

/// Is `name` a temporary name of this store (`.tmp-job_{32 hex}.{ext}`)?
pub fn is_temp_name(name: &str) -> bool {
    name.strip_prefix(".tmp-")
        .and_then(|rest| rest.rsplit_once('.'))
        .is_some_and(|(job, ext)| JobId::parse(job).is_ok() && VideoFormat::from_db(ext).is_some())
}

impl VideoStore {
    pub fn new(dir: PathBuf) -> VideoStore {
        VideoStore { dir, bucket: None }
    }

    /// Finished videos in `bucket` (temporary files stay under `dir`).
    pub fn with_bucket(mut self, bucket: std::sync::Arc<super::object::Bucket>) -> VideoStore {
        self.bucket = Some(bucket);
        self
    }

    fn key(rel: &str) -> String {
        format!("{}/{rel}", super::object::VIDEOS)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `{camera}/{id}.{ext}`: a video's name relative to the store.
    pub fn rel_path(camera: &CameraId, id: &TimelapseId, format: VideoFormat) -> String {
        format!("{camera}/{id}.{}", format.extension())
    }

    pub fn abs(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// The temporary file a job encodes into.
    pub fn temp_path(&self, camera: &CameraId, job: &JobId, format: VideoFormat) -> PathBuf {
        self.dir
            .join(camera.as_str())
            .join(format!(".tmp-{job}.{}", format.extension()))
    }

    /// Create the camera's folder (owner-only) if it is missing.
    pub async fn prepare(&self, camera: &CameraId) -> std::io::Result<()> {
        let dir = self.dir.join(camera.as_str());
        tokio::task::spawn_blocking(move || crate::private_files::ensure_dir(&dir).map(|_| ()))
            .await
            .map_err(std::io::Error::other)?
    }

    /// Move a finished temporary file to its final name.
    pub async fn finalize(&self, temp: &Path, rel: &str) -> std::io::Result<()> {
        if let Some(b) = &self.bucket {
            b.put_file(temp, &Self::key(rel))
                .await
                .map_err(std::io::Error::other)?;
            return remove_if_there(temp).await.map(|_| ());
        }
        tokio::fs::rename(temp, self.abs(rel)).await
    }

    /// Remove a video. `Ok(false)` if it was already gone; refuses names that are not ours.
    pub async fn remove(&self, rel: &str) -> std::io::Result<bool> {
        let ours = rel.split_once('/').is_some_and(|(cam, file)| {
            CameraId::parse(cam).is_ok() && parse_file_name(file).is_some()
        });
        if !ours {
            return Err(std::io::Error::other(format!(
                "{rel} is not one of the timelapse store's names"
            )));
        }
        if let Some(b) = &self.bucket {
            return b.delete(&Self::key(rel)).await.map(|()| true);
        }
        remove_if_there(&self.abs(rel)).await
    }

    /// Remove a job's temporary file, whatever its format. `Ok(false)` if there was none.
    pub async fn remove_temp(&self, camera: &CameraId, job: &JobId) -> std::io::Result<bool> {
        let mut removed = false;
        for f in [VideoFormat::Mp4, VideoFormat::Webm] {
            removed |= remove_if_there(&self.temp_path(camera, job, f)).await?;
        }
        Ok(removed)
    }

    /// Every temporary file in the store, as `(camera, path)` (start-up recovery: none of them
    /// belongs to a job that is still running then).
    pub async fn temp_files(&self) -> std::io::Result<Vec<PathBuf>> {
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            let top = match std::fs::read_dir(&dir) {
                Ok(d) => d,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
                Err(e) => return Err(e),
            };
            for cam in top {
                let cam = cam?;
                let name = cam.file_name().to_string_lossy().into_owned();
                if !cam.file_type()?.is_dir() || CameraId::parse(&name).is_err() {
                    continue;
                }
                for f in std::fs::read_dir(cam.path())? {
                    let f = f?;
                    if f.file_type()?.is_file() && is_temp_name(&f.file_name().to_string_lossy()) {
                        out.push(f.path());
                    }
                }
            }
            Ok(out)
        })
        .await
        .map_err(std::io::Error::other)?
    }

    /// Remove one path [`VideoStore::temp_files`] listed.
    pub async fn remove_temp_path(&self, path: &Path) -> std::io::Result<bool> {
        let ours = path
            .file_name()
            .is_some_and(|n| is_temp_name(&n.to_string_lossy()));
        if !ours || !path.starts_with(&self.dir) {
            return Err(std::io::Error::other(format!(
                "{} is not one of the timelapse store's temporary files",
                path.display()
            )));
        }
        remove_if_there(path).await
    }

    /// Remove every video and temporary file of a camera, then its folder if nothing else is in
    /// it. Returns how many entries Heldar did not write were left.
    pub async fn remove_camera(&self, camera: &CameraId) -> std::io::Result<u64> {
        if let Some(b) = &self.bucket {
            let mut kept = 0;
            for rel in b.list_videos(camera).await? {
                let ours = rel
                    .split_once('/')
                    .is_some_and(|(_, f)| !f.contains('/') && parse_file_name(f).is_some());
                match ours {
                    true => b.delete(&Self::key(&rel)).await?,
                    false => kept += 1,
                }
            }
            // Its local temporary files (an encoding that was running) go too.
            let local = remove_local_camera(self.dir.join(camera.as_str())).await?;
            return Ok(kept + local);
        }
        remove_local_camera(self.dir.join(camera.as_str())).await
    }

    /// Open a video for serving: neither the camera's folder nor the file may be a symlink, and
    /// the file must be a regular file.
    pub async fn open(&self, rel: &str) -> std::io::Result<OpenVideo> {
        use std::os::unix::fs::OpenOptionsExt;
        if let Some(b) = &self.bucket {
            let key = Self::key(rel);
            let len = b.size(&key).await?;
            return Ok(OpenVideo::Object {
                bucket: b.clone(),
                rel: key,
                len,
            });
        }
        let path = self.abs(rel);
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
        let file = tokio::task::spawn_blocking(move || {
            std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(nix::libc::O_NOFOLLOW)
                .open(&path)
        })
        .await
        .map_err(std::io::Error::other)??;
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(std::io::Error::other("not a regular file"));
        }
        Ok(OpenVideo::File {
            file: tokio::fs::File::from_std(file),
            len: meta.len(),
        })
    }
}

async fn remove_if_there(path: &Path) -> std::io::Result<bool> {
    match tokio::fs::remove_file(path).await {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Remove a camera's local videos and temporary files, then its folder if nothing else is in it;
/// how many entries Heldar did not write were left.
async fn remove_local_camera(dir: PathBuf) -> std::io::Result<u64> {
    tokio::task::spawn_blocking(move || {
        let entries = match std::fs::read_dir(&dir) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        let mut kept = 0;
        for e in entries {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            let ours = e.file_type()?.is_file()
                && (is_temp_name(&name) || parse_file_name(&name).is_some());
            if !ours {
                kept += 1;
                continue;
            }
            match std::fs::remove_file(e.path()) {
                Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(err),
                _ => {}
            }
        }
        if kept == 0 {
            match std::fs::remove_dir(&dir) {
                Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(err),
                _ => {}
            }
        }
        Ok(kept)
    })
    .await
    .map_err(std::io::Error::other)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_its_own_names_are_its_own() {
        let id = TimelapseId::generate();
        assert!(parse_file_name(&format!("{id}.mp4")).is_some());
        assert!(parse_file_name(&format!("{id}.webm")).is_some());
        for bad in [
            format!("{id}.mkv"),
            format!("{id}.mp4.part"),
            "tl_123.mp4".to_string(),
            "../x.mp4".to_string(),
            "20260102T030405678Z.jpg".to_string(),
        ] {
            assert!(parse_file_name(&bad).is_none(), "{bad}");
        }
        let job = JobId::generate();
        assert!(is_temp_name(&format!(".tmp-{job}.mp4")));
        assert!(!is_temp_name(".tmp-0123456789abcdef"));
        assert!(!is_temp_name(&format!(".tmp-{job}.txt")));
        // The frame store's own temporary names are not these, and the other way round.
        assert!(!crate::store::is_temp_name(&format!(".tmp-{job}.mp4")));
    }

    #[tokio::test]
    async fn removing_a_cameras_videos_keeps_what_heldar_did_not_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = VideoStore::new(dir.path().to_path_buf());
        let cam = CameraId::parse("gate").unwrap();
        store.prepare(&cam).await.unwrap();
        let rel = VideoStore::rel_path(&cam, &TimelapseId::generate(), VideoFormat::Mp4);
        std::fs::write(store.abs(&rel), b"video").unwrap();
        let temp = store.temp_path(&cam, &JobId::generate(), VideoFormat::Webm);
        std::fs::write(&temp, b"partial").unwrap();
        std::fs::write(dir.path().join("gate/notes.txt"), b"mine").unwrap();
        assert_eq!(store.temp_files().await.unwrap(), vec![temp.clone()]);
        assert_eq!(store.remove_camera(&cam).await.unwrap(), 1);
        assert!(!store.abs(&rel).exists() && !temp.exists());
        assert!(dir.path().join("gate/notes.txt").exists());
        assert!(store.remove("gate/notes.txt").await.is_err());
    }
}
