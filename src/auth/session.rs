//! Dashboard sessions: a browser logs in once with a token and then carries an HttpOnly,
//! SameSite=Strict cookie instead. Sessions live in memory (a restart logs browsers out, which
//! is the safe direction); the map is keyed by a hash of the cookie value, so even a memory dump
//! of the map does not yield a usable cookie. Each session has its own CSRF token, which
//! state-changing requests made with the cookie must echo in `X-CSRF-Token`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use base64::Engine;
use rand::RngCore;

use super::token::{hash_token, TokenHash};
use super::TokenIdentity;

pub const COOKIE: &str = "heldar_session";
/// How long a session lasts after login.
pub const LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// At most this many live sessions; the oldest go first.
const MAX_SESSIONS: usize = 10_000;

#[derive(Debug, Clone)]
pub struct Session {
    pub identity: TokenIdentity,
    pub csrf: String,
    created: Instant,
}

#[derive(Default)]
pub struct SessionStore {
    map: Mutex<HashMap<TokenHash, Session>>,
}

fn random_secret() -> String {
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

impl SessionStore {
    /// A new session; returns the cookie value and the session.
    pub fn create(&self, identity: TokenIdentity) -> (String, Session) {
        let cookie = random_secret();
        let session = Session {
            identity,
            csrf: random_secret(),
            created: Instant::now(),
        };
        let mut map = self.lock();
        map.retain(|_, s| s.created.elapsed() < LIFETIME);
        if map.len() >= MAX_SESSIONS {
            if let Some(oldest) = map.iter().min_by_key(|(_, s)| s.created).map(|(k, _)| *k) {
                map.remove(&oldest);
            }
        }
        map.insert(hash_token(&cookie), session.clone());
        (cookie, session)
    }

    pub fn get(&self, cookie: &str) -> Option<Session> {
        let key = hash_token(cookie);
        let mut map = self.lock();
        match map.get(&key) {
            Some(s) if s.created.elapsed() < LIFETIME => Some(s.clone()),
            Some(_) => {
                map.remove(&key);
                None
            }
            None => None,
        }
    }

    pub fn remove(&self, cookie: &str) {
        self.lock().remove(&hash_token(cookie));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TokenHash, Session>> {
        self.map.lock().expect("session map poisoned")
    }
}

/// The `Set-Cookie` value for a new session.
pub fn set_cookie(value: &str) -> String {
    format!(
        "{COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        LIFETIME.as_secs()
    )
}

/// The `Set-Cookie` value that ends a session in the browser.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
}

/// Our cookie's value in a request's `Cookie` headers, if present.
pub fn from_headers(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|h| h.split(';'))
        .find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == COOKIE && !v.is_empty()).then_some(v)
        })
}
