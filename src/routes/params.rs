//! Typed path parameters: a handler that takes [`CameraPath`] or [`SchedulePath`] holds a parsed
//! id, never a raw string. A malformed id is a 422 naming the field `id` (it is invalid, not
//! unknown; a well-formed unknown id is the operation's 404), a path that is not UTF-8 a 400.
//! Each also describes its parameter in the OpenAPI document, so the pattern is written once.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::{ObjectBuilder, Required, Type};

use super::error::{ApiError, ApiPath};
use crate::models::{CameraId, ScheduleId, CAMERA_ID_PATTERN, SCHEDULE_ID_PATTERN};

/// `{id}` of a camera route.
#[derive(Debug, Clone)]
pub struct CameraPath(pub CameraId);

/// `{id}` of a schedule route.
#[derive(Debug, Clone)]
pub struct SchedulePath(pub ScheduleId);

impl<S: Send + Sync> FromRequestParts<S> for CameraPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let ApiPath(raw) = ApiPath::<String>::from_request_parts(parts, state).await?;
        CameraId::parse(&raw)
            .map(CameraPath)
            .map_err(|m| ApiError::invalid("id", m))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for SchedulePath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let ApiPath(raw) = ApiPath::<String>::from_request_parts(parts, state).await?;
        ScheduleId::parse(&raw)
            .map(SchedulePath)
            .map_err(|m| ApiError::invalid("id", m))
    }
}

fn id_param(description: &str, pattern: &str, example: Option<&str>) -> Parameter {
    let mut schema = ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern));
    if let Some(e) = example {
        schema = schema.examples([serde_json::json!(e)]);
    }
    ParameterBuilder::new()
        .name("id")
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .description(Some(description))
        .schema(Some(schema))
        .build()
}

impl utoipa::IntoParams for CameraPath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![id_param(
            "camera id (slug)",
            CAMERA_ID_PATTERN,
            Some("demo"),
        )]
    }
}

impl utoipa::IntoParams for SchedulePath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![id_param("schedule id", SCHEDULE_ID_PATTERN, None)]
    }
}

/// `{id}` of the timelapse routes: a job, a video or a rule. Parsed like the others: malformed
/// is a 422 naming `id`, well-formed and unknown is the operation's 404.
macro_rules! id_path {
    ($(#[$doc:meta])* $name:ident, $id:ty, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name(pub $id);

        impl<S: Send + Sync> FromRequestParts<S> for $name {
            type Rejection = ApiError;

            async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
                let ApiPath(raw) = ApiPath::<String>::from_request_parts(parts, state).await?;
                <$id>::parse(&raw)
                    .map($name)
                    .map_err(|m| ApiError::invalid("id", m))
            }
        }

        impl utoipa::IntoParams for $name {
            fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
                vec![id_param($what, <$id>::PATTERN, None)]
            }
        }
    };
}

id_path!(
    /// `{id}` of a job route.
    JobPath, crate::models::timelapse::JobId, "job id"
);
id_path!(
    /// `{id}` of a timelapse (video) route.
    TimelapsePath, crate::models::timelapse::TimelapseId, "timelapse id"
);
id_path!(
    /// `{id}` of a timelapse rule route.
    RulePath, crate::models::timelapse::RuleId, "timelapse rule id"
);
