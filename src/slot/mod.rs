//! Slot arithmetic (docs/design.md §7), pure: no clock, no I/O, so every rule is a plain function of
//! its inputs. Used by the scheduler to advance and realign slots, and by `ops::schedules` to
//! place a new or changed schedule's first slot. The calendar rules (aligned slots, fixed
//! times, windows, daylight, DST) are in [`plan`]; [`local`] maps local time to instants and
//! [`sun`] gives sunrise and sunset.

pub mod local;
pub mod plan;
#[cfg(test)]
mod plan_tests;
pub mod spec;
pub mod sun;

pub use plan::{Daily, Plan, Timing, Weekdays, Window};

use chrono::{DateTime, Duration, Utc};

/// After firing `slot`, the next slot is `slot + k·interval` for the smallest `k ≥ 1` that lies
/// in the future (`> now`). Returns it and how many slots in between were skipped (`k - 1`):
/// downtime or an overrun costs those slots, never a burst of catch-up captures.
pub fn advance(
    slot: DateTime<Utc>,
    interval: Duration,
    now: DateTime<Utc>,
) -> (DateTime<Utc>, u64) {
    let step = interval.num_milliseconds().max(1);
    let behind = (now - slot).num_milliseconds();
    // k = floor(behind / step) + 1, at least 1.
    let k = if behind < 0 { 1 } else { behind / step + 1 };
    (slot + Duration::milliseconds(step * k), (k - 1) as u64)
}

/// A slot more than one interval ahead can only come from the wall clock stepping back (or the
/// interval shrinking): pull it back by whole intervals, keeping its phase, so it lies in
/// `(now, now + interval]`. Other slots are returned unchanged.
pub fn realign(next_due: DateTime<Utc>, interval: Duration, now: DateTime<Utc>) -> DateTime<Utc> {
    let step = interval.num_milliseconds().max(1);
    let ahead = (next_due - now).num_milliseconds();
    if ahead <= step {
        return next_due;
    }
    // Largest k with next_due - k·step > now.
    let k = (ahead - 1) / step;
    next_due - Duration::milliseconds(step * k)
}

/// When a schedule created, re-enabled or given a new interval is next due: at once if it never
/// fired or its interval has passed since the last capture (the Heldar kernel's rule:
/// due when `last_fired_at + interval <= now`), else at `last_fired_at + interval`.
pub fn first_due(
    last_fired_at: Option<DateTime<Utc>>,
    interval: Duration,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    match last_fired_at {
        Some(last) if last + interval > now => last + interval,
        _ => now,
    }
}

/// The first slot of a schedule with plan `plan`, created, re-enabled or changed at `now`: for a
/// plain interval the kernel's rule ([`first_due`]) inside the plan's windows (the opening of
/// the next window when `now` is outside); for aligned and fixed times the first slot at or
/// after `now` — not "at once", which would put a frame off the clock. `None`: no window
/// within [`plan::HORIZON_DAYS`].
pub fn first_slot(
    plan: &Plan,
    last_fired_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let before = now - Duration::milliseconds(1);
    match plan.timing {
        Timing::Interval(i) => {
            // An anchor one interval back makes `now` itself the candidate.
            let anchor = match last_fired_at {
                Some(last) if last + i > now && last <= now => last,
                _ => now - i,
            };
            plan.next_slot(anchor, before)
        }
        _ => plan.next_slot(before, before),
    }
}

/// A slot for a schedule whose wall clock stepped back to `now`: the first slot after `now`
/// (plain intervals keep their phase from `next_due`). Used for calendar schedules in place of
/// [`realign`], whose "at most one interval ahead" does not hold for windows and fixed times.
pub fn rederive(plan: &Plan, next_due: DateTime<Utc>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    plan.next_slot(next_due, now - Duration::milliseconds(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    #[test]
    fn on_time_advances_by_exactly_one_interval() {
        assert_eq!(advance(t(0), Duration::seconds(60), t(0)), (t(60), 0));
        assert_eq!(advance(t(0), Duration::seconds(60), t(59)), (t(60), 0));
    }

    #[test]
    fn late_by_several_intervals_skips_to_the_next_future_slot_keeping_the_phase() {
        assert_eq!(advance(t(0), Duration::seconds(60), t(60)), (t(120), 1));
        assert_eq!(advance(t(0), Duration::seconds(60), t(3601)), (t(3660), 60));
    }

    #[test]
    fn realign_only_touches_slots_more_than_an_interval_ahead() {
        let i = Duration::seconds(60);
        assert_eq!(realign(t(30), i, t(0)), t(30));
        assert_eq!(realign(t(60), i, t(0)), t(60));
        // The clock stepped back an hour: the slot keeps its phase (:30) but is at most 60 s away.
        assert_eq!(realign(t(3630), i, t(0)), t(30));
        assert_eq!(realign(t(3600), i, t(0)), t(60));
    }

    #[test]
    fn first_slot_of_a_plain_plan_is_the_kernel_rule() {
        let i = Duration::seconds(300);
        let p = Plan::interval(i);
        for last in [None, Some(t(-100)), Some(t(-300)), Some(t(-301))] {
            assert_eq!(first_slot(&p, last, t(0)), Some(first_due(last, i, t(0))));
        }
    }

    #[test]
    fn first_slot_of_an_aligned_plan_is_on_the_clock_not_at_once() {
        let p = Plan {
            timing: Timing::Aligned(300),
            ..Plan::interval(Duration::seconds(300))
        };
        // t(0) is 1_800_000_000 s, a multiple of 300: due at once; a second later, the next.
        assert_eq!(first_slot(&p, None, t(0)), Some(t(0)));
        assert_eq!(first_slot(&p, None, t(1)), Some(t(300)));
    }

    #[test]
    fn first_due_follows_the_kernel_rule() {
        let i = Duration::seconds(300);
        assert_eq!(first_due(None, i, t(0)), t(0));
        assert_eq!(first_due(Some(t(-100)), i, t(0)), t(200));
        assert_eq!(first_due(Some(t(-300)), i, t(0)), t(0));
    }
}
