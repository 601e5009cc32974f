//! `/api/v1/discovery` and `/api/v1/onvif/…`: finding ONVIF cameras, probing one, and adding
//! one as a camera (`ops::onvif`, docs/onvif.md). Admin only: a probe sends credentials to an
//! address the caller chooses, and an add registers a camera.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;

use super::error::{ApiError, ApiJson};
use crate::models::onvif::{
    DiscoveryRequest, DiscoveryResult, OnvifAddRequest, OnvifProbeRequest, OnvifProbeResult,
};
use crate::models::{CameraView, ErrorBody};
use crate::ops::{self, Ops};

#[utoipa::path(post, path = "/api/v1/discovery", operation_id = "discover_onvif", tag = "onvif",
    request_body = DiscoveryRequest,
    extensions(("x-heldar-role" = json!("admin"))),
    responses(
        (status = 200, body = DiscoveryResult, description = "the devices that answered a WS-Discovery probe within the wait"),
        (status = 400, body = ErrorBody, description = "the body is not JSON"),
        (status = 413, body = ErrorBody, description = "the body is over 64 KiB"),
        (status = 415, body = ErrorBody, description = "the body is not sent as application/json"),
        (status = 422, body = ErrorBody, description = "a field is unknown or invalid (timeout_ms out of 100..10000, interface not an address of this machine, subnet not CIDR)"),
        (status = 502, body = ErrorBody, description = "the probe could not be sent (`unreachable`: no route for multicast)")))]
pub async fn discover(
    State(ops): State<Ops>,
    ApiJson(body): ApiJson<DiscoveryRequest>,
) -> Result<Json<DiscoveryResult>, ApiError> {
    Ok(Json(ops::onvif::discover(&ops, body).await?))
}

#[utoipa::path(post, path = "/api/v1/onvif/probe", operation_id = "probe_onvif", tag = "onvif",
    request_body = OnvifProbeRequest,
    extensions(("x-heldar-role" = json!("admin"))),
    responses(
        (status = 200, body = OnvifProbeResult, description = "what the device is, its profiles with their URIs (without credentials) and the suggested one"),
        (status = 400, body = ErrorBody, description = "the body is not JSON"),
        (status = 413, body = ErrorBody, description = "the body is over 64 KiB"),
        (status = 415, body = ErrorBody, description = "the body is not sent as application/json"),
        (status = 422, body = ErrorBody, description = "a field is missing, unknown or invalid, or the address is a cloud-metadata address (`forbidden_host`)"),
        (status = 502, body = ErrorBody, description = "the device is unreachable (`unreachable`), refused the credentials (`auth_failed`), answered XML Heldar cannot read (`bad_xml`), a SOAP fault (`onvif_fault`) or more than 1 MiB (`response_too_large`)"),
        (status = 504, body = ErrorBody, description = "the device did not answer in time (`timeout`)")))]
pub async fn probe(
    State(ops): State<Ops>,
    ApiJson(body): ApiJson<OnvifProbeRequest>,
) -> Result<Json<OnvifProbeResult>, ApiError> {
    Ok(Json(ops::onvif::probe(&ops, body).await?))
}

#[utoipa::path(post, path = "/api/v1/onvif/add", operation_id = "add_onvif_camera", tag = "onvif",
    request_body = OnvifAddRequest,
    extensions(("x-heldar-role" = json!("admin"))),
    responses(
        (status = 201, body = CameraView, description = "the camera, made with vendor onvif and the chosen profile's URLs",
            headers(("location" = String, description = "/api/v1/cameras/{id} of the new camera"))),
        (status = 400, body = ErrorBody, description = "the body is not JSON"),
        (status = 409, body = ErrorBody, description = "a camera with this id exists"),
        (status = 413, body = ErrorBody, description = "the body is over 64 KiB"),
        (status = 415, body = ErrorBody, description = "the body is not sent as application/json"),
        (status = 422, body = ErrorBody, description = "a field is missing, unknown or invalid, the profile cannot be used, no profile can (`no_usable_profile`), or the address is a cloud-metadata address (`forbidden_host`)"),
        (status = 502, body = ErrorBody, description = "as for the probe"),
        (status = 504, body = ErrorBody, description = "the device did not answer in time (`timeout`)")))]
pub async fn add(
    State(ops): State<Ops>,
    ApiJson(body): ApiJson<OnvifAddRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let view = ops::onvif::add(&ops, body).await?;
    let location = format!("/api/v1/cameras/{}", view.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(view),
    ))
}
