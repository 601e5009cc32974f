//! `WWW-Authenticate` challenges: parsing what cameras send, choosing one, answering it.
//!
//! Parsing follows the grammar of RFC 9110 §11 (formerly RFC 7235 §2.1) leniently, the way curl
//! reads challenges:
//!
//! - one header may hold several challenges separated by commas, and a response may carry several
//!   headers (`Basic realm="a", Digest realm="b", nonce="c"`);
//! - every token — the scheme, parameter names, the `algorithm` value, `qop` values, `stale`,
//!   `userhash`, `charset` — is matched case-insensitively (RFC 9110 §11.1 for the scheme and
//!   parameter names; `algorithm=md5` is what ACTi cameras send);
//! - values may be quoted strings (with `\` escapes) or bare tokens, with spaces around `=` and
//!   commas; an unquoted value with spaces in it is kept whole.
//!
//! Digest (RFC 7616) is preferred over Basic (RFC 7617): among Digest challenges the strongest
//! hash Heldar supports wins (SHA-512-256, then SHA-256, then MD5; `-sess` variants included),
//! `qop="auth,auth-int"` is answered with `auth`, a challenge without `qop` is answered the RFC 2069
//! way, `stale=true` is accepted (the HTTP back-end answers a second 401 that says `stale=true`
//! once more, with its fresh nonce), `userhash=true` is honoured. Basic is used when no usable Digest challenge is offered,
//! or when the 401 carries no challenge at all. The response digest itself is computed by the
//! `digest_auth` crate from the typed challenge built here.
//!
//! The header values are untrusted text: nothing here panics, and errors quote at most a short,
//! printable excerpt of the challenge (the caller masks it again with the camera's secrets).

use base64::Engine;
use digest_auth::{Algorithm, AlgorithmType, AuthContext, Charset, HttpMethod, Qop};
use reqwest::header::HeaderValue;

/// One challenge: the scheme (lower-cased) and its parameters (names lower-cased, values as sent,
/// quotes and escapes removed), in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The auth scheme, lower-cased: `digest`, `basic`, `ntlm`…
    pub scheme: String,
    /// `(name, value)` pairs; names lower-cased.
    pub params: Vec<(String, String)>,
}

impl Challenge {
    /// The first value of parameter `name` (lower-case).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A Digest challenge Heldar can answer (RFC 7616 §3.3).
#[derive(Debug, Clone, PartialEq)]
pub struct DigestChallenge {
    /// `realm` (empty when the camera left it out).
    pub realm: String,
    /// `nonce`.
    pub nonce: String,
    /// `opaque`, echoed back as sent.
    pub opaque: Option<String>,
    /// The hash algorithm and whether it is a `-sess` variant; MD5 when not given.
    pub algorithm: Algorithm,
    /// The quality of protection to answer with: `None` for an RFC 2069 challenge (no `qop`).
    pub qop: Option<Qop>,
    /// `stale=true`: the camera's previous nonce expired (informational).
    pub stale: bool,
    /// `userhash=true`: send the user name hashed (RFC 7616 §3.4.4).
    pub userhash: bool,
    /// `charset=UTF-8` was given (RFC 7616 §4).
    pub utf8: bool,
}

/// Why a 401's challenges cannot be answered. None of these means the camera refused the
/// credentials: none were sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChallengeError {
    /// A Digest challenge was offered but none can be parsed or answered; the sentence names what
    /// is wrong and quotes a short excerpt of the challenge.
    Unparseable(String),
    /// Only schemes Heldar does not speak were offered (NTLM, Negotiate, Bearer…); lists them.
    Unsupported(String),
    /// The credentials cannot be written in an HTTP header (control characters).
    Unsendable(String),
}

impl std::fmt::Display for ChallengeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChallengeError::Unparseable(s)
            | ChallengeError::Unsupported(s)
            | ChallengeError::Unsendable(s) => f.write_str(s),
        }
    }
}

/// At most `max` bytes of `s` for a message: control characters replaced by `?`, cut on a
/// character boundary with `…` appended when shortened.
pub fn excerpt(s: &str, max: usize) -> String {
    let mut out = String::new();
    for c in s.trim().chars() {
        let c = if c.is_control() { '?' } else { c };
        if out.len() + c.len_utf8() > max {
            out.push('…');
            break;
        }
        out.push(c);
    }
    out
}

fn is_token_char(c: char) -> bool {
    !c.is_whitespace() && !matches!(c, ',' | '=' | '"') && !c.is_control()
}

