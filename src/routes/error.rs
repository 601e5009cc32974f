//! The API's one error type. Every handler returns `Result<_, ApiError>`; [`ApiError::status`] is
//! the one place that maps a kind of failure to an HTTP status (docs/design.md §5), and
//! `IntoResponse` the one place that writes the `{"error", "code"}` body.
//!
//! A 5xx of our own (a database failure, a bug) is logged with its details on the server; the
//! client gets a generic sentence. Camera failures (502/504) carry their masked, precise message
//! because it is what the operator needs to fix the camera.

use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::capture::CaptureError;
use crate::error::OpError;
use crate::models::{clip_words, ErrorBody, FieldError};
use crate::onvif::OnvifError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A field of the body or path is invalid (422).
    #[error("{0}")]
    Invalid(FieldError),
    /// The request cannot be read at all (400).
    #[error("{0}")]
    BadRequest(String),
    /// The query string names a parameter the operation does not take (400); `known` are the
    /// ones it takes.
    #[error("unknown query parameter {name:?}; {}", takes(known))]
    UnknownParameter { name: String, known: Vec<String> },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Capture(#[from] CaptureError),
    /// An ONVIF device failed (502, 504 for a timeout, 422 for a refused host).
    #[error("{0}")]
    Onvif(crate::onvif::OnvifError),
    /// The disk is full: the frame was not kept (507).
    #[error("{0}")]
    InsufficientStorage(String),
    /// Well-formed but impossible as asked (422), with its own code (`no_frames`, …).
    #[error("{message}")]
    Unprocessable {
        code: &'static str,
        message: String,
        field: Option<&'static str>,
    },
    /// A part the request needs is missing or busy (503), with its own code
    /// (`ffmpeg_missing`, `queue_full`).
    #[error("{message}")]
    Unavailable { code: &'static str, message: String },
    /// A Range outside the file (416); carries the file size.
    #[error("the requested range is outside the file ({0} bytes)")]
    RangeNotSatisfiable(u64),
    /// No credentials, or credentials that are not (or no longer) valid (401).
    #[error("{0}")]
    Unauthorized(String),
    /// A login with a token that is not valid (401, `invalid_token`).
    #[error("{0}")]
    InvalidToken(String),
    /// Authenticated, but the role does not allow this (403).
    #[error("{0}")]
    Forbidden(String),
    /// A cookie-authenticated change without the session's CSRF token (403).
    #[error("{0}")]
    CsrfFailed(String),
    #[error("internal error: {0:#}")]
    Internal(anyhow::Error),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::BadRequest(_) | ApiError::UnknownParameter { .. } => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Capture(e) => match e {
                CaptureError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
                CaptureError::NoSource(_) | CaptureError::ForbiddenHost(_) => {
                    StatusCode::UNPROCESSABLE_ENTITY
                }
                _ => StatusCode::BAD_GATEWAY,
            },
            ApiError::Onvif(e) => match e {
                OnvifError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
                OnvifError::ForbiddenHost(_) => StatusCode::UNPROCESSABLE_ENTITY,
                _ => StatusCode::BAD_GATEWAY,
            },
            ApiError::InsufficientStorage(_) => StatusCode::INSUFFICIENT_STORAGE,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::RangeNotSatisfiable(_) => StatusCode::RANGE_NOT_SATISFIABLE,
            ApiError::Unauthorized(_) | ApiError::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) | ApiError::CsrfFailed(_) => StatusCode::FORBIDDEN,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Invalid(_) => "invalid_field",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::UnknownParameter { .. } => "unknown_parameter",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::Conflict(_) => "conflict",
            ApiError::TooLarge(_) => "too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::Capture(e) => e.code(),
            ApiError::Onvif(e) => e.code(),
            ApiError::InsufficientStorage(_) => "disk_full",
            ApiError::Unprocessable { code, .. } | ApiError::Unavailable { code, .. } => code,
            ApiError::RangeNotSatisfiable(_) => "range_not_satisfiable",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::InvalidToken(_) => "invalid_token",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::CsrfFailed(_) => "csrf_failed",
            ApiError::Internal(_) => "internal",
        }
    }

    pub fn invalid(field: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::Invalid(FieldError {
            field,
            message: message.into(),
        })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let (error, field) = match &self {
            ApiError::Internal(e) => {
                tracing::error!(error = %crate::error::report(&**e), "request failed");
                (
                    "Heldar hit an internal error; the details are in its log.".to_string(),
                    None,
                )
            }
            ApiError::Invalid(f) => (f.message.clone(), Some(f.field.to_string())),
            ApiError::UnknownParameter { name, .. } => (self.to_string(), Some(name.clone())),
            ApiError::Unprocessable { message, field, .. } => {
                (message.clone(), field.map(str::to_string))
            }
            other => (other.to_string(), None),
        };
        // What the client sent is quoted back at most in part (`models::clip_words`); a
        // camera's own failure (502/504) is the camera's text and stays whole.
        let (error, field) = match &self {
            ApiError::Capture(_) => (error, field),
            _ => (clip_words(&error), field.map(|f| clip_words(&f))),
        };
        let body = ErrorBody {
            error,
            code: self.code().to_string(),
            field,
            tls_fingerprint: match &self {
                ApiError::Capture(e) => e.tls_fingerprint().map(str::to_string),
                _ => None,
            },
        };
        let mut resp = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"heldar\""),
            );
        }
        if let ApiError::RangeNotSatisfiable(total) = self {
            if let Ok(v) = axum::http::HeaderValue::from_str(&format!("bytes */{total}")) {
                resp.headers_mut()
                    .insert(axum::http::header::CONTENT_RANGE, v);
            }
        }
        resp
    }
}

