//! API tokens: creating, listing and revoking them — shared by `heldar token …` (which has only
//! the database, no running server) and `/api/v1/tokens`. Only a token's hash is stored
//! (`auth::token`); the token itself is returned once, at creation, and never logged (the log
//! names a token by id and name). Creating a token while no authentication switch was ever
//! recorded turns authentication on (`ops::auth_switch`); revoking never turns it off.

use crate::auth::token::{generate, hash_token, is_id};
use crate::clock::Clock;
use crate::db::{self, tokens::TokenRow, Pool};
use crate::error::{OpError, OpResult};
use crate::models::{fmt_ts, Role, TokenView};

fn view(t: &TokenRow) -> TokenView {
    TokenView {
        id: t.id.clone(),
        name: t.name.clone(),
        role: t.role,
        created_at: fmt_ts(t.created_at),
        revoked_at: t.revoked_at.map(fmt_ts),
    }
}

/// A token's name: 1–64 letters, digits, spaces, `.`, `_` or `-`, and not shaped like an id (so
/// `revoke NAME_OR_ID` is never ambiguous).
pub fn check_name(name: &str) -> Result<(), String> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '.' | '_' | '-'));
    if name.trim().is_empty() || name.len() > 64 || !ok_chars || name.trim() != name {
        return Err(format!(
            "token name {name:?} must be 1 to 64 letters, digits, spaces, '.', '_' or '-', \
             without leading or trailing spaces"
        ));
    }
    if is_id(name) {
        return Err(format!(
            "token name {name:?} looks like a token id; pick a name with other characters"
        ));
    }
    Ok(())
}

/// Create a token; returns its view and the token itself (shown once, never stored).
pub async fn create(
    db: &Pool,
    clock: &dyn Clock,
    name: &str,
    role: Role,
) -> OpResult<(TokenView, String)> {
    check_name(name).map_err(|m| OpError::invalid("name", m))?;
    let (token, id) = generate();
    let row = TokenRow {
        id,
        name: name.to_string(),
        role,
        hash: hash_token(&token).to_vec(),
        created_at: clock.now(),
        revoked_at: None,
    };
    let before = super::auth_switch::before_token(db).await?;
    db::tokens::insert(db, &row).await?;
    tracing::info!(token_id = %row.id, token = %row.name, role = %role.as_str(), "token created");
    super::auth_switch::token_created(db, clock, name, &before).await?;
    Ok((view(&row), token))
}

pub async fn list(db: &Pool) -> OpResult<Vec<TokenView>> {
    Ok(db::tokens::list(db).await?.iter().map(view).collect())
}

/// Revoke by id or name. A value that is neither an id nor a possible name is invalid (422 over
/// HTTP); one no live token has is not found.
pub async fn revoke(db: &Pool, clock: &dyn Clock, id_or_name: &str) -> OpResult<TokenView> {
    if !is_id(id_or_name) {
        check_name(id_or_name).map_err(|m| OpError::invalid("id", m))?;
    }
    match db::tokens::revoke(db, id_or_name, clock.now()).await? {
        Some(t) => {
            tracing::info!(token_id = %t.id, token = %t.name, role = %t.role.as_str(), "token revoked");
            let st = super::auth_switch::status(db).await?;
            if st.on && st.live_tokens == 0 {
                tracing::warn!(token = %t.name,
                    "the last live token was revoked and authentication stays on: only \
                     HELDAR_API_TOKEN (if the server has one) can use the API now; create a token \
                     with `heldar token create` or turn authentication off with `heldar auth off`");
            }
            Ok(view(&t))
        }
        None => Err(OpError::NotFound(format!(
            "no live token has the id or name {id_or_name:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for ok in ["ci", "Front door NVR", "grafana.readonly", "a-b_c"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            " ",
            " lead",
            "trail ",
            "x/y",
            "naïve",
            "0123456789ab",
            &"n".repeat(65),
        ] {
            let e = check_name(bad).unwrap_err();
            assert!(e.starts_with("token name"), "{e}");
        }
    }
}
