//! Encoding JPEG frames into a video with ffmpeg: the command line, the child process and the
//! pipe that feeds it. It knows no database and no camera: the caller hands it frames (the
//! bytes of each JPEG, in order) and an output path, and gets the frame count or a typed
//! [`EncodeError`].
//!
//! The frames go to ffmpeg's stdin (`-f image2pipe -c:v mjpeg`), one JPEG after another, so no
//! frame is copied to disk and none is read twice; frames of another size than the first are
//! scaled into the output size and padded (`scale=…:force_original_aspect_ratio=decrease,
//! pad=…`). MP4 is H.264 (`libx264 -preset veryfast -crf 23`, yuv420p, `+faststart` so a
//! browser can play it before it has it all); WebM is VP9 (`libvpx-vp9 -crf 33`). Progress comes
//! from ffmpeg's own `-progress` report on stdout: frames encoded, not merely fed.
//!
//! ffmpeg runs at nice 10 (set in the child before it starts ffmpeg), so an encoding never
//! competes with capture for the CPU. It is killed when the encoding is cancelled or dropped
//! (`kill_on_drop`); the caller removes the output file. A missing ffmpeg is
//! [`EncodeError::FfmpegMissing`]; a full disk is [`EncodeError::DiskFull`]; anything else
//! ffmpeg says is [`EncodeError::Failed`] with its last line.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::models::timelapse::VideoFormat;

/// ffmpeg's niceness while it encodes.
pub const NICE: i32 = 10;

/// What to make.
#[derive(Debug, Clone)]
pub struct EncodeRequest {
    pub ffmpeg: PathBuf,
    pub output: PathBuf,
    pub fps: u32,
    /// Output size, both even.
    pub width: u32,
    pub height: u32,
    pub format: VideoFormat,
}

#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("{0}")]
    FfmpegMissing(String),
    #[error("the disk is full: {0}")]
    DiskFull(String),
    #[error("{0}")]
    Failed(String),
    #[error("cancelled")]
    Cancelled,
}

impl EncodeError {
    /// The machine code a job reports.
    pub fn code(&self) -> &'static str {
        match self {
            EncodeError::FfmpegMissing(_) => "ffmpeg_missing",
            EncodeError::DiskFull(_) => "disk_full",
            EncodeError::Failed(_) => "ffmpeg_failed",
            EncodeError::Cancelled => "cancelled",
        }
    }
}

/// The output size for frames of `w`×`h` at a requested `width`: both even, the height
/// following the frame's aspect. No width keeps the frame's (rounded down to even).
pub fn output_size(w: u32, h: u32, width: Option<u32>) -> (u32, u32) {
    let even = |v: u32| (v & !1).max(2);
    match width {
        None => (even(w), even(h)),
        Some(tw) => {
            // The nearest even height to the aspect's.
            let th = (f64::from(tw) * f64::from(h) / f64::from(w.max(1)) / 2.0).round() as u32 * 2;
            (even(tw), even(th))
        }
    }
}

