//! Creating, listing and revoking tokens: shared by `heldar token …` and `/api/v1/tokens`.

use chrono::Utc;
use serde::Serialize;
use utoipa::ToSchema;

use super::token::{generate, hash_token};
use super::Role;
use crate::db::{self, tokens::TokenRow, DbError, Pool};
use crate::models::fmt_ts;

/// A token as shown to people: never its secret or hash.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TokenView {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

impl From<&TokenRow> for TokenView {
    fn from(t: &TokenRow) -> Self {
        TokenView {
            id: t.id.clone(),
            name: t.name.clone(),
            role: t.role,
            created_at: fmt_ts(t.created_at),
            revoked_at: t.revoked_at.map(fmt_ts),
        }
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
    if super::token::is_id(name) {
        return Err(format!(
            "token name {name:?} looks like a token id; pick a name with other characters"
        ));
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    #[error("{0}")]
    BadName(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Create a token; returns its view and the token itself (shown once, never stored).
pub async fn create(
    pool: &Pool,
    name: &str,
    role: Role,
) -> Result<(TokenView, String), ManageError> {
    check_name(name).map_err(ManageError::BadName)?;
    let (token, id) = generate();
    let row = TokenRow {
        id,
        name: name.to_string(),
        role,
        hash: hash_token(&token).to_vec(),
        created_at: Utc::now(),
        revoked_at: None,
    };
    db::tokens::insert(pool, &row).await?;
    Ok((TokenView::from(&row), token))
}

pub async fn list(pool: &Pool) -> Result<Vec<TokenView>, DbError> {
    Ok(db::tokens::list(pool)
        .await?
        .iter()
        .map(TokenView::from)
        .collect())
}

/// Revoke by id or name; `None` if no live token has it.
pub async fn revoke(pool: &Pool, id_or_name: &str) -> Result<Option<TokenView>, DbError> {
    Ok(db::tokens::revoke(pool, id_or_name, Utc::now())
        .await?
        .as_ref()
        .map(TokenView::from))
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
