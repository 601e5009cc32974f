//! The RTSP back-end: one `ffmpeg` process per grab, reading one frame of the camera's sub stream
//! (main if there is no sub) over TCP and writing it to stdout as a JPEG.
//!
//! Probing is the cost of a grab: ffmpeg's default stream analysis took ~2.1 s per grab here,
//! `-analyzeduration 0 -probesize 32768` ~0.46 s (docs/design.md §6). We try the fast probe first and
//! fall back to ffmpeg's defaults when it yields no frame, for cameras that need a longer look.
//!
//! The process is killed when the grab is dropped (deadline or shutdown: `kill_on_drop`), at most
//! `HELDAR_FFMPEG_CONCURRENCY` run at once, and its stderr — which echoes `rtsp://user:pass@…` —
//! is masked before it reaches an error or a log line. A missing ffmpeg is its own error
//! (`ffmpeg_missing`), never a hang.
//!
//! TLS (`rtsps://`, `https://` streams): ffmpeg's TLS layer does not verify the camera's
//! certificate for `rtsps` (and cannot pin one), so before ffmpeg starts Heldar makes its own
//! handshake with the camera's trust setting ([`super::tls::check`]) and refuses the capture as
//! the HTTP back-end would. ffmpeg's own connection moments later is not verified again.
//!
//! Credentials never appear on ffmpeg's command line (where every local user can read them in
//! `/proc/PID/cmdline` or `ps`): the stream URL travels on ffmpeg's stdin, as a one-entry
//! `ffconcat` script read by the concat demuxer (`-f concat -i pipe:0`), with the input options
//! (`rtsp_transport`, the probe sizes) as `option` lines of that script. The user name and
//! password go into the URL's userinfo percent-encoded byte by byte — every byte except ASCII
//! letters and digits (RFC 3986 §2.1 and §3.2.1) — which ffmpeg decodes back to the exact bytes
//! before it answers the camera's Basic or Digest challenge; so `%`, `@`, `:`, `/`, `?`, `#`,
//! spaces, quotes and non-ASCII reach the camera unchanged. (A user name cannot hold `:`: RTSP's
//! Basic and Digest auth cannot carry one either.)

use std::path::PathBuf;
use std::process::Stdio;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use tokio::sync::Semaphore;

use super::{hosts, tls, CaptureError, Frame, FrameSource, GrabRequest};
use crate::camera::mask;

/// The protocols ffmpeg may open for a camera stream (the concat script on stdin included).
const PROTOCOLS: &str = "pipe,rtsp,rtsps,rtp,srtp,udp,tcp,tls,http,https,httpproxy,crypto";

/// `user` and `pass` as a URL's userinfo (`user:pass`, or `user` with no password), every byte
/// but ASCII letters and digits percent-encoded (RFC 3986 §2.1), so ffmpeg's URL decoding gives
/// back exactly these bytes.
pub fn userinfo(user: &str, pass: Option<&str>) -> String {
    let enc = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    match pass {
        Some(p) => format!("{}:{}", enc(user), enc(p)),
        None => enc(user),
    }
}

/// `url` with `user`/`pass` as its userinfo (replacing any), encoded by [`userinfo`].
///
/// ```
/// let url = url::Url::parse("rtsp://cam:554/stream").unwrap();
/// assert_eq!(
///     heldar::capture::ffmpeg::with_credentials(&url, "ad min", "ab%cd@"),
///     "rtsp://ad%20min:ab%25cd%40@cam:554/stream"
/// );
/// ```
pub fn with_credentials(url: &url::Url, user: &str, pass: &str) -> String {
    let mut bare = url.clone();
    let _ = bare.set_username("");
    let _ = bare.set_password(None);
    let s = bare.as_str();
    let Some(after) = s.find("://").map(|i| i + 3) else {
        return s.to_string();
    };
    format!(
        "{}{}@{}",
        &s[..after],
        userinfo(user, Some(pass)),
        &s[after..]
    )
}

