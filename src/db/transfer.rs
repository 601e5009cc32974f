//! Copying an embedded install's database (SQLite) into a fleet's PostgreSQL, table by table,
//! for `heldar migrate` (docs/scale-out.md "Moving up from one box").
//!
//! What it owns: opening the source read-only (it never writes the source, not even a
//! migration: a source older than this Heldar is refused with a sentence), the tables in
//! foreign-key order, the copy of one page of rows (`INSERT … ON CONFLICT DO NOTHING`, so a
//! second run after an interruption adds only what is missing), the per-table counts, and
//! the check that the destination holds nothing but rows of this install. What it does not
//! own: the order of the steps, progress, frames and videos (`cli::migrate`).
//!
//! The column list of every table is read from the source's schema, so a table added by a
//! later migration is copied without changing this module; both schemas are the same by
//! construction (`migrations/` and `migrations-postgres/`, checked by tests/postgres.rs).
//! Failures are [`DbError`]s naming the step and the table.

use std::str::FromStr;

use sqlx::postgres::Postgres;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{PgPool, QueryBuilder, Row, SqlitePool};

use super::{step, DbError, Pool};

/// One column's type, as both schemas spell it (SQLite INTEGER/TEXT/BLOB, PostgreSQL
/// BIGINT/TEXT/BYTEA).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    Int,
    Text,
    Bytes,
}

/// A table to copy: its name, its one-column primary key, and its columns.
#[derive(Debug, Clone)]
pub struct Table {
    pub name: String,
    pub key: String,
    pub columns: Vec<(String, ColType)>,
}

/// One value read from the source.
enum Val {
    Int(Option<i64>),
    Text(Option<String>),
    Bytes(Option<Vec<u8>>),
}

/// A table or column name from the source's schema, quoted for SQL. Heldar's names are plain
/// words; anything with a quote in it is refused rather than escaped.
fn quoted(name: &str) -> Result<String, DbError> {
    if name.is_empty() || name.contains('"') {
        return Err(DbError::Corrupt(format!(
            "the source has a table or column named {name:?}, which Heldar never makes"
        )));
    }
    Ok(format!("\"{name}\""))
}

/// Open the SQLite database at `url` read-only, and check that its schema is this Heldar's
/// (every migration of `migrations/` applied, none unknown): a copy needs the same columns on
/// both sides, and upgrading the source here would change it.
pub async fn open_source(url: &str) -> anyhow::Result<Pool> {
    let opts = SqliteConnectOptions::from_str(url)?
        .read_only(true)
        .create_if_missing(false)
        .busy_timeout(std::time::Duration::from_secs(10));
    let pool = SqlitePoolOptions::new()
        .max_connections(2)
        .connect_with(opts)
        .await?;
    let have: Vec<i64> = sqlx::query_scalar(
        "SELECT version FROM _sqlx_migrations WHERE success = 1 ORDER BY version",
    )
    .fetch_all(&pool)
    .await
    .map_err(|e| anyhow::anyhow!("it is not a Heldar database ({e})"))?;
    let want: Vec<i64> = sqlx::migrate!("./migrations")
        .iter()
        .map(|m| m.version)
        .collect();
    if have != want {
        anyhow::bail!(
            "its schema is at migration {} and this Heldar's at {}: run this version's \
             `heldar serve` on it once (it upgrades the database at start-up), stop it, then \
             migrate",
            have.last().copied().unwrap_or(0),
            want.last().copied().unwrap_or(0)
        );
    }
    Ok(Pool::Sqlite(pool))
}

fn source(pool: &Pool) -> Result<&SqlitePool, DbError> {
    pool.sqlite()
        .ok_or_else(|| DbError::Corrupt("the source of a copy must be a SQLite database".into()))
}

fn dest(pool: &Pool) -> Result<&PgPool, DbError> {
    pool.postgres().ok_or_else(|| {
        DbError::Corrupt("the destination of a copy must be a PostgreSQL database".into())
    })
}

