//! Rows and API bodies: the shapes that cross the database and HTTP boundaries.
//!
//! Values here are parsed, not validated later: a [`CameraId`] that exists is a slug that is safe
//! as a directory name, a [`Vendor`] is one we know. Bodies that arrive over HTTP are turned into
//! these types (see `camera::spec`) before anything else sees them.

pub mod integrations;
pub mod onvif;
pub mod timelapse;

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use crate::slot::spec::{Calendar, Daylight};
use crate::slot::Plan;

/// The shape of a camera id, as a regular expression (for documents; [`CameraId::parse`] checks).
pub const CAMERA_ID_PATTERN: &str = "^[a-z0-9][a-z0-9_-]{0,62}$";
/// The shape of a schedule id, as a regular expression (for documents; [`ScheduleId::parse`]).
pub const SCHEDULE_ID_PATTERN: &str = "^sch_[0-9a-f]{32}$";

/// A camera id: `^[a-z0-9][a-z0-9_-]{0,62}$`. It becomes a directory name under snapshots_dir,
/// so nothing else is accepted (no dots, no slashes, no upper case).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", example = "gate_a")]
pub struct CameraId(String);

impl CameraId {
    pub fn parse(s: &str) -> Result<CameraId, String> {
        let bytes = s.as_bytes();
        let ok_first = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        let ok_rest = |b: u8| ok_first(b) || b == b'_' || b == b'-';
        if bytes.is_empty() || bytes.len() > 63 {
            return Err("a camera id is 1 to 63 characters long".into());
        }
        if !ok_first(bytes[0]) || !bytes[1..].iter().all(|&b| ok_rest(b)) {
            return Err(format!(
                "camera id {:?} is not a slug: use lower-case letters, digits, '_' and '-', \
                 starting with a letter or digit",
                truncate(s, 80)
            ));
        }
        Ok(CameraId(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CameraId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for CameraId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        CameraId::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Camera makers whose URL layouts Heldar knows (docs/design.md §3, §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Vendor {
    Hikvision,
    Dahua,
    Reolink,
    Amcrest,
    Axis,
    Onvif,
    Generic,
}

/// Which back-end takes a camera's frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum SnapshotSource {
    /// http when a snapshot URL is known; else the stream, read natively for `rtsp://` URLs
    /// (ffmpeg for other schemes and for streams the native path cannot decode).
    #[default]
    Auto,
    /// The snapshot URL.
    Http,
    /// The stream, read by ffmpeg (one process per capture).
    Rtsp,
    /// The stream, read in process (retina + OpenH264); ffmpeg for what it cannot decode.
    Native,
}

/// Which frame of a warm RTSP session serves a slot (docs/rtsp.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum RtspFrameMode {
    /// The newest frame at the slot, decoded from its keyframe forward.
    #[default]
    Exact,
    /// The newest keyframe at the slot: one picture decoded, up to a keyframe interval older.
    Keyframe,
}

/// How a camera's TLS certificate is checked (https snapshot URLs, rtsps and https streams).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum TlsVerify {
    /// Issued by an authority in Heldar's root set (Mozilla's), for the URL's host, in date.
    #[default]
    System,
    /// The camera's certificate is the one whose SHA-256 fingerprint is `tls_fingerprint`;
    /// issuer, host name and dates are not checked.
    Pinned,
    /// Any certificate is accepted (the connection is encrypted but not authenticated).
    Off,
}

/// A camera's health as the last captures saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CameraState {
    Unknown,
    Online,
    Failing,
    AuthFailed,
}

macro_rules! text_enum {
    ($t:ty { $($v:ident => $s:literal),+ $(,)? }) => {
        impl $t {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s),+ }
            }
            /// Parse the stored text form; unknown text is a corrupt row.
            pub fn from_db(s: &str) -> Option<Self> {
                match s { $($s => Some(Self::$v),)+ _ => None }
            }
        }
    };
}
text_enum!(Vendor { Hikvision => "hikvision", Dahua => "dahua", Reolink => "reolink",
    Amcrest => "amcrest", Axis => "axis", Onvif => "onvif", Generic => "generic" });
text_enum!(SnapshotSource { Auto => "auto", Http => "http", Rtsp => "rtsp", Native => "native" });
text_enum!(TlsVerify { System => "system", Pinned => "pinned", Off => "off" });
text_enum!(RtspFrameMode { Exact => "exact", Keyframe => "keyframe" });
text_enum!(CameraState { Unknown => "unknown", Online => "online", Failing => "failing",
    AuthFailed => "auth_failed" });

