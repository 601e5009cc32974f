//! `heldar migrate --to postgres://… [--storage s3://bucket/prefix]`: copy an embedded install
//! (this box's SQLite database, and with `--storage` its frames and timelapse videos) into a
//! fleet's PostgreSQL and bucket (docs/scale-out.md "Moving up from one box").
//!
//! The steps: open the source read-only (never changed), reach the bucket, connect to
//! PostgreSQL (its schema is migrated as `heldar serve` would), refuse a destination holding
//! rows this install does not have, copy the files (object before row, as Heldar always
//! writes), copy every table's rows in foreign-key order, and verify. Each step is resumable:
//! rows go in with `ON CONFLICT DO NOTHING`, and an object already in the bucket with the
//! file's size is not sent again, so a second run after an interruption copies only what is
//! missing. Verified: every object sent is read back and its SHA-256 compared with the local
//! file's; at the end the row counts of every table must be equal on both sides. Any mismatch
//! is a sentence naming the table or file, and exit status 1.
//!
//! Progress is an indicatif bar on a terminal and plain lines on a pipe. Every message shows
//! the database URL with its password masked; bucket credentials come only from the `AWS_*`
//! variables and are never printed.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use futures_util::{StreamExt, TryStreamExt};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sha2::{Digest, Sha256};

use super::DbArgs;
use crate::camera::mask::{mask_text, mask_url};
use crate::config::{StorageArgs, StorageConfig};
use crate::db::{self, transfer, Pool};
use crate::store::object::{Bucket, VIDEOS};

#[derive(Args, Debug)]
pub struct Migrate {
    /// The source: this box's data folder and database (as `heldar serve`).
    #[command(flatten)]
    db: DbArgs,
    /// The source's frames [default: $HELDAR_DATA_DIR/snapshots].
    #[arg(long, env = "HELDAR_SNAPSHOTS_DIR")]
    snapshots_dir: Option<PathBuf>,
    /// The fleet's PostgreSQL: `postgres://user:password@host:port/database` (the database
    /// must exist; its schema is created here). Give a URL with a password through
    /// HELDAR_MIGRATE_TO rather than on the command line, where other users of the machine can
    /// read it (`ps`) and the shell history keeps it.
    #[arg(
        long,
        value_name = "POSTGRES_URL",
        env = "HELDAR_MIGRATE_TO",
        hide_env_values = true
    )]
    // Optional to clap so that its absence is told in Heldar's own sentence, which names the
    // variable too (clap's "required argument --to" does not).
    to: Option<String>,
    /// Also copy frames and timelapse videos into this bucket (`s3://bucket/prefix`); endpoint,
    /// region and credentials from AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID,
    /// AWS_SECRET_ACCESS_KEY. Without it only rows are copied.
    #[arg(long, value_name = "S3_URL")]
    storage: Option<String>,
    /// Files sent at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    parallel: u16,
    #[arg(long, env = "AWS_ENDPOINT_URL", hide = true, hide_env_values = true)]
    aws_endpoint_url: Option<String>,
    #[arg(long, env = "AWS_REGION", hide = true, hide_env_values = true)]
    aws_region: Option<String>,
    #[arg(long, env = "AWS_ACCESS_KEY_ID", hide = true, hide_env_values = true)]
    aws_access_key_id: Option<String>,
    #[arg(
        long,
        env = "AWS_SECRET_ACCESS_KEY",
        hide = true,
        hide_env_values = true
    )]
    aws_secret_access_key: Option<String>,
    #[arg(long, env = "AWS_SESSION_TOKEN", hide = true, hide_env_values = true)]
    aws_session_token: Option<String>,
}

/// Rows read per page of a table.
const PAGE: i64 = 500;

pub fn run(args: Migrate) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("heldar migrate: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Whatever a message quotes (a driver's error may quote the URL), the database password
    // and the bucket's secret key never show.
    let secrets: Vec<String> = [
        args.to
            .as_deref()
            .and_then(|to| url::Url::parse(to.trim()).ok())
            .and_then(|u| u.password().map(str::to_string)),
        args.aws_secret_access_key.clone(),
        args.aws_session_token.clone(),
    ]
    .into_iter()
    .flatten()
    .collect();
    let (code, message) = match runtime.block_on(migrate(&args)) {
        Ok(()) => return ExitCode::SUCCESS,
        Err(Failure::Usage(m)) => (ExitCode::from(2), m),
        Err(Failure::Failed(m)) => (ExitCode::FAILURE, m),
    };
    eprintln!("heldar migrate: {}", mask_text(&message, &secrets));
    code
}

