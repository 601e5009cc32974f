//! Queries on `cameras` and `camera_status`. Rows carry the secret-bearing fields in their
//! sealed form: sealing and opening happen in `ops` (with `camera::seal`), never here. Every
//! query runs on both back-ends (`with_pool!`).

use chrono::{DateTime, Utc};

use super::{parse_opt_ts, parse_ts, step, with_pool, Cols, DbError, Pool};
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

fn camera_from_row(row: &impl Cols) -> Result<Camera, DbError> {
    let corrupt = |what: &str, v: &str| DbError::Corrupt(format!("cameras.{what} = {v:?}"));
    let id = row.text("id")?;
    let vendor = row.text("vendor")?;
    let source = row.text("snapshot_source")?;
    let tls_verify = row.text("tls_verify")?;
    let frame_mode = row.text("rtsp_frame_mode")?;
    let port = |col: &str| -> Result<u16, DbError> {
        let p = row.int(col)?;
        u16::try_from(p).map_err(|_| corrupt(col, &p.to_string()))
    };
    Ok(Camera {
        spec: CameraSpec {
            id: CameraId::parse(&id).map_err(|_| corrupt("id", &id))?,
            name: row.text("name")?,
            vendor: Vendor::from_db(&vendor).ok_or_else(|| corrupt("vendor", &vendor))?,
            address: row.text("address")?,
            rtsp_port: port("rtsp_port")?,
            http_port: port("http_port")?,
            username: row.opt_text("username")?,
            password: row.opt_text("password")?,
            main_stream_url: row.opt_text("main_stream_url")?,
            sub_stream_url: row.opt_text("sub_stream_url")?,
            snapshot_url: row.opt_text("snapshot_url")?,
            snapshot_source: SnapshotSource::from_db(&source)
                .ok_or_else(|| corrupt("snapshot_source", &source))?,
            tls_verify: TlsVerify::from_db(&tls_verify)
                .ok_or_else(|| corrupt("tls_verify", &tls_verify))?,
            tls_fingerprint: row.opt_text("tls_fingerprint")?,
            rtsp_frame_mode: RtspFrameMode::from_db(&frame_mode)
                .ok_or_else(|| corrupt("rtsp_frame_mode", &frame_mode))?,
            max_bytes: row.opt_int("max_bytes")?.map(|b| b.max(1) as u64),
        },
        created_at: parse_ts(&row.text("created_at")?)?,
        updated_at: parse_ts(&row.text("updated_at")?)?,
    })
}

fn status_from_row(row: &impl Cols) -> Result<CameraStatus, DbError> {
    let Some(state) = row.opt_text("state")? else {
        return Ok(CameraStatus::default());
    };
    Ok(CameraStatus {
        state: CameraState::from_db(&state)
            .ok_or_else(|| DbError::Corrupt(format!("camera_status.state = {state:?}")))?,
        last_success_at: parse_opt_ts(row.opt_text("last_success_at")?)?,
        last_error: row.opt_text("last_error")?,
        last_error_at: parse_opt_ts(row.opt_text("last_error_at")?)?,
        consecutive_failures: row.opt_int("consecutive_failures")?.unwrap_or(0),
        // Not stored: `ops::backoff` fills them in for the API.
        backoff_until: None,
        backoff_reason: None,
    })
}

/// Bind a spec's fields, `name` to `max_bytes`, in [`spec_columns`] order: the one binder of a
/// camera row, shared by insert and update. A macro, so one text binds a query of either
/// back-end.
macro_rules! bind_spec {
    ($q:expr, $spec:expr) => {{
        let spec: &CameraSpec = $spec;
        $q.bind(&spec.name)
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
    }};
}

/// Insert a new camera (its secrets already sealed) and its `unknown` status. An existing id is
/// a [`DbError::Conflict`].
pub async fn insert(pool: &Pool, spec: &CameraSpec, now: DateTime<Utc>) -> Result<Camera, DbError> {
    let now_s = fmt_ts(now);
    with_pool!(pool, p => {
        let mut tx = p.begin().await.map_err(step("starting a transaction"))?;
        let q = sqlx::query(concat!(
            "INSERT INTO cameras (id, ",
            spec_columns!(),
            ", created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
             $12, $13, $14, $15, $16, $17, $18)"
        ))
        .bind(spec.id.as_str());
        let res = bind_spec!(q, spec)
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
        sqlx::query("INSERT INTO camera_status (camera_id, state) VALUES ($1, 'unknown')")
            .bind(spec.id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(step("inserting a camera status"))?;
        tx.commit().await.map_err(step("committing a new camera"))?;
    });
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
    with_pool!(pool, p => {
        let mut tx = p.begin().await.map_err(step("starting a transaction"))?;
        let q = sqlx::query(
            "UPDATE cameras SET name = $1, vendor = $2, address = $3, rtsp_port = $4, \
             http_port = $5, username = $6, password = $7, main_stream_url = $8, \
             sub_stream_url = $9, snapshot_url = $10, snapshot_source = $11, tls_verify = $12, \
             tls_fingerprint = $13, rtsp_frame_mode = $14, max_bytes = $15, updated_at = $16 \
             WHERE id = $17",
        );
        let res = bind_spec!(q, spec)
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
                 WHERE camera_id = $1 AND state = 'auth_failed'",
            )
            .bind(spec.id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(step("clearing an auth backoff"))?;
        }
        tx.commit()
            .await
            .map_err(step("committing a camera update"))?;
    });
    Ok(true)
}