/// A camera whose every field has been checked (`camera::spec` builds it from an API body and
/// says what is wrong in a [`FieldError`]). `password` and the explicit URLs are secrets: this
/// type is never serialized. Between `ops` and `db` the four secret-bearing fields hold their
/// sealed form (`camera::seal`); everywhere else, plaintext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraSpec {
    pub id: CameraId,
    pub name: String,
    pub vendor: Vendor,
    pub address: String,
    pub rtsp_port: u16,
    pub http_port: u16,
    pub username: Option<String>,
    pub password: Option<String>,
    pub main_stream_url: Option<String>,
    pub sub_stream_url: Option<String>,
    pub snapshot_url: Option<String>,
    pub snapshot_source: SnapshotSource,
    pub tls_verify: TlsVerify,
    /// `sha256:AB:CD:…` (normalised by `camera::fingerprint`); used when `tls_verify` is pinned.
    pub tls_fingerprint: Option<String>,
    /// Which frame of a warm RTSP session serves a slot.
    pub rtsp_frame_mode: RtspFrameMode,
    /// Bytes of stored frames this camera may hold (`max_gb` × 10⁹); retention removes its
    /// oldest frames beyond it. `None`: no per-camera cap.
    pub max_bytes: Option<u64>,
}

/// The fields of a [`CameraSpec`] (and columns of `cameras`) whose values are sealed at rest:
/// the password, and the explicit URLs, which may carry `user:password@` or a `password=` query.
pub const SEALED_FIELDS: [&str; 4] = [
    "password",
    "main_stream_url",
    "sub_stream_url",
    "snapshot_url",
];

/// A registered camera: its spec and when it was created and last changed. Derefs to the spec,
/// so `camera.id`, `camera.vendor`, … read as the fields they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Camera {
    pub spec: CameraSpec,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl std::ops::Deref for Camera {
    type Target = CameraSpec;
    fn deref(&self) -> &CameraSpec {
        &self.spec
    }
}

/// One field's problem, for a 422 answer that names the field.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{message}")]
pub struct FieldError {
    /// The request field, as the API spells it (`interval_seconds`, `snapshot_url`, …).
    pub field: &'static str,
    /// A sentence saying what is wrong.
    pub message: String,
}

impl FieldError {
    pub fn new(field: &'static str, message: impl Into<String>) -> FieldError {
        FieldError {
            field,
            message: message.into(),
        }
    }
}

/// What a caller may do; each role includes the ones before it (docs/design.md §11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Operator,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Result<Role, String> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            other => Err(format!(
                "role {other:?} is not one of viewer, operator, admin"
            )),
        }
    }
}

/// A token as shown to people: never its secret or hash.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TokenView {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

/// The `camera_status` row of one camera.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CameraStatus {
    pub state: CameraState,
    pub last_success_at: Option<DateTime<Utc>>,
    /// The last failure, with credentials masked.
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    pub consecutive_failures: i64,
    /// Until when this camera's scheduled captures wait instead of trying at every slot
    /// (backoff); `null` when they do not. The first slot at or after it tries again; a live
    /// snapshot tries at once regardless, and any success ends the backoff.
    pub backoff_until: Option<DateTime<Utc>>,
    /// Why they wait: `auth_failed` (the camera refused the credentials) or `unreachable` (it
    /// could not be reached or did not answer in time, several times in a row); `null` when not
    /// backing off.
    pub backoff_reason: Option<BackoffReason>,
}

/// Why a camera's scheduled captures are backing off (`ops::backoff`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BackoffReason {
    AuthFailed,
    Unreachable,
}

impl BackoffReason {
    pub fn as_str(self) -> &'static str {
        match self {
            BackoffReason::AuthFailed => "auth_failed",
            BackoffReason::Unreachable => "unreachable",
        }
    }
}

impl Default for CameraStatus {
    fn default() -> Self {
        CameraStatus {
            state: CameraState::Unknown,
            last_success_at: None,
            last_error: None,
            last_error_at: None,
            consecutive_failures: 0,
            backoff_until: None,
            backoff_reason: None,
        }
    }
}

/// Format a time the way every timestamp is stored: RFC 3339, UTC, milliseconds, `Z`.
pub fn fmt_ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Shorten untrusted text before quoting it back in an error message.
pub fn truncate(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max_chars).collect();
        t.push('…');
        t
    }
}

/// The longest run of non-space characters an error sentence echoes in full.
pub const ECHO_MAX_CHARS: usize = 64;

