//! The HTTP API (docs/design.md §5). Handlers are thin: parse the request into typed values
//! ([`params`], [`error::ApiJson`]), call an operation (`ops`), and map its typed error through
//! [`error::ApiError`]. No handler builds an error response by hand and no SQL lives here.
//!
//! [`api`] is the one route list. It feeds the router, the OpenAPI document (each handler's
//! `#[utoipa::path]` gives its method, path and description) and the access table (each names
//! its role in `x-heldar-role`, see [`access`]), so a route is written once.

pub mod access;
pub mod cameras;
pub mod docs;
pub mod error;
pub mod events;
pub mod frames;
pub mod health;
pub mod index;
pub mod live;
pub mod media;
pub mod metrics;
pub mod nodes;
pub mod onvif;
pub mod openapi;
pub mod outages;
pub mod paging;
pub mod params;
pub mod query;
pub mod schedules;
pub mod session;
pub mod system;
pub mod timelapses;
pub mod tokens;
pub mod web;
pub mod webhooks;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use axum::Router;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::config::MetricsAuth;
use crate::state::{ApiDescription, AppState};
use error::ApiError;

/// Largest request body accepted (camera bodies are a few hundred bytes).
pub const BODY_LIMIT: usize = 64 * 1024;

/// Every API route: one `routes!` per path, with the handlers of its methods.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(cameras::list, cameras::create))
        .routes(routes!(cameras::get_one, cameras::patch, cameras::delete))
        .routes(routes!(live::live, live::take))
        .routes(routes!(schedules::list, schedules::create))
        .routes(routes!(schedules::list_all))
        .routes(routes!(
            schedules::get_one,
            schedules::patch,
            schedules::delete
        ))
        .routes(routes!(schedules::preview))
        .routes(routes!(schedules::preview_draft))
        .routes(routes!(frames::list))
        .routes(routes!(frames::latest))
        .routes(routes!(events::stream))
        .routes(routes!(index::index))
        .routes(routes!(health::health))
        .routes(routes!(session::get, session::login, session::logout))
        .routes(routes!(tokens::list, tokens::create))
        .routes(routes!(tokens::revoke))
        .routes(routes!(system::system))
        .routes(routes!(nodes::list))
        .routes(routes!(openapi::document))
        .routes(routes!(media::media))
        .routes(routes!(media::timelapse))
        .routes(routes!(timelapses::list, timelapses::create))
        .routes(routes!(timelapses::delete))
        .routes(routes!(timelapses::jobs))
        .routes(routes!(timelapses::job, timelapses::cancel))
        .routes(routes!(timelapses::rules, timelapses::create_rule))
        .routes(routes!(timelapses::patch_rule, timelapses::delete_rule))
        .routes(routes!(outages::list))
        .routes(routes!(outages::for_camera))
        .routes(routes!(webhooks::list, webhooks::create))
        .routes(routes!(
            webhooks::get_one,
            webhooks::patch,
            webhooks::delete
        ))
        .routes(routes!(webhooks::deliveries))
        .routes(routes!(metrics::metrics))
        .routes(routes!(onvif::discover))
        .routes(routes!(onvif::probe))
        .routes(routes!(onvif::add))
}

/// The OpenAPI document and the access table, from the route list, with `/metrics` needing a
/// viewer token (HELDAR_METRICS_AUTH=token, the default).
pub fn describe() -> ApiDescription {
    describe_for(MetricsAuth::Token)
}

/// [`describe`], with `/metrics` as HELDAR_METRICS_AUTH says: with `none` its rule is `public`,
/// in the access table and in the document alike (the document still says what the guard does).
pub fn describe_for(metrics: MetricsAuth) -> ApiDescription {
    let (_, doc) = api().split_for_parts();
    let mut raw = serde_json::to_value(&doc).unwrap_or_default();
    if metrics == MetricsAuth::None {
        metrics::make_public(&mut raw);
    }
    let access = access::table_from(&raw);
    let query = query::table_from(&raw);
    let mut openapi = openapi::document_json(doc, &access);
    if metrics == MetricsAuth::None {
        metrics::make_public(&mut openapi);
    }
    ApiDescription {
        access,
        query,
        openapi,
    }
}

/// The whole HTTP service: the API, `/media`, `/metrics`, the dashboard and the API docs,
/// behind the access guard, the query-parameter check, the body limit and the trace layer.
pub fn router(state: AppState) -> Router {
    let (api, _) = api().split_for_parts();
    api.merge(web::router())
        .merge(docs::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Both run after routing (they need the matched route) and before every handler; the
        // later layer runs first: who may call, then whether the query string fits.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            query::guard,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            access::guard,
        ))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        // Every request runs in a `request` span carrying its id, so each log line of it can be
        // found. A 5xx here is a camera failure (502/504, logged by `ops::frames` when it
        // matters) or an internal error (logged at ERROR by `ApiError`): the trace layer says
        // it only at DEBUG, so no failure is logged twice.
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_failure(
                    tower_http::trace::DefaultOnFailure::new().level(tracing::Level::DEBUG),
                ),
        )
        // The id: the client's `x-request-id` if it sent one, else a new one; echoed back.
        .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
        .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), NewRequestId))
        .with_state(state)
}

/// The header that carries a request's id.
static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A new request id: 32 hex digits.
#[derive(Clone, Copy)]
struct NewRequestId;

impl MakeRequestId for NewRequestId {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        axum::http::HeaderValue::from_str(&id)
            .ok()
            .map(RequestId::new)
    }
}

/// The span of one request: method, path (never the query) and id.
fn request_span<B>(req: &Request<B>) -> tracing::Span {
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
}

/// The description, shared.
pub fn description(metrics: MetricsAuth) -> Arc<ApiDescription> {
    Arc::new(describe_for(metrics))
}

async fn not_found() -> ApiError {
    ApiError::NotFound(
        "no such route; the API lives under /api/v1 (GET /api/v1 lists where to start; the \
         docs are at /api/docs/)"
            .into(),
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed("this route does not support that method".into())
}
