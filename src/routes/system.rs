//! `GET /api/v1/system`: the dashboard's system page — health, disk use, retention in effect and
//! per-camera capture counts — in one call.

use axum::extract::State;
use axum::Json;

use super::error::ApiError;
use crate::models::ErrorBody;
use crate::ops::{self, system::System, Ops};

#[utoipa::path(get, path = "/api/v1/system", tag = "system",
    extensions(("x-heldar-role" = json!("viewer"))),
    responses((status = 200, body = System), (status = 500, body = ErrorBody)))]
pub async fn system(State(ops): State<Ops>) -> Result<Json<System>, ApiError> {
    Ok(Json(ops::system::system(&ops).await?))
}
