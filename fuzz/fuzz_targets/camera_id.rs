//! Camera id slugs (`models::CameraId::parse`): an id becomes a directory name under
//! snapshots_dir and a segment of media URLs.
//!
//! Invariants: an accepted id is exactly `^[a-z0-9][a-z0-9_-]{0,62}$`, is kept verbatim, is one
//! normal path component (never `..`, `/`, absolute), and JSON deserialisation agrees with
//! `parse`; a refusal is one line of bounded length.
#![no_main]

use std::path::{Component, Path};

use heldar::models::CameraId;
use libfuzzer_sys::fuzz_target;

fn is_slug(s: &str) -> bool {
    let b = s.as_bytes();
    let first = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    (1..=63).contains(&b.len())
        && first(b[0])
        && b[1..].iter().all(|&c| first(c) || c == b'_' || c == b'-')
}

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let parsed = CameraId::parse(&s);
    assert_eq!(parsed.is_ok(), is_slug(&s), "{s:?}: {parsed:?}");
    let json = serde_json::to_string(&*s).expect("a string serialises");
    let via_json = serde_json::from_str::<CameraId>(&json);
    assert_eq!(
        via_json.is_ok(),
        parsed.is_ok(),
        "{s:?}: JSON and parse disagree"
    );
    match parsed {
        Ok(id) => {
            assert_eq!(id.as_str(), &*s);
            assert_eq!(id.to_string(), &*s);
            assert_eq!(via_json.unwrap(), id);
            let dir = heldar::store::camera_dir(Path::new("/srv/snapshots"), &id);
            assert_eq!(dir.parent(), Some(Path::new("/srv/snapshots")), "{s:?}");
            let comps: Vec<Component> = dir
                .strip_prefix("/srv/snapshots")
                .unwrap()
                .components()
                .collect();
            assert_eq!(comps, vec![Component::Normal(s.as_ref().as_ref())], "{s:?}");
        }
        Err(why) => {
            assert!(!why.contains('\n') && !why.contains('\r'), "{why:?}");
            // The id is quoted back cut to 80 characters, each escaped to at most `\u{10ffff}`.
            assert!(
                why.chars().count() < 200 + 80 * 10,
                "unbounded error for {} chars",
                s.chars().count()
            );
        }
    }
});
