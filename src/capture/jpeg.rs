//! JPEG validation: the gate every frame passes before it is returned or stored.
//!
//! A JPEG is complete when its own markers say so, not when the transfer ends. [`parse`] walks the
//! segment structure of ITU-T T.81 (Annex B): the SOI marker, then marker segments whose 2-byte
//! big-endian length says where the next marker is, the entropy-coded data after each SOS (where
//! `FF 00` is a stuffed data byte and `FF D0`–`FF D7` are restart markers, §B.1.1.5 and §F.1.2.3),
//! fill bytes `FF FF…` before a marker (§B.1.1.2), until the EOI marker. The frame ends there:
//! whatever a camera sends after EOI (a Dahua `dhav` trailer, zero padding, a newline) is not part
//! of the picture and is dropped ([`frame_len`]). An `FF D9` pair inside a segment (an embedded
//! EXIF thumbnail, a comment) does not end the frame, which a search for the last `FF D9` would
//! get wrong in both directions.
//!
//! The first bytes must be the SOI marker: browsers (libjpeg-turbo's "Not a JPEG file") refuse a
//! picture with bytes before SOI and ffmpeg's content probe does not recognise one, so Heldar
//! refuses it too rather than store a frame a browser cannot show. (Inside an MJPEG stream, blank lines before a part's SOI are
//! skipped by the multipart reader: there they are part framing, not the picture.)
//!
//! Finally the header must be readable by the decoder with non-zero dimensions. Anything else — an
//! HTML error page, a truncated transfer, random bytes — is refused with a sentence saying which
//! check failed.

/// A JPEG found at the start of a byte buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Jpeg {
    /// Width in pixels (saturated at `u16::MAX`).
    pub width: u16,
    /// Height in pixels (saturated at `u16::MAX`).
    pub height: u16,
    /// Length in bytes of the JPEG, up to and including its EOI marker; bytes after it are not
    /// part of the frame.
    pub len: usize,
}

/// Width and height of the JPEG at the start of `bytes`, or why the bytes are not one. Bytes
/// after the JPEG's EOI marker are ignored (see the module docs).
pub fn validate(bytes: &[u8]) -> Result<(u16, u16), String> {
    parse(bytes).map(|j| (j.width, j.height))
}

/// The JPEG at the start of `bytes`: its dimensions and where it ends, or why the bytes are not a
/// complete JPEG (one line).
pub fn parse(bytes: &[u8]) -> Result<Jpeg, String> {
    let len = frame_len(bytes)?;
    let mut decoder = zune_jpeg::JpegDecoder::new(&bytes[..len]);
    decoder
        .decode_headers()
        .map_err(|e| format!("the JPEG header cannot be decoded: {e:?}"))?;
    match decoder.dimensions() {
        Some((w, h)) if w > 0 && h > 0 => Ok(Jpeg {
            width: u16::try_from(w).unwrap_or(u16::MAX),
            height: u16::try_from(h).unwrap_or(u16::MAX),
            len,
        }),
        _ => Err("the JPEG header has no image dimensions".into()),
    }
}

/// Where the JPEG at the start of a buffer ends, as far as the bytes so far tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameEnd {
    /// The JPEG is complete: its length in bytes, up to and including the EOI marker.
    Complete(usize),
    /// The bytes end before the EOI marker: more may complete it.
    Truncated,
    /// The bytes are not a JPEG, or its marker structure is broken: why (one line).
    Invalid(String),
}

/// The length of the JPEG at the start of `bytes` up to and including its EOI marker, found by
/// walking its segment structure (ITU-T T.81 Annex B; see the module docs). The error says what
/// is wrong: no SOI, a truncation (with the byte count), or a broken marker structure.
pub fn frame_len(bytes: &[u8]) -> Result<usize, String> {
    match find_end(bytes) {
        FrameEnd::Complete(n) => Ok(n),
        FrameEnd::Truncated => Err(format!(
            "the JPEG is truncated: {} bytes and no end-of-image marker",
            bytes.len()
        )),
        FrameEnd::Invalid(why) => Err(why),
    }
}

