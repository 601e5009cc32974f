//! Queries on `cameras` and `camera_status`. Rows carry the secret-bearing fields in their
//! sealed form: sealing and opening happen in `ops` (with `camera::seal`), never here.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{parse_opt_ts, parse_ts, step, DbError, Pool};
use crate::models::{
    fmt_ts, Camera, CameraActivity, CameraId, CameraSpec, CameraState, CameraStatus, RtspFrameMode,
    SnapshotSource, TlsVerify, Vendor, SEALED_FIELDS as SEALED_COLUMNS,
};

/// The spec's columns, in the order [`bind_spec`] binds them (after `id`).
macro_rules! spec_columns {
    () => {
        "name, vendor, address, rtsp_port, http_port, username, password, main_stream_url, \
         sub_stream_url, snapshot_url, snapshot_source, tls_verify, tls_fingerprint, rtsp_frame_mode, \
         max_bytes"
    };
}
const COLUMNS: &str = concat!("id, ", spec_columns!(), ", created_at, updated_at");

fn camera_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Camera, DbError> {
    let corrupt = |what: &str, v: &str| DbError::Corrupt(format!("cameras.{what} = {v:?}"));
    let id: String = row.get("id");
    let vendor: String = row.get("vendor");
    let source: String = row.get("snapshot_source");
    let tls_verify: String = row.get("tls_verify");
    let frame_mode: String = row.get("rtsp_frame_mode");
    let port = |col: &str| -> Result<u16, DbError> {
        let p: i64 = row.get(col);
        u16::try_from(p).map_err(|_| corrupt(col, &p.to_string()))
    };
    Ok(Camera {
        spec: CameraSpec {
            id: CameraId::parse(&id).map_err(|_| corrupt("id", &id))?,
            name: row.get("name"),
            vendor: Vendor::from_db(&vendor).ok_or_else(|| corrupt("vendor", &vendor))?,
            address: row.get("address"),
            rtsp_port: port("rtsp_port")?,
            http_port: port("http_port")?,
            username: row.get("username"),
            password: row.get("password"),
            main_stream_url: row.get("main_stream_url"),
            sub_stream_url: row.get("sub_stream_url"),
            snapshot_url: row.get("snapshot_url"),
            snapshot_source: SnapshotSource::from_db(&source)
                .ok_or_else(|| corrupt("snapshot_source", &source))?,
            tls_verify: TlsVerify::from_db(&tls_verify)
                .ok_or_else(|| corrupt("tls_verify", &tls_verify))?,
            tls_fingerprint: row.get("tls_fingerprint"),
            rtsp_frame_mode: RtspFrameMode::from_db(&frame_mode)
                .ok_or_else(|| corrupt("rtsp_frame_mode", &frame_mode))?,
            max_bytes: row
                .get::<Option<i64>, _>("max_bytes")
                .map(|b| b.max(1) as u64),
        },
        created_at: parse_ts(row.get("created_at"))?,
        updated_at: parse_ts(row.get("updated_at"))?,
    })
}

fn status_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<CameraStatus, DbError> {
    let state: Option<String> = row.get("state");
    let Some(state) = state else {
        return Ok(CameraStatus::default());
    };
    Ok(CameraStatus {
        state: CameraState::from_db(&state)
            .ok_or_else(|| DbError::Corrupt(format!("camera_status.state = {state:?}")))?,
        last_success_at: parse_opt_ts(row.get("last_success_at"))?,
        last_error: row.get("last_error"),
        last_error_at: parse_opt_ts(row.get("last_error_at"))?,
        consecutive_failures: row
            .get::<Option<i64>, _>("consecutive_failures")
            .unwrap_or(0),
        // Not stored: `ops::backoff` fills them in for the API.
        backoff_until: None,
        backoff_reason: None,
    })
}

type Query<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>;

/// Bind a spec's fields, `name` to `tls_fingerprint`, in [`spec_columns`] order: the one binder
/// of a camera row, shared by insert and update.
fn bind_spec<'q>(q: Query<'q>, spec: &'q CameraSpec) -> Query<'q> {
    q.bind(&spec.name)
        .bind(spec.vendor.as_str())
        .bind(&spec.address)
        .bind(i64::from(spec.rtsp_port))
        .bind(i64::from(spec.http_port))
        .bind(&spec.username)
        .bind(&spec.password)
        .bind(&spec.main_stream_url)
        .bind(&spec.sub_stream_url)
        .bind(&spec.snapshot_url)
        .bind(spec.snapshot_source.as_str())
        .bind(spec.tls_verify.as_str())
        .bind(&spec.tls_fingerprint)
        .bind(spec.rtsp_frame_mode.as_str())
        .bind(spec.max_bytes.map(|b| b.min(i64::MAX as u64) as i64))
}

