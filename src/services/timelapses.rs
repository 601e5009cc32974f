//! The two timelapse services, each supervised: the job worker and the rule runner
//! (docs/timelapse.md).
//!
//! The worker recovers what a run that is gone left (`ops::timelapses::recover`: jobs of this
//! node's past runs and of nodes without a heartbeat for a lease period, never a job another live
//! node runs), at start and then at every look, and runs queued jobs oldest first, at most HELDAR_TIMELAPSE_CONCURRENCY at once; the queue itself
//! is the `jobs` table (bounded at `ops::timelapses::MAX_QUEUED` exports), so nothing queued is
//! lost to a restart. It wakes when a job is queued, and every 30 s in case another process
//! queued one. On shutdown every running ffmpeg is stopped and its partial file removed; the
//! jobs are marked interrupted by the next start.
//!
//! The rule runner claims and queues each rule's due periods (`ops::timelapse_rules::run_due`)
//! and sleeps until the next run — at most `check_every` (60 s), so a wall clock that jumps
//! (NTP, a suspended machine, the tests' virtual clock) is noticed within that — or until a rule
//! changes. While the database is unavailable both wait and look again (one WARN line a look);
//! any other failure ends the run and the supervisor starts it again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::error::OpError;
use crate::models::timelapse::Job;
use crate::ops::{self, Ops};

/// How often the worker looks for jobs without being woken.
const LOOK_EVERY: Duration = Duration::from_secs(30);
/// The rule runner's longest sleep.
pub const RULE_CHECK_EVERY: Duration = Duration::from_secs(60);

/// The job worker (see the module docs).
pub async fn run_jobs(ops: Ops, token: CancellationToken) -> anyhow::Result<()> {
    let permits = Arc::new(Semaphore::new(ops.config.timelapse_concurrency.max(1)));
    let mut tasks = JoinSet::new();
    // Recovery runs at start and then at every look: in a fleet, a node that dies leaves its
    // running jobs to whichever node looks next once its heartbeat is older than a lease.
    let mut recovered_at: Option<Instant> = None;
    'outer: loop {
        let permit = tokio::select! {
            _ = token.cancelled() => break,
            p = permits.clone().acquire_owned() => p?,
        };
        let job = loop {
            while tasks.try_join_next().is_some() {}
            match look(&ops, &mut recovered_at).await {
                Ok(Some(job)) => break job,
                Ok(None) => {}
                // The database away (an outage, docs/design.md §8.1): wait and look again,
                // rather than fail and restart the service over it.
                Err(OpError::Unavailable { message, .. }) => {
                    tracing::warn!(error = %message, "timelapse jobs wait for the database");
                }
                Err(e) => return Err(e.into()),
            }
            tokio::select! {
                _ = token.cancelled() => break 'outer,
                _ = ops.jobs.queued.notified() => {}
                _ = tokio::time::sleep(LOOK_EVERY) => {}
            }
        };
        let (o, t) = (ops.clone(), token.clone());
        tasks.spawn(async move {
            ops::timelapses::run(&o, job, &t).await;
            drop(permit);
        });
    }
    // The runners' ffmpeg processes watch the same token: wait for them to stop and clean up.
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// Recover orphaned jobs (at most every [`LOOK_EVERY`]), then claim the next queued one.
async fn look(ops: &Ops, recovered_at: &mut Option<Instant>) -> Result<Option<Job>, OpError> {
    if recovered_at.is_none_or(|t| t.elapsed() >= LOOK_EVERY) {
        ops::timelapses::recover(ops).await?;
        *recovered_at = Some(Instant::now());
    }
    ops::timelapses::claim_next(ops).await
}

/// The rule runner (see the module docs).
pub async fn run_rules(
    ops: Ops,
    check_every: Duration,
    token: CancellationToken,
) -> anyhow::Result<()> {
    loop {
        let now = ops.clock.now();
        let next = match ops::timelapse_rules::run_due(&ops, now).await {
            Ok(next) => next,
            // The database away: look again shortly, without failing the service.
            Err(OpError::Unavailable { message, .. }) => {
                tracing::warn!(error = %message, "timelapse rules wait for the database");
                Some(now + chrono::Duration::seconds(5))
            }
            Err(e) => return Err(e.into()),
        };
        let wait = next
            .map(|t| (t - ops.clock.now()).to_std().unwrap_or(Duration::ZERO))
            .unwrap_or(check_every)
            .clamp(Duration::from_millis(50), check_every);
        tokio::select! {
            _ = token.cancelled() => return Ok(()),
            _ = tokio::time::sleep(wait) => {}
            _ = ops.jobs.rules_changed.notified() => {}
        }
    }
}
