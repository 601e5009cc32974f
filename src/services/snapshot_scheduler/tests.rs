//! The scheduler under a paused tokio clock with an in-memory store: slot arithmetic proven
//! exactly, without sleeping in real time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::clock::SimulatedClock;
use crate::ops::scheduler::SchedulerHandle;

#[derive(Default)]
struct MemStore {
    map: Mutex<HashMap<String, Schedule>>,
    full_reads: std::sync::atomic::AtomicU64,
    changed_reads: std::sync::atomic::AtomicU64,
    /// Sizes of the claim batches, in order.
    batches: Mutex<Vec<usize>>,
    /// Claims that found the slot already moved.
    lost_claims: std::sync::atomic::AtomicU64,
    /// How long a full read takes (in tokio's paused time).
    full_read_takes: Mutex<Duration>,
}

impl MemStore {
    fn put(&self, s: Schedule) {
        self.map.lock().unwrap().insert(s.id.clone(), s);
    }
    fn edit(&self, id: &str, f: impl FnOnce(&mut Schedule)) {
        f(self.map.lock().unwrap().get_mut(id).unwrap());
    }
}

impl ScheduleStore for MemStore {
    fn load_enabled(&self) -> BoxFuture<'_, anyhow::Result<Vec<Schedule>>> {
        self.full_reads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let v = self
            .map
            .lock()
            .unwrap()
            .values()
            .filter(|s| s.enabled)
            .cloned()
            .collect();
        // The rows are read at once; delivering them takes the time (like a big result set).
        let takes = *self.full_read_takes.lock().unwrap();
        Box::pin(async move {
            tokio::time::sleep(takes).await;
            Ok(v)
        })
    }
    fn load_changed(&self, since: DateTime<Utc>) -> BoxFuture<'_, anyhow::Result<Vec<Schedule>>> {
        self.changed_reads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let v = self
            .map
            .lock()
            .unwrap()
            .values()
            .filter(|s| s.updated_at >= since)
            .cloned()
            .collect();
        Box::pin(async move { Ok(v) })
    }
    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, anyhow::Result<Option<Schedule>>> {
        let v = self.map.lock().unwrap().get(id).cloned();
        Box::pin(async move { Ok(v) })
    }
    fn claim<'a>(
        &'a self,
        id: &'a str,
        slot: DateTime<Utc>,
        next: Option<DateTime<Utc>>,
    ) -> BoxFuture<'a, anyhow::Result<bool>> {
        let mut m = self.map.lock().unwrap();
        let ok = match m.get_mut(id) {
            Some(s) if s.enabled && s.next_due_at == Some(slot) => {
                s.next_due_at = next;
                true
            }
            _ => false,
        };
        if !ok {
            self.lost_claims
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Box::pin(async move { Ok(ok) })
    }
    fn claim_many(&self, claims: Vec<Claim>) -> BoxFuture<'_, anyhow::Result<Vec<bool>>> {
        self.batches.lock().unwrap().push(claims.len());
        Box::pin(async move {
            let mut won = Vec::new();
            for c in &claims {
                won.push(self.claim(&c.id, c.slot, c.next).await?);
            }
            Ok(won)
        })
    }
}

/// (schedule, slot, wall time at fire) of every fire.
type Fires = Arc<Mutex<Vec<(String, DateTime<Utc>, DateTime<Utc>)>>>;

/// Records every fire: (schedule, slot, wall time at fire); each fire takes `busy`.
struct Recorder {
    clock: Arc<SimulatedClock>,
    fires: Fires,
    busy: Duration,
}

impl SlotRunner for Recorder {
    fn run(&self, job: Job) -> BoxFuture<'static, ()> {
        self.fires
            .lock()
            .unwrap()
            .push((job.schedule_id, job.slot, self.clock.now()));
        let busy = self.busy;
        Box::pin(async move { tokio::time::sleep(busy).await })
    }
}

struct Harness {
    clock: Arc<SimulatedClock>,
    store: Arc<MemStore>,
    fires: Fires,
    metrics: Arc<Metrics>,
    handle: SchedulerHandle,
    token: CancellationToken,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    t0: DateTime<Utc>,
}

fn schedule(id: &str, interval: i64, next_due: DateTime<Utc>) -> Schedule {
    Schedule::every(
        id.into(),
        CameraId::parse("cam").unwrap(),
        interval,
        next_due,
        next_due,
    )
}

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-06-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