/// Insert a new camera (its secrets already sealed) and its `unknown` status. An existing id is
/// a [`DbError::Conflict`].
pub async fn insert(pool: &Pool, spec: &CameraSpec, now: DateTime<Utc>) -> Result<Camera, DbError> {
    let mut tx = pool.begin().await.map_err(step("starting a transaction"))?;
    let now_s = fmt_ts(now);
    let q = sqlx::query(concat!(
        "INSERT INTO cameras (id, ",
        spec_columns!(),
        ", created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ))
    .bind(spec.id.as_str());
    let res = bind_spec(q, spec)
        .bind(&now_s)
        .bind(&now_s)
        .execute(&mut *tx)
        .await;
    match res {
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            return Err(DbError::Conflict(format!(
                "camera {:?} already exists",
                spec.id.as_str()
            )))
        }
        r => r.map_err(step("inserting a camera"))?,
    };
    sqlx::query("INSERT INTO camera_status (camera_id, state) VALUES (?, 'unknown')")
        .bind(spec.id.as_str())
        .execute(&mut *tx)
        .await
        .map_err(step("inserting a camera status"))?;
    tx.commit().await.map_err(step("committing a new camera"))?;
    Ok(Camera {
        spec: spec.clone(),
        created_at: now,
        updated_at: now,
    })
}

/// Replace every field of an existing camera (secrets already sealed); `false` if it does not
/// exist. `clear_auth_backoff` (its credentials changed) also resets an `auth_failed` state
/// (docs/design.md §5), in the same transaction, so it is tried again at once.
pub async fn update(
    pool: &Pool,
    spec: &CameraSpec,
    now: DateTime<Utc>,
    clear_auth_backoff: bool,
) -> Result<bool, DbError> {
    let mut tx = pool.begin().await.map_err(step("starting a transaction"))?;
    let q = sqlx::query(
        "UPDATE cameras SET name = ?, vendor = ?, address = ?, rtsp_port = ?, http_port = ?, \
         username = ?, password = ?, main_stream_url = ?, sub_stream_url = ?, snapshot_url = ?, \
         snapshot_source = ?, tls_verify = ?, tls_fingerprint = ?, rtsp_frame_mode = ?, \
         max_bytes = ?, updated_at = ? WHERE id = ?",
    );
    let res = bind_spec(q, spec)
        .bind(fmt_ts(now))
        .bind(spec.id.as_str())
        .execute(&mut *tx)
        .await
        .map_err(step("updating a camera"))?;
    if res.rows_affected() == 0 {
        return Ok(false);
    }
    if clear_auth_backoff {
        sqlx::query(
            "UPDATE camera_status SET state = 'unknown', consecutive_failures = 0 \
             WHERE camera_id = ? AND state = 'auth_failed'",
        )
        .bind(spec.id.as_str())
        .execute(&mut *tx)
        .await
        .map_err(step("clearing an auth backoff"))?;
    }
    tx.commit()
        .await
        .map_err(step("committing a camera update"))?;
    Ok(true)
}

/// Values of the sealed columns that are still plaintext (written before sealing existed), as
/// `(camera id, column, value)`.
pub async fn unsealed_values(pool: &Pool) -> Result<Vec<(String, &'static str, String)>, DbError> {
    let mut out = Vec::new();
    for column in SEALED_COLUMNS {
        let rows: Vec<(String, String)> = sqlx::query_as(&format!(
            "SELECT id, {column} FROM cameras WHERE {column} IS NOT NULL \
             AND {column} NOT LIKE 'sealed:v1:%'"
        ))
        .fetch_all(pool)
        .await
        .map_err(step("reading unsealed credentials"))?;
        out.extend(rows.into_iter().map(|(id, v)| (id, column, v)));
    }
    Ok(out)
}

/// Store sealed values, `(camera id, column, sealed value)`, in one transaction. `column` must
/// be one of [`SEALED_COLUMNS`].
pub async fn store_sealed(
    pool: &Pool,
    values: &[(String, &'static str, String)],
) -> Result<(), DbError> {
    let mut tx = pool.begin().await.map_err(step("starting a transaction"))?;
    for (id, column, v) in values {
        if !SEALED_COLUMNS.contains(column) {
            return Err(DbError::Corrupt(format!("{column} is not a sealed column")));
        }
        sqlx::query(&format!("UPDATE cameras SET {column} = ? WHERE id = ?"))
            .bind(v)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(step("sealing stored credentials"))?;
    }
    tx.commit()
        .await
        .map_err(step("committing sealed credentials"))
}

/// Cameras joined with their status rows.
fn with_status() -> String {
    format!(
        "SELECT {COLUMNS}, s.state, s.last_success_at, s.last_error, s.last_error_at, \
         s.consecutive_failures FROM cameras c LEFT JOIN camera_status s ON s.camera_id = c.id"
    )
}

/// One camera (secrets sealed) with its status.
pub async fn get(pool: &Pool, id: &CameraId) -> Result<Option<(Camera, CameraStatus)>, DbError> {
    let sql = format!("{} WHERE c.id = ?", with_status());
    let row = sqlx::query(&sql)
        .bind(id.as_str())
        .fetch_optional(pool)
        .await
        .map_err(step("reading a camera"))?;
    row.map(|r| Ok((camera_from_row(&r)?, status_from_row(&r)?)))
        .transpose()
}

/// Every camera (secrets sealed) with its status, ordered by id.
pub async fn list(pool: &Pool) -> Result<Vec<(Camera, CameraStatus)>, DbError> {
    let sql = format!("{} ORDER BY c.id", with_status());
    let rows = sqlx::query(&sql)
        .fetch_all(pool)
        .await
        .map_err(step("listing cameras"))?;
    rows.iter()
        .map(|r| Ok((camera_from_row(r)?, status_from_row(r)?)))
        .collect()
}

/// Each camera's enabled schedules and newest frame time, by id; only `one`'s when given. One
/// query; each camera costs two index seeks (`snapshot_schedules_camera`,
/// `snapshots_camera_taken`), however many frames it has.
pub async fn activity(
    pool: &Pool,
    one: Option<&CameraId>,
) -> Result<Vec<(CameraId, CameraActivity)>, DbError> {
    let sql = format!(
        "SELECT c.id, \
         (SELECT COUNT(*) FROM snapshot_schedules s WHERE s.camera_id = c.id AND s.enabled = 1), \
         (SELECT n.taken_at FROM snapshots n WHERE n.camera_id = c.id \
          ORDER BY n.taken_at DESC LIMIT 1) \
         FROM cameras c{} ORDER BY c.id",
        if one.is_some() { " WHERE c.id = ?" } else { "" }
    );
    let mut q = sqlx::query_as::<_, (String, i64, Option<String>)>(&sql);
    if let Some(id) = one {
        q = q.bind(id.as_str());
    }
    let rows = q
        .fetch_all(pool)
        .await
        .map_err(step("reading camera activity"))?;
    rows.into_iter()
        .map(|(id, schedules_enabled, last)| {
            let id = CameraId::parse(&id)
                .map_err(|_| DbError::Corrupt(format!("cameras.id = {id:?}")))?;
            Ok((
                id,
                CameraActivity {
                    schedules_enabled,
                    last_frame_at: parse_opt_ts(last)?,
                },
            ))
        })
        .collect()
}

/// Every camera id (no secrets are opened).
pub async fn ids(pool: &Pool) -> Result<Vec<String>, DbError> {
    sqlx::query_scalar("SELECT id FROM cameras ORDER BY id")
        .fetch_all(pool)
        .await
        .map_err(step("listing camera ids"))
}

/// Whether a camera exists.
/// `(id, max_bytes)` of every camera with its own size cap.
pub async fn caps(pool: &Pool) -> Result<Vec<(CameraId, u64)>, DbError> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT id, max_bytes FROM cameras WHERE max_bytes IS NOT NULL")
            .fetch_all(pool)
            .await
            .map_err(step("listing cameras with a size cap"))?;
    rows.into_iter()
        .map(|(id, b)| {
            let id = CameraId::parse(&id)
                .map_err(|_| DbError::Corrupt(format!("cameras.id = {id:?}")))?;
            Ok((id, b.max(1) as u64))
        })
        .collect()
}

pub async fn exists(pool: &Pool, id: &CameraId) -> Result<bool, DbError> {
    let n: i64 = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM cameras WHERE id = ?)")
        .bind(id.as_str())
        .fetch_one(pool)
        .await
        .map_err(step("checking a camera"))?;
    Ok(n != 0)
}

/// Delete a camera; its status, schedules and snapshot rows go with it (foreign-key cascade).
/// Returns whether it existed.
pub async fn delete(pool: &Pool, id: &CameraId) -> Result<bool, DbError> {
    let res = sqlx::query("DELETE FROM cameras WHERE id = ?")
        .bind(id.as_str())
        .execute(pool)
        .await
        .map_err(step("deleting a camera"))?;
    Ok(res.rows_affected() > 0)
}

/// Record a successful capture (binds: camera id, time). Run by the writer (`db::writer`).
/// A success clears the last failure (`last_error`, `last_error_at`): the status says how the
/// camera is now, as the MQTT state document does; past failures are in the outage history and
/// the metrics (docs/api.md).
pub(crate) const RECORD_SUCCESS_SQL: &str =
    "INSERT INTO camera_status (camera_id, state, last_success_at, consecutive_failures) \
     VALUES (?1, 'online', ?2, 0) \
     ON CONFLICT(camera_id) DO UPDATE SET state = 'online', last_success_at = ?2, \
     consecutive_failures = 0, last_error = NULL, last_error_at = NULL";

/// Record a failed capture (binds: camera id, state, error — already masked —, time). Run by the
/// writer (`db::writer`).
pub(crate) const RECORD_FAILURE_SQL: &str =
    "INSERT INTO camera_status (camera_id, state, last_error, last_error_at, consecutive_failures) \
     VALUES (?1, ?2, ?3, ?4, 1) \
     ON CONFLICT(camera_id) DO UPDATE SET state = ?2, last_error = ?3, last_error_at = ?4, \
     consecutive_failures = consecutive_failures + 1";
