//! The writer's PostgreSQL engine: one batch of operations in one transaction on a PostgreSQL
//! server, each operation under its own savepoint, then one commit. It owns nothing else: the
//! batching, the linger, the outage buffer and the wins of held claims are the writer's
//! (`db::writer`), shared with SQLite.
//!
//! **Where it runs.** On the writer's own thread, like the SQLite engine, driving sqlx through a
//! current-thread tokio runtime of its own (`block_on` per statement), with a pool of one
//! connection of its own made from the application pool's settings. Not the application's
//! runtime through `Handle::block_on`: a connection's socket is driven by the runtime it was
//! opened on, and a current-thread runtime (the tests', a CLI's) drives it only while its own
//! thread is inside `block_on`, so the writer could stall waiting on a runtime that is waiting
//! on the writer. A runtime of its own makes the thread self-contained: its connection is
//! driven exactly while it waits, a busy API cannot delay a commit, and the cost per batch stays
//! one wake-up of this thread per round trip. Not a task on the shared pool either: the shared
//! batching and outage rules are synchronous code on this thread, and one connection is all one
//! writer can use (its transactions are one at a time).
//!
//! **How it fails.** Connection-class failures (SQLSTATE 08…, 57P01–57P03, 53300, 25006, socket
//! errors, no connection within [`LOCK_WAIT`], no answer within [`STATEMENT_WAIT`]) are
//! [`DbError::Unavailable`], classified by `db::step` as for every PostgreSQL query: the writer
//! holds the batch and retries it, as for SQLite's busy lock. A deadlock (40P01) or a
//! serialization failure (40001) ends the transaction; the writer runs the same batch again at
//! once ([`is_conflict`]). Any other failure of a statement is that operation's own answer: its
//! savepoint is rolled back and the rest of the batch commits. A connection found silent (no
//! answer, or none from the pool) is abandoned and the next try opens a new one
//! ([`PgEngine::renew_if_silent`]).
//!
//! **A commit whose answer never came.** When the connection breaks (or stays silent past
//! [`STATEMENT_WAIT`]) after COMMIT was sent, the batch may or may not have committed, and
//! only the server knows. Each batch therefore inserts one row into `writer_batches`, its
//! [`Marker`] (128 random bits), first thing in its transaction: the marker committed if and
//! only if the batch did. Such a commit answers [`NotCommitted::InDoubt`] with what each
//! operation gave in the transaction; the writer holds the batch as in any outage and, once
//! the server answers again, asks [`PgEngine::committed`] before anything else. Present: the
//! batch committed, and its callers get the answers computed in it (a claim won stays won, a
//! frame held on it is recorded). Absent: it did not, and it runs again under the same marker,
//! inserted `ON CONFLICT DO NOTHING`: if the first commit was still under way on the server
//! when it was asked about, the second insert waits for it and then finds the row
//! ([`NotCommitted::AlreadyCommitted`]), so a batch never commits twice. The cost is one
//! INSERT (one round trip) per batch, not per operation; markers older than [`MARKER_KEEP`]
//! are deleted by the writers themselves ([`PgEngine::upkeep`]). A batch still in doubt after
//! its marker was deleted (an outage longer than that) runs again as before markers: a replayed
//! claim then answers "not won" (the slot is counted missed, never captured twice).
//!
//! SQLite needs no marker: its commit is a call into a local library that returns success or
//! failure; there is no answer to lose on a network.

use std::collections::HashSet;
use std::future::Future;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{Acquire, Postgres, Transaction};
use tokio::runtime::Runtime;

use super::{
    not_committed, run_ops, ClaimKey, NotCommitted, Op, Ran, Tx, Unanswered, Won, LOCK_WAIT,
};
use crate::db::{cameras, schedules, snapshots, step, DbError};
use crate::models::{fmt_ts, CameraId, CameraState, Snapshot};

/// How long one statement (or the commit) may go unanswered before the database counts as
/// unavailable. Longer than [`LOCK_WAIT`]: a row lock held by another node's batch is normal
/// and short; a server that answers nothing for this long is away (a network partition gives
/// no error, only silence).
pub(super) const STATEMENT_WAIT: Duration = Duration::from_secs(5);

