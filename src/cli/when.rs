//! Times and intervals as a person types them on the command line, turned into what the API
//! takes (RFC 3339 in UTC, whole seconds).
//!
//! Times: RFC 3339 (`2026-11-29T08:00:00Z`, `…+01:00`); `now`; `today` and `yesterday` (local
//! midnight); a span back from now (`-2h`, `-30m`, `-7d`, `-1h30m`; units s, m, h, d, w); and a
//! local date and time without a zone (`2026-11-29 08:00`, `2026-11-29 08:00:30`,
//! `2026-11-29T08:00`, `2026-11-29`), read in this machine's time zone — not the server's. A
//! local time that a daylight-saving change skips is refused; one it repeats means the earlier.
//!
//! The parsers take "now" as an argument, so they are tested with a fixed clock and zone; a
//! failure is a sentence listing the accepted forms (a usage error, exit 2).

use chrono::{DateTime, Duration, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};

/// What the accepted forms are, for error messages and `--help`.
pub const TIME_FORMS: &str = "RFC 3339 (2026-11-29T08:00:00Z), a local date and time \
    (2026-11-29 08:00, 2026-11-29), today, yesterday, now, or a span back (-2h, -30m, -7d)";

/// The after-help of commands that take times.
pub const TIME_HELP: &str = "Times: RFC 3339 (2026-11-29T08:00:00Z), a date and time in this \
    machine's time zone (2026-11-29 08:00, 2026-11-29 08:00:30, 2026-11-29 for its midnight), \
    today or yesterday (local midnight), now, or a span back from now (-2h, -30m, -7d, -1h30m).";

/// A time typed on the command line, in the zone of `now`.
pub fn parse_time<Tz: TimeZone>(input: &str, now: DateTime<Tz>) -> Result<DateTime<Utc>, String> {
    let s = input.trim();
    let bad = || format!("{input:?} is not a time; use {TIME_FORMS}");
    let tz = now.timezone();
    let midnight = |d: NaiveDate| local(&tz, d.and_hms_opt(0, 0, 0).expect("midnight"), input);
    match s.to_ascii_lowercase().as_str() {
        "now" => return Ok(now.with_timezone(&Utc)),
        "today" => return midnight(now.date_naive()),
        "yesterday" => {
            return midnight(now.date_naive().pred_opt().ok_or_else(bad)?);
        }
        _ => {}
    }
    if let Some(span) = s.strip_prefix('-') {
        let secs = parse_span(span, true).ok_or_else(bad)?;
        return now
            .with_timezone(&Utc)
            .checked_sub_signed(Duration::seconds(secs))
            .ok_or_else(bad);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    for fmt in [
        "%Y-%m-%d %H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H:%M:%S",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(s, fmt) {
            return local(&tz, naive, input);
        }
    }
    if let Ok(date) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return midnight(date);
    }
    Err(bad())
}

/// A local wall-clock time in `tz`: the earlier of two in a repeated hour, refused in a skipped one.
fn local<Tz: TimeZone>(
    tz: &Tz,
    naive: NaiveDateTime,
    input: &str,
) -> Result<DateTime<Utc>, String> {
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => Ok(t.with_timezone(&Utc)),
        LocalResult::None => Err(format!(
            "{input:?} does not exist in this machine's time zone (a daylight-saving change \
             skips it); give an RFC 3339 time with an offset"
        )),
    }
}

/// A span such as `90s`, `5m`, `1h30m`, `2d` (and `1w` where `weeks`), in seconds. A bare
/// number is seconds.
pub fn parse_span(s: &str, weeks: bool) -> Option<i64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(n) = s.parse::<i64>() {
        return (n >= 0).then_some(n);
    }
    let mut total: i64 = 0;
    let mut digits = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit: i64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' if weeks => 7 * 86_400,
            _ => return None,
        };
        let n: i64 = digits.parse().ok()?;
        digits.clear();
        total = total.checked_add(n.checked_mul(unit)?)?;
    }
    // A trailing number without a unit (`1h30`) is ambiguous: refuse it.
    digits.is_empty().then_some(total)
}

