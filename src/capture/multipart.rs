//! The first frame of an MJPEG stream (`multipart/x-mixed-replace`, RFC 2046 §5.1 as browsers
//! and ffmpeg's `mpjpeg` demuxer read it), which many cameras and ESP32 boards serve at their
//! "snapshot" URL. The stream never ends, so the capture reads until the first part holds a
//! complete JPEG, takes it, and closes the connection.
//!
//! Written for what cameras really send, not only for the RFC:
//! - the `boundary` parameter quoted or not, with or without a leading `--` (some servers declare
//!   `boundary=--frame` and write `----frame` or `--frame` lines; the delimiter is found by the
//!   boundary's text without its leading dashes);
//! - CRLF or bare LF line endings; blank lines before the first delimiter or the JPEG;
//! - parts with or without `Content-Length`: the JPEG's end is found from its own markers
//!   ([`super::jpeg::find_end`]), so a missing or wrong part length does not matter;
//! - a missing `boundary` parameter: the first line starting with `--` is taken as the delimiter;
//! - a first part that is not a complete JPEG: skipped, up to [`MAX_PARTS`] parts.

use super::jpeg::{self, FrameEnd};

/// Is `content_type` (a `Content-Type` value) a multipart stream? Then its boundary, if declared
/// (quotes and leading `--` removed; `None` when the parameter is missing or empty).
pub fn multipart_boundary(content_type: &str) -> Option<Option<String>> {
    let mut parts = content_type.split(';');
    let essence = parts.next()?.trim().to_ascii_lowercase();
    if !essence.starts_with("multipart/") {
        return None;
    }
    let boundary = parts.find_map(|p| {
        let (name, value) = p.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("boundary") {
            return None;
        }
        // Quotes, spaces and leading dashes in any order ("- -b", "\" --b\"") all come off:
        // the delimiter is matched after its own "--", so a boundary never starts with one.
        let v = value
            .trim_start_matches(|c: char| c == '-' || c == '"' || c.is_whitespace())
            .trim_end_matches(|c: char| c == '"' || c.is_whitespace());
        (!v.is_empty()).then(|| v.to_string())
    });
    Some(boundary)
}

/// How far the bytes read so far get us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scan {
    /// Not enough bytes yet for the first complete JPEG.
    NeedMore,
    /// The first part's JPEG is at this byte range (up to and including its EOI).
    Frame(std::ops::Range<usize>),
    /// The first part is not a JPEG: why (one line).
    Invalid(String),
}

