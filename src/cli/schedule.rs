//! `heldar schedule add | list | set | rm`: interval snapshot schedules of a running Heldar
//! (`/api/v1/cameras/{id}/snapshot-schedules`, `/api/v1/snapshot-schedules/{id}`).
//!
//! Intervals are typed as spans (`--every 60s`, `5m`, `1h30m`) and shown the same way. Heldar
//! clamps an interval to 5 s … 1 d; when it did, the command says so on stderr. `list` without a
//! camera asks for every schedule at once (`GET /api/v1/snapshot-schedules`, following its
//! pages) and, from a Heldar without that route (404/405), asks camera by camera instead, so
//! it works against older servers too.

use std::process::ExitCode;

use clap::{ArgGroup, Args, Subcommand};
use serde_json::{json, Map, Value};

use super::client::{self, seg, CliError, CliResult, Client, ClientArgs, Listing};
use super::exit::Exit;
use super::output;
use super::when::{fmt_span, parse_every};

#[derive(Args, Debug)]
pub struct Schedule {
    #[command(subcommand)]
    action: Action,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Subcommand, Debug)]
enum Action {
    /// Give a camera an interval schedule (operator).
    Add {
        /// Camera id.
        camera: String,
        /// Time between frames: seconds, or a span such as 60s, 5m, 1h, 1h30m [default: 5m]
        #[arg(long, value_name = "SPAN", value_parser = parse_every)]
        every: Option<i64>,
        /// Create it paused.
        #[arg(long)]
        disabled: bool,
        #[command(flatten)]
        frames: FrameArgs,
    },
    /// Schedules of one camera, or of all.
    #[command(visible_alias = "ls")]
    List {
        /// Camera id [default: every camera]
        camera: Option<String>,
    },
    /// Change a schedule's interval, or pause and resume it (operator).
    #[command(group(ArgGroup::new("change").required(true).multiple(true)
        .args(FrameArgs::IDS)))]
    Set {
        /// Schedule id (sch_…), as `schedule list` shows it.
        id: String,
        /// New interval: seconds, or a span such as 60s, 5m, 1h.
        #[arg(long, value_name = "SPAN", value_parser = parse_every, group = "change")]
        every: Option<i64>,
        /// Resume taking frames.
        #[arg(long, group = "change", conflicts_with = "disable")]
        enable: bool,
        /// Pause: no frames until --enable.
        #[arg(long, group = "change")]
        disable: bool,
        #[command(flatten)]
        frames: FrameArgs,
    },
    /// Delete a schedule (its frames stay) (operator).
    #[command(visible_alias = "remove")]
    Rm {
        /// Schedule id.
        id: String,
    },
}

pub fn run(args: Schedule) -> ExitCode {
    client::run(async move {
        let c = Client::new(&args.client)?;
        match args.action {
            Action::Add {
                camera,
                every,
                disabled,
                frames,
            } => {
                let mut body = frames.body();
                if let Some(e) = every {
                    body.insert("interval_seconds".into(), json!(e));
                }
                if disabled {
                    body.insert("enabled".into(), json!(false));
                }
                let path = format!(
                    "/api/v1/cameras/{}/snapshot-schedules",
                    seg("camera", &camera)?
                );
                let reply = c.post_json(&path, &Value::Object(body)).await?;
                let s: Value = reply.parse()?;
                note_clamp(every, &s);
                if c.json {
                    output::raw_json(&reply.body);
                } else {
                    output::line(format!("added schedule {}", describe(&s)));
                }
                Ok(())
            }
            Action::List { camera } => list(&c, camera.as_deref()).await,
            Action::Set {
                id,
                every,
                enable,
                disable,
                frames,
            } => {
                let mut body = frames.body();
                if let Some(e) = every {
                    body.insert("interval_seconds".into(), json!(e));
                }
                if enable || disable {
                    body.insert("enabled".into(), json!(enable));
                }
                let path = format!("/api/v1/snapshot-schedules/{}", seg("schedule", &id)?);
                let reply = c.patch_json(&path, &Value::Object(body)).await?;
                let s: Value = reply.parse()?;
                note_clamp(every, &s);
                if c.json {
                    output::raw_json(&reply.body);
                } else {
                    output::line(format!("changed schedule {}", describe(&s)));
                }
                Ok(())
            }
            Action::Rm { id } => {
                let path = format!("/api/v1/snapshot-schedules/{}", seg("schedule", &id)?);
                c.delete(&path).await?;
                if !c.json {
                    output::line(format!("removed schedule {id}; its frames stay"));
                }
                Ok(())
            }
        }
    })
}

