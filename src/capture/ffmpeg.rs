//! The RTSP back-end: one `ffmpeg` process per grab, reading one frame of the camera's sub stream
//! (main if there is no sub) over TCP and writing it to stdout as a JPEG.
//!
//! Probing is the cost of a grab: ffmpeg's default stream analysis took ~2.1 s per grab here,
//! `-analyzeduration 0 -probesize 32768` ~0.46 s (DESIGN.md §6). We try the fast probe first and
//! fall back to ffmpeg's defaults when it yields no frame, for cameras that need a longer look.
//!
//! The process is killed when the grab is dropped (deadline or shutdown: `kill_on_drop`), at most
//! `HELDAR_FFMPEG_CONCURRENCY` run at once, and its stderr — which echoes `rtsp://user:pass@…` —
//! is masked before it reaches an error or a log line. A missing ffmpeg is its own error
//! (`ffmpeg_missing`), never a hang.

use std::path::PathBuf;
use std::process::Stdio;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use tokio::io::AsyncReadExt;
use tokio::process::Command;
use tokio::sync::Semaphore;

use super::{CaptureError, Frame, FrameSource, GrabRequest};
use crate::camera::mask;

pub struct FfmpegSource {
    bin: PathBuf,
    permits: Semaphore,
}

/// How hard ffmpeg looks at the stream before decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probe {
    Fast,
    Default,
}

impl FfmpegSource {
    pub fn new(bin: PathBuf, concurrency: usize) -> FfmpegSource {
        FfmpegSource {
            bin,
            permits: Semaphore::new(concurrency.max(1)),
        }
    }

    /// Is the configured ffmpeg runnable? Used for a start-up warning.
    pub async fn check(&self) -> Result<String, String> {
        let out = Command::new(&self.bin)
            .arg("-version")
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| format!("{} cannot be run ({e})", self.bin.display()))?;
        let first = String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .to_string();
        Ok(first)
    }

    async fn grab_frame(&self, req: &GrabRequest) -> Result<Frame, CaptureError> {
        let mut url = req.url.clone();
        if url.username().is_empty() {
            if let Some((user, pass)) = req.credentials() {
                let _ = url.set_username(&user);
                let _ = url.set_password(Some(&pass));
            }
        }
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("semaphore never closed");
        match self.run(req, &url, Probe::Fast).await {
            Err(CaptureError::BadResponse(first)) => {
                tracing::debug!(camera = %req.camera, error = %first,
                    "fast probe gave no frame; retrying with ffmpeg's default probe");
                self.run(req, &url, Probe::Default).await
            }
            other => other,
        }
    }

    async fn run(
        &self,
        req: &GrabRequest,
        url: &url::Url,
        probe: Probe,
    ) -> Result<Frame, CaptureError> {
        let shown = req.shown_url();
        let mut cmd = Command::new(&self.bin);
        cmd.args(["-nostdin", "-hide_banner", "-loglevel", "error"]);
        if matches!(url.scheme(), "rtsp" | "rtsps") {
            cmd.args(["-rtsp_transport", "tcp"]);
        }
        if probe == Probe::Fast {
            cmd.args(["-analyzeduration", "0", "-probesize", "32768"]);
        }
        cmd.arg("-i")
            .arg(url.as_str())
            .args([
                "-an",
                "-frames:v",
                "1",
                "-f",
                "image2pipe",
                "-c:v",
                "mjpeg",
                "-q:v",
                "3",
                "pipe:1",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                CaptureError::FfmpegMissing(format!(
                    "camera {}: ffmpeg is not installed or not at {:?}: install ffmpeg or set \
                     HELDAR_FFMPEG_BIN",
                    req.camera,
                    self.bin.display().to_string()
                ))
            } else {
                CaptureError::FfmpegMissing(format!(
                    "camera {}: cannot start {:?} ({e})",
                    req.camera,
                    self.bin.display().to_string()
                ))
            }
        })?;
        let mut stdout = child.stdout.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        let limit = req.max_bytes as u64 + 1;
        let read_out = async {
            let mut buf = Vec::new();
            (&mut stdout)
                .take(limit)
                .read_to_end(&mut buf)
                .await
                .map(|_| buf)
        };
        let read_err = async {
            let mut buf = Vec::new();
            (&mut stderr)
                .take(16 * 1024)
                .read_to_end(&mut buf)
                .await
                .map(|_| buf)
        };
        let (out, err) = tokio::join!(read_out, read_err);
        let out = out.unwrap_or_default();
        if out.len() as u64 >= limit {
            return Err(CaptureError::BadResponse(format!(
                "camera {}: {shown}: the frame is larger than the {} byte limit (HELDAR_CAPTURE_MAX_BYTES)",
                req.camera, req.max_bytes
            )));
        }
        let status = child.wait().await.map_err(|e| {
            CaptureError::BadResponse(format!(
                "camera {}: waiting for ffmpeg failed ({e})",
                req.camera
            ))
        })?;
        let stderr_text = mask::mask_text(&String::from_utf8_lossy(&err.unwrap_or_default()), &[]);
        if status.success() && !out.is_empty() {
            return Frame::from_jpeg(Bytes::from(out)).map_err(|e| {
                CaptureError::BadResponse(format!(
                    "camera {}: {shown}: {}",
                    req.camera,
                    e.message()
                ))
            });
        }
        Err(classify(req, &shown, status, &stderr_text))
    }
}

impl FrameSource for FfmpegSource {
    fn grab<'a>(&'a self, req: &'a GrabRequest) -> BoxFuture<'a, Result<Frame, CaptureError>> {
        Box::pin(self.grab_frame(req))
    }
}

/// Turn ffmpeg's exit and (masked) stderr into a capture error.
fn classify(
    req: &GrabRequest,
    shown: &str,
    status: std::process::ExitStatus,
    stderr: &str,
) -> CaptureError {
    let last = stderr
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("no output")
        .to_string();
    let has = |needle: &str| stderr.to_ascii_lowercase().contains(needle);
    let msg = |what: &str| format!("camera {}: {shown}: {what} (ffmpeg: {last})", req.camera);
    if has("401") || has("unauthorized") || has("403 forbidden") {
        CaptureError::AuthFailed(msg("the stream rejected the credentials"))
    } else if has("connection refused")
        || has("no route to host")
        || has("network is unreachable")
        || has("name or service not known")
        || has("failed to resolve")
        || has("temporary failure in name resolution")
    {
        CaptureError::Unreachable(msg("cannot connect"))
    } else if has("timed out") || has("timeout") {
        CaptureError::Timeout(msg("the stream did not answer in time"))
    } else if has("404") || has("not found") {
        CaptureError::BadResponse(msg("the stream does not exist"))
    } else {
        CaptureError::BadResponse(msg(&format!("no frame ({status})")))
    }
}
