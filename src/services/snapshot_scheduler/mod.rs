//! The snapshot scheduler (DESIGN.md §7): fires every enabled schedule at its slots, exactly once
//! per slot, each capture on its own task.
//!
//! - **Deadline-driven.** Enabled schedules sit in a timer structure ordered by `next_due_at`;
//!   the loop sleeps until the earliest (or a command, or the periodic re-read of changes made
//!   outside this process). API changes arrive at once through [`SchedulerHandle`].
//! - **Slots, not drift.** After a slot fires, the next is `slot + interval` ([`slots::advance`]);
//!   if slots were missed (downtime, an overrun) it fires once and jumps to the next future slot,
//!   counting the missed ones.
//! - **Exactly once.** A slot is claimed in the store before capturing (a conditional update on
//!   `next_due_at`); only the claimer captures. A failed claim means another process or a change
//!   got there first: the schedule is re-read.
//! - **Isolated.** Each fire is a task of its own ([`Firer`]); a hanging camera holds only its own
//!   schedule, whose slots are then missed, not queued.
//! - **Clock jumps.** Waiting uses tokio's monotonic timers; the wait is re-derived from the wall
//!   clock at every wake-up, and at least every `rescan` interval. A step shows as wall time
//!   moving differently from monotonic time; after a step back, slots more than one interval
//!   ahead are pulled back keeping their phase ([`slots::realign`]); after a step forward, due
//!   slots fire once and skip ahead. Only a detected step realigns: a slot legitimately far
//!   ahead (set by another process or a test) is left alone.
//! - **Testable time.** The loop takes a [`Clock`], a [`ScheduleStore`] and a [`Firer`], so its
//!   tests run under a paused tokio clock with an in-memory store.
//!
//! On shutdown it stops claiming and gives in-flight captures a grace period to finish (they
//! commit their own rows). A store error ends the run; the supervisor restarts it with backoff.

pub mod fire;
pub mod slots;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use tokio::sync::{mpsc, Mutex};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::db::{self, writer::Writer, Pool};
use crate::metrics::Metrics;
use crate::models::{CameraId, Schedule};

/// What the API tells the scheduler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// This schedule was created, changed or deleted: re-read it.
    Refresh(String),
    /// Many schedules may have changed (a camera was deleted): re-read all.
    RefreshAll,
}

/// The sending side, held in `AppState`. Sending never blocks and never fails loudly: with the
/// scheduler disabled, the periodic re-read of another process picks changes up instead.
#[derive(Clone)]
pub struct SchedulerHandle {
    tx: mpsc::UnboundedSender<Command>,
}

/// The receiving side; it outlives one run of the scheduler, so a restarted run keeps it.
pub type CommandReceiver = Arc<Mutex<mpsc::UnboundedReceiver<Command>>>;

impl SchedulerHandle {
    pub fn channel() -> (SchedulerHandle, CommandReceiver) {
        let (tx, rx) = mpsc::unbounded_channel();
        (SchedulerHandle { tx }, Arc::new(Mutex::new(rx)))
    }

    pub fn refresh(&self, schedule_id: &str) {
        let _ = self.tx.send(Command::Refresh(schedule_id.to_string()));
    }

    pub fn refresh_all(&self) {
        let _ = self.tx.send(Command::RefreshAll);
    }
}

/// Where schedules live, as the scheduler needs them.
pub trait ScheduleStore: Send + Sync + 'static {
    fn load_enabled(&self) -> BoxFuture<'_, anyhow::Result<Vec<Schedule>>>;
    /// Every schedule, enabled or not, changed at or after `since`.
    fn load_changed(&self, since: DateTime<Utc>) -> BoxFuture<'_, anyhow::Result<Vec<Schedule>>>;
    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, anyhow::Result<Option<Schedule>>>;
    /// Move `next_due_at` from `slot` to `next` if it is still `slot`; true if this call did it.
    fn claim<'a>(
        &'a self,
        id: &'a str,
        slot: DateTime<Utc>,
        next: DateTime<Utc>,
    ) -> BoxFuture<'a, anyhow::Result<bool>>;
}

/// The SQLite store: reads from the pool, claims through the writer (batched commits).
pub struct DbScheduleStore {
    pub pool: Pool,
    pub writer: Writer,
}

