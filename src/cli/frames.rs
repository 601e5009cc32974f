//! `heldar frames CAMERA [--from --to --tag --limit]` lists a camera's stored frames, newest first
//! (`GET /api/v1/cameras/{id}/snapshots`); `heldar frames get CAMERA ID|--latest|--at TIME`
//! downloads one.
//!
//! `get` first finds the frame's row — the newest (`--latest`), the newest at or before a time
//! (`--at`), or the one with that id — and then downloads the `url` the row names, so the file
//! name and the printed details are of the same frame even while new ones arrive. The API has
//! no lookup by frame id: an id is found by reading the list, newest first, a page of 5,000 at a
//! time (a stored file name such as `20261129T080005123Z.jpg` is fetched directly). Times take
//! the friendly forms of `when`.

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::{ArgGroup, Args, Subcommand};
use serde_json::Value;

use super::client::{self, seg, CliError, CliResult, Client, ClientArgs, Dest};
use super::exit::Exit;
use super::output;
use super::when::{time_arg, TIME_HELP};

/// The API's largest page.
const MAX_LIMIT: u32 = 5000;

#[derive(Args, Debug)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = TIME_HELP
)]
pub struct Frames {
    #[command(subcommand)]
    action: Option<Action>,
    #[command(flatten)]
    list: List,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Subcommand, Debug)]
enum Action {
    /// List stored frames (the same as `heldar frames CAMERA`).
    #[command(visible_alias = "ls", after_help = TIME_HELP)]
    List(List),
    /// Download one stored frame.
    Get(Get),
}

#[derive(Args, Debug)]
struct List {
    /// Camera id.
    #[arg(required = true)]
    camera: Option<String>,
    /// Only frames taken at or after this time.
    #[arg(long, value_name = "TIME", value_parser = time_arg, allow_hyphen_values = true)]
    from: Option<DateTime<Utc>>,
    /// Only frames taken at or before this time.
    #[arg(long, value_name = "TIME", value_parser = time_arg, allow_hyphen_values = true)]
    to: Option<DateTime<Utc>>,
    /// Only frames taken with this tag (`POST …/snapshot?store=true&tag=`, an MQTT trigger).
    #[arg(long, value_name = "TAG")]
    tag: Option<String>,
    /// At most this many, newest first (1 to 5000) [default: 500, the server's]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=5000))]
    limit: Option<u32>,
}

#[derive(Args, Debug)]
#[command(
    group(ArgGroup::new("which").required(true).args(["id", "latest", "at"])),
    after_help = TIME_HELP
)]
struct Get {
    /// Camera id.
    camera: String,
    /// Frame id (snp_…) or stored file name (20261129T080005123Z.jpg), as `frames` lists them.
    id: Option<String>,
    /// The newest stored frame.
    #[arg(long)]
    latest: bool,
    /// The newest frame taken at or before TIME (same forms as --from).
    #[arg(long, value_name = "TIME", value_parser = time_arg, allow_hyphen_values = true)]
    at: Option<DateTime<Utc>>,
    /// Where to save it; `-` writes it to stdout [default: CAMERA-YYYYmmdd-HHMMSS.jpg, the time
    /// it was taken]
    #[arg(short, long, value_name = "FILE")]
    output: Option<String>,
}

