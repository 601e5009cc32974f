//! The authentication switch as operations: what `heldar auth status` shows, what `heldar auth
//! on|off` sets, and the one automatic change — creating a token while no switch was ever
//! recorded turns authentication on (`ops::tokens::create`). The rule itself is
//! `auth::mode`'s; this module records changes and logs them. It never turns authentication
//! off by itself: revoking the last token leaves it on (and says so), because a switch that
//! flips open on its own is how a locked server ends up open.
//!
//! The command line has only the database, no running server; a running server picks a change
//! up within `auth::RECHECK` and logs it there too.

use crate::auth::mode::{self, StoredMode};
use crate::clock::Clock;
use crate::db::{self, Pool};
use crate::error::OpResult;

/// What `heldar auth status` reports.
#[derive(Debug, Clone)]
pub struct AuthStatus {
    /// Whether the database says requests must authenticate (HELDAR_API_TOKEN aside).
    pub on: bool,
    /// Whether an operator (or the first token) recorded the switch, rather than it being
    /// derived from the tokens.
    pub recorded: bool,
    /// How it came to be, in words.
    pub why: String,
    pub live_tokens: u64,
}

pub async fn status(db: &Pool) -> OpResult<AuthStatus> {
    let m = mode::stored(db).await?;
    Ok(AuthStatus {
        on: m.on,
        recorded: m.switch.is_some(),
        why: m.why(),
        live_tokens: db::tokens::count_live(db).await?,
    })
}

/// Set the switch; `by` says who or what did it (`heldar auth off`). Returns whether it changed.
pub async fn set(db: &Pool, clock: &dyn Clock, on: bool, by: &str) -> OpResult<bool> {
    let before = mode::set(db, on, clock.now(), by).await?;
    log_change(&before, on, by);
    Ok(before.on != on)
}

/// What the switch says before a token is created (for [`token_created`]: with no switch
/// recorded, the answer is derived from the tokens, which the new one would change).
pub(crate) async fn before_token(db: &Pool) -> OpResult<StoredMode> {
    Ok(mode::stored(db).await?)
}

/// After a token was created: with no switch recorded (`before`, read before the token
/// existed), record it on. Returns whether authentication was off and is now on.
pub(crate) async fn token_created(
    db: &Pool,
    clock: &dyn Clock,
    name: &str,
    before: &StoredMode,
) -> OpResult<bool> {
    if before.switch.is_some() {
        // An operator's decision (`heldar auth off` included) stands.
        return Ok(false);
    }
    let by = format!("the first token ({name:?}) was created");
    mode::set(db, true, clock.now(), &by).await?;
    log_change(before, true, &by);
    Ok(!before.on)
}

fn log_change(before: &StoredMode, on: bool, by: &str) {
    match (before.on, on) {
        (false, true) => tracing::warn!(by = %by,
            "authentication switched ON: the API, the dashboard, /media and /metrics need a token"),
        (true, false) => tracing::warn!(by = %by,
            "authentication switched OFF: every request is treated as admin"),
        _ => tracing::info!(by = %by, on, "authentication switch recorded (unchanged)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::models::Role;

    #[tokio::test]
    async fn the_first_token_turns_auth_on_an_explicit_off_stands_and_revoking_keeps_it_on() {
        let dir = tempfile::tempdir().unwrap();
        let (ops, _writer) = crate::ops::test_ops(dir.path()).await;
        let db = &ops.db;
        let st = status(db).await.unwrap();
        assert!(!st.on && !st.recorded, "{st:?}");

        crate::ops::tokens::create(db, &SystemClock, "ops", Role::Admin)
            .await
            .unwrap();
        let st = status(db).await.unwrap();
        assert!(st.on && st.recorded && st.live_tokens == 1, "{st:?}");
        assert!(st.why.contains("\"ops\""), "{}", st.why);

        // Revoking the last token does not open anything.
        crate::ops::tokens::revoke(db, &SystemClock, "ops")
            .await
            .unwrap();
        let st = status(db).await.unwrap();
        assert!(st.on && st.live_tokens == 0, "{st:?}");

        // Off is an operator's decision: a later token does not undo it.
        assert!(set(db, &SystemClock, false, "heldar auth off")
            .await
            .unwrap());
        crate::ops::tokens::create(db, &SystemClock, "grafana", Role::Viewer)
            .await
            .unwrap();
        let st = status(db).await.unwrap();
        assert!(!st.on, "{st:?}");
        assert!(st.why.starts_with("heldar auth off, at "), "{}", st.why);
        assert!(!set(db, &SystemClock, false, "heldar auth off")
            .await
            .unwrap());
        assert!(set(db, &SystemClock, true, "heldar auth on").await.unwrap());
        assert!(status(db).await.unwrap().on);
    }

    #[tokio::test]
    async fn a_database_with_tokens_from_before_the_switch_stays_locked() {
        let dir = tempfile::tempdir().unwrap();
        let (ops, _writer) = crate::ops::test_ops(dir.path()).await;
        // A token row written the old way: no switch recorded.
        let row = crate::db::tokens::TokenRow {
            id: "0123456789ab".into(),
            name: "old".into(),
            role: Role::Admin,
            hash: vec![0; 32],
            created_at: chrono::Utc::now(),
            revoked_at: None,
        };
        crate::db::tokens::insert(&ops.db, &row).await.unwrap();
        crate::db::tokens::revoke(&ops.db, "old", chrono::Utc::now())
            .await
            .unwrap()
            .unwrap();
        let st = status(&ops.db).await.unwrap();
        assert!(st.on && !st.recorded && st.live_tokens == 0, "{st:?}");
    }
}
