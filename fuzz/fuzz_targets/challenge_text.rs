//! The `WWW-Authenticate` parser on raw text (`capture::challenge::parse_challenges` and
//! `capture::challenge::choose`): any bytes a camera may send, split into header values at
//! newlines.
//!
//! Invariants: no panic (choosing and answering); schemes and parameter names come out lower-case and non-empty (a
//! nameless parameter has an empty name); upper-casing or lower-casing the whole text changes
//! neither the schemes found nor the kind of choice (every token is case-insensitive, RFC 9110
//! §11.1); adding spaces around `=` and after `,` outside quoted strings changes neither the
//! challenges parsed nor the choice; a refusal is one line of bounded length.
#![no_main]

use heldar::capture::challenge::{choose, parse_challenges, ChallengeError, Choice};
use libfuzzer_sys::fuzz_target;

fn kind(r: &Result<Choice, ChallengeError>) -> u8 {
    match r {
        Ok(Choice::Digest(_)) => 0,
        Ok(Choice::Basic) => 1,
        Err(ChallengeError::Unparseable(_)) => 2,
        Err(ChallengeError::Unsupported(_)) => 3,
        Err(ChallengeError::Unsendable(_)) => 4,
    }
}

/// Spaces around `=` and after `,`, outside quoted strings (honouring `\` escapes inside them);
/// `None` when a comma-separated piece has more than one `=` outside quotes (then an `=` may be
/// part of an unquoted value, where spaces do matter).
fn spaced(s: &str) -> Option<String> {
    let mut out = String::new();
    let (mut quoted, mut escaped) = (false, false);
    let mut equals = 0;
    for c in s.chars() {
        // Each line is a header value of its own: a quote never spans lines.
        if c == '\n' {
            (quoted, escaped, equals) = (false, false, 0);
            out.push(c);
            continue;
        }
        if quoted {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                quoted = false;
            }
            continue;
        }
        match c {
            // A quote that does not open a value (`realm=ab"c`) makes where a quoted string
            // starts a matter of the parser's recovery rules, not of plain delimiters: no claim.
            '"' if !out.trim_end().ends_with('=') => return None,
            '"' => {
                quoted = true;
                out.push(c);
            }
            '=' => {
                equals += 1;
                if equals > 1 {
                    return None;
                }
                out.push_str(" = ");
            }
            ',' | '\n' => {
                equals = 0;
                out.push(c);
                if c == ',' {
                    out.push(' ');
                }
            }
            c => out.push(c),
        }
    }
    Some(out)
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let values: Vec<&str> = text.split('\n').take(8).collect();
    let parsed = parse_challenges(&values);
    for c in &parsed {
        assert!(!c.scheme.is_empty());
        assert_eq!(c.scheme, c.scheme.to_ascii_lowercase());
        for (n, _) in &c.params {
            assert_eq!(*n, n.to_ascii_lowercase());
        }
    }
    let chosen = choose(&values);
    // Answering computes the digest over whatever realm and nonce came in (non-ASCII included).
    let answered = heldar::capture::challenge::answer(&values, "/snap.jpg", "admin", "pw");
    match (&chosen, &answered) {
        (Err(c), a) => assert_eq!(a.as_ref().err(), Some(c)),
        // A realm or nonce with control characters cannot go back in a header.
        (Ok(_), Err(e)) => assert!(matches!(e, ChallengeError::Unparseable(_)), "{e:?}"),
        (Ok(_), Ok(v)) => assert!(v.is_sensitive()),
    }
    if let Err(e) = &chosen {
        let s = e.to_string();
        assert!(s.len() < 1024, "refusal of {} bytes", s.len());
        assert!(!s.contains('\n'), "refusal is one line: {s:?}");
    }
    let schemes: Vec<String> = parsed.iter().map(|c| c.scheme.clone()).collect();
    for changed in [text.to_ascii_uppercase(), text.to_ascii_lowercase()] {
        let v: Vec<&str> = changed.split('\n').take(8).collect();
        let again: Vec<String> = parse_challenges(&v).into_iter().map(|c| c.scheme).collect();
        assert_eq!(schemes, again, "case changed the schemes of {text:?}");
        assert_eq!(
            kind(&chosen),
            kind(&choose(&v)),
            "case changed the choice for {text:?}"
        );
    }
    // Spacing: only for text where '=' and ',' are plain delimiters (see `spaced`).
    if let Some(s) = spaced(&text) {
        let v: Vec<&str> = s.split('\n').take(8).collect();
        assert_eq!(
            parsed,
            parse_challenges(&v),
            "spacing changed the parse of {text:?}"
        );
        assert_eq!(
            kind(&chosen),
            kind(&choose(&v)),
            "spacing changed the choice for {text:?}"
        );
    }
});