/// `text` with every run of non-space characters longer than [`ECHO_MAX_CHARS`] cut to its first
/// 40 and `…`. Error sentences quote what the client sent (a number, an id, a URL); a
/// 5,000-digit number or a megabyte of id is not worth sending back, and the start is enough
/// to recognise it. Spaces and short words are kept as they are.
pub fn clip_words(text: &str) -> String {
    if text.split(' ').all(|w| w.chars().count() <= ECHO_MAX_CHARS) {
        return text.to_string();
    }
    text.split(' ')
        .map(|w| {
            if w.chars().count() > ECHO_MAX_CHARS {
                truncate(w, 40)
            } else {
                w.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_sentences_cut_only_the_long_words() {
        let short = "interval_seconds 5 must be at least 1 second";
        assert_eq!(clip_words(short), short);
        let digits = "9".repeat(5000);
        let clipped = clip_words(&format!("interval_seconds {digits} is too long"));
        assert_eq!(
            clipped,
            format!("interval_seconds {}… is too long", "9".repeat(40))
        );
    }

    #[test]
    fn tags_are_short_and_safe_in_urls_topics_and_shells() {
        for ok in ["doorbell", "a", "gate.open-1_x", &"x".repeat(64)] {
            assert!(check_tag(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "has space",
            "a/b",
            "ümlaut",
            "semi;colon",
            &"x".repeat(65),
        ] {
            let e = check_tag(bad).unwrap_err();
            assert!(e.starts_with("tag "), "{e}");
        }
    }

    #[test]
    fn camera_ids_are_slugs_and_nothing_else() {
        for good in ["a", "gate_a", "cam-01", "0", &"a".repeat(63)] {
            assert!(CameraId::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "-a",
            "_a",
            "Gate",
            "a.b",
            "..",
            "a/b",
            "a b",
            "é",
            "a%2f",
            &"a".repeat(64),
            "a\0",
            "cam\n",
        ] {
            assert!(CameraId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn timestamps_are_fixed_width_and_sort_as_text() {
        let t = DateTime::parse_from_rfc3339("2026-01-02T03:04:05.5Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(fmt_ts(t), "2026-01-02T03:04:05.500Z");
    }
}

// ---------------------------------------------------------------------------------------------
// API bodies. Fields arrive as loose JSON types (text, integers) and are checked one by one in
// `camera::spec`, so an error names the field it is about.

/// `POST /api/v1/cameras`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"id": "gate_a", "name": "Gate A", "vendor": "hikvision",
    "address": "192.168.1.20", "username": "admin", "password": "secret"}))]
pub struct CameraCreate {
    /// Slug: lower-case letters, digits, `_`, `-`; it names the camera's frame directory.
    #[schema(example = "gate_a", pattern = r"^[a-z0-9][a-z0-9_-]{0,62}$")]
    pub id: String,
    /// Display name; defaults to the id. 1 to 200 characters once trimmed, no control characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub name: Option<String>,
    #[schema(value_type = Option<Vendor>)]
    pub vendor: Option<String>,
    /// Host name or IP address of the camera (no scheme, no path). A camera needs an address
    /// (for a vendor with URL templates) or an explicit snapshot_url or main_stream_url.
    #[schema(max_length = 253)]
    pub address: Option<String>,
    /// Default 554.
    #[schema(minimum = 1, maximum = 65535)]
    pub rtsp_port: Option<i64>,
    /// Default 80.
    #[schema(minimum = 1, maximum = 65535)]
    pub http_port: Option<i64>,
    /// At most 128 characters, no `:`, no control characters; empty means none.
    #[schema(max_length = 128, pattern = r"^[^:\u0000-\u001f\u007f-\u009f]*$")]
    pub username: Option<String>,
    /// Write-only: never returned. At most 256 characters, no control characters.
    #[schema(max_length = 256, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub password: Option<String>,
    /// rtsp, rtsps, http or https URL with a host.
    #[schema(max_length = 2048)]
    pub main_stream_url: Option<String>,
    /// rtsp, rtsps, http or https URL with a host.
    #[schema(max_length = 2048)]
    pub sub_stream_url: Option<String>,
    /// http or https URL with a host.
    #[schema(max_length = 2048)]
    pub snapshot_url: Option<String>,
    #[schema(value_type = Option<SnapshotSource>)]
    pub snapshot_source: Option<String>,
    /// How the camera's TLS certificate is checked (https, rtsps): `system` (default; an
    /// authority Heldar trusts, for the URL's host), `pinned` (exactly the certificate whose
    /// SHA-256 fingerprint is `tls_fingerprint`) or `off` (any certificate).
    #[schema(value_type = Option<TlsVerify>)]
    pub tls_verify: Option<String>,
    /// The camera certificate's SHA-256 fingerprint, for `tls_verify: pinned`: 64 hex digits in
    /// any case, optionally prefixed `sha256:` and with `:` between bytes; stored and shown as
    /// `sha256:AB:CD:…`. A failed capture's `tls` error reports the presented certificate's.
    #[schema(example = "sha256:3F:9A:…")]
    pub tls_fingerprint: Option<String>,
    /// Native RTSP with a warm session: `exact` (default) serves a slot with the newest frame
    /// at the slot, decoded from its keyframe forward; `keyframe` with the newest keyframe at
    /// the slot (cheaper, up to one keyframe interval older).
    #[schema(value_type = Option<RtspFrameMode>)]
    pub rtsp_frame_mode: Option<String>,
    /// A cap on this camera's stored frames, in decimal GB (10^9 bytes; 0.5 is 500 MB), from
    /// 0.001 (1 MB): retention removes the camera's oldest frames beyond it, beside the global cap
    /// and the free-disk floor. Absent or null: no per-camera cap.
    #[schema(minimum = 0.001, maximum = 1000000)]
    pub max_gb: Option<f64>,
}

/// `PATCH /api/v1/cameras/{id}`: only the fields present change; `null` clears an optional one.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CameraPatch {
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub name: Option<String>,
    #[schema(value_type = Option<Vendor>)]
    pub vendor: Option<String>,
    #[schema(max_length = 253)]
    pub address: Option<String>,
    #[schema(minimum = 1, maximum = 65535)]
    pub rtsp_port: Option<i64>,
    #[schema(minimum = 1, maximum = 65535)]
    pub http_port: Option<i64>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, max_length = 128, pattern = r"^[^:\u0000-\u001f\u007f-\u009f]*$")]
    pub username: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, max_length = 256, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub password: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, max_length = 2048)]
    pub main_stream_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, max_length = 2048)]
    pub sub_stream_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, max_length = 2048)]
    pub snapshot_url: Option<Option<String>>,
    #[schema(value_type = Option<SnapshotSource>)]
    pub snapshot_source: Option<String>,
    #[schema(value_type = Option<TlsVerify>)]
    pub tls_verify: Option<String>,
    /// `null` clears the pin.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub tls_fingerprint: Option<Option<String>>,
    #[schema(value_type = Option<RtspFrameMode>)]
    pub rtsp_frame_mode: Option<String>,
    /// `null` removes the per-camera cap.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<f64>, minimum = 0.001, maximum = 1000000)]
    pub max_gb: Option<Option<f64>>,
}

