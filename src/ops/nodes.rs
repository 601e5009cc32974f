//! Nodes and camera ownership (docs/fleet.md): which Heldar process sharing the database
//! captures which camera.
//!
//! Each process with the scheduler on is a node: it registers a row, heartbeats every lease
//! period / 3 ([`tick`]), and holds leases on cameras. It takes free cameras (no lease, or an
//! expired one) only up to its share, ceil(cameras / live nodes), and gives back what it holds
//! beyond it, so cameras spread by count; a node that joins gets its share from the others'
//! next ticks. A node that dies stops renewing: its leases expire within one lease period and
//! the others take them at their next look ([`look`], twice a second). A draining node
//! ([`drain`]) gives everything back at once.
//!
//! This module owns the decision and this process's view of what it holds ([`NodeState`]); the
//! scheduler and the warm RTSP sessions ask [`NodeState::holds`]. It does not own correctness:
//! two nodes that both believe they hold a camera (a stall past the lease) still capture each
//! slot once, because the slot claim is a conditional update on the schedule row. A database
//! error fails the tick (the caller logs it and tries again); what this process holds is then
//! left as it was, and its leases lapse if the database stays away longer than a lease period.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::RwLock;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::watch;
use utoipa::ToSchema;

use crate::config::NodeConfig;
use crate::db;
use crate::error::OpResult;
use crate::models::CameraId;

use super::Ops;

/// How often a node looks for free cameras and for schedules changed through other nodes.
pub const LOOK_EVERY: Duration = Duration::from_millis(500);

/// Rows of nodes with no heartbeat for this long are deleted.
pub const DEAD_ROWS_KEPT: Duration = Duration::from_secs(24 * 3600);

/// This process's node: its settings and the cameras it holds now.
pub struct NodeState {
    /// `None`: not a node (the scheduler is off, or a unit test): holds every camera, leases
    /// nothing.
    config: Option<NodeConfig>,
    started_at: DateTime<Utc>,
    held: RwLock<HashSet<CameraId>>,
    draining: AtomicBool,
    /// Another process was seen registered under this node's id (logged once).
    id_shared: AtomicBool,
    /// Bumped whenever the held set changes.
    changes: watch::Sender<u64>,
    /// One tick at a time (the service's and a camera creation's).
    ticking: tokio::sync::Mutex<()>,
}

impl Default for NodeState {
    fn default() -> Self {
        NodeState::with(None, DateTime::<Utc>::MIN_UTC)
    }
}

impl NodeState {
    /// A node with these settings, started at `started_at`, holding nothing yet.
    pub fn node(config: NodeConfig, started_at: DateTime<Utc>) -> NodeState {
        NodeState::with(Some(config), started_at)
    }

    fn with(config: Option<NodeConfig>, started_at: DateTime<Utc>) -> NodeState {
        NodeState {
            config,
            started_at,
            held: RwLock::default(),
            draining: AtomicBool::new(false),
            id_shared: AtomicBool::new(false),
            changes: watch::channel(0).0,
            ticking: tokio::sync::Mutex::new(()),
        }
    }

    /// Does this process capture `camera`'s schedules (and keep its warm session)?
    pub fn holds(&self, camera: &CameraId) -> bool {
        match self.config {
            None => true,
            Some(_) => self.held.read().expect("held lock").contains(camera),
        }
    }

    /// The cameras held now, by id.
    pub fn held(&self) -> Vec<CameraId> {
        let mut v: Vec<CameraId> = self
            .held
            .read()
            .expect("held lock")
            .iter()
            .cloned()
            .collect();
        v.sort();
        v
    }

    /// This node's id (`None` when not a node).
    pub fn id(&self) -> Option<&str> {
        self.config.as_ref().map(|c| c.id.as_str())
    }

