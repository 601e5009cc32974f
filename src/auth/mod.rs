//! Who is asking, and what they may do (docs/design.md §11).
//!
//! Three roles, each including the one before: `viewer` reads cameras, schedules, frames and
//! media; `operator` also takes live snapshots and manages schedules; `admin` also manages
//! cameras and tokens. A request proves its role with `Authorization: Bearer <token>` or with the
//! dashboard's session cookie ([`session`]). Tokens come from `heldar token create` (kept only as a
//! SHA-256, see [`token`]) or from HELDAR_API_TOKEN, which is a bootstrap admin.
//!
//! Auth is *on* when HELDAR_API_TOKEN is set, or when the switch recorded in the database says so
//! ([`mode`]: `heldar auth on|off`; creating the first token turns it on; revoking the last one
//! does not turn it off). With it off (a loopback install that never made a token, or one whose
//! operator ran `heldar auth off`) every request is treated as admin, which is what a newcomer
//! running the quickstart expects. The server re-reads the switch at most [`RECHECK`] after a
//! change, so `heldar auth off|on` works while it runs, and it logs every change it sees. Which
//! role each route needs is declared in one table, the route list (`routes`); this module only
//! answers "who is this".
//!
//! Every comparison of a presented secret against a stored one is constant-time
//! ([`token::hash_eq`]), and no token, hash or cookie value is ever logged.

pub mod mode;
pub mod session;
pub mod token;

use std::sync::Mutex;
use std::time::{Duration, Instant};

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

/// How long the server trusts its last reading of the authentication switch. `heldar auth
/// on|off` is another process writing the database, so the server cannot be told; one small
/// read a second (only while requests come) is the price of noticing within a second.
pub const RECHECK: Duration = Duration::from_secs(1);

/// How long a re-reading of the switch may take before the last reading is used instead.
const OUTAGE_READ_WAIT: Duration = Duration::from_secs(1);

/// How long a reading of "off" is trusted without the database answering. In a fleet another
/// node (or `heldar auth on` on another machine) may turn authentication on while this node
/// cannot read it: past this, requests fail closed with a 503 until the switch can be read. A
/// reading of "on" is kept as long as it takes (it only ever asks for more).
const OFF_TRUSTED_UNREAD: Duration = Duration::from_secs(15);

/// The last reading of the switch: its value, and when it was read (`None`: read it again).
#[derive(Clone, Copy)]
struct Seen {
    on: bool,
    read_at: Option<Instant>,
    /// The last time the database itself answered (`read_at` also moves when a reading is
    /// kept through an outage).
    answered_at: Option<Instant>,
}

pub struct Auth {
    db: Pool,
    bootstrap: Option<TokenHash>,
    seen: Mutex<Option<Seen>>,
    pub sessions: SessionStore,
}

impl Auth {
    pub fn new(db: Pool, bootstrap_token: Option<&str>) -> Auth {
        Auth {
            db,
            bootstrap: bootstrap_token.map(hash_token),
            seen: Mutex::new(None),
            sessions: SessionStore::default(),
        }
    }

    /// Whether requests must authenticate: always with HELDAR_API_TOKEN set, else as the
    /// switch in the database says ([`mode`]), re-read at most [`RECHECK`] after the last read.
    pub async fn enabled(&self) -> OpResult<bool> {
        if self.bootstrap.is_some() {
            return Ok(true);
        }
        let last = *self.seen.lock().expect("auth switch lock");
        if let Some(Seen {
            on,
            read_at: Some(at),
            ..
        }) = last
        {
            if at.elapsed() < RECHECK {
                return Ok(on);
            }
        }
        let mode = match last {
            None => mode::stored(&self.db).await?,
            // Read before: a database that is away (a PostgreSQL restart) cannot have changed
            // the switch meanwhile, since changing it is a write. So the last reading stands,
            // trusted for another RECHECK, and the read is bounded: requests (the health check
            // above all) go on during an outage instead of each waiting out the pool.
            Some(seen) => {
                let read = tokio::time::timeout(OUTAGE_READ_WAIT, mode::stored(&self.db)).await;
                match read {
                    Ok(Ok(mode)) => mode,
                    Ok(Err(e)) if !e.is_unavailable() => return Err(e.into()),
                    _ => {
                        let unread = seen.answered_at.map(|t| t.elapsed());
                        if !seen.on && unread.is_none_or(|u| u > OFF_TRUSTED_UNREAD) {
                            return Err(crate::error::OpError::Unavailable {
                                code: "database_unavailable",
                                message: format!(
                                    "authentication was off when the database last answered, \
                                     over {} s ago; until it answers again requests are refused, \
                                     since it may have been turned on meanwhile",
                                    OFF_TRUSTED_UNREAD.as_secs()
                                ),
                            });
                        }
                        *self.seen.lock().expect("auth switch lock") = Some(Seen {
                            on: seen.on,
                            read_at: Some(Instant::now()),
                            answered_at: seen.answered_at,
                        });
                        return Ok(seen.on);
                    }
                }
            }
        };
        let before = self
            .seen
            .lock()
            .expect("auth switch lock")
            .replace(Seen {
                on: mode.on,
                read_at: Some(Instant::now()),
                answered_at: Some(Instant::now()),
            })
            .map(|s| s.on);
        match before {
            Some(b) if b == mode.on => {}
            // The first reading: start-up says which way it is (see `announce`).
            None => {}
            Some(_) if mode.on => tracing::warn!(why = %mode.why(),
                "authentication is now ON: the API, the dashboard, /media and /metrics need a token"),
            Some(_) => tracing::warn!(why = %mode.why(),
                "authentication is now OFF: every request is treated as admin; `heldar auth on` turns it back on"),
        }
        Ok(mode.on)
    }

    /// Read the switch at the next request instead of trusting the last reading (this process
    /// just changed it, e.g. by creating the first token through the API).
    pub fn recheck(&self) {
        if let Some(s) = self.seen.lock().expect("auth switch lock").as_mut() {
            s.read_at = None;
        }
    }

    /// Log, once at start-up, whether authentication is on and why.
    pub async fn announce(&self, metrics_need_token: bool) -> OpResult<()> {
        let metrics = if metrics_need_token {
            ""
        } else {
            " (except /metrics: HELDAR_METRICS_AUTH=none)"
        };
        if self.bootstrap.is_some() {
            tracing::info!("authentication is ON (HELDAR_API_TOKEN is set): the API, the dashboard, /media and /metrics need a token{metrics}");
            return Ok(());
        }
        let on = self.enabled().await?;
        let mode = mode::stored(&self.db).await?;
        if on {
            let live = db::tokens::count_live(&self.db).await?;
            tracing::info!(why = %mode.why(), live_tokens = live,
                "authentication is ON: the API, the dashboard, /media and /metrics need a token{metrics}");
            if live == 0 {
                tracing::warn!("authentication is on but no live token exists: nobody can use the API or the dashboard; create one with `heldar token create --role admin --name NAME`, or turn authentication off with `heldar auth off`");
            }
        } else {
            tracing::info!(why = %mode.why(),
                "authentication is OFF: every request is treated as admin (this server listens on loopback only); `heldar token create` or `heldar auth on` turns it on");
        }
        Ok(())
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
