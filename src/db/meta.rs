//! The `meta` table: named values Heldar keeps about the database itself.

use super::{step, DbError, Pool};

/// The key check of the credential sealing key (`camera::seal`), if one was stored.
pub async fn key_check(pool: &Pool) -> Result<Option<String>, DbError> {
    sqlx::query_scalar("SELECT value FROM meta WHERE name = 'key_check'")
        .fetch_optional(pool)
        .await
        .map_err(step("reading the key check"))
}

/// Store the key check (once, on the first start-up).
pub async fn set_key_check(pool: &Pool, value: &str) -> Result<(), DbError> {
    sqlx::query("INSERT INTO meta (name, value) VALUES ('key_check', ?)")
        .bind(value)
        .execute(pool)
        .await
        .map_err(step("writing the key check"))?;
    Ok(())
}