    pub fn lease_period(&self) -> Option<Duration> {
        self.config.as_ref().map(|c| c.lease_period)
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Told whenever the held set changes.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Replace the held set; true if it changed. The cameras no longer held stop exporting their
    /// gauges on this node ([`crate::metrics::Metrics::camera_left`]): the node holding them
    /// now exports them, and a stale last success here would fire the no-recent-frame alert
    /// after every handover.
    fn set_held(&self, now: HashSet<CameraId>, metrics: &crate::metrics::Metrics) -> bool {
        let mut held = self.held.write().expect("held lock");
        if *held == now {
            return false;
        }
        for gone in held.difference(&now) {
            metrics.camera_left(gone);
        }
        *held = now;
        drop(held);
        self.changes.send_modify(|n| *n += 1);
        true
    }
}

/// A node's share of `cameras` among `live` nodes: ceil(cameras / live).
pub fn share(cameras: usize, live: usize) -> usize {
    cameras.div_ceil(live.max(1))
}

/// What a tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tick {
    pub held: usize,
    pub acquired: usize,
    pub released: usize,
    pub live_nodes: usize,
    pub cameras: usize,
    /// This node's row was registered by another process since this one registered: two
    /// processes run under one id ("One id, one process" in docs/fleet.md; this one was
    /// stopped or stalled while the other started). Logged as an ERROR when first seen.
    pub id_shared: bool,
}

/// Refuse to start as a node whose id a live process already uses: two processes under one id
/// would renew, take and give back the same leases, each believing it holds the other's
/// cameras (docs/fleet.md "One id, one process"). Called at start-up, before this process
/// marks its run, registers or takes a lease.
///
/// The row alone does not tell a live twin from a crashed former run of this node restarted at
/// once (a fixed id must take its own leases back then): a row whose heartbeat is within a lease
/// period is watched until two heartbeat intervals (2/3 of a lease period) have passed since
/// that heartbeat. If it moves (or the row is re-registered), a live process has the id and
/// start-up stops; if not, the former run is gone and start-up goes on, at most 2/3 of a lease
/// period later (10 s with the default 15 s). A row of a node that left cleanly is gone, so a
/// restart after a clean stop never waits.
pub async fn refuse_a_live_twin(
    pool: &db::Pool,
    config: &NodeConfig,
    clock: &dyn crate::clock::Clock,
) -> OpResult<()> {
    let find = || async {
        Ok::<_, crate::error::OpError>(
            db::nodes::list(pool)
                .await?
                .into_iter()
                .find(|n| n.id == config.id),
        )
    };
    let Some(first) = find().await? else {
        return Ok(());
    };
    let period = chrono::Duration::from_std(config.lease_period).unwrap_or_default();
    if clock.now() - first.heartbeat_at > period {
        return Ok(());
    }
    let window = config.lease_period * 2 / 3;
    let deadline = first.heartbeat_at + chrono::Duration::from_std(window).unwrap_or_default();
    tracing::info!(node = %config.id, heartbeat_at = %crate::models::fmt_ts(first.heartbeat_at),
        "this node id has a recent heartbeat: checking that no other process runs under it");
    // Bounded by real time as well as by the injected clock (which a test may hold still).
    let began = std::time::Instant::now();
    while clock.now() < deadline && began.elapsed() < window {
        tokio::time::sleep(Duration::from_millis(200)).await;
        match find().await? {
            None => return Ok(()),
            Some(n) if n.heartbeat_at != first.heartbeat_at || n.started_at != first.started_at => {
                let age = (clock.now() - n.heartbeat_at).num_milliseconds().max(0);
                return Err(crate::error::OpError::Conflict(format!(
                    "another Heldar node is running with HELDAR_NODE_ID={} (on machine {}, started \
                     {}, last heartbeat {}.{} s ago{}): two processes under one id would share \
                     its camera leases. Give this one an id of its own, or stop the other first",
                    config.id,
                    n.name,
                    crate::models::fmt_ts(n.started_at),
                    age / 1000,
                    (age % 1000) / 100,
                    if n.draining { ", stopping" } else { "" },
                )));
            }
            Some(_) => {}
        }
    }
    tracing::info!(node = %config.id, "no other process heartbeats under this node id: taking over the row of its former run");
    Ok(())
}

/// Register this node (taking over the row of a former run with the same id), forget the nodes
/// of this machine whose process is gone, and take this node's share of the cameras: called
/// before the scheduler starts, so a lone node holds every camera from its first slot.
pub async fn start(ops: &Ops) -> OpResult<Tick> {
    let Some(config) = ops.nodes.config.as_ref() else {
        return Ok(Tick::default());
    };
    let now = ops.clock.now();
    db::nodes::register(&ops.db, &row(ops, config, now)).await?;
    reap_local(ops, config).await?;
    tick(ops, true).await
}