/// "this endpoint takes a, b" (or "… takes no query parameters").
fn takes(known: &[String]) -> String {
    if known.is_empty() {
        "this endpoint takes no query parameters".into()
    } else {
        format!("this endpoint takes {}", known.join(", "))
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        ApiError::Invalid(e)
    }
}

/// The one conversion from what an operation says went wrong to what the client is told.
impl From<OpError> for ApiError {
    fn from(e: OpError) -> Self {
        match e {
            OpError::NotFound(m) => ApiError::NotFound(m),
            OpError::Conflict(m) => ApiError::Conflict(m),
            OpError::Invalid(f) => ApiError::Invalid(f),
            OpError::Capture(c) => ApiError::Capture(c),
            OpError::Onvif(e) => ApiError::Onvif(e),
            OpError::DiskFull(m) => ApiError::InsufficientStorage(m),
            OpError::Unprocessable {
                code,
                message,
                field,
            } => ApiError::Unprocessable {
                code,
                message,
                field,
            },
            OpError::Unavailable { code, message } => ApiError::Unavailable { code, message },
            OpError::Internal(e) => ApiError::Internal(e),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::JsonDataError(e) => data_error(&e.body_text()),
            JsonRejection::JsonSyntaxError(e) => ApiError::BadRequest(format!(
                "the body is not valid JSON: {}",
                strip_prefix(&e.body_text())
            )),
            JsonRejection::MissingJsonContentType(_) => not_json(),
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::TooLarge(TOO_LARGE.into())
            }
            other => {
                ApiError::BadRequest(format!("the body cannot be read: {}", other.body_text()))
            }
        }
    }
}

const TOO_LARGE: &str = "the request body is too large (the limit is 64 KiB)";

/// Valid JSON with the wrong shape (unknown field, wrong type): 422 with serde's sentence, naming
/// the field when serde does.
fn data_error(text: &str) -> ApiError {
    {
        let msg = strip_prefix(text);
        let field = ["unknown field `", "missing field `"]
            .iter()
            .find_map(|p| msg.split_once(p).and_then(|(_, rest)| rest.split_once('`')))
            .map(|(f, _)| f.to_string());
        let field: &'static str = match field.as_deref() {
            Some(f) => known_field(f),
            None => msg
                .split_once(": ")
                .map_or("body", |(path, _)| known_field(path)),
        };
        ApiError::invalid(field, format!("the body does not fit: {msg}"))
    }
}

/// Field names are `&'static str`; map the ones we know, anything else is "body".
fn known_field(name: &str) -> &'static str {
    const FIELDS: &[&str] = &[
        "id",
        "name",
        "vendor",
        "address",
        "rtsp_port",
        "http_port",
        "username",
        "password",
        "main_stream_url",
        "sub_stream_url",
        "snapshot_url",
        "snapshot_source",
        "interval_seconds",
        "enabled",
        "timezone",
        "align",
        "at",
        "weekdays",
        "active_from",
        "active_to",
        "daylight",
        // Timelapses and their rules.
        "from",
        "to",
        "fps",
        "width",
        "every_nth",
        "format",
        "period",
        "time_zone",
        "weekday",
        // Webhooks.
        "url",
        "events",
        "camera_id",
        "secret",
    ];
    FIELDS
        .iter()
        .find(|f| **f == name)
        .copied()
        .unwrap_or("body")
}

fn strip_prefix(text: &str) -> String {
    for p in [
        "Failed to deserialize the JSON body into the target type: ",
        "Failed to parse the request body as JSON: ",
    ] {
        if let Some(rest) = text.strip_prefix(p) {
            return rest.to_string();
        }
    }
    text.to_string()
}

