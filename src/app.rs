//! The application: state, start-up order and the HTTP server, shared by `heldar serve` and the
//! tests (which start the real app on port 0, like zero2prod's `Application::build`).
//!
//! Start-up: the listen address → the database and migrations (a PostgreSQL server before any
//! folder is made; for a SQLite file, its folder is checked first, then the data folders are
//! made, then the file is opened) → reconciliation of what a crash of the last run can have
//! left (only after an unclean stop, bounded by that run; `ops::reconcile`) → the run mark →
//! capture back-ends → background services (supervised; among them the full reconciliation
//! pass) → HTTP listener. [`Application::run_until_stopped`] serves until the
//! shutdown token is cancelled, then stops the services within a grace period, commits the
//! writer's rows and, if everything stopped in time, records a clean stop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::auth::Auth;
use crate::capture::Capturer;
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::db::writer::{self, Writer, WriterTask};
use crate::events::EventBus;
use crate::metrics::Metrics;
use crate::ops::scheduler::SchedulerHandle;
use crate::ops::{self, Ops};
use crate::services::retention::Retention;
use crate::services::snapshot_scheduler::cameras::CameraCache;
use crate::services::snapshot_scheduler::runner::CaptureRunner;
use crate::services::snapshot_scheduler::{DbScheduleStore, Scheduler, CLAIM_AHEAD};
use crate::services::{demo_camera, supervisor::Supervisor};
use crate::store::FrameStore;

pub use crate::state::AppState;

/// Options that are not settings of the running system.
#[derive(Clone, Default)]
pub struct BuildOptions {
    /// Register and serve the built-in demo camera.
    pub demo: bool,
    /// Tests: the background reconciliation pass waits for a permit of this before it starts.
    pub reconcile_gate: Option<Arc<tokio::sync::Semaphore>>,
    /// Tests: the wall clock (a `clock::SimulatedClock`); the system clock when `None`.
    pub clock: Option<Arc<dyn Clock>>,
    /// Tests: the timelapse rule runner's longest sleep (60 s when `None`), so a jump of a
    /// simulated clock is noticed at once.
    pub timelapse_rule_check: Option<Duration>,
}

impl std::fmt::Debug for BuildOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuildOptions")
            .field("demo", &self.demo)
            .field("reconcile_gate", &self.reconcile_gate.is_some())
            .field("clock", &self.clock.as_ref().map(|_| "injected"))
            .field("timelapse_rule_check", &self.timelapse_rule_check)
            .finish()
    }
}

pub struct Application {
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
    state: AppState,
    supervisor: Supervisor,
    writer: WriterTask,
}

/// The ids of other nodes with a heartbeat within a lease period of `now`. A row of a past run
/// of this machine under the default id (`{hostname}-{pid}`) whose process no longer exists is
/// not live, however fresh its heartbeat: that is the crashed run the crash window is for.
async fn other_live_nodes(
    pool: &crate::db::Pool,
    me: &crate::config::NodeConfig,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<String>, crate::db::DbError> {
    let since = now - chrono::Duration::from_std(me.lease_period).unwrap_or_default();
    let gone_local_run = |n: &crate::db::nodes::NodeRow| {
        n.name == me.name
            && n.id
                .strip_prefix(&format!("{}-", me.name))
                .and_then(|pid| pid.parse::<i32>().ok().filter(|p| *p > 0))
                .is_some_and(crate::ops::nodes::process_gone)
    };
    Ok(crate::db::nodes::list(pool)
        .await?
        .into_iter()
        .filter(|n| n.id != me.id && n.heartbeat_at >= since && !gone_local_run(n))
        .map(|n| n.id)
        .collect())
}

/// Open `HELDAR_DATABASE_URL` and run the migrations, or say which database could not be
/// opened and why.
async fn open_database(config: &Config) -> anyhow::Result<crate::db::Pool> {
    crate::db::connect(&config.database_url).await.map_err(|e| {
        // The URL may carry a password, and the driver's error may quote it.
        anyhow::anyhow!(
            "cannot open the database {} (HELDAR_DATABASE_URL): {}",
            crate::camera::mask::mask_url(&config.database_url),
            crate::camera::mask::mask_url(&crate::error::report(&*e))
        )
    })
}

/// A SQLite file's folder must exist unless it is the data folder (or inside it), which
/// start-up creates: Heldar makes no other folder, and without this check the data folders
/// were made before SQLite's "unable to open database file".
fn sqlite_folder_check(config: &Config) -> anyhow::Result<()> {
    let Ok(file) = crate::db::file_of(&config.database_url) else {
        return Ok(());
    };
    let Some(folder) = file.parent().filter(|f| !f.as_os_str().is_empty()) else {
        return Ok(());
    };
    let absolute = |p: &std::path::Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    if folder.is_dir() || absolute(folder).starts_with(absolute(&config.data_dir)) {
        return Ok(());
    }
    anyhow::bail!(
        "cannot open the database {} (HELDAR_DATABASE_URL): its folder {} does not exist \
         (Heldar creates only HELDAR_DATA_DIR and the folders in it)",
        crate::camera::mask::mask_url(&config.database_url),
        folder.display()
    )
}

fn last_run_label(last: &crate::db::meta::LastRun) -> &'static str {
    match last {
        crate::db::meta::LastRun::Clean { .. } => "clean",
        crate::db::meta::LastRun::Unclean { .. } => "unclean",
        crate::db::meta::LastRun::Unknown => "unknown",
    }
}