/// How long a batch's marker is kept. Far longer than any outage the writer rides out with
/// its buffer (a minute by default), and short enough that the table stays small: one row per
/// batch, some tens of batches a second on a busy node.
pub(super) const MARKER_KEEP: Duration = Duration::from_secs(3600);

/// How often a writer deletes the markers older than [`MARKER_KEEP`].
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// A batch's marker row, inside its transaction: the batch's id. `ON CONFLICT DO NOTHING`, so
/// a batch run again after a lost commit answer finds its own earlier row (waiting for that
/// commit if it is still under way) instead of failing.
const MARK_SQL: &str =
    "INSERT INTO writer_batches (id, created_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING";

/// Did the batch with this marker commit?
const MARKED_SQL: &str = "SELECT 1 FROM writer_batches WHERE id = $1";

/// Old markers, whoever wrote them. Rows another writer is deleting at the same moment are
/// skipped rather than waited for: two nodes pruning never wait on, or deadlock with, each
/// other.
const PRUNE_SQL: &str = "DELETE FROM writer_batches WHERE id IN \
     (SELECT id FROM writer_batches WHERE created_at < $1 FOR UPDATE SKIP LOCKED)";

/// A write batch's marker: 128 random bits (a version 4 UUID's), as 32 hex digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Marker(String);

impl Marker {
    pub(super) fn random() -> Marker {
        Marker(uuid::Uuid::new_v4().simple().to_string())
    }
}

/// The PostgreSQL engine: its runtime and its connection.
pub(in crate::db) struct PgEngine {
    rt: Runtime,
    pool: PgPool,
    /// The connection settings, to make a new pool when the connection went silent.
    opts: PgConnectOptions,
    /// When old markers were last deleted (none yet: at the first batch).
    pruned: Option<Instant>,
}

