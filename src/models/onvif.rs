//! API bodies of ONVIF discovery and probing (docs/onvif.md). Request bodies keep loose JSON
//! types so that `ops::onvif` can say which field is wrong in its own sentence; answers never
//! carry a password (URIs are given without credentials).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::CameraId;

/// `POST /api/v1/discovery`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DiscoveryRequest {
    /// How long to collect answers, in milliseconds: 100 to 10000, default 3000.
    #[schema(minimum = 100, maximum = 10000, example = 3000)]
    pub timeout_ms: Option<i64>,
    /// The IPv4 address of a local interface to probe from (and by); default: the interface of
    /// the system's default route.
    #[schema(example = "192.168.1.10", max_length = 64)]
    pub interface: Option<String>,
    /// Keep only devices whose address is in this CIDR block (`192.168.1.0/24`).
    #[schema(example = "192.168.1.0/24", max_length = 64)]
    pub subnet: Option<String>,
}

/// What discovery found.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DiscoveryResult {
    pub devices: Vec<DiscoveredDevice>,
}

/// One device that answered the WS-Discovery probe.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DiscoveredDevice {
    /// The address it answered from.
    #[schema(example = "192.168.1.64")]
    pub address: String,
    /// Its device service's port (from its first service address).
    pub port: u16,
    /// The device service addresses it announced.
    pub xaddrs: Vec<String>,
    /// From its `onvif://www.onvif.org/name/…` scope.
    pub name: Option<String>,
    /// From its `…/hardware/…` scope.
    pub hardware: Option<String>,
    /// From its `…/location/…` scope.
    pub location: Option<String>,
    /// Every scope URI it sent.
    pub scopes: Vec<String>,
    /// The registered camera at this address, if any (its `address`, or the host of one of its
    /// URLs).
    #[schema(value_type = Option<String>)]
    pub registered_camera_id: Option<CameraId>,
}

/// `POST /api/v1/onvif/probe`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"address": "192.168.1.64", "username": "admin", "password": "secret"}))]
pub struct OnvifProbeRequest {
    /// Host name or IP address of the device (no scheme, no path).
    #[schema(max_length = 253)]
    pub address: String,
    /// Its device service's HTTP port; default 80.
    #[schema(minimum = 1, maximum = 65535)]
    pub port: Option<i64>,
    /// An ONVIF user of the device; empty: no WS-Security header.
    #[schema(max_length = 128)]
    pub username: String,
    /// Write-only: never returned, never logged; only its digest is sent to the device.
    #[schema(max_length = 256)]
    pub password: String,
}

/// `POST /api/v1/onvif/add`: a probe, then a camera from the chosen profile.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"address": "192.168.1.64", "username": "admin", "password": "secret", "id": "gate"}))]
pub struct OnvifAddRequest {
    #[schema(max_length = 253)]
    pub address: String,
    #[schema(minimum = 1, maximum = 65535)]
    pub port: Option<i64>,
    #[schema(max_length = 128)]
    pub username: String,
    /// Write-only: stored sealed with the camera, never returned.
    #[schema(max_length = 256)]
    pub password: String,
    /// The profile to use; default: the suggested one (docs/onvif.md, "Which profile").
    #[schema(max_length = 64)]
    pub profile_token: Option<String>,
    /// The camera's id; default: a slug of the device's model and address.
    #[schema(pattern = r"^[a-z0-9][a-z0-9_-]{0,62}$")]
    pub id: Option<String>,
    /// Display name; default: the device's name scope, else its maker and model.
    #[schema(max_length = 200)]
    pub name: Option<String>,
}

/// What a device says it is (GetDeviceInformation).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OnvifDevice {
    pub manufacturer: String,
    pub model: String,
    pub firmware: String,
    pub serial: String,
}

/// One media profile with its URIs (without credentials).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OnvifProfile {
    pub token: String,
    pub name: String,
    /// `H264`, `H265`, `JPEG`, `MPEG4`, or what the device sent; empty without a video encoder.
    pub encoding: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// http or https; `null` when the device has none (or gave one Heldar does not use: see
    /// `problem`).
    pub snapshot_uri: Option<String>,
    /// rtsp or rtsps; `null` when the device has none (or gave one Heldar does not use).
    pub stream_uri: Option<String>,
    /// Why this profile cannot be used as it is; such a profile is never suggested.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// Something to know about capturing from it (H.265 goes through ffmpeg).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The profile Heldar would use, and its URLs.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OnvifSuggestion {
    pub profile_token: String,
    pub snapshot_url: Option<String>,
    pub rtsp_url: Option<String>,
}

/// What a probe found.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OnvifProbeResult {
    pub device: OnvifDevice,
    /// The device's clock minus Heldar's, in whole seconds (requests were stamped with the
    /// device's time).
    pub clock_offset_s: i64,
    pub profiles: Vec<OnvifProfile>,
    /// `null` when no profile can be used.
    pub suggested: Option<OnvifSuggestion>,
}