/// The ffmpeg arguments (without the binary) for `req`.
pub fn args(req: &EncodeRequest) -> Vec<String> {
    let (w, h) = (req.width, req.height);
    let mut a: Vec<String> = [
        "-hide_banner",
        "-nostats",
        "-loglevel",
        "error",
        "-progress",
        "pipe:1",
        "-stats_period",
        "0.5",
        "-f",
        "image2pipe",
        "-c:v",
        "mjpeg",
        "-framerate",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.push(req.fps.to_string());
    a.extend(["-i", "pipe:0", "-an", "-vf"].map(String::from));
    a.push(format!(
        "scale={w}:{h}:force_original_aspect_ratio=decrease,pad={w}:{h}:(ow-iw)/2:(oh-ih)/2,setsar=1,format=yuv420p"
    ));
    match req.format {
        VideoFormat::Mp4 => a.extend(
            [
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-crf",
                "23",
                "-pix_fmt",
                "yuv420p",
                "-movflags",
                "+faststart",
                "-f",
                "mp4",
            ]
            .map(String::from),
        ),
        VideoFormat::Webm => a.extend(
            [
                "-c:v",
                "libvpx-vp9",
                "-crf",
                "33",
                "-b:v",
                "0",
                "-deadline",
                "good",
                "-cpu-used",
                "4",
                "-row-mt",
                "1",
                "-pix_fmt",
                "yuv420p",
                "-f",
                "webm",
            ]
            .map(String::from),
        ),
    }
    a.extend(["-r".to_string(), req.fps.to_string(), "-y".to_string()]);
    // `file:` so no character of the data dir's path is read as a protocol or an option.
    a.push(format!("file:{}", req.output.display()));
    a
}

/// The executable `bin` names: a path (with a `/`) as it is, else the first match on `PATH`.
/// `None` if there is no such executable file: ffmpeg is missing.
pub fn resolve(bin: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let runnable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if bin.as_os_str().to_string_lossy().contains('/') {
        return runnable(bin).then(|| bin.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(bin))
        .find(|p| runnable(p))
}

/// Encode `frames` into `req.output`. `progress` is called with the frames encoded so far
/// whenever ffmpeg reports (twice a second). Returns the frames in the video. On any error or
/// cancel ffmpeg is killed and waited for; the output file is the caller's to remove.
pub async fn encode<S>(
    req: &EncodeRequest,
    frames: S,
    mut progress: impl FnMut(u64) + Send,
    cancel: &CancellationToken,
) -> Result<u64, EncodeError>
where
    S: Stream<Item = Bytes> + Send,
{
    let mut cmd = tokio::process::Command::new(&req.ffmpeg);
    cmd.args(args(req))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // SAFETY: runs in the forked child before exec; setpriority is a plain system call
    // (async-signal-safe) and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if nix::libc::setpriority(nix::libc::PRIO_PROCESS, 0, NICE) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            EncodeError::FfmpegMissing(format!(
                "ffmpeg is not installed or not at {:?}: install ffmpeg or set HELDAR_FFMPEG_BIN",
                req.ffmpeg.display().to_string()
            ))
        } else {
            EncodeError::FfmpegMissing(format!(
                "cannot start {:?} ({e})",
                req.ffmpeg.display().to_string()
            ))
        }
    })?;
    let mut stdin = child.stdin.take().expect("piped");
    let stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");

    let fed = std::sync::atomic::AtomicU64::new(0);
    let feed = async {
        let mut frames = std::pin::pin!(frames);
        while let Some(jpeg) = frames.next().await {
            // ffmpeg gone (an error it will report on stderr): stop feeding.
            if stdin.write_all(&jpeg).await.is_err() {
                break;
            }
            fed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        // End of input: ffmpeg finishes the file.
        let _ = stdin.shutdown().await;
        drop(stdin);
    };
    let mut encoded = 0u64;
    let report = async {
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(n) = line
                .strip_prefix("frame=")
                .and_then(|v| v.trim().parse().ok())
            {
                encoded = n;
                progress(n);
            }
        }
    };
    let errors = async {
        let mut buf = Vec::new();
        let _ = (&mut stderr).take(64 * 1024).read_to_end(&mut buf).await;
        buf
    };
    let work = async {
        let (_, _, err) = tokio::join!(feed, report, errors);
        let status = child.wait().await;
        (status, err)
    };
    let (status, err) = tokio::select! {
        r = work => r,
        _ = cancel.cancelled() => {
            // `work` is dropped, which drops its borrow of the child: kill it and reap it.
            let _ = child.start_kill();
            let _ = child.wait().await;
            return Err(EncodeError::Cancelled);
        }
    };
    let status =
        status.map_err(|e| EncodeError::Failed(format!("waiting for ffmpeg failed ({e})")))?;
    let text = String::from_utf8_lossy(&err);
    if status.success() {
        let fed = fed.load(std::sync::atomic::Ordering::Relaxed);
        return Ok(if encoded > 0 { encoded } else { fed });
    }
    let last = text
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("no output")
        .to_string();
    let lower = text.to_ascii_lowercase();
    if lower.contains("no space left on device") || lower.contains("disk quota exceeded") {
        return Err(EncodeError::DiskFull(format!("ffmpeg: {last}")));
    }
    if lower.contains("unknown encoder") || lower.contains("encoder not found") {
        return Err(EncodeError::FfmpegMissing(format!(
            "this ffmpeg cannot encode {} ({last}); install a full ffmpeg build",
            match req.format {
                VideoFormat::Mp4 => "H.264 (libx264)",
                VideoFormat::Webm => "VP9 (libvpx-vp9)",
            }
        )));
    }
    Err(EncodeError::Failed(format!(
        "ffmpeg failed ({status}): {last}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_sizes_are_even_and_follow_the_aspect() {
        assert_eq!(output_size(640, 360, None), (640, 360));
        assert_eq!(output_size(641, 361, None), (640, 360));
        assert_eq!(output_size(1920, 1080, Some(640)), (640, 360));
        assert_eq!(output_size(640, 480, Some(100)), (100, 76)); // 75 → the nearest even
        assert_eq!(output_size(1, 1, None), (2, 2));
    }

    #[test]
    fn the_output_is_named_as_a_file_and_the_codec_is_as_asked() {
        let req = EncodeRequest {
            ffmpeg: "ffmpeg".into(),
            output: "/data:x/timelapses/gate/.tmp-job.mp4".into(),
            fps: 24,
            width: 640,
            height: 360,
            format: VideoFormat::Mp4,
        };
        let a = args(&req);
        assert_eq!(
            a.last().unwrap(),
            "file:/data:x/timelapses/gate/.tmp-job.mp4"
        );
        let joined = a.join(" ");
        assert!(joined.contains("-c:v libx264"), "{joined}");
        assert!(joined.contains("-pix_fmt yuv420p"), "{joined}");
        assert!(joined.contains("-movflags +faststart"), "{joined}");
        assert!(joined.contains("-framerate 24 -i pipe:0"), "{joined}");
        let webm = args(&EncodeRequest {
            format: VideoFormat::Webm,
            ..req
        })
        .join(" ");
        assert!(
            webm.contains("libvpx-vp9") && webm.contains("-f webm"),
            "{webm}"
        );
    }

    #[test]
    fn a_missing_binary_does_not_resolve() {
        assert!(resolve(Path::new("/nonexistent/ffmpeg")).is_none());
        assert!(resolve(Path::new("heldar-no-such-binary-xyz")).is_none());
        assert!(resolve(Path::new("sh")).is_some());
    }
}
