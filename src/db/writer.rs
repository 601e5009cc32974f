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

use std::path::Path;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OpenFlags, TransactionBehavior};
use tokio::sync::{mpsc, oneshot};

use super::{cameras, schedules, snapshots, sqlite_step, DbError};
use crate::models::{fmt_ts, CameraId, CameraState, Snapshot};

/// Most operations per transaction.
pub const MAX_BATCH: usize = 512;

/// How long a scheduled frame's row may wait for company before its batch commits.
pub const LINGER: Duration = Duration::from_millis(100);

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
    DbError::Corrupt("the database writer has stopped".into())
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
        let conn = open(path)?;
        let (tx, rx) = mpsc::channel(8 * MAX_BATCH);
        let (ended_tx, ended) = oneshot::channel();
        std::thread::Builder::new()
            .name("heldar-db-writer".into())
            .spawn(move || {
                run(conn, rx, linger);
                let _ = ended_tx.send(());
            })
            .map_err(|e| DbError::Corrupt(format!("cannot start the database writer: {e}")))?;
        Ok((Writer { tx: tx.clone() }, WriterTask { tx, ended }))
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
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(sqlite_step("setting the writer's busy timeout"))?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
    )
    .map_err(sqlite_step("configuring the writer's connection"))?;
    Ok(conn)
}

/// A finished operation waiting for its batch's commit.
enum Done {
    Claims(
        oneshot::Sender<Result<Vec<bool>, DbError>>,
        Result<Vec<bool>, DbError>,
    ),
    Unit(oneshot::Sender<Result<(), DbError>>, Result<(), DbError>),
}

impl Done {
    fn answer(self) {
        match self {
            Done::Claims(reply, r) => {
                let _ = reply.send(r);
            }
            Done::Unit(reply, r) => {
                let _ = reply.send(r);
            }
        }
    }

    fn fail(self, msg: &str) {
        let err = || DbError::Corrupt(format!("batch not committed: {msg}"));
        match self {
            Done::Claims(reply, _) => {
                let _ = reply.send(Err(err()));
            }
            Done::Unit(reply, _) => {
                let _ = reply.send(Err(err()));
            }
        }
    }
}

