//! `heldar outages [CAMERA] [--open] [--from --to --limit]` lists outages — the periods a camera
//! was offline — newest first (`GET /api/v1/outages`): when each began and ended, how long it
//! lasted, how many captures failed and the first error. A table, or the API's JSON with
//! `--json`. docs/integrations.md says when a camera counts as offline.

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::Args;
use serde_json::Value;

use super::client::{self, CliResult, Client, ClientArgs};
use super::output;
use super::when::{time_arg, TIME_HELP};

#[derive(Args, Debug)]
#[command(after_help = TIME_HELP)]
pub struct Outages {
    /// Only this camera's outages.
    camera: Option<String>,
    /// Only outages still going on.
    #[arg(long)]
    open: bool,
    /// Only outages that lasted until this time or later.
    #[arg(long, value_name = "TIME", value_parser = time_arg, allow_hyphen_values = true)]
    from: Option<DateTime<Utc>>,
    /// Only outages that began at or before this time.
    #[arg(long, value_name = "TIME", value_parser = time_arg, allow_hyphen_values = true)]
    to: Option<DateTime<Utc>>,
    /// At most this many, newest first (1 to 5000) [default: 500, the server's]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=5000))]
    limit: Option<u32>,
    #[command(flatten)]
    client: ClientArgs,
}

pub fn run(args: Outages) -> ExitCode {
    client::run(async move {
        let c = Client::new(&args.client)?;
        list(&c, args).await
    })
}

/// `1h 02m`-style, for the duration column.
fn span(secs: f64) -> String {
    let s = secs.max(0.0).round() as i64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
    }
}

async fn list(c: &Client, a: Outages) -> CliResult<()> {
    let mut query = Vec::new();
    if let Some(cam) = &a.camera {
        query.push(("camera", cam.clone()));
    }
    if a.open {
        query.push(("open", "true".to_string()));
    }
    if let Some(f) = a.from {
        query.push(("from", crate::models::fmt_ts(f)));
    }
    if let Some(t) = a.to {
        query.push(("to", crate::models::fmt_ts(t)));
    }
    if let Some(n) = a.limit {
        query.push(("limit", n.to_string()));
    }
    let reply = c.get("/api/v1/outages", &query).await?;
    let outages: Vec<Value> = reply.parse()?;
    if c.json {
        output::raw_json(&reply.body);
        return Ok(());
    }
    if outages.is_empty() {
        output::line(if a.open {
            "no camera is offline"
        } else {
            "no outages"
        });
        return Ok(());
    }
    let now = Utc::now();
    let mut t = output::table(&["camera", "from", "to", "lasted", "failures", "first error"]);
    for o in &outages {
        let from = output::ts(&o["started_at"]);
        let to = output::ts(&o["ended_at"]);
        let lasted = match (o["duration_s"].as_f64(), from) {
            (Some(d), _) => span(d),
            (None, Some(f)) => format!("{} so far", span((now - f).num_seconds() as f64)),
            _ => "-".into(),
        };
        t.add_row(vec![
            output::text(o, "camera_id"),
            output::time(from),
            if to.is_some() {
                output::time(to)
            } else {
                "offline now".to_string()
            },
            lasted,
            o["failures"].as_i64().unwrap_or(0).to_string(),
            output::clip(o["first_error"].as_str().unwrap_or("-"), 60),
        ]);
    }
    output::line(t);
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_read_like_a_clock() {
        assert_eq!(super::span(42.4), "42s");
        assert_eq!(super::span(125.0), "2m 05s");
        assert_eq!(super::span(3720.0), "1h 02m");
    }
}