/// `--every` of a schedule: `60`, `60s`, `5m`, `1h`, `1h30m`, `1d`, in seconds.
pub fn parse_every(s: &str) -> Result<i64, String> {
    match parse_span(s, false) {
        Some(n) if n > 0 => Ok(n),
        _ => Err(format!(
            "{s:?} is not an interval; use seconds or a span such as 60s, 5m, 1h, 1h30m"
        )),
    }
}

/// Seconds as the shortest span that says them: `90` → `1m30s`, `3600` → `1h`.
pub fn fmt_span(secs: i64) -> String {
    if secs <= 0 {
        return format!("{secs}s");
    }
    let mut out = String::new();
    let mut rest = secs;
    for (unit, name) in [(86_400, "d"), (3600, "h"), (60, "m"), (1, "s")] {
        if rest >= unit {
            out.push_str(&format!("{}{name}", rest / unit));
            rest %= unit;
        }
    }
    out
}

/// A clap value parser for time flags, reading "now" from the clock and zone of this machine.
pub fn time_arg(s: &str) -> Result<DateTime<Utc>, String> {
    parse_time(s, chrono::Local::now())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::FixedOffset;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// 2026-11-29 10:30:00 in a zone one hour east of UTC.
    fn now() -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339("2026-11-29T10:30:00+01:00").unwrap()
    }

    #[test]
    fn friendly_forms_are_read_against_a_fixed_now() {
        let p = |s: &str| parse_time(s, now()).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(p("now"), at("2026-11-29T09:30:00Z"));
        assert_eq!(p("NOW"), at("2026-11-29T09:30:00Z"));
        assert_eq!(p("today"), at("2026-11-28T23:00:00Z"), "local midnight");
        assert_eq!(p("yesterday"), at("2026-11-27T23:00:00Z"));
        assert_eq!(p("-2h"), at("2026-11-29T07:30:00Z"));
        assert_eq!(p("-30m"), at("2026-11-29T09:00:00Z"));
        assert_eq!(p("-7d"), at("2026-11-22T09:30:00Z"));
        assert_eq!(p("-1w"), at("2026-11-22T09:30:00Z"));
        assert_eq!(p("-1h30m"), at("2026-11-29T08:00:00Z"));
        assert_eq!(p("-45s"), at("2026-11-29T09:29:15Z"));
        assert_eq!(p(" -90 "), at("2026-11-29T09:28:30Z"), "bare seconds");
    }

    #[test]
    fn local_dates_and_times_are_in_the_zone_of_now() {
        let p = |s: &str| parse_time(s, now()).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(p("2026-11-29 08:00"), at("2026-11-29T07:00:00Z"));
        assert_eq!(p("2026-11-29 08:00:30"), at("2026-11-29T07:00:30Z"));
        assert_eq!(p("2026-11-29T08:00"), at("2026-11-29T07:00:00Z"));
        assert_eq!(p("2026-11-29"), at("2026-11-28T23:00:00Z"));
        // The same wall-clock time in UTC.
        let utc_now = now().with_timezone(&Utc);
        assert_eq!(
            parse_time("2026-11-29 08:00", utc_now).unwrap(),
            at("2026-11-29T08:00:00Z")
        );
    }

    #[test]
    fn rfc3339_keeps_its_own_offset() {
        let p = |s: &str| parse_time(s, now()).unwrap();
        assert_eq!(p("2026-11-29T08:00:00Z"), at("2026-11-29T08:00:00Z"));
        assert_eq!(p("2026-11-29T08:00:00-05:00"), at("2026-11-29T13:00:00Z"));
        assert_eq!(
            p("2026-11-29T08:00:00.250Z"),
            at("2026-11-29T08:00:00.250Z")
        );
    }

    #[test]
    fn anything_else_is_refused_with_the_accepted_forms() {
        for bad in [
            "",
            "tomorrowish",
            "-2x",
            "-",
            "-1h30",
            "2026-13-01",
            "29.11.2026",
            "2026-11-29 25:00",
            "+2h",
        ] {
            let e = parse_time(bad, now()).unwrap_err();
            assert!(e.contains("RFC 3339") && e.contains("-2h"), "{bad}: {e}");
        }
    }

    /// Central European time in 2026: +01:00, and +02:00 from 29 March 01:00 UTC (02:00 local
    /// jumps to 03:00) to 25 October 01:00 UTC (03:00 local falls back to 02:00).
    #[derive(Debug, Clone, Copy)]
    struct Cet;

    impl Cet {
        fn summer_utc(u: &NaiveDateTime) -> bool {
            let start = NaiveDate::from_ymd_opt(2026, 3, 29)
                .unwrap()
                .and_hms_opt(1, 0, 0)
                .unwrap();
            let end = NaiveDate::from_ymd_opt(2026, 10, 25)
                .unwrap()
                .and_hms_opt(1, 0, 0)
                .unwrap();
            *u >= start && *u < end
        }
    }

    impl TimeZone for Cet {
        type Offset = FixedOffset;
        fn from_offset(_: &FixedOffset) -> Cet {
            Cet
        }
        fn offset_from_local_date(&self, d: &NaiveDate) -> LocalResult<FixedOffset> {
            self.offset_from_local_datetime(&d.and_hms_opt(0, 0, 0).unwrap())
        }
        fn offset_from_local_datetime(&self, l: &NaiveDateTime) -> LocalResult<FixedOffset> {
            let (winter, summer) = (
                FixedOffset::east_opt(3600).unwrap(),
                FixedOffset::east_opt(7200).unwrap(),
            );
            let fits = |o: FixedOffset| {
                let utc = *l - Duration::seconds(i64::from(o.local_minus_utc()));
                Cet::summer_utc(&utc) == (o == summer)
            };
            match (fits(winter), fits(summer)) {
                (true, true) => LocalResult::Ambiguous(summer, winter),
                (true, false) => LocalResult::Single(winter),
                (false, true) => LocalResult::Single(summer),
                (false, false) => LocalResult::None,
            }
        }
        fn offset_from_utc_date(&self, d: &NaiveDate) -> FixedOffset {
            self.offset_from_utc_datetime(&d.and_hms_opt(0, 0, 0).unwrap())
        }
        fn offset_from_utc_datetime(&self, u: &NaiveDateTime) -> FixedOffset {
            FixedOffset::east_opt(if Cet::summer_utc(u) { 7200 } else { 3600 }).unwrap()
        }
    }

    #[test]
    fn daylight_saving_changes_refuse_a_skipped_time_and_take_the_earlier_of_a_repeated_one() {
        let now = Cet.from_utc_datetime(&at("2026-11-29T09:30:00Z").naive_utc());
        let e = parse_time("2026-03-29 02:30", now).unwrap_err();
        assert!(e.contains("daylight-saving"), "{e}");
        assert_eq!(
            parse_time("2026-10-25 02:30", now).unwrap(),
            at("2026-10-25T00:30:00Z"),
            "the first 02:30 (summer time)"
        );
        assert_eq!(
            parse_time("2026-07-01 12:00", now).unwrap(),
            at("2026-07-01T10:00:00Z")
        );
        assert_eq!(
            parse_time("today", now).unwrap(),
            at("2026-11-28T23:00:00Z")
        );
    }

    #[test]
    fn intervals_read_and_print_as_spans() {
        assert_eq!(parse_every("60"), Ok(60));
        assert_eq!(parse_every("60s"), Ok(60));
        assert_eq!(parse_every("5m"), Ok(300));
        assert_eq!(parse_every("1h"), Ok(3600));
        assert_eq!(parse_every("1h30m"), Ok(5400));
        assert_eq!(parse_every("1d"), Ok(86_400));
        for bad in ["0", "-5", "1w", "5 minutes", "m", ""] {
            assert!(parse_every(bad).is_err(), "{bad}");
        }
        assert_eq!(fmt_span(60), "1m");
        assert_eq!(fmt_span(90), "1m30s");
        assert_eq!(fmt_span(3600), "1h");
        assert_eq!(fmt_span(86_400), "1d");
        assert_eq!(fmt_span(7), "7s");
    }
}