fn row(ops: &Ops, config: &NodeConfig, now: DateTime<Utc>) -> db::nodes::NodeRow {
    db::nodes::NodeRow {
        id: config.id.clone(),
        name: config.name.clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        started_at: ops.nodes.started_at,
        heartbeat_at: now,
        draining: ops.nodes.is_draining(),
    }
}

/// Nodes named `{this host}-{pid}` (the default id) whose process no longer runs on this machine
/// crashed: their leases are given up now rather than waited out, so a lone node restarting
/// after a crash holds its cameras at once.
async fn reap_local(ops: &Ops, config: &NodeConfig) -> OpResult<()> {
    let prefix = format!("{}-", config.name);
    for n in db::nodes::list(&ops.db).await? {
        if n.id == config.id {
            continue;
        }
        let Some(pid) =
            n.id.strip_prefix(&prefix)
                .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        if pid > 0 && process_gone(pid) {
            let released = db::nodes::release(&ops.db, &n.id, None).await?;
            db::nodes::delete(&ops.db, &n.id).await?;
            tracing::info!(node = %n.id, released, "a former node on this machine is gone; its cameras are free");
        }
    }
    Ok(())
}

/// Has process `pid` of this machine ended? True when there is no such process, or when it is
/// a zombie: dead, its exit status not yet collected by its parent (a `kill -9`ed node whose
/// supervisor, a shell or a test harness, has not waited for it yet). A zombie still answers
/// `kill(pid, 0)`, and taking it for alive kept a restarted node waiting out a whole lease
/// period for its own dead predecessor. Reads `/proc/{pid}/stat` (proc(5): the state is the
/// field after the command name, which is in parentheses and may itself hold spaces or `)`).
pub(crate) fn process_gone(pid: i32) -> bool {
    if nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None)
        == Err(nix::errno::Errno::ESRCH)
    {
        return true;
    }
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let after = &stat[stat.rfind(')')? + 1..];
            after.split_whitespace().next().map(|state| state == "Z")
        })
        .unwrap_or(false)
}

