//! Frame file names (`store::file_name` / `store::parse_file_name`):
//! `YYYYmmddTHHMMSSfffZ[-N].jpg`, written by the frame store and read back by `/media` and the
//! start-up reconcile.
//!
//! Invariants: every name the store writes parses back to its timestamp (to the millisecond) and
//! is one safe path component; every name that parses is exactly the name the store would write
//! for that time and suffix (one canonical spelling, so `/media` cannot be reached by an alias).
#![no_main]

use arbitrary::Arbitrary;
use chrono::{DateTime, Datelike, Utc};
use heldar::store::{file_name, parse_file_name};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    millis: i64,
    n: u16,
    name: String,
}

fn safe_component(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

fuzz_target!(|input: Input| {
    // Writing: a time in years 0000..=9999 and a same-millisecond counter the store uses.
    if let Some(t) = DateTime::<Utc>::from_timestamp_millis(input.millis) {
        if (0..=9999).contains(&t.year()) {
            let n = u32::from(input.n % 10_000);
            let name = file_name(t, n);
            assert!(safe_component(&name), "{name:?}");
            assert_eq!(
                parse_file_name(&name),
                Some(t),
                "{name:?} does not parse back to {t}"
            );
        }
    }
    // Reading: anything that parses is the canonical name of what it parsed to.
    let name = &input.name;
    if let Some(t) = parse_file_name(name) {
        let n = name
            .strip_suffix(".jpg")
            .and_then(|stem| stem.split_once('-'))
            .map_or(0, |(_, n)| n.parse::<u32>().expect("suffix is a number"));
        assert_eq!(
            &file_name(t, n),
            name,
            "{name:?} parses to {t} but is not its canonical name"
        );
        assert!(safe_component(name), "{name:?}");
    }
});
