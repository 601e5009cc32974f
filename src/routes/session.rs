//! `/api/v1/session`: the dashboard's login. A browser trades a token for an HttpOnly,
//! SameSite=Strict session cookie (the token itself is never kept in the browser) and learns
//! its role and CSRF token. See `auth::session`.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ApiJson};
use std::sync::Arc;

use crate::auth::Auth;
use crate::auth::{session, Principal, Role, Via};
use crate::models::ErrorBody;

/// Who the caller is, as the dashboard needs to know.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    /// Whether the server requires authentication at all.
    pub auth: bool,
    pub role: Role,
    /// The token's name; null with auth off.
    pub name: Option<String>,
    /// Send this in `X-CSRF-Token` with every change made through the cookie; null unless the
    /// caller uses the session cookie.
    pub csrf_token: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    pub token: String,
}

fn view(p: &Principal) -> SessionView {
    SessionView {
        auth: p.via != Via::Open,
        role: p.role,
        name: p.name.clone(),
        csrf_token: match &p.via {
            Via::Cookie { csrf } => Some(csrf.clone()),
            _ => None,
        },
    }
}

#[utoipa::path(get, path = "/api/v1/session", tag = "session",
    extensions(("x-heldar-role" = json!("public"))),
    responses((status = 200, body = SessionView), (status = 401, body = ErrorBody)))]
pub async fn get(principal: Option<Extension<Principal>>) -> Result<Json<SessionView>, ApiError> {
    match principal {
        Some(Extension(p)) => Ok(Json(view(&p))),
        None => Err(ApiError::Unauthorized(
            "not logged in: log in with a token".into(),
        )),
    }
}

#[utoipa::path(post, path = "/api/v1/session", tag = "session", request_body = Login,
    extensions(("x-heldar-role" = json!("public"))),
    responses((status = 200, body = SessionView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn login(
    State(auth): State<Arc<Auth>>,
    ApiJson(body): ApiJson<Login>,
) -> Result<impl IntoResponse, ApiError> {
    if !auth.enabled().await? {
        let open = SessionView {
            auth: false,
            role: Role::Admin,
            name: None,
            csrf_token: None,
        };
        return Ok((
            StatusCode::OK,
            [(header::SET_COOKIE, session::clear_cookie())],
            Json(open),
        ));
    }
    let Some(identity) = auth.verify_token(body.token.trim()).await? else {
        tracing::info!("dashboard login refused: token not valid");
        return Err(ApiError::InvalidToken(
            "that token is not valid: check it was copied whole, and that it has not been \
             revoked"
                .into(),
        ));
    };
    tracing::info!(token = %identity.name, role = identity.role.as_str(), "dashboard login");
    let (cookie, s) = auth.sessions.create(identity);
    let body = SessionView {
        auth: true,
        role: s.identity.role,
        name: Some(s.identity.name),
        csrf_token: Some(s.csrf),
    };
    Ok((
        StatusCode::OK,
        [(header::SET_COOKIE, session::set_cookie(&cookie))],
        Json(body),
    ))
}

#[utoipa::path(delete, path = "/api/v1/session", tag = "session",
    extensions(("x-heldar-role" = json!("public"))),
    responses((status = 204, description = "logged out")))]
pub async fn logout(
    State(auth): State<Arc<Auth>>,
    headers: axum::http::HeaderMap,
) -> impl IntoResponse {
    if let Some(c) = session::from_headers(&headers) {
        auth.sessions.remove(c);
    }
    (
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, session::clear_cookie())],
    )
}
