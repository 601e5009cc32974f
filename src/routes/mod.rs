//! The HTTP API (DESIGN.md §5). Handlers are thin: parse the request into typed values, call the
//! registry / capture / db, and map typed errors through [`error::ApiError`]. No handler builds an
//! error response by hand and no SQL lives here.

pub mod access;
pub mod cameras;
pub mod error;
pub mod health;
pub mod media;
pub mod metrics;
pub mod openapi;
pub mod schedules;
pub mod session;
pub mod snapshot;
pub mod snapshots;
pub mod system;
pub mod tokens;

use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::Router;
use tower_http::trace::TraceLayer;

use crate::app::AppState;
use error::ApiError;

/// Largest request body accepted (camera bodies are a few hundred bytes).
pub const BODY_LIMIT: usize = 64 * 1024;

pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/cameras", get(cameras::list).post(cameras::create))
        .route(
            "/cameras/{id}",
            get(cameras::get_one)
                .patch(cameras::patch)
                .delete(cameras::delete),
        )
        .route("/cameras/{id}/snapshot", get(snapshot::live))
        .route(
            "/cameras/{id}/snapshot-schedules",
            get(schedules::list).post(schedules::create),
        )
        .route(
            "/snapshot-schedules/{id}",
            axum::routing::patch(schedules::patch).delete(schedules::delete),
        )
        .route("/cameras/{id}/snapshots", get(snapshots::list))
        .route("/cameras/{id}/snapshots/latest", get(snapshots::latest))
        .route("/health", get(health::health))
        .route(
            "/session",
            get(session::get)
                .post(session::login)
                .delete(session::logout),
        )
        .route("/tokens", get(tokens::list).post(tokens::create))
        .route("/tokens/{id}", axum::routing::delete(tokens::revoke))
        .route("/system", get(system::system))
        .route("/openapi.json", get(openapi::document));
    Router::new()
        .nest("/api/v1", api)
        .route("/media/snapshots/{camera_id}/{file}", get(media::media))
        .route("/metrics", get(metrics::metrics))
        .merge(crate::web::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Runs after routing (it needs the matched route) and before every handler.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            access::guard,
        ))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        // A 5xx here is a camera failure (502/504, already logged by the capturer at WARN) or an
        // internal error (logged at ERROR by `ApiError`): the trace layer need not shout again.
        .layer(
            TraceLayer::new_for_http()
                .on_failure(tower_http::trace::DefaultOnFailure::new().level(tracing::Level::WARN)),
        )
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::NotFound(
        "no such route; the API lives under /api/v1 (see /api/v1/openapi.json)".into(),
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed("this route does not support that method".into())
}
