//! `heldar events [--camera ID]`: tails the event stream (`GET /api/v1/events`, Server-Sent
//! Events) — one line per event for people, one JSON object per line with `--json` (the event
//! as the API sends it, with its kind in `type`; a `{"type": "lagged", "missed": N}` line when
//! this client fell behind and Heldar dropped events for it).
//!
//! It says on stderr when it is listening (from then on nothing is missed), and ends with
//! status 0 on Ctrl-C (SIGINT), SIGTERM, or when Heldar closes the stream (a shutdown). Heldar
//! sends a keep-alive every 15 s; a stream silent for [`SILENCE`] is taken as a lost connection
//! (exit 6). Kinds this version does not know are still printed, as their JSON.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use futures_util::StreamExt;
use serde_json::Value;

use super::client::{self, CliError, Client, ClientArgs};
use super::exit::Exit;
use super::output;

/// How long a stream may say nothing (not even its 15-second keep-alive) before the
/// connection is given up as lost.
const SILENCE: Duration = Duration::from_secs(45);

#[derive(Args, Debug)]
pub struct Events {
    /// Only events about this camera.
    #[arg(long, value_name = "ID")]
    camera: Option<String>,
    #[command(flatten)]
    client: ClientArgs,
}

pub fn run(args: Events) -> ExitCode {
    client::run(async move {
        let c = Client::new(&args.client)?;
        let query: Vec<(&str, String)> = args
            .camera
            .iter()
            .map(|cam| ("camera", cam.clone()))
            .collect();
        let resp = c.open_stream("/api/v1/events", &query).await?;
        let mut body = resp.bytes_stream();
        let mut parser = SseParser::default();
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())
            .map_err(|e| CliError::other(format!("cannot watch for SIGTERM: {e}")))?;
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        loop {
            let chunk = tokio::select! {
                _ = &mut ctrl_c => return Ok(()),
                _ = term.recv() => return Ok(()),
                next = tokio::time::timeout(SILENCE, body.next()) => next,
            };
            let chunk = match chunk {
                Err(_) => {
                    return Err(CliError::new(
                        Exit::Unreachable,
                        format!(
                            "no word from Heldar at {} for {} s (it sends a keep-alive every \
                             15 s); the connection is lost",
                            c.base(),
                            SILENCE.as_secs()
                        ),
                    ))
                }
                Ok(None) => {
                    eprintln!("heldar: Heldar closed the event stream");
                    return Ok(());
                }
                Ok(Some(Err(e))) => {
                    return Err(CliError::new(
                        Exit::Unreachable,
                        format!("the event stream from {} broke: {e}", c.base()),
                    ))
                }
                Ok(Some(Ok(b))) => b,
            };
            for (kind, data) in parser.push(&chunk) {
                show(&c, args.camera.as_deref(), &kind, &data);
            }
        }
    })
}

fn show(c: &Client, camera: Option<&str>, kind: &str, data: &str) {
    let v: Value = serde_json::from_str(data).unwrap_or(Value::Null);
    match kind {
        "ready" => {
            let which = camera.map_or("all cameras".to_string(), |c| format!("camera {c}"));
            eprintln!(
                "heldar: listening to events of {which} at {} (Ctrl-C to stop)",
                c.base()
            );
        }
        "lagged" => {
            let missed = v["missed"].as_u64().unwrap_or(0);
            eprintln!("heldar: fell behind; Heldar dropped {missed} events for this client");
            if c.json {
                output::json(&serde_json::json!({"type": "lagged", "missed": missed}));
            }
        }
        _ if c.json => output::raw_json(data.as_bytes()),
        _ => output::line(human(kind, &v)),
    }
}

/// One line for a person: local time, kind, camera, what happened.
fn human(kind: &str, v: &Value) -> String {
    let when = output::ts(&v["taken_at"])
        .or_else(|| output::ts(&v["at"]))
        .or_else(|| output::ts(&v["slot"]))
        .or_else(|| output::ts(&v["since"]))
        .or_else(|| output::ts(&v["to"]))
        .unwrap_or_else(chrono::Utc::now)
        .with_timezone(&chrono::Local)
        .format("%H:%M:%S");
    // Every event names its camera `camera_id`; a server before that said `camera` on most.
    let cam = if v["camera_id"].is_string() {
        output::text(v, "camera_id")
    } else {
        output::text(v, "camera")
    };
    let what = match kind {
        "frame.stored" => format!(
            "{} {}, {} ({})",
            output::size(v["width"].as_i64(), v["height"].as_i64()),
            output::bytes(v["size_bytes"].as_i64().unwrap_or(0)),
            output::text(v, "snapshot_id"),
            v["schedule"].as_str().unwrap_or("manual")
        ),
        "capture.failed" => format!("{}: {}", output::text(v, "code"), output::text(v, "error")),
        "camera.state_changed" => {
            let mut s = format!("{} → {}", output::text(v, "from"), output::text(v, "to"));
            if let Some(e) = v["last_error"].as_str() {
                s.push_str(&format!(": {e}"));
            }
            s
        }
        "slot.skipped" => format!(
            "{} skipped: {} (mean luma {})",
            output::text(v, "schedule_id"),
            output::text(v, "reason"),
            v["luma"]
        ),
        "camera.offline" => format!(
            "offline after {} failures: {}",
            v["consecutive_failures"],
            v["first_error"].as_str().unwrap_or("no frame for too long")
        ),
        "camera.recovered" => format!(
            "back after {}",
            crate::cli::when::fmt_span(v["duration_s"].as_f64().unwrap_or(0.0).round() as i64)
        ),
        "camera.changed" => output::text(v, "change"),
        "schedule.changed" => format!(
            "{} {}",
            output::text(v, "schedule"),
            output::text(v, "change")
        ),
        _ => v.to_string(),
    };
    format!("{when}  {kind:<20}  {cam:<16}  {what}")
}

