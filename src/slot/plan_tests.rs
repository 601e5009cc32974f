//! The calendar rules of `slot::plan` under DST, windows, leap days and polar days. Zones: Europe/
//! Berlin and America/New_York (whole-hour DST), Australia/Adelaide (a 30-minute offset with an
//! hour of DST), Australia/Lord_Howe (a 30-minute DST shift) and Asia/Kathmandu (+05:45, none).

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};
use chrono_tz::Tz;

use super::local::{local_of, resolve};
use super::plan::{Daily, Plan, Timing, Weekdays, Window};

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn hm(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).unwrap()
}

fn aligned(zone: Tz, every: i64) -> Plan {
    Plan {
        zone,
        timing: Timing::Aligned(every),
        window: Window::ALWAYS,
    }
}

fn at(zone: Tz, times: &[NaiveTime]) -> Plan {
    Plan {
        zone,
        timing: Timing::At(times.to_vec()),
        window: Window::ALWAYS,
    }
}

fn next(p: &Plan, after: &str) -> DateTime<Utc> {
    let after = utc(after);
    p.next_slot(after, after).unwrap()
}

fn upcoming(p: &Plan, after: &str, n: usize) -> Vec<String> {
    let after = utc(after);
    p.upcoming(after, after, n)
        .into_iter()
        .map(|t| t.format("%Y-%m-%dT%H:%MZ").to_string())
        .collect()
}

use chrono_tz::America::New_York;
use chrono_tz::Asia::Kathmandu;
use chrono_tz::Australia::{Adelaide, Lord_Howe};
use chrono_tz::Europe::Berlin;

#[test]
fn aligned_slots_sit_on_local_multiples_of_the_interval() {
    // Berlin in January is UTC+1.
    assert_eq!(
        next(&aligned(Berlin, 300), "2026-01-15T09:02:30Z"),
        utc("2026-01-15T09:05:00Z")
    );
    assert_eq!(
        next(&aligned(Berlin, 300), "2026-01-15T09:05:00Z"),
        utc("2026-01-15T09:10:00Z")
    );
    assert_eq!(
        next(&aligned(Berlin, 3600), "2026-01-15T09:00:01Z"),
        utc("2026-01-15T10:00:00Z")
    );
    // Daily: local midnight.
    assert_eq!(
        next(&aligned(Berlin, 86_400), "2026-01-15T12:00:00Z"),
        utc("2026-01-15T23:00:00Z")
    );
    // Adelaide in January is UTC+10:30: its hours start at :30 UTC.
    assert_eq!(
        next(&aligned(Adelaide, 3600), "2026-01-15T00:00:00Z"),
        utc("2026-01-15T00:30:00Z")
    );
    // Kathmandu is UTC+05:45: local 12:00 is 06:15Z.
    assert_eq!(
        next(&aligned(Kathmandu, 3600), "2026-01-15T06:00:00Z"),
        utc("2026-01-15T06:15:00Z")
    );
    // An interval that does not divide a day restarts at local midnight, like cron's */7.
    let seven = aligned(Tz::UTC, 420);
    assert_eq!(
        next(&seven, "2026-01-15T23:50:00Z"),
        utc("2026-01-15T23:55:00Z")
    );
    assert_eq!(
        next(&seven, "2026-01-15T23:55:00Z"),
        utc("2026-01-16T00:00:00Z")
    );
}

#[test]
fn berlin_spring_forward_skips_the_missing_hour_without_losing_a_slot() {
    // 2026-03-29 01:00Z: 02:00 CET → 03:00 CEST. 02:00–02:55 do not exist; they collapse into
    // 03:00 CEST, itself a slot: frames stay 5 minutes apart in real time.
    assert_eq!(
        upcoming(&aligned(Berlin, 300), "2026-03-29T00:50:00Z", 4),
        [
            "2026-03-29T00:55Z",
            "2026-03-29T01:00Z",
            "2026-03-29T01:05Z",
            "2026-03-29T01:10Z"
        ]
    );
    // A fixed time inside the gap fires at the first instant after it, once.
    let p = at(Berlin, &[hm(2, 30), hm(12, 0)]);
    assert_eq!(
        upcoming(&p, "2026-03-28T12:00:00Z", 3),
        [
            "2026-03-29T01:00Z",
            "2026-03-29T10:00Z",
            "2026-03-30T00:30Z"
        ]
    );
}

