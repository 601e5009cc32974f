//! `heldar status`: is Heldar well, and how is each camera — `GET /api/v1/system` (health, disk,
//! retention, scheduler and per-camera capture counts in one answer). Exit 0 when its health
//! checks pass, 8 when it reports itself degraded (a script's health check), with the problems
//! on stderr; `--json` prints the API's answer unchanged either way.

use std::process::ExitCode;

use clap::Args;
use serde_json::Value;

use super::client::{self, CliError, Client, ClientArgs};
use super::exit::Exit;
use super::output;

#[derive(Args, Debug)]
pub struct Status {
    #[command(flatten)]
    client: ClientArgs,
}

pub fn run(args: Status) -> ExitCode {
    client::run(async move {
        let c = Client::new(&args.client)?;
        let reply = c.get("/api/v1/system", &[]).await?;
        let sys: Value = reply.parse()?;
        if c.json {
            output::raw_json(&reply.body);
        } else {
            output::line(summary(&c, &sys));
            output::line("");
            output::line(cameras(&sys));
        }
        let health = &sys["health"];
        if health["status"] != "ok" {
            let problems: Vec<&str> = health["problems"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            return Err(CliError::new(
                Exit::Server,
                format!("Heldar is degraded: {}", problems.join("; ")),
            ));
        }
        Ok(())
    })
}

fn summary(c: &Client, sys: &Value) -> String {
    let health = &sys["health"];
    let disk = &sys["disk"];
    let ret = &sys["retention"];
    let bytes = |v: &Value| v.as_i64().map_or("?".to_string(), output::bytes);
    let up = sys["uptime_seconds"]
        .as_i64()
        .map_or("?".into(), super::when::fmt_span);
    let mut lines = vec![
        format!(
            "Heldar {} at {}, up {up}: {}",
            output::text(sys, "version"),
            c.base(),
            output::text(health, "status")
        ),
        format!(
            "disk: {} free (floor {}); {}, {} in {}",
            bytes(&disk["free_bytes"]),
            bytes(&health["min_free_disk_bytes"]),
            output::count(disk["stored_frames"].as_i64().unwrap_or(0), "frame"),
            bytes(&disk["stored_bytes"]),
            output::text(disk, "snapshots_dir")
        ),
        format!(
            "retention: {}; {}; scheduler {}",
            ret["max_age_hours"]
                .as_i64()
                .map_or("frames kept forever".into(), |h| format!(
                    "frames older than {h} h removed"
                )),
            ret["max_bytes"]
                .as_i64()
                .map_or("no size cap".into(), |b| format!(
                    "cap {}",
                    output::bytes(b)
                )),
            if sys["scheduler"]["enabled"] == true {
                "on"
            } else {
                "off"
            }
        ),
    ];
    if let Some(problems) = health["problems"].as_array() {
        for p in problems.iter().filter_map(Value::as_str) {
            lines.push(format!("problem: {p}"));
        }
    }
    lines.join("\n")
}

fn cameras(sys: &Value) -> String {
    let cams = sys["cameras"].as_array().cloned().unwrap_or_default();
    if cams.is_empty() {
        return "no cameras yet".to_string();
    }
    let now = chrono::Utc::now();
    let mut t = output::table(&[
        "camera",
        "state",
        "ok",
        "failed",
        "last frame",
        "stored",
        "last error",
    ]);
    for cam in &cams {
        t.add_row(vec![
            output::text(cam, "id"),
            output::text(cam, "state"),
            cam["captures_ok"].to_string(),
            cam["captures_failed"].to_string(),
            // The newest stored frame, not the last good capture (a live one keeps none).
            output::ago(output::ts(&cam["newest_frame_at"]), now),
            format!(
                "{} ({})",
                cam["stored_frames"].as_i64().unwrap_or(0),
                output::bytes(cam["stored_bytes"].as_i64().unwrap_or(0))
            ),
            cam["last_error"]
                .as_str()
                .map_or("-".to_string(), |e| output::clip(e, 60)),
        ]);
    }
    t.trim_fmt()
}