/// Tells "absent" (outer `None`) from "null" (`Some(None)`).
fn double_option<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// The URLs a capture would use: explicit ones, else the vendor template. Credentials masked.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct EffectiveUrls {
    pub main_stream: Option<String>,
    pub sub_stream: Option<String>,
    pub snapshot: Option<String>,
}

/// A camera as the API shows it: no password (only `has_password`), every URL masked.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CameraView {
    pub id: CameraId,
    pub name: String,
    pub vendor: Vendor,
    pub address: String,
    pub rtsp_port: u16,
    pub http_port: u16,
    pub username: Option<String>,
    pub has_password: bool,
    /// Explicit override, masked; `null` when the vendor template is used.
    pub main_stream_url: Option<String>,
    pub sub_stream_url: Option<String>,
    pub snapshot_url: Option<String>,
    pub snapshot_source: SnapshotSource,
    pub tls_verify: TlsVerify,
    /// The pinned certificate's SHA-256 fingerprint (`sha256:AB:CD:…`); not a secret.
    pub tls_fingerprint: Option<String>,
    pub rtsp_frame_mode: RtspFrameMode,
    /// The cap on this camera's stored frames in decimal GB (10^9 bytes); null: none.
    pub max_gb: Option<f64>,
    /// What captures actually use (explicit URL or vendor template), masked.
    pub effective_urls: EffectiveUrls,
    pub status: CameraStatus,
    /// How the camera's stream is read, when captures use it (`null` for snapshot-URL cameras).
    pub rtsp: Option<RtspView>,
    /// How many of the camera's schedules are enabled; 0 means frames are only taken on demand.
    pub schedules_enabled: i64,
    /// When the newest stored frame was taken; `null` while the camera has none.
    pub last_frame_at: Option<DateTime<Utc>>,
    /// What the camera needs from its operator, derived from `status.state`,
    /// `schedules_enabled` and `last_frame_at` (see [`CameraHealth`]).
    pub health: CameraHealth,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// How a camera's stream is read, as this process knows it now (not stored).
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct RtspView {
    /// `native` (in process) or `ffmpeg`.
    pub backend: String,
    /// Why the native path is not used for this camera (its codec, profile or scheme), when
    /// `snapshot_source` asked for it.
    pub fallback_reason: Option<String>,
    /// `warm` (a session is kept open between captures) or `cold` (one connection per capture).
    pub session: String,
    /// What the warm session has at hand, when it has something to say (e.g. no keyframe yet,
    /// or why it is reconnecting).
    pub note: Option<String>,
}

/// What a camera needs from its operator, most urgent first (the dashboard's grid sorts by it).
/// Derived, never stored: from the last capture's state, the enabled schedules and the newest
/// stored frame, so "captured once but keeps nothing" is never shown as healthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CameraHealth {
    /// The last capture failed (`status.state` is `failing` or `auth_failed`; `status.last_error`
    /// says why).
    Failing,
    /// No enabled schedule: frames are taken only on demand.
    NoSchedule,
    /// Scheduled and not failing, but no frame is stored yet (the first one is on its way).
    Waiting,
    /// Scheduled, the last capture worked, and a frame is stored.
    Ok,
}

