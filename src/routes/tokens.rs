//! `/api/v1/tokens`: admins manage API tokens over HTTP, as `heldar token` does on the command
//! line. A token's secret appears exactly once, in the creation response.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ApiJson, ApiPath};
use super::paging::Listed;
use crate::models::{ErrorBody, Role, TokenView};
use crate::ops::{self, Ops};

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
    extensions(("x-heldar-role" = json!("admin"))),
    responses((status = 200, body = [TokenView], description = "every token, live and revoked (not paged)",
            headers(("x-total-count" = i64, description = "how many tokens there are (the array's length)"))),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(State(ops): State<Ops>) -> Result<Listed<TokenView>, ApiError> {
    Ok(Listed::all(ops::tokens::list(&ops.db).await?))
}

#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = TokenCreate,
    extensions(("x-heldar-role" = json!("admin"))),
    responses((status = 201, body = TokenCreated), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(ops): State<Ops>,
    State(auth): State<std::sync::Arc<crate::auth::Auth>>,
    ApiJson(body): ApiJson<TokenCreate>,
) -> Result<impl IntoResponse, ApiError> {
    let created = ops::tokens::create(&ops.db, ops.clock.as_ref(), &body.name, body.role).await;
    // The first token may have turned authentication on: the next request must see it.
    auth.recheck();
    let (view, token) = created?;
    Ok((StatusCode::CREATED, Json(TokenCreated { view, token })))
}

#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens",
    extensions(("x-heldar-role" = json!("admin"))),
    params(("id" = String, Path, description = "token id or name", pattern = r"^[A-Za-z0-9._ -]{1,64}$")),
    responses((status = 204, description = "revoked"), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn revoke(
    State(ops): State<Ops>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    ops::tokens::revoke(&ops.db, ops.clock.as_ref(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
