//! The one writer for the hot path: slot claims, capture outcomes and frame rows.
//!
//! SQLite allows one writer at a time. With many tasks each committing its own small
//! transaction, they queue on SQLite's lock, whose busy handler *sleeps* (1, 2, 5, 10 ms …): the
//! bench measured the rate topping out near 550 captures/s on 2 cores with CPU to spare. Here
//! every hot-path write goes through a channel to one thread that owns its own SQLite connection;
//! it takes whatever has queued (up to [`MAX_BATCH`]), runs it in one transaction, commits once
//! and only then answers each caller. Under light load a batch is a single operation, so latency
//! does not grow; under heavy load one commit carries hundreds of writes.
//!
//! Why a thread with a synchronous connection, not a task on the sqlx pool: sqlx runs every
//! statement as a round trip to its connection's worker thread (a claim was 3 of them, a frame
//! 7), and each round trip is two thread wake-ups. At the idle scenario's 28 captures a second
//! those wake-ups, not SQL, were most of Heldar's CPU (docs/benchmarks.md). Here a batch costs
//! one wake-up of this thread and one per answer, and the connection's page cache stays warm
//! because nothing else writes through it. Reads and the API's own writes stay on the pool;
//! SQLite's lock and busy timeout order the two.
//!
//! **Group commit for scheduled frames.** A scheduled frame's row may wait up to [`LINGER`] for
//! company before its batch commits: at the 28 captures a second of 100,000 hourly schedules,
//! one commit then carries a few frames instead of one, and each commit's fixed cost (WAL
//! header, checksums, locks, a wake-up) is shared. Waiting is safe: the frame's file is already
//! in place, and a crash before the commit leaves a file without a row, which start-up
//! reconciliation re-indexes (docs/design.md §8). Everything else — slot claims, a frame kept
//! through the API, camera status — is urgent: it ends the wait and commits at once, so the
//! linger never adds to fire lateness or to an API response.
//!
//! Each operation's own failure (a constraint, a camera deleted meanwhile) is its own answer;
//! the rest of the batch still commits. If the commit itself fails, every caller in the batch
//! gets the error — nothing is reported done that is not durable in the database. On shutdown
//! the queue is drained and committed before the thread ends (docs/design.md §10: commit pending
//! rows).
//!
//! **Outages.** When a batch cannot get the database (another process holds SQLite's write lock
//! past [`LOCK_WAIT`], or the server is unreachable: [`DbError::Unavailable`]), nothing in it is
//! lost or failed: the whole batch, and every operation that arrives after it, is *held* in
//! order in this thread's memory and retried until the database returns; then it commits in the
//! order it was asked, and callers get their answers. The outage is published ([`Outage`], one
//! ERROR line at its start and one INFO line at its end) so callers that must not wait — the
//! scheduler claiming slots, a slot's task keeping its frame — take a [`Pending`] answer and go
//! on ([`Answer::Held`]). The buffer is bounded ([`Buffer`]): past its number of writes, or once
//! the outage is older than its bound, new writes are refused with [`DbError::Unavailable`]
//! (their callers count the slots missed and remove the files they wrote); slot claims are
//! still held, since they are small and keep the database's `next_due_at` in step with the
//! scheduler's timers, up to [`MAX_HELD_CLAIMS`]. A frame taken for a slot whose claim was still
//! held carries that claim ([`Writer::record_frame_or_hold`]): its row is written only if the
//! claim won when it was replayed (another process may have taken the slot meanwhile), else
//! answered [`DbError::ClaimNotWon`].
//!
//! **A commit whose answer was lost** (PostgreSQL only: the connection broke after COMMIT was
//! sent) is held like any batch the database did not take, together with what each operation
//! gave in its transaction and the batch's marker ([`Doubt`]). Before anything else is tried,
//! the marker says whether that commit landed: if it did, the held batch is answered from its
//! transaction, not run again; if not, it runs again, exactly that batch, under the same marker
//! (`postgres`). SQLite's commit is local and always answers, so it has no marker.
//!
//! **Two engines, one set of rules.** Nothing above is SQLite-specific but the connection: the
//! thread runs each batch through an [`Engine`] — SQLite (this file: `BEGIN IMMEDIATE`, the
//! operations, one commit, as before) or PostgreSQL (`postgres`: the same operations on a
//! connection of the writer's own, each under a savepoint). Batching, the linger, the outage
//! buffer, the wins of held claims and the answers stay here, shared (docs/design.md §8.1,
//! docs/scale-out.md "The PostgreSQL writer").

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OpenFlags, TransactionBehavior};
use tokio::sync::{mpsc, oneshot, watch};

use super::{cameras, schedules, snapshots, sqlite_step, DbError};
use crate::models::{fmt_ts, CameraId, CameraState, Snapshot};

mod postgres;

/// Most operations per transaction.
pub const MAX_BATCH: usize = 512;

/// How long a scheduled frame's row may wait for company before its batch commits.
pub const LINGER: Duration = Duration::from_millis(100);

/// How long a batch waits for SQLite's write lock (the connection's busy timeout) before the
/// database counts as unavailable and the batch is held. Short, so an outage is noticed before
/// the slots claimed ahead are due; a lock shorter than this is waited out as before.
pub const LOCK_WAIT: Duration = Duration::from_secs(1);

/// Slot claims held during an outage beyond which new ones are refused (about 100 bytes each).
pub const MAX_HELD_CLAIMS: usize = 100_000;

/// Between two attempts at a database that fails at once (not by waiting for a lock).
const RETRY: Duration = Duration::from_millis(250);

/// How long a stopping writer keeps trying to commit what it holds.
const STOP_RETRY: Duration = Duration::from_secs(5);

/// How long wins of claims are remembered after an outage, for the frames taken for them.
const WON_KEEP: Duration = Duration::from_secs(600);

/// The bound of what is held during an outage (HELDAR_DB_OUTAGE_BUFFER, HELDAR_DB_OUTAGE_MAX_S).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buffer {
    /// Writes (frame rows, camera status, skipped slots) held at most.
    pub max_writes: usize,
    /// New writes are held only while the outage is younger than this.
    pub max_age: Duration,
}

impl Default for Buffer {
    fn default() -> Self {
        Buffer {
            max_writes: 10_000,
            max_age: Duration::from_secs(60),
        }
    }
}

/// The database being away, as the writer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outage {
    pub since: DateTime<Utc>,
    /// The database's own words for the first failure (e.g. `database is locked`).
    pub reason: String,
    /// The buffer is full or the outage outlasted its bound: new writes are refused.
    pub refusing: bool,
}

/// An answer now, or the promise of one once the database returns.
pub enum Answer<T> {
    Done(Result<T, DbError>),
    Held(Pending<T>),
}

/// The answer to an operation held during an outage.
pub struct Pending<T>(oneshot::Receiver<Result<T, DbError>>);

impl<T> Pending<T> {
    /// Wait for it: committed, refused, or failed.
    pub async fn wait(self) -> Result<T, DbError> {
        self.0.await.unwrap_or_else(|_| Err(closed()))
    }
}

/// A slot claim: its schedule and slot.
pub type ClaimKey = (String, DateTime<Utc>);

enum Op {
    /// Slot claims, all or none (one savepoint); the answer says which were won.
    Claims {
        claims: Vec<schedules::Claim>,
        reply: oneshot::Sender<Result<Vec<bool>, DbError>>,
    },
    Frame {
        snapshot: Box<Snapshot>,
        /// May wait up to the writer's linger for company (a scheduled frame).
        linger: bool,
        /// The slot claim this frame was taken under, when that claim's answer was still held:
        /// the row is written only if the claim won.
        needs_claim: Option<ClaimKey>,
        reply: oneshot::Sender<Result<(), DbError>>,
    },
    Success {
        camera: CameraId,
        at: DateTime<Utc>,
        reply: oneshot::Sender<Result<(), DbError>>,
    },
    Failure {
        camera: CameraId,
        state: CameraState,
        error: String,
        at: DateTime<Utc>,
        reply: oneshot::Sender<Result<(), DbError>>,
    },
    /// A slot whose frame was captured and not kept (dark, unchanged): the schedule's
    /// `last_fired_at` and `last_skipped_at`/`last_skip_reason`, and the camera's success.
    Skip {
        camera: CameraId,
        schedule: String,
        taken_at: DateTime<Utc>,
        reason: &'static str,
        at: DateTime<Utc>,
        reply: oneshot::Sender<Result<(), DbError>>,
    },
    /// Rows for frames already on disk (start-up reconciliation re-indexing files), all or none.
    Index {
        snapshots: Vec<Snapshot>,
        reply: oneshot::Sender<Result<(), DbError>>,
    },
    /// From [`WriterTask::finish`]: take no new writes, commit what is queued, end.
    Stop,
}