enum Failure {
    /// The command line cannot be used (exit 2).
    Usage(String),
    /// The copy failed or does not verify (exit 1).
    Failed(String),
}

fn failed(m: impl std::fmt::Display) -> Failure {
    Failure::Failed(m.to_string())
}

/// Everything after the arguments are read: the steps of the module's doc, in order.
async fn migrate(args: &Migrate) -> Result<(), Failure> {
    let Some(to) = args.to.as_deref().map(str::trim).filter(|t| !t.is_empty()) else {
        return Err(Failure::Usage(
            "no destination database: give the destination with --to postgres://… or \
             HELDAR_MIGRATE_TO"
                .to_string(),
        ));
    };
    if db::Backend::of_url(to) != Some(db::Backend::Postgres) {
        return Err(Failure::Usage(format!(
            "--to {} is not a PostgreSQL URL: give postgres://user:password@host:port/database",
            mask_url(to)
        )));
    }
    let data_dir = PathBuf::from(&args.db.data_dir);
    let from_url = args
        .db
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("heldar.db").display()));
    if db::Backend::of_url(&from_url) != Some(db::Backend::Sqlite) {
        return Err(Failure::Usage(format!(
            "the source must be the embedded SQLite database, but HELDAR_DATABASE_URL is {}: \
             unset it (or point it at the sqlite: file) to migrate from this box",
            mask_url(&from_url)
        )));
    }
    let bucket = match &args.storage {
        None => None,
        Some(url) => Some(open_bucket(args, url)?),
    };
    let snapshots_dir = args
        .snapshots_dir
        .clone()
        .unwrap_or_else(|| data_dir.join("snapshots"));
    let timelapses_dir = data_dir.join("timelapses");

    let from = transfer::open_source(&from_url).await.map_err(|e| {
        failed(format!(
            "cannot read the source database {}: {}",
            mask_url(&from_url),
            mask_text(&crate::error::report(&*e), &[])
        ))
    })?;
    if let Ok(db::meta::LastRun::Unclean { started_at }) = db::meta::last_run(&from).await {
        // Running (or it crashed): rows written from now on may be missed by this copy.
        eprintln!(
            "heldar migrate: warning: the source's Heldar has been running since {started_at} \
             (or stopped without a clean shutdown); stop `heldar serve` first so no frame is \
             written during the copy"
        );
    }
    if let Some(b) = &bucket {
        b.check().await.map_err(failed)?;
    }
    let dest = db::connect(to).await.map_err(|e| {
        failed(format!(
            "cannot open the destination database {}: {}",
            mask_url(to),
            mask_text(&crate::error::report(&*e), &[])
        ))
    })?;
    let result = copy_all(
        &from,
        &dest,
        bucket.as_deref(),
        &snapshots_dir,
        &timelapses_dir,
        args.parallel.into(),
        to,
    )
    .await;
    dest.close().await;
    from.close().await;
    result
}

fn open_bucket(args: &Migrate, url: &str) -> Result<std::sync::Arc<Bucket>, Failure> {
    let storage = StorageArgs {
        storage_url: Some(url.to_string()),
        s3_presign_seconds: "0".into(),
        aws_endpoint_url: args.aws_endpoint_url.clone(),
        aws_region: args.aws_region.clone(),
        aws_access_key_id: args.aws_access_key_id.clone(),
        aws_secret_access_key: args.aws_secret_access_key.clone(),
        aws_session_token: args.aws_session_token.clone(),
    };
    let cfg = match StorageConfig::from_args(&storage) {
        Ok((StorageConfig::S3(c), _)) => c,
        Ok((StorageConfig::Local, _)) => {
            return Err(Failure::Usage(format!(
                "--storage {} is not a bucket: give s3://bucket/prefix",
                mask_url(url)
            )))
        }
        // The settings' own sentence names HELDAR_STORAGE_URL; here it came from --storage.
        Err(e) => {
            return Err(Failure::Usage(format!(
                "--storage {:?} cannot be used: {}",
                e.value, e.allowed
            )))
        }
    };
    Bucket::open(&cfg).map_err(failed)
}

