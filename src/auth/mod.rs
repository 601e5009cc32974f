//! Who is asking, and what they may do (DESIGN.md §11).
//!
//! Three roles, each including the one before: `viewer` reads cameras, schedules, frames and
//! media; `operator` also takes live snapshots and manages schedules; `admin` also manages
//! cameras and tokens. A request proves its role with `Authorization: Bearer <token>` or with the
//! dashboard's session cookie ([`session`]). Tokens come from `heldar token create` (kept only as a
//! SHA-256, see [`token`]) or from HELDAR_API_TOKEN, which is a bootstrap admin.
//!
//! Auth is *on* when HELDAR_API_TOKEN is set or any token was ever created (revoking the last
//! token locks the API rather than opening it); with it off (a loopback install that never made
//! a token) every request is treated as admin, which is what a newcomer running the quickstart
//! expects. Which role each route needs is declared in one table,
//! the route list (`routes`); this module only answers "who is this".
//!
//! Every comparison of a presented secret against a stored one is constant-time
//! ([`token::hash_eq`]), and no token, hash or cookie value is ever logged.

pub mod session;
pub mod token;

use std::sync::atomic::{AtomicBool, Ordering};

use crate::db::{self, Pool};
use crate::error::OpResult;
use session::{Session, SessionStore};
use token::{hash_eq, hash_token, TokenHash};

pub use crate::models::Role;

/// How a request was authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// Auth is off: everyone is admin.
    Open,
    Bearer,
    /// The dashboard's cookie; state-changing requests must echo `csrf`.
    Cookie {
        csrf: String,
    },
}

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Anyone: liveness, the API description, login, the dashboard's static files.
    Public,
    Role(Role),
}

/// Which role each route needs: method (`GET`, …) and route pattern (`/api/v1/cameras/{id}`) →
/// [`Need`]. Built once from the route list (`routes::access`); HEAD follows GET.
#[derive(Debug, Clone, Default)]
pub struct AccessTable {
    rules: std::collections::BTreeMap<(String, String), Need>,
}

impl AccessTable {
    pub fn insert(&mut self, method: &str, path: &str, need: Need) {
        self.rules
            .insert((method.to_ascii_uppercase(), path.to_string()), need);
    }

    /// The rule for `method` on the route pattern `path`; `Err(true)` if the path has rules but
    /// not for this method (the router answers 405), `Err(false)` if it has none at all.
    pub fn need_for(&self, method: &str, path: &str) -> Result<Need, bool> {
        let m = if method.eq_ignore_ascii_case("HEAD") {
            "GET".to_string()
        } else {
            method.to_ascii_uppercase()
        };
        if let Some(n) = self.rules.get(&(m, path.to_string())) {
            return Ok(*n);
        }
        Err(self.rules.keys().any(|(_, p)| p == path))
    }

    /// Every rule: method, path, need.
    pub fn rules(&self) -> impl Iterator<Item = (&str, &str, Need)> {
        self.rules
            .iter()
            .map(|((m, p), n)| (m.as_str(), p.as_str(), *n))
    }
}

/// The caller of one request (put in the request's extensions by `routes::access`).
#[derive(Debug, Clone)]
pub struct Principal {
    pub role: Role,
    /// The token's name (`HELDAR_API_TOKEN` for the bootstrap token); `None` with auth off.
    pub name: Option<String>,
    pub via: Via,
}

/// A verified token: its role, name, and row id (`None` for the bootstrap token).
#[derive(Debug, Clone)]
pub struct TokenIdentity {
    pub role: Role,
    pub name: String,
    pub token_id: Option<String>,
}

/// The name the bootstrap token goes by in sessions and logs.
pub const BOOTSTRAP_NAME: &str = "HELDAR_API_TOKEN";

pub struct Auth {
    db: Pool,
    bootstrap: Option<TokenHash>,
    /// Set once a token row has been seen. Rows are never deleted (revoking keeps them), so
    /// auth never turns off again and later requests skip the check's query.
    tokens_exist: AtomicBool,
    pub sessions: SessionStore,
}

impl Auth {
    pub fn new(db: Pool, bootstrap_token: Option<&str>) -> Auth {
        Auth {
            db,
            bootstrap: bootstrap_token.map(hash_token),
            tokens_exist: AtomicBool::new(false),
            sessions: SessionStore::default(),
        }
    }

    /// Whether requests must authenticate.
    pub async fn enabled(&self) -> OpResult<bool> {
        if self.bootstrap.is_some() || self.tokens_exist.load(Ordering::Relaxed) {
            return Ok(true);
        }
        let exist = db::tokens::any_ever(&self.db).await?;
        if exist {
            self.tokens_exist.store(true, Ordering::Relaxed);
        }
        Ok(exist)
    }

    /// The identity behind a presented token, if it is a live one.
    pub async fn verify_token(&self, presented: &str) -> OpResult<Option<TokenIdentity>> {
        let presented_hash = hash_token(presented);
        // Always compare against the bootstrap token, so timing does not tell which kind of
        // token was presented.
        let is_bootstrap = self
            .bootstrap
            .as_ref()
            .is_some_and(|b| hash_eq(b, &presented_hash));
        if is_bootstrap {
            return Ok(Some(TokenIdentity {
                role: Role::Admin,
                name: BOOTSTRAP_NAME.into(),
                token_id: None,
            }));
        }
        let Some(id) = token::id_of(presented) else {
            return Ok(None);
        };
        let Some(row) = db::tokens::get_live(&self.db, id).await? else {
            return Ok(None);
        };
        Ok(
            hash_eq(&row.hash, &presented_hash).then_some(TokenIdentity {
                role: row.role,
                name: row.name,
                token_id: Some(row.id),
            }),
        )
    }

    /// The session behind a cookie value, if it is live and its token has not been revoked since.
    pub async fn session(&self, cookie: &str) -> OpResult<Option<Session>> {
        let Some(s) = self.sessions.get(cookie) else {
            return Ok(None);
        };
        if let Some(id) = &s.identity.token_id {
            if db::tokens::get_live(&self.db, id).await?.is_none() {
                self.sessions.remove(cookie);
                return Ok(None);
            }
        }
        Ok(Some(s))
    }
}
