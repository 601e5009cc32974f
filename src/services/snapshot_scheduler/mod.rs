//! The snapshot scheduler (docs/design.md §7): fires every enabled schedule at its slots, exactly once
//! per slot, each capture on its own task.
//!
//! - **Deadline-driven.** Enabled schedules sit in a timer structure ordered by `next_due_at`;
//!   the loop sleeps until the earliest (or a command, or the periodic re-read of changes made
//!   outside this process). API changes arrive at once through [`SchedulerHandle`].
//! - **Slots, not drift.** After a slot fires, the next is `slot + interval` ([`slots::advance`]),
//!   or for a schedule with a calendar the plan's next slot ([`Plan::advance`]: aligned, fixed
//!   times, windows); if slots were missed (downtime, an overrun) it fires once and jumps to the
//!   next future slot, counting the missed ones (inside windows only). A calendar with no window
//!   within 400 days claims its slot with a null `next_due_at` and idles until changed.
//! - **Exactly once.** A slot is claimed in the store before capturing (a conditional update on
//!   `next_due_at`); only the claimer captures. A failed claim means another process or a change
//!   got there first: the schedule is re-read.
//! - **Claimed ahead, in batches.** The loop wakes when the earliest slot is half of
//!   [`CLAIM_AHEAD`] away and claims every slot due within [`CLAIM_AHEAD`] in one transaction;
//!   each slot's task then waits for its own time. At 100,000 hourly schedules that is two claim
//!   commits a second instead of 28, and no database round trip between a slot's time and its
//!   capture. The price: a crash loses the slots claimed for the next second (never captures one
//!   twice), and a schedule disabled or deleted in that second has its claimed slot cancelled,
//!   while an edited one keeps it.
//! - **Re-reads never stall firing.** The periodic re-read runs on a task of its own and is
//!   applied when it arrives; what this process changed since the read began is not overwritten
//!   by it, and unchanged schedules cost a lookup.
//! - **Isolated.** Each fire is a task of its own ([`SlotRunner`]); a hanging camera holds only its own
//!   schedule, whose slots are then missed, not queued.
//! - **Clock jumps.** Waiting uses tokio's monotonic timers; the wait is re-derived from the wall
//!   clock at every wake-up, and at least every `rescan` interval. A step shows as wall time
//!   moving differently from monotonic time; after a step back, slots more than one interval
//!   ahead are pulled back keeping their phase ([`slots::realign`]), and a calendar schedule's
//!   next slot is derived afresh from its plan ([`slots::rederive`]); after a step forward, due
//!   slots fire once and skip ahead. Only a detected step realigns: a slot legitimately far
//!   ahead (set by another process or a test) is left alone.
//! - **Database outages.** While the database is unavailable (docs/design.md §8.1) the writer
//!   holds claims and answers [`Claimed::Held`]: the slots fire from the timers all the same,
//!   each job marked `claim_held` (its frame is kept only if the claim wins when the database
//!   returns). A held claim that loses is re-read like any lost claim. No periodic re-read is
//!   started or applied while claims are held: the database's `next_due_at` lags the timers until
//!   they are answered, and applying it would fire those slots again. Past the outage buffer's
//!   bound, held slots are counted missed without a capture.
//! - **Testable time.** The loop takes a [`Clock`], a [`ScheduleStore`] and a [`SlotRunner`], so its
//!   tests run under a paused tokio clock with an in-memory store.
//!
//! On shutdown it stops claiming and gives in-flight captures a grace period to finish (they
//! commit their own rows); slots already claimed and waiting for their time fire within it. A store
//! error other than an outage (which the writer holds) ends the run; the supervisor restarts it
//! with backoff.

pub mod cameras;
pub mod runner;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::db::schedules::Claim;
use crate::db::writer::Answer;
use crate::metrics::Metrics;
use crate::models::{CameraId, FrameRules, Schedule};
use crate::ops::scheduler::{Command, CommandReceiver};
use crate::ops::{self, Ops};
use crate::slot::{self as slots, Plan};

