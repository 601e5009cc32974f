//! The `meta` table: named values Heldar keeps about the database itself — the sealing key's
//! check, how the last run ended (`running_since` while a run is in progress, `clean_stop_at`
//! once it stopped cleanly), which start-up reconciliation reads to decide what it must check
//! before the scheduler starts, and the authentication switch (`auth_mode`, with when and why it
//! was last set), which `auth::mode` reads, and the install's id (`install_id`, made by migration
//! 0020), which marks the frame storage as this database's (`store::FrameStore::claim`).

use chrono::{DateTime, Utc};

use super::{parse_ts, step, with_pool, DbError, Pool};
use crate::models::fmt_ts;

/// The key check of the credential sealing key (`camera::seal`), if one was stored.
pub async fn key_check(pool: &Pool) -> Result<Option<String>, DbError> {
    with_pool!(pool, p => {
        sqlx::query_scalar("SELECT value FROM meta WHERE name = 'key_check'")
            .fetch_optional(p)
            .await
    })
    .map_err(step("reading the key check"))
}

/// Store the key check unless the database has one: processes starting at once on a new
/// database race here, and the first one's stands (the others read it back and compare).
pub async fn set_key_check(pool: &Pool, value: &str) -> Result<(), DbError> {
    with_pool!(pool, p => {
        sqlx::query(
            "INSERT INTO meta (name, value) VALUES ('key_check', $1) \
             ON CONFLICT (name) DO NOTHING",
        )
            .bind(value)
            .execute(p)
            .await
            .map(|_| ())
    })
    .map_err(step("writing the key check"))?;
    Ok(())
}

/// What the database says about how the last run of Heldar ended (start-up reconciliation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LastRun {
    /// It stopped cleanly at this time: every frame it wrote had its row committed.
    Clean { stopped_at: DateTime<Utc> },
    /// A run that began at this time never recorded a clean stop: it crashed (or another
    /// process is using the database right now).
    Unclean { started_at: DateTime<Utc> },
    /// No run recorded either (a new database, or one written by a Heldar before these marks).
    Unknown,
}

async fn get(pool: &Pool, name: &str) -> Result<Option<String>, DbError> {
    with_pool!(pool, p => {
        sqlx::query_scalar("SELECT value FROM meta WHERE name = $1")
            .bind(name)
            .fetch_optional(p)
            .await
    })
    .map_err(step("reading the run marks"))
}

/// How the last run ended: a `running_since` mark means it never stopped cleanly.
pub async fn last_run(pool: &Pool) -> Result<LastRun, DbError> {
    if let Some(started) = get(pool, RUNNING_SINCE).await? {
        return Ok(LastRun::Unclean {
            started_at: parse_ts(&started)?,
        });
    }
    Ok(match get(pool, CLEAN_STOP_AT).await? {
        Some(t) => LastRun::Clean {
            stopped_at: parse_ts(&t)?,
        },
        None => LastRun::Unknown,
    })
}

const RUNNING_SINCE: &str = "running_since";
/// Set a named value (binds: name, value), the same statement on both back-ends.
const UPSERT: &str = "INSERT INTO meta (name, value) VALUES ($1, $2) \
     ON CONFLICT (name) DO UPDATE SET value = excluded.value";
const CLEAN_STOP_AT: &str = "clean_stop_at";

/// Mark a run as started at `at`; it stays marked until [`record_clean_stop`].
pub async fn record_run_start(pool: &Pool, at: DateTime<Utc>) -> Result<(), DbError> {
    with_pool!(pool, p => {
        sqlx::query(UPSERT)
            .bind(RUNNING_SINCE)
            .bind(fmt_ts(at))
            .execute(p)
            .await
            .map(|_| ())
    })
    .map_err(step("recording the run's start"))?;
    Ok(())
}

/// Clear the run mark and record a clean stop at `at`, in one transaction.
pub async fn record_clean_stop(pool: &Pool, at: DateTime<Utc>) -> Result<(), DbError> {
    with_pool!(pool, p => async {
        let mut tx = p.begin().await?;
        sqlx::query("DELETE FROM meta WHERE name = $1")
            .bind(RUNNING_SINCE)
            .execute(&mut *tx)
            .await?;
        sqlx::query(UPSERT)
            .bind(CLEAN_STOP_AT)
            .bind(fmt_ts(at))
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }
    .await)
    .map_err(step("recording a clean stop"))
}

const AUTH_MODE: &str = "auth_mode";
const AUTH_MODE_AT: &str = "auth_mode_changed_at";
const AUTH_MODE_BY: &str = "auth_mode_changed_by";

/// The recorded authentication switch: on or off, when, and what set it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSwitch {
    pub on: bool,
    pub changed_at: Option<DateTime<Utc>>,
    /// What set it, in words (`heldar auth off`, `the first token ("ops") was created`).
    pub changed_by: Option<String>,
}

/// The authentication switch, if one was ever recorded. A value other than `on`/`off` is a
/// corrupt row (an error, never read as off).
pub async fn auth_switch(pool: &Pool) -> Result<Option<AuthSwitch>, DbError> {
    let rows: Vec<(String, String)> = with_pool!(pool, p => {
        sqlx::query_as("SELECT name, value FROM meta WHERE name IN ($1, $2, $3)")
            .bind(AUTH_MODE)
            .bind(AUTH_MODE_AT)
            .bind(AUTH_MODE_BY)
            .fetch_all(p)
            .await
    })
    .map_err(step("reading the authentication switch"))?;
    let value = |n: &str| rows.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    let on = match value(AUTH_MODE) {
        None => return Ok(None),
        Some("on") => true,
        Some("off") => false,
        Some(other) => {
            return Err(DbError::Corrupt(format!(
                "meta.auth_mode is {other:?}, not \"on\" or \"off\""
            )))
        }
    };
    Ok(Some(AuthSwitch {
        on,
        changed_at: value(AUTH_MODE_AT).map(parse_ts).transpose()?,
        changed_by: value(AUTH_MODE_BY).map(str::to_string),
    }))
}

/// Record the authentication switch (one transaction). Returns the switch it replaced.
pub async fn set_auth_switch(
    pool: &Pool,
    on: bool,
    at: DateTime<Utc>,
    by: &str,
) -> Result<Option<AuthSwitch>, DbError> {
    let before = auth_switch(pool).await?;
    let values = [
        (AUTH_MODE, if on { "on" } else { "off" }.to_string()),
        (AUTH_MODE_AT, fmt_ts(at)),
        (AUTH_MODE_BY, by.to_string()),
    ];
    with_pool!(pool, p => async {
        let mut tx = p.begin().await?;
        for (name, value) in &values {
            sqlx::query(UPSERT)
                .bind(name)
                .bind(value)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    }
    .await)
    .map_err(step("setting the authentication switch"))?;
    Ok(before)
}

const INSTALL_ID: &str = "install_id";

/// This database's install id (`ins_…`, made once by migration 0020; a fleet's nodes share it).
pub async fn install_id(pool: &Pool) -> Result<String, DbError> {
    get(pool, INSTALL_ID)
        .await?
        .ok_or_else(|| DbError::Corrupt("meta.install_id is missing".into()))
}

/// Replace the install id (`heldar migrate`: the destination becomes the source's install).
pub async fn set_install_id(pool: &Pool, id: &str) -> Result<(), DbError> {
    with_pool!(pool, p => {
        sqlx::query(UPSERT)
            .bind(INSTALL_ID)
            .bind(id)
            .execute(p)
            .await
            .map(|_| ())
    })
    .map_err(step("writing the install id"))
}
