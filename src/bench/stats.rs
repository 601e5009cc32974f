//! The benchmark's counting, pure so it can be tested: which slots were due, which were
//! captured, and how late each capture started.

use chrono::{DateTime, Utc};

/// One schedule as the bench set it up.
#[derive(Debug, Clone)]
pub struct Planned {
    pub first_slot: DateTime<Utc>,
    pub interval_ms: i64,
}

/// Slots of `p` with slot time in `[from, until]`.
pub fn slots_due(p: &Planned, from: DateTime<Utc>, until: DateTime<Utc>) -> u64 {
    let first = first_slot_at_or_after(p, from);
    if first > until {
        return 0;
    }
    ((until - first).num_milliseconds() / p.interval_ms + 1) as u64
}

fn first_slot_at_or_after(p: &Planned, t: DateTime<Utc>) -> DateTime<Utc> {
    let behind = (t - p.first_slot).num_milliseconds();
    if behind <= 0 {
        return p.first_slot;
    }
    let k = (behind + p.interval_ms - 1) / p.interval_ms;
    p.first_slot + chrono::Duration::milliseconds(k * p.interval_ms)
}

/// The slot a capture taken at `taken_at` belongs to, and the lateness in milliseconds
/// (`taken_at − slot`). A frame belongs to the latest slot not after it — or to the next slot
/// when it was taken at most [`EARLY`] (and a quarter interval) before it: a warm RTSP session
/// serves a slot with the newest frame at the slot, taken a few milliseconds before it.
pub fn slot_of(p: &Planned, taken_at: DateTime<Utc>) -> (DateTime<Utc>, f64) {
    let since = (taken_at - p.first_slot)
        .num_microseconds()
        .unwrap_or(i64::MAX);
    let step = p.interval_ms * 1000;
    let early = (EARLY.num_microseconds().unwrap_or(0)).min(step / 4);
    let k = (since + early).div_euclid(step);
    let slot = p.first_slot + chrono::Duration::microseconds(k * step);
    (
        slot,
        (taken_at - slot).num_microseconds().unwrap_or(0) as f64 / 1000.0,
    )
}

/// How long before its slot a frame may be taken and still be the slot's.
pub const EARLY: chrono::Duration = chrono::Duration::seconds(1);

/// p-th percentile (0..=100) by nearest rank of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_800_000_000_000 + ms).unwrap()
    }

    #[test]
    fn slots_due_counts_each_slot_in_the_window_once() {
        let p = Planned {
            first_slot: t(500),
            interval_ms: 1000,
        };
        assert_eq!(slots_due(&p, t(0), t(499)), 0);
        assert_eq!(slots_due(&p, t(0), t(500)), 1);
        assert_eq!(slots_due(&p, t(0), t(10_499)), 10);
        assert_eq!(slots_due(&p, t(0), t(10_500)), 11);
        assert_eq!(slots_due(&p, t(1_000), t(10_500)), 10);
        assert_eq!(slots_due(&p, t(1_500), t(1_500)), 1);
    }

    #[test]
    fn a_capture_belongs_to_the_latest_slot_before_it() {
        let p = Planned {
            first_slot: t(500),
            interval_ms: 1000,
        };
        assert_eq!(slot_of(&p, t(500)), (t(500), 0.0));
        assert_eq!(slot_of(&p, t(2_512)), (t(2_500), 12.0));
        assert_eq!(slot_of(&p, t(2_200)), (t(1_500), 700.0));
        // A frame taken just before its slot (a warm session's newest frame at the slot).
        assert_eq!(slot_of(&p, t(2_470)), (t(2_500), -30.0));
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
    }
}