/// Where schedules live, as the scheduler needs them.
pub trait ScheduleStore: Send + Sync + 'static {
    fn load_enabled(&self) -> BoxFuture<'_, anyhow::Result<Vec<Schedule>>>;
    /// Every schedule, enabled or not, changed at or after `since`.
    fn load_changed(&self, since: DateTime<Utc>) -> BoxFuture<'_, anyhow::Result<Vec<Schedule>>>;
    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, anyhow::Result<Option<Schedule>>>;
    /// Move `next_due_at` from `slot` to `next` if it is still `slot`; true if this call did it.
    /// `next` = `None`: the schedule idles (a calendar with no window within 400 days).
    fn claim<'a>(
        &'a self,
        id: &'a str,
        slot: DateTime<Utc>,
        next: Option<DateTime<Utc>>,
    ) -> BoxFuture<'a, anyhow::Result<bool>>;
    /// [`ScheduleStore::claim`] for many slots at once; one answer per claim, in order.
    fn claim_many(&self, claims: Vec<Claim>) -> BoxFuture<'_, anyhow::Result<Vec<bool>>> {
        Box::pin(async move {
            let mut won = Vec::with_capacity(claims.len());
            for c in &claims {
                won.push(self.claim(&c.id, c.slot, c.next).await?);
            }
            Ok(won)
        })
    }
    /// [`ScheduleStore::claim_many`], or, while the database is unavailable, the promise of its
    /// answer (the claims are held and replayed in order when it returns).
    fn claim_or_hold(&self, claims: Vec<Claim>) -> BoxFuture<'_, Claimed> {
        Box::pin(async move { Claimed::Now(self.claim_many(claims).await) })
    }
    /// The database is unavailable and its outage buffer refuses new frames: slots claimed
    /// while held are counted missed instead of captured.
    fn refusing_frames(&self) -> bool {
        false
    }
}

/// A batch of claims' answer: now, or once the database returns.
pub enum Claimed {
    Now(anyhow::Result<Vec<bool>>),
    Held(BoxFuture<'static, anyhow::Result<Vec<bool>>>),
}

/// Held claims' answers arriving: the schedules and slots, and the answers.
type HeldAnswer = (Vec<(String, DateTime<Utc>)>, anyhow::Result<Vec<bool>>);

/// Missed slots are counted one by one up to this many per fire (a calendar's count walks its
/// slots; beyond this, "at least").
pub const MISSED_CAP: u64 = 100_000;

/// How far ahead of a slot it is claimed (see the module docs).
pub const CLAIM_AHEAD: Duration = Duration::from_secs(1);

/// The database's schedules, through `ops` (claims go through the writer, in batched commits).
pub struct DbScheduleStore(pub Ops);

/// Only the schedules of cameras this node holds (`ops::nodes`) are the scheduler's: the others
/// read as absent, so a camera lost to another node drops out at the next full re-read (which
/// `ops::nodes` asks for whenever the held set changes), and one gained comes in with it.
impl ScheduleStore for DbScheduleStore {
    fn load_enabled(&self) -> BoxFuture<'_, anyhow::Result<Vec<Schedule>>> {
        Box::pin(async move {
            let mut all = ops::schedules::enabled(&self.0).await?;
            all.retain(|s| self.0.nodes.holds(&s.camera_id));
            Ok(all)
        })
    }
    fn load_changed(&self, since: DateTime<Utc>) -> BoxFuture<'_, anyhow::Result<Vec<Schedule>>> {
        Box::pin(async move {
            let mut changed = ops::schedules::changed_since(&self.0, since).await?;
            changed.retain(|s| self.0.nodes.holds(&s.camera_id));
            Ok(changed)
        })
    }
    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, anyhow::Result<Option<Schedule>>> {
        Box::pin(async move {
            Ok(ops::schedules::find(&self.0, id)
                .await?
                .filter(|s| self.0.nodes.holds(&s.camera_id)))
        })
    }
    fn claim<'a>(
        &'a self,
        id: &'a str,
        slot: DateTime<Utc>,
        next: Option<DateTime<Utc>>,
    ) -> BoxFuture<'a, anyhow::Result<bool>> {
        Box::pin(async move {
            let claim = Claim {
                id: id.to_string(),
                slot,
                next,
            };
            Ok(ops::schedules::claim(&self.0, vec![claim]).await?.first() == Some(&true))
        })
    }
    fn claim_many(&self, claims: Vec<Claim>) -> BoxFuture<'_, anyhow::Result<Vec<bool>>> {
        Box::pin(async move { Ok(ops::schedules::claim(&self.0, claims).await?) })
    }
    fn claim_or_hold(&self, claims: Vec<Claim>) -> BoxFuture<'_, Claimed> {
        Box::pin(async move {
            match self.0.writer.claim_many_or_hold(claims).await {
                Answer::Done(r) => Claimed::Now(r.map_err(anyhow::Error::from)),
                Answer::Held(pending) => Claimed::Held(Box::pin(async move {
                    pending.wait().await.map_err(anyhow::Error::from)
                })),
            }
        })
    }
    fn refusing_frames(&self) -> bool {
        self.0.writer.outage().is_some_and(|o| o.refusing)
    }
}

