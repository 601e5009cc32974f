//! `heldar camera add | list | show | edit | rm | test`: the camera registry of a running
//! Heldar, over `/api/v1/cameras`.
//!
//! A camera password never goes on the command line unless the operator insists
//! (`--password=…`, visible in `ps`): `--password` alone asks on the terminal without echo, and
//! `--password-stdin` reads one line from standard input. No output of these commands contains
//! a password — the API never returns one (`has_password` says whether one is set). `rm` deletes
//! the camera's schedules and every stored frame too, so it asks first (or needs `--yes` where
//! nobody can answer). `test` takes a live frame and reports its size and the time it took, or
//! the camera's own error (exit 5).

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::{json, Map, Value};

use super::client::{self, seg, CliError, CliResult, Client, ClientArgs};
use super::exit::Exit;
use super::output;

#[derive(Args, Debug)]
pub struct Camera {
    #[command(subcommand)]
    action: Action,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Subcommand, Debug)]
enum Action {
    /// Register a camera (admin).
    Add(Add),
    /// Every camera with its state.
    #[command(visible_alias = "ls")]
    List,
    /// One camera: settings, effective URLs, state (never its password).
    Show {
        /// Camera id.
        id: String,
    },
    /// Change a camera's settings; only the flags given change (admin).
    Edit(Edit),
    /// Delete a camera with its schedules and every stored frame (admin).
    #[command(visible_alias = "remove")]
    Rm {
        /// Camera id.
        id: String,
        /// Do not ask: needed where there is no terminal to ask on.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Take a live frame now (not kept): its size and the time it took, or the camera's error.
    Test {
        /// Camera id.
        id: String,
    },
}

#[derive(Args, Debug)]
struct Add {
    /// Camera id: lower-case letters, digits, `_` and `-` (it names the frame folder).
    id: String,
    #[command(flatten)]
    fields: Fields,
    /// Take a test frame right after adding it.
    #[arg(long)]
    test: bool,
}

#[derive(Args, Debug)]
struct Edit {
    /// Camera id.
    id: String,
    #[command(flatten)]
    fields: Fields,
    /// Clear an optional setting (repeatable), e.g. --clear password --clear snapshot-url.
    #[arg(long, value_enum, value_name = "SETTING")]
    clear: Vec<Clearable>,
    /// Take a test frame right after the change.
    #[arg(long)]
    test: bool,
}

/// The camera settings both `add` and `edit` take.
#[derive(Args, Debug)]
struct Fields {
    /// Display name [default: the id].
    #[arg(long)]
    name: Option<String>,
    /// Maker, for its URL templates: hikvision, dahua, reolink, amcrest, axis, onvif, generic.
    #[arg(long)]
    vendor: Option<String>,
    /// Host name or IP address (no scheme, no path).
    #[arg(long)]
    address: Option<String>,
    /// RTSP port [default: 554].
    #[arg(long, value_name = "PORT")]
    rtsp_port: Option<u16>,
    /// HTTP port [default: 80].
    #[arg(long, value_name = "PORT")]
    http_port: Option<u16>,
    /// User name the camera expects.
    #[arg(long)]
    username: Option<String>,
    /// Ask for the camera's password on the terminal (no echo). `--password=SECRET` also works
    /// but puts it where `ps` shows it; prefer --password-stdin in scripts.
    #[arg(long, num_args = 0..=1, require_equals = true, value_name = "SECRET",
          conflicts_with = "password_stdin")]
    password: Option<Option<String>>,
    /// Read the camera's password from the first line of standard input.
    #[arg(long)]
    password_stdin: bool,
    /// Main stream URL (rtsp, rtsps, http or https).
    #[arg(long, value_name = "URL")]
    main_stream_url: Option<String>,
    /// Sub stream URL (rtsp, rtsps, http or https).
    #[arg(long, value_name = "URL")]
    sub_stream_url: Option<String>,
    /// Snapshot URL (http or https); overrides the vendor template.
    #[arg(long, value_name = "URL")]
    snapshot_url: Option<String>,
    /// Where frames come from: auto (http when a snapshot URL is known, else the stream), http,
    /// native (the stream decoded in process) or rtsp (the stream through ffmpeg).
    #[arg(long, value_name = "SOURCE")]
    snapshot_source: Option<String>,
    /// TLS check for https/rtsps: system, pinned (with --tls-fingerprint) or off.
    #[arg(long, value_name = "MODE")]
    tls_verify: Option<String>,
    /// SHA-256 fingerprint of the camera's certificate, for --tls-verify pinned.
    #[arg(long, value_name = "SHA256")]
    tls_fingerprint: Option<String>,
    /// Cap this camera's stored frames at G decimal gigabytes (10^9 bytes; 0.5 is 500 MB):
    /// retention removes its oldest frames beyond it. `edit --clear max-gb` removes the cap.
    #[arg(long, value_name = "G")]
    max_gb: Option<f64>,
}