impl Harness {
    fn new(busy: Duration) -> Harness {
        Harness::with_store(
            Arc::new(MemStore::default()),
            busy,
            Arc::new(SimulatedClock::new(t0())),
        )
    }

    fn with_store(store: Arc<MemStore>, busy: Duration, clock: Arc<SimulatedClock>) -> Harness {
        let fires = Arc::new(Mutex::new(Vec::new()));
        let metrics = Arc::new(Metrics::new());
        let (handle, commands) = SchedulerHandle::channel();
        let sched = Scheduler {
            clock: clock.clone(),
            store: store.clone(),
            runner: Arc::new(Recorder {
                clock: clock.clone(),
                fires: fires.clone(),
                busy,
            }),
            metrics: metrics.clone(),
            commands,
            rescan: Duration::from_secs(60),
            grace: Duration::from_secs(5),
            claim_ahead: CLAIM_AHEAD,
        };
        let token = CancellationToken::new();
        let t = token.clone();
        let task = Some(tokio::spawn(async move { sched.run(t).await }));
        Harness {
            t0: clock.now(),
            clock,
            store,
            fires,
            metrics,
            handle,
            token,
            task,
        }
    }

    /// Job times, in seconds after t0 (exact milliseconds as fractions).
    fn fire_secs(&self, id: &str) -> Vec<f64> {
        self.fires
            .lock()
            .unwrap()
            .iter()
            .filter(|(s, _, _)| s == id)
            .map(|(_, _, at)| (*at - self.t0).num_milliseconds() as f64 / 1000.0)
            .collect()
    }

    async fn stop(mut self) {
        self.token.cancel();
        self.task.take().unwrap().await.unwrap().unwrap();
    }
}

async fn advance(secs: u64) {
    tokio::time::sleep(Duration::from_secs(secs)).await;
}

