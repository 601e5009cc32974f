//! The MJPEG reader (`capture::multipart::first_jpeg`): the first frame of a
//! `multipart/x-mixed-replace` body, read as the bytes arrive.
//!
//! Invariants: no panic; a frame's range lies inside the bytes and holds a complete JPEG by its
//! own markers (`jpeg::find_end` says complete at exactly the range's end); the answer is
//! stable as more bytes arrive (a frame found in a prefix is the same frame in the whole body,
//! and a prefix that already gives a verdict never turns into "need more"); refusals are one line.
#![no_main]

use heldar::capture::jpeg::{find_end, FrameEnd};
use heldar::capture::multipart::{first_jpeg, multipart_boundary, Scan};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (String, Vec<u8>, u16)| {
    let (content_type, body, cut) = input;
    let boundary = multipart_boundary(&content_type).flatten();
    let b = boundary.as_deref();
    if let Some(b) = b {
        assert!(!b.is_empty() && !b.starts_with('-'));
    }
    let whole = first_jpeg(&body, b);
    match &whole {
        Scan::Frame(r) => {
            assert!(r.start < r.end && r.end <= body.len());
            assert_eq!(find_end(&body[r.clone()]), FrameEnd::Complete(r.len()));
        }
        Scan::Invalid(why) => assert!(!why.contains('\n') && !why.is_empty()),
        Scan::NeedMore => {}
    }
    let cut = usize::from(cut).min(body.len());
    let prefix = first_jpeg(&body[..cut], b);
    match prefix {
        Scan::Frame(r) => assert_eq!(whole, Scan::Frame(r), "a prefix's frame changed"),
        Scan::Invalid(_) => assert!(
            matches!(whole, Scan::Invalid(_)),
            "a prefix's refusal turned into {whole:?}"
        ),
        Scan::NeedMore => {}
    }
});