/// The copy proper, on open source and destination.
async fn copy_all(
    from: &Pool,
    dest: &Pool,
    bucket: Option<&Bucket>,
    snapshots_dir: &Path,
    timelapses_dir: &Path,
    parallel: usize,
    to: &str,
) -> Result<(), Failure> {
    let tables = transfer::tables(from).await.map_err(failed)?;
    let shown = mask_url(to);

    // A destination holding a row this install does not have is someone else's.
    for t in &tables {
        if let Some(key) = transfer::first_foreign_key(from, dest, t)
            .await
            .map_err(failed)?
        {
            return Err(failed(format!(
                "{shown} already holds rows of another Heldar install (table {}: {} {key:?} \
                 is not in this one); nothing was copied. Migrate into an empty database, or \
                 into the one an earlier run of this migration filled",
                t.name, t.key
            )));
        }
    }

    let mut counts = Vec::new();
    let mut total_rows = 0;
    for t in &tables {
        let n = transfer::count(from, t).await.map_err(failed)?;
        total_rows += n;
        counts.push(n);
    }
    let (frames, videos) = transfer::file_counts(from).await.map_err(failed)?;
    let total_files = if bucket.is_some() { frames + videos } else { 0 };
    let show = Show::new((total_rows + total_files).max(0) as u64);

    // The destination becomes this install: its id (made by the destination's own migration)
    // is replaced by the source's, and the bucket is marked with it, so the fleet's nodes
    // start on it and a bucket marked by another install is refused before anything is sent
    // (docs/storage.md "One storage, one database").
    let install = db::meta::install_id(from).await.map_err(failed)?;
    if let Some(b) = bucket {
        match crate::store::claim_bucket(b, &install).await {
            Ok(_) => {}
            Err(e @ crate::store::ClaimError::Foreign { .. }) => {
                return Err(failed(format!(
                    "{e}: nothing was copied; migrate into an empty bucket prefix, or the one \
                     an earlier run of this migration filled (--storage)"
                )))
            }
            Err(e) => return Err(failed(e)),
        }
    }
    db::meta::set_install_id(dest, &install)
        .await
        .map_err(failed)?;

    // Files first: a row in the fleet then always has its object, as when Heldar writes.
    let mut files = FileTally::default();
    if let Some(b) = bucket {
        show.line(&format!(
            "copying {frames} frames and {videos} videos into {}",
            b.url()
        ));
        copy_files(from, b, false, snapshots_dir, parallel, &show, &mut files).await?;
        copy_files(from, b, true, timelapses_dir, parallel, &show, &mut files).await?;
    }

    show.line(&format!("copying {total_rows} rows into {shown}"));
    let mut inserted_total = 0;
    for t in &tables {
        let mut after: Option<String> = None;
        let mut inserted = 0;
        loop {
            let page = transfer::copy_page(from, dest, t, after.as_deref(), PAGE)
                .await
                .map_err(|e| failed(format!("copying table {}: {e}", t.name)))?;
            if page.read == 0 {
                break;
            }
            inserted += page.inserted;
            show.advance(page.read);
            match page.next {
                Some(k) => after = Some(k),
                None => break,
            }
        }
        inserted_total += inserted;
        show.line(&format!("table {}: {inserted} rows copied", t.name));
    }

    // Verify: the same number of rows on both sides of every table.
    for (t, want) in tables.iter().zip(&counts) {
        let got = transfer::count(dest, t).await.map_err(failed)?;
        let now = transfer::count(from, t).await.map_err(failed)?;
        if got != now {
            return Err(failed(format!(
                "verification failed: table {} has {now} rows here and {got} in {shown}{}",
                t.name,
                if now != *want {
                    " (the source changed during the copy: stop `heldar serve` and run the \
                     migration again)"
                } else {
                    ""
                }
            )));
        }
    }
    show.done();
    let already = total_rows as u64 - inserted_total.min(total_rows as u64);
    let mut summary = format!(
        "done: {} tables, {total_rows} rows verified in {shown} ({inserted_total} copied now, \
         {already} already there)",
        tables.len()
    );
    if let Some(b) = bucket {
        summary.push_str(&format!(
            "; {} files verified in {} ({} sent and checked by SHA-256, {} already there \
             with the same size)",
            files.sent + files.present,
            b.url(),
            files.sent,
            files.present
        ));
        if files.missing > 0 {
            summary.push_str(&format!(
                "; {} rows name a file that is not on this disk (not copied; the fleet's \
                 reconciliation treats them as it would here)",
                files.missing
            ));
        }
    }
    if bucket.is_none() && frames + videos > 0 {
        // The rows now name files that are only on this box's disk. A node started on the
        // fleet's database with a bucket would not find them: say so while it can be fixed.
        summary.push_str(&format!(
            ". The {frames} frames and {videos} videos were not copied (no --storage): they stay \
             in {} and {}. Nodes on this database must read them there (the same folders, \
             HELDAR_SNAPSHOTS_DIR), or run this migration again with --storage s3://bucket/prefix \
             before any node starts with HELDAR_STORAGE_URL",
            snapshots_dir.display(),
            timelapses_dir.display()
        ));
    }
    eprintln!("heldar migrate: {summary}");
    Ok(())
}