/// Parse the challenges of every `WWW-Authenticate` value, in order. Lenient: text that fits no
/// rule is skipped, a parameter before any scheme is dropped. Never fails, never panics.
pub fn parse_challenges(values: &[&str]) -> Vec<Challenge> {
    let mut out: Vec<Challenge> = Vec::new();
    for value in values {
        let chars: Vec<char> = value.chars().collect();
        let mut i = 0;
        // Whether the current position follows a comma (or the start): only there may a bare
        // token start a new challenge (RFC 9110 §11.6.1: challenges are a comma-separated list).
        let mut after_comma = true;
        // Index of the last unquoted value, to which stray bare tokens are appended.
        let mut last_plain: Option<usize> = None;
        let mut current: Option<usize> = None;
        while i < chars.len() {
            let c = chars[i];
            if c.is_whitespace() {
                i += 1;
                continue;
            }
            if c == ',' {
                after_comma = true;
                last_plain = None;
                i += 1;
                continue;
            }
            if !is_token_char(c) {
                // A stray '=' or '"': skip it (a quoted string with no name is skipped whole).
                if c == '"' {
                    let (_, next) = quoted(&chars, i);
                    i = next;
                } else {
                    i += 1;
                }
                continue;
            }
            let start = i;
            while i < chars.len() && is_token_char(chars[i]) {
                i += 1;
            }
            let token: String = chars[start..i].iter().collect();
            let mut j = i;
            while j < chars.len() && chars[j].is_whitespace() {
                j += 1;
            }
            if j < chars.len() && chars[j] == '=' {
                // name = value
                j += 1;
                while j < chars.len() && chars[j].is_whitespace() {
                    j += 1;
                }
                let (val, next, plain) = if j < chars.len() && chars[j] == '"' {
                    let (v, n) = quoted(&chars, j);
                    (v, n, false)
                } else {
                    let vs = j;
                    // A token value; '=' is allowed inside (token68 padding, base64 nonces).
                    while j < chars.len() && chars[j] != ',' && !chars[j].is_whitespace() {
                        j += 1;
                    }
                    (chars[vs..j].iter().collect(), j, true)
                };
                i = next;
                if let Some(ci) = current {
                    out[ci].params.push((token.to_ascii_lowercase(), val));
                    last_plain = plain.then(|| out[ci].params.len() - 1);
                }
                after_comma = false;
            } else if after_comma || current.is_none() {
                out.push(Challenge {
                    scheme: token.to_ascii_lowercase(),
                    params: Vec::new(),
                });
                current = Some(out.len() - 1);
                last_plain = None;
                after_comma = false;
            } else if let (Some(ci), Some(pi)) = (current, last_plain) {
                // `realm=My Camera`: an unquoted value with a space in it.
                let v = &mut out[ci].params[pi].1;
                v.push(' ');
                v.push_str(&token);
            } else if let Some(ci) = current {
                // A token68 (`Negotiate abc`) or a stray word: keep it as a nameless parameter.
                out[ci].params.push((String::new(), token));
            }
        }
    }
    out
}

/// The quoted string starting at `chars[at] == '"'`: its unescaped content and the index after
/// the closing quote (or the end, for an unterminated string).
fn quoted(chars: &[char], at: usize) -> (String, usize) {
    let mut v = String::new();
    let mut i = at + 1;
    while i < chars.len() {
        match chars[i] {
            '"' => return (v, i + 1),
            '\\' if i + 1 < chars.len() => {
                v.push(chars[i + 1]);
                i += 2;
            }
            c => {
                v.push(c);
                i += 1;
            }
        }
    }
    (v, i)
}

/// The algorithm named by `name` (any case), or `None` when Heldar does not support it.
fn algorithm(name: &str) -> Option<Algorithm> {
    let lower = name.trim().to_ascii_lowercase();
    let (base, sess) = match lower.strip_suffix("-sess") {
        Some(b) => (b, true),
        None => (lower.as_str(), false),
    };
    let algo = match base {
        "md5" => AlgorithmType::MD5,
        "sha-256" => AlgorithmType::SHA2_256,
        "sha-512-256" => AlgorithmType::SHA2_512_256,
        _ => return None,
    };
    Some(Algorithm::new(algo, sess))
}

fn strength(a: &Algorithm) -> u8 {
    match a.algo {
        AlgorithmType::MD5 => 0,
        AlgorithmType::SHA2_256 => 1,
        AlgorithmType::SHA2_512_256 => 2,
    }
}