impl ScheduleStore for DbScheduleStore {
    fn load_enabled(&self) -> BoxFuture<'_, anyhow::Result<Vec<Schedule>>> {
        Box::pin(async move { Ok(db::schedules::list_enabled(&self.pool).await?) })
    }
    fn load_changed(&self, since: DateTime<Utc>) -> BoxFuture<'_, anyhow::Result<Vec<Schedule>>> {
        Box::pin(async move { Ok(db::schedules::list_changed_since(&self.pool, since).await?) })
    }
    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, anyhow::Result<Option<Schedule>>> {
        Box::pin(async move { Ok(db::schedules::get(&self.pool, id).await?) })
    }
    fn claim<'a>(
        &'a self,
        id: &'a str,
        slot: DateTime<Utc>,
        next: DateTime<Utc>,
    ) -> BoxFuture<'a, anyhow::Result<bool>> {
        Box::pin(async move { Ok(self.writer.claim(id, slot, next).await?) })
    }
}

/// One claimed slot to capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fire {
    pub schedule_id: String,
    pub camera_id: CameraId,
    pub slot: DateTime<Utc>,
}

/// Runs one claimed slot: capture and keep the frame. The future is spawned on its own task.
pub trait Firer: Send + Sync + 'static {
    fn fire(&self, job: Fire) -> BoxFuture<'static, ()>;
}

/// How a slot's task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TaskEnd {
    /// Claimed and captured (or tried to).
    Fired,
    /// The capture's claim failed: the store knows better.
    FireLost,
    /// A missed slot claimed while the previous capture ran.
    ClaimedMissed,
    /// A missed slot's claim failed.
    ClaimLost,
}

struct Entry {
    camera_id: CameraId,
    interval: chrono::Duration,
    next_due: DateTime<Utc>,
    running: bool,
}

/// The timer structure: entries by id, and (due, id) in order.
#[derive(Default)]
struct Timers {
    queue: BTreeSet<(DateTime<Utc>, String)>,
    entries: HashMap<String, Entry>,
}

impl Timers {
    fn upsert(&mut self, s: &Schedule) {
        let running = self.remove(&s.id);
        let Some(next_due) = s.next_due_at.filter(|_| s.enabled) else {
            return;
        };
        self.queue.insert((next_due, s.id.clone()));
        self.entries.insert(
            s.id.clone(),
            Entry {
                camera_id: s.camera_id.clone(),
                interval: chrono::Duration::seconds(s.interval_seconds.max(1)),
                next_due,
                running,
            },
        );
    }

    /// Remove a schedule; returns whether a capture of it is running.
    fn remove(&mut self, id: &str) -> bool {
        match self.entries.remove(id) {
            Some(e) => {
                self.queue.remove(&(e.next_due, id.to_string()));
                e.running
            }
            None => false,
        }
    }

    fn reschedule(&mut self, id: &str, next: DateTime<Utc>) {
        if let Some(e) = self.entries.get_mut(id) {
            self.queue.remove(&(e.next_due, id.to_string()));
            e.next_due = next;
            self.queue.insert((next, id.to_string()));
        }
    }

    fn earliest(&self) -> Option<DateTime<Utc>> {
        self.queue.first().map(|(t, _)| *t)
    }

    fn due(&self, now: DateTime<Utc>) -> Vec<String> {
        self.queue
            .iter()
            .take_while(|(t, _)| *t <= now)
            .map(|(_, id)| id.clone())
            .collect()
    }
}

/// The scheduler's parts.
pub struct Scheduler {
    pub clock: Arc<dyn Clock>,
    pub store: Arc<dyn ScheduleStore>,
    pub firer: Arc<dyn Firer>,
    pub metrics: Arc<Metrics>,
    pub commands: CommandReceiver,
    /// Re-read every schedule this often (HELDAR_SNAPSHOT_SCHEDULER_INTERVAL_S).
    pub rescan: Duration,
    /// How long in-flight captures may take to finish on shutdown.
    pub grace: Duration,
}