/// The part of an SSE parser this stream needs: `event:` and `data:` fields, comments (`:`)
/// skipped, an event dispatched at a blank line; bytes are kept until a whole line is in, so a
/// chunk may end anywhere (even inside a UTF-8 character).
#[derive(Default)]
struct SseParser {
    pending: Vec<u8>,
    event: String,
    data: Vec<String>,
}

impl SseParser {
    /// Feed bytes; get every complete event: (kind, data).
    fn push(&mut self, bytes: &[u8]) -> Vec<(String, String)> {
        self.pending.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(pos) = self.pending.iter().position(|b| *b == b'\n') {
            let raw: Vec<u8> = self.pending.drain(..=pos).collect();
            let line = String::from_utf8_lossy(&raw);
            let line = line.trim_end_matches('\n').trim_end_matches('\r');
            if line.is_empty() {
                if !self.data.is_empty() {
                    let kind = if self.event.is_empty() {
                        "message".to_string()
                    } else {
                        std::mem::take(&mut self.event)
                    };
                    out.push((kind, self.data.join("\n")));
                }
                self.event.clear();
                self.data.clear();
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => self.event = value.to_string(),
                "data" => self.data.push(value.to_string()),
                _ => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_read_across_chunk_boundaries_and_comments_skipped() {
        let mut p = SseParser::default();
        let text = "event: ready\ndata: {}\n\n: keep-alive\n\nevent: frame.stored\r\ndata: {\"camera\":\"caf\u{e9}\"}\r\n\r\n";
        let mut got = Vec::new();
        // Byte by byte: every boundary, including inside "é".
        for b in text.as_bytes() {
            got.extend(p.push(std::slice::from_ref(b)));
        }
        assert_eq!(
            got,
            vec![
                ("ready".to_string(), "{}".to_string()),
                (
                    "frame.stored".to_string(),
                    "{\"camera\":\"caf\u{e9}\"}".to_string()
                ),
            ]
        );
    }

    #[test]
    fn a_line_per_event_names_kind_camera_and_what_happened() {
        let v: Value = serde_json::json!({"type": "capture.failed", "camera": "gate",
            "code": "timeout", "error": "no frame within 20 s", "at": "2026-11-29T08:00:00Z"});
        let line = human("capture.failed", &v);
        assert!(
            line.contains("capture.failed") && line.contains("gate"),
            "{line}"
        );
        assert!(line.contains("timeout: no frame within 20 s"), "{line}");
        let v: Value = serde_json::json!({"type": "slot.skipped", "camera_id": "yard",
            "schedule_id": "sch_1", "slot": "2026-11-29T08:00:00Z", "reason": "dark", "luma": 3});
        let line = human("slot.skipped", &v);
        assert!(line.contains("yard"), "{line}");
        assert!(line.contains("sch_1 skipped: dark (mean luma 3)"), "{line}");
        let v: Value = serde_json::json!({"type": "camera.offline", "camera_id": "gate",
            "outage_id": "out_1", "since": "2026-11-29T08:00:00Z", "consecutive_failures": 3,
            "first_error": "camera gate: answered 500"});
        let line = human("camera.offline", &v);
        assert!(line.contains("gate"), "{line}");
        assert!(
            line.contains("offline after 3 failures: camera gate: answered 500"),
            "{line}"
        );
        let v: Value = serde_json::json!({"type": "camera.recovered", "camera_id": "gate",
            "outage_id": "out_1", "from": "2026-11-29T08:00:00Z", "to": "2026-11-29T08:05:00Z",
            "duration_s": 300.0});
        let line = human("camera.recovered", &v);
        assert!(
            line.contains("gate") && line.contains("back after 5m"),
            "{line}"
        );
    }
}
