//! Which role each route needs — the one table, [`ACCESS`] — and the middleware that enforces it
//! on every request (DESIGN.md §11).
//!
//! The middleware fails closed: a route that is registered in the router but missing from the
//! table answers 403 and logs an error, so a new route cannot ship unprotected by accident; a test
//! walks the table with no token, a lower role and the required role. Unknown paths never reach
//! a handler (the router's 404 answers them), so they need no rule.
//!
//! Credentials: `Authorization: Bearer <token>` (API clients), or the dashboard's session cookie.
//! A state-changing request made with the cookie must also carry the session's CSRF token in
//! `X-CSRF-Token`, so another site cannot make a logged-in browser change anything (SameSite=
//! Strict on the cookie is the first line; this is the second).

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use crate::app::AppState;
use crate::auth::{session, token, Principal, Role, Via};

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Anyone: liveness, the API description, login, the dashboard's static files.
    Public,
    Role(Role),
}

/// One route: method, axum path pattern, what it needs.
pub type Rule = (&'static str, &'static str, Need);

const VIEWER: Need = Need::Role(Role::Viewer);
const OPERATOR: Need = Need::Role(Role::Operator);
const ADMIN: Need = Need::Role(Role::Admin);

/// Every route Heldar serves and the role it needs. HEAD follows GET.
pub const ACCESS: &[Rule] = &[
    // The dashboard's page and static files: the login page must load before any login.
    ("GET", "/", Need::Public),
    ("GET", "/assets/{*path}", Need::Public),
    ("GET", "/api/v1/health", Need::Public),
    ("GET", "/api/v1/openapi.json", Need::Public),
    ("GET", "/api/v1/session", Need::Public),
    ("POST", "/api/v1/session", Need::Public),
    ("DELETE", "/api/v1/session", Need::Public),
    ("GET", "/api/v1/cameras", VIEWER),
    ("POST", "/api/v1/cameras", ADMIN),
    ("GET", "/api/v1/cameras/{id}", VIEWER),
    ("PATCH", "/api/v1/cameras/{id}", ADMIN),
    ("DELETE", "/api/v1/cameras/{id}", ADMIN),
    ("GET", "/api/v1/cameras/{id}/snapshot", OPERATOR),
    ("GET", "/api/v1/cameras/{id}/snapshot-schedules", VIEWER),
    ("POST", "/api/v1/cameras/{id}/snapshot-schedules", OPERATOR),
    ("PATCH", "/api/v1/snapshot-schedules/{id}", OPERATOR),
    ("DELETE", "/api/v1/snapshot-schedules/{id}", OPERATOR),
    ("GET", "/api/v1/cameras/{id}/snapshots", VIEWER),
    ("GET", "/api/v1/cameras/{id}/snapshots/latest", VIEWER),
    ("GET", "/api/v1/tokens", ADMIN),
    ("POST", "/api/v1/tokens", ADMIN),
    ("DELETE", "/api/v1/tokens/{id}", ADMIN),
    ("GET", "/api/v1/system", VIEWER),
    ("GET", "/media/snapshots/{camera_id}/{file}", VIEWER),
    ("GET", "/metrics", VIEWER),
];

/// The rule for `method` on the route pattern `path`; `Err(true)` if the path has rules but not
/// for this method (the router answers 405), `Err(false)` if it has none at all.
pub fn need_for(method: &Method, path: &str) -> Result<Need, bool> {
    let m = if method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    let mut path_known = false;
    for (rm, rp, need) in ACCESS {
        if *rp == path {
            path_known = true;
            if *rm == m {
                return Ok(*need);
            }
        }
    }
    Err(path_known)
}

/// The middleware: identify the caller, check the route's rule, check CSRF for cookie changes.
pub async fn guard(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let Some(path) = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
    else {
        // The 404 fallback: nothing to protect.
        return next.run(req).await;
    };
    let need = match need_for(req.method(), &path) {
        Ok(n) => n,
        Err(true) => return next.run(req).await, // 405 from the router
        Err(false) => {
            tracing::error!(route = %path, method = %req.method(), "route has no access rule in routes::access::ACCESS; refusing");
            return ApiError::Forbidden("this route has no access rule, so it is refused".into())
                .into_response();
        }
    };
    let (method, headers) = (req.method().clone(), req.headers().clone());
    match authorise(&state, &method, &headers, &path, need).await {
        Ok(p) => {
            if let Some(p) = p {
                req.extensions_mut().insert(p);
            }
            next.run(req).await
        }
        Err(e) => e.into_response(),
    }
}

async fn authorise(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
    path: &str,
    need: Need,
) -> Result<Option<Principal>, ApiError> {
    let principal = identify(state, headers).await?;
    if let Need::Role(role) = need {
        let Some(p) = &principal else {
            return Err(ApiError::Unauthorized(
                "this request needs a token: send `Authorization: Bearer <token>` (create one \
                 with `heldar token create`), or log in to the dashboard"
                    .into(),
            ));
        };
        if p.role < role {
            return Err(ApiError::Forbidden(format!(
                "this needs the {} role; the token in use has the {} role",
                role.as_str(),
                p.role.as_str()
            )));
        }
    }
    if let Some(Principal {
        via: Via::Cookie { csrf },
        ..
    }) = &principal
    {
        let changes = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
        let is_login = path == "/api/v1/session" && method == Method::POST;
        if changes && !is_login {
            let sent = headers
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !token::secret_eq(sent, csrf) {
                return Err(ApiError::CsrfFailed(
                    "a change made with the session cookie must carry the session's \
                     X-CSRF-Token header"
                        .into(),
                ));
            }
        }
    }
    Ok(principal)
}

/// Who is calling: a bearer token, the session cookie, everyone-is-admin with auth off, or nobody.
async fn identify(state: &AppState, headers: &HeaderMap) -> Result<Option<Principal>, ApiError> {
    let auth = &state.auth;
    if !auth.enabled().await? {
        return Ok(Some(Principal {
            role: Role::Admin,
            name: None,
            via: Via::Open,
        }));
    }
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let presented = value
            .to_str()
            .ok()
            .and_then(|v| {
                let (scheme, rest) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            })
            .ok_or_else(|| {
                ApiError::Unauthorized("the Authorization header must be `Bearer <token>`".into())
            })?;
        return match auth.verify_token(presented).await? {
            Some(id) => Ok(Some(Principal {
                role: id.role,
                name: Some(id.name),
                via: Via::Bearer,
            })),
            None => Err(ApiError::Unauthorized(
                "the bearer token is not valid: it may be mistyped, revoked, or from another \
                 Heldar"
                    .into(),
            )),
        };
    }
    if let Some(cookie) = session::from_headers(headers) {
        if let Some(s) = auth.session(cookie).await? {
            return Ok(Some(Principal {
                role: s.identity.role,
                name: Some(s.identity.name),
                via: Via::Cookie { csrf: s.csrf },
            }));
        }
    }
    Ok(None)
}
