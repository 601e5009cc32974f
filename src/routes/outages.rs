//! The outage history: `GET /api/v1/outages?camera&from&to&open&limit&cursor` and
//! `GET /api/v1/cameras/{id}/outages?…`, newest first, paged like every list (`paging`).
//! docs/integrations.md says when an outage opens and closes.

use axum::extract::{Query, State};
use axum::http::Uri;
use serde::Deserialize;
use utoipa::openapi::path::{Parameter, ParameterIn};

use super::error::ApiError;
use super::paging::Listed;
use super::params::{self, CameraPath, End};
use crate::db::outages::Filter;
use crate::models::integrations::Outage;
use crate::models::{CameraId, ErrorBody};
use crate::ops::{self, Ops};

/// Query of the outage lists; text, so each bad value gets its own sentence.
#[derive(Debug, Deserialize)]
pub struct OutagesQuery {
    pub camera: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub open: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

/// The camera route's query: the same without `camera`.
#[derive(Debug, Deserialize)]
pub struct CameraOutagesQuery {
    pub from: Option<String>,
    pub to: Option<String>,
    pub open: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

fn common_params() -> Vec<Parameter> {
    vec![
        params::time_param(End::From, "outages that lasted until"),
        params::time_param(End::To, "outages that began"),
        params::flag_param(
            "open",
            "`true`: only outages still going on; `false`: only ended ones.",
        ),
        params::limit_param("outages", "newest first"),
        params::cursor_param(),
    ]
}

impl utoipa::IntoParams for OutagesQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let mut p = vec![params::camera_filter_param("Only this camera's outages.")];
        p.extend(common_params());
        p
    }
}

impl utoipa::IntoParams for CameraOutagesQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        common_params()
    }
}

/// The checked filter, page size and cursor.
fn filter(
    camera: Option<CameraId>,
    from: Option<&str>,
    to: Option<&str>,
    open: Option<&str>,
    limit: Option<&str>,
    cursor: Option<&str>,
) -> Result<(Filter, i64, Option<crate::models::Position>), ApiError> {
    let from = from
        .map(|s| params::time("from", s, End::From))
        .transpose()?;
    let to = to.map(|s| params::time("to", s, End::To)).transpose()?;
    if let (Some(f), Some(t)) = (from, to) {
        if f > t {
            return Err(ApiError::invalid("from", "from is later than to"));
        }
    }
    let open = open.map(|s| params::flag("open", s)).transpose()?;
    let limit = params::limit(limit)?;
    let after = cursor.map(params::decode_cursor).transpose()?;
    Ok((
        Filter {
            camera,
            from,
            to,
            open,
        },
        limit,
        after,
    ))
}

#[utoipa::path(get, path = "/api/v1/outages", operation_id = "list_outages", tag = "outages",
    extensions(("x-heldar-role" = json!("viewer"))),
    params(OutagesQuery),
    responses((status = 200, body = [Outage],
            description = "one page of outages overlapping [from, to], newest first",
            headers(("x-total-count" = i64, description = "how many outages match in all, whatever `limit` and `cursor`"),
                ("link" = String, description = "only when more remain: `<…?cursor=…>; rel=\"next\"` (RFC 8288)"))),
        (status = 400, body = ErrorBody, description = "the query string cannot be read"),
        (status = 404, body = ErrorBody, description = "no such camera"),
        (status = 422, body = ErrorBody, description = "camera, from, to, open, limit or cursor is invalid")))]
pub async fn list(
    State(ops): State<Ops>,
    uri: Uri,
    query: Result<Query<OutagesQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Listed<Outage>, ApiError> {
    let Query(q) = query?;
    let camera = q
        .camera
        .as_deref()
        .map(CameraId::parse)
        .transpose()
        .map_err(|m| ApiError::invalid("camera", m))?;
    let (f, limit, after) = filter(
        camera,
        q.from.as_deref(),
        q.to.as_deref(),
        q.open.as_deref(),
        q.limit.as_deref(),
        q.cursor.as_deref(),
    )?;
    let page = ops::outages::list(&ops, &f, after.as_ref(), limit).await?;
    Ok(Listed::page(page, &uri, Outage::clone))
}

#[utoipa::path(get, path = "/api/v1/cameras/{id}/outages", operation_id = "list_camera_outages", tag = "outages",
    extensions(("x-heldar-role" = json!("viewer"))),
    params(CameraPath, CameraOutagesQuery),
    responses((status = 200, body = [Outage],
            description = "one page of the camera's outages overlapping [from, to], newest first",
            headers(("x-total-count" = i64, description = "how many outages match in all, whatever `limit` and `cursor`"),
                ("link" = String, description = "only when more remain: `<…?cursor=…>; rel=\"next\"` (RFC 8288)"))),
        (status = 400, body = ErrorBody, description = "the path is not UTF-8, or the query string cannot be read"),
        (status = 404, body = ErrorBody, description = "no such camera"),
        (status = 422, body = ErrorBody, description = "the id is not a slug, or from, to, open, limit or cursor is invalid")))]
pub async fn for_camera(
    State(ops): State<Ops>,
    CameraPath(id): CameraPath,
    uri: Uri,
    query: Result<Query<CameraOutagesQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Listed<Outage>, ApiError> {
    let Query(q) = query?;
    let (f, limit, after) = filter(
        Some(id),
        q.from.as_deref(),
        q.to.as_deref(),
        q.open.as_deref(),
        q.limit.as_deref(),
        q.cursor.as_deref(),
    )?;
    let page = ops::outages::list(&ops, &f, after.as_ref(), limit).await?;
    Ok(Listed::page(page, &uri, Outage::clone))
}
