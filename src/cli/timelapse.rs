//! `heldar timelapse CAMERA --from TIME --to TIME [-o FILE]`: export a timelapse video of a
//! camera's stored frames and download it. It starts the job
//! (`POST /api/v1/cameras/{id}/timelapses`), follows it by polling `GET /api/v1/jobs/{id}` twice
//! a second, shows progress on stderr (an indicatif bar on a terminal, a line per step of 10 %
//! otherwise, nothing with `--json`), and when the job is done downloads its video
//! (`timelapse.url`) through the client's atomic download: a broken transfer leaves no file.
//!
//! Polling rather than the event stream: a poll reads the job's whole state, so nothing is lost
//! to a dropped event or a stream opened a moment too late, and it needs no second connection.
//! Ctrl-C (or SIGTERM) while the server encodes cancels the job there (`DELETE`) and exits 130;
//! during the download it only stops the download (the video stays on the server). A failed job
//! exits with the code of its `code` ([`exit_for_job`]) and the API's sentence. It does not own
//! the video list or rules (the API and dashboard have those) and prints only through `output`
//! and stderr.

use std::cell::Cell;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{json, Map, Value};

use super::client::{self, seg, CliError, CliResult, Client, ClientArgs, Dest};
use super::exit::Exit;
use super::output;
use super::when::{time_arg, TIME_HELP};

/// How often a waiting `timelapse` asks for its job.
const POLL: Duration = Duration::from_millis(500);