/// The source's tables (not sqlx's bookkeeping), parents before children: every table comes
/// after the tables its foreign keys name, so rows can be inserted in this order.
pub async fn tables(src: &Pool) -> Result<Vec<Table>, DbError> {
    let p = source(src)?;
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
         AND name <> '_sqlx_migrations' ORDER BY name",
    )
    .fetch_all(p)
    .await
    .map_err(step("listing the source's tables"))?;
    let mut found = Vec::new();
    for name in &names {
        let cols = sqlx::query("SELECT name, type, pk FROM pragma_table_info($1) ORDER BY cid")
            .bind(name)
            .fetch_all(p)
            .await
            .map_err(step("reading a table's columns"))?;
        let mut columns = Vec::new();
        let mut keys = Vec::new();
        for c in &cols {
            let col: String = c.get("name");
            let ty = match c.get::<String, _>("type").to_ascii_uppercase().as_str() {
                "INTEGER" => ColType::Int,
                "TEXT" => ColType::Text,
                "BLOB" => ColType::Bytes,
                other => {
                    return Err(DbError::Corrupt(format!(
                        "{name}.{col} has the type {other:?}, which Heldar never uses"
                    )))
                }
            };
            if c.get::<i64, _>("pk") != 0 {
                keys.push((col.clone(), ty));
            }
            columns.push((col, ty));
        }
        // Every Heldar table is keyed by one text id; pages of a copy follow that key.
        let [(key, ColType::Text)] = keys.as_slice() else {
            return Err(DbError::Corrupt(format!(
                "table {name} has no one-column text primary key to copy it by"
            )));
        };
        let parents: Vec<String> =
            sqlx::query_scalar("SELECT DISTINCT \"table\" FROM pragma_foreign_key_list($1)")
                .bind(name)
                .fetch_all(p)
                .await
                .map_err(step("reading a table's foreign keys"))?;
        found.push((
            Table {
                name: name.clone(),
                key: key.clone(),
                columns,
            },
            parents,
        ));
    }
    // Kahn's order, alphabetical among the ready ones (stable from run to run).
    let mut ordered: Vec<Table> = Vec::new();
    while !found.is_empty() {
        let ready = found.iter().position(|(t, parents)| {
            parents
                .iter()
                .all(|p| p == &t.name || ordered.iter().any(|o| &o.name == p))
        });
        let Some(i) = ready else {
            let left: Vec<&str> = found.iter().map(|(t, _)| t.name.as_str()).collect();
            return Err(DbError::Corrupt(format!(
                "the foreign keys of {} form a cycle",
                left.join(", ")
            )));
        };
        ordered.push(found.remove(i).0);
    }
    Ok(ordered)
}

/// How many rows `table` has.
pub async fn count(pool: &Pool, table: &Table) -> Result<i64, DbError> {
    let sql = format!("SELECT COUNT(*) FROM {}", quoted(&table.name)?);
    super::with_pool!(pool, p => sqlx::query_scalar(&sql).fetch_one(p).await)
        .map_err(step("counting a table's rows"))
}

/// The first key (in key order) of a destination row that the source does not have, if any:
/// such a row belongs to another install (or was written by a fleet since), and a copy on top
/// of it would mix two installs.
pub async fn first_foreign_key(
    src: &Pool,
    dst: &Pool,
    table: &Table,
) -> Result<Option<String>, DbError> {
    let (s, d) = (source(src)?, dest(dst)?);
    let (t, k) = (quoted(&table.name)?, quoted(&table.key)?);
    let page_sql =
        format!("SELECT {k} FROM {t} WHERE ($1::text IS NULL OR {k} > $1) ORDER BY {k} LIMIT 1000");
    let have_sql = format!("SELECT {k} FROM {t} WHERE {k} IN (SELECT value FROM json_each($1))");
    let mut after: Option<String> = None;
    loop {
        let keys: Vec<String> = sqlx::query_scalar(&page_sql)
            .bind(after.as_deref())
            .fetch_all(d)
            .await
            .map_err(step("reading the destination's keys"))?;
        let Some(last) = keys.last().cloned() else {
            return Ok(None);
        };
        let json = serde_json::to_string(&keys).expect("strings serialise");
        let have: std::collections::HashSet<String> = sqlx::query_scalar(&have_sql)
            .bind(json)
            .fetch_all(s)
            .await
            .map_err(step("looking the destination's keys up in the source"))?
            .into_iter()
            .collect();
        if let Some(missing) = keys.into_iter().find(|k| !have.contains(k)) {
            return Ok(Some(missing));
        }
        after = Some(last);
    }
}

/// One page of a copy: what it read and what it added.
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// Rows read from the source.
    pub read: u64,
    /// Of those, rows the destination did not have yet.
    pub inserted: u64,
    /// The last key read: the next page starts after it. `None`: the table is done.
    pub next: Option<String>,
}

