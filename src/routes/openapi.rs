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
        super::schedules::list,
        super::schedules::create,
        super::schedules::patch,
        super::schedules::delete,
        super::snapshots::list,
        super::snapshots::latest,
        super::media::media,
        super::metrics::metrics,
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
    )),
    modifiers(&OptionalBodies)
)]
pub struct ApiDoc;

/// Request bodies that may be left out. The path macro marks a body of a non-`Option` type
/// required, and an `Option` one would also admit a JSON `null`, which these routes refuse.
struct OptionalBodies;

impl utoipa::Modify for OptionalBodies {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        // POST …/snapshot-schedules: no body means all defaults.
        let create_schedule = doc
            .paths
            .paths
            .get_mut("/api/v1/cameras/{id}/snapshot-schedules")
            .and_then(|item| item.post.as_mut())
            .and_then(|op| op.request_body.as_mut());
        if let Some(body) = create_schedule {
            body.required = Some(utoipa::openapi::Required::False);
        }
    }
}

pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