/// Read one Digest challenge (RFC 7616 §3.3), or say why Heldar cannot answer it.
pub fn digest_challenge(c: &Challenge) -> Result<DigestChallenge, String> {
    let Some(nonce) = c.param("nonce") else {
        return Err("it has no nonce".into());
    };
    let algorithm = match c.param("algorithm") {
        None => Algorithm::default(),
        Some(a) => algorithm(a).ok_or_else(|| {
            format!(
                "its algorithm {:?} is not one Heldar supports (MD5, SHA-256, SHA-512-256, \
                 and their -sess variants)",
                excerpt(a, 40)
            )
        })?,
    };
    let qop = match c.param("qop") {
        None => None,
        Some(list) => {
            let offered: Vec<String> = list
                .split(',')
                .map(|q| q.trim().to_ascii_lowercase())
                .collect();
            if offered.iter().any(|q| q == "auth") {
                Some(Qop::AUTH)
            } else if offered.iter().any(|q| q == "auth-int") {
                Some(Qop::AUTH_INT)
            } else if offered.iter().all(|q| q.is_empty()) {
                // `qop=""`: read as no qop (RFC 2069).
                None
            } else {
                return Err(format!(
                    "its qop {:?} offers neither auth nor auth-int",
                    excerpt(list, 40)
                ));
            }
        }
    };
    let yes = |name: &str| {
        c.param(name)
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
    };
    Ok(DigestChallenge {
        realm: c.param("realm").unwrap_or_default().to_string(),
        nonce: nonce.to_string(),
        opaque: c.param("opaque").map(str::to_string),
        algorithm,
        qop,
        stale: yes("stale"),
        userhash: yes("userhash"),
        utf8: c
            .param("charset")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("utf-8")),
    })
}

/// The challenge Heldar answers among those parsed: the strongest usable Digest, else Basic.
#[derive(Debug, Clone, PartialEq)]
pub enum Choice {
    /// Answer with Digest.
    Digest(DigestChallenge),
    /// Answer with Basic.
    Basic,
}

/// Choose how to answer the challenges of a 401 (see the module docs for the preference order).
///
/// # Errors
/// [`ChallengeError::Unparseable`] when Digest was offered, none of its challenges is usable and
/// Basic was not offered; [`ChallengeError::Unsupported`] when only unknown schemes were offered.
pub fn choose(values: &[&str]) -> Result<Choice, ChallengeError> {
    let challenges = parse_challenges(values);
    if challenges.is_empty() && values.iter().all(|v| v.trim().is_empty()) {
        // A 401 with no challenge: Basic, as curl and browsers do.
        return Ok(Choice::Basic);
    }
    let mut best: Option<DigestChallenge> = None;
    let mut first_problem: Option<(String, &Challenge)> = None;
    for c in challenges.iter().filter(|c| c.scheme == "digest") {
        match digest_challenge(c) {
            Ok(d) => {
                if best
                    .as_ref()
                    .is_none_or(|b| strength(&d.algorithm) > strength(&b.algorithm))
                {
                    best = Some(d);
                }
            }
            Err(why) => {
                first_problem.get_or_insert((why, c));
            }
        }
    }
    if let Some(d) = best {
        return Ok(Choice::Digest(d));
    }
    if challenges.iter().any(|c| c.scheme == "basic") {
        return Ok(Choice::Basic);
    }
    if let Some((why, _)) = first_problem {
        let raw = values
            .iter()
            .find(|v| v.to_ascii_lowercase().contains("digest"))
            .copied()
            .unwrap_or_default();
        return Err(ChallengeError::Unparseable(format!(
            "the camera's Digest challenge cannot be used: {why} (challenge: {})",
            excerpt(raw, 200)
        )));
    }
    let mut schemes: Vec<String> = challenges.iter().map(|c| excerpt(&c.scheme, 30)).collect();
    schemes.dedup();
    // A few are named; a header listing hundreds (the fuzzer's) would make a refusal of kilobytes.
    const NAMED: usize = 5;
    let named = match schemes.len().checked_sub(NAMED) {
        Some(more) if more > 0 => format!("{}, and {more} more", schemes[..NAMED].join(", ")),
        _ => schemes.join(", "),
    };
    if schemes.is_empty() {
        return Err(ChallengeError::Unparseable(format!(
            "the camera's WWW-Authenticate header cannot be parsed (challenge: {})",
            excerpt(values.join(", ").as_str(), 200)
        )));
    }
    Err(ChallengeError::Unsupported(format!(
        "the camera asks for an authentication scheme Heldar does not speak ({}); Heldar speaks \
         Digest and Basic",
        named
    )))
}

