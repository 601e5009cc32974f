//! `heldar discover [--wait-ms N] [--interface IP] [--subnet CIDR]`: the ONVIF cameras on the
//! server's local network (`POST /api/v1/discovery`; the server sends the WS-Discovery probe, so
//! it finds what is on *its* network, not the CLI's). A table of address, port, name, hardware,
//! location and the registered camera at that address, or the API's JSON with `--json`.
//! docs/onvif.md says what is sent and what multicast needs.

use std::process::ExitCode;

use clap::Args;
use serde_json::{json, Value};

use super::client::{self, Client, ClientArgs};
use super::output;

#[derive(Args, Debug)]
pub struct Discover {
    /// How long the server collects answers, in milliseconds (100 to 10000)
    #[arg(long, value_name = "MS", default_value = "3000",
          value_parser = clap::value_parser!(u32).range(100..=10000))]
    wait_ms: u32,
    /// The IPv4 address of the server's interface to probe from (default: its default route)
    #[arg(long, value_name = "IP")]
    interface: Option<String>,
    /// Only devices in this CIDR block (192.168.1.0/24)
    #[arg(long, value_name = "CIDR")]
    subnet: Option<String>,
    #[command(flatten)]
    client: ClientArgs,
}

pub fn run(args: Discover) -> ExitCode {
    client::run(async move {
        let c = Client::new(&args.client)?;
        let mut body = json!({"timeout_ms": args.wait_ms});
        if let Some(i) = &args.interface {
            body["interface"] = json!(i);
        }
        if let Some(s) = &args.subnet {
            body["subnet"] = json!(s);
        }
        let reply = c.post_json("/api/v1/discovery", &body).await?;
        let found: Value = reply.parse()?;
        if c.json {
            output::raw_json(&reply.body);
            return Ok(());
        }
        let devices = found["devices"].as_array().cloned().unwrap_or_default();
        if devices.is_empty() {
            output::line(
                "no ONVIF device answered (same network segment? UDP 3702 open? see docs/onvif.md)",
            );
            return Ok(());
        }
        let mut t = output::table(&["address", "port", "name", "hardware", "location", "camera"]);
        let or_dash = |v: &Value| v.as_str().map_or("-".to_string(), |s| output::clip(s, 40));
        for d in &devices {
            t.add_row(vec![
                output::text(d, "address"),
                d["port"].as_u64().map_or("-".into(), |p| p.to_string()),
                or_dash(&d["name"]),
                or_dash(&d["hardware"]),
                or_dash(&d["location"]),
                or_dash(&d["registered_camera_id"]),
            ]);
        }
        output::line(t);
        output::line(format!(
            "{}; add one with POST /api/v1/onvif/add or the dashboard's Find cameras",
            output::count(devices.len() as i64, "device")
        ));
        Ok(())
    })
}
