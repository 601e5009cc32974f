//! JPEG validation: the gate every frame passes before it is returned or stored.
//!
//! A frame is accepted only if it starts with the SOI marker, ends with EOI (after trailing
//! padding some cameras add), and has a header the decoder can read with non-zero dimensions.
//! Anything else — an HTML error page, a truncated transfer, random bytes — is rejected with a
//! sentence saying which check failed.

/// Width and height of a valid JPEG, or why the bytes are not one.
pub fn validate(bytes: &[u8]) -> Result<(u16, u16), String> {
    if bytes.len() < 4 || bytes[0] != 0xFF || bytes[1] != 0xD8 || bytes[2] != 0xFF {
        let hint = if bytes.trim_ascii_start().starts_with(b"<") {
            " (it looks like HTML or XML)"
        } else {
            ""
        };
        return Err(format!(
            "the response is not a JPEG: no start-of-image marker{hint}"
        ));
    }
    // Some cameras pad the body after EOI with zeros or a newline.
    let end = bytes
        .iter()
        .rposition(|&b| b != 0x00 && !b.is_ascii_whitespace())
        .unwrap_or(0);
    if end < 1 || bytes[end - 1] != 0xFF || bytes[end] != 0xD9 {
        return Err("the JPEG is truncated: no end-of-image marker".into());
    }
    let mut decoder = zune_jpeg::JpegDecoder::new(bytes);
    decoder
        .decode_headers()
        .map_err(|e| format!("the JPEG header cannot be decoded: {e:?}"))?;
    match decoder.dimensions() {
        Some((w, h)) if w > 0 && h > 0 => Ok((
            u16::try_from(w).unwrap_or(u16::MAX),
            u16::try_from(h).unwrap_or(u16::MAX),
        )),
        _ => Err("the JPEG header has no image dimensions".into()),
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
    fn garbage_truncation_and_html_are_refused() {
        assert!(validate(b"").is_err());
        assert!(validate(b"hello world").unwrap_err().contains("not a JPEG"));
        assert!(validate(b"  <html>401</html>")
            .unwrap_err()
            .contains("HTML"));
        let j = jpeg(64, 48);
        assert!(validate(&j[..j.len() / 2])
            .unwrap_err()
            .contains("truncated"));
        // Markers right, header garbage.
        let mut fake = vec![0xFF, 0xD8, 0xFF, 0x00, 1, 2, 3, 4, 5];
        fake.extend_from_slice(&[0xFF, 0xD9]);
        assert!(validate(&fake).unwrap_err().contains("header"));
    }
}