/// One claimed slot to capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub schedule_id: String,
    pub camera_id: CameraId,
    pub slot: DateTime<Utc>,
    /// The schedule's interval (an unreachable camera's backoff counts in it).
    pub interval: chrono::Duration,
    /// Its source and which frames it keeps (`stream`, `skip_dark`, `skip_unchanged`).
    pub rules: FrameRules,
    /// The slot's claim was still held by the writer (a database outage) when it fired: its
    /// frame is kept only if the claim wins when the database returns.
    pub claim_held: bool,
}

/// Runs one claimed slot: capture and keep the frame. The future is spawned on its own task.
pub trait SlotRunner: Send + Sync + 'static {
    fn run(&self, job: Job) -> BoxFuture<'static, ()>;
    /// A camera was edited or deleted through this process: forget what is cached of it.
    fn camera_changed(&self, _camera: &CameraId) {}
}

struct Entry {
    camera_id: CameraId,
    /// When its slots are: the plain interval, or its calendar.
    plan: Plan,
    /// What its slots' frames are taken from and which are kept.
    rules: FrameRules,
    next_due: DateTime<Utc>,
    /// A slot of it is claimed and not finished: waiting for its time, or capturing.
    running: bool,
    /// Cancels the claimed slot while it still waits for its time.
    waiting: Option<CancellationToken>,
    /// [`Timers::stamp`] of this process's last change to it (a claim, a re-read of it).
    touched: u64,
}

/// The timer structure: entries by id, and (due, id) in order.
#[derive(Default)]
struct Timers {
    queue: BTreeSet<(DateTime<Utc>, String)>,
    entries: HashMap<String, Entry>,
    /// Counts this process's changes, so a re-read that began earlier does not undo them.
    stamp: u64,
}

impl Timers {
    fn touch(&mut self) -> u64 {
        self.stamp += 1;
        self.stamp
    }

    /// Take in the store's view of one schedule (from a re-read of it, or of all).
    fn upsert(&mut self, s: &Schedule) {
        let stamp = self.touch();
        let old = self.take(&s.id);
        let Some(next_due) = s.next_due_at.filter(|_| s.enabled) else {
            Self::cancel(old);
            return;
        };
        // A capture in progress stays marked, so a re-read never double-fires a busy schedule.
        let (running, waiting) = old.map_or((false, None), |e| (e.running, e.waiting));
        self.queue.insert((next_due, s.id.clone()));
        self.entries.insert(
            s.id.clone(),
            Entry {
                camera_id: s.camera_id.clone(),
                plan: s.plan(),
                rules: s.frame_rules(),
                next_due,
                running,
                waiting,
                touched: stamp,
            },
        );
    }

    /// Take in a row of a re-read that began at `stamp`: unless this process changed the
    /// schedule since (its view is newer) or nothing changed (the common case: a lookup).
    fn apply_read(&mut self, s: &Schedule, stamp: u64) {
        if let Some(e) = self.entries.get(&s.id) {
            let same = s.enabled
                && s.next_due_at == Some(e.next_due)
                && s.camera_id == e.camera_id
                && e.plan == s.plan()
                && e.rules == s.frame_rules();
            if same || e.touched > stamp {
                return;
            }
        } else if !s.enabled {
            return;
        }
        self.upsert(s);
    }