/// The `ffconcat` script that hands `url` and its input `options` to ffmpeg on stdin. The URL is
/// single-quoted (a `'` in it is written `'\''`, as ffmpeg's tokenizer reads it).
pub fn concat_script(url: &str, options: &[(&str, &str)]) -> String {
    let mut s = String::from("ffconcat version 1.0\n");
    s.push_str(&format!("file '{}'\n", url.replace('\'', "'\\''")));
    for (k, v) in options {
        s.push_str(&format!("option {k} {v}\n"));
    }
    s
}

/// The RTSP back-end (see the module docs).
pub struct FfmpegSource {
    bin: PathBuf,
    permits: Semaphore,
    /// HELDAR_ALLOW_METADATA_HOSTS: no metadata-host check ([`hosts`]).
    allow_metadata_hosts: bool,
}

/// How hard ffmpeg looks at the stream before decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probe {
    Fast,
    Default,
}

impl FfmpegSource {
    /// `bin` is the ffmpeg to run; at most `concurrency` (at least 1) run at once.
    pub fn new(bin: PathBuf, concurrency: usize) -> FfmpegSource {
        FfmpegSource {
            bin,
            permits: Semaphore::new(concurrency.max(1)),
            allow_metadata_hosts: false,
        }
    }

    /// The same source with the metadata-host check on (`false`, the default) or off
    /// (HELDAR_ALLOW_METADATA_HOSTS).
    pub fn allowing_metadata_hosts(self, allow: bool) -> FfmpegSource {
        FfmpegSource {
            allow_metadata_hosts: allow,
            ..self
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
        if !self.allow_metadata_hosts {
            hosts::check_stream_host(req).await?;
        }
        // ffmpeg's TLS layer verifies nothing (and cannot pin): Heldar decides, with the verifier
        // the HTTP back-end uses, before ffmpeg connects (see `tls` and docs/security.md).
        if matches!(req.url.scheme(), "rtsps" | "https") {
            tls::check(req).await?;
        }
        // The camera's own credentials win over the URL's and are encoded byte by byte; a URL's
        // own userinfo is already percent-encoded as the operator wrote it, and goes as it is.
        let url = match (&req.username, req.credentials()) {
            (Some(_), Some((user, pass))) => with_credentials(&req.url, &user, &pass),
            _ => req.url.to_string(),
        };
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

    async fn run(&self, req: &GrabRequest, url: &str, probe: Probe) -> Result<Frame, CaptureError> {
        let shown = req.shown_url();
        let mut options: Vec<(&str, &str)> = Vec::new();
        if matches!(req.url.scheme(), "rtsp" | "rtsps") {
            options.push(("rtsp_transport", "tcp"));
        }
        let mut cmd = Command::new(&self.bin);
        cmd.args(["-nostdin", "-hide_banner", "-loglevel", "error"]);
        if probe == Probe::Fast {
            options.extend([("analyzeduration", "0"), ("probesize", "32768")]);
            // The concat demuxer's own probe, as well as the stream's.
            cmd.args(["-analyzeduration", "0", "-probesize", "32768"]);
        }
        let script = concat_script(url, &options);
        cmd.args([
            "-f",
            "concat",
            "-safe",
            "0",
            "-protocol_whitelist",
            PROTOCOLS,
        ])
        .args(["-i", "pipe:0"])
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
        // Which camera this ffmpeg is for, for operators (`ps e`, /proc/PID/environ): the
        // command line no longer shows the URL. Not a secret.
        .env("HELDAR_CAMERA_ID", req.camera.as_str())
        .stdin(Stdio::piped())
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
        let mut stdin = child.stdin.take().expect("piped");
        // A few hundred bytes: they fit in the pipe's buffer, and ffmpeg reads them first.
        let _ = stdin.write_all(script.as_bytes()).await;
        drop(stdin);
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