/// The handle: cheap to clone.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Op>,
    outage: watch::Receiver<Option<Outage>>,
    held: Arc<AtomicUsize>,
}

/// The writer thread itself, owned by the application.
pub struct WriterTask {
    tx: mpsc::Sender<Op>,
    ended: oneshot::Receiver<()>,
}

impl WriterTask {
    /// Stop taking new writes, commit what is queued, and wait for the thread to end.
    pub async fn finish(self) {
        let _ = self.tx.send(Op::Stop).await;
        if self.ended.await.is_err() {
            tracing::error!("the database writer thread ended abnormally");
        }
    }
}

fn closed() -> DbError {
    DbError::Writer("the database writer has stopped".into())
}

impl Op {
    /// Whether this operation ends a linger: everything but a scheduled frame.
    fn urgent(&self) -> bool {
        // A skipped slot's note is as lingering as a scheduled frame's row: nobody waits on it.
        !matches!(self, Op::Frame { linger: true, .. } | Op::Skip { .. })
    }
}

impl Writer {
    /// Open the writer's own connection to the database file at `path` (already migrated) and
    /// start its thread; scheduled frames wait up to `linger` for company ([`LINGER`] in the
    /// application).
    pub fn start(path: &Path, linger: Duration) -> Result<(Writer, WriterTask), DbError> {
        Self::start_with(path, linger, Buffer::default())
    }

    /// [`Writer::start`] with the outage buffer's bound.
    pub fn start_with(
        path: &Path,
        linger: Duration,
        buffer: Buffer,
    ) -> Result<(Writer, WriterTask), DbError> {
        Self::spawn(Engine::Sqlite(open(path)?), linger, buffer)
    }

    /// The writer for `pool`'s database: on SQLite its own connection to the file of
    /// `database_url`, on PostgreSQL its own connection to the same server (`postgres`).
    pub fn start_for(
        pool: &super::Pool,
        database_url: &str,
        linger: Duration,
        buffer: Buffer,
    ) -> Result<(Writer, WriterTask), DbError> {
        match pool {
            super::Pool::Sqlite(_) => {
                let path = super::file_of(database_url)
                    .map_err(|e| DbError::Writer(format!("opening the writer's database: {e}")))?;
                Self::start_with(&path, linger, buffer)
            }
            super::Pool::Postgres(pg) => Self::start_postgres(pg, linger, buffer),
        }
    }

    /// The writer on a PostgreSQL database (already migrated), with the connection settings of
    /// `pool` (one connection of its own; the pool itself is left to reads and the API).
    pub fn start_postgres(
        pool: &sqlx::PgPool,
        linger: Duration,
        buffer: Buffer,
    ) -> Result<(Writer, WriterTask), DbError> {
        Self::spawn(
            Engine::Postgres(Box::new(postgres::PgEngine::new(pool)?)),
            linger,
            buffer,
        )
    }

    fn spawn(
        engine: Engine,
        linger: Duration,
        buffer: Buffer,
    ) -> Result<(Writer, WriterTask), DbError> {
        let (tx, rx) = mpsc::channel(8 * MAX_BATCH);
        let (ended_tx, ended) = oneshot::channel();
        let (outage_tx, outage) = watch::channel(None);
        let held = Arc::new(AtomicUsize::new(0));
        let thread = Thread {
            engine,
            rx,
            linger,
            buffer,
            outage: outage_tx,
            held_count: held.clone(),
            held: VecDeque::new(),
            held_claims: 0,
            held_writes: 0,
            state: None,
            won: Won::default(),
            in_doubt: None,
            stop_by: None,
        };
        std::thread::Builder::new()
            .name("heldar-db-writer".into())
            .spawn(move || {
                thread.run();
                let _ = ended_tx.send(());
            })
            .map_err(|e| DbError::Writer(format!("cannot start the database writer: {e}")))?;
        let writer = Writer {
            tx: tx.clone(),
            outage,
            held,
        };
        Ok((writer, WriterTask { tx, ended }))
    }

    /// The outage in progress, if the database is away.
    pub fn outage(&self) -> Option<Outage> {
        self.outage.borrow().clone()
    }

    /// Writes and claims held, waiting for the database.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// Send `op` and wait for its answer, unless the database is (or becomes) unavailable
    /// first: then the answer is [`Answer::Held`]. An answer given before the outage began is
    /// never mistaken for a held one: it is looked at first.
    async fn submit<T>(&self, op: Op, rx: oneshot::Receiver<Result<T, DbError>>) -> Answer<T> {
        if self.tx.send(op).await.is_err() {
            return Answer::Done(Err(closed()));
        }
        let mut rx = rx;
        let mut outage = self.outage.clone();
        let away = async move {
            if outage.wait_for(Option::is_some).await.is_err() {
                // The writer is gone; its answer (or its dropped channel) says so.
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            biased;
            r = &mut rx => Answer::Done(r.unwrap_or_else(|_| Err(closed()))),
            _ = away => Answer::Held(Pending(rx)),
        }
    }

    /// [`Writer::claim_many`], answering [`Answer::Held`] at once if the database is away: the
    /// claims are then held and replayed, in order, when it returns.
    pub async fn claim_many_or_hold(&self, claims: Vec<schedules::Claim>) -> Answer<Vec<bool>> {
        if claims.is_empty() {
            return Answer::Done(Ok(Vec::new()));
        }
        let (reply, rx) = oneshot::channel();
        self.submit(Op::Claims { claims, reply }, rx).await
    }

    /// [`Writer::record_frame`], answering [`Answer::Held`] at once if the database is away.
    /// `needs_claim`: the slot claim the frame was taken under, if that claim was itself held;
    /// the row is then written only if the claim wins ([`DbError::ClaimNotWon`] otherwise).
    pub async fn record_frame_or_hold(
        &self,
        snapshot: Snapshot,
        needs_claim: Option<ClaimKey>,
    ) -> Answer<()> {
        let (reply, rx) = oneshot::channel();
        let linger = snapshot.schedule_id.is_some();
        let op = Op::Frame {
            snapshot: Box::new(snapshot),
            linger,
            needs_claim,
            reply,
        };
        self.submit(op, rx).await
    }

    /// [`Writer::record_failure`], answering [`Answer::Held`] at once if the database is away.
    pub async fn record_failure_or_hold(
        &self,
        camera: &CameraId,
        state: CameraState,
        error: &str,
        at: DateTime<Utc>,
    ) -> Answer<()> {
        let (reply, rx) = oneshot::channel();
        let op = Op::Failure {
            camera: camera.clone(),
            state,
            error: error.to_string(),
            at,
            reply,
        };
        self.submit(op, rx).await
    }

    /// [`Writer::record_skip`], answering [`Answer::Held`] at once if the database is away.
    pub async fn record_skip_or_hold(
        &self,
        camera: &CameraId,
        schedule: &str,
        taken_at: DateTime<Utc>,
        reason: &'static str,
        at: DateTime<Utc>,
    ) -> Answer<()> {
        let (reply, rx) = oneshot::channel();
        let op = Op::Skip {
            camera: camera.clone(),
            schedule: schedule.to_string(),
            taken_at,
            reason,
            at,
            reply,
        };
        self.submit(op, rx).await
    }

    async fn send<T>(
        &self,
        op: Op,
        rx: oneshot::Receiver<Result<T, DbError>>,
    ) -> Result<T, DbError> {
        self.tx.send(op).await.map_err(|_| closed())?;
        rx.await.map_err(|_| closed())?
    }

    /// Claim each slot by moving its schedule's `next_due_at` from the slot to the next one
    /// ([`schedules::CLAIM_SQL`]), in one transaction. Each answer is true only for the one
    /// caller whose view of that slot was current. If any statement fails, none is claimed.
    pub async fn claim_many(&self, claims: Vec<schedules::Claim>) -> Result<Vec<bool>, DbError> {
        if claims.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, rx) = oneshot::channel();
        self.send(Op::Claims { claims, reply }, rx).await
    }

