//! Typed request parameters.
//!
//! Path ids: a handler that takes [`CameraPath`] or [`SchedulePath`] holds a parsed id, never a
//! raw string. A malformed id is a 422 naming the field `id` (it is invalid, not unknown; a
//! well-formed unknown id is the operation's 404), a path that is not UTF-8 a 400. Each also
//! describes its parameter in the OpenAPI document, so the pattern is written once.
//!
//! Query values, read the same way by every list: a time bound ([`time`]: an RFC 3339 time or a
//! date, which stands for its whole day in UTC), a page size ([`limit`]), a yes/no ([`flag`]) and
//! the opaque paging cursor ([`encode_cursor`], [`decode_cursor`]). A value that does not parse
//! is a 422 naming its parameter, with a sentence saying what it takes. Their OpenAPI
//! descriptions ([`time_param`], [`limit_param`], [`cursor_param`], …) are written here once and
//! shared by the lists. Which parameters a route takes at all is checked before the handler runs
//! (`routes::query`).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::Engine;
use chrono::{DateTime, NaiveDate, Utc};
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{AnyOfBuilder, KnownFormat, SchemaFormat};
use utoipa::openapi::{ObjectBuilder, Required, Type};

use super::error::{ApiError, ApiPath};
use crate::models::{
    fmt_ts, truncate, CameraId, Position, ScheduleId, CAMERA_ID_PATTERN, SCHEDULE_ID_PATTERN,
};

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
id_path!(
    /// `{id}` of a webhook route.
    WebhookPath, crate::models::integrations::WebhookId, "webhook id"
);

// ---------------------------------------------------------------------------------------------
// Query values.

/// Which end of a range a time bound is: a date alone means the start of its day for `from`
/// and the end of it for `to`, so `from=2026-11-29&to=2026-11-29` is that whole day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    From,
    To,
}

/// A time bound: an RFC 3339 time (`2026-11-29T12:00:00Z`, any offset), or a date alone
/// (`2026-11-29`), which is 00:00:00 UTC of that day as a lower bound and 23:59:59.999999 UTC
/// as an upper bound (bounds are inclusive, so the whole day).
pub fn time(field: &'static str, value: &str, end: End) -> Result<DateTime<Utc>, ApiError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(t.with_timezone(&Utc));
    }
    // `%Y-%m-%d` alone would also take `2026-1-5` or `+2026-01-05`: only the ten-character form.
    let is_date = value.len() == 10
        && value.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    let day = is_date
        .then(|| NaiveDate::parse_from_str(value, "%Y-%m-%d").ok())
        .flatten();
    let at = day.and_then(|d| match end {
        End::From => d.and_hms_opt(0, 0, 0),
        End::To => d.and_hms_micro_opt(23, 59, 59, 999_999),
    });
    at.map(|t| t.and_utc()).ok_or_else(|| {
        ApiError::invalid(
            field,
            format!(
                "{field} {:?} is neither a date such as 2026-01-31 (the whole day, UTC) nor an \
                 RFC 3339 time such as 2026-01-31T12:00:00Z",
                truncate(value, 60)
            ),
        )
    })
}

/// An optional query parameter for the OpenAPI document.
fn query_param(
    name: &str,
    description: &str,
    schema: impl Into<utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>>,
) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(schema))
        .build()
}

/// `from` or `to` of a list, for the OpenAPI document: a date or a date-time.
pub fn time_param(end: End, what: &str) -> Parameter {
    let string = |format| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(format)))
    };
    let schema = AnyOfBuilder::new()
        .item(string(KnownFormat::Date))
        .item(string(KnownFormat::DateTime));
    match end {
        End::From => query_param(
            "from",
            &format!(
                "Only {what} at or after this time (inclusive): an RFC 3339 time such as \
                 `2026-11-29T08:00:00Z`, or a date such as `2026-11-29`, which means 00:00:00 UTC \
                 of that day."
            ),
            schema,
        ),
        End::To => query_param(
            "to",
            &format!(
                "Only {what} at or before this time (inclusive): an RFC 3339 time, or a date, \
                 which means the end of that day (23:59:59.999999 UTC), so \
                 `from=2026-11-29&to=2026-11-29` is the whole day."
            ),
            schema,
        ),
    }
}

/// `limit` of a paged list, for the OpenAPI document.
pub fn limit_param(what: &str, order: &str) -> Parameter {
    query_param(
        "limit",
        &format!(
            "At most this many {what} on this page, {order}; 1 to {MAX_LIMIT}, default \
             {DEFAULT_LIMIT}. The `link` header leads to the next page."
        ),
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            .minimum(Some(1))
            .maximum(Some(MAX_LIMIT)),
    )
}

/// `cursor` of a paged list, for the OpenAPI document.
pub fn cursor_param() -> Parameter {
    query_param(
        "cursor",
        "Where this page starts: the opaque value in the previous page's \
         `link: <…>; rel=\"next\"` header, passed back unchanged. Leave it out for the first \
         page.",
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some("^[A-Za-z0-9_-]{1,200}$")),
    )
}

/// The pattern of a frame's tag (`models::check_tag`).
pub const TAG_PATTERN: &str = "^[A-Za-z0-9_.-]{1,64}$";

/// `tag` of a frame, for the OpenAPI document.
pub fn tag_param(description: &str) -> Parameter {
    query_param(
        "tag",
        description,
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(TAG_PATTERN))
            .min_length(Some(1))
            .max_length(Some(64))
            .examples([serde_json::json!("doorbell")]),
    )
}