/// The `Authorization` value answering `values` (the `WWW-Authenticate` header values of a 401)
/// for a `GET` of `uri` (the request's path and query) with `user` and `pass`, marked sensitive.
///
/// # Errors
/// See [`choose`]; also [`ChallengeError::Unsendable`] when the credentials hold characters an
/// HTTP header cannot carry.
pub fn answer(
    values: &[&str],
    uri: &str,
    user: &str,
    pass: &str,
) -> Result<HeaderValue, ChallengeError> {
    let value = match choose(values)? {
        Choice::Basic => {
            let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
            format!("Basic {token}")
        }
        Choice::Digest(d) => {
            let mut prompt = digest_auth::WwwAuthenticateHeader {
                domain: None,
                realm: d.realm,
                nonce: d.nonce,
                opaque: d.opaque,
                stale: d.stale,
                algorithm: d.algorithm,
                qop: d.qop.map(|q| vec![q]),
                userhash: d.userhash,
                charset: if d.utf8 {
                    Charset::UTF8
                } else {
                    Charset::ASCII
                },
                nc: 0,
            };
            // A GET has an empty body: auth-int hashes the empty entity (RFC 7616 §3.4.3).
            let body: Option<&[u8]> = match d.qop {
                Some(Qop::AUTH_INT) => Some(b""),
                _ => None,
            };
            let ctx = AuthContext::new_with_method(user, pass, uri, body, HttpMethod::GET);
            prompt
                .respond(&ctx)
                .map_err(|e| {
                    ChallengeError::Unparseable(format!(
                        "cannot answer the camera's Digest challenge ({})",
                        excerpt(&e.to_string(), 120)
                    ))
                })?
                .to_header_string()
        }
    };
    let mut v = HeaderValue::from_str(&value).map_err(|_| {
        if format!("{user}{pass}").chars().any(char::is_control) {
            ChallengeError::Unsendable(
                "the credentials cannot be sent in an HTTP header (they contain control \
                 characters)"
                    .to_string(),
            )
        } else {
            ChallengeError::Unparseable(
                "the camera's Digest challenge cannot be answered: its realm, nonce or opaque \
                 holds control characters"
                    .to_string(),
            )
        }
    })?;
    v.set_sensitive(true);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(values: &[&str]) -> DigestChallenge {
        match choose(values) {
            Ok(Choice::Digest(d)) => d,
            other => panic!("{values:?}: {other:?}"),
        }
    }

    #[test]
    fn case_and_spacing_variants_of_one_challenge_read_the_same() {
        let variants = [
            r#"Digest realm="cam", nonce="abc", qop="auth", algorithm=MD5"#,
            r#"digest realm="cam", nonce="abc", qop="auth", algorithm=md5"#,
            r#"DIGEST REALM="cam", NONCE="abc", QOP="AUTH", ALGORITHM="Md5""#,
            r#"Digest realm = "cam" , nonce = "abc" , qop = "auth" , algorithm = MD5"#,
            r#"Digest realm=cam, nonce=abc, qop=auth, algorithm=MD5"#,
            r#"Digest realm=cam,nonce=abc,qop=auth,algorithm=MD5"#,
            "Digest\trealm=\"cam\",\tnonce=\"abc\",qop=\"auth\"",
            r#"Digest realm="cam", nonce="abc", qop="auth,auth-int""#,
            r#"Digest realm="cam", nonce="abc", qop="auth-int, auth""#,
            r#"Digest realm="cam", nonce="abc", qop=" auth ", stale=TRUE"#,
            r#"Digest realm="c\am", nonce="abc", qop="auth""#,
        ];
        for v in variants {
            let d = digest(&[v]);
            assert_eq!(d.realm, "cam", "{v}");
            assert_eq!(d.nonce, "abc", "{v}");
            assert_eq!(d.qop, Some(Qop::AUTH), "{v}");
            assert_eq!(d.algorithm, Algorithm::default(), "{v}");
        }
        assert!(digest(&[variants[9]]).stale);
    }

    #[test]
    fn algorithms_are_matched_in_any_case_and_the_strongest_wins() {
        for (name, algo, sess) in [
            ("md5", AlgorithmType::MD5, false),
            ("MD5-SESS", AlgorithmType::MD5, true),
            ("sha-256", AlgorithmType::SHA2_256, false),
            ("Sha-256-Sess", AlgorithmType::SHA2_256, true),
            ("SHA-512-256", AlgorithmType::SHA2_512_256, false),
        ] {
            let d = digest(&[&format!(r#"Digest realm="r", nonce="n", algorithm={name}"#)]);
            assert_eq!(d.algorithm, Algorithm::new(algo, sess), "{name}");
        }
        // Two headers, and two challenges in one header: SHA-256 over MD5, Digest over Basic.
        let two = [
            r#"Digest realm="r", nonce="n1", algorithm=MD5, qop="auth""#,
            r#"Digest realm="r", nonce="n2", algorithm=SHA-256, qop="auth""#,
        ];
        assert_eq!(digest(&two).nonce, "n2");
        let one = r#"Basic realm="r", Digest realm="r", nonce="n1", algorithm=MD5, Digest realm="r", nonce="n2", algorithm=SHA-256"#;
        assert_eq!(digest(&[one]).nonce, "n2");
        // An unsupported algorithm next to a supported one: the supported one.
        let mixed = r#"Digest realm="r", nonce="x", algorithm=SHA-1, Digest realm="r", nonce="y""#;
        assert_eq!(digest(&[mixed]).nonce, "y");
    }

    #[test]
    fn rfc_2069_challenges_have_no_qop() {
        let d = digest(&[r#"Digest realm="r", nonce="n""#]);
        assert_eq!(d.qop, None);
        let v = answer(&[r#"Digest realm="r", nonce="n""#], "/a", "u", "p").unwrap();
        let s = v.to_str().unwrap();
        assert!(s.starts_with("Digest ") && !s.contains("qop="), "{s}");
    }

    #[test]
    fn basic_when_offered_alone_or_nothing_offered() {
        for values in [&["Basic realm=\"x\""][..], &["basic"], &[], &[""]] {
            assert_eq!(choose(values), Ok(Choice::Basic), "{values:?}");
        }
        let v = answer(&["BASIC realm=x"], "/", "u", "p:w").unwrap();
        assert_eq!(v.to_str().unwrap(), "Basic dTpwOnc=");
        assert!(v.is_sensitive());
    }

    #[test]
    fn unusable_challenges_say_why_without_the_password() {
        let e = choose(&[r#"Digest realm="r", nonce="n", algorithm=SHA-1"#]).unwrap_err();
        assert!(matches!(e, ChallengeError::Unparseable(_)), "{e:?}");
        assert!(e.to_string().contains("SHA-1"), "{e}");
        let e = choose(&[r#"Digest realm="r""#]).unwrap_err();
        assert!(e.to_string().contains("no nonce"), "{e}");
        let e = choose(&[r#"Digest realm="r", nonce="n", qop="foo""#]).unwrap_err();
        assert!(e.to_string().contains("qop"), "{e}");
        let e = choose(&["NTLM", "Negotiate abc=="]).unwrap_err();
        assert_eq!(
            e,
            ChallengeError::Unsupported(
                "the camera asks for an authentication scheme Heldar does not speak (ntlm, \
                 negotiate); Heldar speaks Digest and Basic"
                    .into()
            )
        );
        // Digest unusable but Basic offered: Basic.
        assert_eq!(
            choose(&[r#"Digest realm="r""#, "Basic realm=r"]),
            Ok(Choice::Basic)
        );
        // Long challenges are cut short in messages, and so is a long list of unknown schemes.
        let long = format!("Digest realm=\"{}\"", "x".repeat(1000));
        assert!(choose(&[&long]).unwrap_err().to_string().len() < 400);
        let many: Vec<String> = (0..200).map(|i| format!("Scheme{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let e = choose(&many).unwrap_err().to_string();
        assert!(
            e.contains("(scheme0, scheme1, scheme2, scheme3, scheme4, and 195 more)"),
            "{e}"
        );
    }

    #[test]
    fn unquoted_values_with_spaces_and_escapes_are_kept() {
        let c = parse_challenges(&[r#"Digest realm=My Camera, nonce="a\"b", opaque=xyz=="#]);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].param("realm"), Some("My Camera"));
        assert_eq!(c[0].param("nonce"), Some("a\"b"));
        assert_eq!(c[0].param("opaque"), Some("xyz=="));
    }

    #[test]
    fn a_digest_answer_verifies_against_the_challenge() {
        // auth-int with an empty body is answered with auth (digest_auth's fallback), and the
        // response verifies with the same context.
        let v = answer(
            &[r#"digest realm="r", nonce="n", qop="auth-int", algorithm=sha-256"#],
            "/snap?x=1",
            "admin",
            "pw",
        )
        .unwrap();
        let hdr = digest_auth::AuthorizationHeader::parse(v.to_str().unwrap()).unwrap();
        assert_eq!(hdr.uri, "/snap?x=1");
        assert_eq!(hdr.algorithm.algo, AlgorithmType::SHA2_256);
        let mut check = hdr.clone();
        let ctx = AuthContext::new_with_method(
            "admin",
            "pw",
            "/snap?x=1",
            Some(&b""[..]),
            HttpMethod::GET,
        );
        check.digest(&ctx);
        assert_eq!(check.response, hdr.response);
    }
}