    /// [`Writer::claim_many`] for one slot.
    pub async fn claim(
        &self,
        id: &str,
        slot: DateTime<Utc>,
        next: DateTime<Utc>,
    ) -> Result<bool, DbError> {
        let claim = schedules::Claim {
            id: id.to_string(),
            slot,
            next: Some(next),
        };
        Ok(self.claim_many(vec![claim]).await?.first() == Some(&true))
    }

    /// A frame's row, its schedule's `last_fired_at` and its camera's capture success, as one.
    /// A scheduled frame (`schedule_id` set) may wait up to the linger for its commit; a frame
    /// kept through the API commits at once.
    pub async fn record_frame(&self, snapshot: Snapshot) -> Result<(), DbError> {
        let (reply, rx) = oneshot::channel();
        let linger = snapshot.schedule_id.is_some();
        self.send(
            Op::Frame {
                snapshot: Box::new(snapshot),
                linger,
                needs_claim: None,
                reply,
            },
            rx,
        )
        .await
    }

    /// Rows for frames whose files are already in place and have no row (start-up
    /// reconciliation), in one savepoint: all or none. Nothing else (no schedule, no camera
    /// status) changes.
    pub async fn index(&self, snapshots: Vec<Snapshot>) -> Result<(), DbError> {
        let (reply, rx) = oneshot::channel();
        self.send(Op::Index { snapshots, reply }, rx).await
    }

    /// A scheduled slot whose frame was captured and skipped (`reason`: `dark`, `unchanged`):
    /// the schedule's `last_fired_at` (the frame's time) and its last skip, and the camera's
    /// success, as one. May wait up to the linger, as a scheduled frame's row does.
    pub async fn record_skip(
        &self,
        camera: &CameraId,
        schedule: &str,
        taken_at: DateTime<Utc>,
        reason: &'static str,
        at: DateTime<Utc>,
    ) -> Result<(), DbError> {
        let (reply, rx) = oneshot::channel();
        self.send(
            Op::Skip {
                camera: camera.clone(),
                schedule: schedule.to_string(),
                taken_at,
                reason,
                at,
                reply,
            },
            rx,
        )
        .await
    }

    /// A successful capture whose frame is not recorded (a live snapshot, a store failure).
    pub async fn record_success(
        &self,
        camera: &CameraId,
        at: DateTime<Utc>,
    ) -> Result<(), DbError> {
        let (reply, rx) = oneshot::channel();
        self.send(
            Op::Success {
                camera: camera.clone(),
                at,
                reply,
            },
            rx,
        )
        .await
    }

    /// A failed capture; `error` must already be masked.
    pub async fn record_failure(
        &self,
        camera: &CameraId,
        state: CameraState,
        error: &str,
        at: DateTime<Utc>,
    ) -> Result<(), DbError> {
        let (reply, rx) = oneshot::channel();
        self.send(
            Op::Failure {
                camera: camera.clone(),
                state,
                error: error.to_string(),
                at,
                reply,
            },
            rx,
        )
        .await
    }
}

/// The same settings as the pool's connections (`db::connect`): WAL, NORMAL sync, foreign keys.
fn open(path: &Path) -> Result<Connection, DbError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite_step("opening the writer's connection"))?;
    conn.busy_timeout(LOCK_WAIT)
        .map_err(sqlite_step("setting the writer's busy timeout"))?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
    )
    .map_err(sqlite_step("configuring the writer's connection"))?;
    Ok(conn)
}

/// What running one operation gave, before its batch commits.
enum Ran {
    Claims(Result<Vec<bool>, DbError>),
    Unit(Result<(), DbError>),
    Nothing,
}

impl Op {
    /// Answer this operation with `r` (which must be of its kind).
    fn answer(self, r: Ran) {
        match (self, r) {
            (Op::Claims { reply, .. }, Ran::Claims(r)) => {
                let _ = reply.send(r);
            }
            (op, Ran::Unit(r)) => {
                if let Some(reply) = op.unit_reply() {
                    let _ = reply.send(r);
                }
            }
            _ => {}
        }
    }

    /// Fail this operation with the error `err` makes.
    fn fail(self, err: impl Fn() -> DbError) {
        match self {
            Op::Claims { reply, .. } => {
                let _ = reply.send(Err(err()));
            }
            op => {
                if let Some(reply) = op.unit_reply() {
                    let _ = reply.send(Err(err()));
                }
            }
        }
    }

    fn unit_reply(self) -> Option<oneshot::Sender<Result<(), DbError>>> {
        match self {
            Op::Frame { reply, .. }
            | Op::Success { reply, .. }
            | Op::Failure { reply, .. }
            | Op::Skip { reply, .. }
            | Op::Index { reply, .. } => Some(reply),
            Op::Claims { .. } | Op::Stop => None,
        }
    }

    /// (claims, writes) this operation holds in the outage buffer.
    fn weight(&self) -> (usize, usize) {
        match self {
            Op::Claims { .. } => (1, 0),
            Op::Index { snapshots, .. } => (0, snapshots.len().max(1)),
            Op::Stop => (0, 0),
            _ => (0, 1),
        }
    }
}

/// Claims won during an outage and shortly after it, by (schedule, slot): what a frame taken
/// under a held claim is checked against. Only recorded around outages, so it stays small.
#[derive(Default)]
struct Won {
    at: HashMap<ClaimKey, Instant>,
}

impl Won {
    fn contains(&self, key: &ClaimKey) -> bool {
        self.at.contains_key(key)
    }

    fn add(&mut self, keys: impl IntoIterator<Item = ClaimKey>) {
        let now = Instant::now();
        self.at.extend(keys.into_iter().map(|k| (k, now)));
        self.at.retain(|_, t| now.duration_since(*t) < WON_KEEP);
    }
}

/// The outage in progress, as the writer thread keeps it.
struct State {
    began: Instant,
    public: Outage,
    committed: u64,
    refused: u64,
}

/// The writer thread: its connection, its queue, and what it holds during an outage.
struct Thread {
    engine: Engine,
    rx: mpsc::Receiver<Op>,
    linger: Duration,
    buffer: Buffer,
    outage: watch::Sender<Option<Outage>>,
    held_count: Arc<AtomicUsize>,
    /// Operations waiting for the database, in the order they were asked.
    held: VecDeque<Op>,
    held_claims: usize,
    held_writes: usize,
    state: Option<State>,
    /// Claims won around an outage.
    won: Won,
    /// The batch at the front of `held` (its number of operations) whose commit was sent and
    /// not answered: settled by its marker before anything else is tried.
    in_doubt: Option<(usize, Box<Doubt>)>,
    /// Set once a stop was asked for: how long held operations may still be tried.
    stop_by: Option<Instant>,
}

impl Thread {
    fn run(mut self) {
        loop {
            if self.held.is_empty() {
                // Blocks this thread (never a runtime worker) until there is work; `None` once
                // the queue is closed and drained.
                let Some(first) = self.rx.blocking_recv() else {
                    break;
                };
                let mut batch = collect_batch(&mut self.rx, first, self.linger);
                if batch.iter().any(|op| matches!(op, Op::Stop)) {
                    // No new writes; what is already queued still commits, in the batches to
                    // come.
                    self.rx.close();
                    self.stop_by.get_or_insert(Instant::now() + STOP_RETRY);
                    batch.retain(|op| !matches!(op, Op::Stop));
                }
                if self.attempt(batch, None) {
                    self.engine_upkeep();
                }
                self.held_count.store(self.held.len(), Ordering::Relaxed);
                continue;
            }
            // An outage: take in what has queued (held or refused), then try again.
            self.drain();
            let began = Instant::now();
            // A batch in doubt is settled alone, exactly as it ran: its marker speaks for
            // those operations and no others.
            let (n, doubt) = match self.in_doubt.take() {
                Some((n, doubt)) => (n, Some(doubt)),
                None => (self.held.len().min(MAX_BATCH), None),
            };
            let batch: Vec<Op> = self.held.drain(..n).collect();
            self.unhold(&batch);
            let failed_at_once = !self.attempt(batch, doubt) && began.elapsed() < RETRY;
            self.held_count.store(self.held.len(), Ordering::Relaxed);
            if self.held.is_empty() {
                continue;
            }
            if self.stop_by.is_some_and(|by| Instant::now() >= by) {
                self.give_up();
                continue;
            }
            if failed_at_once {
                // The database failed without waiting for a lock (a missing file, a refused
                // connection): do not spin. New operations still queue in the channel.
                std::thread::park_timeout(RETRY);
            }
        }
        if self.state.is_some() {
            self.end();
        }
    }