impl PgEngine {
    /// An engine with `pool`'s connection settings. Connects lazily: a server away at start-up
    /// is an outage like any other, not a failure to start.
    pub(super) fn new(pool: &PgPool) -> Result<PgEngine, DbError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| DbError::Writer(format!("cannot start the database writer: {e}")))?;
        // Named apart from the pool's `heldar` in pg_stat_activity: an operator looking at a
        // lock or a slow commit sees which connection is the capture writer.
        //
        // The server bounds its own waits, below this engine's [`STATEMENT_WAIT`]: a row lock
        // held by someone else (an operator's open transaction) past `lock_timeout`, or any
        // statement past `statement_timeout`, is cancelled by the server itself, which answers
        // with an error (55P03, 57014: the batch is held, as for SQLite's busy lock) and leaves
        // the connection usable. A client-side timeout alone would leave the statement running
        // on the server, holding this connection's locks, while the batch is replayed.
        let opts = (*pool.connect_options())
            .clone()
            .application_name("heldar-writer")
            .options([("lock_timeout", "4000"), ("statement_timeout", "4500")]);
        let pool = writer_pool(&rt, opts.clone());
        Ok(PgEngine {
            rt,
            pool,
            opts,
            pruned: None,
        })
    }

    /// After a call: if the connection went silent in it ([`SILENCE`]), a new pool, so the
    /// next try opens a new connection. The silent one is left to its fate: sqlx checks a
    /// connection handed back after a cancelled statement with a ping that has no time limit,
    /// and the pool's only place stays taken by it until TCP gives up on the peer (about
    /// 15 minutes on Linux). Without this, a network partition that heals (a fail-over to a
    /// new address, a firewall rule removed) would leave the writer holding batches that long.
    fn renew_if_silent(&mut self) {
        if SILENCE.replace(false) {
            tracing::debug!("the database writer's connection went silent; opening a new one");
            self.pool = writer_pool(&self.rt, self.opts.clone());
        }
    }

    /// Whether the batch marked `marker` committed: asked before a batch whose commit answer
    /// was lost runs again.
    pub(super) fn committed(&mut self, marker: &Marker) -> Result<bool, DbError> {
        let _in = self.rt.enter();
        let q = sqlx::query_scalar::<_, i32>(MARKED_SQL).bind(&marker.0);
        let out = self
            .rt
            .block_on(timed(
                "asking whether a write batch committed",
                STATEMENT_WAIT,
                q.fetch_optional(&self.pool),
            ))
            .map(|row| row.is_some());
        drop(_in);
        self.renew_if_silent();
        out
    }

    /// Between batches, after the first one and then once a [`PRUNE_EVERY`]: delete the
    /// markers older than [`MARKER_KEEP`]. A statement of its own, not part of a batch, so it
    /// never delays a caller's answer or makes a batch fail; if it fails (the server away), the
    /// next one tries again.
    pub(super) fn upkeep(&mut self) {
        if self.pruned.is_some_and(|t| t.elapsed() < PRUNE_EVERY) {
            return;
        }
        self.pruned = Some(Instant::now());
        let _in = self.rt.enter();
        let before = Utc::now() - chrono::Duration::from_std(MARKER_KEEP).expect("an hour");
        let q = sqlx::query(PRUNE_SQL).bind(fmt_ts(before));
        match self.rt.block_on(timed(
            "deleting old write batch markers",
            STATEMENT_WAIT,
            q.execute(&self.pool),
        )) {
            Ok(r) => tracing::debug!(
                deleted = r.rows_affected(),
                "old write batch markers deleted"
            ),
            Err(e) => tracing::debug!(error = %e, "old write batch markers not deleted this time"),
        }
        drop(_in);
        self.renew_if_silent();
    }

    /// Run `ops` in one transaction marked `marker`, and commit it.
    pub(super) fn batch(
        &mut self,
        ops: &[Op],
        won: &Won,
        marker: &Marker,
    ) -> Result<(Vec<Ran>, HashSet<ClaimKey>), NotCommitted> {
        let out = self.run_batch(ops, won, marker);
        self.renew_if_silent();
        out
    }

    fn run_batch(
        &mut self,
        ops: &[Op],
        won: &Won,
        marker: &Marker,
    ) -> Result<(Vec<Ran>, HashSet<ClaimKey>), NotCommitted> {
        // Dropped connections hand themselves back to the pool through a task on this runtime.
        let _in = self.rt.enter();
        let tx = self
            .rt
            .block_on(timed(
                "starting a write batch",
                STATEMENT_WAIT,
                self.pool.begin(),
            ))
            .map_err(not_committed)?;
        let mut tx = PgTx {
            rt: &self.rt,
            tx: Some(tx),
        };
        // The marker first, outside any savepoint: if it cannot be written, nothing is.
        let out = match tx.mark(marker) {
            Ok(true) => run_ops(&mut tx, ops, won),
            // This batch's earlier run committed after all (its commit was still under way
            // when the writer asked): nothing of this run may stay.
            Ok(false) => Err(NotCommitted::AlreadyCommitted),
            Err(e) => Err(not_committed(e)),
        };
        let tx = tx.tx.take().expect("the transaction is open");
        match out {
            Ok((ran, batch_won)) => {
                match self.rt.block_on(timed(
                    "committing a write batch",
                    STATEMENT_WAIT,
                    tx.commit(),
                )) {
                    Ok(()) => Ok((ran, batch_won)),
                    // COMMIT was sent (or was being sent) and no answer came: the server may
                    // have committed. The marker will tell (`db::writer`'s held batches).
                    Err(error) if error.is_unavailable() => {
                        Err(NotCommitted::InDoubt(Box::new(Unanswered {
                            error,
                            ran,
                            won: batch_won,
                        })))
                    }
                    // The server answered, refusing: nothing stayed.
                    Err(e) => Err(not_committed(e)),
                }
            }
            Err(e) => {
                // The server may be gone: a short wait, and its failure changes nothing.
                let _ = self.rt.block_on(timed(
                    "rolling back a write batch",
                    LOCK_WAIT,
                    tx.rollback(),
                ));
                Err(e)
            }
        }
    }
}