impl CameraHealth {
    pub fn of(
        state: CameraState,
        schedules_enabled: i64,
        last_frame_at: Option<DateTime<Utc>>,
    ) -> CameraHealth {
        match state {
            CameraState::Failing | CameraState::AuthFailed => CameraHealth::Failing,
            _ if schedules_enabled == 0 => CameraHealth::NoSchedule,
            CameraState::Online if last_frame_at.is_some() => CameraHealth::Ok,
            _ => CameraHealth::Waiting,
        }
    }
}

/// A camera's schedules and stored frames, in brief: what [`CameraHealth`] needs besides the
/// status row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CameraActivity {
    pub schedules_enabled: i64,
    pub last_frame_at: Option<DateTime<Utc>>,
}

// Only a name for the OpenAPI document (`type: string, format: binary`); the handlers send the
// bytes as they are.
/// The body of the image routes: the bytes of one JPEG (`image/jpeg`).
#[derive(Debug, Clone, ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct Jpeg(pub Vec<u8>);

/// The body of a timelapse video (`video/mp4` or `video/webm`).
#[derive(Debug, Clone, ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct Video(pub Vec<u8>);

/// The error body of every failed request (docs/design.md §5).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// A sentence saying what is wrong.
    pub error: String,
    /// A stable machine code, e.g. `invalid_field`, `not_found`, `timeout`.
    pub code: String,
    /// The request field the error is about, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Only with code `tls`, when the camera presented a certificate Heldar refused: that
    /// certificate's SHA-256 fingerprint (`sha256:AB:CD:…`), to pin with `tls_fingerprint` once
    /// the operator has confirmed it is the camera's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_fingerprint: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Schedules and snapshots.

/// A schedule id: `sch_` and 32 lower-case hex digits, as [`new_id`] makes them. Anything else
/// never reaches the database.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, pattern = "^sch_[0-9a-f]{32}$")]
pub struct ScheduleId(String);

impl ScheduleId {
    pub fn parse(raw: &str) -> Result<ScheduleId, String> {
        let ok = raw.strip_prefix("sch_").is_some_and(|h| {
            h.len() == 32 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        });
        if ok {
            Ok(ScheduleId(raw.to_string()))
        } else {
            Err(format!(
                "schedule id {:?} is not of the form sch_ followed by 32 hex digits",
                truncate(raw, 80)
            ))
        }
    }

    /// A new, random id.
    pub fn generate() -> ScheduleId {
        ScheduleId(new_id("sch"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ScheduleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A `snapshot_schedules` row, and the API's view of a schedule.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Schedule {
    pub id: String,
    pub camera_id: CameraId,
    pub interval_seconds: i64,
    pub enabled: bool,
    /// When the last capture of this schedule started.
    pub last_fired_at: Option<DateTime<Utc>>,
    /// The next slot; null while the schedule is idle with no window within 400 days.
    pub next_due_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// IANA zone the local times are in (docs/schedules.md); `UTC` unless set.
    #[schema(example = "Europe/Berlin")]
    pub timezone: String,
    /// Slots on local wall-clock multiples of the interval.
    pub align: bool,
    /// Fixed local times of day (`HH:MM`), instead of the interval; null for an interval.
    pub at: Option<Vec<String>>,
    /// Active weekdays (`mon` … `sun`); null for every day.
    pub weekdays: Option<Vec<String>>,
    /// Daily window opening (local `HH:MM`); null for the whole day.
    pub active_from: Option<String>,
    /// Daily window closing (local `HH:MM`; before `active_from` means the next day).
    pub active_to: Option<String>,
    /// Active from sunrise to sunset at a place.
    pub daylight: Option<Daylight>,
    /// Skip a slot whose frame is dark (mean luma under `dark_threshold`).
    pub skip_dark: bool,
    /// Mean luma (0..=255) under which a frame is dark; null: the default, 16.
    #[schema(minimum = 0, maximum = 255)]
    pub dark_threshold: Option<i64>,
    /// Skip a slot whose frame looks like the previous stored frame of this schedule.
    pub skip_unchanged: bool,
    /// Which of the camera's sources this schedule's frames come from; null: the camera's own
    /// choice (`snapshot_source`).
    pub stream: Option<Stream>,
    /// Hours this schedule's frames are kept, instead of HELDAR_SNAPSHOT_RETENTION_HOURS;
    /// null: the global rule.
    pub retention_hours: Option<i64>,
    /// The last slot skipped because of `skip_dark` or `skip_unchanged`.
    pub last_skipped_at: Option<DateTime<Utc>>,
    /// Why it was skipped.
    pub last_skip_reason: Option<SkipReason>,
}

/// A schedule's capture source (`stream`): the camera's main-stream URL, its sub-stream URL, or
/// its HTTP snapshot URL (docs/schedules.md "Which stream").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Main,
    Sub,
    Snapshot,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Main => "main",
            Stream::Sub => "sub",
            Stream::Snapshot => "snapshot",
        }
    }