#[test]
fn berlin_fall_back_takes_each_local_time_once_at_its_first_occurrence() {
    // 2026-10-25 01:00Z: 03:00 CEST → 02:00 CET. 02:00–02:55 happen twice; they fire in the
    // first pass (CEST) and not in the second, then 03:00 CET.
    assert_eq!(
        upcoming(&aligned(Berlin, 300), "2026-10-25T00:50:00Z", 3),
        [
            "2026-10-25T00:55Z",
            "2026-10-25T02:00Z",
            "2026-10-25T02:05Z"
        ]
    );
    // A fixed 02:30 fires once, in the first pass.
    let p = at(Berlin, &[hm(2, 30)]);
    assert_eq!(
        upcoming(&p, "2026-10-24T12:00:00Z", 2),
        ["2026-10-25T00:30Z", "2026-10-26T01:30Z"]
    );
    // Asked from inside the second pass, the next slot is the first local time after it.
    assert_eq!(
        next(&aligned(Berlin, 300), "2026-10-25T01:30:00Z"),
        utc("2026-10-25T02:00:00Z")
    );
}

#[test]
fn new_york_hourly_slots_across_both_transitions() {
    // 2026-03-08 07:00Z: 02:00 EST → 03:00 EDT. 02:00 does not exist and is 03:00 EDT.
    assert_eq!(
        upcoming(&aligned(New_York, 3600), "2026-03-08T06:30:00Z", 2),
        ["2026-03-08T07:00Z", "2026-03-08T08:00Z"]
    );
    // 2026-11-01 06:00Z: 02:00 EDT → 01:00 EST. 01:00 fires once (EDT), then 02:00 EST.
    assert_eq!(
        upcoming(&aligned(New_York, 3600), "2026-11-01T04:30:00Z", 2),
        ["2026-11-01T05:00Z", "2026-11-01T07:00Z"]
    );
    // Daily at local midnight keeps to local midnight on both sides.
    assert_eq!(
        upcoming(&aligned(New_York, 86_400), "2026-03-07T12:00:00Z", 2),
        ["2026-03-08T05:00Z", "2026-03-09T04:00Z"]
    );
}

#[test]
fn lord_howe_half_hour_shifts() {
    // 2026-10-04 15:30Z (Oct 3): 02:00 +10:30 → 02:30 +11. The 02:00 slot fires at 02:30.
    assert_eq!(
        upcoming(&aligned(Lord_Howe, 1800), "2026-10-03T15:00:00Z", 2),
        ["2026-10-03T15:30Z", "2026-10-03T16:00Z"]
    );
    // 2026-04-05 15:00Z (Apr 4): 02:00 +11 → 01:30 +10:30. 01:30 and 01:45 fire once (+11),
    // then 02:00 +10:30.
    assert_eq!(
        upcoming(&aligned(Lord_Howe, 900), "2026-04-04T14:20:00Z", 3),
        [
            "2026-04-04T14:30Z",
            "2026-04-04T14:45Z",
            "2026-04-04T15:30Z"
        ]
    );
}

/// Every slot of `plan` on local dates `days`, by brute force: each local time the timing names,
/// resolved, in order, without repeats.
fn brute_force(zone: Tz, times: &[NaiveTime], days: &[NaiveDate]) -> Vec<DateTime<Utc>> {
    let all: BTreeSet<DateTime<Utc>> = days
        .iter()
        .flat_map(|d| times.iter().map(move |t| resolve(zone, d.and_time(*t))))
        .collect();
    all.into_iter().collect()
}