/// A frame's `tag` from a query, checked: 422 with the sentence otherwise.
pub fn tag(value: Option<&str>) -> Result<Option<&str>, ApiError> {
    match value {
        None => Ok(None),
        Some(t) => crate::models::check_tag(t)
            .map(|()| Some(t))
            .map_err(|m| ApiError::invalid("tag", m)),
    }
}

/// `camera` as a filter, for the OpenAPI document.
pub fn camera_filter_param(description: &str) -> Parameter {
    query_param(
        "camera",
        description,
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(CAMERA_ID_PATTERN))
            .examples([serde_json::json!("demo")]),
    )
}

/// A yes/no query parameter, for the OpenAPI document.
pub fn flag_param(name: &str, description: &str) -> Parameter {
    query_param(
        name,
        description,
        ObjectBuilder::new().schema_type(Type::Boolean),
    )
}

/// Page size when a list is asked for without `limit`.
pub const DEFAULT_LIMIT: i64 = 500;
/// Largest page a list hands out.
pub const MAX_LIMIT: i64 = 5000;

/// `limit`: a whole number from 1 to [`MAX_LIMIT`]; [`DEFAULT_LIMIT`] when absent.
pub fn limit(value: Option<&str>) -> Result<i64, ApiError> {
    match value {
        None => Ok(DEFAULT_LIMIT),
        Some(s) => match s.parse::<i64>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            _ => Err(ApiError::invalid(
                "limit",
                format!(
                    "limit {:?} must be a whole number from 1 to {MAX_LIMIT}",
                    truncate(s, 20)
                ),
            )),
        },
    }
}

/// A yes/no query value: `true` or `1`, `false` or `0`. Every yes/no query parameter of the API
/// (`enabled`, `open`, `store`) is read here, so they all take the same four spellings (the
/// `1`/`0` pair is what form-minded clients and shell scripts send; docs/api.md), and the
/// refusal names all four.
pub fn flag(field: &'static str, value: &str) -> Result<bool, ApiError> {
    match value {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        other => Err(ApiError::invalid(
            field,
            format!(
                "{field} {:?} must be true or false (or 1 or 0)",
                truncate(other, 20)
            ),
        )),
    }
}

/// Version tag of the cursor's contents, so a later format can tell old cursors apart.
const CURSOR_V1: &str = "1";

/// A position as the opaque `cursor` a list hands out in its `Link: rel="next"`: base64url of
/// the version, the sort time and the id. Clients pass it back unchanged; nothing promises its
/// contents.
pub fn encode_cursor(p: &Position) -> String {
    let raw = format!("{CURSOR_V1}|{}|{}", fmt_ts(p.at), p.id);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

/// The position a `cursor` names; a 422 naming `cursor` for anything this server did not make.
pub fn decode_cursor(value: &str) -> Result<Position, ApiError> {
    let refuse = || {
        ApiError::invalid(
            "cursor",
            format!(
                "cursor {:?} is not one this server handed out: pass back the cursor of the \
                 previous page's Link header (rel=\"next\") unchanged",
                truncate(value, 60)
            ),
        )
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(value)
        .map_err(|_| refuse())?;
    let text = String::from_utf8(bytes).map_err(|_| refuse())?;
    let mut parts = text.splitn(3, '|');
    let (Some(CURSOR_V1), Some(at), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(refuse());
    };
    let at = DateTime::parse_from_rfc3339(at).map_err(|_| refuse())?;
    let id_ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !id_ok {
        return Err(refuse());
    }
    Ok(Position {
        at: at.with_timezone(&Utc),
        id: id.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_date_is_its_whole_day_in_utc() {
        let from = time("from", "2026-11-29", End::From).unwrap();
        let to = time("to", "2026-11-29", End::To).unwrap();
        assert_eq!(fmt_ts(from), "2026-11-29T00:00:00.000Z");
        assert_eq!(to.to_rfc3339(), "2026-11-29T23:59:59.999999+00:00");
        let t = time("from", "2026-11-29T10:00:00+02:00", End::From).unwrap();
        assert_eq!(fmt_ts(t), "2026-11-29T08:00:00.000Z");
        for bad in [
            "2026-1-29",
            "2026-02-30",
            "+2026-11-29",
            "29.11.2026",
            "",
            "2026-11-29T",
        ] {
            let e = time("from", bad, End::From).unwrap_err();
            assert_eq!(e.status().as_u16(), 422, "{bad}");
            assert!(
                e.to_string().contains("2026-01-31 (the whole day, UTC)"),
                "{e}"
            );
        }
    }

    #[test]
    fn a_cursor_round_trips_and_anything_else_is_refused() {
        let p = Position {
            at: time("from", "2026-11-29T12:00:00.123Z", End::From).unwrap(),
            id: "snp_0123456789abcdef0123456789abcdef".into(),
        };
        let c = encode_cursor(&p);
        assert!(c
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(decode_cursor(&c).unwrap(), p);
        let forged = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        for bad in [
            "".to_string(),
            "not base64!".into(),
            forged("2|2026-11-29T12:00:00.123Z|snp_1"),
            forged("1|yesterday|snp_1"),
            forged("1|2026-11-29T12:00:00.123Z|"),
            forged("1|2026-11-29T12:00:00.123Z|a b"),
        ] {
            let e = decode_cursor(&bad).unwrap_err();
            assert_eq!(e.status().as_u16(), 422, "{bad}");
        }
    }
}