    pub fn parse(s: &str) -> Option<Stream> {
        match s {
            "main" => Some(Stream::Main),
            "sub" => Some(Stream::Sub),
            "snapshot" => Some(Stream::Snapshot),
            _ => None,
        }
    }
}

/// Why a slot's frame was not kept although the camera gave one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SkipReason {
    /// Its mean luma was under the schedule's `dark_threshold`.
    Dark,
    /// It looked like the previous stored frame of the schedule.
    Unchanged,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::Dark => "dark",
            SkipReason::Unchanged => "unchanged",
        }
    }

    pub fn parse(s: &str) -> Option<SkipReason> {
        match s {
            "dark" => Some(SkipReason::Dark),
            "unchanged" => Some(SkipReason::Unchanged),
            _ => None,
        }
    }
}

/// Default `dark_threshold`: a mean luma under 16 of 255 is a night frame (video black is 16).
pub const DEFAULT_DARK_THRESHOLD: u8 = 16;
/// Bounds of `retention_hours`: an hour to a hundred years.
pub const MAX_RETENTION_HOURS: i64 = 876_000;

/// What a schedule asks of its frames besides when they are taken: the source and which frames
/// are kept. Carried with each slot to the runner.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameRules {
    /// Skip frames darker than this mean luma.
    pub skip_dark: Option<u8>,
    pub skip_unchanged: bool,
    pub stream: Option<Stream>,
}

impl Schedule {
    /// An enabled plain interval schedule (no calendar, no frame rules) of `camera` every
    /// `interval_seconds`, next due at `next_due_at`, written at `written_at`: the row the bench
    /// and the tests insert directly (the API's create goes through `ops::schedules`).
    pub fn every(
        id: String,
        camera: CameraId,
        interval_seconds: i64,
        next_due_at: DateTime<Utc>,
        written_at: DateTime<Utc>,
    ) -> Schedule {
        Schedule {
            id,
            camera_id: camera,
            interval_seconds,
            enabled: true,
            last_fired_at: None,
            next_due_at: Some(next_due_at),
            created_at: written_at,
            updated_at: written_at,
            timezone: "UTC".into(),
            align: false,
            at: None,
            weekdays: None,
            active_from: None,
            active_to: None,
            daylight: None,
            skip_dark: false,
            dark_threshold: None,
            skip_unchanged: false,
            stream: None,
            retention_hours: None,
            last_skipped_at: None,
            last_skip_reason: None,
        }
    }

    /// What the runner does with this schedule's frames.
    pub fn frame_rules(&self) -> FrameRules {
        FrameRules {
            skip_dark: self.skip_dark.then(|| {
                self.dark_threshold
                    .map_or(DEFAULT_DARK_THRESHOLD, |t| t.clamp(0, 255) as u8)
            }),
            skip_unchanged: self.skip_unchanged,
            stream: self.stream,
        }
    }

    /// Set the calendar fields (`None`: the plain interval schedule).
    pub fn set_calendar(&mut self, c: Option<Calendar>) {
        let c = c.unwrap_or_default();
        self.timezone = c.timezone.unwrap_or_else(|| "UTC".into());
        self.align = c.align.unwrap_or(false);
        self.at = c.at;
        self.weekdays = c.weekdays;
        self.active_from = c.active_from;
        self.active_to = c.active_to;
        self.daylight = c.daylight;
    }

    /// The calendar fields, `None` when they are those of the plain interval schedule (what the
    /// `calendar` column holds).
    pub fn calendar(&self) -> Option<Calendar> {
        let c = Calendar {
            timezone: (self.timezone != "UTC").then(|| self.timezone.clone()),
            align: self.align.then_some(true),
            at: self.at.clone(),
            weekdays: self.weekdays.clone(),
            active_from: self.active_from.clone(),
            active_to: self.active_to.clone(),
            daylight: self.daylight,
        };
        (c != Calendar::default()).then_some(c)
    }

    /// The slot plan. A stored calendar was checked when it was written; one that no longer
    /// passes (a time zone dropped from a later tz database) falls back to the plain interval
    /// in UTC, logged, rather than stopping the scheduler.
    pub fn plan(&self) -> Plan {
        let interval = chrono::Duration::seconds(self.interval_seconds.max(1));
        match self.calendar() {
            None => Plan::interval(interval),
            Some(c) => c.plan(self.interval_seconds, false).unwrap_or_else(|e| {
                tracing::warn!(schedule = %self.id, field = e.field, error = %e.message,
                    "a stored calendar is no longer valid; running as a plain interval");
                Plan::interval(interval)
            }),
        }
    }
}