#[test]
fn aligned_slots_match_brute_force_across_every_transition_studied() {
    // (zone, a local date with a transition)
    let cases = [
        (Berlin, "2026-03-29"),
        (Berlin, "2026-10-25"),
        (New_York, "2026-03-08"),
        (New_York, "2026-11-01"),
        (Adelaide, "2026-04-05"),
        (Adelaide, "2026-10-04"),
        (Lord_Howe, "2026-04-05"),
        (Lord_Howe, "2026-10-04"),
        (Kathmandu, "2026-06-01"),
    ];
    for (zone, day) in cases {
        let day: NaiveDate = day.parse().unwrap();
        let days: Vec<NaiveDate> = (-1..=1).map(|i| day + Duration::days(i)).collect();
        for every in [300i64, 900, 1800, 3600, 7200, 10_800, 86_400] {
            let times: Vec<NaiveTime> = (0..86_400 / every)
                .map(|k| {
                    NaiveTime::from_num_seconds_from_midnight_opt((k * every) as u32, 0).unwrap()
                })
                .collect();
            let want = brute_force(zone, &times, &days);
            let p = aligned(zone, every);
            // From just before the first slot, walk the plan.
            let start = want[0] - Duration::seconds(1);
            let got = p.upcoming(start, start, want.len());
            assert_eq!(got, want, "{zone} {day} every {every}s");
            // No local time twice, and every slot's local time is a multiple of the interval
            // unless it is the end of a gap.
            let locals: BTreeSet<NaiveDateTime> = got.iter().map(|t| local_of(zone, *t)).collect();
            assert_eq!(
                locals.len(),
                got.len(),
                "{zone} {day} every {every}s: a local time twice"
            );
            for t in &got {
                let l = local_of(zone, *t);
                let on_grid = i64::from(l.num_seconds_from_midnight()) % every == 0;
                let gap_end = local_of(zone, *t - Duration::seconds(1)) + Duration::seconds(1) != l;
                assert!(
                    on_grid || gap_end,
                    "{zone} every {every}s: {t} ({l}) is off the grid"
                );
            }
            // From any instant, the next slot is the first of the brute-force list after it.
            let mut probe = start;
            let end = *want.last().unwrap();
            while probe < end {
                let expect = want.iter().find(|t| **t > probe).copied().unwrap();
                assert_eq!(
                    p.next_slot(probe, probe),
                    Some(expect),
                    "{zone} every {every}s after {probe}"
                );
                probe += Duration::seconds(every.min(3600) / 3 + 7);
            }
        }
    }
}

#[test]
fn a_window_over_midnight_runs_from_its_opening_day_into_the_next() {
    let p = Plan {
        zone: Berlin,
        timing: Timing::Aligned(3600),
        window: Window {
            weekdays: Weekdays::ALL,
            daily: Daily::Hours {
                from: hm(22, 0),
                to: hm(6, 0),
            },
        },
    };
    // 13:00 local (January, UTC+1): idle until 22:00; 06:00 itself is outside ([from, to)).
    assert_eq!(
        upcoming(&p, "2026-01-15T12:00:00Z", 9),
        [
            "2026-01-15T21:00Z",
            "2026-01-15T22:00Z",
            "2026-01-15T23:00Z",
            "2026-01-16T00:00Z",
            "2026-01-16T01:00Z",
            "2026-01-16T02:00Z",
            "2026-01-16T03:00Z",
            "2026-01-16T04:00Z",
            "2026-01-16T21:00Z"
        ]
    );
    assert!(p.active_at(utc("2026-01-16T04:59:59Z")));
    assert!(!p.active_at(utc("2026-01-16T05:00:00Z")));

    // The same window on Fridays only: Friday night into Saturday morning, then next Friday.
    // 2026-01-16 is a Friday.
    let fri = Plan {
        window: Window {
            weekdays: Weekdays::parse(&["fri"]).unwrap(),
            daily: Daily::Hours {
                from: hm(22, 0),
                to: hm(2, 0),
            },
        },
        ..p.clone()
    };
    assert_eq!(
        upcoming(&fri, "2026-01-14T12:00:00Z", 5),
        [
            "2026-01-16T21:00Z",
            "2026-01-16T22:00Z",
            "2026-01-16T23:00Z",
            "2026-01-17T00:00Z",
            "2026-01-23T21:00Z"
        ]
    );
}