#[derive(Default)]
struct FileTally {
    sent: u64,
    present: u64,
    missing: u64,
}

enum FileOutcome {
    Sent,
    Present,
    Missing(String),
}

/// Copy every frame (or video) a row names into the bucket, `parallel` at a time.
async fn copy_files(
    from: &Pool,
    bucket: &Bucket,
    videos: bool,
    dir: &Path,
    parallel: usize,
    show: &Show,
    tally: &mut FileTally,
) -> Result<(), Failure> {
    let mut after: Option<String> = None;
    loop {
        let page = transfer::files(from, videos, after.as_deref(), PAGE)
            .await
            .map_err(failed)?;
        let Some((last, _)) = page.last().cloned() else {
            return Ok(());
        };
        let outcomes: Vec<FileOutcome> = futures_util::stream::iter(page)
            .map(|(_, rel)| async move {
                let key = match videos {
                    true => format!("{VIDEOS}/{rel}"),
                    false => rel.clone(),
                };
                copy_file(bucket, &dir.join(&rel), &key).await
            })
            .buffer_unordered(parallel)
            .inspect_ok(|_| show.advance(1))
            .try_collect()
            .await?;
        for o in outcomes {
            match o {
                FileOutcome::Sent => tally.sent += 1,
                FileOutcome::Present => tally.present += 1,
                FileOutcome::Missing(path) => {
                    tally.missing += 1;
                    if tally.missing <= 10 {
                        show.line(&format!("warning: {path} is missing; its row is copied"));
                    }
                }
            }
        }
        after = Some(last);
    }
}

/// One file: skipped if the bucket has an object of its size under `key`, else sent, read
/// back and compared by SHA-256. Both ways in pieces (`Bucket::put_streamed`,
/// `Bucket::read_streamed`): a file is never held whole in memory, however large a timelapse
/// video is.
async fn copy_file(bucket: &Bucket, local: &Path, key: &str) -> Result<FileOutcome, Failure> {
    let size = match tokio::fs::metadata(local).await {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(FileOutcome::Missing(local.display().to_string()))
        }
        Err(e) => return Err(failed(format!("cannot read {}: {e}", local.display()))),
    };
    match bucket.size(key).await {
        Ok(n) if n == size => return Ok(FileOutcome::Present),
        // Absent, or a torn or different object: (re)sent below.
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(failed(format!(
                "the frame storage {} cannot be read at {key}: {e}",
                bucket.url()
            )))
        }
    }
    let mut sha = Sha256::new();
    let sent = bucket
        .put_streamed(local, key, |piece| sha.update(piece))
        .await
        .map_err(failed)?;
    let want = sha.finalize();
    let mut sha = Sha256::new();
    let back = bucket
        .read_streamed(key, |piece| sha.update(piece))
        .await
        .map_err(|e| {
            failed(format!(
                "verification failed: {key} cannot be read back from {}: {e}",
                bucket.url()
            ))
        })?;
    if sha.finalize() != want {
        return Err(failed(format!(
            "verification failed: {key} in {} does not match {} (SHA-256 differs: {sent} bytes \
             sent, {back} read back)",
            bucket.url(),
            local.display(),
        )));
    }
    Ok(FileOutcome::Sent)
}

/// Progress: a bar on a terminal (stderr), otherwise a line at each tenth of the way and one
/// per table.
struct Show {
    bar: Option<ProgressBar>,
    total: u64,
    done: std::sync::atomic::AtomicU64,
    said: std::sync::atomic::AtomicU64,
}

impl Show {
    fn new(total: u64) -> Show {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("migrating [{bar:30}] {pos}/{len} rows and files")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar
        });
        Show {
            bar,
            total,
            done: 0.into(),
            said: 0.into(),
        }
    }

    fn advance(&self, n: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        let done = self.done.fetch_add(n, Relaxed) + n;
        match &self.bar {
            Some(bar) => bar.set_position(done),
            None if self.total > 0 => {
                let tenth = (done.min(self.total) * 10) / self.total;
                if self.said.fetch_max(tenth, Relaxed) < tenth {
                    eprintln!(
                        "heldar migrate: {}% ({done}/{} rows and files)",
                        tenth * 10,
                        self.total
                    );
                }
            }
            None => {}
        }
    }

    /// A line of its own, above the bar on a terminal.
    fn line(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(format!("heldar migrate: {text}")),
            None => eprintln!("heldar migrate: {text}"),
        }
    }

    fn done(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// A failed step returns early: the bar is cleared before its sentence is printed.
impl Drop for Show {
    fn drop(&mut self) {
        self.done();
    }
}