/// How long in-flight work may take to finish after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(25);
/// The scheduler's share of it: in-flight captures finish and commit within this.
const SCHEDULER_GRACE: Duration = Duration::from_secs(20);

impl Application {
    pub async fn build(
        config: Config,
        opts: BuildOptions,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Application> {
        // What can fail without side effects is checked first: a port already taken stops
        // start-up before any folder, database or key is created, and before anything starts.
        let bind = SocketAddr::new(config.api_host, config.api_port);
        let listener = tokio::net::TcpListener::bind(bind).await.map_err(|e| {
            anyhow::anyhow!("cannot listen on {bind} (HELDAR_API_HOST/HELDAR_API_PORT): {e}")
        })?;
        // A database that cannot be opened also stops start-up before any folder is made: a
        // PostgreSQL server is connected to (and migrated) first; a SQLite file, whose folder
        // may be the data folder made below, has that folder checked first.
        let pool = match crate::db::Backend::of_url(&config.database_url) {
            Some(crate::db::Backend::Postgres) => {
                let pool = open_database(&config).await?;
                config.prepare_dirs()?;
                pool
            }
            _ => {
                sqlite_folder_check(&config)?;
                config.prepare_dirs()?;
                open_database(&config).await?
            }
        };
        let clock: Arc<dyn Clock> = opts.clock.clone().unwrap_or_else(|| Arc::new(SystemClock));
        // A second process under a live node's id stops here, before it marks a run,
        // registers or takes a lease (docs/fleet.md "One id, one process").
        if config.scheduler_enabled {
            ops::nodes::refuse_a_live_twin(&pool, &config.node, clock.as_ref()).await?;
        }
        // Before anything reads a camera: the key that opens their credentials (a missing or
        // wrong key stops start-up here, with the file named).
        let sealer = Arc::new(ops::secrets::open_sealer(&config.secret_key_file, &pool).await?);
        let mut frame_store = FrameStore::new(config.snapshots_dir.clone(), config.snapshot_fsync);
        if let crate::config::StorageConfig::S3(s3) = &config.storage {
            let bucket = crate::store::object::Bucket::open(s3)?;
            // Checked once at start: a bucket that is missing, or credentials it refuses, stop
            // start-up with the storage named; an outage later fails captures, not the process.
            bucket.check().await.map_err(|e| {
                anyhow::anyhow!("{e} (HELDAR_STORAGE_URL, AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID)")
            })?;
            tracing::info!(storage = %bucket.url(), endpoint = s3.endpoint.as_deref().unwrap_or("AWS"),
                presign_seconds = s3.presign.map_or(0, |d| d.as_secs()), "frames are stored in an S3 bucket");
            frame_store = frame_store.with_bucket(bucket);
        }
        // The storage must be this database's before anything reads, indexes or deletes a
        // frame in it: a process started with another database (a second install pointed at a
        // fleet's bucket, a fleet node without HELDAR_STORAGE_URL) stops here, touching nothing
        // (docs/storage.md "One storage, one database").
        let install = crate::db::meta::install_id(&pool).await?;
        let setting = match config.storage {
            crate::config::StorageConfig::S3(_) => "HELDAR_STORAGE_URL",
            crate::config::StorageConfig::Local => "HELDAR_SNAPSHOTS_DIR / HELDAR_STORAGE_URL",
        };
        match frame_store.claim(&install).await {
            Ok(crate::store::Claim::Ours) => {}
            Ok(crate::store::Claim::Adopted) => tracing::info!(
                storage = %frame_store.location(), install = %install,
                "the frame storage had no install marker; it is marked as this database's"
            ),
            Err(e @ crate::store::ClaimError::Foreign { .. }) => anyhow::bail!(
                "{e}: check {setting} (or HELDAR_DATABASE_URL); Heldar does not start on it, so \
                 it reconciles, prunes and deletes nothing there"
            ),
            // The marker cannot be read or written now (a full disk; a bucket that does not
            // answer was already refused by its start-up check): a full disk is something
            // retention rides out, not a reason to stay down, so it starts and says so.
            // Reconciliation still keeps every row of a camera whose frames it cannot see
            // (docs/storage.md), and the marker is checked again at the next start.
            Err(e) => tracing::error!(
                "{e} ({setting}); starting without checking that the storage is this \
                 database's; it is checked again at the next start"
            ),
        }
        // On SQLite its own connection to the file, on PostgreSQL to the same server
        // (docs/scale-out.md "The PostgreSQL writer").
        let (writer, writer_task) = Writer::start_for(
            &pool,
            &config.database_url,
            writer::LINGER,
            config.db_outage,
        )?;
        // Only what a crash of the last run can have left is checked before the scheduler
        // starts; the full cross-check runs in the background (services::reconciler).
        let last = crate::db::meta::last_run(&pool).await?;
        // The run mark is one per database. In a fleet another node's run in progress reads
        // as an unclean stop, and its frames whose rows wait in its writer's batch would be
        // indexed from here: while another node is live, the crash window is left to the
        // background reconciliation, which only indexes frames taken before this run began.
        let others = other_live_nodes(&pool, &config.node, clock.now()).await?;
        let since = match ops::reconcile::crash_window_start(&last) {
            Some(_) if !others.is_empty() => {
                tracing::info!(
                    live_nodes = %others.join(","),
                    "other nodes are running on this database: the start-up crash window is left to the background reconciliation"
                );
                None
            }
            since => since,
        };
        let began = std::time::Instant::now();
        let report = match since {
            Some(since) => {
                let parts = ops::reconcile::Parts {
                    store: &frame_store,
                    pool: &pool,
                    writer: &writer,
                    clock: clock.as_ref(),
                };
                ops::reconcile::crash_window(parts, since).await?
            }
            None => ops::reconcile::ReconcileReport::default(),
        };
        tracing::info!(
            last_run = last_run_label(&last),
            window_since = since.map(crate::models::fmt_ts).unwrap_or_default(),
            temp_files_removed = report.temp_files_removed,
            rows_without_file_removed = report.rows_without_file_removed,
            files_reindexed = report.files_reindexed,
            damaged_frames_removed = report.damaged_frames_removed,
            folders_checked = report.folders_checked,
            elapsed_ms = began.elapsed().as_millis() as u64,
            "start-up reconciliation done"
        );
        // From here until a clean stop, a crash leaves debris named at or after this moment.
        let run_start = clock.now();
        crate::db::meta::record_run_start(&pool, run_start).await?;
        let metrics = Arc::new(Metrics::new());
        let capturer = Arc::new(Capturer::new(&config, metrics.clone())?);
        let ffmpeg = crate::capture::ffmpeg::FfmpegSource::new(config.ffmpeg_bin.clone(), 1);
        match ffmpeg.check().await {
            Ok(v) => tracing::info!(ffmpeg = %v, "ffmpeg found"),
            Err(e) => tracing::warn!(error = %e,
                "ffmpeg is not available: captures through ffmpeg (snapshot_source rtsp, and streams the native RTSP path cannot read: rtsps, H.265, MJPEG) will fail with `ffmpeg_missing`, and timelapse exports are refused with it, until it is installed (or HELDAR_FFMPEG_BIN is set)"),
        }
        let (scheduler, commands) = SchedulerHandle::channel();
        let auth = Arc::new(Auth::new(pool.clone(), config.api_token.as_deref()));
        auth.announce(config.metrics_auth == crate::config::MetricsAuth::Token)
            .await?;
        let config = Arc::new(config);
        let ops = Ops::new(
            config.clone(),
            pool,
            writer,
            capturer,
            frame_store,
            clock,
            metrics,
            sealer,
            scheduler,
            EventBus::default(),
        )
        .with_shutdown(shutdown.clone());
        // A process that runs the scheduler is a node (docs/fleet.md); one that does not holds
        // no camera leases and fires nothing anyway.
        let ops = if config.scheduler_enabled {
            let started = ops.clock.now();
            ops.with_nodes(ops::nodes::NodeState::node(config.node.clone(), started))
        } else {
            ops
        };
        // Before the scheduler starts: a lone node holds every camera from its first slot.
        let tick = ops::nodes::start(&ops).await?;
        if let Some(id) = ops.nodes.id() {
            tracing::info!(
                node = id,
                cameras_held = tick.held,
                cameras = tick.cameras,
                live_nodes = tick.live_nodes,
                lease_period_s = config.node.lease_period.as_secs(),
                "registered as a node"
            );
        }
        ops::frames::seed_states(&ops).await?;
        // Open outages stay open across a restart; the first success closes them.
        ops::outages::seed(&ops).await?;
        let state = AppState {
            ops: ops.clone(),
            auth,
            api: crate::routes::description(config.metrics_auth),
            shutdown: shutdown.clone(),
        };
        let supervisor = Supervisor::new(shutdown);
        if opts.demo {
            let mut first = Some(demo_camera::start(&ops).await?);
            let o = ops.clone();
            supervisor.spawn_supervised("demo_camera", move |token| {
                demo_camera::run(o.clone(), first.take(), token)
            });
        } else {
            demo_camera::retire(&ops).await?;
        }
        if config.scheduler_enabled {
            let cameras = Arc::new(CameraCache::new(config.camera_cache_ttl));
            // A failure here only means each camera's first slot reads its own row.
            if let Err(e) = cameras.warm(&ops).await {
                tracing::warn!(error = %e, "cannot pre-read the cameras for the scheduler");
            }
            let (c, o) = (cameras.clone(), ops.clone());
            supervisor.spawn_supervised("camera_cache", move |token| {
                let (c, o) = (c.clone(), o.clone());
                let every = c.ttl() / 2;
                async move { c.keep_fresh(&o, every, token).await }
            });
            let sched = Arc::new(Scheduler {
                clock: ops.clock.clone(),
                store: Arc::new(DbScheduleStore(ops.clone())),
                runner: Arc::new(CaptureRunner {
                    ops: ops.clone(),
                    cameras,
                }),
                metrics: ops.metrics.clone(),
                commands,
                rescan: config.scheduler_interval,
                grace: SCHEDULER_GRACE,
                claim_ahead: CLAIM_AHEAD,
            });
            supervisor.spawn_supervised("snapshot_scheduler", move |token| {
                let s = sched.clone();
                async move { s.run(token).await }
            });
        } else {
            tracing::info!("snapshot scheduler disabled (HELDAR_SNAPSHOT_SCHEDULER_ENABLED=false)");
        }
        let retention = Arc::new(Retention {
            db: ops.db.clone(),
            store: ops.store.clone(),
            clock: ops.clock.clone(),
            metrics: ops.metrics.clone(),
            max_age: config.retention_age,
            max_bytes: config.snapshot_max_bytes,
            // The free-disk floor guards a local disk; a bucket has none to fill (its size is
            // held by HELDAR_SNAPSHOT_MAX_GB and the age limits).
            min_free_bytes: match ops.store.bucket() {
                Some(_) => 0,
                None => config.min_free_disk_bytes,
            },
            free_space: Retention::statvfs_free(config.snapshots_dir.clone()),
            videos: Some(crate::services::retention::Videos {
                store: ops.videos.clone(),
                ttl: config.timelapse_ttl,
            }),
        });
        if config.scheduler_enabled {
            // Warm RTSP sessions serve the scheduler's slots; without it nothing keeps them.
            let o = ops.clone();
            supervisor.spawn_supervised("rtsp_warm", move |token| {
                crate::services::rtsp_warm::run(o.clone(), token)
            });
        }
        let (o, gate) = (ops.clone(), opts.reconcile_gate.clone());
        supervisor.spawn_supervised("reconciler", move |token| {
            crate::services::reconciler::run(o.clone(), run_start, gate.clone(), token)
        });
        let o = ops.clone();
        supervisor.spawn_supervised("timelapse_jobs", move |token| {
            crate::services::timelapses::run_jobs(o.clone(), token)
        });
        let (o, check) = (
            ops.clone(),
            opts.timelapse_rule_check
                .unwrap_or(crate::services::timelapses::RULE_CHECK_EVERY),
        );
        supervisor.spawn_supervised("timelapse_rules", move |token| {
            crate::services::timelapses::run_rules(o.clone(), check, token)
        });
        if let Some(mqtt) = config.mqtt.clone() {
            // Checked now (a CA file that cannot be read stops start-up); connecting is the
            // service's business, with its own retries.
            let options = crate::services::mqtt::options(&mqtt, config.capture_max_bytes)?;
            let o = ops.clone();
            supervisor.spawn_supervised("mqtt", move |token| {
                crate::services::mqtt::run(o.clone(), mqtt.clone(), options.clone(), token)
            });
        }
        let o = ops.clone();
        supervisor.spawn_supervised("nodes", move |token| {
            crate::services::nodes::run(o.clone(), token)
        });
        let o = ops.clone();
        supervisor.spawn_supervised("outage_watch", move |token| {
            crate::services::outage_watch::run(o.clone(), token)
        });
        let o = ops.clone();
        supervisor.spawn_supervised("webhooks", move |token| {
            crate::services::webhooks::run(o.clone(), token)
        });
        let every = config.retention_interval;
        supervisor.spawn_supervised("retention", move |token| {
            let r = retention.clone();
            async move { r.run(every, token).await }
        });
        let addr = listener.local_addr()?;
        Ok(Application {
            listener,
            addr,
            state,
            supervisor,
            writer: writer_task,
        })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serve until the shutdown token is cancelled; then stop the background services, close
    /// the pool and return.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let token = self.supervisor.token();
        tracing::info!("listening on http://{}", self.addr);
        let app = crate::routes::router(self.state.clone());
        let opts = crate::http_server::ServeOptions {
            max_connections: self.state.ops.config.http_connection_limit(),
            header_read_timeout: crate::http_server::HEADER_READ_TIMEOUT,
            metrics: self.state.ops.metrics.clone(),
        };
        tracing::info!(
            max_connections = opts.max_connections,
            "HTTP connection limit"
        );
        crate::http_server::serve(self.listener, app, opts, token.clone()).await?;
        tracing::info!("HTTP server stopped; stopping services");
        let stopped = self.supervisor.shutdown(SHUTDOWN_GRACE).await;
        // Commit what the writer still holds, then close the database.
        self.writer.finish().await;
        // This node leaves the fleet: its row goes (its leases went when it began draining).
        if let Err(e) = ops::nodes::leave(&self.state.ops).await {
            tracing::warn!(error = %e, "cannot remove this node's row; it shows as dead until removed");
        }
        // A clean stop: every frame written has its row, so the next start need not look for
        // crash debris. If a service outlived the grace period, a capture may still land a file
        // without its row: no mark then, and the next start treats this run as crashed.
        if stopped {
            let ops = &self.state.ops;
            if let Err(e) = crate::db::meta::record_clean_stop(&ops.db, ops.clock.now()).await {
                tracing::warn!(error = %e, "cannot record the clean stop; the next start checks this run's frames");
            }
        }
        self.state.ops.db.close().await;
        tracing::info!("shutdown complete");
        Ok(())
    }
}
