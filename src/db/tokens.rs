//! API token rows (`api_tokens`): only hashes are stored. See `auth::token`.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{parse_ts, step, DbError, Pool};
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

fn from_row(r: &sqlx::sqlite::SqliteRow) -> Result<TokenRow, DbError> {
    let role: String = r.get("role");
    Ok(TokenRow {
        id: r.get("id"),
        name: r.get("name"),
        role: Role::parse(&role).map_err(DbError::Corrupt)?,
        hash: r.get("hash"),
        created_at: parse_ts(r.get("created_at"))?,
        revoked_at: r
            .get::<Option<String>, _>("revoked_at")
            .as_deref()
            .map(parse_ts)
            .transpose()?,
    })
}

pub async fn insert(pool: &Pool, t: &TokenRow) -> Result<(), DbError> {
    let r = sqlx::query(
        "INSERT INTO api_tokens (id, name, role, hash, created_at) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(&t.id)
    .bind(&t.name)
    .bind(t.role.as_str())
    .bind(&t.hash)
    .bind(fmt_ts(t.created_at))
    .execute(pool)
    .await;
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
    let row = sqlx::query("SELECT * FROM api_tokens WHERE id = ? AND revoked_at IS NULL")
        .bind(id)
        .fetch_optional(pool)
        .await
        .map_err(step("reading a token"))?;
    row.as_ref().map(from_row).transpose()
}

/// Whether any token was ever created, live or revoked (with no authentication switch recorded,
/// auth is then on: see `auth::mode`).
pub async fn any_ever(pool: &Pool) -> Result<bool, DbError> {
    let n: i64 = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM api_tokens)")
        .fetch_one(pool)
        .await
        .map_err(step("checking for tokens"))?;
    Ok(n != 0)
}

/// How many tokens are live (not revoked).
pub async fn count_live(pool: &Pool) -> Result<u64, DbError> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM api_tokens WHERE revoked_at IS NULL")
        .fetch_one(pool)
        .await
        .map_err(step("counting tokens"))?;
    Ok(n.max(0) as u64)
}

/// Every token, newest first (revoked ones too).
pub async fn list(pool: &Pool) -> Result<Vec<TokenRow>, DbError> {
    let rows = sqlx::query("SELECT * FROM api_tokens ORDER BY created_at DESC, id")
        .fetch_all(pool)
        .await
        .map_err(step("listing tokens"))?;
    rows.iter().map(from_row).collect()
}

/// Revoke the live token with this id or name; the revoked row, if there was one.
pub async fn revoke(
    pool: &Pool,
    id_or_name: &str,
    at: DateTime<Utc>,
) -> Result<Option<TokenRow>, DbError> {
    let row = sqlx::query(
        "UPDATE api_tokens SET revoked_at = ? WHERE revoked_at IS NULL AND (id = ? OR name = ?) \
         RETURNING *",
    )
    .bind(fmt_ts(at))
    .bind(id_or_name)
    .bind(id_or_name)
    .fetch_optional(pool)
    .await
    .map_err(step("revoking a token"))?;
    row.as_ref().map(from_row).transpose()
}