    /// Run `batch` (settling `doubt` first: `batch` is then the batch in doubt); if the
    /// database is away, hold it (in front of anything held after it). False if it was held.
    fn attempt(&mut self, batch: Vec<Op>, doubt: Option<Box<Doubt>>) -> bool {
        if batch.is_empty() {
            return true;
        }
        let record = self.state.is_some() || !self.won.at.is_empty();
        match execute(&mut self.engine, batch, &mut self.won, record, doubt) {
            Ok(n) => {
                if let Some(s) = &mut self.state {
                    s.committed += n as u64;
                    if self.held.is_empty() {
                        self.end();
                    }
                }
                true
            }
            Err(Held {
                ops,
                error: e,
                doubt,
            }) => {
                if self.state.is_none() {
                    self.begin(&e);
                } else {
                    self.renamed(&e);
                }
                if let Some(doubt) = doubt {
                    self.in_doubt = Some((ops.len(), doubt));
                }
                // Back in front, in their order.
                for op in ops.into_iter().rev() {
                    self.hold_front(op);
                }
                self.check_bounds();
                false
            }
        }
    }

    /// The engine's own housekeeping, between batches while the database answers.
    fn engine_upkeep(&mut self) {
        if let Engine::Postgres(pg) = &mut self.engine {
            pg.upkeep();
        }
    }

    fn begin(&mut self, e: &DbError) {
        let reason = match e {
            DbError::Unavailable { reason, .. } => reason.clone(),
            other => other.to_string(),
        };
        tracing::error!(
            error = %e,
            buffer_writes = self.buffer.max_writes,
            buffer_seconds = self.buffer.max_age.as_secs(),
            "{}: holding writes and slot claims until it returns (up to {} writes \
             or {} s; after that new frames are refused and their slots counted missed)",
            super::unavailable(),
            self.buffer.max_writes,
            self.buffer.max_age.as_secs()
        );
        let public = Outage {
            since: Utc::now(),
            reason,
            refusing: false,
        };
        self.outage.send_replace(Some(public.clone()));
        self.state = Some(State {
            began: Instant::now(),
            public,
            committed: 0,
            refused: 0,
        });
    }

    /// An outage going on with another cause worth naming: it began as a dropped connection
    /// (an operator ending Heldar's sessions) and the reconnect is refused its password, or the
    /// other way round. The health check shows the cause now, and one WARN line says so; other
    /// changes of wording (refused, timed out) are the same outage and are not logged.
    fn renamed(&mut self, e: &DbError) {
        let DbError::Unavailable { reason, .. } = e else {
            return;
        };
        let Some(s) = &mut self.state else { return };
        let refused = |r: &str| r.starts_with("the database refuses");
        if refused(reason) == refused(&s.public.reason) {
            return;
        }
        tracing::warn!(error = %e, "{}: the outage goes on, now because {reason}", crate::db::UNAVAILABLE);
        s.public.reason = reason.clone();
        self.outage.send_replace(Some(s.public.clone()));
    }

    fn end(&mut self) {
        let Some(s) = self.state.take() else { return };
        tracing::info!(
            outage_seconds = s.began.elapsed().as_secs_f64(),
            since = %fmt_ts(s.public.since),
            committed = s.committed,
            refused = s.refused,
            "the database is available again after {:.1} s: {} held operations committed, {} \
             writes refused during the outage",
            s.began.elapsed().as_secs_f64(),
            s.committed,
            s.refused
        );
        self.outage.send_replace(None);
    }

    /// Refuse new writes from now on if the buffer is full or the outage outlasted its bound.
    fn check_bounds(&mut self) {
        let Some(s) = &mut self.state else { return };
        if s.public.refusing {
            return;
        }
        let why = if self.held_writes >= self.buffer.max_writes {
            format!(
                "the outage buffer is full ({} writes held, HELDAR_DB_OUTAGE_BUFFER)",
                self.held_writes
            )
        } else if s.began.elapsed() >= self.buffer.max_age {
            format!(
                "the outage has lasted longer than its bound of {} s (HELDAR_DB_OUTAGE_MAX_S)",
                self.buffer.max_age.as_secs()
            )
        } else {
            return;
        };
        tracing::warn!(
            "{}, and {why}: new frames are refused and their slots counted missed \
             until it returns; slot claims are still held",
            super::unavailable()
        );
        s.public.refusing = true;
        self.outage.send_replace(Some(s.public.clone()));
    }

    /// Take in what has queued during an attempt: held, or refused past the bound.
    fn drain(&mut self) {
        loop {
            match self.rx.try_recv() {
                Ok(Op::Stop) => {
                    self.rx.close();
                    self.stop_by.get_or_insert(Instant::now() + STOP_RETRY);
                }
                Ok(op) => {
                    self.check_bounds();
                    self.hold(op);
                }
                Err(_) => break,
            }
        }
    }

    /// Hold `op` at the back, or refuse it: a write once the buffer refuses, a claim beyond
    /// [`MAX_HELD_CLAIMS`].
    fn hold(&mut self, op: Op) {
        let refusing = self.state.as_ref().is_some_and(|s| s.public.refusing);
        let (claims, writes) = op.weight();
        let refuse = match claims > 0 {
            true => self.held_claims >= MAX_HELD_CLAIMS,
            false => refusing,
        };
        if refuse {
            if let Some(s) = &mut self.state {
                s.refused += writes as u64;
            }
            let reason = match claims > 0 {
                true => format!("{MAX_HELD_CLAIMS} slot claims are already held"),
                false => "the outage outlasted its buffer (HELDAR_DB_OUTAGE_BUFFER, \
                          HELDAR_DB_OUTAGE_MAX_S)"
                    .to_string(),
            };
            op.fail(|| DbError::Unavailable {
                step: "holding a write during the outage",
                reason: reason.clone(),
            });
            return;
        }
        self.held_claims += claims;
        self.held_writes += writes;
        self.held.push_back(op);
        self.held_count.store(self.held.len(), Ordering::Relaxed);
    }

    /// Put an operation that was tried back in front (it was held before; no bound applies).
    fn hold_front(&mut self, op: Op) {
        let (claims, writes) = op.weight();
        self.held_claims += claims;
        self.held_writes += writes;
        self.held.push_front(op);
    }

    fn unhold(&mut self, ops: &[Op]) {
        for op in ops {
            let (claims, writes) = op.weight();
            self.held_claims -= claims;
            self.held_writes -= writes;
        }
        // The published count still includes `ops` while they are tried ([`Thread::run`]
        // stores it again after the attempt).
    }

    /// Stopping, and the database still away after [`STOP_RETRY`]: fail what is held. Frame
    /// files without rows are re-indexed by the reconciler at the next start.
    fn give_up(&mut self) {
        tracing::error!(
            held = self.held.len(),
            "{} at shutdown: the held writes are dropped",
            super::unavailable()
        );
        if self.in_doubt.take().is_some() {
            tracing::error!(
                "a write batch whose commit was not answered before the outage may have \
                 committed; its callers are answered as failed, and a frame's file without a \
                 row, or a row without a file, is set right by the next reconciliation"
            );
        }
        let n = self.held.len();
        let ops: Vec<Op> = self.held.drain(..n).collect();
        self.unhold(&ops);
        self.held_count.store(0, Ordering::Relaxed);
        for op in ops {
            op.fail(|| DbError::Unavailable {
                step: "committing held writes at shutdown",
                reason: "the database did not return before Heldar stopped".into(),
            });
        }
    }
}

/// One batch: `first`, whatever else is queued, and — while every operation in it may linger —
/// whatever arrives until `first` has waited `linger`, up to [`MAX_BATCH`] operations.
fn collect_batch(rx: &mut mpsc::Receiver<Op>, first: Op, linger: Duration) -> Vec<Op> {
    let deadline = Instant::now() + linger;
    // Built once a batch: the wake-up for waiting on the queue from this thread.
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut urgent = first.urgent();
    let mut batch = Vec::with_capacity(MAX_BATCH);
    batch.push(first);
    while batch.len() < MAX_BATCH {
        let next = match rx.try_recv() {
            Ok(op) => Some(op),
            Err(mpsc::error::TryRecvError::Empty) if !urgent => recv_until(rx, &waker, deadline),
            Err(_) => None,
        };
        let Some(op) = next else { break };
        urgent |= op.urgent();
        batch.push(op);
    }
    batch
}

