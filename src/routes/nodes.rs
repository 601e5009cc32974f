//! `GET /api/v1/nodes`: the Heldar nodes sharing this database, the cameras each holds and how
//! each is doing (docs/fleet.md). Viewer role, like `/api/v1/system`.

use axum::extract::State;
use axum::Json;

use super::error::ApiError;
use crate::models::ErrorBody;
use crate::ops::{self, nodes::NodeView, Ops};

#[utoipa::path(get, path = "/api/v1/nodes", tag = "system", operation_id = "list_nodes",
    extensions(("x-heldar-role" = json!("viewer"))),
    responses((status = 200, body = Vec<NodeView>,
        description = "Every node the database knows: live ones first, then by id. A node that \
                       stopped cleanly is not listed; a dead one is, for 24 hours after its last \
                       heartbeat."),
        (status = 500, body = ErrorBody)))]
pub async fn list(State(ops): State<Ops>) -> Result<Json<Vec<NodeView>>, ApiError> {
    Ok(Json(ops::nodes::list(&ops).await?))
}