/// Optional settings `edit --clear` can remove.
#[derive(ValueEnum, Clone, Copy, Debug)]
enum Clearable {
    Username,
    Password,
    MainStreamUrl,
    SubStreamUrl,
    SnapshotUrl,
    TlsFingerprint,
    MaxGb,
}

impl Clearable {
    fn field(self) -> &'static str {
        match self {
            Clearable::Username => "username",
            Clearable::Password => "password",
            Clearable::MainStreamUrl => "main_stream_url",
            Clearable::SubStreamUrl => "sub_stream_url",
            Clearable::SnapshotUrl => "snapshot_url",
            Clearable::TlsFingerprint => "tls_fingerprint",
            Clearable::MaxGb => "max_gb",
        }
    }
}

pub fn run(args: Camera) -> ExitCode {
    client::run(async move {
        let c = Client::new(&args.client)?;
        match args.action {
            Action::Add(a) => add(&c, a).await,
            Action::List => list(&c).await,
            Action::Show { id } => show(&c, &id).await,
            Action::Edit(e) => edit(&c, e).await,
            Action::Rm { id, yes } => rm(&c, &id, yes).await,
            Action::Test { id } => test(&c, &id).await,
        }
    })
}

/// The API body of the settings given (absent flags stay absent).
fn body(f: &Fields, id: &str) -> CliResult<Map<String, Value>> {
    let mut m = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            m.insert(k.to_string(), v);
        }
    };
    put("name", f.name.clone().map(Value::from));
    put("vendor", f.vendor.clone().map(Value::from));
    put("address", f.address.clone().map(Value::from));
    put("rtsp_port", f.rtsp_port.map(Value::from));
    put("http_port", f.http_port.map(Value::from));
    put("username", f.username.clone().map(Value::from));
    put(
        "main_stream_url",
        f.main_stream_url.clone().map(Value::from),
    );
    put("sub_stream_url", f.sub_stream_url.clone().map(Value::from));
    put("snapshot_url", f.snapshot_url.clone().map(Value::from));
    put(
        "snapshot_source",
        f.snapshot_source.clone().map(Value::from),
    );
    put("tls_verify", f.tls_verify.clone().map(Value::from));
    put(
        "tls_fingerprint",
        f.tls_fingerprint.clone().map(Value::from),
    );
    put("max_gb", f.max_gb.map(Value::from));
    put("password", password(f, id)?.map(Value::from));
    Ok(m)
}

/// The password, from stdin, the terminal, or (if the operator insists) the command line.
fn password(f: &Fields, id: &str) -> CliResult<Option<String>> {
    // On a terminal, "stdin" is a person typing: do not echo what they type.
    let ask = f.password.as_ref().is_some_and(Option::is_none)
        || (f.password_stdin && std::io::stdin().is_terminal());
    if f.password_stdin && !ask {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| CliError::usage(format!("cannot read the password from stdin: {e}")))?;
        let line = line.strip_suffix('\n').unwrap_or(&line);
        let line = line.strip_suffix('\r').unwrap_or(line);
        return Ok(Some(line.to_string()));
    }
    if ask {
        return rpassword::prompt_password(format!("Password for camera {id}: "))
            .map(Some)
            .map_err(|e| {
                CliError::usage(format!(
                    "--password without a value asks on the terminal, and there is none \
                     ({e}); use --password-stdin"
                ))
            });
    }
    Ok(f.password.clone().flatten())
}

