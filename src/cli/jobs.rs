//! `heldar jobs [--camera ID] [--state S]` lists the server's background jobs (timelapse
//! exports, newest first: `GET /api/v1/jobs`); `heldar jobs show ID` shows one
//! (`GET /api/v1/jobs/{id}`); `heldar jobs cancel ID` cancels a queued or running one
//! (`DELETE /api/v1/jobs/{id}`; a finished one is a conflict, exit 7, with the API's sentence).
//!
//! It only reads and cancels: jobs are started by `heldar timelapse` (or the API, the dashboard
//! and timelapse rules). Finished jobs are kept by the server for 7 days.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::Value;

use super::client::{self, seg, CliResult, Client, ClientArgs};
use super::output;

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Jobs {
    #[command(subcommand)]
    action: Option<Action>,
    #[command(flatten)]
    list: List,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Subcommand, Debug)]
enum Action {
    /// List jobs, newest first (the same as `heldar jobs`).
    #[command(visible_alias = "ls")]
    List(List),
    /// One job: state, progress, its video or its error.
    Show {
        /// Job id (job_…), as `heldar jobs` lists it.
        id: String,
    },
    /// Cancel a queued or running job (operator): its ffmpeg is stopped, its partial file
    /// removed.
    Cancel {
        /// Job id.
        id: String,
    },
}

#[derive(Args, Debug)]
struct List {
    /// Only this camera's jobs.
    #[arg(long, value_name = "ID")]
    camera: Option<String>,
    /// Only jobs in this state.
    #[arg(long, value_parser = ["queued", "running", "done", "failed", "cancelled"])]
    state: Option<String>,
}

pub fn run(args: Jobs) -> ExitCode {
    client::run(async move {
        let c = Client::new(&args.client)?;
        match args.action {
            None => list(&c, args.list).await,
            Some(Action::List(l)) => list(&c, l).await,
            Some(Action::Show { id }) => {
                let reply = c
                    .get(&format!("/api/v1/jobs/{}", seg("job", &id)?), &[])
                    .await?;
                if c.json {
                    output::raw_json(&reply.body);
                } else {
                    output::line(details(&reply.parse()?).trim_fmt());
                }
                Ok(())
            }
            Some(Action::Cancel { id }) => {
                let reply = c
                    .delete(&format!("/api/v1/jobs/{}", seg("job", &id)?))
                    .await?;
                if c.json {
                    output::raw_json(&reply.body);
                } else {
                    let job: Value = reply.parse()?;
                    output::line(format!(
                        "cancelled {id} ({} of {} frames were encoded)",
                        job["frames_done"].as_i64().unwrap_or(0),
                        job["frames_total"].as_i64().unwrap_or(0)
                    ));
                }
                Ok(())
            }
        }
    })
}

async fn list(c: &Client, l: List) -> CliResult<()> {
    let mut query = Vec::new();
    if let Some(cam) = l.camera {
        query.push(("camera", cam));
    }
    if let Some(s) = l.state {
        query.push(("state", s));
    }
    let reply = c.get("/api/v1/jobs", &query).await?;
    let jobs: Vec<Value> = reply.parse()?;
    if c.json {
        output::raw_json(&reply.body);
        return Ok(());
    }
    if jobs.is_empty() {
        output::line("no jobs (finished ones are kept for 7 days)");
        return Ok(());
    }
    let mut t = output::table(&["id", "camera", "state", "progress", "output", "created"]);
    for j in &jobs {
        t.add_row(vec![
            output::text(j, "id"),
            output::text(j, "camera_id"),
            state(j),
            progress(j),
            j["output_bytes"]
                .as_i64()
                .map_or_else(|| "-".to_string(), output::bytes),
            output::time(output::ts(&j["created_at"])),
        ]);
    }
    output::line(t.trim_fmt());
    Ok(())
}

/// `running`, or `failed (ffmpeg_failed)` with the reason's code.
fn state(j: &Value) -> String {
    let s = output::text(j, "state");
    match j["code"].as_str() {
        Some(code) if s == "failed" => format!("{s} ({code})"),
        _ => s,
    }
}

/// `310/720 (43%)`.
fn progress(j: &Value) -> String {
    let done = j["frames_done"].as_i64().unwrap_or(0);
    let total = j["frames_total"].as_i64().unwrap_or(0);
    if total > 0 {
        format!("{done}/{total} ({}%)", done.clamp(0, total) * 100 / total)
    } else {
        format!("{done}/{total}")
    }
}

fn details(j: &Value) -> comfy_table::Table {
    let mut rows = vec![
        ("id", output::text(j, "id")),
        ("kind", output::text(j, "kind")),
        ("camera", output::text(j, "camera_id")),
        ("state", state(j)),
        ("progress", progress(j)),
    ];
    if let Some(eta) = j["eta_seconds"].as_f64() {
        rows.push(("time left", format!("{} s", eta.ceil() as i64)));
    }
    if let Some(n) = j["output_bytes"].as_i64() {
        rows.push(("output", output::bytes(n)));
    }
    if let Some(e) = j["error"].as_str() {
        rows.push(("error", e.to_string()));
    }
    rows.push(("created", output::time(output::ts(&j["created_at"]))));
    rows.push(("started", output::time(output::ts(&j["started_at"]))));
    rows.push(("finished", output::time(output::ts(&j["finished_at"]))));
    let tl = &j["timelapse"];
    if tl.is_object() {
        rows.push(("video", output::text(tl, "id")));
        rows.push((
            "frames",
            format!(
                "{}, {}, {:.1} s at {} fps, {}",
                tl["frames"].as_i64().unwrap_or(0),
                output::size(tl["width"].as_i64(), tl["height"].as_i64()),
                tl["duration_seconds"].as_f64().unwrap_or(0.0),
                tl["fps"].as_i64().unwrap_or(0),
                output::text(tl, "format"),
            ),
        ));
        rows.push(("url", output::text(tl, "url")));
    }
    output::pairs(&rows)
}