/// A deadlock's victim (40P01) or a serialization failure (40001): the transaction is over,
/// and the same work may succeed if run again.
pub(super) fn is_conflict(e: &DbError) -> bool {
    match e {
        DbError::Sqlx {
            source: sqlx::Error::Database(d),
            ..
        } => matches!(d.code().as_deref(), Some("40P01" | "40001")),
        _ => false,
    }
}

/// `f`, named `what` in its error, within `wait`; past it, the database is unavailable.
async fn timed<T>(
    what: &'static str,
    wait: Duration,
    f: impl Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, DbError> {
    match tokio::time::timeout(wait, f).await {
        Ok(Err(sqlx::Error::PoolTimedOut)) => {
            // The pool's one connection never came back: it may be stuck in sqlx's check of a
            // silent connection ([`PgEngine::renew_if_silent`]).
            SILENCE.set(true);
            Err(sqlx::Error::PoolTimedOut).map_err(step(what))
        }
        Ok(r) => r.map_err(step(what)),
        Err(_) => Err({
            SILENCE.set(true);
            DbError::Unavailable {
                step: what,
                reason: format!("the server did not answer within {} s", wait.as_secs()),
            }
        }),
    }
}

thread_local! {
    /// Set when a call on this thread found the writer's connection silent: a statement left
    /// unanswered past its wait, or no connection from the pool within [`LOCK_WAIT`]. The
    /// engine runs on the writer's own thread, so this is the engine's own flag; read and
    /// cleared after each of its calls by [`PgEngine::renew_if_silent`].
    static SILENCE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The writer's pool: one connection, made on demand; an acquire waits at most [`LOCK_WAIT`].
fn writer_pool(rt: &Runtime, opts: PgConnectOptions) -> PgPool {
    // sqlx starts the pool's upkeep tasks on the runtime it is made in: this one.
    let _in = rt.enter();
    PgPoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        // As SQLite's busy timeout in the writer: a server that cannot give a connection
        // within this is away, and the batch is held.
        .acquire_timeout(LOCK_WAIT)
        .connect_lazy_with(opts)
}

/// One statement; the rows it changed.
async fn exec(
    c: &mut PgConnection,
    what: &'static str,
    q: sqlx::query::Query<'_, Postgres, sqlx::postgres::PgArguments>,
) -> Result<u64, DbError> {
    timed(what, STATEMENT_WAIT, q.execute(c))
        .await
        .map(|r| r.rows_affected())
}

/// Release the savepoint if `r` is a success, else roll it back (the transaction goes on).
async fn settle<T>(sp: Transaction<'_, Postgres>, r: Result<T, DbError>) -> Result<T, DbError> {
    match r {
        Ok(v) => {
            timed("releasing a savepoint", STATEMENT_WAIT, sp.commit()).await?;
            Ok(v)
        }
        Err(e) => {
            // If even this fails, the connection is gone and `e` (or the commit) says so.
            let _ = timed("rolling back a savepoint", STATEMENT_WAIT, sp.rollback()).await;
            Err(e)
        }
    }
}

/// A PostgreSQL write transaction, driven from the writer's thread.
struct PgTx<'r> {
    rt: &'r Runtime,
    tx: Option<Transaction<'static, Postgres>>,
}

/// Run `$body` (an expression awaiting statements on `$c: &mut PgConnection`) under a savepoint
/// of `$self`'s transaction (sqlx's `begin()` on a transaction is `SAVEPOINT`).
macro_rules! in_savepoint {
    ($self:ident, $c:ident => $body:expr) => {{
        let tx = $self.tx.as_mut().expect("the transaction is open");
        $self.rt.block_on(async {
            let mut sp = timed("opening a savepoint", STATEMENT_WAIT, tx.begin()).await?;
            let r = {
                let $c: &mut PgConnection = &mut sp;
                $body
            };
            settle(sp, r).await
        })
    }};
}

async fn insert_row(c: &mut PgConnection, s: &Snapshot) -> Result<(), DbError> {
    let q = sqlx::query(snapshots::INSERT_SQL)
        .bind(&s.id)
        .bind(s.camera_id.as_str())
        .bind(&s.schedule_id)
        .bind(&s.path)
        .bind(fmt_ts(s.taken_at))
        .bind(s.size_bytes)
        .bind(s.width)
        .bind(s.height)
        .bind(fmt_ts(s.created_at))
        .bind(&s.tag);
    exec(c, "recording a snapshot", q).await.map(drop)
}

async fn success(
    c: &mut PgConnection,
    camera: &CameraId,
    at: DateTime<Utc>,
) -> Result<(), DbError> {
    let q = sqlx::query(cameras::RECORD_SUCCESS_SQL)
        .bind(camera.as_str())
        .bind(fmt_ts(at));
    exec(c, "recording a capture success", q).await.map(drop)
}

impl PgTx<'_> {
    /// Insert the batch's marker; false if it was already there.
    fn mark(&mut self, marker: &Marker) -> Result<bool, DbError> {
        let tx = self.tx.as_mut().expect("the transaction is open");
        let q = sqlx::query(MARK_SQL)
            .bind(&marker.0)
            .bind(fmt_ts(Utc::now()));
        self.rt
            .block_on(exec(tx, "marking a write batch", q))
            .map(|n| n == 1)
    }
}