/// A raw body that cannot be read: over the limit (413, same sentence as a JSON body), or broken.
impl From<BytesRejection> for ApiError {
    fn from(r: BytesRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(TOO_LARGE.into())
        } else {
            ApiError::BadRequest(format!("the body cannot be read: {}", r.body_text()))
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::BadRequest(format!("the URL path cannot be read: {}", r.body_text()))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::BadRequest(format!(
            "the query string cannot be read: {}",
            r.body_text()
        ))
    }
}

/// `axum::Json` whose rejections are [`ApiError`]s, and whose body must be a JSON object.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let Json(ObjectOnly(value)) = Json::<ObjectOnly<T>>::from_request(req, state).await?;
        Ok(ApiJson(value))
    }
}

/// `T` read from a JSON object only. serde's derived structs also accept an array of the field
/// values in order (`["gate_a", null, "axis", …]`), which no client of this API means to send.
struct ObjectOnly<T>(T);

impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for ObjectOnly<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: serde::Deserialize<'de>> serde::de::Visitor<'de> for Visitor<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_map(Visitor(std::marker::PhantomData))
            .map(ObjectOnly)
    }
}

/// `axum::extract::Path` whose rejections are [`ApiError`]s.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// A JSON body that may be left out (then: `T::default()`), with the same rules as [`ApiJson`]
/// otherwise: a body must come as `Content-Type: application/json` (or `application/*+json`),
/// else 415 with the same sentence. A declared non-JSON type is refused even when the body is
/// empty, so that an HTML form or `curl -d ''` never creates something with all defaults; only a
/// request with no body and no `Content-Type` means "all defaults".
pub struct OptionalJson<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Default> axum::extract::FromRequest<S>
    for OptionalJson<T>
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let declared = req.headers().get(axum::http::header::CONTENT_TYPE).cloned();
        let body = axum::body::Bytes::from_request(req, state).await?;
        let is_json = declared.as_ref().map(is_json_type);
        match is_json {
            Some(false) => return Err(not_json()),
            None if !body.trim_ascii().is_empty() => return Err(not_json()),
            _ => {}
        }
        json_or_default(&body).map(OptionalJson)
    }
}

/// The test axum's `Json` applies: `application/json` or a `+json` subtype, parameters ignored.
fn is_json_type(value: &axum::http::HeaderValue) -> bool {
    let Ok(text) = value.to_str() else {
        return false;
    };
    let essence = text
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn not_json() -> ApiError {
    ApiError::UnsupportedMediaType(
        "send the body as JSON with the header Content-Type: application/json".into(),
    )
}

/// Parse a JSON body that may be empty (then: the defaults), with the same error mapping as
/// [`ApiJson`]: broken JSON is a 400, JSON of the wrong shape a 422.
fn json_or_default<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.trim_ascii().is_empty() {
        return Ok(T::default());
    }
    serde_json::from_slice::<ObjectOnly<T>>(body)
        .map(|o| o.0)
        .map_err(|e| match e.classify() {
            serde_json::error::Category::Data => data_error(&e.to_string()),
            _ => ApiError::BadRequest(format!("the body is not valid JSON: {e}")),
        })
}

#[cfg(test)]
mod op_error_tests {
    use super::*;

    #[test]
    fn every_operation_error_kind_has_one_status_and_code() {
        let cases: Vec<(OpError, u16, &str)> = vec![
            (OpError::not_found("no camera"), 404, "not_found"),
            (OpError::Conflict("exists".into()), 409, "conflict"),
            (OpError::invalid("name", "bad name"), 422, "invalid_field"),
            (
                OpError::Capture(CaptureError::Timeout("late".into())),
                504,
                "timeout",
            ),
            (
                OpError::Capture(CaptureError::AuthFailed("no".into())),
                502,
                "auth_failed",
            ),
            (
                OpError::Capture(CaptureError::NoSource("none".into())),
                422,
                "no_source",
            ),
            (OpError::DiskFull("full".into()), 507, "disk_full"),
            (
                OpError::Unprocessable {
                    code: "no_frames",
                    message: "none".into(),
                    field: None,
                },
                422,
                "no_frames",
            ),
            (
                OpError::Unavailable {
                    code: "ffmpeg_missing",
                    message: "no ffmpeg".into(),
                },
                503,
                "ffmpeg_missing",
            ),
            (
                OpError::Internal(anyhow::anyhow!("secret detail")),
                500,
                "internal",
            ),
        ];
        for (op, status, code) in cases {
            let e = ApiError::from(op);
            assert_eq!((e.status().as_u16(), e.code()), (status, code), "{e}");
        }
    }
}
