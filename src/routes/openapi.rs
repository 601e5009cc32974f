//! `GET /api/v1/openapi.json`, generated from the handlers' annotations (utoipa), so the document
//! cannot drift from the routes.

use axum::Json;
use utoipa::OpenApi;

use crate::models;

#[derive(OpenApi)]
#[openapi(
    info(title = "Heldar", description = "Snapshot kernel for IP cameras"),
    paths(
        super::cameras::list,
        super::cameras::create,
        super::cameras::get_one,
        super::cameras::patch,
        super::cameras::delete,
        super::snapshot::live,
        super::health::health,
        super::system::system,
        super::schedules::list,
        super::schedules::create,
        super::schedules::patch,
        super::schedules::delete,
        super::snapshots::list,
        super::snapshots::latest,
        super::media::media,
        super::metrics::metrics,
        super::session::get,
        super::session::login,
        super::session::logout,
        super::tokens::list,
        super::tokens::create,
        super::tokens::revoke,
    ),
    components(schemas(
        models::CameraView,
        models::CameraCreate,
        models::CameraPatch,
        models::CameraStatus,
        models::CameraState,
        models::Vendor,
        models::SnapshotSource,
        models::EffectiveUrls,
        models::ErrorBody,
        super::health::Health,
        super::session::SessionView,
        super::session::Login,
        super::tokens::TokenCreate,
        super::tokens::TokenCreated,
        crate::auth::manage::TokenView,
        crate::auth::Role,
        super::system::System,
    ))
)]
pub struct ApiDoc;

pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