/// Which frames a schedule keeps, where they come from and how long (docs/schedules.md): the
/// flags `add` and `set` share. Each given flag sets its field; `set` leaves the others.
#[derive(Args, Debug)]
struct FrameArgs {
    /// Skip frames darker than --dark-threshold (night).
    #[arg(long, conflicts_with = "no_skip_dark")]
    skip_dark: bool,
    /// Keep dark frames again.
    #[arg(long)]
    no_skip_dark: bool,
    /// Mean luma 0-255 under which a frame is dark, or `default` (16).
    #[arg(long, value_name = "N", value_parser = parse_threshold)]
    dark_threshold: Option<Value>,
    /// Skip frames that look like the previous stored frame.
    #[arg(long, conflicts_with = "no_skip_unchanged")]
    skip_unchanged: bool,
    /// Keep unchanged frames again.
    #[arg(long)]
    no_skip_unchanged: bool,
    /// Take frames from the camera's main stream, sub stream or snapshot URL, or `camera` for
    /// the camera's own choice.
    #[arg(long, value_name = "S", value_parser = ["main", "sub", "snapshot", "camera"])]
    stream: Option<String>,
    /// Keep this schedule's frames H hours instead of the global age limit, or `global`.
    #[arg(long, value_name = "H", value_parser = parse_retention)]
    retention_hours: Option<Value>,
}

impl FrameArgs {
    /// The argument ids, for `set`'s "something to change" group.
    const IDS: [&'static str; 7] = [
        "skip_dark",
        "no_skip_dark",
        "dark_threshold",
        "skip_unchanged",
        "no_skip_unchanged",
        "stream",
        "retention_hours",
    ];

    /// The API fields of the flags given.
    fn body(&self) -> Map<String, Value> {
        let mut m = Map::new();
        if self.skip_dark || self.no_skip_dark {
            m.insert("skip_dark".into(), json!(self.skip_dark));
        }
        if self.skip_unchanged || self.no_skip_unchanged {
            m.insert("skip_unchanged".into(), json!(self.skip_unchanged));
        }
        if let Some(v) = &self.dark_threshold {
            m.insert("dark_threshold".into(), v.clone());
        }
        if let Some(s) = &self.stream {
            let v = if s == "camera" { Value::Null } else { json!(s) };
            m.insert("stream".into(), v);
        }
        if let Some(v) = &self.retention_hours {
            m.insert("retention_hours".into(), v.clone());
        }
        m
    }
}

/// `--dark-threshold`: 0 to 255, or `default` (null).
fn parse_threshold(s: &str) -> Result<Value, String> {
    if s == "default" {
        return Ok(Value::Null);
    }
    match s.parse::<u8>() {
        Ok(n) => Ok(json!(n)),
        Err(_) => Err(format!(
            "{s:?} is not a mean luma: give 0 to 255, or default"
        )),
    }
}

/// `--retention-hours`: a positive number of hours, or `global` (null).
fn parse_retention(s: &str) -> Result<Value, String> {
    if s == "global" {
        return Ok(Value::Null);
    }
    match s.parse::<i64>() {
        Ok(n) if n >= 1 => Ok(json!(n)),
        _ => Err(format!(
            "{s:?} is not a number of hours: give 1 or more, or global"
        )),
    }
}

