//! The one writer for the hot path: slot claims, capture outcomes and frame rows.
//!
//! SQLite allows one writer at a time. With many tasks each committing its own small
//! transaction, they queue on SQLite's lock, whose busy handler *sleeps* (1, 2, 5, 10 ms …): the
//! bench measured the rate topping out near 550 captures/s on 2 cores with CPU to spare. Here
//! every hot-path write goes to one task through a channel; it takes whatever has queued (up to
//! [`MAX_BATCH`]), runs it in one transaction, commits once and only then answers each caller.
//! Under light load a batch is a single operation, so latency does not grow; under heavy load
//! one commit carries hundreds of writes.
//!
//! Each operation's own failure (a constraint, a camera deleted meanwhile) is its own answer;
//! the rest of the batch still commits. If the commit itself fails, every caller in the batch
//! gets the error — nothing is reported done that is not durable in the database. On shutdown
//! the queue is drained and committed before the task ends (DESIGN.md §10: commit pending rows).

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::{cameras, schedules, snapshots, step, DbError, Pool};
use crate::models::{CameraId, CameraState, Snapshot};

/// Most operations per transaction.
pub const MAX_BATCH: usize = 512;

enum Op {
    Claim {
        id: String,
        slot: DateTime<Utc>,
        next: DateTime<Utc>,
        reply: oneshot::Sender<Result<bool, DbError>>,
    },
    Frame {
        snapshot: Box<Snapshot>,
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
}

/// The handle: cheap to clone.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Op>,
}

/// The writer task itself, owned by the application.
pub struct WriterTask {
    handle: tokio::task::JoinHandle<()>,
    stop: CancellationToken,
}

impl WriterTask {
    /// Stop taking new writes, commit what is queued, and wait for the task to end.
    pub async fn finish(self) {
        self.stop.cancel();
        let _ = self.handle.await;
    }
}

fn closed() -> DbError {
    DbError::Corrupt("the database writer has stopped".into())
}

impl Writer {
    pub fn start(pool: Pool) -> (Writer, WriterTask) {
        let (tx, rx) = mpsc::channel(8 * MAX_BATCH);
        let stop = CancellationToken::new();
        let handle = tokio::spawn(run(pool, rx, stop.clone()));
        (Writer { tx }, WriterTask { handle, stop })
    }

    async fn send<T>(
        &self,
        op: Op,
        rx: oneshot::Receiver<Result<T, DbError>>,
    ) -> Result<T, DbError> {
        self.tx.send(op).await.map_err(|_| closed())?;
        rx.await.map_err(|_| closed())?
    }

    /// [`schedules::claim`] through the writer.
    pub async fn claim(
        &self,
        id: &str,
        slot: DateTime<Utc>,
        next: DateTime<Utc>,
    ) -> Result<bool, DbError> {
        let (reply, rx) = oneshot::channel();
        self.send(
            Op::Claim {
                id: id.to_string(),
                slot,
                next,
                reply,
            },
            rx,
        )
        .await
    }

    /// [`snapshots::insert`] plus the camera's capture success, in one operation.
    pub async fn record_frame(&self, snapshot: Snapshot) -> Result<(), DbError> {
        let (reply, rx) = oneshot::channel();
        self.send(
            Op::Frame {
                snapshot: Box::new(snapshot),
                reply,
            },
            rx,
        )
        .await
    }

    /// [`cameras::record_success`] through the writer.
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

    /// [`cameras::record_failure`] through the writer.
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

/// A finished operation waiting for its batch's commit.
enum Done {
    Claim(
        oneshot::Sender<Result<bool, DbError>>,
        Result<bool, DbError>,
    ),
    Unit(oneshot::Sender<Result<(), DbError>>, Result<(), DbError>),
}

async fn run(pool: Pool, mut rx: mpsc::Receiver<Op>, stop: CancellationToken) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut stopping = false;
    loop {
        let n = tokio::select! {
            n = rx.recv_many(&mut batch, MAX_BATCH) => n,
            _ = stop.cancelled(), if !stopping => {
                // No new writes; what is already queued still commits below.
                rx.close();
                stopping = true;
                continue;
            }
        };
        if n == 0 {
            break;
        }
        let ops = std::mem::take(&mut batch);
        let outcome = execute(&pool, ops).await;
        match outcome {
            Ok(done) => {
                for d in done {
                    match d {
                        Done::Claim(reply, r) => {
                            let _ = reply.send(r);
                        }
                        Done::Unit(reply, r) => {
                            let _ = reply.send(r);
                        }
                    }
                }
            }
            Err((e, done)) => {
                tracing::error!(error = %e, ops = done.len(), "a database write batch failed");
                let msg = e.to_string();
                for d in done {
                    let err = || DbError::Corrupt(format!("batch not committed: {msg}"));
                    match d {
                        Done::Claim(reply, _) => {
                            let _ = reply.send(Err(err()));
                        }
                        Done::Unit(reply, _) => {
                            let _ = reply.send(Err(err()));
                        }
                    }
                }
            }
        }
    }
}

async fn execute(pool: &Pool, ops: Vec<Op>) -> Result<Vec<Done>, (DbError, Vec<Done>)> {
    let mut done = Vec::with_capacity(ops.len());
    let mut tx = match pool.begin().await.map_err(step("starting a write batch")) {
        Ok(tx) => tx,
        Err(e) => {
            // Answer each op with the failure.
            for op in ops {
                done.push(match op {
                    Op::Claim { reply, .. } => Done::Claim(reply, Ok(false)),
                    Op::Frame { reply, .. }
                    | Op::Success { reply, .. }
                    | Op::Failure { reply, .. } => Done::Unit(reply, Ok(())),
                });
            }
            return Err((e, done));
        }
    };
    for op in ops {
        done.push(match op {
            Op::Claim {
                id,
                slot,
                next,
                reply,
            } => Done::Claim(reply, schedules::claim(&mut *tx, &id, slot, next).await),
            Op::Frame { snapshot, reply } => Done::Unit(reply, frame(&mut tx, &snapshot).await),
            Op::Success { camera, at, reply } => {
                Done::Unit(reply, cameras::record_success(&mut *tx, &camera, at).await)
            }
            Op::Failure {
                camera,
                state,
                error,
                at,
                reply,
            } => Done::Unit(
                reply,
                cameras::record_failure(&mut *tx, &camera, state, &error, at).await,
            ),
        });
    }
    match tx.commit().await.map_err(step("committing a write batch")) {
        Ok(()) => Ok(done),
        Err(e) => Err((e, done)),
    }
}

/// A frame's row, its schedule's `last_fired_at` and its camera's capture success, under a
/// savepoint so a failure leaves none of them behind.
async fn frame(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    s: &Snapshot,
) -> Result<(), DbError> {
    use sqlx::Acquire;
    let mut sp = (&mut **tx)
        .begin()
        .await
        .map_err(step("opening a savepoint"))?;
    let wrote = match snapshots::insert_on(&mut sp, s).await {
        Ok(()) => cameras::record_success(&mut *sp, &s.camera_id, s.created_at).await,
        Err(e) => Err(e),
    };
    match wrote {
        Ok(()) => sp.commit().await.map_err(step("releasing a savepoint")),
        Err(e) => {
            let _ = sp.rollback().await;
            Err(e)
        }
    }
}