impl Tx for PgTx<'_> {
    /// In the order of schedule ids (answered in the caller's order): two nodes claiming
    /// overlapping schedules then lock their rows in one order and wait for each other rather
    /// than deadlock. The sort is stable, so a slot asked twice is still won by the first ask.
    fn claims(&mut self, claims: &[schedules::Claim]) -> Result<Vec<bool>, DbError> {
        let mut order: Vec<usize> = (0..claims.len()).collect();
        order.sort_by(|a, b| claims[*a].id.cmp(&claims[*b].id));
        in_savepoint!(self, c => {
            let mut won = vec![false; claims.len()];
            let mut r = Ok(());
            for i in order {
                let claim = &claims[i];
                let q = sqlx::query(schedules::CLAIM_SQL)
                    .bind(claim.next.map(fmt_ts))
                    .bind(&claim.id)
                    .bind(fmt_ts(claim.slot));
                match exec(c, "claiming a slot", q).await {
                    Ok(n) => won[i] = n == 1,
                    Err(e) => {
                        r = Err(e);
                        break;
                    }
                }
            }
            r.map(|()| won)
        })
    }

    fn frame(&mut self, s: &Snapshot) -> Result<(), DbError> {
        in_savepoint!(self, c => {
            async {
                insert_row(c, s).await?;
                if let Some(schedule) = &s.schedule_id {
                    let q = sqlx::query(snapshots::SET_LAST_FIRED_SQL)
                        .bind(fmt_ts(s.taken_at))
                        .bind(schedule);
                    exec(c, "recording a schedule's last capture", q).await?;
                }
                success(c, &s.camera_id, s.created_at).await
            }
            .await
        })
    }

    fn success(&mut self, camera: &CameraId, at: DateTime<Utc>) -> Result<(), DbError> {
        in_savepoint!(self, c => success(c, camera, at).await)
    }

    fn failure(
        &mut self,
        camera: &CameraId,
        state: CameraState,
        error: &str,
        at: DateTime<Utc>,
    ) -> Result<(), DbError> {
        in_savepoint!(self, c => {
            let q = sqlx::query(cameras::RECORD_FAILURE_SQL)
                .bind(camera.as_str())
                .bind(state.as_str())
                .bind(error)
                .bind(fmt_ts(at));
            exec(c, "recording a capture failure", q).await.map(drop)
        })
    }

    fn skip(
        &mut self,
        camera: &CameraId,
        schedule: &str,
        taken_at: DateTime<Utc>,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<(), DbError> {
        in_savepoint!(self, c => {
            async {
                let q = sqlx::query(schedules::RECORD_SKIP_SQL)
                    .bind(fmt_ts(taken_at))
                    .bind(reason)
                    .bind(schedule);
                exec(c, "recording a skipped slot", q).await?;
                success(c, camera, at).await
            }
            .await
        })
    }

    fn index(&mut self, all: &[Snapshot]) -> Result<(), DbError> {
        in_savepoint!(self, c => {
            async {
                for s in all {
                    insert_row(c, s).await?;
                }
                Ok(())
            }
            .await
        })
    }
}
