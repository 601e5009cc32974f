//! The one service layer: every operation Heldar performs, called by the HTTP handlers, the
//! CLI's server side, the scheduler's slot runner and the demo camera alike. Data flows one way
//! — callers → `ops` → `capture`/`store`/`db` — and an operation never reaches back into its
//! caller's layer: ops tells the scheduler about changes through its command handle
//! ([`scheduler::SchedulerHandle`]) and everyone else through the event bus
//! ([`crate::events`]).
//!
//! Operations return [`crate::error::OpError`], take their time from the injected [`Clock`],
//! and publish one event per thing that happened. They hold no state of their own beyond
//! [`Ops`], a bundle of cheap handles.

pub mod auth_switch;
pub mod backoff;
pub mod cameras;
pub mod frames;
pub mod nodes;
pub mod onvif;
pub mod outages;
pub mod reconcile;
pub mod scheduler;
pub mod schedules;
pub mod secrets;
pub mod store_outage;
pub mod system;
pub mod timelapse_rules;
pub mod timelapses;
pub mod tokens;
pub mod webhooks;

use std::sync::Arc;

use crate::camera::seal::Sealer;
use crate::capture::Capturer;
use crate::clock::Clock;
use crate::config::Config;
use crate::db::{writer::Writer, Pool};
use crate::events::EventBus;
use crate::metrics::Metrics;
use crate::store::FrameStore;

/// What operations need: shared handles only, cheap to clone.
#[derive(Clone)]
pub struct Ops {
    pub config: Arc<Config>,
    /// Reads, and the API's own (rare) writes.
    pub db: Pool,
    /// The hot-path writes: slot claims, frame rows, camera status.
    pub writer: Writer,
    pub capturer: Arc<Capturer>,
    pub store: FrameStore,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    /// Opens and seals camera credentials at rest.
    pub sealer: Arc<Sealer>,
    pub scheduler: scheduler::SchedulerHandle,
    pub events: EventBus,
    /// Live captures in flight, and each camera's last known state (see [`frames`]).
    pub(crate) frames: Arc<frames::FrameState>,
    /// Cameras whose scheduled captures are backing off because they keep being unreachable
    /// (see [`backoff`]).
    pub(crate) backoff: Arc<backoff::BackoffState>,
    /// Where timelapse videos live (`$HELDAR_DATA_DIR/timelapses`).
    pub videos: crate::store::videos::VideoStore,
    /// Timelapse jobs running here, and the wake-ups of the timelapse services.
    pub(crate) jobs: Arc<timelapses::JobsState>,
    /// Each camera's run of failures and open outage (see [`outages`]).
    pub(crate) outages: Arc<outages::OutageState>,
    /// Tells the webhook service that subscriptions changed (see [`webhooks`]).
    pub webhooks: Arc<webhooks::WebhookState>,
    /// Cancelled when Heldar shuts down: a capture that fails after that was cut by the
    /// shutdown (its camera was not at fault) and is not recorded as a camera failure.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// This process's node and the cameras it holds (see [`nodes`]); by default not a node,
    /// holding every camera.
    pub nodes: Arc<nodes::NodeState>,
}

impl Ops {
    /// Bundle the handles; [`frames`]'s own state starts empty.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: Arc<Config>,
        db: Pool,
        writer: Writer,
        capturer: Arc<Capturer>,
        store: FrameStore,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
        sealer: Arc<Sealer>,
        scheduler: scheduler::SchedulerHandle,
        events: EventBus,
    ) -> Ops {
        let mut videos = crate::store::videos::VideoStore::new(config.timelapses_dir.clone());
        // Videos live where the frames live (docs/storage.md).
        if let Some(b) = store.bucket() {
            videos = videos.with_bucket(b.clone());
        }
        Ops {
            videos,
            jobs: Arc::default(),
            outages: Arc::default(),
            webhooks: Arc::default(),
            config,
            db,
            writer,
            capturer,
            store,
            clock,
            metrics,
            sealer,
            scheduler,
            events,
            frames: Arc::default(),
            backoff: Arc::default(),
            shutdown: tokio_util::sync::CancellationToken::new(),
            nodes: Arc::default(),
        }
    }

    /// The same handles, told about Heldar's shutdown.
    pub fn with_shutdown(self, shutdown: tokio_util::sync::CancellationToken) -> Ops {
        Ops { shutdown, ..self }
    }

    /// The same handles, as this node (see [`nodes`]).
    pub fn with_nodes(self, nodes: nodes::NodeState) -> Ops {
        Ops {
            nodes: Arc::new(nodes),
            ..self
        }
    }
}

/// An [`Ops`] on a fresh database under `dir`, for unit tests of the modules built on it. The
/// writer task must stay alive as long as the `Ops` is used.
#[cfg(test)]
pub(crate) async fn test_ops(dir: &std::path::Path) -> (Ops, crate::db::writer::WriterTask) {
    let config = Config::defaults_in(dir);
    config.prepare_dirs().expect("test dirs");
    let pool = crate::db::connect(&config.database_url)
        .await
        .expect("test database");
    let metrics = Arc::new(Metrics::new());
    let (writer, task) = Writer::start(
        &crate::db::file_of(&config.database_url).expect("a file"),
        crate::db::writer::LINGER,
    )
    .expect("writer");
    let capturer = Arc::new(Capturer::new(&config, metrics.clone()).expect("capturer"));
    let store = FrameStore::new(config.snapshots_dir.clone(), false);
    let (scheduler, _) = scheduler::SchedulerHandle::channel();
    let ops = Ops::new(
        Arc::new(config),
        pool,
        writer,
        capturer,
        store,
        Arc::new(crate::clock::SystemClock),
        metrics,
        Arc::new(Sealer::from_key([7; 32])),
        scheduler,
        EventBus::default(),
    );
    (ops, task)
}