    /// Remove a schedule (disabled or deleted), cancelling a claimed slot still waiting.
    fn remove(&mut self, id: &str) {
        let e = self.take(id);
        Self::cancel(e);
    }

    fn cancel(e: Option<Entry>) {
        if let Some(token) = e.and_then(|e| e.waiting) {
            token.cancel();
        }
    }

    fn take(&mut self, id: &str) -> Option<Entry> {
        let e = self.entries.remove(id)?;
        self.queue.remove(&(e.next_due, id.to_string()));
        Some(e)
    }

    fn reschedule(&mut self, id: &str, next: DateTime<Utc>) {
        if let Some(e) = self.entries.get_mut(id) {
            self.queue.remove(&(e.next_due, id.to_string()));
            e.next_due = next;
            self.queue.insert((next, id.to_string()));
        }
    }

    /// When the loop must next look: `ahead` before the earliest slot to claim, or at the slot
    /// of a schedule still busy (where that slot is missed, unless the capture ends first).
    fn next_wake(&self, ahead: chrono::Duration) -> Option<DateTime<Utc>> {
        let mut best: Option<DateTime<Utc>> = None;
        for (t, id) in &self.queue {
            if best.is_some_and(|b| *t - ahead >= b) {
                break;
            }
            let busy = self.entries.get(id).is_some_and(|e| e.running);
            let at = if busy { *t } else { *t - ahead };
            best = Some(best.map_or(at, |b| b.min(at)));
        }
        best
    }

    /// Schedules to claim now: idle ones due by `horizon`, and busy ones due by `now` (whose
    /// slot is then missed). A busy one due later waits: its capture may end in time.
    fn claimable(&self, now: DateTime<Utc>, horizon: DateTime<Utc>) -> Vec<String> {
        self.queue
            .iter()
            .take_while(|(t, _)| *t <= horizon)
            .filter(|(t, id)| *t <= now || self.entries.get(id).is_some_and(|e| !e.running))
            .map(|(_, id)| id.clone())
            .collect()
    }
}

/// A re-read running on its own task: which kind, and the stamp it began at.
type Load = (Reread, u64, anyhow::Result<Vec<Schedule>>);

#[derive(Debug, Clone, Copy)]
enum Reread {
    Full,
    Changed,
}

/// The scheduler's parts.
pub struct Scheduler {
    pub clock: Arc<dyn Clock>,
    pub store: Arc<dyn ScheduleStore>,
    pub runner: Arc<dyn SlotRunner>,
    pub metrics: Arc<Metrics>,
    pub commands: CommandReceiver,
    /// Re-read every schedule this often (HELDAR_SNAPSHOT_SCHEDULER_INTERVAL_S).
    pub rescan: Duration,
    /// How long in-flight captures may take to finish on shutdown.
    pub grace: Duration,
    /// How far ahead slots are claimed ([`CLAIM_AHEAD`]).
    pub claim_ahead: Duration,
}

