//! Local wall-clock time → an instant, in one IANA time zone, with Heldar's two DST rules
//! (docs/schedules.md): a local time that happens twice (the repeated hour when clocks go back)
//! is taken at its **first** occurrence; a local time that does not happen (the skipped hour when
//! clocks go forward) is taken at the **first instant after the gap**. Pure: no clock, no I/O;
//! it cannot fail (every local time maps to exactly one instant).

use chrono::{DateTime, Duration, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// The instant of local wall-clock time `local` in `zone` (see the module docs for the repeated
/// and the skipped hour). Non-decreasing in `local`, which the slot searches rely on.
pub fn resolve(zone: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match zone.from_local_datetime(&local).earliest() {
        Some(t) => t.with_timezone(&Utc),
        None => gap_end(zone, local),
    }
}

/// The local date and time of an instant.
pub fn local_of(zone: Tz, t: DateTime<Utc>) -> NaiveDateTime {
    t.with_timezone(&zone).naive_local()
}

/// `local` lies in a gap: the first instant whose local time is at or after it (the gap's end).
/// UTC offsets lie within -12 h..=+14 h, so that instant lies within 15 h of `local` read as
/// UTC; local time rises with the instant there unless clocks also go back within those 30 h,
/// which no zone in the tz database does around a gap. Binary search to the second (offsets and
/// transitions are whole seconds).
fn gap_end(zone: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    let as_utc = local.and_utc();
    let (mut lo, mut hi) = (
        as_utc - Duration::hours(15), // local time here is before `local`
        as_utc + Duration::hours(15), // and here after it
    );
    while (hi - lo).num_seconds() > 1 {
        let mid = lo + Duration::seconds((hi - lo).num_seconds() / 2);
        if local_of(zone, mid) >= local {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn naive(y: i32, m: u32, d: u32, h: u32, min: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(h, min, 0)
            .unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn a_skipped_local_time_maps_to_the_end_of_the_gap() {
        // Berlin, 2026-03-29: 02:00 CET → 03:00 CEST at 01:00Z.
        let z = chrono_tz::Europe::Berlin;
        assert_eq!(
            resolve(z, naive(2026, 3, 29, 2, 0)),
            utc("2026-03-29T01:00:00Z")
        );
        assert_eq!(
            resolve(z, naive(2026, 3, 29, 2, 59)),
            utc("2026-03-29T01:00:00Z")
        );
        assert_eq!(
            resolve(z, naive(2026, 3, 29, 3, 0)),
            utc("2026-03-29T01:00:00Z")
        );
        assert_eq!(
            resolve(z, naive(2026, 3, 29, 1, 59)),
            utc("2026-03-29T00:59:00Z")
        );
        // Lord Howe moves by 30 minutes: 2026-10-04 02:00 → 02:30 (+10:30 → +11) at 15:30Z.
        let z = chrono_tz::Australia::Lord_Howe;
        assert_eq!(
            resolve(z, naive(2026, 10, 4, 2, 15)),
            utc("2026-10-03T15:30:00Z")
        );
    }

    #[test]
    fn a_repeated_local_time_maps_to_its_first_occurrence() {
        // Berlin, 2026-10-25: 03:00 CEST → 02:00 CET at 01:00Z; 02:30 happens at 00:30Z and 01:30Z.
        let z = chrono_tz::Europe::Berlin;
        assert_eq!(
            resolve(z, naive(2026, 10, 25, 2, 30)),
            utc("2026-10-25T00:30:00Z")
        );
        assert_eq!(
            resolve(z, naive(2026, 10, 25, 3, 0)),
            utc("2026-10-25T02:00:00Z")
        );
    }
}