async fn add(c: &Client, a: Add) -> CliResult<()> {
    let mut b = body(&a.fields, &a.id)?;
    b.insert("id".into(), Value::from(a.id.clone()));
    let reply = c.post_json("/api/v1/cameras", &Value::Object(b)).await?;
    let cam: Value = reply.parse()?;
    if c.json {
        output::raw_json(&reply.body);
    } else {
        output::line(format!("added camera {}{}", a.id, summary(&cam)));
    }
    if a.test {
        return test(c, &a.id).await;
    }
    Ok(())
}

async fn edit(c: &Client, e: Edit) -> CliResult<()> {
    let mut b = body(&e.fields, &e.id)?;
    for clear in &e.clear {
        if b.contains_key(clear.field()) {
            return Err(CliError::usage(format!(
                "--clear {} and a new value for it together: choose one",
                clear.field().replace('_', "-")
            )));
        }
        b.insert(clear.field().to_string(), Value::Null);
    }
    if b.is_empty() {
        return Err(CliError::usage(
            "nothing to change: give a setting to change (see heldar camera edit --help)",
        ));
    }
    let path = format!("/api/v1/cameras/{}", seg("camera", &e.id)?);
    let reply = c.patch_json(&path, &Value::Object(b)).await?;
    let cam: Value = reply.parse()?;
    if c.json {
        output::raw_json(&reply.body);
    } else {
        output::line(format!("changed camera {}{}", e.id, summary(&cam)));
    }
    if e.test {
        return test(c, &e.id).await;
    }
    Ok(())
}

/// ` (hikvision, 192.168.1.20; snapshots from http://…)` for add/edit confirmations.
fn summary(cam: &Value) -> String {
    let s = |k: &str| cam[k].as_str().unwrap_or("").to_string();
    let source = cam["effective_urls"]["snapshot"]
        .as_str()
        .or(cam["effective_urls"]["main_stream"].as_str())
        .unwrap_or("no URL yet");
    let where_ = if s("address").is_empty() {
        s("vendor")
    } else {
        format!("{}, {}", s("vendor"), s("address"))
    };
    format!(" ({where_}; frames from {source})")
}

async fn list(c: &Client) -> CliResult<()> {
    let listing = c.get_all("/api/v1/cameras", &[]).await?;
    if c.json {
        listing.print_json();
        return Ok(());
    }
    let cams = listing.items;
    if cams.is_empty() {
        output::line("no cameras yet; add one with: heldar camera add ID --vendor … --address …");
        return Ok(());
    }
    let now = chrono::Utc::now();
    let mut t = output::table(&["id", "name", "vendor", "state", "last frame", "last error"]);
    for cam in &cams {
        t.add_row(vec![
            output::text(cam, "id"),
            output::text(cam, "name"),
            output::text(cam, "vendor"),
            cam["status"]["state"].as_str().unwrap_or("-").to_string(),
            // The newest stored frame: a live capture (`--test`, a snapshot) keeps none.
            output::ago(output::ts(&cam["last_frame_at"]), now),
            cam["status"]["last_error"]
                .as_str()
                .map_or("-".to_string(), |e| output::clip(e, 70)),
        ]);
    }
    output::line(t.trim_fmt());
    Ok(())
}