/// Wakes the writer thread when the queue has something.
struct Unpark(std::thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// The next operation, waiting on this thread no later than `deadline`; `None` at the deadline
/// or once the queue is closed (the caller's next `blocking_recv` tells which).
fn recv_until(rx: &mut mpsc::Receiver<Op>, waker: &Waker, deadline: Instant) -> Option<Op> {
    let mut cx = Context::from_waker(waker);
    loop {
        if let Poll::Ready(op) = rx.poll_recv(&mut cx) {
            return op;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        // A spurious wake-up only costs one more poll.
        std::thread::park_timeout(left);
    }
}

/// What the writer thread writes through: "run this batch of operations in one transaction and
/// commit" is all an engine does. Everything else — batching, the linger, the outage buffer,
/// the wins of held claims, answering callers — is shared ([`execute`]), so both back-ends
/// keep one set of rules. An enum rather than a trait object: two engines, known here, and the
/// SQLite arm stays a direct call on today's connection.
enum Engine {
    /// Today's engine: one synchronous SQLite connection of this thread's own.
    Sqlite(Connection),
    /// PostgreSQL through sqlx on a runtime of this thread's own (`postgres`).
    Postgres(Box<postgres::PgEngine>),
}

/// One transaction in progress, of either engine: each operation under its own savepoint, so
/// its failure undoes only itself (on PostgreSQL a failed statement aborts the whole
/// transaction unless it ran inside a savepoint that is then rolled back).
trait Tx {
    /// Slot claims ([`schedules::CLAIM_SQL`]), all or none; each answer: won or not.
    fn claims(&mut self, claims: &[schedules::Claim]) -> Result<Vec<bool>, DbError>;
    /// A frame's row, its schedule's `last_fired_at` and its camera's success.
    fn frame(&mut self, s: &Snapshot) -> Result<(), DbError>;
    fn success(&mut self, camera: &CameraId, at: DateTime<Utc>) -> Result<(), DbError>;
    fn failure(
        &mut self,
        camera: &CameraId,
        state: CameraState,
        error: &str,
        at: DateTime<Utc>,
    ) -> Result<(), DbError>;
    fn skip(
        &mut self,
        camera: &CameraId,
        schedule: &str,
        taken_at: DateTime<Utc>,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<(), DbError>;
    fn index(&mut self, all: &[Snapshot]) -> Result<(), DbError>;
}

/// How a batch's transaction ended, when it did not commit.
enum NotCommitted {
    /// The database is away: nothing of the batch stayed; hold it and try again later.
    Unavailable(DbError),
    /// PostgreSQL chose this transaction as a deadlock's victim, or could not serialise it:
    /// nothing stayed, and the same batch may simply run again at once.
    Conflict(DbError),
    /// Anything else (the commit itself refused): every caller gets this error.
    Failed(DbError),
    /// COMMIT went unanswered (PostgreSQL: the connection broke or fell silent after it was
    /// sent): the batch may have committed. What each operation gave in the transaction, kept
    /// for the answers if its marker shows it did.
    InDoubt(Box<Unanswered>),
    /// The batch's marker was already there: an earlier run of this same batch, in doubt,
    /// committed after all. Nothing of this run stayed.
    AlreadyCommitted,
}

/// A commit that went unanswered: why, and what each operation gave in its transaction.
struct Unanswered {
    error: DbError,
    ran: Vec<Ran>,
    won: HashSet<ClaimKey>,
}

/// A batch whose commit was sent and not answered: its marker, and what each of its operations
/// gave in that transaction (the answers, if the marker shows it committed).
struct Doubt {
    marker: postgres::Marker,
    ran: Vec<Ran>,
    won: HashSet<ClaimKey>,
}

/// A batch the database did not take: its operations, unanswered, to be held; why; and the
/// doubt about it, if its commit went unanswered.
struct Held {
    ops: Vec<Op>,
    error: DbError,
    doubt: Option<Box<Doubt>>,
}

/// How often a batch that met a deadlock or a serialization failure is run again at once
/// before the database counts as unavailable (and the batch is held, retried like an outage).
const CONFLICT_RETRIES: usize = 5;

/// Run `ops` in one transaction and answer each. `Ok(n)`: answered (committed, or each failed
/// with a lasting error); `Err`: the database is unavailable — the operations come back
/// unanswered, to be held. `record`: remember won claims in `won` (around an outage). Returns
/// how many operations were answered.
///
/// `doubt`: `ops` is a batch whose commit went unanswered. Its marker is asked about first: if
/// the batch committed, `ops` are answered from that transaction; if not, `ops` run again
/// under the same marker (which also catches a commit that landed meanwhile).
fn execute(
    engine: &mut Engine,
    ops: Vec<Op>,
    won: &mut Won,
    record: bool,
    doubt: Option<Box<Doubt>>,
) -> Result<usize, Held> {
    if let (Some(d), Engine::Postgres(pg)) = (&doubt, &mut *engine) {
        match pg.committed(&d.marker) {
            Ok(true) => {
                tracing::info!(
                    ops = ops.len(),
                    "a write batch whose commit was not answered had committed: its callers \
                     get the answers from that transaction, and it is not run again"
                );
                let d = doubt.expect("a batch in doubt");
                return Ok(answer_all(ops, d.ran, d.won, won, record));
            }
            Ok(false) => tracing::info!(
                ops = ops.len(),
                "a write batch whose commit was not answered had not committed: running it again"
            ),
            Err(error) if error.is_unavailable() => {
                return Err(Held { ops, error, doubt });
            }
            // The question failed otherwise: the batch runs again under its marker, which
            // tells the same thing (an earlier commit makes it [`NotCommitted::AlreadyCommitted`]).
            Err(e) => tracing::warn!(error = %e, "could not ask whether a write batch committed"),
        }
    }
    // One marker for every run of this batch: the one in doubt, else a new one (PostgreSQL).
    let mut marker = doubt.as_ref().map(|d| d.marker.clone());
    let mut conflicts = 0;
    loop {
        let ran = match engine {
            Engine::Sqlite(conn) => sqlite_batch(conn, &ops, won),
            Engine::Postgres(pg) => {
                let marker = marker.get_or_insert_with(postgres::Marker::random);
                pg.batch(&ops, won, marker)
            }
        };
        match ran {
            Ok((ran, batch_won)) => return Ok(answer_all(ops, ran, batch_won, won, record)),
            Err(NotCommitted::Unavailable(error)) => return Err(Held { ops, error, doubt }),
            Err(NotCommitted::InDoubt(unanswered)) => {
                let Unanswered {
                    error,
                    ran,
                    won: batch_won,
                } = *unanswered;
                tracing::warn!(
                    error = %error,
                    ops = ops.len(),
                    "the commit of a write batch was not answered: held until the database \
                     answers, then its marker tells whether it committed"
                );
                let doubt = Box::new(Doubt {
                    marker: marker.expect("a PostgreSQL batch has a marker"),
                    ran,
                    won: batch_won,
                });
                return Err(Held {
                    ops,
                    error,
                    doubt: Some(doubt),
                });
            }
            Err(NotCommitted::AlreadyCommitted) => {
                let Some(d) = doubt else {
                    // A fresh marker is 128 random bits: never already there.
                    let n = ops.len();
                    for op in ops {
                        op.fail(|| DbError::Writer("a new write batch marker was taken".into()));
                    }
                    return Ok(n);
                };
                tracing::info!(
                    ops = ops.len(),
                    "a write batch whose commit was not answered had committed after all: \
                     its callers get the answers from that transaction"
                );
                return Ok(answer_all(ops, d.ran, d.won, won, record));
            }
            Err(NotCommitted::Conflict(e)) => {
                conflicts += 1;
                if conflicts > CONFLICT_RETRIES {
                    let error = DbError::Unavailable {
                        step: "committing a write batch",
                        reason: format!("{CONFLICT_RETRIES} conflicts in a row ({e})"),
                    };
                    return Err(Held { ops, error, doubt });
                }
                // After a pause of random length, growing with the attempts: the other
                // transaction finishes meanwhile, instead of the two taking the same locks in
                // the same race again (two writers retrying at once deadlock again at once).
                let pause =
                    rand::Rng::gen_range(&mut rand::thread_rng(), 10..50) * conflicts as u64;
                tracing::debug!(error = %e, attempt = conflicts, pause_ms = pause, "a write batch conflicted; running it again");
                std::thread::sleep(Duration::from_millis(pause));
            }
            Err(NotCommitted::Failed(e)) => {
                tracing::error!(error = %e, ops = ops.len(), "a database write batch failed");
                let msg = e.to_string();
                let n = ops.len();
                for op in ops {
                    op.fail(|| {
                        DbError::Writer(format!("the write batch was not committed: {msg}"))
                    });
                }
                return Ok(n);
            }
        }
    }
}

/// Answer each of `ops` with what it gave in its (committed) transaction, and remember the
/// claims it won when `record`. How many were answered.
fn answer_all(
    ops: Vec<Op>,
    ran: Vec<Ran>,
    batch_won: HashSet<ClaimKey>,
    won: &mut Won,
    record: bool,
) -> usize {
    if record {
        won.add(batch_won);
    }
    let n = ops.len();
    for (op, r) in ops.into_iter().zip(ran) {
        op.answer(r);
    }
    n
}

/// Run each operation of a batch on `tx`: the part of a batch both engines share. Stops at the
/// first operation that found the database away or conflicting (the transaction is lost then);
/// returns what each operation gave and the claims won in the batch.
fn run_ops(
    tx: &mut impl Tx,
    ops: &[Op],
    won: &Won,
) -> Result<(Vec<Ran>, HashSet<ClaimKey>), NotCommitted> {
    let mut ran = Vec::with_capacity(ops.len());
    // Claims won in this batch, and frames that used one, applied to `won` once committed.
    let mut batch_won: HashSet<ClaimKey> = HashSet::new();
    for op in ops {
        let r = match op {
            Op::Claims { claims, .. } => {
                let r = tx.claims(claims);
                if let Ok(w) = &r {
                    batch_won.extend(
                        claims
                            .iter()
                            .zip(w)
                            .filter(|(_, won)| **won)
                            .map(|(c, _)| (c.id.clone(), c.slot)),
                    );
                }
                Ran::Claims(r)
            }
            Op::Frame {
                snapshot,
                needs_claim,
                ..
            } => match needs_claim {
                Some(k) if !won.contains(k) && !batch_won.contains(k) => {
                    Ran::Unit(Err(DbError::ClaimNotWon))
                }
                _ => Ran::Unit(tx.frame(snapshot)),
            },
            Op::Success { camera, at, .. } => Ran::Unit(tx.success(camera, *at)),
            Op::Failure {
                camera,
                state,
                error,
                at,
                ..
            } => Ran::Unit(tx.failure(camera, *state, error, *at)),
            Op::Skip {
                camera,
                schedule,
                taken_at,
                reason,
                at,
                ..
            } => Ran::Unit(tx.skip(camera, schedule, *taken_at, reason, *at)),
            Op::Index { snapshots, .. } => Ran::Unit(tx.index(snapshots)),
            Op::Stop => Ran::Nothing,
        };
        // A statement that met the lock, lost the connection or a deadlock (not only the
        // BEGIN): the batch is not whole. The caller drops the transaction, which rolls it back.
        match r {
            Ran::Claims(Err(e)) | Ran::Unit(Err(e))
                if e.is_unavailable() || postgres::is_conflict(&e) =>
            {
                return Err(not_committed(e));
            }
            r => ran.push(r),
        }
    }
    Ok((ran, batch_won))
}

/// The SQLite engine: today's code. One `BEGIN IMMEDIATE` (the write lock, waited for up to
/// [`LOCK_WAIT`]), the operations, one commit.
fn sqlite_batch(
    conn: &mut Connection,
    ops: &[Op],
    won: &Won,
) -> Result<(Vec<Ran>, HashSet<ClaimKey>), NotCommitted> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sqlite_step("starting a write batch"))
        .map_err(not_committed)?;
    let mut tx = SqliteTx(tx);
    let out = run_ops(&mut tx, ops, won)?;
    tx.0.commit()
        .map_err(sqlite_step("committing a write batch"))
        .map_err(not_committed)?;
    Ok(out)
}

/// An error that ended a batch, sorted: the database away, a conflict, or anything else.
fn not_committed(e: DbError) -> NotCommitted {
    if e.is_unavailable() {
        NotCommitted::Unavailable(e)
    } else if postgres::is_conflict(&e) {
        NotCommitted::Conflict(e)
    } else {
        NotCommitted::Failed(e)
    }
}

/// A SQLite write transaction.
struct SqliteTx<'c>(rusqlite::Transaction<'c>);

