//! `GET /api/v1/openapi.json`, generated from the handlers' annotations (utoipa), so the document
//! cannot drift from the routes.

use axum::Json;
use serde_json::Value;
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

pub async fn document() -> Json<Value> {
    Json(document_json())
}

/// The document as JSON, with one correction: utoipa 5.5 writes the fields of a response link in
/// snake_case (`operation_id`, …) where OpenAPI says `operationId`, `operationRef`, `requestBody`;
/// clients that follow links (schemathesis' stateful phase) would find none.
pub fn document_json() -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_else(|e| {
        // Unreachable: the document is plain data. Say so rather than panic in a handler.
        tracing::error!(error = %e, "the OpenAPI document does not serialize");
        Value::Null
    });
    let operations = doc
        .get_mut("paths")
        .and_then(Value::as_object_mut)
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut());
    for operation in operations {
        let responses = operation
            .get_mut("responses")
            .and_then(Value::as_object_mut)
            .into_iter()
            .flat_map(|r| r.values_mut());
        for response in responses {
            let links = response
                .get_mut("links")
                .and_then(Value::as_object_mut)
                .into_iter()
                .flat_map(|l| l.values_mut())
                .filter_map(Value::as_object_mut);
            for link in links {
                for (snake, camel) in [
                    ("operation_id", "operationId"),
                    ("operation_ref", "operationRef"),
                    ("request_body", "requestBody"),
                ] {
                    if let Some(v) = link.remove(snake) {
                        link.insert(camel.to_string(), v);
                    }
                }
            }
        }
    }
    doc
}