/// The end of the line starting at `from`: the index after its `\n`, or `None` if not yet read.
fn line_end(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?
        .iter()
        .position(|&b| b == b'\n')
        .map(|i| from + i + 1)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// How many parts [`first_jpeg`] looks at for a complete JPEG before it gives up.
pub const MAX_PARTS: usize = 5;

/// Find the first complete JPEG in the bytes of a multipart body read so far (`buf`, from the
/// body's first byte), the parts delimited by `boundary` (as [`multipart_boundary`] returns it).
/// A part that is not a complete JPEG (a frame cut short by the camera's encoder, a text part) is
/// skipped, as a viewer would skip it; after [`MAX_PARTS`] such parts the stream is refused.
pub fn first_jpeg(buf: &[u8], boundary: Option<&str>) -> Scan {
    let mut from = 0;
    let mut first_problem: Option<String> = None;
    for _ in 0..MAX_PARTS {
        let body_at = match part_body(buf, from, boundary) {
            Some(at) => at,
            None => return Scan::NeedMore,
        };
        match jpeg::find_end(&buf[body_at..]) {
            FrameEnd::Complete(n) => return Scan::Frame(body_at..body_at + n),
            FrameEnd::Truncated => return Scan::NeedMore,
            FrameEnd::Invalid(why) => {
                first_problem.get_or_insert(why);
                from = body_at + 1;
            }
        }
    }
    Scan::Invalid(format!(
        "the first {MAX_PARTS} parts of the MJPEG stream hold no complete JPEG (the first: {})",
        first_problem.unwrap_or_default()
    ))
}

/// Where the body of the next part at or after `from` starts, or `None` if not read yet.
fn part_body(buf: &[u8], from: usize, boundary: Option<&str>) -> Option<usize> {
    let start = from
        + buf
            .get(from..)?
            .iter()
            .position(|b| !b.is_ascii_whitespace())?;
    // A part that starts with the JPEG itself (no delimiter before the first part).
    let body_at = if buf[start..].starts_with(&[0xFF, 0xD8]) {
        start
    } else {
        // The delimiter line.
        let at = from
            + match boundary {
                Some(b) => find(&buf[from..], b.as_bytes()),
                None => find(&buf[from..], b"--"),
            }?;
        let mut line = line_end(buf, at)?;
        // Part headers, up to an empty line; a line starting with SOI means the part has none.
        loop {
            if buf
                .get(line..)
                .is_some_and(|r| r.starts_with(&[0xFF, 0xD8]))
            {
                break line;
            }
            let next = line_end(buf, line)?;
            let text = &buf[line..next];
            line = next;
            if text.iter().all(|b| b.is_ascii_whitespace()) {
                break line;
            }
        }
    };
    let body_at = body_at
        + buf[body_at..]
            .iter()
            .position(|b| !matches!(b, b'\r' | b'\n'))?;
    Some(body_at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg() -> Vec<u8> {
        crate::fakecam::pattern::solid_jpeg(16, 16, [1, 2, 3])
    }

    #[test]
    fn boundaries_are_read_with_or_without_quotes_and_dashes() {
        for (ct, b) in [
            ("multipart/x-mixed-replace; boundary=frame", Some("frame")),
            (
                "multipart/x-mixed-replace;boundary=\"frame\"",
                Some("frame"),
            ),
            ("Multipart/X-Mixed-Replace; BOUNDARY=--frame", Some("frame")),
            ("multipart/x-mixed-replace", None),
            ("multipart/x-mixed-replace; boundary=\"\"", None),
            // Found by the fuzzer: a dash after a space used to survive as the first character.
            (
                "multipart/x-mixed-replace; boundary=- -frame",
                Some("frame"),
            ),
            (
                "multipart/x-mixed-replace; boundary=\" --frame \"",
                Some("frame"),
            ),
            ("multipart/x-mixed-replace; boundary=- \" -", None),
        ] {
            assert_eq!(multipart_boundary(ct), Some(b.map(str::to_string)), "{ct}");
        }
        assert_eq!(multipart_boundary("image/jpeg"), None);
    }

    #[test]
    fn the_first_complete_jpeg_is_found_in_every_framing() {
        let j = jpeg();
        let framings: Vec<(Vec<u8>, Option<&str>)> = vec![
            (
                [
                    &b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "[..],
                    j.len().to_string().as_bytes(),
                    b"\r\n\r\n",
                    &j,
                    b"\r\n--frame\r\n",
                ]
                .concat(),
                Some("frame"),
            ),
            (
                [
                    &b"\n--frame\ncontent-type: image/jpeg\n\n"[..],
                    &j,
                    b"\n--frame\n",
                ]
                .concat(),
                Some("frame"),
            ),
            ([&b"----frame\r\n\r\n"[..], &j].concat(), Some("frame")),
            ([&b"--xyz\r\n"[..], &j, b"\r\n"].concat(), None),
            ([&b"\r\n"[..], &j].concat(), Some("frame")),
        ];
        for (body, b) in framings {
            let Scan::Frame(r) = first_jpeg(&body, b) else {
                panic!("{:?}", first_jpeg(&body, b));
            };
            assert_eq!(&body[r], &j[..]);
            // Every prefix short of the JPEG's end asks for more.
            let end = find(&body, &j).unwrap() + j.len();
            for cut in [0, 3, 10, end - 1] {
                assert_eq!(first_jpeg(&body[..cut], b), Scan::NeedMore, "cut {cut}");
            }
        }
    }

    #[test]
    fn parts_that_are_not_complete_jpegs_are_skipped_then_refused() {
        let text = b"--frame\r\nContent-Type: text/plain\r\n\r\nhello world\r\n".to_vec();
        // One text part, then a good frame: the frame.
        let j = jpeg();
        let body = [&text[..], b"--frame\r\n\r\n", &j, b"\r\n"].concat();
        let Scan::Frame(r) = first_jpeg(&body, Some("frame")) else {
            panic!("{:?}", first_jpeg(&body, Some("frame")));
        };
        assert_eq!(&body[r], &j[..]);
        // A frame cut short by the camera, then a whole one: the whole one.
        let cut = [
            &b"--frame\r\n\r\n"[..],
            &j[..j.len() / 2],
            b"\r\n--frame\r\n\r\n",
            &j,
            b"\r\n",
        ]
        .concat();
        let Scan::Frame(r) = first_jpeg(&cut, Some("frame")) else {
            panic!("{:?}", first_jpeg(&cut, Some("frame")));
        };
        assert_eq!(&cut[r], &j[..]);
        // Text parts only: refused after MAX_PARTS.
        let body = text.repeat(MAX_PARTS + 1);
        let Scan::Invalid(why) = first_jpeg(&body, Some("frame")) else {
            panic!("{:?}", first_jpeg(&body, Some("frame")));
        };
        assert!(why.contains("no complete JPEG"), "{why}");
        assert_eq!(first_jpeg(&text, Some("frame")), Scan::NeedMore);
    }
}