/// One lease tick. With `renew`: heartbeat, extend this node's leases by a lease period, delete
/// long-dead nodes' rows. Then give back what is beyond this node's share, take free cameras up
/// to it, and tell the scheduler when the held set changed.
pub async fn tick(ops: &Ops, renew: bool) -> OpResult<Tick> {
    let Some(config) = ops.nodes.config.as_ref() else {
        return Ok(Tick::default());
    };
    let _one = ops.nodes.ticking.lock().await;
    let db = &ops.db;
    let id = config.id.as_str();
    let period = chrono::Duration::from_std(config.lease_period).unwrap_or_default();
    let draining = ops.nodes.is_draining();
    let now = ops.clock.now();
    let mut id_shared = false;
    if renew {
        // The row's start time is this process's unless another process registered under
        // the id since (the start-up check cannot see a process that was stopped, or stalled,
        // for longer than it watches).
        id_shared = db::nodes::list(db).await?.iter().any(|n| {
            n.id == id
                && crate::models::fmt_ts(n.started_at)
                    != crate::models::fmt_ts(ops.nodes.started_at)
        });
        if id_shared && !ops.nodes.id_shared.swap(true, Ordering::SeqCst) {
            tracing::error!(
                node = id,
                "another process has registered under this node's id (HELDAR_NODE_ID) since this one started: both now share its camera leases; stop one of them, or give it an id of its own"
            );
        }
        if !db::nodes::heartbeat(db, id, now, draining).await? {
            db::nodes::register(db, &row(ops, config, now)).await?;
        }
        db::nodes::renew(db, id, now, now + period).await?;
        let kept = chrono::Duration::from_std(DEAD_ROWS_KEPT).unwrap_or_default();
        db::nodes::remove_dead(db, now - kept).await?;
    }
    let live = db::nodes::count_live(db, now - period).await?.max(0) as usize;
    let cameras = db::nodes::count_cameras(db).await?.max(0) as usize;
    let mut held = db::nodes::held(db, id, now).await?;
    let cap = if draining { 0 } else { share(cameras, live) };
    let (mut acquired, mut released) = (0, 0);
    if held.len() > cap {
        // The highest ids go: the same ones each time, so a node that gives back does not churn.
        let extra = held.split_off(cap);
        released = db::nodes::release(db, id, Some(&extra)).await? as usize;
        tracing::info!(
            node = id,
            released,
            share = cap,
            live_nodes = live,
            cameras,
            "gave back cameras beyond this node's share"
        );
    } else if held.len() < cap {
        let free = db::nodes::free(db, now, (cap - held.len()) as i64).await?;
        if !free.is_empty() {
            let won = db::nodes::acquire(db, id, &free, now, now + period).await?;
            acquired = won.len();
            if acquired > 0 {
                tracing::info!(
                    node = id,
                    acquired,
                    share = cap,
                    live_nodes = live,
                    cameras,
                    "took free cameras"
                );
            }
            held.extend(won);
        }
    }
    let set: HashSet<CameraId> = held
        .iter()
        .filter_map(|c| CameraId::parse(c).ok())
        .collect();
    let n = set.len();
    // Before the scheduler hears of them: a gained camera's first capture here compares its
    // state with the one its last holder stored, not with nothing.
    let gained: HashSet<CameraId> = {
        let before = ops.nodes.held.read().expect("held lock");
        set.difference(&before).cloned().collect()
    };
    if let Err(e) = crate::ops::frames::seed_states_of(ops, &gained).await {
        tracing::warn!(error = %e, "cannot read the stored state of the cameras this node took; their first capture here compares with none");
    }
    if ops.nodes.set_held(set, &ops.metrics) {
        // Re-read every schedule: those of cameras gained are taken in, those lost dropped.
        ops.scheduler.refresh_all();
    }
    // Outages follow the cameras: the gained ones' open outages are this node's to close. At
    // every tick, not only on a change, so a failed read here is made good at the next one
    // (it reads only the open outages).
    if let Err(e) = crate::ops::outages::follow_held(ops).await {
        tracing::warn!(error = %e, "cannot read the open outages of the cameras this node holds; trying again at the next tick");
    }
    Ok(Tick {
        held: n,
        acquired,
        released,
        live_nodes: live,
        cameras,
        id_shared,
    })
}

/// The quick look between ticks: a free camera (released by a draining node, expired, or new)
/// starts a tick at once; schedules changed since `since` on cameras this node holds are
/// re-read by the scheduler (they were made or edited through another node).
pub async fn look(ops: &Ops, since: DateTime<Utc>) -> OpResult<()> {
    if ops.nodes.config.is_none() {
        return Ok(());
    }
    let now = ops.clock.now();
    if !ops.nodes.is_draining() && !db::nodes::free(&ops.db, now, 1).await?.is_empty() {
        tick(ops, false).await?;
    }
    for (schedule, camera) in db::nodes::changed_schedules(&ops.db, since).await? {
        if CameraId::parse(&camera).is_ok_and(|c| ops.nodes.holds(&c)) {
            ops.scheduler.refresh(&schedule);
        }
    }
    Ok(())
}

/// A camera was just created through this node: take it now if this node's share allows, so its
/// first slot fires here without waiting for a look.
pub async fn camera_created(ops: &Ops) {
    if let Err(e) = tick(ops, false).await {
        tracing::warn!(error = %e, "cannot take the new camera's lease now; the next look does");
    }
}

/// Shutdown: mark this node draining and give back every lease, so the other nodes take the
/// cameras at their next look while this one finishes its in-flight captures.
pub async fn drain(ops: &Ops) -> OpResult<usize> {
    let Some(config) = ops.nodes.config.as_ref() else {
        return Ok(0);
    };
    ops.nodes.draining.store(true, Ordering::SeqCst);
    let _one = ops.nodes.ticking.lock().await;
    ops.nodes.set_held(HashSet::new(), &ops.metrics);
    db::nodes::heartbeat(&ops.db, &config.id, ops.clock.now(), true).await?;
    let released = db::nodes::release(&ops.db, &config.id, None).await?;
    tracing::info!(
        node = %config.id,
        released,
        "draining: gave back every camera lease"
    );
    Ok(released as usize)
}