#[test]
fn a_plain_interval_starts_afresh_at_each_window_opening() {
    let p = Plan {
        zone: Tz::UTC,
        timing: Timing::Interval(Duration::seconds(7 * 60)),
        window: Window {
            weekdays: Weekdays::ALL,
            daily: Daily::Hours {
                from: hm(8, 0),
                to: hm(9, 0),
            },
        },
    };
    let anchor = utc("2026-01-15T08:49:00Z");
    assert_eq!(
        p.next_slot(anchor, anchor),
        Some(utc("2026-01-15T08:56:00Z"))
    );
    let anchor = utc("2026-01-15T08:56:00Z");
    // 09:03 is outside; the next window opens at 08:00 the next day, and that is the slot.
    assert_eq!(
        p.next_slot(anchor, anchor),
        Some(utc("2026-01-16T08:00:00Z"))
    );
}

#[test]
fn fixed_times_on_weekdays_across_a_leap_day() {
    // 2028-02-29 is a Tuesday; 2028-02-22 too.
    let p = Plan {
        zone: Tz::UTC,
        timing: Timing::At(vec![hm(6, 0), hm(18, 0)]),
        window: Window {
            weekdays: Weekdays::parse(&["tue"]).unwrap(),
            daily: Daily::Always,
        },
    };
    assert_eq!(
        upcoming(&p, "2028-02-22T12:00:00Z", 4),
        [
            "2028-02-22T18:00Z",
            "2028-02-29T06:00Z",
            "2028-02-29T18:00Z",
            "2028-03-07T06:00Z"
        ]
    );
    // Every day at noon in Berlin: Feb 28, 29, Mar 1.
    assert_eq!(
        upcoming(&at(Berlin, &[hm(12, 0)]), "2028-02-28T00:00:00Z", 3),
        [
            "2028-02-28T11:00Z",
            "2028-02-29T11:00Z",
            "2028-03-01T11:00Z"
        ]
    );
    // Daily aligned slots count the leap day.
    assert_eq!(
        upcoming(&aligned(Tz::UTC, 86_400), "2028-02-28T00:00:00Z", 2),
        ["2028-02-29T00:00Z", "2028-03-01T00:00Z"]
    );
}

fn longyearbyen(every: i64) -> Plan {
    Plan {
        zone: chrono_tz::Arctic::Longyearbyen,
        timing: Timing::Aligned(every),
        window: Window {
            weekdays: Weekdays::ALL,
            daily: Daily::Daylight {
                lat: 78.22,
                lon: 15.65,
                offset_minutes: 0,
            },
        },
    }
}

#[test]
fn longyearbyen_polar_day_is_active_all_day() {
    // Midsummer: every hourly slot of the local day fires (UTC+2: 22:00Z is local midnight).
    let got = upcoming(&longyearbyen(3600), "2026-06-20T21:59:00Z", 25);
    let want: Vec<String> = (0..25)
        .map(|h| {
            (utc("2026-06-20T22:00:00Z") + Duration::hours(h))
                .format("%Y-%m-%dT%H:%MZ")
                .to_string()
        })
        .collect();
    assert_eq!(got, want);
}

#[test]
fn longyearbyen_polar_night_is_idle_until_the_sun_returns() {
    let p = longyearbyen(3600);
    let mut t = utc("2026-11-20T00:00:00Z");
    while t < utc("2027-02-01T00:00:00Z") {
        assert!(!p.active_at(t), "active in the polar night at {t}");
        t += Duration::hours(1);
    }
    // The first slot after midwinter is on the day the sun first rises again (mid-February at
    // 78° N), between that day's sunrise and sunset.
    let first = next(&p, "2026-12-21T12:00:00Z");
    assert!(
        first > utc("2027-02-10T00:00:00Z") && first < utc("2027-02-22T00:00:00Z"),
        "{first}"
    );
    let day = local_of(p.zone, first).date();
    let super::sun::Sun::RisesSets(rise, set) = super::sun::on(78.22, 15.65, day) else {
        panic!("the sun rises on {day}");
    };
    assert!(rise <= first && first < set, "{rise} <= {first} < {set}");
    // On the first of February the sun still does not rise.
    assert_eq!(
        super::sun::on(78.22, 15.65, "2027-02-01".parse().unwrap()),
        super::sun::Sun::PolarNight
    );
}

