//! The snapshot list's query (`GET /api/v1/cameras/{id}/snapshots?from&to&limit`):
//! `serde_urlencoded` (as axum's `Query` uses it) into `routes::snapshots::ListQuery`, then
//! `routes::snapshots::bounds`.
//!
//! Invariants: no panic; an accepted query has `1 <= limit <= 5000` and `from <= to`, and its
//! bounds are exactly the RFC 3339 times given, or for a date alone (`YYYY-MM-DD`) the first
//! instant of that UTC day as `from` and its last (23:59:59.999999) as `to`; a refused one is a
//! 422 naming `from`, `to` or `limit`, in one line. (`cursor` is read here but checked by the
//! handler, not by `bounds`.)
#![no_main]

use arbitrary::Arbitrary;
use chrono::{DateTime, FixedOffset, NaiveDate, SecondsFormat, Utc};
use heldar::routes::frames::{bounds, ListQuery};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
enum Input {
    /// Any query string.
    Raw(String),
    /// Well-formed times (in any offset, or cut to their date with the flag) and a number, so
    /// the accepting path is reached.
    Times {
        from: Option<(i64, i32, bool)>,
        to: Option<(i64, i32, bool)>,
        limit: Option<i64>,
        junk: Option<String>,
    },
}

/// The RFC 3339 time, or with `date_only` its date (`YYYY-MM-DD`, as written in that offset).
fn bound((millis, offset_min, date_only): (i64, i32, bool)) -> Option<String> {
    let t = rfc3339((millis, offset_min))?;
    Some(if date_only { t.get(..10)?.to_string() } else { t })
}

/// What `bounds` must make of a value it accepted: the RFC 3339 instant, or the first (`from`)
/// or last (`to`) instant of the UTC day a date names.
fn expected(given: &str, is_to: bool) -> DateTime<Utc> {
    if let Ok(t) = DateTime::parse_from_rfc3339(given) {
        return t.with_timezone(&Utc);
    }
    assert_eq!(given.len(), 10, "{given:?} accepted but neither RFC 3339 nor a date");
    let day = NaiveDate::parse_from_str(given, "%Y-%m-%d").expect("accepted date parses");
    let t = if is_to {
        day.and_hms_micro_opt(23, 59, 59, 999_999)
    } else {
        day.and_hms_opt(0, 0, 0)
    };
    t.expect("a day has these instants").and_utc()
}

fn rfc3339((millis, offset_min): (i64, i32)) -> Option<String> {
    let t = DateTime::<Utc>::from_timestamp_millis(millis)?;
    let off = FixedOffset::east_opt((offset_min % (24 * 60)) * 60)?;
    Some(
        t.with_timezone(&off)
            .to_rfc3339_opts(SecondsFormat::AutoSi, false),
    )
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fuzz_target!(|input: Input| {
    let query = match input {
        Input::Raw(s) => s,
        Input::Times {
            from,
            to,
            limit,
            junk,
        } => {
            let mut parts = Vec::new();
            if let Some(f) = from.and_then(bound) {
                parts.push(format!("from={}", enc(&f)));
            }
            if let Some(t) = to.and_then(bound) {
                parts.push(format!("to={}", enc(&t)));
            }
            if let Some(l) = limit {
                parts.push(format!("limit={l}"));
            }
            if let Some(j) = junk {
                parts.push(j);
            }
            parts.join("&")
        }
    };
    let Ok(q) = serde_urlencoded::from_str::<ListQuery>(&query) else {
        return; // axum answers 400 with the parser's sentence
    };
    match bounds(&q) {
        Ok((from, to, limit)) => {
            assert!((1..=5000).contains(&limit), "{query:?}: limit {limit}");
            if let (Some(f), Some(t)) = (from, to) {
                assert!(f <= t, "{query:?}: from after to");
            }
            for (given, got, is_to) in [(&q.from, from, false), (&q.to, to, true)] {
                let want = given.as_deref().map(|s| expected(s, is_to));
                assert_eq!(got, want, "{query:?}");
            }
        }
        Err(e) => {
            assert_eq!(e.status().as_u16(), 422, "{query:?}: {e}");
            let msg = e.to_string();
            assert!(!msg.contains('\n'), "{msg:?}");
            match e {
                heldar::routes::error::ApiError::Invalid(f) => {
                    assert!(["from", "to", "limit"].contains(&f.field), "{:?}", f.field)
                }
                other => panic!("unexpected error kind {other:?}"),
            }
        }
    }
});