/// `sch_…: gate every 1m, next frame 2026-11-29 08:01:00` (or `, paused`).
fn describe(s: &Value) -> String {
    let every = s["interval_seconds"].as_i64().map_or("?".into(), fmt_span);
    let state = if s["enabled"] == true {
        format!("next frame {}", output::time(output::ts(&s["next_due_at"])))
    } else {
        "paused".to_string()
    };
    format!(
        "{}: {} every {every}, {state}{}",
        output::text(s, "id"),
        output::text(s, "camera_id"),
        rules(s)
    )
}

/// `; skips dark (< 16) and unchanged frames, from the sub stream, kept 48h`, or nothing.
fn rules(s: &Value) -> String {
    let mut out = Vec::new();
    let skips: Vec<String> = [
        (s["skip_dark"] == true).then(|| {
            let t = s["dark_threshold"].as_i64().unwrap_or(16);
            format!("dark (< {t})")
        }),
        (s["skip_unchanged"] == true).then(|| "unchanged".to_string()),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !skips.is_empty() {
        out.push(format!("skips {} frames", skips.join(" and ")));
    }
    if let Some(stream) = s["stream"].as_str() {
        out.push(format!("from the {stream} stream"));
    }
    if let Some(h) = s["retention_hours"].as_i64() {
        out.push(format!("kept {h}h"));
    }
    if out.is_empty() {
        String::new()
    } else {
        format!("; {}", out.join(", "))
    }
}

/// Heldar clamps intervals; say so when the one asked for is not the one in use.
fn note_clamp(asked: Option<i64>, s: &Value) {
    if let (Some(asked), Some(got)) = (asked, s["interval_seconds"].as_i64()) {
        if asked != got {
            eprintln!(
                "heldar: note: Heldar keeps intervals between 5s and 1d; this one is {}",
                fmt_span(got)
            );
        }
    }
}

async fn list(c: &Client, camera: Option<&str>) -> CliResult<()> {
    let listing = match camera {
        Some(cam) => {
            let path = format!("/api/v1/cameras/{}/snapshot-schedules", seg("camera", cam)?);
            c.get_all(&path, &[]).await?
        }
        None => every_schedule(c).await?,
    };
    if c.json {
        listing.print_json();
        return Ok(());
    }
    let all = listing.items;
    if all.is_empty() {
        output::line("no schedules; add one with: heldar schedule add CAMERA --every 5m");
        return Ok(());
    }
    let mut t = output::table(&["id", "camera", "every", "state", "next frame", "last fired"]);
    for s in &all {
        t.add_row(vec![
            output::text(s, "id"),
            output::text(s, "camera_id"),
            s["interval_seconds"].as_i64().map_or("?".into(), fmt_span),
            if s["enabled"] == true { "on" } else { "paused" }.to_string(),
            if s["enabled"] == true {
                output::time(output::ts(&s["next_due_at"]))
            } else {
                "-".to_string()
            },
            output::time(output::ts(&s["last_fired_at"])),
        ]);
    }
    output::line(t.trim_fmt());
    Ok(())
}

/// Every schedule: the list-all route where the server has it, else camera by camera.
async fn every_schedule(c: &Client) -> CliResult<Listing> {
    match c.get_all("/api/v1/snapshot-schedules", &[]).await {
        Ok(all) => return Ok(all),
        Err(e) if is_missing_route(&e) => {}
        Err(e) => return Err(e),
    }
    let cameras = c.get_all("/api/v1/cameras", &[]).await?.items;
    let mut all = Vec::new();
    for cam in cameras {
        let Some(id) = cam["id"].as_str() else {
            continue;
        };
        let path = format!("/api/v1/cameras/{}/snapshot-schedules", seg("camera", id)?);
        match c.get_all(&path, &[]).await {
            Ok(list) => all.extend(list.items),
            // Deleted between the two calls: it has no schedules any more.
            Err(e) if e.exit == Exit::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Listing {
        items: all,
        raw: None,
    })
}

/// A server older than `GET /api/v1/snapshot-schedules`: 404 (no route) or 405 (the path
/// exists for other methods).
fn is_missing_route(e: &CliError) -> bool {
    matches!(
        e.code.as_deref(),
        Some("not_found") | Some("method_not_allowed")
    )
}