fn run(mut conn: Connection, mut rx: mpsc::Receiver<Op>, linger: Duration) {
    // Blocks this thread (never a runtime worker) until there is work; `None` once the queue is
    // closed and drained.
    while let Some(first) = rx.blocking_recv() {
        let batch = collect_batch(&mut rx, first, linger);
        if batch.iter().any(|op| matches!(op, Op::Stop)) {
            // No new writes; what is already queued still commits, in the batches to come.
            rx.close();
        }
        execute(&mut conn, batch);
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

fn execute(conn: &mut Connection, ops: Vec<Op>) {
    let mut done = Vec::with_capacity(ops.len());
    let mut tx = match conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sqlite_step("starting a write batch"))
    {
        Ok(tx) => tx,
        Err(e) => {
            tracing::error!(error = %e, ops = ops.len(), "a database write batch failed");
            let msg = e.to_string();
            ops.into_iter()
                .filter_map(pending)
                .for_each(|d| d.fail(&msg));
            return;
        }
    };
    for op in ops {
        done.push(match op {
            Op::Claims { claims, reply } => Done::Claims(reply, claim_all(&mut tx, &claims)),
            Op::Frame {
                snapshot, reply, ..
            } => Done::Unit(reply, frame(&mut tx, &snapshot)),
            Op::Success { camera, at, reply } => Done::Unit(
                reply,
                tx.prepare_cached(cameras::RECORD_SUCCESS_SQL)
                    .and_then(|mut st| st.execute(params![camera.as_str(), fmt_ts(at)]))
                    .map(drop)
                    .map_err(sqlite_step("recording a capture success")),
            ),
            Op::Failure {
                camera,
                state,
                error,
                at,
                reply,
            } => Done::Unit(
                reply,
                tx.prepare_cached(cameras::RECORD_FAILURE_SQL)
                    .and_then(|mut st| {
                        st.execute(params![camera.as_str(), state.as_str(), error, fmt_ts(at)])
                    })
                    .map(drop)
                    .map_err(sqlite_step("recording a capture failure")),
            ),
            Op::Skip {
                camera,
                schedule,
                taken_at,
                reason,
                at,
                reply,
            } => Done::Unit(
                reply,
                skip(&mut tx, &camera, &schedule, taken_at, reason, at),
            ),
            Op::Index { snapshots, reply } => Done::Unit(reply, index(&mut tx, &snapshots)),
            Op::Stop => continue,
        });
    }
    match tx.commit().map_err(sqlite_step("committing a write batch")) {
        Ok(()) => done.into_iter().for_each(Done::answer),
        Err(e) => {
            tracing::error!(error = %e, ops = done.len(), "a database write batch failed");
            let msg = e.to_string();
            for d in done {
                d.fail(&msg);
            }
        }
    }
}

/// An operation's reply channel, before anything ran for it (only ever failed).
fn pending(op: Op) -> Option<Done> {
    match op {
        Op::Claims { reply, .. } => Some(Done::Claims(reply, Ok(Vec::new()))),
        Op::Frame { reply, .. }
        | Op::Success { reply, .. }
        | Op::Failure { reply, .. }
        | Op::Skip { reply, .. }
        | Op::Index { reply, .. } => Some(Done::Unit(reply, Ok(()))),
        Op::Stop => None,
    }
}

/// Slot claims under one savepoint: if a statement fails, none of them stays claimed, so no slot
/// is taken that its caller does not know it won.
fn claim_all(
    tx: &mut rusqlite::Transaction<'_>,
    claims: &[schedules::Claim],
) -> Result<Vec<bool>, DbError> {
    let sp = tx.savepoint().map_err(sqlite_step("opening a savepoint"))?;
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

/// A frame's row, its schedule's `last_fired_at` and its camera's capture success, under a
/// savepoint so a failure (say, the camera deleted meanwhile) leaves none of them behind.
fn frame(tx: &mut rusqlite::Transaction<'_>, s: &Snapshot) -> Result<(), DbError> {
    let sp = tx.savepoint().map_err(sqlite_step("opening a savepoint"))?;
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

/// A skipped slot ([`Writer::record_skip`]), under one savepoint.
fn skip(
    tx: &mut rusqlite::Transaction<'_>,
    camera: &CameraId,
    schedule: &str,
    taken_at: DateTime<Utc>,
    reason: &str,
    at: DateTime<Utc>,
) -> Result<(), DbError> {
    let sp = tx.savepoint().map_err(sqlite_step("opening a savepoint"))?;
    sp.prepare_cached(schedules::RECORD_SKIP_SQL)
        .and_then(|mut st| st.execute(params![fmt_ts(taken_at), reason, schedule]))
        .map_err(sqlite_step("recording a skipped slot"))?;
    sp.prepare_cached(cameras::RECORD_SUCCESS_SQL)
        .and_then(|mut st| st.execute(params![camera.as_str(), fmt_ts(at)]))
        .map_err(sqlite_step("recording a capture success"))?;
    sp.commit().map_err(sqlite_step("releasing a savepoint"))
}

/// A `snapshots` row: the one binder of that row type.
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

/// Rows for frames already on disk, under one savepoint.
fn index(tx: &mut rusqlite::Transaction<'_>, all: &[Snapshot]) -> Result<(), DbError> {
    let sp = tx.savepoint().map_err(sqlite_step("opening a savepoint"))?;
    for s in all {
        insert_row(&sp, s)?;
    }
    sp.commit().map_err(sqlite_step("releasing a savepoint"))
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
        let mut conn = open(&path).unwrap();
        let (claim, mut claimed) = oneshot::channel();
        let (bad, mut bad_rx) = oneshot::channel();
        let (good, mut good_rx) = oneshot::channel();
        let (fail, mut fail_rx) = oneshot::channel();
        execute(
            &mut conn,
            vec![
                Op::Claims {
                    claims: vec![claim_of(at(0), at(60))],
                    reply: claim,
                },
                // No such camera: the foreign key refuses it, inside its savepoint.
                Op::Frame {
                    snapshot: Box::new(snapshot("snp_bad", "no-such-camera")),
                    linger: true,
                    reply: bad,
                },
                Op::Frame {
                    snapshot: Box::new(snapshot("snp_good", CAMERA)),
                    linger: true,
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
        );
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
