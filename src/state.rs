//! The application state the HTTP layer holds: shared handles only, split so a handler takes
//! just the part it needs (axum's `FromRef`: `State<Ops>`, `State<Arc<Auth>>`, …). It is built
//! once by `app` and cloned per request; nothing here does work of its own.

use std::sync::Arc;

use axum::extract::FromRef;
use tokio_util::sync::CancellationToken;

use crate::auth::Auth;
use crate::config::Config;
use crate::ops::Ops;

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The service layer every handler calls.
    pub ops: Ops,
    /// Who is calling (tokens, sessions); what they may do is in the route list.
    pub auth: Arc<Auth>,
    /// The routes' access rules and the OpenAPI document, made once from the route list.
    pub api: Arc<ApiDescription>,
    /// Cancelled when the server shuts down: long-lived responses (the event stream) end then.
    pub shutdown: CancellationToken,
}

/// What the route list says about the API, computed once at start-up (`routes::describe`).
pub struct ApiDescription {
    /// Method and route pattern → the role it needs (`None`: public).
    pub access: crate::auth::AccessTable,
    /// Method and route pattern → the query parameters its operation takes (`routes::query`).
    pub query: std::collections::BTreeMap<(String, String), Vec<String>>,
    /// The OpenAPI document served at `/api/v1/openapi.json`.
    pub openapi: serde_json::Value,
}

impl FromRef<AppState> for Ops {
    fn from_ref(s: &AppState) -> Ops {
        s.ops.clone()
    }
}

impl FromRef<AppState> for Arc<Auth> {
    fn from_ref(s: &AppState) -> Arc<Auth> {
        s.auth.clone()
    }
}

impl FromRef<AppState> for Arc<Config> {
    fn from_ref(s: &AppState) -> Arc<Config> {
        s.ops.config.clone()
    }
}

impl FromRef<AppState> for Arc<ApiDescription> {
    fn from_ref(s: &AppState) -> Arc<ApiDescription> {
        s.api.clone()
    }
}