async fn show(c: &Client, id: &str) -> CliResult<()> {
    let reply = c
        .get(&format!("/api/v1/cameras/{}", seg("camera", id)?), &[])
        .await?;
    let cam: Value = reply.parse()?;
    if c.json {
        output::raw_json(&reply.body);
        return Ok(());
    }
    let opt = |v: &Value| {
        v.as_str()
            .filter(|s| !s.is_empty())
            .map_or("-".to_string(), str::to_string)
    };
    let status = &cam["status"];
    let rows = vec![
        ("id", output::text(&cam, "id")),
        ("name", output::text(&cam, "name")),
        ("vendor", output::text(&cam, "vendor")),
        ("address", opt(&cam["address"])),
        ("http port", cam["http_port"].to_string()),
        ("rtsp port", cam["rtsp_port"].to_string()),
        ("username", opt(&cam["username"])),
        (
            "password",
            if cam["has_password"] == true {
                "set (never shown)".to_string()
            } else {
                "none".to_string()
            },
        ),
        ("snapshot source", output::text(&cam, "snapshot_source")),
        ("snapshot URL", opt(&cam["effective_urls"]["snapshot"])),
        ("main stream", opt(&cam["effective_urls"]["main_stream"])),
        ("sub stream", opt(&cam["effective_urls"]["sub_stream"])),
        ("TLS check", output::text(&cam, "tls_verify")),
        ("TLS fingerprint", opt(&cam["tls_fingerprint"])),
        (
            "size cap",
            cam["max_gb"].as_f64().map_or("none".to_string(), |gb| {
                crate::units::fmt_bytes((gb * 1e9).round() as u64)
            }),
        ),
        ("state", opt(&status["state"])),
        (
            "last frame",
            output::ago(output::ts(&cam["last_frame_at"]), chrono::Utc::now()),
        ),
        (
            "last capture",
            output::ago(output::ts(&status["last_success_at"]), chrono::Utc::now()),
        ),
        (
            "failures in a row",
            status["consecutive_failures"].to_string(),
        ),
        ("last error", opt(&status["last_error"])),
        (
            "last error at",
            output::time(output::ts(&status["last_error_at"])),
        ),
        ("created", output::time(output::ts(&cam["created_at"]))),
        ("updated", output::time(output::ts(&cam["updated_at"]))),
    ];
    output::line(output::pairs(&rows).trim_fmt());
    Ok(())
}

async fn rm(c: &Client, id: &str, yes: bool) -> CliResult<()> {
    let path = format!("/api/v1/cameras/{}", seg("camera", id)?);
    if !yes {
        if !std::io::stdin().is_terminal() {
            return Err(CliError::usage(format!(
                "camera rm deletes {id}'s schedules and every stored frame too; add --yes to \
                 confirm"
            )));
        }
        // Say what would go before asking.
        let cam: Value = c.get(&path, &[]).await?.parse()?;
        eprint!(
            "Delete camera {} ({}) with its schedules and every stored frame? [y/N] ",
            id,
            output::text(&cam, "name")
        );
        let mut answer = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut answer)
            .map_err(|e| CliError::usage(format!("cannot read the answer: {e}")))?;
        if !matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
            return Err(CliError::other(format!("camera {id} not deleted")));
        }
    }
    c.delete(&path).await?;
    if !c.json {
        output::line(format!("removed camera {id}, its schedules and its frames"));
    }
    Ok(())
}

async fn test(c: &Client, id: &str) -> CliResult<()> {
    let path = format!("/api/v1/cameras/{}/snapshot", seg("camera", id)?);
    let started = Instant::now();
    match c.get(&path, &[]).await {
        Ok(reply) => {
            let secs = started.elapsed().as_secs_f64();
            let dim = |h: &str| reply.header(h).and_then(|v| v.parse::<i64>().ok());
            let (w, h) = (dim("x-heldar-width"), dim("x-heldar-height"));
            let size = reply.body.len() as i64;
            if c.json {
                output::json(&json!({
                    "camera": id, "ok": true, "width": w, "height": h,
                    "size_bytes": size, "seconds": (secs * 1000.0).round() / 1000.0,
                }));
            } else {
                output::line(format!(
                    "camera {id}: ok, a {} JPEG of {} in {secs:.2} s",
                    output::size(w, h),
                    output::bytes(size)
                ));
            }
            Ok(())
        }
        Err(e) if e.exit == Exit::Camera => {
            if c.json {
                output::json(&json!({
                    "camera": id, "ok": false, "code": e.code, "error": e.message,
                }));
            }
            Err(CliError {
                message: format!("test capture failed: {}", e.message),
                ..e
            })
        }
        Err(e) => Err(e),
    }
}