#[tokio::test(start_paused = true)]
async fn a_new_schedule_fires_at_once_then_at_exact_slots() {
    let h = Harness::new(Duration::from_millis(10));
    advance(1).await;
    h.store.put(schedule("s", 60, h.clock.now()));
    h.handle.refresh("s");
    advance(60 * 5 + 1).await;
    assert_eq!(
        h.fire_secs("s"),
        vec![1.0, 61.0, 121.0, 181.0, 241.0, 301.0]
    );
    // Every fire started exactly at its slot.
    for (_, slot, at) in h.fires.lock().unwrap().iter() {
        assert_eq!(slot, at);
    }
    assert_eq!(h.metrics.missed_slots.get(), 0);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn an_interval_change_reaches_the_scheduler_at_once() {
    let h = Harness::new(Duration::ZERO);
    h.store.put(schedule("s", 60, h.t0));
    h.handle.refresh("s");
    advance(130).await; // fired at 0, 60, 120
    let now = h.clock.now();
    // What the API does: new interval, due at last_fired + interval (here: 120 + 10 = 130 → now).
    h.store.edit("s", |s| {
        s.interval_seconds = 10;
        s.last_fired_at = Some(h.t0 + chrono::Duration::seconds(120));
        s.next_due_at = Some(slots::first_due(
            s.last_fired_at,
            chrono::Duration::seconds(10),
            now,
        ));
    });
    h.handle.refresh("s");
    advance(31).await;
    assert_eq!(
        h.fire_secs("s"),
        vec![0.0, 60.0, 120.0, 130.0, 140.0, 150.0, 160.0]
    );
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn disable_stops_firing_and_enable_resumes_by_the_kernel_rule() {
    let h = Harness::new(Duration::ZERO);
    h.store.put(schedule("s", 60, h.t0));
    h.handle.refresh("s");
    advance(61).await; // 0, 60
    h.store.edit("s", |s| s.enabled = false);
    h.handle.refresh("s");
    advance(600).await;
    assert_eq!(h.fire_secs("s"), vec![0.0, 60.0]);
    let now = h.clock.now();
    h.store.edit("s", |s| {
        s.enabled = true;
        s.last_fired_at = Some(h.t0 + chrono::Duration::seconds(60));
        s.next_due_at = Some(slots::first_due(
            s.last_fired_at,
            chrono::Duration::seconds(60),
            now,
        ));
    });
    h.handle.refresh("s");
    advance(61).await;
    assert_eq!(h.fire_secs("s"), vec![0.0, 60.0, 661.0, 721.0]);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn after_downtime_it_fires_once_and_jumps_to_the_next_future_slot() {
    // Down for ten minutes: the schedule's next slot was 600 s ago.
    let store = Arc::new(MemStore::default());
    let clock = Arc::new(SimulatedClock::new(t0()));
    store.put(schedule("s", 60, t0() - chrono::Duration::seconds(600)));
    let h = Harness::with_store(store, Duration::ZERO, clock);
    advance(125).await;
    // One catch-up capture at start-up, then the old phase: 60, 120.
    assert_eq!(h.fire_secs("s"), vec![0.0, 60.0, 120.0]);
    assert_eq!(h.metrics.missed_slots.get(), 10);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_capture_still_running_at_its_next_slot_makes_that_slot_missed_not_queued() {
    let h = Harness::new(Duration::from_secs(150));
    h.store.put(schedule("s", 60, h.t0));
    h.handle.refresh("s");
    advance(400).await;
    // Busy 0–150: slots 60 and 120 missed; 180 fires; busy 180–330: 240, 300 missed; 360 fires.
    assert_eq!(h.fire_secs("s"), vec![0.0, 180.0, 360.0]);
    assert_eq!(h.metrics.missed_slots.get(), 4);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn ten_thousand_slots_without_drift_and_phases_kept_apart() {
    let h = Harness::new(Duration::from_millis(1500));
    h.store.put(schedule("a", 5, h.t0));
    h.store.put(schedule(
        "b",
        5,
        h.t0 + chrono::Duration::milliseconds(2500),
    ));
    h.handle.refresh_all();
    advance(5 * 10_000).await;
    for (id, phase) in [("a", 0.0), ("b", 2.5)] {
        let fires = h.fire_secs(id);
        assert!(fires.len() >= 10_000, "{id}: {}", fires.len());
        for (k, at) in fires.iter().enumerate().take(10_000) {
            assert_eq!(*at, phase + 5.0 * k as f64, "{id} slot {k}");
        }
    }
    assert_eq!(h.metrics.missed_slots.get(), 0);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn two_schedulers_on_one_store_fire_each_slot_exactly_once() {
    let store = Arc::new(MemStore::default());
    let clock = Arc::new(SimulatedClock::new(t0()));
    for i in 0..20 {
        store.put(schedule(
            &format!("s{i}"),
            5,
            t0() + chrono::Duration::milliseconds(i * 250),
        ));
    }
    let a = Harness::with_store(store.clone(), Duration::from_millis(5), clock.clone());
    let b = Harness::with_store(store.clone(), Duration::from_millis(5), clock.clone());
    let end_ms = 505_900i64;
    tokio::time::sleep(Duration::from_millis(end_ms as u64)).await;
    let mut all: Vec<(String, DateTime<Utc>)> = a
        .fires
        .lock()
        .unwrap()
        .iter()
        .chain(b.fires.lock().unwrap().iter())
        .map(|(id, slot, _)| (id.clone(), *slot))
        .collect();
    let total = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), total, "a slot was captured twice");
    // Every slot of every schedule up to the end, fired by one of them.
    let due: i64 = (0..20).map(|i| (end_ms - i * 250) / 5000 + 1).sum();
    assert_eq!(total as i64, due);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(start_paused = true)]
async fn wall_clock_steps_are_harmless() {
    let h = Harness::new(Duration::ZERO);
    h.store.put(schedule("s", 60, h.t0));
    h.handle.refresh("s");
    advance(61).await; // 0, 60
    let fires = |h: &Harness| -> Vec<DateTime<Utc>> {
        h.fires
            .lock()
            .unwrap()
            .iter()
            .map(|(_, _, at)| *at)
            .collect()
    };
    // NTP steps the clock back an hour. The scheduler notices at its next wake-up (a second
    // before the slot, to claim it) and pulls the slot back by whole hours, keeping its phase
    // (:00): the first :00 after the step still fires, with no hour-long stall.
    h.clock.jump(chrono::Duration::hours(-1));
    advance(120).await;
    let f = fires(&h);
    assert_eq!(f.len(), 4, "{f:?}");
    assert_eq!(f[2], h.t0 + chrono::Duration::seconds(120 - 3600));
    assert_eq!(f[3], h.t0 + chrono::Duration::seconds(180 - 3600));
    // …and forward two hours: one catch-up capture, then the regular phase, no burst.
    h.clock.jump(chrono::Duration::hours(2));
    let before = h.metrics.missed_slots.get();
    advance(121).await;
    let after: Vec<_> = fires(&h).split_off(4);
    assert!(
        h.metrics.missed_slots.get() >= before + 100,
        "the skipped hours are counted as missed"
    );
    // Noticed at the wake-up a second before the old slot: the catch-up fires then, and the
    // regular slots follow at :00, a minute apart.
    assert_eq!(after.len(), 3, "{after:?}");
    assert_eq!(after[0].timestamp() % 60, 59, "{after:?}");
    assert_eq!(after[1].timestamp() % 60, 0, "{after:?}");
    assert_eq!((after[2] - after[1]).num_seconds(), 60, "{after:?}");
    h.stop().await;
}

/// Edits that bypass this scheduler (another process writing the same database) arrive through
/// the periodic re-read, which asks only for rows changed since its last look; a full reload
/// happens only every tenth re-read.
#[tokio::test(start_paused = true)]
async fn periodic_rereads_are_incremental_and_still_see_other_writers() {
    use std::sync::atomic::Ordering::Relaxed;
    let h = Harness::new(Duration::ZERO);
    advance(1).await;
    let fires_of = |id: &str| h.fires.lock().unwrap().iter().filter(|f| f.0 == id).count();

    // Another process adds a schedule: no command reaches us, the next re-read picks it up.
    let added_at = h.clock.now();
    h.store.put(Schedule {
        updated_at: added_at,
        ..schedule("other", 10, added_at)
    });
    advance(59).await;
    assert_eq!(fires_of("other"), 0, "seen before any re-read");
    advance(2).await;
    assert!(
        fires_of("other") >= 1,
        "the first re-read missed a new schedule"
    );

    // Another process disables it: the next re-read drops it.
    let now = h.clock.now();
    h.store.edit("other", |s| {
        s.enabled = false;
        s.updated_at = now;
    });
    advance(60).await;
    let after_disable = fires_of("other");
    advance(120).await;
    assert_eq!(
        fires_of("other"),
        after_disable,
        "a disabled schedule kept firing"
    );

    // Nine re-reads so far were incremental; the tenth reloads everything.
    let full_before = h.store.full_reads.load(Relaxed);
    assert_eq!(full_before, 1, "only the start-up load was a full one");
    assert!(h.store.changed_reads.load(Relaxed) >= 3);
    advance(60 * 7).await;
    assert_eq!(h.store.full_reads.load(Relaxed), 2);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn slots_due_within_a_second_are_claimed_in_one_batch_and_fire_on_time() {
    let store = Arc::new(MemStore::default());
    let clock = Arc::new(SimulatedClock::new(t0()));
    // Ten schedules 50 ms apart, from 10 s on.
    for i in 0..10 {
        store.put(schedule(
            &format!("s{i}"),
            3600,
            t0() + chrono::Duration::milliseconds(10_000 + 50 * i),
        ));
    }
    let h = Harness::with_store(store, Duration::ZERO, clock);
    advance(12).await;
    assert_eq!(*h.store.batches.lock().unwrap(), vec![10]);
    for (id, slot, at) in h.fires.lock().unwrap().iter() {
        assert_eq!(slot, at, "{id} fired off its slot");
    }
    assert_eq!(h.fires.lock().unwrap().len(), 10);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_schedule_disabled_after_its_slot_was_claimed_does_not_fire_it() {
    let h = Harness::new(Duration::ZERO);
    h.store
        .put(schedule("s", 60, h.t0 + chrono::Duration::seconds(10)));
    h.handle.refresh("s");
    // 9.7 s: the slot at 10 s is claimed (at 9.5 s) and waiting for its time.
    tokio::time::sleep(Duration::from_millis(9_700)).await;
    assert_eq!(*h.store.batches.lock().unwrap(), vec![1]);
    h.store.edit("s", |s| s.enabled = false);
    h.handle.refresh("s");
    advance(120).await;
    assert!(h.fire_secs("s").is_empty(), "{:?}", h.fire_secs("s"));
    h.stop().await;
}

/// Re-read requests sent before the scheduler's first read (the node taking its cameras at
/// start-up asks for one) are answered by that read: every schedule is read once, not twice.
#[tokio::test(start_paused = true)]
async fn requests_queued_before_the_first_read_do_not_read_everything_again() {
    let h = Harness::new(Duration::ZERO);
    h.store
        .put(schedule("s", 5, h.t0 + chrono::Duration::seconds(5)));
    // Sent before the scheduler's task has run at all.
    h.handle.refresh_all();
    h.handle.refresh("s");
    h.handle.refresh_all();
    advance(12).await;
    assert_eq!(h.fire_secs("s"), vec![5.0, 10.0]);
    assert_eq!(
        h.store
            .full_reads
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    // One sent once it runs is still answered with a read of its own.
    h.handle.refresh_all();
    advance(1).await;
    assert_eq!(
        h.store
            .full_reads
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_slow_reread_neither_delays_firing_nor_rewinds_claimed_slots() {
    let h = Harness::new(Duration::ZERO);
    h.store
        .put(schedule("s", 1, h.t0 + chrono::Duration::seconds(1)));
    h.handle.refresh("s");
    advance(5).await;
    // A full re-read that takes 5 s: its rows show slot 5 s, which this scheduler claims and
    // fires while the read is on its way.
    *h.store.full_read_takes.lock().unwrap() = Duration::from_secs(5);
    h.handle.refresh_all();
    tokio::time::sleep(Duration::from_millis(15_500)).await;
    let fires = h.fire_secs("s");
    let expected: Vec<f64> = (1..=20).map(f64::from).collect();
    assert_eq!(fires, expected);
    assert_eq!(
        h.store
            .full_reads
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    assert_eq!(
        h.store
            .lost_claims
            .load(std::sync::atomic::Ordering::Relaxed),
        0,
        "the stale read rewound a slot, so a claim was tried twice"
    );
    h.stop().await;
}

/// A calendar schedule (every 5 min on the clock, 00:00–00:30 UTC): after the wall clock steps
/// forward past its window's close, it fires once, counts as missed only the slots inside the
/// window, and waits for tomorrow's opening.
#[tokio::test(start_paused = true)]
async fn a_window_schedule_counts_missed_slots_only_inside_its_window() {
    let h = Harness::new(Duration::ZERO);
    h.store.put(Schedule {
        align: true,
        active_from: Some("00:00".into()),
        active_to: Some("00:30".into()),
        ..schedule("w", 300, h.t0)
    });
    h.handle.refresh("w");
    advance(10).await;
    assert_eq!(h.fire_secs("w"), vec![0.0]);
    h.clock.jump(chrono::Duration::minutes(50));
    advance(300).await;
    let slots: Vec<DateTime<Utc>> = h.fires.lock().unwrap().iter().map(|f| f.1).collect();
    assert_eq!(slots, vec![h.t0, h.t0 + chrono::Duration::minutes(5)]);
    // 00:10, 00:15, 00:20, 00:25 were missed; 00:30–00:55 lie outside the window.
    assert_eq!(h.metrics.missed_slots.get(), 4);
    let next = h.store.map.lock().unwrap()["w"].next_due_at;
    assert_eq!(next, Some(h.t0 + chrono::Duration::days(1)));
    h.stop().await;
}

/// A fixed-times schedule whose wall clock steps back two hours: its next slot is derived
/// afresh from the plan (a fixed time), not pulled back by whole intervals as an interval
/// schedule's is (which would put a frame at some :x5 minute).
#[tokio::test(start_paused = true)]
async fn a_calendar_schedule_is_rederived_after_a_step_back() {
    let h = Harness::new(Duration::ZERO);
    h.store.put(Schedule {
        at: Some(vec!["00:00".into(), "12:00".into()]),
        ..schedule("f", 300, h.t0)
    });
    h.handle.refresh("f");
    advance(10).await;
    h.clock.jump(chrono::Duration::hours(-2));
    advance(3 * 3600).await;
    let fires = h.fires.lock().unwrap().clone();
    // t0 (00:00) fired, then, the clock two hours back, the next fixed time is 00:00 again.
    assert_eq!(fires.len(), 2, "{fires:?}");
    for (_, slot, _) in &fires {
        assert_eq!(*slot, h.t0, "{fires:?}");
    }
    let next = h.store.map.lock().unwrap()["f"].next_due_at;
    assert_eq!(next, Some(h.t0 + chrono::Duration::hours(12)));
    h.stop().await;
}