/// Interval bounds of a schedule, as the Heldar kernel clamps them.
pub const MIN_INTERVAL_S: i64 = 5;
pub const MAX_INTERVAL_S: i64 = 86_400;
pub const DEFAULT_INTERVAL_S: i64 = 300;

/// `POST /api/v1/cameras/{id}/snapshot-schedules`. The calendar fields are described in
/// docs/schedules.md; spelled out (not flattened) because `deny_unknown_fields` does not work
/// with `flatten`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"interval_seconds": 300, "align": true, "timezone": "Europe/Berlin",
    "weekdays": ["mon", "tue", "wed", "thu", "fri"], "active_from": "07:00", "active_to": "19:00"}))]
pub struct ScheduleCreate {
    /// Seconds between frames; default 300, clamped to 5..=86400. Not with `at`.
    pub interval_seconds: Option<i64>,
    /// Default true.
    pub enabled: Option<bool>,
    /// IANA time zone name; default UTC.
    pub timezone: Option<String>,
    /// Slots on local wall-clock multiples of the interval; default false.
    pub align: Option<bool>,
    /// Fixed local times of day (`HH:MM` or `HH:MM:SS`), 1 to 96.
    pub at: Option<Vec<String>>,
    /// Active weekdays: `mon` … `sun`.
    pub weekdays: Option<Vec<String>>,
    /// Daily window opening, local `HH:MM`.
    pub active_from: Option<String>,
    /// Daily window closing, local `HH:MM`.
    pub active_to: Option<String>,
    /// Active from sunrise to sunset at a place.
    pub daylight: Option<Daylight>,
    /// Skip a slot whose frame is dark: its mean luma (from a luma-only decode of the JPEG) is
    /// below `dark_threshold`. A skipped slot fired once and is done: not stored, not missed,
    /// counted in `heldar_skipped_slots_total{camera,reason}`, announced as `slot.skipped` and
    /// shown in `last_skipped_at`/`last_skip_reason`. Default false.
    pub skip_dark: Option<bool>,
    /// Mean luma 0..=255 under which a frame is dark; null or absent: 16 (video black).
    #[schema(minimum = 0, maximum = 255)]
    pub dark_threshold: Option<i64>,
    /// Skip a slot whose frame looks like this schedule's previous stored frame: a 64-bit
    /// difference hash (9x8 grid of mean luma) within 2 bits, and a mean luma within 8. Skipped
    /// as for `skip_dark`. Default false.
    pub skip_unchanged: Option<bool>,
    /// `main`, `sub` or `snapshot`: the camera's main-stream URL, sub-stream URL or HTTP
    /// snapshot URL for this schedule's frames; null or absent: the camera's own choice. A
    /// stream other than the camera's own is captured cold (not from its warm RTSP session).
    /// A source the camera has no URL for is a 422 naming `stream`.
    #[schema(value_type = Option<Stream>)]
    pub stream: Option<String>,
    /// Hours this schedule's frames are kept (1..=876000), instead of the global age limit
    /// (HELDAR_SNAPSHOT_RETENTION_HOURS), shorter or longer; the global size cap and free-disk
    /// floor still apply. Null or absent: the global limit.
    #[schema(minimum = 1, maximum = 876000)]
    pub retention_hours: Option<i64>,
}

impl ScheduleCreate {
    pub fn calendar(&self) -> Calendar {
        Calendar {
            timezone: self.timezone.clone(),
            align: self.align,
            at: self.at.clone(),
            weekdays: self.weekdays.clone(),
            active_from: self.active_from.clone(),
            active_to: self.active_to.clone(),
            daylight: self.daylight,
        }
    }
}

/// A field that may be absent (unchanged), `null` (back to its default) or a value.
fn nullable<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// `PATCH /api/v1/snapshot-schedules/{id}`: each field given replaces the stored one; a
/// calendar field given as `null` goes back to its default (`at: null` makes it an interval
/// schedule again).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SchedulePatch {
    pub interval_seconds: Option<i64>,
    pub enabled: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub timezone: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<bool>)]
    pub align: Option<Option<bool>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Vec<String>>)]
    pub at: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Vec<String>>)]
    pub weekdays: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub active_from: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub active_to: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Daylight>)]
    pub daylight: Option<Option<Daylight>>,
    pub skip_dark: Option<bool>,
    /// `null`: back to the default, 16.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 255)]
    pub dark_threshold: Option<Option<i64>>,
    pub skip_unchanged: Option<bool>,
    /// `null`: back to the camera's own choice.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Stream>)]
    pub stream: Option<Option<String>>,
    /// `null`: back to the global age limit.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 876000)]
    pub retention_hours: Option<Option<i64>>,
}

