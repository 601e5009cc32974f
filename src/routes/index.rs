//! `GET /api/v1`: where a person or a client that only knows the API's address starts — what
//! this server is, its version, and links to the OpenAPI document, the interactive docs and the
//! main collections. Public, like health and the document it points to: it says nothing that
//! `/api/v1/openapi.json` does not.

use serde::Serialize;
use utoipa::ToSchema;

use axum::Json;

/// What `GET /api/v1` answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiIndex {
    /// Always `Heldar`.
    #[schema(example = "Heldar")]
    pub name: &'static str,
    /// The server's version.
    #[schema(example = "0.1.0")]
    pub version: &'static str,
    /// Where to go next: paths on this server.
    pub links: ApiLinks,
}

/// The paths `GET /api/v1` points to.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiLinks {
    /// The OpenAPI 3.1 document of this API.
    #[schema(example = "/api/v1/openapi.json")]
    pub openapi: &'static str,
    /// The interactive API docs (Swagger UI, served by this binary).
    #[schema(example = "/api/docs/")]
    pub docs: &'static str,
    /// Liveness and readiness.
    #[schema(example = "/api/v1/health")]
    pub health: &'static str,
    #[schema(example = "/api/v1/cameras")]
    pub cameras: &'static str,
    #[schema(example = "/api/v1/snapshot-schedules")]
    pub schedules: &'static str,
    /// The live event stream (Server-Sent Events).
    #[schema(example = "/api/v1/events")]
    pub events: &'static str,
}

/// Where to start: this API's name, version, and links to its document, docs and collections.
#[utoipa::path(get, path = "/api/v1", operation_id = "api_index", tag = "system",
    extensions(("x-heldar-role" = json!("public"))),
    responses((status = 200, body = ApiIndex, description = "what this API is and where to start")))]
pub async fn index() -> Json<ApiIndex> {
    Json(ApiIndex {
        name: "Heldar",
        version: env!("CARGO_PKG_VERSION"),
        links: ApiLinks {
            openapi: "/api/v1/openapi.json",
            docs: super::docs::PATH,
            health: "/api/v1/health",
            cameras: "/api/v1/cameras",
            schedules: "/api/v1/snapshot-schedules",
            events: "/api/v1/events",
        },
    })
}