impl Scheduler {
    /// One run, until `token` is cancelled or the store fails.
    pub async fn run(&self, token: CancellationToken) -> anyhow::Result<()> {
        let mut commands = self.commands.lock().await;
        let mut timers = Timers::default();
        let mut tasks: JoinSet<(String, TaskEnd)> = JoinSet::new();
        self.reload(&mut timers).await?;
        let mut last_rescan = tokio::time::Instant::now();
        let mut rescans = Rescans::new(self.clock.now());
        let mut last_seen = (self.clock.now(), tokio::time::Instant::now());
        tracing::info!(
            schedules = timers.entries.len(),
            "snapshot scheduler started"
        );

        let result: anyhow::Result<()> = async {
            loop {
                let now = self.clock.now();
                // A wall-clock step shows as wall time moving differently from monotonic time.
                let mono = tokio::time::Instant::now();
                let wall_delta = (now - last_seen.0).num_milliseconds();
                let mono_delta = mono.duration_since(last_seen.1).as_millis() as i64;
                if (wall_delta - mono_delta).abs() > 1000 {
                    tracing::warn!(
                        step_ms = wall_delta - mono_delta,
                        "wall clock stepped; re-deriving deadlines"
                    );
                    self.realign_all(&mut timers, now).await?;
                }
                last_seen = (now, mono);

                self.fire_due(&mut timers, &mut tasks, now);

                let rescan_at = last_rescan + self.rescan;
                let wake = match timers.earliest() {
                    Some(due) => {
                        let wait = (due - self.clock.now()).to_std().unwrap_or(Duration::ZERO);
                        (tokio::time::Instant::now() + wait).min(rescan_at)
                    }
                    None => rescan_at,
                };
                tokio::select! {
                    biased;
                    _ = token.cancelled() => return Ok(()),
                    Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                        match done {
                            Ok((id, end)) => {
                                if matches!(end, TaskEnd::Fired | TaskEnd::FireLost) {
                                    if let Some(e) = timers.entries.get_mut(&id) {
                                        e.running = false;
                                    }
                                }
                                if matches!(end, TaskEnd::FireLost | TaskEnd::ClaimLost) {
                                    // Another process or a change got there first: believe the store.
                                    self.refresh(&mut timers, &id).await?;
                                }
                            }
                            Err(e) => tracing::error!(error = %e, "a capture task failed"),
                        }
                    }
                    cmd = commands.recv() => match cmd {
                        Some(Command::Refresh(id)) => self.refresh(&mut timers, &id).await?,
                        Some(Command::RefreshAll) => self.reload(&mut timers).await?,
                        None => return Ok(()),
                    },
                    _ = tokio::time::sleep_until(wake) => {
                        if tokio::time::Instant::now() >= rescan_at {
                            let now = self.clock.now();
                            match rescans.next(now) {
                                Rescan::Full => self.reload(&mut timers).await?,
                                Rescan::Since(since) => self.reload_changed(&mut timers, since).await?,
                            }
                            last_rescan = tokio::time::Instant::now();
                        }
                    }
                }
            }
        }
        .await;

