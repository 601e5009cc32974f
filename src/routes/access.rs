//! Which role each route needs — read from the route list itself, where every operation names
//! its role ([`ROLE_EXTENSION`]), into one [`AccessTable`] — and the middleware that enforces it
//! on every request (docs/design.md §11).
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
use serde_json::Value;

use super::error::ApiError;
use crate::auth::{session, token, AccessTable, Need, Principal, Role, Via};
use crate::state::AppState;

/// The extension of an operation in the route list that names who may call it: `public`,
/// `viewer`, `operator` or `admin`.
pub const ROLE_EXTENSION: &str = "x-heldar-role";

/// Routes outside the API document: the dashboard's page and static files, which must load
/// before any login, and the API docs viewer (public, like the document it shows).
const WEB_ROUTES: &[(&str, &str, Need)] = &[
    ("GET", "/", Need::Public),
    ("GET", "/assets/{*path}", Need::Public),
    ("GET", "/api/docs", Need::Public),
    ("GET", "/api/docs/", Need::Public),
    ("GET", "/api/docs/{file}", Need::Public),
];

/// The access table of a route list's OpenAPI document (as JSON): each operation's
/// [`ROLE_EXTENSION`], plus [`WEB_ROUTES`]. An operation without the extension, or with a value
/// that is not a role, gets no rule, so the guard refuses it (fail-closed).
pub fn table_from(doc: &Value) -> AccessTable {
    let mut table = AccessTable::default();
    for (m, p, n) in WEB_ROUTES {
        table.insert(m, p, *n);
    }
    let paths = doc.get("paths").and_then(Value::as_object);
    for (path, item) in paths.into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            let need = match op.get(ROLE_EXTENSION).and_then(Value::as_str) {
                Some("public") => Need::Public,
                Some(role) => match Role::parse(role) {
                    Ok(r) => Need::Role(r),
                    Err(_) => continue,
                },
                None => continue,
            };
            table.insert(method, path, need);
        }
    }
    table
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
    let need = match state.api.access.need_for(req.method().as_str(), &path) {
        Ok(n) => n,
        Err(true) => return next.run(req).await, // 405 from the router
        Err(false) => {
            tracing::error!(route = %path, method = %req.method(), "route has no access rule (its x-heldar-role); refusing");
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
    let principal = match identify(state, headers).await {
        Ok(p) => p,
        // A public route needs nobody: if who is calling cannot be told (the database away, so
        // the authentication switch unread), it still answers — the health check above all.
        Err(_) if matches!(need, Need::Public) => None,
        Err(e) => return Err(e),
    };
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
