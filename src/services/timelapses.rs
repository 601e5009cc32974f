//! The two timelapse services, each supervised: the job worker and the rule runner
//! (docs/timelapse.md).
//!
//! The worker first recovers what a run that is gone left (`ops::timelapses::recover`), then
//! runs queued jobs oldest first, at most HELDAR_TIMELAPSE_CONCURRENCY at once; the queue itself
//! is the `jobs` table (bounded at `ops::timelapses::MAX_QUEUED` exports), so nothing queued is
//! lost to a restart. It wakes when a job is queued, and every 30 s in case another process
//! queued one. On shutdown every running ffmpeg is stopped and its partial file removed; the
//! jobs are marked interrupted by the next start.
//!
//! The rule runner claims and queues each rule's due periods (`ops::timelapse_rules::run_due`)
//! and sleeps until the next run — at most `check_every` (60 s), so a wall clock that jumps
//! (NTP, a suspended machine, the tests' virtual clock) is noticed within that — or until a rule
//! changes. A failing pass (the database) ends the run and the supervisor starts it again.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::ops::{self, Ops};

/// How often the worker looks for jobs without being woken.
const LOOK_EVERY: Duration = Duration::from_secs(30);
/// The rule runner's longest sleep.
pub const RULE_CHECK_EVERY: Duration = Duration::from_secs(60);

/// The job worker (see the module docs).
pub async fn run_jobs(ops: Ops, token: CancellationToken) -> anyhow::Result<()> {
    // On PostgreSQL, until `db::jobs` is ported, the worker idles rather than fail-and-restart.
    let r = jobs(ops, token.clone()).await;
    super::idle_if_not_on_postgres("timelapse_jobs", r, token).await
}

async fn jobs(ops: Ops, token: CancellationToken) -> anyhow::Result<()> {
    ops::timelapses::recover(&ops).await?;
    let permits = Arc::new(Semaphore::new(ops.config.timelapse_concurrency.max(1)));
    let mut tasks = JoinSet::new();
    'outer: loop {
        let permit = tokio::select! {
            _ = token.cancelled() => break,
            p = permits.clone().acquire_owned() => p?,
        };
        let job = loop {
            while tasks.try_join_next().is_some() {}
            if let Some(job) = ops::timelapses::claim_next(&ops).await? {
                break job;
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

/// The rule runner (see the module docs).
pub async fn run_rules(
    ops: Ops,
    check_every: Duration,
    token: CancellationToken,
) -> anyhow::Result<()> {
    let r = rules(ops, check_every, token.clone()).await;
    super::idle_if_not_on_postgres("timelapse_rules", r, token).await
}

async fn rules(ops: Ops, check_every: Duration, token: CancellationToken) -> anyhow::Result<()> {
    loop {
        let now = ops.clock.now();
        let next = ops::timelapse_rules::run_due(&ops, now).await?;
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
