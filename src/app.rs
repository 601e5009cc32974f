//! The application: state, start-up order and the HTTP server, shared by `heldar serve` and the
//! tests (which start the real app on port 0, like zero2prod's `Application::build`).
//!
//! Start-up: directories → database and migrations → capture back-ends → background services
//! (supervised) → HTTP listener. [`Application::run_until_stopped`] serves until the shutdown
//! token is cancelled, then stops the services within a grace period (DESIGN.md §10).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::auth::Auth;
use crate::camera::cache::CameraCache;
use crate::camera::seal::Sealer;
use crate::capture::Capturer;
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::db::writer::{self, Writer, WriterTask};
use crate::db::{self, Pool};
use crate::metrics::Metrics;
use crate::services::retention::Retention;
use crate::services::snapshot_scheduler::{
    fire::CaptureFirer, DbScheduleStore, Scheduler, SchedulerHandle, CLAIM_AHEAD,
};
use crate::services::{demo_camera, supervisor::Supervisor};
use crate::snapshots::Keeper;
use crate::store::{self, FrameStore};

/// Shared handles, cheap to clone; nothing else lives here.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Pool,
    pub capturer: Arc<Capturer>,
    pub store: FrameStore,
    pub keeper: Keeper,
    pub scheduler: SchedulerHandle,
    pub metrics: Arc<Metrics>,
    pub clock: Arc<dyn Clock>,
    /// Tokens, sessions: who is calling (see `routes::access` for what they may do).
    pub auth: Arc<Auth>,
    /// Opens and seals camera credentials at rest.
    pub sealer: Arc<Sealer>,
}

/// Options that are not settings of the running system.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Register and serve the built-in demo camera.
    pub demo: bool,
}

pub struct Application {
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
    state: AppState,
    supervisor: Supervisor,
    writer: WriterTask,
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
        config.prepare_dirs()?;
        let pool = db::connect(&config.database_url).await.map_err(|e| {
            anyhow::anyhow!(
                "cannot open the database {} (HELDAR_DATABASE_URL): {e:#}",
                config.database_url
            )
        })?;
        // Before anything reads a camera: the key that opens their credentials (a missing or
        // wrong key stops start-up here, with the file named).
        let sealer = Arc::new(Sealer::open_for(&config.secret_key_file, &pool).await?);
        let frame_store = FrameStore::new(config.snapshots_dir.clone(), config.snapshot_fsync);
        let report = store::reconcile(&frame_store, &pool).await?;
        tracing::info!(
            temp_files_removed = report.temp_files_removed,
            rows_without_file_removed = report.rows_without_file_removed,
            files_reindexed = report.files_reindexed,
            files_removed = report.files_removed,
            "start-up reconciliation done"
        );
        let metrics = Arc::new(Metrics::new());
        let (writer, writer_task) =
            Writer::start(&db::file_of(&config.database_url)?, writer::LINGER)?;
        let capturer = Arc::new(Capturer::new(&config, writer.clone(), metrics.clone())?);
        let ffmpeg = crate::capture::ffmpeg::FfmpegSource::new(config.ffmpeg_bin.clone(), 1);
        match ffmpeg.check().await {
            Ok(v) => tracing::info!(ffmpeg = %v, "ffmpeg found"),
            Err(e) => tracing::warn!(error = %e,
                "ffmpeg is not available: RTSP captures will fail with `ffmpeg_missing` until it is installed (or HELDAR_FFMPEG_BIN is set)"),
        }
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let keeper = Keeper {
            db: pool.clone(),
            writer: writer.clone(),
            capturer: capturer.clone(),
            store: frame_store.clone(),
            clock: clock.clone(),
            metrics: metrics.clone(),
            cameras: Arc::default(),
            sealer: sealer.clone(),
        };
        let (scheduler, commands) = SchedulerHandle::channel();
        let auth = Arc::new(Auth::new(pool.clone(), config.api_token.as_deref()));
        let state = AppState {
            config: Arc::new(config),
            auth,
            sealer,
            db: pool,
            capturer,
            store: frame_store,
            keeper: keeper.clone(),
            scheduler,
            metrics,
            clock,
        };
        let supervisor = Supervisor::new(shutdown);
        if opts.demo {
            let mut first = Some(demo_camera::start(&state).await?);
            let s = state.clone();
            supervisor.spawn_supervised("demo_camera", move |token| {
                demo_camera::run(s.clone(), first.take(), token)
            });
        }
        if state.config.scheduler_enabled {
            // A failure here only means each camera's first slot reads its own row.
            if let Err(e) = keeper.cameras.warm(&state.db, &state.sealer).await {
                tracing::warn!(error = %e, "cannot pre-read the cameras for the scheduler");
            }
            let (cameras, s) = (keeper.cameras.clone(), state.clone());
            supervisor.spawn_supervised("camera_cache", move |token| {
                let (cameras, s) = (cameras.clone(), s.clone());
                async move {
                    let every = CameraCache::TTL / 2;
                    cameras.keep_fresh(&s.db, &s.sealer, every, token).await
                }
            });
            let sched = Arc::new(Scheduler {
                clock: state.clock.clone(),
                store: Arc::new(DbScheduleStore {
                    pool: state.db.clone(),
                    writer: writer.clone(),
                }),
                firer: Arc::new(CaptureFirer(keeper)),
                metrics: state.metrics.clone(),
                commands,
                rescan: state.config.scheduler_interval,
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
            db: state.db.clone(),
            store: state.store.clone(),
            clock: state.clock.clone(),
            metrics: state.metrics.clone(),
            max_age: state.config.retention_age,
            max_bytes: state.config.snapshot_max_bytes,
            min_free_bytes: state.config.min_free_disk_bytes,
            free_space: Retention::statvfs_free(state.config.snapshots_dir.clone()),
        });
        let every = state.config.retention_interval;
        supervisor.spawn_supervised("retention", move |token| {
            let r = retention.clone();
            async move { r.run(every, token).await }
        });
        let bind = SocketAddr::new(state.config.api_host, state.config.api_port);
        let listener = tokio::net::TcpListener::bind(bind).await.map_err(|e| {
            anyhow::anyhow!("cannot listen on {bind} (HELDAR_API_HOST/HELDAR_API_PORT): {e}")
        })?;
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
            max_connections: self.state.config.http_connection_limit(),
            header_read_timeout: crate::http_server::HEADER_READ_TIMEOUT,
            metrics: self.state.metrics.clone(),
        };
        tracing::info!(
            max_connections = opts.max_connections,
            "HTTP connection limit"
        );
        crate::http_server::serve(self.listener, app, opts, token.clone()).await?;
        tracing::info!("HTTP server stopped; stopping services");
        self.supervisor.shutdown(SHUTDOWN_GRACE).await;
        // Commit what the writer still holds, then close the database.
        self.writer.finish().await;
        self.state.db.close().await;
        tracing::info!("shutdown complete");
        Ok(())
    }
}