impl Scheduler {
    /// One run, until `token` is cancelled or the store fails.
    pub async fn run(&self, token: CancellationToken) -> anyhow::Result<()> {
        let mut commands = self.commands.lock().await;
        let mut timers = Timers::default();
        let mut tasks: JoinSet<String> = JoinSet::new();
        // Re-reads in flight; dropping the set (when this run ends) aborts them.
        let mut loads: JoinSet<Load> = JoinSet::new();
        // Answers of claims held during a database outage.
        let mut held: JoinSet<HeldAnswer> = JoinSet::new();
        // Commands queued before this run's first read are answered by it (ops write the
        // database before they send): a RefreshAll left by the node taking its cameras at
        // start-up (`ops::nodes::start`) would otherwise read every schedule a second time just
        // as the first slots fire, which at 100,000 schedules stalled their captures (issue
        // 17, docs/benchmarks.md). Only a camera's cache invalidation is kept.
        let mut early_cameras = Vec::new();
        while let Ok(cmd) = commands.try_recv() {
            if let Command::CameraChanged(id) = cmd {
                early_cameras.push(id);
            }
        }
        for id in &early_cameras {
            self.runner.camera_changed(id);
        }
        let loaded = self.store.load_enabled().await;
        Self::apply_load(&mut timers, (Reread::Full, 0, loaded))?;
        self.count_active(&timers);
        let mut last_rescan = tokio::time::Instant::now();
        let mut rescans = Rescans::new(self.clock.now());
        let mut last_seen = (self.clock.now(), tokio::time::Instant::now());
        let ahead = chrono::Duration::from_std(self.claim_ahead).unwrap_or_default();
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

                self.fire_due(&mut timers, &mut tasks, &mut held, now, now + ahead)
                    .await?;

                let rescan_at = last_rescan + self.rescan;
                // Wake when the earliest slot is half the window away and claim the whole window:
                // evenly spread slots are then claimed in batches, not one at a time.
                let wake = match timers.next_wake(ahead / 2) {
                    Some(at) => {
                        let wait = (at - self.clock.now()).to_std().unwrap_or(Duration::ZERO);
                        (tokio::time::Instant::now() + wait).min(rescan_at)
                    }
                    None => rescan_at,
                };
                tokio::select! {
                    biased;
                    _ = token.cancelled() => return Ok(()),
                    Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                        // Take every capture that has ended, not just this one: each turn of
                        // the loop awaits a claim, and at a thousand captures a second one end
                        // per turn left schedules marked busy past their next slot (missed).
                        Self::finished(&mut timers, done);
                        while let Some(done) = tasks.try_join_next() {
                            Self::finished(&mut timers, done);
                        }
                    }
                    Some(load) = loads.join_next(), if !loads.is_empty() => {
                        let load = load.map_err(|e| anyhow::anyhow!("a schedule re-read failed: {e}"))?;
                        // A periodic re-read that fails (the database away) keeps the timers
                        // as they are; the next one tries again. One that returns while claims
                        // are held is stale (the held claims moved the timers past what the
                        // database still says): dropped, or it would fire those slots again.
                        if !held.is_empty() {
                            tracing::debug!("schedule re-read dropped: slot claims are held during a database outage");
                        } else if let Err(e) = Self::apply_load(&mut timers, load) {
                            tracing::warn!(error = %crate::error::report(&*e), "schedule re-read failed; keeping the schedules as they were");
                        }
                        self.count_active(&timers);
                    }
                    Some(answer) = held.join_next(), if !held.is_empty() => {
                        let answer = answer.map_err(|e| anyhow::anyhow!("a held claim's answer failed: {e}"))?;
                        self.held_answered(&mut timers, answer).await?;
                    }
                    cmd = commands.recv() => match cmd {
                        Some(Command::Refresh(id)) => self.refresh(&mut timers, &id).await?,
                        Some(Command::RefreshAll) => self.start_load(&mut loads, &mut timers, None),
                        Some(Command::CameraChanged(id)) => self.runner.camera_changed(&id),
                        None => return Ok(()),
                    },
                    _ = tokio::time::sleep_until(wake) => {
                        if tokio::time::Instant::now() >= rescan_at {
                            let since = match rescans.next(self.clock.now()) {
                                Rescan::Full => None,
                                Rescan::Since(since) => Some(since),
                            };
                            // One re-read at a time: a slow store skips a turn, not piles up.
                            // None while claims are held (a database outage): the database's
                            // view lags the timers until they are answered.
                            if loads.is_empty() && held.is_empty() {
                                self.start_load(&mut loads, &mut timers, since);
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

    /// Claim every slot due by `horizon` (and the missed slots of busy schedules due by `now`)
    /// in one batch, then start a task per won slot that waits for the slot's time and captures.
    /// The claim is awaited here, so a re-read of a schedule that follows never sees it
    /// unclaimed; a capture runs on its own task, so a slow camera never holds the loop.
    async fn fire_due(
        &self,
        timers: &mut Timers,
        tasks: &mut JoinSet<String>,
        held: &mut JoinSet<HeldAnswer>,
        now: DateTime<Utc>,
        horizon: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let mut claims = Vec::new();
        let mut jobs = Vec::new();
        for id in timers.claimable(now, horizon) {
            let stamp = timers.touch();
            let Some(e) = timers.entries.get_mut(&id) else {
                continue;
            };
            let slot = e.next_due;
            let (next, skipped) = e.plan.advance(slot, now, MISSED_CAP);
            // Still capturing the previous slot: this one is missed, but claimed all the same
            // so no other process takes it.
            let missed = e.running;
            e.running = true;
            e.touched = stamp;
            let camera_id = e.camera_id.clone();
            let rules = e.rules;
            // What an unreachable camera's backoff counts in: the gap to the next slot (the
            // interval of a plain or aligned schedule; for fixed times, the gap between them).
            let interval = next
                .map(|n| n - slot)
                .filter(|d| *d > chrono::Duration::zero())
                .unwrap_or_else(|| chrono::Duration::seconds(60));
            match next {
                Some(next) => timers.reschedule(&id, next),
                // No window within the horizon: the schedule idles (its row's `next_due_at`
                // becomes null) until it is changed.
                None => {
                    timers.take(&id);
                }
            }
            claims.push(Claim {
                id: id.clone(),
                slot,
                next,
            });
            jobs.push((id, camera_id, slot, interval, skipped, missed, rules));
        }
        if claims.is_empty() {
            return Ok(());
        }
        let count = claims.len();
        let keys: Vec<(String, DateTime<Utc>)> =
            claims.iter().map(|c| (c.id.clone(), c.slot)).collect();
        // During a database outage the claims are held by the writer and this process keeps
        // firing the slots its timers know (docs/design.md, "Database outages"): each frame is
        // then kept only if its claim wins when the database returns.
        let (won, claim_held) = match self.store.claim_or_hold(claims).await {
            Claimed::Now(won) => (
                won.map_err(|e| e.context(format!("claiming {count} slots")))?,
                false,
            ),
            Claimed::Held(answer) => {
                held.spawn(async move { (keys, answer.await) });
                (vec![true; count], true)
            }
        };
        let refusing = claim_held && self.store.refusing_frames();
        if refusing {
            let missed: u64 = jobs.iter().map(|j| j.4 + 1).sum();
            self.metrics.missed_slots.inc_by(missed);
            self.metrics.db_outage_missed_slots.inc_by(missed);
            tracing::warn!(
                slots = missed,
                "slots missed: {} and its outage buffer is full or outlasted",
                crate::db::UNAVAILABLE
            );
        }
        for ((id, camera_id, slot, interval, skipped, missed, rules), won) in
            jobs.into_iter().zip(won)
        {
            if refusing {
                // Claimed (held), not captured: counted missed above.
                if !missed {
                    if let Some(e) = timers.entries.get_mut(&id) {
                        e.running = false;
                    }
                }
                continue;
            }
            if !won {
                // Another process or a change got there first: believe the store.
                tracing::debug!(schedule = %id, "slot not claimed; re-reading the schedule");
                if !missed {
                    if let Some(e) = timers.entries.get_mut(&id) {
                        e.running = false;
                    }
                }
                self.refresh(timers, &id).await?;
                continue;
            }
            if missed {
                self.metrics.missed_slots.inc_by(skipped + 1);
                tracing::info!(schedule = %id, camera = %camera_id, missed = skipped + 1, "slots missed: the previous capture is still running");
                continue;
            }
            let cancel = CancellationToken::new();
            if let Some(e) = timers.entries.get_mut(&id) {
                e.waiting = Some(cancel.clone());
            }
            let (clock, runner, metrics) = (
                self.clock.clone(),
                self.runner.clone(),
                self.metrics.clone(),
            );
            tasks.spawn(async move {
                // Claimed ahead: wait for the slot itself, unless the schedule goes away.
                let wait = (slot - clock.now()).to_std().unwrap_or(Duration::ZERO);
                if !wait.is_zero() {
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = cancel.cancelled() => return id,
                    }
                }
                if skipped > 0 {
                    metrics.missed_slots.inc_by(skipped);
                    tracing::info!(schedule = %id, camera = %camera_id, missed = skipped, "slots missed");
                }
                let lateness = (clock.now() - slot).to_std().unwrap_or(Duration::ZERO);
                metrics.schedule_lateness.observe(lateness.as_secs_f64());
                metrics.slots_fired.inc();
                runner
                    .run(Job {
                        schedule_id: id.clone(),
                        camera_id,
                        slot,
                        interval,
                        rules,
                        claim_held,
                    })
                    .await;
                id
            });
        }
        Ok(())
    }

    /// Claims held during a database outage were answered once it returned. A lost one (another
    /// process took the slot while the database was away; its frame, if any, was not kept) is
    /// re-read, as a lost claim is at once. Claims the writer refused (beyond its bound) end
    /// this run: the supervisor restarts it from the database's own view.
    async fn held_answered(
        &self,
        timers: &mut Timers,
        (keys, answer): HeldAnswer,
    ) -> anyhow::Result<()> {
        let won = answer.map_err(|e| e.context(format!("held claims of {} slots", keys.len())))?;
        let lost: Vec<String> = keys
            .into_iter()
            .zip(won)
            .filter(|(_, won)| !won)
            .map(|((id, _), _)| id)
            .collect();
        if !lost.is_empty() {
            tracing::info!(
                slots = lost.len(),
                "slots claimed during the database outage were taken by another process; their \
                 frames are not kept"
            );
        }
        for id in lost {
            self.refresh(timers, &id).await?;
        }
        Ok(())
    }

    /// A slot's task ended: its schedule may claim its next slot.
    fn finished(timers: &mut Timers, done: Result<String, tokio::task::JoinError>) {
        match done {
            Ok(id) => {
                if let Some(e) = timers.entries.get_mut(&id) {
                    e.running = false;
                    e.waiting = None;
                }
            }
            Err(e) => tracing::error!(error = %e, "a capture task failed"),
        }
    }

    async fn refresh(&self, timers: &mut Timers, id: &str) -> anyhow::Result<()> {
        match self.store.get(id).await? {
            Some(s) => timers.upsert(&s),
            None => timers.remove(id),
        }
        self.count_active(timers);
        Ok(())
    }

    /// Start a re-read on a task of its own: every enabled schedule (`since` = `None`), or every
    /// schedule changed since then.
    fn start_load(
        &self,
        loads: &mut JoinSet<Load>,
        timers: &mut Timers,
        since: Option<DateTime<Utc>>,
    ) {
        let store = self.store.clone();
        let stamp = timers.touch();
        loads.spawn(async move {
            match since {
                None => (Reread::Full, stamp, store.load_enabled().await),
                Some(since) => (Reread::Changed, stamp, store.load_changed(since).await),
            }
        });
    }

    /// Apply a finished re-read. A full one also drops the schedules it did not return (deleted
    /// or disabled elsewhere) unless this process changed them after it began; a partial one
    /// drops those it returns disabled. Deleted rows are not in a partial re-read: their next
    /// claim fails and the re-read of that one schedule drops them.
    fn apply_load(timers: &mut Timers, (kind, stamp, loaded): Load) -> anyhow::Result<()> {
        let loaded = loaded?;
        for s in &loaded {
            timers.apply_read(s, stamp);
        }
        if let Reread::Full = kind {
            let seen: HashSet<&str> = loaded.iter().map(|s| s.id.as_str()).collect();
            let gone: Vec<String> = timers
                .entries
                .iter()
                .filter(|(id, e)| e.touched <= stamp && !seen.contains(id.as_str()))
                .map(|(id, _)| id.clone())
                .collect();
            // Gone from a full re-read: deleted or disabled through another process, or its
            // camera is now another node's. A slot it already claimed still fires (no one else
            // can claim it); only a change made through this process cancels one.
            for id in gone {
                timers.take(&id);
            }
        }
        Ok(())
    }

    fn count_active(&self, timers: &Timers) {
        self.metrics
            .schedules_active
            .set(timers.entries.len() as i64);
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
        // A plain interval keeps its phase, at most one interval ahead; a calendar's next slot
        // is derived afresh from the plan (a window's opening may lie days ahead, rightly), and
        // only moves earlier: after a step forward a due slot fires once, as an interval's does.
        let aligned = match (&e.plan.timing, e.plan.window == slots::Window::ALWAYS) {
            (slots::Timing::Interval(i), true) => slots::realign(e.next_due, *i, now),
            _ => slots::rederive(&e.plan, e.next_due, now)
                .filter(|r| *r < e.next_due)
                .unwrap_or(e.next_due),
        };
        if aligned != e.next_due {
            if self.store.claim(id, e.next_due, Some(aligned)).await? {
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
