//! The snapshot list's query (`GET /api/v1/cameras/{id}/snapshots?from&to&limit`):
//! `serde_urlencoded` (as axum's `Query` uses it) into `routes::snapshots::ListQuery`, then
//! `routes::snapshots::bounds`.
//!
//! Invariants: no panic; an accepted query has `1 <= limit <= 5000` and `from <= to`, and its
//! bounds are exactly the RFC 3339 times given; a refused one is a 422 naming `from`, `to` or
//! `limit`, in one line.
#![no_main]

use arbitrary::Arbitrary;
use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};
use heldar::routes::frames::{bounds, ListQuery};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
enum Input {
    /// Any query string.
    Raw(String),
    /// Well-formed times (in any offset) and a number, so the accepting path is reached.
    Times {
        from: Option<(i64, i32)>,
        to: Option<(i64, i32)>,
        limit: Option<i64>,
        junk: Option<String>,
    },
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
            if let Some(f) = from.and_then(rfc3339) {
                parts.push(format!("from={}", enc(&f)));
            }
            if let Some(t) = to.and_then(rfc3339) {
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
            for (given, got) in [(&q.from, from), (&q.to, to)] {
                let want = given.as_deref().map(|s| {
                    DateTime::parse_from_rfc3339(s)
                        .expect("accepted time parses")
                        .with_timezone(&Utc)
                });
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
