//! `/api/v1/tokens`: admins manage API tokens over HTTP, as `heldar token` does on the command
//! line. A token's secret appears exactly once, in the creation response.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ApiJson, ApiPath};
use crate::app::AppState;
use crate::auth::manage::{self, ManageError, TokenView};
use crate::auth::Role;
use crate::models::ErrorBody;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenCreate {
    /// 1–64 letters, digits, spaces, `.`, `_` or `-`, not starting or ending with a space.
    #[schema(
        pattern = r"^[A-Za-z0-9._-]([A-Za-z0-9._ -]{0,62}[A-Za-z0-9._-])?$",
        example = "grafana"
    )]
    pub name: String,
    pub role: Role,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenCreated {
    #[serde(flatten)]
    pub view: TokenView,
    /// The token itself: shown once, never again.
    pub token: String,
}

#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    responses((status = 200, body = [TokenView]), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<TokenView>>, ApiError> {
    Ok(Json(manage::list(&state.db).await?))
}

#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = TokenCreate,
    responses((status = 201, body = TokenCreated), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<TokenCreate>,
) -> Result<impl IntoResponse, ApiError> {
    let (view, token) = manage::create(&state.db, &body.name, body.role)
        .await
        .map_err(|e| match e {
            ManageError::BadName(m) => ApiError::invalid("name", m),
            ManageError::Db(e) => e.into(),
        })?;
    tracing::info!(token = %view.name, role = view.role.as_str(), "token created over the API");
    Ok((StatusCode::CREATED, Json(TokenCreated { view, token })))
}

#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens",
    params(("id" = String, Path, description = "token id or name", pattern = r"^[A-Za-z0-9._ -]{1,64}$")),
    responses((status = 204, description = "revoked"), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn revoke(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    if !crate::auth::token::is_id(&id) {
        manage::check_name(&id).map_err(|m| ApiError::invalid("id", m))?;
    }
    match manage::revoke(&state.db, &id).await? {
        Some(v) => {
            tracing::info!(token = %v.name, "token revoked over the API");
            Ok(StatusCode::NO_CONTENT)
        }
        None => Err(ApiError::NotFound(format!(
            "no live token has the id or name {id:?}"
        ))),
    }
}
