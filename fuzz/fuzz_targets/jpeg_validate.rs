//! JPEG validation (`capture::jpeg::validate`): the gate every camera response passes.
//!
//! Invariants: no panic; an accepted input starts with SOI (FF D8), `jpeg::frame_len` finds its
//! end at an EOI (FF D9) and agrees with `jpeg::parse`; it has non-zero dimensions; any bytes
//! after the EOI change nothing (a vendor trailer, padding, another JPEG), and the JPEG alone
//! (up to EOI) gives the same verdict; every prefix that stops short of the EOI is refused as
//! truncated or corrupt; and validation allocates a bounded amount whatever size the header
//! declares (a counting allocator measures every allocation made during the call).
#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use libfuzzer_sys::fuzz_target;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(live, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            let live = LIVE.fetch_add(new_size - layout.size(), Ordering::Relaxed)
                + (new_size - layout.size());
            PEAK.fetch_max(live, Ordering::Relaxed);
        } else {
            LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// What validation may hold at once beyond the input itself: tables and a little per-byte state,
/// never anything sized by the dimensions the header declares.
fn budget(input_len: usize) -> usize {
    1024 * 1024 + 4 * input_len
}

fn validate_measured(data: &[u8]) -> (Result<(u16, u16), String>, usize) {
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let result = heldar::capture::jpeg::validate(data);
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(before);
    (result, peak)
}

fuzz_target!(|data: &[u8]| {
    let (result, peak) = validate_measured(data);
    assert!(
        peak <= budget(data.len()),
        "validating {} bytes held {peak} bytes at once",
        data.len()
    );
    match result {
        Ok((w, h)) => {
            assert!(w > 0 && h > 0, "accepted with a zero dimension");
            assert!(data.starts_with(&[0xFF, 0xD8]), "accepted without SOI");
            let parsed = heldar::capture::jpeg::parse(data).expect("validate and parse agree");
            let end = heldar::capture::jpeg::frame_len(data).expect("accepted has an end");
            assert_eq!(parsed.len, end);
            assert!(
                end >= 4 && data[end - 2] == 0xFF && data[end - 1] == 0xD9,
                "accepted without EOI"
            );
            // Whatever follows the EOI (a trailer, padding) changes nothing.
            let mut trailed = data[..end].to_vec();
            trailed.extend_from_slice(b"dhav\xFF\xD9\r\n\0\0 ");
            assert_eq!(
                heldar::capture::jpeg::validate(&trailed),
                Ok((w, h)),
                "a trailer changed the verdict"
            );
            assert_eq!(heldar::capture::jpeg::validate(&data[..end]), Ok((w, h)));
            // Short of the EOI it is never complete.
            assert!(heldar::capture::jpeg::frame_len(&data[..end - 1]).is_err());
        }
        Err(why) => {
            assert!(!why.is_empty());
            assert!(!why.contains('\n'), "error is one line: {why:?}");
        }
    }
});
