//! `GET /api/v1/openapi.json`, generated from the route list (`routes::api`) and the handlers'
//! annotations (utoipa), so the document cannot drift from the routes.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde_json::Value;
use utoipa::OpenApi;

use crate::auth::{AccessTable, Need};
use crate::models;
use crate::state::ApiDescription;

#[derive(OpenApi)]
#[openapi(
    info(title = "Heldar", description = "Snapshot kernel for IP cameras"),
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
        crate::ops::system::Health,
        super::session::SessionView,
        super::session::Login,
        super::tokens::TokenCreate,
        super::tokens::TokenCreated,
        models::TokenView,
        models::Role,
        crate::ops::system::System,
        crate::events::Event,
    ))
)]
pub struct ApiDoc;

/// Request bodies that may be left out. The path macro marks a body of a non-`Option` type
/// required, and an `Option` one would also admit a JSON `null`, which these routes refuse.
fn optional_bodies(doc: &mut utoipa::openapi::OpenApi) {
    // POST …/snapshot-schedules and its preview: no body means all defaults.
    for path in [
        "/api/v1/cameras/{id}/snapshot-schedules",
        "/api/v1/cameras/{id}/snapshot-schedules/preview",
    ] {
        let body = doc
            .paths
            .paths
            .get_mut(path)
            .and_then(|item| item.post.as_mut())
            .and_then(|op| op.request_body.as_mut());
        if let Some(body) = body {
            body.required = Some(utoipa::openapi::Required::False);
        }
    }
}

/// The security the access table enforces, written into the document from that same table: the
/// bearer and cookie schemes, and on every operation that needs a role, its schemes and its
/// 401/403 answers. The document cannot disagree with the guard.
fn declare_access(doc: &mut Value, access: &AccessTable) {
    if let Some(components) = doc.get_mut("components").and_then(Value::as_object_mut) {
        components.insert(
            "securitySchemes".into(),
            serde_json::json!({
                "bearer": {"type": "http", "scheme": "bearer",
                    "description": "a token from `heldar token create`, or HELDAR_API_TOKEN"},
                "session": {"type": "apiKey", "in": "cookie", "name": "heldar_session",
                    "description": "the dashboard's session (POST /api/v1/session); changes also need X-CSRF-Token"}
            }),
        );
    }
    let error = serde_json::json!({"content": {"application/json": {"schema":
        {"$ref": "#/components/schemas/ErrorBody"}}}});
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, op) in item.iter_mut() {
            let Ok(Need::Role(role)) = access.need_for(method, path) else {
                continue;
            };
            let Some(op) = op.as_object_mut() else {
                continue;
            };
            op.insert(
                "security".into(),
                serde_json::json!([{"bearer": []}, {"session": []}]),
            );
            if let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) {
                let mut e401 = error.clone();
                e401["description"] = "no token, or one that is not valid".into();
                let mut e403 = error.clone();
                e403["description"] = format!("the token's role is below {}", role.as_str()).into();
                responses.entry("401").or_insert(e401);
                responses.entry("403").or_insert(e403);
            }
        }
    }
}

/// Every operation refuses a query parameter it does not take (`routes::query`): each declares
/// that 400, added to its own 400 when it has one.
fn declare_unknown_parameters(doc: &mut Value) {
    const UNKNOWN: &str =
        "the query string names a parameter this operation does not take (`unknown_parameter`)";
    let operations = doc
        .get_mut("paths")
        .and_then(Value::as_object_mut)
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
        .filter_map(|op| op.get_mut("responses").and_then(Value::as_object_mut));
    for responses in operations {
        match responses.get_mut("400") {
            Some(own) => {
                let said = own
                    .get("description")
                    .and_then(Value::as_str)
                    .filter(|d| !d.is_empty());
                own["description"] = match said {
                    Some(d) => format!("{d}; or {UNKNOWN}"),
                    None => UNKNOWN.to_string(),
                }
                .into();
            }
            None => {
                responses.insert(
                    "400".into(),
                    serde_json::json!({"description": UNKNOWN, "content": {"application/json":
                        {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}}),
                );
            }
        }
    }
}

/// `GET /api/v1/openapi.json`: the document made at start-up.
#[utoipa::path(get, path = "/api/v1/openapi.json", operation_id = "openapi", tag = "system",
    extensions(("x-heldar-role" = json!("public"))),
    responses((status = 200, description = "this document", body = Object)))]
pub async fn document(State(api): State<Arc<ApiDescription>>) -> Json<Value> {
    Json(api.openapi.clone())
}

/// The document as JSON: the route list's paths, the access rules declared on them, and one
/// correction: utoipa 5.5 writes the fields of a response link in snake_case (`operation_id`,
/// …) where OpenAPI says `operationId`, `operationRef`, `requestBody`; clients that follow links
/// (schemathesis' stateful phase) would find none.
pub fn document_json(mut doc: utoipa::openapi::OpenApi, access: &AccessTable) -> Value {
    optional_bodies(&mut doc);
    let mut doc = serde_json::to_value(doc).unwrap_or_else(|e| {
        // Unreachable: the document is plain data. Say so rather than panic.
        tracing::error!(error = %e, "the OpenAPI document does not serialize");
        Value::Null
    });
    declare_access(&mut doc, access);
    declare_unknown_parameters(&mut doc);
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
