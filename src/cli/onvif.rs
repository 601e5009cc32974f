//! `heldar onvif probe ADDRESS` and `heldar onvif add ADDRESS`: ask one ONVIF camera for its
//! profiles (`POST /api/v1/onvif/probe`: a table of token, name, encoding, size, snapshot and
//! stream URI, problem) and add it as a camera from a profile (`POST /api/v1/onvif/add`). The
//! password is asked on the terminal without echo (`--password`), read from stdin
//! (`--password-stdin`), or — visible in `ps` — given as `--password=SECRET`; it is never
//! printed. docs/onvif.md.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::client::{self, CliError, CliResult, Client, ClientArgs};
use super::output;

#[derive(Args, Debug)]
pub struct Onvif {
    #[command(subcommand)]
    command: Sub,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Subcommand, Debug)]
enum Sub {
    /// Ask a camera for its information and profiles (nothing is stored).
    Probe(Target),
    /// Probe, then add the camera (vendor onvif) from a profile.
    Add(AddArgs),
}

#[derive(Args, Debug)]
struct Target {
    /// The camera's host name or IP address.
    address: String,
    /// Its ONVIF (HTTP) port [default: 80].
    #[arg(long, value_name = "PORT")]
    port: Option<u16>,
    /// An ONVIF user of the camera.
    #[arg(long, default_value = "")]
    username: String,
    /// Ask for the password on the terminal (no echo); `--password=SECRET` also works but puts
    /// it where `ps` shows it.
    #[arg(long, num_args = 0..=1, require_equals = true, value_name = "SECRET",
          conflicts_with = "password_stdin")]
    password: Option<Option<String>>,
    /// Read the password from the first line of standard input.
    #[arg(long)]
    password_stdin: bool,
}

#[derive(Args, Debug)]
struct AddArgs {
    #[command(flatten)]
    target: Target,
    /// The profile to use [default: the suggested one].
    #[arg(long, value_name = "TOKEN")]
    profile: Option<String>,
    /// The camera's id [default: from the model and address].
    #[arg(long)]
    id: Option<String>,
    /// Display name.
    #[arg(long)]
    name: Option<String>,
}

pub fn run(args: Onvif) -> ExitCode {
    client::run(async move {
        let c = Client::new(&args.client)?;
        match args.command {
            Sub::Probe(t) => probe(&c, &t).await,
            Sub::Add(a) => add(&c, a).await,
        }
    })
}

fn password(t: &Target) -> CliResult<String> {
    let ask = t.password.as_ref().is_some_and(Option::is_none)
        || (t.password_stdin && std::io::stdin().is_terminal());
    if t.password_stdin && !ask {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| CliError::usage(format!("cannot read the password from stdin: {e}")))?;
        let line = line.strip_suffix('\n').unwrap_or(&line);
        return Ok(line.strip_suffix('\r').unwrap_or(line).to_string());
    }
    if ask {
        return rpassword::prompt_password(format!("Password for {}: ", t.address)).map_err(|e| {
            CliError::usage(format!(
                "--password without a value asks on the terminal, and there is none ({e}); \
                 use --password-stdin"
            ))
        });
    }
    Ok(t.password.clone().flatten().unwrap_or_default())
}

fn body(t: &Target) -> CliResult<Value> {
    let mut b = json!({"address": t.address, "username": t.username, "password": password(t)?});
    if let Some(p) = t.port {
        b["port"] = json!(p);
    }
    Ok(b)
}

async fn probe(c: &Client, t: &Target) -> CliResult<()> {
    let reply = c.post_json("/api/v1/onvif/probe", &body(t)?).await?;
    let p: Value = reply.parse()?;
    if c.json {
        output::raw_json(&reply.body);
        return Ok(());
    }
    let d = &p["device"];
    output::line(format!(
        "{} {} (firmware {}, serial {}), clock offset {} s",
        output::text(d, "manufacturer"),
        output::text(d, "model"),
        output::text(d, "firmware"),
        output::text(d, "serial"),
        p["clock_offset_s"].as_i64().unwrap_or(0)
    ));
    let suggested = p["suggested"]["profile_token"].as_str().unwrap_or("");
    let mut table = output::table(&[
        "profile", "name", "encoding", "size", "snapshot", "stream", "problem",
    ]);
    for pr in p["profiles"].as_array().cloned().unwrap_or_default() {
        let token = output::text(&pr, "token");
        let mark = if token == suggested { " *" } else { "" };
        let or_dash = |k: &str| {
            pr[k]
                .as_str()
                .map_or("-".to_string(), |s| output::clip(s, 60))
        };
        table.add_row(vec![
            format!("{token}{mark}"),
            output::text(&pr, "name"),
            output::text(&pr, "encoding"),
            output::size(pr["width"].as_i64(), pr["height"].as_i64()),
            or_dash("snapshot_uri"),
            or_dash("stream_uri"),
            or_dash("problem"),
        ]);
    }
    output::line(table);
    output::line(if suggested.is_empty() {
        "no profile can be used".to_string()
    } else {
        format!("* suggested; `heldar onvif add {}` uses it", t.address)
    });
    Ok(())
}

async fn add(c: &Client, a: AddArgs) -> CliResult<()> {
    let mut b = body(&a.target)?;
    if let Some(p) = &a.profile {
        b["profile_token"] = json!(p);
    }
    if let Some(id) = &a.id {
        b["id"] = json!(id);
    }
    if let Some(n) = &a.name {
        b["name"] = json!(n);
    }
    let reply = c.post_json("/api/v1/onvif/add", &b).await?;
    let cam: Value = reply.parse()?;
    if c.json {
        output::raw_json(&reply.body);
        return Ok(());
    }
    output::line(format!(
        "added camera {} ({}): snapshot {}, stream {}",
        output::text(&cam, "id"),
        output::text(&cam, "name"),
        cam["effective_urls"]["snapshot"].as_str().unwrap_or("-"),
        cam["effective_urls"]["sub_stream"].as_str().unwrap_or("-"),
    ));
    Ok(())
}
