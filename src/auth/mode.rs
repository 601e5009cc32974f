//! The authentication switch: whether requests must authenticate, as the database records it.
//!
//! The switch lives in the `meta` table (`db::meta::auth_switch`), so the command line
//! (`heldar auth on|off`, `heldar token create`) and a running server see the same value; the
//! server re-reads it within [`super::RECHECK`]. The rule, in full:
//!
//! - a recorded switch (`on` or `off`) is the answer;
//! - with none recorded (a database from before the switch existed, or a fresh install), auth is
//!   on if any token was ever created, live or revoked — what Heldar did before, so an upgrade
//!   never opens a server that was locked;
//! - HELDAR_API_TOKEN, set on the server, keeps auth on whatever the switch says (a server on a
//!   non-loopback address must have it, so such a server is never opened by `heldar auth off`).
//!   That last part is the server's business ([`super::Auth`]): this module only reads the
//!   database.
//!
//! It fails as the database fails: an unreadable or corrupt switch is an error, never "off".

use chrono::{DateTime, Utc};

use crate::db::{self, meta::AuthSwitch, DbError, Pool};

/// What the database says about authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMode {
    /// Whether requests must authenticate (HELDAR_API_TOKEN aside).
    pub on: bool,
    /// The recorded switch; `None` when the answer comes from the tokens (see the module docs).
    pub switch: Option<AuthSwitch>,
}

impl StoredMode {
    /// How the answer came about, in words, for logs and `heldar auth status`.
    pub fn why(&self) -> String {
        match &self.switch {
            Some(AuthSwitch {
                changed_by: Some(by),
                changed_at,
                ..
            }) => match changed_at {
                Some(at) => format!("{by}, at {}", crate::models::fmt_ts(*at)),
                None => by.clone(),
            },
            Some(_) => "set earlier".into(),
            None if self.on => {
                "tokens were created before the switch was recorded (`heldar auth on|off` records it)"
                    .into()
            }
            None => "no token was ever created".into(),
        }
    }
}

/// Read the switch, or derive it from the tokens when none was recorded.
pub async fn stored(db: &Pool) -> Result<StoredMode, DbError> {
    match db::meta::auth_switch(db).await? {
        Some(s) => Ok(StoredMode {
            on: s.on,
            switch: Some(s),
        }),
        None => Ok(StoredMode {
            on: db::tokens::any_ever(db).await?,
            switch: None,
        }),
    }
}

/// Record the switch; returns what the database said before.
pub async fn set(db: &Pool, on: bool, at: DateTime<Utc>, by: &str) -> Result<StoredMode, DbError> {
    let before = stored(db).await?;
    db::meta::set_auth_switch(db, on, at, by).await?;
    Ok(before)
}