impl Tx for SqliteTx<'_> {
    /// Under one savepoint: if a statement fails, none of them stays claimed, so no slot is
    /// taken that its caller does not know it won.
    fn claims(&mut self, claims: &[schedules::Claim]) -> Result<Vec<bool>, DbError> {
        let sp = self
            .0
            .savepoint()
            .map_err(sqlite_step("opening a savepoint"))?;
        let won = {
            let mut st = sp
                .prepare_cached(schedules::CLAIM_SQL)
                .map_err(sqlite_step("claiming a slot"))?;
            claims
                .iter()
                .map(|c| {
                    st.execute(params![c.next.map(fmt_ts), c.id, fmt_ts(c.slot)])
                        .map(|n| n == 1)
                        .map_err(sqlite_step("claiming a slot"))
                })
                .collect::<Result<Vec<bool>, DbError>>()?
        };
        sp.commit().map_err(sqlite_step("releasing a savepoint"))?;
        Ok(won)
    }

    /// Under a savepoint, so a failure (say, the camera deleted meanwhile) leaves none of the
    /// three behind.
    fn frame(&mut self, s: &Snapshot) -> Result<(), DbError> {
        let sp = self
            .0
            .savepoint()
            .map_err(sqlite_step("opening a savepoint"))?;
        insert_row(&sp, s)?;
        if let Some(schedule) = &s.schedule_id {
            sp.prepare_cached(snapshots::SET_LAST_FIRED_SQL)
                .and_then(|mut st| st.execute(params![fmt_ts(s.taken_at), schedule]))
                .map_err(sqlite_step("recording a schedule's last capture"))?;
        }
        sp.prepare_cached(cameras::RECORD_SUCCESS_SQL)
            .and_then(|mut st| st.execute(params![s.camera_id.as_str(), fmt_ts(s.created_at)]))
            .map_err(sqlite_step("recording a capture success"))?;
        // Dropping an uncommitted savepoint (the `?`s above) rolls it back.
        sp.commit().map_err(sqlite_step("releasing a savepoint"))
    }

    fn success(&mut self, camera: &CameraId, at: DateTime<Utc>) -> Result<(), DbError> {
        // One statement: SQLite undoes a failed statement by itself, no savepoint needed.
        self.0
            .prepare_cached(cameras::RECORD_SUCCESS_SQL)
            .and_then(|mut st| st.execute(params![camera.as_str(), fmt_ts(at)]))
            .map(drop)
            .map_err(sqlite_step("recording a capture success"))
    }

    fn failure(
        &mut self,
        camera: &CameraId,
        state: CameraState,
        error: &str,
        at: DateTime<Utc>,
    ) -> Result<(), DbError> {
        self.0
            .prepare_cached(cameras::RECORD_FAILURE_SQL)
            .and_then(|mut st| {
                st.execute(params![camera.as_str(), state.as_str(), error, fmt_ts(at)])
            })
            .map(drop)
            .map_err(sqlite_step("recording a capture failure"))
    }

    fn skip(
        &mut self,
        camera: &CameraId,
        schedule: &str,
        taken_at: DateTime<Utc>,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<(), DbError> {
        let sp = self
            .0
            .savepoint()
            .map_err(sqlite_step("opening a savepoint"))?;
        sp.prepare_cached(schedules::RECORD_SKIP_SQL)
            .and_then(|mut st| st.execute(params![fmt_ts(taken_at), reason, schedule]))
            .map_err(sqlite_step("recording a skipped slot"))?;
        sp.prepare_cached(cameras::RECORD_SUCCESS_SQL)
            .and_then(|mut st| st.execute(params![camera.as_str(), fmt_ts(at)]))
            .map_err(sqlite_step("recording a capture success"))?;
        sp.commit().map_err(sqlite_step("releasing a savepoint"))
    }

    /// Rows for frames already on disk, under one savepoint.
    fn index(&mut self, all: &[Snapshot]) -> Result<(), DbError> {
        let sp = self
            .0
            .savepoint()
            .map_err(sqlite_step("opening a savepoint"))?;
        for s in all {
            insert_row(&sp, s)?;
        }
        sp.commit().map_err(sqlite_step("releasing a savepoint"))
    }
}