impl SchedulePatch {
    /// Whether any calendar field is named.
    pub fn touches_calendar(&self) -> bool {
        self.timezone.is_some()
            || self.align.is_some()
            || self.at.is_some()
            || self.weekdays.is_some()
            || self.active_from.is_some()
            || self.active_to.is_some()
            || self.daylight.is_some()
    }

    /// `c` with this patch's calendar fields applied.
    pub fn apply(&self, mut c: Calendar) -> Calendar {
        fn set<T: Clone>(slot: &mut Option<T>, v: &Option<Option<T>>) {
            if let Some(v) = v {
                *slot = v.clone();
            }
        }
        set(&mut c.timezone, &self.timezone);
        set(&mut c.align, &self.align);
        set(&mut c.at, &self.at);
        set(&mut c.weekdays, &self.weekdays);
        set(&mut c.active_from, &self.active_from);
        set(&mut c.active_to, &self.active_to);
        set(&mut c.daylight, &self.daylight);
        c
    }
}

/// `GET /api/v1/snapshot-schedules/{id}/preview`: the next slots.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SchedulePreview {
    pub schedule_id: String,
    pub timezone: String,
    /// The slots, RFC 3339 UTC.
    pub slots: Vec<DateTime<Utc>>,
    /// The same slots in the schedule's zone, with its offset (`2026-11-29T08:00:00+01:00`).
    pub local: Vec<String>,
}

/// `POST /api/v1/cameras/{id}/snapshot-schedules/preview`: the first slots an unsaved schedule
/// body would fire if it were created now.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DraftPreview {
    pub camera_id: CameraId,
    /// The zone the body names, as the tz database spells it; `UTC` unless set.
    pub timezone: String,
    /// The slots, RFC 3339 UTC.
    pub slots: Vec<DateTime<Utc>>,
    /// The same slots in the schedule's zone, with its offset (`2026-11-29T08:00:00+01:00`).
    pub local: Vec<String>,
}

/// Where a keyset-paged list stopped: the sort key of the last item handed out (a frame's
/// `taken_at`, a schedule's `created_at`) and its id, which breaks ties. The next page starts
/// strictly after it, so items added meanwhile never shift a page (no duplicates, no gaps, as
/// an offset would give).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub at: DateTime<Utc>,
    pub id: String,
}

/// One page of a list: its items, how many items match the filters in all (ignoring the page
/// size and the starting position), and where the next page starts (`None`: none is left).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: i64,
    pub next: Option<Position>,
}

/// A `snapshots` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub id: String,
    pub camera_id: CameraId,
    pub schedule_id: Option<String>,
    /// Relative to snapshots_dir: `{camera_id}/{file}`.
    pub path: String,
    pub taken_at: DateTime<Utc>,
    pub size_bytes: i64,
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub created_at: DateTime<Utc>,
    /// The tag given when the frame was taken on demand (`?tag=`, an MQTT capture trigger);
    /// checked by [`check_tag`].
    pub tag: Option<String>,
}

/// Longest tag, in characters.
pub const TAG_MAX: usize = 64;

/// Check a frame's tag: 1–64 characters of `A-Z a-z 0-9 _ . -` (safe in a URL, a topic, a
/// file name and a shell without quoting). The error is the sentence the API answers 422 with.
pub fn check_tag(tag: &str) -> Result<(), String> {
    let ok = !tag.is_empty()
        && tag.len() <= TAG_MAX
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "tag {:?} must be 1 to {TAG_MAX} characters of letters, digits, `_`, `.` and `-`",
            truncate(tag, 80)
        ))
    }
}

/// A stored frame as the API lists it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SnapshotView {
    pub id: String,
    pub camera_id: String,
    pub schedule_id: Option<String>,
    pub taken_at: DateTime<Utc>,
    pub size_bytes: i64,
    pub width: Option<i64>,
    pub height: Option<i64>,
    /// Where the JPEG is served: `/media/snapshots/{camera_id}/{file}`.
    pub url: String,
    /// The tag it was taken with (`POST …/snapshot?store=true&tag=`, an MQTT capture trigger);
    /// `null` for scheduled and untagged frames.
    pub tag: Option<String>,
}

impl From<&Snapshot> for SnapshotView {
    fn from(s: &Snapshot) -> Self {
        SnapshotView {
            id: s.id.clone(),
            camera_id: s.camera_id.to_string(),
            schedule_id: s.schedule_id.clone(),
            taken_at: s.taken_at,
            size_bytes: s.size_bytes,
            width: s.width,
            height: s.height,
            url: format!("/media/snapshots/{}", s.path),
            tag: s.tag.clone(),
        }
    }
}

/// A new opaque id with a readable prefix, e.g. `sch_3f2a…`.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}