        if !tasks.is_empty() {
            tracing::info!(in_flight = tasks.len(), "waiting for in-flight captures");
            let drained = tokio::time::timeout(self.grace, async {
                while tasks.join_next().await.is_some() {}
            })
            .await;
            if drained.is_err() {
                tracing::warn!(
                    in_flight = tasks.len(),
                    "captures still running after the grace period; abandoning them"
                );
                tasks.abort_all();
            }
        }
        result
    }

    /// Claim and fire every due slot.
    /// Start every due slot: the in-memory schedule moves on at once, and each slot's claim and
    /// capture run on a task of their own, so a slow commit or camera never holds the loop.
    fn fire_due(
        &self,
        timers: &mut Timers,
        tasks: &mut JoinSet<(String, TaskEnd)>,
        now: DateTime<Utc>,
    ) {
        for id in timers.due(now) {
            let Some(e) = timers.entries.get_mut(&id) else {
                continue;
            };
            let slot = e.next_due;
            let (next, skipped) = slots::advance(slot, e.interval, now);
            let running = e.running;
            let camera_id = e.camera_id.clone();
            e.running = true;
            timers.reschedule(&id, next);
            let store = self.store.clone();
            let metrics = self.metrics.clone();
            if running {
                // Still capturing the previous slot: this one is missed, but claimed all the
                // same so no other process takes it.
                tasks.spawn(async move {
                    match store.claim(&id, slot, next).await {
                        Ok(true) => {
                            metrics.missed_slots.inc_by(skipped + 1);
                            tracing::info!(schedule = %id, camera = %camera_id, missed = skipped + 1, "slots missed: the previous capture is still running");
                            (id, TaskEnd::ClaimedMissed)
                        }
                        Ok(false) => (id, TaskEnd::ClaimLost),
                        Err(e) => {
                            tracing::warn!(schedule = %id, error = %format!("{e:#}"), "cannot claim a slot");
                            (id, TaskEnd::ClaimLost)
                        }
                    }
                });
                continue;
            }
            let clock = self.clock.clone();
            let firer = self.firer.clone();
            tasks.spawn(async move {
                match store.claim(&id, slot, next).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::debug!(schedule = %id, "slot claimed elsewhere; re-reading the schedule");
                        return (id, TaskEnd::FireLost);
                    }
                    Err(e) => {
                        tracing::warn!(schedule = %id, error = %format!("{e:#}"), "cannot claim a slot");
                        return (id, TaskEnd::FireLost);
                    }
                }
                if skipped > 0 {
                    metrics.missed_slots.inc_by(skipped);
                    tracing::info!(schedule = %id, camera = %camera_id, missed = skipped, "slots missed");
                }
                let lateness = (clock.now() - slot).to_std().unwrap_or(Duration::ZERO);
                metrics.schedule_lateness.observe(lateness.as_secs_f64());
                metrics.slots_fired.inc();
                firer
                    .fire(Fire {
                        schedule_id: id.clone(),
                        camera_id,
                        slot,
                    })
                    .await;
                (id, TaskEnd::Fired)
            });
        }
    }

    async fn refresh(&self, timers: &mut Timers, id: &str) -> anyhow::Result<()> {
        match self.store.get(id).await? {
            // `upsert` keeps the running flag, so a re-read never double-fires a busy schedule.
            Some(s) => timers.upsert(&s),
            None => {
                timers.remove(id);
            }
        }
        self.metrics
            .schedules_active
            .set(timers.entries.len() as i64);
        Ok(())
    }

    /// Replace the timer structure with the store's enabled schedules (keeping running flags).
    async fn reload(&self, timers: &mut Timers) -> anyhow::Result<()> {
        let schedules = self.store.load_enabled().await?;
        let running: Vec<String> = timers
            .entries
            .iter()
            .filter(|(_, e)| e.running)
            .map(|(id, _)| id.clone())
            .collect();
        *timers = Timers::default();
        for s in &schedules {
            timers.upsert(s);
        }
        for id in running {
            if let Some(e) = timers.entries.get_mut(&id) {
                e.running = true;
            }
        }
        self.metrics
            .schedules_active
            .set(timers.entries.len() as i64);
        Ok(())
    }

    /// Apply the schedules changed since `since`: enabled ones are (re)inserted, disabled ones
    /// dropped. Deleted rows are not seen here; their next claim fails and the re-read of that
    /// one schedule drops it (and the full re-read catches the rest).
    async fn reload_changed(
        &self,
        timers: &mut Timers,
        since: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        for s in self.store.load_changed(since).await? {
            if s.enabled {
                timers.upsert(&s);
            } else {
                timers.remove(&s.id);
            }
        }
        self.metrics
            .schedules_active
            .set(timers.entries.len() as i64);
        Ok(())
    }

    async fn realign_all(&self, timers: &mut Timers, now: DateTime<Utc>) -> anyhow::Result<()> {
        let ids: Vec<String> = timers.entries.keys().cloned().collect();
        for id in ids {
            self.realign_one(timers, &id, now).await?;
        }
        Ok(())
    }

    async fn realign_one(
        &self,
        timers: &mut Timers,
        id: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let Some(e) = timers.entries.get(id) else {
            return Ok(());
        };
        let aligned = slots::realign(e.next_due, e.interval, now);
        if aligned != e.next_due {
            if self.store.claim(id, e.next_due, aligned).await? {
                timers.reschedule(id, aligned);
            } else if let Some(s) = self.store.get(id).await? {
                timers.upsert(&s);
            }
        }
        Ok(())
    }
}

/// Which periodic re-read is next. Most look only at rows changed since the previous look (minus
/// a margin for another process's clock and for commits that landed while we read); every
/// [`Rescans::FULL_EVERY`]th reloads everything, as a safety net for deletes and anything missed.
struct Rescans {
    count: u32,
    last: DateTime<Utc>,
}

enum Rescan {
    Full,
    Since(DateTime<Utc>),
}

impl Rescans {
    const FULL_EVERY: u32 = 10;
    const MARGIN_S: i64 = 60;

    fn new(now: DateTime<Utc>) -> Rescans {
        Rescans {
            count: 0,
            last: now,
        }
    }

    fn next(&mut self, now: DateTime<Utc>) -> Rescan {
        self.count += 1;
        let since = self.last - chrono::Duration::seconds(Self::MARGIN_S);
        self.last = now;
        if self.count.is_multiple_of(Self::FULL_EVERY) {
            Rescan::Full
        } else {
            Rescan::Since(since)
        }
    }
}

#[cfg(test)]
mod tests;