#[derive(Args, Debug)]
#[command(after_help = TIME_HELP)]
pub struct Timelapse {
    /// Camera id.
    camera: String,
    /// First frame's time: frames taken at or after it are used.
    #[arg(long, value_name = "TIME", value_parser = time_arg, allow_hyphen_values = true)]
    from: DateTime<Utc>,
    /// End of the range: frames taken before it are used (exclusive) [default: now]
    #[arg(long, value_name = "TIME", value_parser = time_arg, allow_hyphen_values = true)]
    to: Option<DateTime<Utc>>,
    /// Frames per second of the video, 1 to 60 [default: 24, the server's]
    #[arg(long, value_name = "N")]
    fps: Option<u32>,
    /// Width in pixels, even, 16 to 3840; the height follows the first frame [default: the
    /// first frame's]
    #[arg(long, value_name = "PIXELS")]
    width: Option<u32>,
    /// Use every N-th frame (1 = all) [default: 1]
    #[arg(long, value_name = "N")]
    every_nth: Option<u32>,
    /// Container and codec: mp4 (H.264) or webm (VP9) [default: mp4]
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Where to save the video; `-` writes it to stdout [default:
    /// CAMERA-FROM-TO.mp4, the times as YYYYmmdd-HHMMSS in this machine's zone]
    #[arg(short, long, value_name = "FILE", conflicts_with = "no_wait")]
    output: Option<String>,
    /// Start the job and print it, without waiting or downloading (`heldar jobs show ID`
    /// follows it; the video is listed at /api/v1/cameras/CAMERA/timelapses).
    #[arg(long)]
    no_wait: bool,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum Format {
    Mp4,
    Webm,
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Format::Mp4 => "mp4",
            Format::Webm => "webm",
        }
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn stamp(t: DateTime<Utc>) -> String {
    t.with_timezone(&chrono::Local)
        .format("%Y%m%d-%H%M%S")
        .to_string()
}

/// The exit code of a job that ended without a video, by its `code`. The range held no frames
/// (pruned before the job ran): rejected input (7), as the same range is refused when the job
/// is asked for. Everything else happened on the server — its ffmpeg (missing or failing), its
/// disk, a restart — so 8, the server cannot do it; `ffmpeg_missing` included, which for a
/// snapshot means the camera's RTSP capture (5) but here is the server's encoder. Cancelled by
/// someone else: 1.
pub fn exit_for_job(code: &str) -> Exit {
    match code {
        "no_frames" | "too_many_frames" => Exit::Rejected,
        "cancelled" => Exit::Other,
        _ => Exit::Server,
    }
}

pub fn run(args: Timelapse) -> ExitCode {
    client::run(async move {
        let c = Client::new(&args.client)?;
        let to = args.to.unwrap_or_else(Utc::now);
        let ext = args.format.unwrap_or(Format::Mp4).name();
        let dest = match args.output.as_deref() {
            Some(o) => Dest::from_arg(o)?,
            None => Dest::File(
                format!("{}-{}-{}.{ext}", args.camera, stamp(args.from), stamp(to)).into(),
            ),
        };
        if c.json && matches!(dest, Dest::Stdout) {
            return Err(CliError::usage(
                "-o - and --json both want stdout: choose one",
            ));
        }
        let mut body = Map::new();
        body.insert("from".into(), json!(rfc3339(args.from)));
        body.insert("to".into(), json!(rfc3339(to)));
        if let Some(v) = args.fps {
            body.insert("fps".into(), json!(v));
        }
        if let Some(v) = args.width {
            body.insert("width".into(), json!(v));
        }
        if let Some(v) = args.every_nth {
            body.insert("every_nth".into(), json!(v));
        }
        if let Some(f) = args.format {
            body.insert("format".into(), json!(f.name()));
        }
        let path = format!(
            "/api/v1/cameras/{}/timelapses",
            seg("camera", &args.camera)?
        );
        let reply = c
            .post_json(&path, &Value::Object(body))
            .await
            .map_err(ffmpeg_is_the_servers)?;
        let job: Value = reply.parse()?;
        let id = job["id"]
            .as_str()
            .ok_or_else(|| CliError::other("the answer names no job id"))?
            .to_string();
        let location = reply
            .header("location")
            .map(str::to_string)
            .unwrap_or_else(|| format!("/api/v1/jobs/{id}"));
        if args.no_wait {
            if c.json {
                output::raw_json(&reply.body);
            } else {
                output::line(format!(
                    "started {id}: {} of {}; follow it with `heldar jobs show {id}`",
                    output::count(job["frames_total"].as_i64().unwrap_or(0), "frame"),
                    args.camera
                ));
            }
            return Ok(());
        }

        let show = Show::new(&c, &job);
        let finished = Cell::new(false);
        let work = follow_and_fetch(&c, &location, &dest, &show, &finished);
        tokio::pin!(work);
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())
            .map_err(|e| CliError::other(format!("cannot watch for SIGTERM: {e}")))?;
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        let outcome = tokio::select! {
            r = &mut work => r,
            _ = &mut ctrl_c => Err(interrupted(&c, &location, &id, finished.get(), &show).await),
            _ = term.recv() => Err(interrupted(&c, &location, &id, finished.get(), &show).await),
        };
        let (job, bytes) = outcome?;
        if c.json {
            let mut v = job;
            v["file"] = Value::from(dest.to_string());
            output::json(&v);
            return Ok(());
        }
        let tl = &job["timelapse"];
        let secs = tl["duration_seconds"].as_f64().unwrap_or(0.0);
        let said = format!(
            "saved {dest} ({}, {}, {}, {secs:.1} s at {} fps)",
            output::bytes(bytes as i64),
            output::count(tl["frames"].as_i64().unwrap_or(0), "frame"),
            output::size(tl["width"].as_i64(), tl["height"].as_i64()),
            tl["fps"].as_i64().unwrap_or(0),
        );
        match dest {
            Dest::Stdout => eprintln!("{said}"),
            Dest::File(_) => output::line(said),
        }
        Ok(())
    })
}

/// A 503 `ffmpeg_missing` when asking for a video is the server's encoder missing, not a
/// camera's failure (which the shared mapping would make it): 8.
fn ffmpeg_is_the_servers(mut e: CliError) -> CliError {
    if e.code.as_deref() == Some("ffmpeg_missing") {
        e.exit = Exit::Server;
    }
    e
}

/// Wait for the job to end; when done, download its video. Returns the final job and the bytes
/// written. `finished` is set once the job has ended (a Ctrl-C after that cancels nothing).
async fn follow_and_fetch(
    c: &Client,
    location: &str,
    dest: &Dest,
    show: &Show,
    finished: &Cell<bool>,
) -> CliResult<(Value, u64)> {
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let job = loop {
        tick.tick().await;
        let job: Value = c.get(location, &[]).await?.parse()?;
        show.job(&job);
        if matches!(job["state"].as_str(), Some("done" | "failed" | "cancelled")) {
            break job;
        }
    };
    finished.set(true);
    show.done();
    let id = job["id"].as_str().unwrap_or("the job");
    if job["state"] != "done" {
        let code = job["code"].as_str().unwrap_or("internal");
        let why = job["error"].as_str().unwrap_or("no reason given");
        let message = if code == "cancelled" {
            format!("{id} was cancelled before it finished ({why})")
        } else {
            format!("{id} failed: {why}")
        };
        return Err(CliError {
            exit: exit_for_job(code),
            message,
            code: Some(code.to_string()),
        });
    }
    let url = job["timelapse"]["url"].as_str().ok_or_else(|| {
        CliError::new(
            Exit::NotFound,
            format!("{id} is done but its video is gone from the server (deleted already)"),
        )
    })?;
    let bar = show.download_bar(job["timelapse"]["size_bytes"].as_u64());
    let got = c
        .download(url, &[], dest, |done, _| {
            if let Some(b) = &bar {
                b.set_position(done);
            }
        })
        .await;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok((job, got?.bytes))
}

/// Ctrl-C or SIGTERM: cancel the job if it still runs, and say what became of it.
async fn interrupted(
    c: &Client,
    location: &str,
    id: &str,
    finished: bool,
    show: &Show,
) -> CliError {
    show.clear();
    let message = if finished {
        format!("interrupted; {id} had finished, its video stays on the server")
    } else {
        match c.delete(location).await {
            Ok(_) => format!("interrupted; cancelled {id} on the server"),
            // Finished in the meantime (409), or the server is gone: say so, still 130.
            Err(e) => format!("interrupted; {id} was not cancelled: {e}"),
        }
    };
    CliError::new(Exit::Interrupted, message)
}

/// How progress is shown: a bar on a terminal, lines on a pipe, nothing for `--json`.
struct Show {
    bar: Option<ProgressBar>,
    lines: bool,
    /// Lines mode: the last state and tenth of the way said, so each is said once.
    said: Cell<Option<(u8, i64)>>,
    id: String,
}

impl Show {
    fn new(c: &Client, job: &Value) -> Show {
        let id = job["id"].as_str().unwrap_or("job").to_string();
        let terminal = std::io::stderr().is_terminal();
        let bar = (!c.json && terminal).then(|| {
            let total = job["frames_total"].as_u64().unwrap_or(0);
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{msg:<22} [{bar:30}] {pos}/{len} frames")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        });
        Show {
            bar,
            lines: !c.json && !terminal,
            said: Cell::new(None),
            id,
        }
    }

    fn job(&self, job: &Value) {
        let state = job["state"].as_str().unwrap_or("?");
        let done = job["frames_done"].as_i64().unwrap_or(0);
        let total = job["frames_total"].as_i64().unwrap_or(0);
        let eta = job["eta_seconds"].as_f64();
        if let Some(bar) = &self.bar {
            bar.set_length(total.max(0) as u64);
            bar.set_position(done.max(0) as u64);
            bar.set_message(match (state, eta) {
                ("running", Some(e)) => format!("encoding, {}s left", e.ceil() as i64),
                ("running", None) => "encoding".to_string(),
                ("queued", _) => "queued".to_string(),
                (s, _) => s.to_string(),
            });
        } else if self.lines {
            let key = (state_rank(state), tenth(done, total));
            if self.said.get() != Some(key) {
                self.said.set(Some(key));
                eprintln!("heldar: {} {state}: {done}/{total} frames", self.id);
            }
        }
    }

    fn done(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    fn clear(&self) {
        self.done();
    }

    /// A byte bar for the download, on a terminal.
    fn download_bar(&self, size: Option<u64>) -> Option<ProgressBar> {
        self.bar.as_ref()?;
        let bar = ProgressBar::with_draw_target(size, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("downloading [{bar:30}] {bytes}/{total_bytes}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        Some(bar)
    }
}

fn state_rank(state: &str) -> u8 {
    match state {
        "queued" => 0,
        "running" => 1,
        _ => 2,
    }
}

/// Which tenth of the way `done` of `total` is (0..=10).
fn tenth(done: i64, total: i64) -> i64 {
    if total <= 0 {
        return 0;
    }
    (done.clamp(0, total) * 10) / total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_jobs_code_picks_its_exit_code() {
        assert_eq!(exit_for_job("no_frames"), Exit::Rejected);
        assert_eq!(exit_for_job("ffmpeg_missing"), Exit::Server);
        assert_eq!(exit_for_job("ffmpeg_failed"), Exit::Server);
        assert_eq!(exit_for_job("disk_full"), Exit::Server);
        assert_eq!(exit_for_job("interrupted"), Exit::Server);
        assert_eq!(exit_for_job("cancelled"), Exit::Other);
    }

    #[test]
    fn progress_lines_come_once_a_tenth() {
        assert_eq!(tenth(0, 48), 0);
        assert_eq!(tenth(5, 48), 1);
        assert_eq!(tenth(48, 48), 10);
        assert_eq!(tenth(60, 48), 10);
        assert_eq!(tenth(3, 0), 0);
    }
}