/// Copy up to `limit` rows of `table` whose key sorts after `after`, from the source to the
/// destination; rows whose key the destination already has are left as they are.
pub async fn copy_page(
    src: &Pool,
    dst: &Pool,
    table: &Table,
    after: Option<&str>,
    limit: i64,
) -> Result<Page, DbError> {
    let (s, d) = (source(src)?, dest(dst)?);
    let t = quoted(&table.name)?;
    let k = quoted(&table.key)?;
    let cols: Vec<String> = table
        .columns
        .iter()
        .map(|(c, _)| quoted(c))
        .collect::<Result<_, _>>()?;
    let list = cols.join(", ");
    let rows = sqlx::query(&format!(
        "SELECT {list}, {k} AS heldar_copy_key FROM {t} WHERE ($1 IS NULL OR {k} > $1) \
         ORDER BY {k} LIMIT $2"
    ))
    .bind(after)
    .bind(limit)
    .fetch_all(s)
    .await
    .map_err(step("reading rows to copy"))?;
    if rows.is_empty() {
        return Ok(Page::default());
    }
    let mut values: Vec<Vec<Val>> = Vec::with_capacity(rows.len());
    for row in &rows {
        let mut vals = Vec::with_capacity(table.columns.len());
        for (c, ty) in &table.columns {
            let bad = |e: sqlx::Error| DbError::Corrupt(format!("{}.{c}: {e}", table.name));
            vals.push(match ty {
                ColType::Int => Val::Int(row.try_get(c.as_str()).map_err(bad)?),
                ColType::Text => Val::Text(row.try_get(c.as_str()).map_err(bad)?),
                ColType::Bytes => Val::Bytes(row.try_get(c.as_str()).map_err(bad)?),
            });
        }
        values.push(vals);
    }
    let next: Option<String> = rows
        .last()
        .map(|r| r.try_get("heldar_copy_key"))
        .transpose()
        .map_err(|e| DbError::Corrupt(format!("{}.{}: {e}", table.name, table.key)))?;
    let mut q: QueryBuilder<Postgres> = QueryBuilder::new(format!("INSERT INTO {t} ({list}) "));
    q.push_values(values, |mut b, row| {
        for v in row {
            match v {
                Val::Int(x) => b.push_bind(x),
                Val::Text(x) => b.push_bind(x),
                Val::Bytes(x) => b.push_bind(x),
            };
        }
    });
    q.push(" ON CONFLICT DO NOTHING");
    let inserted = q
        .build()
        .execute(d)
        .await
        .map_err(step("writing copied rows"))?
        .rows_affected();
    Ok(Page {
        read: rows.len() as u64,
        inserted,
        next,
    })
}

/// A stored file a row names: `(key, relative path)` of `snapshots` (`path`, under the
/// snapshots folder) or `timelapses` (`file`, under the timelapses folder), in key order, up to
/// `limit` after `after`.
pub async fn files(
    src: &Pool,
    videos: bool,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<(String, String)>, DbError> {
    let sql = match videos {
        false => {
            "SELECT id, path FROM snapshots WHERE ($1 IS NULL OR id > $1) ORDER BY id LIMIT $2"
        }
        true => {
            "SELECT id, file FROM timelapses WHERE ($1 IS NULL OR id > $1) ORDER BY id LIMIT $2"
        }
    };
    sqlx::query_as(sql)
        .bind(after)
        .bind(limit)
        .fetch_all(source(src)?)
        .await
        .map_err(step("listing the files to copy"))
}

/// How many files the rows name: `(frames, videos)`.
pub async fn file_counts(src: &Pool) -> Result<(i64, i64), DbError> {
    sqlx::query_as("SELECT (SELECT COUNT(*) FROM snapshots), (SELECT COUNT(*) FROM timelapses)")
        .fetch_one(source(src)?)
        .await
        .map_err(step("counting the files to copy"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every table of the schema, each after the tables its foreign keys name.
    #[tokio::test]
    async fn tables_come_parents_first() {
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::db::plan_test::pool_with_cameras(dir.path(), &[], "x").await;
        let tables = tables(&pool).await.unwrap();
        let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
        let at = |n: &str| {
            names
                .iter()
                .position(|x| *x == n)
                .unwrap_or_else(|| panic!("{n}"))
        };
        for (parent, child) in [
            ("cameras", "camera_status"),
            ("cameras", "snapshot_schedules"),
            ("snapshot_schedules", "snapshots"),
            ("timelapse_rules", "timelapses"),
            ("timelapses", "jobs"),
            ("webhooks", "webhook_deliveries"),
            ("cameras", "camera_leases"),
        ] {
            assert!(at(parent) < at(child), "{parent} after {child}: {names:?}");
        }
        assert!(!names.contains(&"_sqlx_migrations"));
        assert!(tables
            .iter()
            .all(|t| t.key == "id" || t.key == "camera_id" || t.key == "name"));
        let cameras = &tables[at("cameras")];
        assert!(cameras
            .columns
            .contains(&("max_bytes".to_string(), ColType::Int)));
    }
}
