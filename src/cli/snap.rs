//! `heldar snap CAMERA [-o FILE] [--store [--tag TAG]]`: a live JPEG grabbed now
//! (`GET /api/v1/cameras/{id}/snapshot`), saved to a file — `CAMERA-YYYYmmdd-HHMMSS.jpg` in the
//! current folder unless `-o` says otherwise, `-o -` for stdout. `--store` also keeps it on the
//! server as a manual snapshot (`POST …/snapshot?store=true`), with `--tag` as its tag. The file appears only once it is whole: a camera that fails
//! leaves no file behind, only its error (exit 5).

use std::process::ExitCode;

use clap::Args;
use serde_json::json;

use super::client::{self, seg, CliError, Client, ClientArgs, Dest};
use super::output;

#[derive(Args, Debug)]
pub struct Snap {
    /// Camera id.
    camera: String,
    /// Where to save the JPEG; `-` writes it to stdout [default: CAMERA-YYYYmmdd-HHMMSS.jpg]
    #[arg(short, long, value_name = "FILE")]
    output: Option<String>,
    /// Also keep the frame on the server as a manual snapshot.
    #[arg(long)]
    store: bool,
    /// Keep it with this tag (1 to 64 letters, digits, `_`, `.`, `-`); needs --store.
    #[arg(long, value_name = "TAG")]
    tag: Option<String>,
    #[command(flatten)]
    client: ClientArgs,
}

pub fn run(args: Snap) -> ExitCode {
    client::run(async move {
        let c = Client::new(&args.client)?;
        let dest = match args.output.as_deref() {
            Some(o) => Dest::from_arg(o)?,
            None => Dest::File(
                format!(
                    "{}-{}.jpg",
                    args.camera,
                    chrono::Local::now().format("%Y%m%d-%H%M%S")
                )
                .into(),
            ),
        };
        if args.tag.is_some() && !args.store {
            return Err(CliError::usage(
                "--tag needs --store: only a kept frame carries a tag",
            ));
        }
        if c.json && matches!(dest, Dest::Stdout) {
            return Err(CliError::usage(
                "-o - and --json both want stdout: choose one",
            ));
        }
        let path = format!("/api/v1/cameras/{}/snapshot", seg("camera", &args.camera)?);
        let mut query: Vec<(&str, String)> = Vec::new();
        // Keeping a frame changes state: POST, the API's way to keep one (a GET would do too,
        // for the kernel's clients, but it takes no tag).
        let method = if args.store {
            query.push(("store", "true".to_string()));
            if let Some(tag) = &args.tag {
                query.push(("tag", tag.clone()));
            }
            reqwest::Method::POST
        } else {
            reqwest::Method::GET
        };
        let got = c
            .download_as(method, &path, &query, &dest, |_, _| {})
            .await?;
        let dim = |h: &str| got.header(h).and_then(|v| v.parse::<i64>().ok());
        let (w, h) = (dim("x-heldar-width"), dim("x-heldar-height"));
        let snapshot_id = got.header("x-heldar-snapshot-id").map(str::to_string);
        let url = got.header("location").map(str::to_string);
        if c.json {
            output::json(&json!({
                "camera": args.camera,
                "file": dest.to_string(),
                "size_bytes": got.bytes,
                "width": w,
                "height": h,
                "snapshot_id": snapshot_id,
                "url": url,
            }));
            return Ok(());
        }
        let mut said = format!(
            "saved {dest} ({}, {})",
            output::size(w, h),
            output::bytes(got.bytes as i64)
        );
        if let Some(id) = &snapshot_id {
            said.push_str(&format!("; kept on the server as {id}"));
        }
        // The image itself may be on stdout: then the words go to stderr.
        match dest {
            Dest::Stdout => eprintln!("{said}"),
            Dest::File(_) => output::line(said),
        }
        Ok(())
    })
}