/// A `snapshots` row: the one SQLite binder of that row type.
fn insert_row(conn: &Connection, s: &Snapshot) -> Result<(), DbError> {
    conn.prepare_cached(snapshots::INSERT_SQL)
        .and_then(|mut st| {
            st.execute(params![
                s.id,
                s.camera_id.as_str(),
                s.schedule_id,
                s.path,
                fmt_ts(s.taken_at),
                s.size_bytes,
                s.width,
                s.height,
                fmt_ts(s.created_at),
                s.tag,
            ])
        })
        .map(drop)
        .map_err(sqlite_step("recording a snapshot"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const CAMERA: &str = "cam-1";
    const SCHEDULE: &str = "sch_1";

    fn at(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_790_000_000 + s, 0).unwrap()
    }

    /// A migrated database file with one camera and one schedule due at `at(0)`.
    async fn database() -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("heldar.db");
        let pool = crate::db::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        pool.close().await;
        let conn = open(&path).unwrap();
        conn.execute(
            "INSERT INTO cameras (id, name, vendor, created_at, updated_at) \
             VALUES (?1, 'c', 'generic', ?2, ?2)",
            params![CAMERA, fmt_ts(at(0))],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO snapshot_schedules \
             (id, camera_id, interval_seconds, next_due_at, created_at, updated_at) \
             VALUES (?1, ?2, 60, ?3, ?3, ?3)",
            params![SCHEDULE, CAMERA, fmt_ts(at(0))],
        )
        .unwrap();
        (dir, path)
    }

    fn snapshot(id: &str, camera: &str) -> Snapshot {
        Snapshot {
            id: id.into(),
            camera_id: CameraId::parse(camera).unwrap(),
            schedule_id: Some(SCHEDULE.into()),
            path: format!("{camera}/{id}.jpg"),
            taken_at: at(1),
            size_bytes: 1000,
            width: Some(64),
            height: Some(48),
            created_at: at(2),
            tag: None,
        }
    }

    fn claim_of(slot: DateTime<Utc>, next: DateTime<Utc>) -> schedules::Claim {
        schedules::Claim {
            id: SCHEDULE.into(),
            slot,
            next: Some(next),
        }
    }

    fn count(conn: &Connection, sql: &str) -> i64 {
        conn.query_row(sql, [], |r| r.get(0)).unwrap()
    }

    #[tokio::test]
    async fn one_failing_operation_does_not_undo_the_rest_of_its_batch() {
        let (_dir, path) = database().await;
        let mut engine = Engine::Sqlite(open(&path).unwrap());
        let (claim, mut claimed) = oneshot::channel();
        let (bad, mut bad_rx) = oneshot::channel();
        let (good, mut good_rx) = oneshot::channel();
        let (fail, mut fail_rx) = oneshot::channel();
        let mut won = Won::default();
        execute(
            &mut engine,
            vec![
                Op::Claims {
                    claims: vec![claim_of(at(0), at(60))],
                    reply: claim,
                },
                // No such camera: the foreign key refuses it, inside its savepoint.
                Op::Frame {
                    snapshot: Box::new(snapshot("snp_bad", "no-such-camera")),
                    linger: true,
                    needs_claim: None,
                    reply: bad,
                },
                Op::Frame {
                    snapshot: Box::new(snapshot("snp_good", CAMERA)),
                    linger: true,
                    needs_claim: None,
                    reply: good,
                },
                Op::Failure {
                    camera: CameraId::parse(CAMERA).unwrap(),
                    state: CameraState::Failing,
                    error: "timed out".into(),
                    at: at(3),
                    reply: fail,
                },
            ],
            &mut won,
            false,
            None,
        )
        .unwrap_or_else(|_| panic!("the database is available"));
        assert_eq!(claimed.try_recv().unwrap().unwrap(), vec![true]);
        let err = bad_rx.try_recv().unwrap().unwrap_err().to_string();
        assert!(err.contains("recording a snapshot"), "{err}");
        good_rx.try_recv().unwrap().unwrap();
        fail_rx.try_recv().unwrap().unwrap();

        let check = open(&path).unwrap();
        assert_eq!(count(&check, "SELECT count(*) FROM snapshots"), 1);
        assert_eq!(
            count(
                &check,
                "SELECT count(*) FROM snapshots WHERE id = 'snp_good'"
            ),
            1
        );
        let (next, last): (String, String) = check
            .query_row(
                "SELECT next_due_at, last_fired_at FROM snapshot_schedules",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((next, last), (fmt_ts(at(60)), fmt_ts(at(1))));
        // The good frame recorded the success; the failure after it in the batch counted once.
        let (state, failures, success): (String, i64, String) = check
            .query_row(
                "SELECT state, consecutive_failures, last_success_at FROM camera_status",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(
            (state.as_str(), failures, success),
            ("failing", 1, fmt_ts(at(2)))
        );
    }

    #[tokio::test]
    async fn a_slot_is_claimed_once_and_only_while_enabled() {
        let (_dir, path) = database().await;
        let (writer, task) = Writer::start(&path, Duration::ZERO).unwrap();
        assert!(writer.claim(SCHEDULE, at(0), at(60)).await.unwrap());
        // A stale view of the same slot (a second process, a restart) gets nothing.
        assert!(!writer.claim(SCHEDULE, at(0), at(60)).await.unwrap());
        let conn = open(&path).unwrap();
        conn.execute("UPDATE snapshot_schedules SET enabled = 0", [])
            .unwrap();
        assert!(!writer.claim(SCHEDULE, at(60), at(120)).await.unwrap());
        task.finish().await;
    }

    #[tokio::test]
    async fn finish_commits_what_is_queued_and_refuses_what_comes_after() {
        let (_dir, path) = database().await;
        let (writer, task) = Writer::start(&path, Duration::ZERO).unwrap();
        let mut replies = Vec::new();
        for i in 0..200 {
            let (reply, rx) = oneshot::channel();
            let snapshot = Box::new(snapshot(&format!("snp_{i}"), CAMERA));
            writer
                .tx
                .send(Op::Frame {
                    snapshot,
                    linger: true,
                    needs_claim: None,
                    reply,
                })
                .await
                .unwrap_or_else(|_| panic!("the writer is running"));
            replies.push(rx);
        }
        // Queued behind the 200 frames, so it cannot overtake them.
        task.finish().await;
        for rx in replies {
            rx.await.unwrap().unwrap();
        }
        let conn = open(&path).unwrap();
        assert_eq!(count(&conn, "SELECT count(*) FROM snapshots"), 200);
        let err = writer
            .record_success(&CameraId::parse(CAMERA).unwrap(), at(9))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("writer has stopped"), "{err}");
    }

    #[tokio::test]
    async fn claims_in_one_operation_are_answered_each_and_kept_all_or_none() {
        let (_dir, path) = database().await;
        let (writer, task) = Writer::start(&path, Duration::ZERO).unwrap();
        let won = writer
            .claim_many(vec![claim_of(at(0), at(60)), claim_of(at(0), at(60))])
            .await
            .unwrap();
        // The second is the same slot seen stale: only the first wins it.
        assert_eq!(won, vec![true, false]);
        assert!(writer.claim_many(vec![]).await.unwrap().is_empty());
        // A statement that fails undoes the claims before it in the same op. Nothing in the
        // typed API makes a claim fail, so a trigger refuses one moving a slot to 2099.
        let conn = open(&path).unwrap();
        conn.execute_batch(
            "CREATE TRIGGER refuse BEFORE UPDATE ON snapshot_schedules              WHEN NEW.next_due_at = '2099-01-01T00:00:00.000Z'              BEGIN SELECT RAISE(ABORT, 'refused'); END;",
        )
        .unwrap();
        let far = DateTime::parse_from_rfc3339("2099-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let err = writer
            .claim_many(vec![
                claim_of(at(60), at(120)),
                schedules::Claim {
                    id: SCHEDULE.into(),
                    slot: at(120),
                    next: Some(far),
                },
            ])
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("claiming a slot"), "{err}");
        let next: String = conn
            .query_row("SELECT next_due_at FROM snapshot_schedules", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(
            next,
            fmt_ts(at(60)),
            "the first claim of the failed op stayed"
        );
        task.finish().await;
    }

    fn frame_op(id: &str, linger: bool) -> (Op, oneshot::Receiver<Result<(), DbError>>) {
        let (reply, rx) = oneshot::channel();
        let snapshot = Box::new(snapshot(id, CAMERA));
        (
            Op::Frame {
                snapshot,
                linger,
                needs_claim: None,
                reply,
            },
            rx,
        )
    }

    #[test]
    fn a_scheduled_frame_waits_for_company_until_an_urgent_op_arrives() {
        let (tx, mut rx) = mpsc::channel(16);
        let (first, _r1) = frame_op("snp_1", true);
        let sender = std::thread::spawn(move || {
            // Arrive one by one while the first frame lingers (an hour, so only an urgent op
            // can end this batch).
            let (second, _r2) = frame_op("snp_2", true);
            tx.blocking_send(second)
                .unwrap_or_else(|_| panic!("queue open"));
            let (reply, _r3) = oneshot::channel();
            let claim = Op::Claims {
                claims: vec![claim_of(at(0), at(60))],
                reply,
            };
            tx.blocking_send(claim)
                .unwrap_or_else(|_| panic!("queue open"));
            let (after, _r4) = frame_op("snp_4", true);
            tx.blocking_send(after)
                .unwrap_or_else(|_| panic!("queue open"));
            (tx, _r2, _r3, _r4)
        });
        let batch = collect_batch(&mut rx, first, Duration::from_secs(3600));
        let kinds: Vec<bool> = batch.iter().map(Op::urgent).collect();
        // Frame, frame, claim — and possibly the frame sent after the claim if it was already
        // queued; never a batch that ended before the claim.
        assert!(kinds.starts_with(&[false, false, true]), "{kinds:?}");
        let _ = sender.join().unwrap();
    }

    #[test]
    fn a_lone_scheduled_frame_commits_after_the_linger_and_a_manual_one_at_once() {
        let (_tx, mut rx) = mpsc::channel(16);
        let (first, _r1) = frame_op("snp_1", true);
        let started = Instant::now();
        let batch = collect_batch(&mut rx, first, Duration::from_millis(50));
        assert_eq!(batch.len(), 1);
        assert!(started.elapsed() >= Duration::from_millis(50));

        // Kept through the API: nothing to wait for, even with an hour's linger.
        let (manual, _r2) = frame_op("snp_2", false);
        let batch = collect_batch(&mut rx, manual, Duration::from_secs(3600));
        assert_eq!(batch.len(), 1);
    }

    async fn settle<T>(a: Answer<T>) -> Result<T, DbError> {
        match a {
            Answer::Done(r) => r,
            Answer::Held(p) => p.wait().await,
        }
    }

    async fn until(what: &str, mut check: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !check() {
            assert!(Instant::now() < deadline, "never: {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_locked_database_holds_writes_and_commits_them_in_order_when_it_returns() {
        let (_dir, path) = database().await;
        let (writer, task) = Writer::start_with(&path, Duration::ZERO, Buffer::default()).unwrap();
        let outside = open(&path).unwrap();
        outside.execute_batch("BEGIN IMMEDIATE").unwrap();

        // The claim waits LOCK_WAIT for the lock, then is held: the caller is answered at once.
        let claim = match writer
            .claim_many_or_hold(vec![claim_of(at(0), at(60))])
            .await
        {
            Answer::Held(p) => p,
            Answer::Done(r) => panic!(
                "answered during the lock: {:?}",
                r.map_err(|e| e.to_string())
            ),
        };
        let outage = writer.outage().expect("the outage is published");
        assert!(outage.reason.contains("locked"), "{outage:?}");
        assert!(!outage.refusing);
        // A frame of that held slot, and one of a slot never claimed.
        let kept = writer
            .record_frame_or_hold(snapshot("snp_kept", CAMERA), Some((SCHEDULE.into(), at(0))))
            .await;
        let lost = writer
            .record_frame_or_hold(snapshot("snp_lost", CAMERA), Some((SCHEDULE.into(), at(7))))
            .await;
        assert!(matches!(kept, Answer::Held(_)) && matches!(lost, Answer::Held(_)));
        until("three operations held", || writer.held() >= 3).await;

        outside.execute_batch("ROLLBACK").unwrap();
        assert_eq!(claim.wait().await.unwrap(), vec![true]);
        settle(kept).await.unwrap();
        let err = settle(lost).await.unwrap_err();
        assert!(matches!(err, DbError::ClaimNotWon), "{err}");
        until("the outage ends", || writer.outage().is_none()).await;
        assert_eq!(writer.held(), 0);

        let conn = open(&path).unwrap();
        let ids: Vec<String> = conn
            .prepare("SELECT id FROM snapshots")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(ids, vec!["snp_kept".to_string()]);
        let next: String = conn
            .query_row("SELECT next_due_at FROM snapshot_schedules", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(next, fmt_ts(at(60)));
        task.finish().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn past_the_buffer_writes_are_refused_as_unavailable_and_claims_still_held() {
        let (_dir, path) = database().await;
        let buffer = Buffer {
            max_writes: 1,
            max_age: Duration::from_secs(60),
        };
        let (writer, task) = Writer::start_with(&path, Duration::ZERO, buffer).unwrap();
        let outside = open(&path).unwrap();
        outside.execute_batch("BEGIN IMMEDIATE").unwrap();
        let first = writer
            .record_frame_or_hold(snapshot("snp_1", CAMERA), None)
            .await;
        assert!(matches!(first, Answer::Held(_)));
        until("the buffer refuses", || {
            writer.outage().is_some_and(|o| o.refusing)
        })
        .await;
        let refused = settle(
            writer
                .record_frame_or_hold(snapshot("snp_2", CAMERA), None)
                .await,
        )
        .await
        .unwrap_err();
        let text = refused.to_string();
        assert!(refused.is_unavailable(), "{text}");
        assert!(text.starts_with(crate::db::UNAVAILABLE), "{text}");
        assert!(!text.contains("corrupt"), "{text}");
        let claim = writer
            .claim_many_or_hold(vec![claim_of(at(0), at(60))])
            .await;
        outside.execute_batch("ROLLBACK").unwrap();
        assert_eq!(settle(claim).await.unwrap(), vec![true]);
        settle(first).await.unwrap();
        until("the outage ends", || writer.outage().is_none()).await;
        let conn = open(&path).unwrap();
        assert_eq!(count(&conn, "SELECT count(*) FROM snapshots"), 1);
        task.finish().await;
    }

    /// The writer's SQL is shared with PostgreSQL, so its placeholders are `$N`. SQLite reads
    /// `$N` as a *named* parameter, numbered in order of first appearance, and rusqlite binds
    /// `params!` by that number: so `$N` must be parameter N in every statement, or the binds
    /// would land in the wrong places without an error.
    #[tokio::test]
    async fn every_writer_statement_numbers_its_placeholders_as_sqlite_binds_them() {
        let (_dir, path) = database().await;
        let conn = open(&path).unwrap();
        for sql in [
            schedules::CLAIM_SQL,
            schedules::RECORD_SKIP_SQL,
            snapshots::INSERT_SQL,
            snapshots::SET_LAST_FIRED_SQL,
            cameras::RECORD_SUCCESS_SQL,
            cameras::RECORD_FAILURE_SQL,
        ] {
            assert!(!sql.contains('?'), "{sql}");
            let st = conn.prepare(sql).unwrap();
            let n = st.parameter_count();
            assert!(n > 0, "{sql}");
            for i in 1..=n {
                assert_eq!(
                    st.parameter_index(&format!("${i}")).unwrap(),
                    Some(i),
                    "{sql}"
                );
            }
        }
    }

    #[test]
    fn a_missing_database_file_is_an_error_naming_the_step() {
        let dir = tempfile::tempdir().unwrap();
        let err = Writer::start(&dir.path().join("absent.db"), LINGER)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("opening the writer's connection"), "{err}");
    }
}