pub fn run(args: Frames) -> ExitCode {
    client::run(async move {
        let c = Client::new(&args.client)?;
        match args.action {
            Some(Action::Get(g)) => get(&c, g).await,
            Some(Action::List(l)) => list(&c, l).await,
            None => list(&c, args.list).await,
        }
    })
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

async fn list(c: &Client, l: List) -> CliResult<()> {
    let camera = l.camera.unwrap_or_default();
    let path = format!("/api/v1/cameras/{}/snapshots", seg("camera", &camera)?);
    let mut query = Vec::new();
    if let Some(f) = l.from {
        query.push(("from", rfc3339(f)));
    }
    if let Some(t) = l.to {
        query.push(("to", rfc3339(t)));
    }
    if let Some(tag) = &l.tag {
        query.push(("tag", tag.clone()));
    }
    if let Some(n) = l.limit {
        query.push(("limit", n.to_string()));
    }
    let reply = c.get(&path, &query).await?;
    let frames: Vec<Value> = reply.parse()?;
    let limit = l.limit.unwrap_or(500) as usize;
    if frames.len() >= limit {
        eprintln!(
            "heldar: the newest {} frames only; narrow --from/--to or raise --limit (at most \
             {MAX_LIMIT})",
            frames.len()
        );
    }
    if c.json {
        output::raw_json(&reply.body);
        return Ok(());
    }
    if frames.is_empty() {
        output::line(format!("no stored frames of {camera} in that time"));
        return Ok(());
    }
    let mut t = output::table(&["id", "taken", "size", "pixels", "schedule", "tag"]);
    for f in &frames {
        t.add_row(vec![
            output::text(f, "id"),
            output::time(output::ts(&f["taken_at"])),
            output::bytes(f["size_bytes"].as_i64().unwrap_or(0)),
            output::size(f["width"].as_i64(), f["height"].as_i64()),
            f["schedule_id"].as_str().unwrap_or("manual").to_string(),
            f["tag"].as_str().unwrap_or("").to_string(),
        ]);
    }
    output::line(t.trim_fmt());
    Ok(())
}

/// A stored frame's file name (`YYYYmmddTHHMMSSfffZ.jpg`, `-N` before `.jpg` on a clash).
fn is_file_name(s: &str) -> bool {
    let Some(stem) = s.strip_suffix(".jpg") else {
        return false;
    };
    let (time, n) = stem.split_once('-').unwrap_or((stem, "1"));
    let b = time.as_bytes();
    b.len() == 19
        && b[8] == b'T'
        && b[18] == b'Z'
        && b[..8].iter().chain(&b[9..18]).all(u8::is_ascii_digit)
        && !n.is_empty()
        && n.len() <= 4
        && n.bytes().all(|c| c.is_ascii_digit())
}

/// The time a stored file name says (`20261129T080005123Z.jpg` → 2026-11-29T08:00:05.123Z).
fn file_time(name: &str) -> Option<DateTime<Utc>> {
    let stamp = name.get(..19)?;
    chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%S%3fZ")
        .ok()
        .map(|t| t.and_utc())
}

async fn get(c: &Client, g: Get) -> CliResult<()> {
    let camera = seg("camera", &g.camera)?;
    let list_path = format!("/api/v1/cameras/{camera}/snapshots");
    let newest = |to: Option<DateTime<Utc>>| {
        let mut q = vec![("limit", "1".to_string())];
        if let Some(t) = to {
            q.push(("to", rfc3339(t)));
        }
        q
    };
    let frame: Option<Value> = if g.latest {
        first(c.get(&list_path, &newest(None)).await?.parse()?)
    } else if let Some(at) = g.at {
        first(c.get(&list_path, &newest(Some(at))).await?.parse()?)
    } else {
        let id = g.id.clone().unwrap_or_default();
        if is_file_name(&id) {
            None
        } else {
            Some(find(c, &list_path, &g.camera, &id).await?)
        }
    };
    let url = match &frame {
        Some(f) => f["url"]
            .as_str()
            .ok_or_else(|| CliError::other("the frame's row has no url"))?
            .to_string(),
        None if g.id.as_deref().is_some_and(is_file_name) => format!(
            "/media/snapshots/{camera}/{}",
            g.id.as_deref().unwrap_or_default()
        ),
        None => {
            let when =
                g.at.map(|t| format!(" at or before {}", output::time(Some(t))))
                    .unwrap_or_default();
            return Err(CliError::new(
                Exit::NotFound,
                format!("camera {} has no stored frames{when}", g.camera),
            ));
        }
    };
    let taken = match &frame {
        Some(f) => output::ts(&f["taken_at"]),
        None => g.id.as_deref().and_then(file_time),
    };
    let dest = match g.output.as_deref() {
        Some(o) => Dest::from_arg(o)?,
        None => {
            let stamp = taken
                .unwrap_or_else(Utc::now)
                .with_timezone(&chrono::Local)
                .format("%Y%m%d-%H%M%S");
            Dest::File(format!("{}-{stamp}.jpg", g.camera).into())
        }
    };
    if c.json && matches!(dest, Dest::Stdout) {
        return Err(CliError::usage(
            "-o - and --json both want stdout: choose one",
        ));
    }
    let got = c.download(&url, &[], &dest, |_, _| {}).await?;
    let taken = taken.or_else(|| {
        got.header("x-heldar-taken-at")
            .and_then(|t| output::ts(&Value::from(t)))
    });
    if c.json {
        let mut v = frame.unwrap_or_else(|| serde_json::json!({"camera_id": g.camera, "url": url}));
        v["file"] = Value::from(dest.to_string());
        output::json(&v);
        return Ok(());
    }
    let said = format!(
        "saved {dest} ({}, taken {})",
        output::bytes(got.bytes as i64),
        output::time(taken)
    );
    match dest {
        Dest::Stdout => eprintln!("{said}"),
        Dest::File(_) => output::line(said),
    }
    Ok(())
}

fn first(mut frames: Vec<Value>) -> Option<Value> {
    (!frames.is_empty()).then(|| frames.swap_remove(0))
}

/// The row of frame `id`, read from the list newest first, a page at a time.
async fn find(c: &Client, list_path: &str, camera: &str, id: &str) -> CliResult<Value> {
    let mut to: Option<String> = None;
    loop {
        let mut q = vec![("limit", MAX_LIMIT.to_string())];
        if let Some(t) = &to {
            q.push(("to", t.clone()));
        }
        let page: Vec<Value> = c.get(list_path, &q).await?.parse()?;
        if let Some(f) = page.iter().find(|f| f["id"] == id) {
            return Ok(f.clone());
        }
        // The next page ends at this page's oldest frame (bounds are inclusive, so frames of
        // that very millisecond are read again; a page that cannot move on is the last).
        let oldest = page
            .last()
            .and_then(|f| f["taken_at"].as_str())
            .map(str::to_string);
        if page.len() < MAX_LIMIT as usize || oldest.is_none() || oldest == to {
            return Err(CliError::new(
                Exit::NotFound,
                format!("camera {camera} has no stored frame {id:?}"),
            ));
        }
        to = oldest;
    }
}

#[cfg(test)]
mod tests {
    use super::{file_time, is_file_name};

    #[test]
    fn stored_file_names_are_told_from_ids() {
        assert!(is_file_name("20261129T080005123Z.jpg"));
        assert!(is_file_name("20261129T080005123Z-2.jpg"));
        assert!(!is_file_name("snp_0123456789abcdef0123456789abcdef"));
        assert!(!is_file_name("20261129T080005123Z-.jpg"));
        assert!(!is_file_name("../x.jpg"));
        assert_eq!(
            file_time("20261129T080005123Z-2.jpg").map(|t| t.to_rfc3339()),
            Some("2026-11-29T08:00:05.123+00:00".to_string())
        );
    }
}
