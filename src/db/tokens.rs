//! API token rows (`api_tokens`): only hashes are stored. See `auth::token`.

use chrono::{DateTime, Utc};

use super::{parse_opt_ts, parse_ts, step, with_pool, Cols, DbError, Pool};
use crate::models::{fmt_ts, Role};

/// One token row (never the token itself).
#[derive(Debug, Clone)]
pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub hash: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

fn from_row(r: &impl Cols) -> Result<TokenRow, DbError> {
    Ok(TokenRow {
        id: r.text("id")?,
        name: r.text("name")?,
        role: Role::parse(&r.text("role")?).map_err(DbError::Corrupt)?,
        hash: r.bytes("hash")?,
        created_at: parse_ts(&r.text("created_at")?)?,
        revoked_at: parse_opt_ts(r.opt_text("revoked_at")?)?,
    })
}

pub async fn insert(pool: &Pool, t: &TokenRow) -> Result<(), DbError> {
    let r = with_pool!(pool, p => {
        sqlx::query(
            "INSERT INTO api_tokens (id, name, role, hash, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&t.id)
        .bind(&t.name)
        .bind(t.role.as_str())
        .bind(&t.hash)
        .bind(fmt_ts(t.created_at))
        .execute(p)
        .await
        .map(|_| ())
    });
    match r {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(DbError::Conflict(
            format!("a live token named {:?} already exists", t.name),
        )),
        Err(e) => Err(step("creating a token")(e)),
    }
}

/// A token that has not been revoked.
pub async fn get_live(pool: &Pool, id: &str) -> Result<Option<TokenRow>, DbError> {
    with_pool!(pool, p => {
        let row = sqlx::query("SELECT * FROM api_tokens WHERE id = $1 AND revoked_at IS NULL")
            .bind(id)
            .fetch_optional(p)
            .await
            .map_err(step("reading a token"))?;
        row.as_ref().map(from_row).transpose()
    })
}

/// Whether any token was ever created, live or revoked (with no authentication switch recorded,
/// auth is then on: see `auth::mode`).
pub async fn any_ever(pool: &Pool) -> Result<bool, DbError> {
    // A count of at most one row, not EXISTS: EXISTS is an integer on SQLite, a boolean on
    // PostgreSQL.
    let n: i64 = with_pool!(pool, p => {
        sqlx::query_scalar("SELECT COUNT(*) FROM (SELECT 1 FROM api_tokens LIMIT 1) AS t")
            .fetch_one(p)
            .await
    })
    .map_err(step("checking for tokens"))?;
    Ok(n != 0)
}

/// How many tokens are live (not revoked).
pub async fn count_live(pool: &Pool) -> Result<u64, DbError> {
    let n: i64 = with_pool!(pool, p => {
        sqlx::query_scalar("SELECT COUNT(*) FROM api_tokens WHERE revoked_at IS NULL")
            .fetch_one(p)
            .await
    })
    .map_err(step("counting tokens"))?;
    Ok(n.max(0) as u64)
}

/// Every token, newest first (revoked ones too).
pub async fn list(pool: &Pool) -> Result<Vec<TokenRow>, DbError> {
    with_pool!(pool, p => {
        sqlx::query("SELECT * FROM api_tokens ORDER BY created_at DESC, id")
            .fetch_all(p)
            .await
            .map_err(step("listing tokens"))?
            .iter()
            .map(from_row)
            .collect()
    })
}

/// Revoke the live token with this id or name; the revoked row, if there was one.
pub async fn revoke(
    pool: &Pool,
    id_or_name: &str,
    at: DateTime<Utc>,
) -> Result<Option<TokenRow>, DbError> {
    with_pool!(pool, p => {
        let row = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE revoked_at IS NULL \
             AND (id = $2 OR name = $2) RETURNING *",
        )
        .bind(fmt_ts(at))
        .bind(id_or_name)
        .fetch_optional(p)
        .await
        .map_err(step("revoking a token"))?;
        row.as_ref().map(from_row).transpose()
    })
}