/// A clean stop: remove this node's row (a node that left on purpose is not a dead one).
pub async fn leave(ops: &Ops) -> OpResult<()> {
    if let Some(config) = ops.nodes.config.as_ref() {
        db::nodes::release(&ops.db, &config.id, None).await?;
        db::nodes::delete(&ops.db, &config.id).await?;
    }
    Ok(())
}

/// A node's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NodeLife {
    /// Heartbeat within one lease period: takes and holds cameras.
    Live,
    /// Stopping: has given its cameras back and finishes its in-flight captures.
    Draining,
    /// No heartbeat for a lease period: its leases have expired or are expiring.
    Dead,
}

/// How a node is doing, from its heartbeat.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NodeHealth {
    /// Live and its last heartbeat is no older than two heartbeat intervals.
    pub ok: bool,
    /// Milliseconds since its last heartbeat (by this node's clock).
    pub heartbeat_age_ms: u64,
    /// What is wrong, in a sentence; absent when `ok`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// A node, as `GET /api/v1/nodes` shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NodeView {
    pub id: String,
    /// The machine it runs on.
    pub name: String,
    pub version: String,
    #[schema(value_type = String, format = DateTime)]
    pub started_at: DateTime<Utc>,
    #[schema(value_type = String, format = DateTime)]
    pub heartbeat_at: DateTime<Utc>,
    pub state: NodeLife,
    /// The node answering this request.
    pub this_node: bool,
    /// How many cameras it holds an unexpired lease on.
    pub camera_count: usize,
    /// Which, by id.
    #[schema(value_type = Vec<String>)]
    pub cameras: Vec<CameraId>,
    pub health: NodeHealth,
}

/// Every node the database knows, live first, then by id.
pub async fn list(ops: &Ops) -> OpResult<Vec<NodeView>> {
    let now = ops.clock.now();
    let period = ops.nodes.lease_period().unwrap_or(Duration::from_secs(15));
    let period_c = chrono::Duration::from_std(period).unwrap_or_default();
    let mut by_node: HashMap<String, Vec<CameraId>> = HashMap::new();
    for (camera, node) in db::nodes::leases(&ops.db, now).await? {
        if let Ok(c) = CameraId::parse(&camera) {
            by_node.entry(node).or_default().push(c);
        }
    }
    let me = ops.nodes.id();
    let mut out: Vec<NodeView> = db::nodes::list(&ops.db)
        .await?
        .into_iter()
        .map(|n| {
            let age = now - n.heartbeat_at;
            let age_ms = age.num_milliseconds().max(0) as u64;
            let state = if age > period_c {
                NodeLife::Dead
            } else if n.draining {
                NodeLife::Draining
            } else {
                NodeLife::Live
            };
            let late = age_ms > (period.as_millis() as u64) * 2 / 3 + LOOK_EVERY.as_millis() as u64;
            let problem = match state {
                NodeLife::Dead => Some(format!(
                    "no heartbeat for {} s (the lease period is {} s): its cameras have moved or are moving to live nodes",
                    age_ms / 1000,
                    period.as_secs()
                )),
                NodeLife::Draining => Some("stopping: its cameras are handed to the other nodes".into()),
                NodeLife::Live if late => Some(format!(
                    "heartbeat {} ms old, later than expected (every {} ms)",
                    age_ms,
                    period.as_millis() / 3
                )),
                NodeLife::Live => None,
            };
            let cameras = by_node.remove(&n.id).unwrap_or_default();
            NodeView {
                this_node: me == Some(n.id.as_str()),
                camera_count: cameras.len(),
                cameras,
                health: NodeHealth {
                    ok: problem.is_none(),
                    heartbeat_age_ms: age_ms,
                    problem,
                },
                id: n.id,
                name: n.name,
                version: n.version,
                started_at: n.started_at,
                heartbeat_at: n.heartbeat_at,
                state,
            }
        })
        .collect();
    out.sort_by(|a, b| (a.state != NodeLife::Live, &a.id).cmp(&(b.state != NodeLife::Live, &b.id)));
    Ok(out)
}

#[cfg(test)]
#[path = "nodes_tests.rs"]
mod tests;
