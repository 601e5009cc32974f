//! Credential masking of URLs (`camera::mask::mask_url`): every URL an API response, log line or
//! error message shows.
//!
//! Invariants, for any text: no panic; when the text is a URL with a host, the masked form is still a URL
//! with the same scheme, host, port and path, its password is `***` (or there was none), and
//! every password-like query value is `***`. Differential check: two URLs that differ only in
//! their secrets (userinfo password, password-like query values) mask to the same text, so
//! nothing of a secret can show through.
#![no_main]

use arbitrary::Arbitrary;
use heldar::camera::mask::{mask_url, MASK};
use libfuzzer_sys::fuzz_target;

const SECRET_KEYS: &[&str] = &["password", "pass", "passwd", "pwd", "token", "auth"];

fn is_secret_key(k: &str) -> bool {
    SECRET_KEYS.iter().any(|s| k.eq_ignore_ascii_case(s))
}

#[derive(Debug, Arbitrary)]
enum Input {
    /// Any text at all.
    Raw(String),
    /// A URL assembled from parts, so most inputs parse.
    Parts {
        scheme: u8,
        user: String,
        password: Option<String>,
        host: String,
        port: Option<u16>,
        path: String,
        query: Vec<(u8, String, String)>,
        fragment: Option<String>,
    },
}

const SCHEMES: &[&str] = &["http", "https", "rtsp", "rtsps", "ftp", "x-cam"];
const KEYS: &[&str] = &[
    "password", "Pass", "pwd", "TOKEN", "auth", "passwd", "user", "cmd",
];

fn build(input: Input) -> String {
    match input {
        Input::Raw(s) => s,
        Input::Parts {
            scheme,
            user,
            password,
            host,
            port,
            path,
            query,
            fragment,
        } => {
            let scheme = SCHEMES[scheme as usize % SCHEMES.len()];
            let Ok(mut u) = url::Url::parse(&format!("{scheme}://h/")) else {
                return String::new();
            };
            if u.set_host(Some(&host)).is_err() {
                let _ = u.set_host(Some("cam.local"));
            }
            let _ = u.set_port(port);
            let _ = u.set_username(&user);
            let _ = u.set_password(password.as_deref());
            u.set_path(&path);
            if !query.is_empty() {
                let mut q = u.query_pairs_mut();
                for (k, other, v) in query.iter().take(8) {
                    let key = if *k < 200 {
                        KEYS[*k as usize % KEYS.len()]
                    } else {
                        other
                    };
                    q.append_pair(key, v);
                }
            }
            u.set_fragment(fragment.as_deref());
            u.to_string()
        }
    }
}

/// The same URL with every secret replaced by another value, or `None` if it cannot be built.
fn with_other_secrets(u: &url::Url) -> Option<url::Url> {
    let mut v = u.clone();
    if u.password().is_some() {
        v.set_password(Some("0ther-Secret")).ok()?;
    }
    if u.query().is_some() && u.query_pairs().any(|(k, _)| is_secret_key(&k)) {
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, val)| {
                let val = if is_secret_key(&k) {
                    "0ther-Secret".into()
                } else {
                    val.into_owned()
                };
                (k.into_owned(), val)
            })
            .collect();
        let mut q = v.query_pairs_mut();
        q.clear();
        for (k, val) in &pairs {
            q.append_pair(k, val);
        }
    }
    Some(v)
}

fuzz_target!(|input: Input| {
    let raw = build(input);
    let masked = mask_url(&raw);
    let Ok(url) = url::Url::parse(&raw) else {
        return;
    };
    if url.host_str().is_none_or(str::is_empty) {
        // Masked as a broken URL (free text); mask_text's target covers that.
        return;
    }
    let shown = url::Url::parse(&masked)
        .unwrap_or_else(|e| panic!("masked URL does not parse ({e}): {raw:?} -> {masked:?}"));
    assert_eq!(shown.scheme(), url.scheme(), "{raw:?} -> {masked:?}");
    assert_eq!(shown.host_str(), url.host_str(), "{raw:?} -> {masked:?}");
    assert_eq!(shown.port(), url.port(), "{raw:?} -> {masked:?}");
    assert_eq!(shown.username(), url.username(), "{raw:?} -> {masked:?}");
    if !url.path().contains("%2A%2A%2A") {
        assert_eq!(shown.path(), url.path(), "{raw:?} -> {masked:?}");
    }
    match url.password() {
        None => assert_eq!(shown.password(), None, "{raw:?} -> {masked:?}"),
        Some(_) => assert_eq!(shown.password(), Some(MASK), "{raw:?} -> {masked:?}"),
    }
    for (k, v) in shown.query_pairs() {
        if is_secret_key(&k) {
            assert_eq!(v, MASK, "query value of {k:?} shown: {raw:?} -> {masked:?}");
        }
    }
    if let Some(other) = with_other_secrets(&url) {
        assert_eq!(
            mask_url(other.as_str()),
            masked,
            "a secret shows through: {raw:?} and {:?} mask differently",
            other.as_str()
        );
    }
});