/// Walk the JPEG at the start of `bytes` (ITU-T T.81 Annex B) to its EOI marker. Linear in the
/// input, allocation-free except for error sentences.
pub fn find_end(bytes: &[u8]) -> FrameEnd {
    use FrameEnd::{Complete, Invalid, Truncated};
    if bytes.len() < 2 || bytes[0] != 0xFF || bytes[1] != 0xD8 {
        if bytes.len() < 2 && bytes.first().is_none_or(|&b| b == 0xFF) && !bytes.is_empty() {
            return Truncated;
        }
        let hint = if bytes.trim_ascii_start().starts_with(b"<") {
            " (it looks like HTML or XML)"
        } else if bytes.is_empty() {
            " (it is empty)"
        } else {
            ""
        };
        return Invalid(format!(
            "the response is not a JPEG: no start-of-image marker{hint}"
        ));
    }
    let mut pos = 2;
    loop {
        // A marker: FF, optional fill bytes FF, then the marker code.
        match bytes.get(pos) {
            None => return Truncated,
            Some(0xFF) => {}
            Some(b) => {
                return Invalid(format!(
                    "the JPEG is corrupt: byte {pos} is {b:#04x} where a marker was expected"
                ))
            }
        }
        while bytes.get(pos) == Some(&0xFF) {
            pos += 1;
        }
        let Some(&code) = bytes.get(pos) else {
            return Truncated;
        };
        pos += 1;
        match code {
            0xD9 => return Complete(pos),
            // Standalone markers: TEM and RSTn carry no length.
            0x01 | 0xD0..=0xD7 => continue,
            0x00 | 0xD8 => {
                return Invalid(format!(
                    "the JPEG is corrupt: marker FF{code:02X} at byte {}",
                    pos - 2
                ))
            }
            _ => {}
        }
        let (Some(&hi), Some(&lo)) = (bytes.get(pos), bytes.get(pos + 1)) else {
            return Truncated;
        };
        let seg = usize::from(u16::from_be_bytes([hi, lo]));
        if seg < 2 {
            return Invalid(format!(
                "the JPEG is corrupt: segment FF{code:02X} at byte {} has length {seg}",
                pos - 2
            ));
        }
        pos += seg;
        if pos > bytes.len() {
            return Truncated;
        }
        if code == 0xDA {
            // Entropy-coded data runs to the next marker that is neither a stuffed zero nor a
            // restart marker.
            loop {
                let Some(off) = bytes[pos..].iter().position(|&b| b == 0xFF) else {
                    return Truncated;
                };
                pos += off;
                let mut next = pos + 1;
                while bytes.get(next) == Some(&0xFF) {
                    next += 1;
                }
                match bytes.get(next) {
                    None => return Truncated,
                    Some(0x00) | Some(0xD0..=0xD7) => pos = next + 1,
                    Some(_) => break,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(w: u16, h: u16) -> Vec<u8> {
        crate::fakecam::pattern::solid_jpeg(w, h, [200, 30, 30])
    }

    #[test]
    fn a_real_jpeg_passes_with_its_size() {
        assert_eq!(validate(&jpeg(64, 48)), Ok((64, 48)));
        let mut padded = jpeg(8, 8);
        padded.extend_from_slice(b"\r\n\0\0");
        assert_eq!(validate(&padded), Ok((8, 8)));
    }

    #[test]
    fn bytes_after_eoi_are_not_part_of_the_frame() {
        let j = jpeg(32, 24);
        for trailer in [
            &b"dhav\x01\x02\x03\x04"[..],
            b"\xFF\xD9",
            b"\xFF\xD8\xFF\xE0garbage",
            b"\r\n--boundary\r\n",
            &[0u8; 100],
        ] {
            let mut b = j.clone();
            b.extend_from_slice(trailer);
            assert_eq!(frame_len(&b), Ok(j.len()), "{trailer:?}");
            assert_eq!(
                parse(&b),
                Ok(Jpeg {
                    width: 32,
                    height: 24,
                    len: j.len()
                })
            );
        }
    }

    #[test]
    fn ff_d9_inside_a_segment_or_the_scan_does_not_end_the_frame() {
        let j = jpeg(16, 16);
        // A COM segment holding FF D9 right after SOI.
        let mut b = vec![0xFF, 0xD8, 0xFF, 0xFE, 0x00, 0x06, b'a', 0xFF, 0xD9, b'z'];
        b.extend_from_slice(&j[2..]);
        assert_eq!(frame_len(&b), Ok(b.len()));
        assert_eq!(validate(&b), Ok((16, 16)));
        // Cut just after the comment's FF D9: truncated, not complete.
        assert!(frame_len(&b[..9]).unwrap_err().contains("truncated"));
    }

    #[test]
    fn stuffing_restart_markers_and_fill_bytes_are_walked() {
        // SOI, SOS (length 2, empty header), data with FF00 and RST3 and fill, then EOI.
        let b = [
            0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02, 0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD3, 0x56, 0xFF,
            0xFF, 0xD9, 0x99,
        ];
        assert_eq!(frame_len(&b), Ok(16));
        // Cut inside the scan after a stuffed byte.
        assert!(frame_len(&b[..10]).unwrap_err().contains("truncated"));
    }

    #[test]
    fn garbage_truncation_and_html_are_refused() {
        assert!(validate(b"").unwrap_err().contains("empty"));
        assert!(validate(b"hello world").unwrap_err().contains("not a JPEG"));
        assert!(validate(b"  <html>401</html>")
            .unwrap_err()
            .contains("HTML"));
        let j = jpeg(64, 48);
        let half = validate(&j[..j.len() / 2]).unwrap_err();
        assert!(half.contains("truncated"), "{half}");
        // Leading junk before SOI is refused, as browsers and ffmpeg do.
        let mut junk = b"\r\n".to_vec();
        junk.extend_from_slice(&j);
        assert!(validate(&junk).unwrap_err().contains("not a JPEG"));
        // Markers right, header garbage.
        let fake = [0xFF, 0xD8, 0xFF, 0xD9];
        assert!(validate(&fake).unwrap_err().contains("header"));
        let corrupt = [0xFF, 0xD8, 0x00, 0x01, 0xFF, 0xD9];
        assert!(validate(&corrupt).unwrap_err().contains("corrupt"));
    }
}
