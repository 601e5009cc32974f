//! `heldar nodes`: the Heldar nodes sharing the database and the cameras each holds —
//! `GET /api/v1/nodes` (docs/fleet.md) as a table, or unchanged with `--json`. Exit 0 when every
//! listed node is healthy, 8 when one is not (dead, draining or late), with the problems on
//! stderr.

use std::process::ExitCode;

use clap::Args;
use serde_json::Value;

use super::client::{self, CliError, Client, ClientArgs};
use super::exit::Exit;
use super::output;

#[derive(Args, Debug)]
pub struct Nodes {
    #[command(flatten)]
    client: ClientArgs,
}

pub fn run(args: Nodes) -> ExitCode {
    client::run(async move {
        let c = Client::new(&args.client)?;
        let reply = c.get("/api/v1/nodes", &[]).await?;
        let nodes: Vec<Value> = reply.parse()?;
        if c.json {
            output::raw_json(&reply.body);
        } else {
            output::line(table(&nodes));
        }
        let problems: Vec<String> = nodes
            .iter()
            .filter(|n| n["health"]["ok"] != true)
            .map(|n| {
                format!(
                    "{}: {}",
                    output::text(n, "id"),
                    output::text(&n["health"], "problem")
                )
            })
            .collect();
        if !problems.is_empty() {
            return Err(CliError::new(Exit::Server, problems.join("; ")));
        }
        Ok(())
    })
}

fn table(nodes: &[Value]) -> String {
    if nodes.is_empty() {
        return "no nodes (the scheduler is off on this server)".to_string();
    }
    let now = chrono::Utc::now();
    let mut t = output::table(&[
        "node",
        "machine",
        "version",
        "state",
        "cameras",
        "heartbeat",
        "started",
    ]);
    for n in nodes {
        let cams: Vec<&str> = n["cameras"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let shown = if cams.len() > 6 {
            format!("{}, …", cams[..6].join(", "))
        } else {
            cams.join(", ")
        };
        let me = if n["this_node"] == true { " *" } else { "" };
        t.add_row(vec![
            format!("{}{me}", output::text(n, "id")),
            output::text(n, "name"),
            output::text(n, "version"),
            output::text(n, "state"),
            format!("{} {}", cams.len(), output::clip(&shown, 60)),
            output::ago(output::ts(&n["heartbeat_at"]), now),
            output::ago(output::ts(&n["started_at"]), now),
        ]);
    }
    format!("{}\n* the node that answered", t.trim_fmt())
}