#[test]
fn daylight_window_in_berlin_opens_at_sunrise_minus_the_offset() {
    let p = Plan {
        zone: Berlin,
        timing: Timing::Aligned(300),
        window: Window {
            weekdays: Weekdays::ALL,
            daily: Daily::Daylight {
                lat: 52.52,
                lon: 13.405,
                offset_minutes: 30,
            },
        },
    };
    // Midsummer sunrise is about 02:43Z: with 30 minutes before, the first slot is about 02:15Z.
    let first = next(&p, "2026-06-20T22:00:00Z");
    assert!(
        first >= utc("2026-06-21T02:10:00Z") && first <= utc("2026-06-21T02:20:00Z"),
        "{first}"
    );
    // And the last one before sunset + 30 min (about 20:03Z) — nothing at 21:00Z.
    assert!(!p.active_at(utc("2026-06-21T21:00:00Z")));
    assert!(p.active_at(utc("2026-06-21T19:50:00Z")));
}

#[test]
fn a_clock_step_across_a_window_edge_is_idle_time_not_missed_slots() {
    let p = Plan {
        zone: Berlin,
        timing: Timing::Aligned(300),
        window: Window {
            weekdays: Weekdays::ALL,
            daily: Daily::Hours {
                from: hm(8, 0),
                to: hm(18, 0),
            },
        },
    };
    // Fired 17:55 local (16:55Z); the clock steps to 19:00 local: nothing missed (18:00 and
    // later are outside the window), the next slot is 08:00 tomorrow.
    let (next_slot, missed) = p.advance(
        utc("2026-01-15T16:55:00Z"),
        utc("2026-01-15T18:00:00Z"),
        10_000,
    );
    assert_eq!((next_slot, missed), (Some(utc("2026-01-16T07:00:00Z")), 0));
    // A step from 17:40 to 19:00 misses 17:45, 17:50 and 17:55 only.
    let (next_slot, missed) = p.advance(
        utc("2026-01-15T16:40:00Z"),
        utc("2026-01-15T18:00:00Z"),
        10_000,
    );
    assert_eq!((next_slot, missed), (Some(utc("2026-01-16T07:00:00Z")), 3));
    // A step across the opening: from 07:00 to 08:12 local misses 08:00, 08:05 and 08:10.
    let (next_slot, missed) = p.advance(
        utc("2026-01-15T06:00:00Z"),
        utc("2026-01-15T07:12:00Z"),
        10_000,
    );
    assert_eq!((next_slot, missed), (Some(utc("2026-01-15T07:15:00Z")), 3));
    // The count stops at the cap.
    let (_, missed) = p.advance(utc("2026-01-15T07:00:00Z"), utc("2026-01-20T07:00:00Z"), 50);
    assert_eq!(missed, 50);
}

#[test]
fn weekdays_parse_and_name() {
    let w = Weekdays::parse(&["MON", "friday", "sun"]).unwrap();
    assert_eq!(w.names(), ["mon", "fri", "sun"]);
    assert!(Weekdays::parse(&["mon", "funday"])
        .unwrap_err()
        .contains("\"funday\""));
    assert!(Weekdays::parse::<&str>(&[]).unwrap().is_empty());
}

/// A slot is claimed ahead of its time (`now < slot`): the next slot is the one after it, with
/// nothing skipped. Before, aligned and fixed-time plans answered the slot itself, so it was
/// claimed twice and counted missed at every slot.
#[test]
fn a_slot_claimed_ahead_advances_to_the_one_after_it() {
    let slot = utc("2026-03-10T12:56:00Z");
    let early = slot - Duration::milliseconds(300);
    let p = aligned(chrono_tz::UTC, 5);
    assert_eq!(
        p.advance(slot, early, 50),
        (Some(utc("2026-03-10T12:56:05Z")), 0)
    );
    let p = at(chrono_tz::UTC, &[hm(12, 56), hm(12, 57)]);
    assert_eq!(
        p.advance(slot, early, 50),
        (Some(utc("2026-03-10T12:57:00Z")), 0)
    );
    // Fired late, the next is still the first after `now`.
    assert_eq!(
        p.advance(slot, slot + Duration::seconds(90), 50),
        (Some(utc("2026-03-11T12:56:00Z")), 1)
    );
}
