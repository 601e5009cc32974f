//! `GET /api/v1/events`: the event bus (`events`) as Server-Sent Events — what the dashboard
//! listens to instead of polling, and what `heldar events` tails.
//!
//! Each event is an SSE event whose name is the event's kind (`frame.stored`, …) and whose data
//! is its JSON. The stream opens with a `ready` event (from then on nothing is missed), sends a
//! comment every 15 s so proxies keep it open, and ends when the server shuts down. A client
//! that reads too slowly falls behind the bus's capacity: it gets a `lagged` event with
//! `{"missed": N}` and goes on with the newest events — it never slows capture down.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::stream::Stream;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use super::error::ApiError;
use crate::models::{CameraId, ErrorBody};
use crate::state::AppState;

/// How often an idle stream sends a keep-alive comment.
pub const HEARTBEAT: Duration = Duration::from_secs(15);

/// One message of the stream, as a client's SSE parser sees it (`event:` and `data:` lines).
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)] // a shape for the OpenAPI document; the stream is written by axum's `Sse`
pub struct SseMessage {
    /// `ready`, `lagged`, or the kind of a domain event: `frame.stored`, `slot.skipped`,
    /// `capture.failed`, `camera.state_changed`, `camera.backoff`, `camera.changed`, `schedule.changed`,
    /// `job.progress`, `job.finished`, `timelapse.done`, `camera.offline`, `camera.recovered`.
    #[schema(example = "frame.stored")]
    event: String,
    /// JSON text: `{}` for `ready`, `{"missed": N}` for `lagged`, otherwise the event itself
    /// (schema `Event`, with its kind again in `type`).
    #[schema(content_media_type = "application/json")]
    data: String,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Only events about this camera.
    #[param(pattern = r"^[a-z0-9][a-z0-9_-]{0,62}$", example = "demo")]
    pub camera: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/events", operation_id = "events", tag = "events",
    extensions(("x-heldar-role" = json!("viewer"))),
    params(EventsQuery),
    responses(
        (status = 200, content_type = "text/event-stream",
            description = "Server-Sent Events: `ready`, then one event per domain event (`frame.stored`, `slot.skipped`, `capture.failed`, `camera.state_changed`, `camera.backoff`, `camera.changed`, `schedule.changed`, `job.progress`, `job.finished`, `timelapse.done`, `camera.offline`, `camera.recovered`) with its JSON as data (every event names its camera in `camera_id`), and `lagged` with `{\"missed\": N}` when the client fell behind",
            body = SseMessage),
        (status = 400, body = ErrorBody, description = "the query string cannot be read"),
        (status = 422, body = ErrorBody, description = "camera is not a camera id")))]
pub async fn stream(
    State(state): State<AppState>,
    query: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let Query(q) = query?;
    let filter = q
        .camera
        .as_deref()
        .map(CameraId::parse)
        .transpose()
        .map_err(|m| ApiError::invalid("camera", m))?;
    let rx = state.ops.events.subscribe();
    let ready =
        futures_util::stream::once(async { Ok(SseEvent::default().event("ready").data("{}")) });
    let events = futures_util::stream::unfold(
        (rx, state.shutdown.clone(), filter),
        |(mut rx, shutdown, filter)| async move {
            loop {
                let next = tokio::select! {
                    _ = shutdown.cancelled() => return None,
                    r = rx.recv() => r,
                };
                let sse = match next {
                    Ok(ev) => {
                        if filter.as_ref().is_some_and(|c| ev.camera() != c) {
                            continue;
                        }
                        match SseEvent::default().event(ev.kind()).json_data(ev.to_json()) {
                            Ok(e) => e,
                            Err(e) => {
                                tracing::warn!(error = %e, "an event does not serialize; skipped");
                                continue;
                            }
                        }
                    }
                    Err(RecvError::Lagged(missed)) => SseEvent::default()
                        .event("lagged")
                        .data(serde_json::json!({ "missed": missed }).to_string()),
                    Err(RecvError::Closed) => return None,
                };
                return Some((Ok(sse), (rx, shutdown, filter)));
            }
        },
    );
    Ok(Sse::new(futures_util::StreamExt::chain(ready, events))
        .keep_alive(KeepAlive::new().interval(HEARTBEAT)))
}