/// Values of the sealed columns that are still plaintext (written before sealing existed), as
/// `(camera id, column, value)`.
pub async fn unsealed_values(pool: &Pool) -> Result<Vec<(String, &'static str, String)>, DbError> {
    let mut out = Vec::new();
    for column in SEALED_COLUMNS {
        let sql = format!(
            "SELECT id, {column} FROM cameras WHERE {column} IS NOT NULL \
             AND {column} NOT LIKE 'sealed:v1:%'"
        );
        let rows: Vec<(String, String)> =
            with_pool!(pool, p => sqlx::query_as(&sql).fetch_all(p).await)
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
    if let Some((_, column, _)) = values.iter().find(|(_, c, _)| !SEALED_COLUMNS.contains(c)) {
        return Err(DbError::Corrupt(format!("{column} is not a sealed column")));
    }
    with_pool!(pool, p => {
        let mut tx = p.begin().await.map_err(step("starting a transaction"))?;
        for (id, column, v) in values {
            sqlx::query(&format!("UPDATE cameras SET {column} = $1 WHERE id = $2"))
                .bind(v)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(step("sealing stored credentials"))?;
        }
        tx.commit()
            .await
            .map_err(step("committing sealed credentials"))
    })
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
    let sql = format!("{} WHERE c.id = $1", with_status());
    with_pool!(pool, p => {
        let row = sqlx::query(&sql)
            .bind(id.as_str())
            .fetch_optional(p)
            .await
            .map_err(step("reading a camera"))?;
        row.map(|r| Ok((camera_from_row(&r)?, status_from_row(&r)?)))
            .transpose()
    })
}

/// Every camera (secrets sealed) with its status, ordered by id.
pub async fn list(pool: &Pool) -> Result<Vec<(Camera, CameraStatus)>, DbError> {
    let sql = format!("{} ORDER BY c.id", with_status());
    with_pool!(pool, p => {
        sqlx::query(&sql)
            .fetch_all(p)
            .await
            .map_err(step("listing cameras"))?
            .iter()
            .map(|r| Ok((camera_from_row(r)?, status_from_row(r)?)))
            .collect()
    })
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
        if one.is_some() {
            " WHERE c.id = $1"
        } else {
            ""
        }
    );
    let rows: Vec<(String, i64, Option<String>)> = with_pool!(pool, p => {
        let mut q = sqlx::query_as(&sql);
        if let Some(id) = one {
            q = q.bind(id.as_str());
        }
        q.fetch_all(p).await
    })
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
    with_pool!(pool, p => {
        sqlx::query_scalar("SELECT id FROM cameras ORDER BY id")
            .fetch_all(p)
            .await
    })
    .map_err(step("listing camera ids"))
}

/// Whether a camera exists.
/// `(id, max_bytes)` of every camera with its own size cap.
pub async fn caps(pool: &Pool) -> Result<Vec<(CameraId, u64)>, DbError> {
    let rows: Vec<(String, i64)> = with_pool!(pool, p => {
        sqlx::query_as("SELECT id, max_bytes FROM cameras WHERE max_bytes IS NOT NULL")
            .fetch_all(p)
            .await
    })
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
    // COUNT on the primary key, not EXISTS (an integer on SQLite, a boolean on PostgreSQL).
    let n: i64 = with_pool!(pool, p => {
        sqlx::query_scalar("SELECT COUNT(*) FROM cameras WHERE id = $1")
            .bind(id.as_str())
            .fetch_one(p)
            .await
    })
    .map_err(step("checking a camera"))?;
    Ok(n != 0)
}

/// Delete a camera; its status, schedules and snapshot rows go with it (foreign-key cascade).
/// Returns whether it existed.
pub async fn delete(pool: &Pool, id: &CameraId) -> Result<bool, DbError> {
    let n = with_pool!(pool, p => {
        sqlx::query("DELETE FROM cameras WHERE id = $1")
            .bind(id.as_str())
            .execute(p)
            .await
            .map(|r| r.rows_affected())
    })
    .map_err(step("deleting a camera"))?;
    Ok(n > 0)
}

/// Record a successful capture (binds: camera id, time). Run by the writer (`db::writer`).
/// A success clears the last failure (`last_error`, `last_error_at`): the status says how the
/// camera is now, as the MQTT state document does; past failures are in the outage history and
/// the metrics (docs/api.md).
pub(crate) const RECORD_SUCCESS_SQL: &str =
    "INSERT INTO camera_status (camera_id, state, last_success_at, consecutive_failures) \
     VALUES ($1, 'online', $2, 0) \
     ON CONFLICT(camera_id) DO UPDATE SET state = 'online', last_success_at = $2, \
     consecutive_failures = 0, last_error = NULL, last_error_at = NULL";

/// Record a failed capture (binds: camera id, state, error — already masked —, time). Run by the
/// writer (`db::writer`).
pub(crate) const RECORD_FAILURE_SQL: &str =
    "INSERT INTO camera_status (camera_id, state, last_error, last_error_at, consecutive_failures) \
     VALUES ($1, $2, $3, $4, 1) \
     ON CONFLICT(camera_id) DO UPDATE SET state = $2, last_error = $3, last_error_at = $4, \
     consecutive_failures = camera_status.consecutive_failures + 1";
