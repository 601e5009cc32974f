//! `WWW-Authenticate` challenges (`capture::http::answer_challenges`): a camera's 401 decides how
//! Heldar sends the credentials. The header values are untrusted text from the network, parsed
//! by `capture::challenge` (the digest itself is computed by `digest_auth`).
//!
//! Invariants: no panic; a Digest answer only when a Digest challenge was offered, a Basic answer
//! only when Basic was offered, no challenge was given, or no Digest challenge was usable;
//! "does not speak" only when neither Digest nor Basic was offered; a Basic answer decodes back
//! to exactly `user:password`; a Digest answer never carries the password itself; every answer
//! is a valid header value marked sensitive (so it is never logged); upper-casing the whole
//! challenge text changes neither the kind of answer nor the kind of refusal (every token is
//! case-insensitive); refusals are bounded in length.
#![no_main]

use arbitrary::Arbitrary;
use base64::Engine;
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
enum Challenge {
    Any(String),
    Digest {
        realm: String,
        nonce: String,
        qop: u8,
        algorithm: u8,
        opaque: Option<String>,
        extra: String,
    },
    Basic(String),
}

#[derive(Debug, Arbitrary)]
struct Input {
    challenges: Vec<Challenge>,
    uri: String,
    user: String,
    pass: String,
}

fn render(c: &Challenge) -> String {
    match c {
        Challenge::Any(s) => s.clone(),
        Challenge::Digest {
            realm,
            nonce,
            qop,
            algorithm,
            opaque,
            extra,
        } => {
            let qop = [
                "",
                ", qop=\"auth\"",
                ", qop=\"auth-int\"",
                ", qop=\"auth,auth-int\"",
                ", qop=auth",
            ][*qop as usize % 5];
            let alg = [
                "",
                ", algorithm=MD5",
                ", algorithm=SHA-256",
                ", algorithm=MD5-sess",
                ", algorithm=SHA-512-256",
                ", algorithm=bogus",
            ][*algorithm as usize % 6];
            let opaque = opaque
                .as_ref()
                .map(|o| format!(", opaque=\"{o}\""))
                .unwrap_or_default();
            format!("Digest realm=\"{realm}\", nonce=\"{nonce}\"{qop}{alg}{opaque}{extra}")
        }
        Challenge::Basic(realm) => format!("Basic realm=\"{realm}\""),
    }
}

/// Another password of the same shape: ASCII letters and digits moved on by one.
fn rotate(pw: &str) -> String {
    pw.chars()
        .map(|c| match c {
            'z' => 'a',
            'Z' => 'A',
            '9' => '0',
            c if c.is_ascii_alphanumeric() => (c as u8 + 1) as char,
            c => c,
        })
        .collect()
}

/// Was `scheme` offered, as the lenient parser reads the challenges?
fn offered(challenges: &[&str], scheme: &str) -> bool {
    heldar::capture::challenge::parse_challenges(challenges)
        .iter()
        .any(|c| c.scheme == scheme)
}

/// The kind of outcome, for the case-insensitivity check.
fn kind(r: &Result<http::HeaderValue, heldar::capture::challenge::ChallengeError>) -> u8 {
    use heldar::capture::challenge::ChallengeError as E;
    match r {
        Ok(v) if v.as_bytes().starts_with(b"Digest ") => 0,
        Ok(_) => 1,
        Err(E::Unparseable(_)) => 2,
        Err(E::Unsupported(_)) => 3,
        Err(E::Unsendable(_)) => 4,
    }
}

fuzz_target!(|input: Input| {
    // As the capture sees them: header values that `HeaderValue::to_str` accepts (visible ASCII;
    // anything else is dropped before the challenge is read).
    let headers: Vec<http::HeaderValue> = input
        .challenges
        .iter()
        .take(4)
        .filter_map(|c| http::HeaderValue::from_str(&render(c)).ok())
        .collect();
    let challenges: Vec<&str> = headers.iter().filter_map(|v| v.to_str().ok()).collect();
    let (user, pass) = (input.user.as_str(), input.pass.as_str());
    let result = heldar::capture::http::answer_challenges(&challenges, &input.uri, user, pass);
    let digest = offered(&challenges, "digest");
    let basic = challenges.iter().all(|c| c.trim().is_empty()) || offered(&challenges, "basic");
    let upper: Vec<String> = challenges.iter().map(|c| c.to_ascii_uppercase()).collect();
    let upper: Vec<&str> = upper.iter().map(String::as_str).collect();
    let again = heldar::capture::http::answer_challenges(&upper, &input.uri, user, pass);
    assert_eq!(
        kind(&result),
        kind(&again),
        "upper-casing changed the outcome: {challenges:?} gave {result:?}, upper-cased {again:?}"
    );
    match result {
        Ok(v) => {
            assert!(
                v.is_sensitive(),
                "the Authorization value is not marked sensitive"
            );
            let s = v
                .to_str()
                .map(str::to_owned)
                .unwrap_or_else(|_| String::from_utf8_lossy(v.as_bytes()).into_owned());
            if s.starts_with("Digest ") {
                assert!(digest, "answered {s:?} to {challenges:?}");
                // Differential: if another password of the same shape gives an answer that
                // also contains this one, the text came from elsewhere (user name, URI, realm,
                // with the answer's escaping).
                // The hex digests (response, cnonce) can hold a hex-looking password by chance.
                let visible = |s: &str| {
                    s.split(", ")
                        .filter(|p| !p.starts_with("response=") && !p.starts_with("cnonce="))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let other = rotate(pass);
                if pass.len() >= 4 && visible(&s).contains(pass) && other != pass {
                    let again = heldar::capture::http::answer_challenges(
                        &challenges,
                        &input.uri,
                        user,
                        &other,
                    )
                    .map(|v| visible(&String::from_utf8_lossy(v.as_bytes())))
                    .unwrap_or_default();
                    assert!(
                        again.contains(pass),
                        "the Digest answer carries the password: {s:?}"
                    );
                }
            } else {
                assert!(basic || digest, "answered {s:?} to {challenges:?}");
                let token = s.strip_prefix("Basic ").expect("a Basic answer");
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(token)
                    .unwrap();
                assert_eq!(decoded, format!("{user}:{pass}").into_bytes());
            }
        }
        Err(e) => {
            let why = e.to_string();
            assert!(!why.is_empty());
            assert!(why.len() < 1024, "a refusal of {} bytes", why.len());
            // Basic alone is always answered; beside a Digest challenge Heldar does not
            // downgrade to Basic when the Digest one cannot be used (it refuses, naming it).
            assert!(
                !basic || digest,
                "Basic offered without Digest, refused: {why}"
            );
            if why.contains("does not speak") {
                assert!(!digest, "{why}");
            }
            // Differential, as above: a refusal that quotes this password stops quoting it when
            // only the password changes.
            let other = rotate(pass);
            if pass.len() >= 4 && why.contains(pass) && other != pass {
                let again =
                    heldar::capture::http::answer_challenges(&challenges, &input.uri, user, &other)
                        .err()
                        .map(|e| e.to_string())
                        .unwrap_or_default();
                assert!(
                    again.contains(pass),
                    "the refusal quotes the password: {why:?}"
                );
            }
        }
    }
});
