//! JPEG validation (`capture::jpeg::validate`): the gate every camera response passes.
//!
//! Invariants: no panic; an accepted input starts with SOI (FF D8 FF), ends with EOI (FF D9)
//! before any zero/whitespace padding, and has non-zero dimensions; padding after an accepted
//! JPEG changes nothing; and validation allocates a bounded amount whatever size the header
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
            assert!(
                data.starts_with(&[0xFF, 0xD8, 0xFF]),
                "accepted without SOI"
            );
            let end = data
                .iter()
                .rposition(|&b| b != 0 && !b.is_ascii_whitespace())
                .expect("accepted input has content");
            assert!(
                end >= 1 && data[end - 1] == 0xFF && data[end] == 0xD9,
                "accepted without EOI"
            );
            // Trailing padding (what some cameras add) changes nothing.
            let mut padded = data.to_vec();
            padded.extend_from_slice(b"\r\n\0\0 ");
            assert_eq!(
                heldar::capture::jpeg::validate(&padded),
                Ok((w, h)),
                "padding changed the verdict"
            );
        }
        Err(why) => {
            assert!(!why.is_empty());
            assert!(!why.contains('\n'), "error is one line: {why:?}");
        }
    }
});
