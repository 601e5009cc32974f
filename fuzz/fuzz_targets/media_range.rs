//! `Range` headers of `/media` (`routes::media::parse_range`).
//!
//! Invariants: no panic; a served range `a..=b` lies inside the file (`a <= b < total`), so the
//! slice the route takes can never go out of bounds; a file of zero bytes never gets a range;
//! a plain `bytes=a-b` inside the file is served exactly as asked.
#![no_main]

use arbitrary::Arbitrary;
use heldar::routes::media::{parse_range, RangeSpec};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    total: u64,
    small: bool,
    header: String,
    a: u64,
    b: u64,
}

fuzz_target!(|input: Input| {
    let total = if input.small {
        input.total % 4096
    } else {
        input.total
    };
    match parse_range(&input.header, total) {
        RangeSpec::Bytes(a, b) => {
            assert!(
                a <= b && b < total,
                "{:?} of {total}: {a}-{b}",
                input.header
            );
        }
        RangeSpec::Unsatisfiable | RangeSpec::Ignore => {}
    }
    let (a, b) = (input.a.min(input.b), input.a.max(input.b));
    let h = format!("bytes={a}-{b}");
    let want = if b < total {
        RangeSpec::Bytes(a, b)
    } else if a < total {
        RangeSpec::Bytes(a, total - 1)
    } else {
        RangeSpec::Unsatisfiable
    };
    assert_eq!(parse_range(&h, total), want, "{h} of {total}");
});
