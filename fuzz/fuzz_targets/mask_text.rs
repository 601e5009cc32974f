//! Credential masking of free text (`camera::mask::mask_text`): what every error message, ffmpeg
//! line and log line passes before it leaves Heldar.
//!
//! The fuzzer builds text from arbitrary pieces and copies of a secret in every form it can
//! travel in: raw, percent-encoded, form-encoded, URL-userinfo-encoded, Base64, and inside a
//! Basic token (Base64 of `user:secret`) or a `scheme://user:secret@host` URL. Invariant: none of
//! those forms survives masking. (A secret containing `*` is skipped: it cannot be told apart from
//! the mask itself. Very short secrets are skipped for the Base64 forms, which would otherwise
//! match ordinary words.)
#![no_main]

use arbitrary::Arbitrary;
use base64::Engine;
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
enum Piece {
    Text(String),
    Raw,
    Percent,
    Form,
    Userinfo,
    Base64,
    BasicToken,
    Url { scheme: String, host: String },
    Query { key: u8 },
}

#[derive(Debug, Arbitrary)]
struct Input {
    secret: String,
    user: String,
    pieces: Vec<Piece>,
}

const KEYS: &[&str] = &["password", "PASS", "pwd", "token", "auth", "passwd", "user"];

fn percent(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn form(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The secret as a URL's userinfo carries it.
fn userinfo(s: &str) -> Option<String> {
    let mut u = url::Url::parse("http://u@h/").ok()?;
    u.set_password(Some(s)).ok()?;
    u.password().map(str::to_owned)
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fuzz_target!(|input: Input| {
    let secret = input.secret;
    if secret.is_empty() || secret.contains('*') || secret.len() > 200 {
        return;
    }
    let user: String = input.user.chars().filter(|c| *c != ':').take(32).collect();
    let ui = userinfo(&secret);
    let mut text = String::new();
    for p in input.pieces.iter().take(32) {
        match p {
            Piece::Text(t) => text.push_str(t),
            Piece::Raw => text.push_str(&secret),
            Piece::Percent => text.push_str(&percent(&secret)),
            Piece::Form => text.push_str(&form(&secret)),
            Piece::Userinfo => text.push_str(ui.as_deref().unwrap_or("")),
            Piece::Base64 => text.push_str(&b64(&secret)),
            Piece::BasicToken => {
                text.push_str("Authorization: Basic ");
                text.push_str(&b64(&format!("{user}:{secret}")));
            }
            Piece::Url { scheme, host } => {
                let scheme: String = scheme.chars().filter(char::is_ascii_alphabetic).collect();
                let scheme = if scheme.is_empty() { "rtsp" } else { &scheme };
                text.push_str(&format!(
                    "{scheme}://{}:{}@{host}",
                    form(&user),
                    ui.as_deref().unwrap_or("x")
                ));
            }
            Piece::Query { key } => {
                let key = KEYS[*key as usize % KEYS.len()];
                text.push_str(&format!("?{key}={}", form(&secret)));
            }
        }
    }
    let masked = heldar::camera::mask::mask_text(&text, std::slice::from_ref(&secret));

    let mut forms = vec![
        ("raw", secret.clone()),
        ("percent-encoded", percent(&secret)),
        ("form-encoded", form(&secret)),
    ];
    if let Some(ui) = ui {
        forms.push(("userinfo-encoded", ui));
    }
    if secret.len() >= 3 {
        forms.push(("Base64", b64(&secret)));
    }
    if secret.len() >= 6 {
        forms.push(("Basic token", b64(&format!("{user}:{secret}"))));
    }
    for (what, f) in forms {
        assert!(
            !masked.contains(&f),
            "the {what} secret {f:?} survived masking\ntext:   {text:?}\nmasked: {masked:?}"
        );
    }
});
