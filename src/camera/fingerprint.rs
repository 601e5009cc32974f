//! Certificate fingerprints as the API writes them: `sha256:` and 32 bytes in upper-case hex,
//! colon-separated (`sha256:AB:CD:…`), the form browsers and `openssl x509 -fingerprint -sha256`
//! show. [`parse`] accepts what an operator pastes (any case, with or without colons or the
//! `sha256:` prefix); [`format`] gives the one stored and shown form.

/// `bytes` (a SHA-256 digest) in the API's form: `sha256:AB:CD:…`.
pub fn format(bytes: &[u8; 32]) -> String {
    let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02X}")).collect();
    format!("sha256:{}", hex.join(":"))
}

/// Read a SHA-256 fingerprint: 64 hex digits in any case, optionally prefixed `sha256:` and
/// optionally with `:` between bytes (spaces around are ignored).
///
/// # Errors
/// A sentence saying what is wrong with the text.
pub fn parse(text: &str) -> Result<[u8; 32], String> {
    let t = text.trim();
    let body = match t.get(..7) {
        Some(p) if p.eq_ignore_ascii_case("sha256:") => &t[7..],
        _ => t,
    };
    let hex: String = body.chars().filter(|c| *c != ':').collect();
    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(
            "must be a SHA-256 fingerprint: 64 hex digits, optionally prefixed \"sha256:\" and \
             with \":\" between bytes (e.g. sha256:AB:CD:…)"
                .into(),
        );
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16).expect("checked hex");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_normalised_from_what_operators_paste() {
        let canonical = format(&[0xab; 32]);
        assert!(canonical.starts_with("sha256:AB:AB:"));
        assert_eq!(canonical.len(), 7 + 32 * 3 - 1);
        for pasted in [
            canonical.clone(),
            canonical.to_lowercase(),
            "ab".repeat(32),
            format!("SHA256:{}", "AB".repeat(32)),
            format!("  {canonical} "),
        ] {
            assert_eq!(
                parse(&pasted).map(|b| format(&b)),
                Ok(canonical.clone()),
                "{pasted}"
            );
        }
        for bad in [
            "",
            "sha256:",
            "ab",
            &"ab".repeat(31),
            &"zz".repeat(32),
            "sha1:AB",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
