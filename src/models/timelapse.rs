//! Timelapse rows and API bodies: jobs, finished videos and the rules that make them daily or
//! weekly (docs/timelapse.md). Like the rest of `models`, ids here are parsed, not checked
//! later: a [`JobId`] that exists is `job_` and 32 hex digits, and so on.
//!
//! Request bodies keep loose JSON types (text, integers) so that `ops::timelapses` can say which
//! field is wrong in a sentence of its own.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{truncate, CameraId};

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $pattern:literal, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, ToSchema)]
        #[serde(transparent)]
        #[schema(value_type = String, pattern = $pattern)]
        pub struct $name(String);

        impl $name {
            /// The id's shape, as a regular expression (for documents).
            pub const PATTERN: &'static str = $pattern;

            pub fn parse(raw: &str) -> Result<$name, String> {
                let ok = raw.strip_prefix(concat!($prefix, "_")).is_some_and(|h| {
                    h.len() == 32 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
                });
                if ok {
                    Ok($name(raw.to_string()))
                } else {
                    Err(format!(
                        concat!($what, " id {:?} is not of the form ", $prefix,
                            "_ followed by 32 hex digits"),
                        truncate(raw, 80)
                    ))
                }
            }

            /// A new, random id.
            pub fn generate() -> $name {
                $name(super::new_id($prefix))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

prefixed_id!(
    /// A job id: `job_` and 32 lower-case hex digits.
    JobId, "job", "^job_[0-9a-f]{32}$", "job"
);
prefixed_id!(
    /// A timelapse (finished video) id: `tl_` and 32 lower-case hex digits.
    TimelapseId, "tl", "^tl_[0-9a-f]{32}$", "timelapse"
);
prefixed_id!(
    /// A timelapse rule id: `tlr_` and 32 lower-case hex digits.
    RuleId, "tlr", "^tlr_[0-9a-f]{32}$", "timelapse rule"
);

/// Where a job is in its life. `done`, `failed` and `cancelled` are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Running,
    Done,
    Failed,
    Cancelled,
}

impl JobState {
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobState::Done | JobState::Failed | JobState::Cancelled
        )
    }
}

/// The container and codec of a video: `mp4` is H.264 (yuv420p, faststart), `webm` is VP9.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum VideoFormat {
    #[default]
    Mp4,
    Webm,
}

impl VideoFormat {
    pub fn extension(self) -> &'static str {
        self.as_str()
    }

    pub fn content_type(self) -> &'static str {
        match self {
            VideoFormat::Mp4 => "video/mp4",
            VideoFormat::Webm => "video/webm",
        }
    }
}

/// How often a rule makes a video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RulePeriod {
    /// Every day, of the previous local day (midnight to midnight: 23, 24 or 25 hours).
    Daily,
    /// Every week on `weekday`, of the previous seven local days.
    Weekly,
}

/// A day of the week, as rules spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Weekday {
    pub fn to_chrono(self) -> chrono::Weekday {
        match self {
            Weekday::Mon => chrono::Weekday::Mon,
            Weekday::Tue => chrono::Weekday::Tue,
            Weekday::Wed => chrono::Weekday::Wed,
            Weekday::Thu => chrono::Weekday::Thu,
            Weekday::Fri => chrono::Weekday::Fri,
            Weekday::Sat => chrono::Weekday::Sat,
            Weekday::Sun => chrono::Weekday::Sun,
        }
    }
}

macro_rules! text_enum {
    ($t:ty { $($v:ident => $s:literal),+ $(,)? }) => {
        impl $t {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s),+ }
            }
            /// Parse the text form (stored, or sent by a client).
            pub fn from_db(s: &str) -> Option<Self> {
                match s { $($s => Some(Self::$v),)+ _ => None }
            }
        }
    };
}
text_enum!(JobState { Queued => "queued", Running => "running", Done => "done",
    Failed => "failed", Cancelled => "cancelled" });
text_enum!(VideoFormat { Mp4 => "mp4", Webm => "webm" });
text_enum!(RulePeriod { Daily => "daily", Weekly => "weekly" });
text_enum!(Weekday { Mon => "mon", Tue => "tue", Wed => "wed", Thu => "thu", Fri => "fri",
    Sat => "sat", Sun => "sun" });

/// What an encoding is asked to make: from the API's body, or from a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelapseSpec {
    /// Frames taken at or after `from`…
    pub from: DateTime<Utc>,
    /// …and before `to`.
    pub to: DateTime<Utc>,
    pub fps: u32,
    /// Output width (even); `None` keeps the first frame's.
    pub width: Option<u32>,
    /// Use every n-th frame of the range (1: all).
    pub every_nth: u32,
    pub format: VideoFormat,
}

/// A `jobs` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub id: JobId,
    pub camera_id: CameraId,
    pub state: JobState,
    pub spec: TimelapseSpec,
    pub rule_id: Option<String>,
    pub frames_done: i64,
    pub frames_total: i64,
    pub output_bytes: i64,
    pub error: Option<String>,
    pub code: Option<String>,
    pub timelapse_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// A job as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct JobView {
    #[schema(value_type = String, pattern = "^job_[0-9a-f]{32}$")]
    pub id: String,
    /// Always `timelapse` so far.
    #[schema(example = "timelapse")]
    pub kind: String,
    #[schema(value_type = String)]
    pub camera_id: String,
    pub state: JobState,
    /// Frames handed to the encoder so far.
    pub frames_done: i64,
    /// Frames the video will have (after `every_nth`).
    pub frames_total: i64,
    /// Seconds left, estimated from the pace so far; `null` until there is a pace, and once the
    /// job is over.
    pub eta_seconds: Option<f64>,
    /// Bytes of the output: of the partial file while running, of the video once done.
    pub output_bytes: i64,
    /// Why it failed (or who cancelled it), a sentence.
    pub error: Option<String>,
    /// A stable machine code for `error`: `no_frames`, `ffmpeg_missing`, `ffmpeg_failed`,
    /// `disk_full`, `interrupted`, `cancelled`.
    pub code: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The finished video, once the job is done (and while the video is kept).
    pub timelapse: Option<TimelapseView>,
}

/// A `timelapses` row: one finished video.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timelapse {
    pub id: TimelapseId,
    pub camera_id: CameraId,
    pub rule_id: Option<String>,
    /// Relative to the timelapses folder: `{camera_id}/{id}.{format}`.
    pub file: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub fps: u32,
    pub width: u32,
    pub height: u32,
    pub frames: i64,
    pub format: VideoFormat,
    pub size_bytes: i64,
    pub created_at: DateTime<Utc>,
}

impl Timelapse {
    /// Where the video is served.
    pub fn url(&self) -> String {
        format!("/media/timelapses/{}", self.file)
    }
}

/// A finished video as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TimelapseView {
    #[schema(value_type = String, pattern = "^tl_[0-9a-f]{32}$")]
    pub id: String,
    #[schema(value_type = String)]
    pub camera_id: String,
    /// Frames taken at or after this time…
    pub from: DateTime<Utc>,
    /// …and before this one.
    pub to: DateTime<Utc>,
    pub fps: u32,
    pub width: u32,
    pub height: u32,
    /// Frames in the video.
    pub frames: i64,
    /// `frames / fps`.
    pub duration_seconds: f64,
    pub format: VideoFormat,
    pub size_bytes: i64,
    /// Where the video is served: `/media/timelapses/{camera_id}/{file}` (Range, ETag).
    pub url: String,
    pub created_at: DateTime<Utc>,
    /// The rule that made it; `null` for an export asked for through the API.
    pub rule_id: Option<String>,
}

impl From<&Timelapse> for TimelapseView {
    fn from(t: &Timelapse) -> Self {
        TimelapseView {
            id: t.id.to_string(),
            camera_id: t.camera_id.to_string(),
            from: t.from,
            to: t.to,
            fps: t.fps,
            width: t.width,
            height: t.height,
            frames: t.frames,
            duration_seconds: if t.fps > 0 {
                t.frames as f64 / f64::from(t.fps)
            } else {
                0.0
            },
            format: t.format,
            size_bytes: t.size_bytes,
            url: t.url(),
            created_at: t.created_at,
            rule_id: t.rule_id.clone(),
        }
    }
}

/// `POST /api/v1/cameras/{id}/timelapses`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"from": "2026-01-31T00:00:00Z", "to": "2026-02-01T00:00:00Z", "fps": 24, "width": 1280}))]
pub struct TimelapseCreate {
    /// RFC 3339; frames taken at or after it.
    #[schema(value_type = DateTime<Utc>)]
    pub from: String,
    /// RFC 3339; frames taken before it. Later than `from`.
    #[schema(value_type = DateTime<Utc>)]
    pub to: String,
    /// Frames per second of the video, 1 to 60; default 24.
    #[schema(minimum = 1, maximum = 60)]
    pub fps: Option<i64>,
    /// Output width in pixels, even, 16 to 3840; the height follows the first frame's aspect
    /// (rounded to even). Default: the first frame's width.
    #[schema(minimum = 16, maximum = 3840, multiple_of = 2)]
    pub width: Option<i64>,
    /// Use every n-th frame of the range; default 1 (all).
    #[schema(minimum = 1, maximum = 1000000)]
    pub every_nth: Option<i64>,
    /// `mp4` (H.264, the default) or `webm` (VP9).
    #[schema(value_type = Option<VideoFormat>)]
    pub format: Option<String>,
}

/// A `timelapse_rules` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelapseRule {
    pub id: RuleId,
    pub camera_id: CameraId,
    pub period: RulePeriod,
    /// Local time of day of the run, `HH:MM`.
    pub at: chrono::NaiveTime,
    /// An IANA zone name (`Europe/Berlin`), checked by chrono-tz.
    pub time_zone: chrono_tz::Tz,
    /// Weekly rules only.
    pub weekday: Option<Weekday>,
    pub fps: u32,
    pub width: Option<u32>,
    pub format: VideoFormat,
    pub enabled: bool,
    /// The end of the last period claimed (made, or skipped as missed).
    pub covered_until: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A timelapse rule as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TimelapseRuleView {
    #[schema(value_type = String, pattern = "^tlr_[0-9a-f]{32}$")]
    pub id: String,
    #[schema(value_type = String)]
    pub camera_id: String,
    pub period: RulePeriod,
    /// Local time of the run, `HH:MM`.
    #[schema(example = "00:30")]
    pub at: String,
    #[schema(example = "Europe/Berlin")]
    pub time_zone: String,
    pub weekday: Option<Weekday>,
    pub fps: u32,
    pub width: Option<u32>,
    pub format: VideoFormat,
    pub enabled: bool,
    /// Frames before this time have been made into videos (or were skipped as too old).
    pub covered_until: DateTime<Utc>,
    /// When the next video is made; `null` while the rule is disabled.
    pub next_run_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// `POST /api/v1/cameras/{id}/timelapse-rules`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"period": "daily", "at": "00:30", "time_zone": "Europe/Berlin", "fps": 24}))]
pub struct RuleCreate {
    #[schema(value_type = RulePeriod)]
    pub period: String,
    /// Local time of day of the run, `HH:MM` (24-hour).
    #[schema(example = "00:30", pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub at: String,
    /// An IANA time zone name such as `Europe/Berlin` or `UTC`.
    #[schema(example = "Europe/Berlin", min_length = 1, max_length = 64)]
    pub time_zone: String,
    /// Weekly rules only: the day of the run (default `mon`); the video covers the seven local
    /// days before it.
    #[schema(value_type = Option<Weekday>)]
    pub weekday: Option<String>,
    #[schema(minimum = 1, maximum = 60)]
    pub fps: Option<i64>,
    #[schema(minimum = 16, maximum = 3840, multiple_of = 2)]
    pub width: Option<i64>,
    #[schema(value_type = Option<VideoFormat>)]
    pub format: Option<String>,
    pub enabled: Option<bool>,
}

/// `PATCH /api/v1/timelapse-rules/{id}`: only the fields present change; `null` clears `width`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RulePatch {
    #[schema(value_type = Option<RulePeriod>)]
    pub period: Option<String>,
    #[schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub at: Option<String>,
    #[schema(min_length = 1, max_length = 64)]
    pub time_zone: Option<String>,
    #[schema(value_type = Option<Weekday>)]
    pub weekday: Option<String>,
    #[schema(minimum = 1, maximum = 60)]
    pub fps: Option<i64>,
    #[serde(default, deserialize_with = "double_option_i64")]
    #[schema(value_type = Option<i64>, minimum = 16, maximum = 3840, multiple_of = 2)]
    pub width: Option<Option<i64>>,
    #[schema(value_type = Option<VideoFormat>)]
    pub format: Option<String>,
    pub enabled: Option<bool>,
}

/// Tells "absent" (outer `None`) from "null" (`Some(None)`).
fn double_option_i64<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<i64>>, D::Error> {
    Option::<i64>::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_their_prefix_and_32_hex_digits() {
        let j = JobId::generate();
        assert!(JobId::parse(j.as_str()).is_ok());
        assert!(TimelapseId::parse(TimelapseId::generate().as_str()).is_ok());
        assert!(RuleId::parse(RuleId::generate().as_str()).is_ok());
        for bad in [
            "job_",
            "job_xyz",
            "tl_0123",
            "../job",
            "JOB_0123456789abcdef0123456789abcdef",
        ] {
            assert!(JobId::parse(bad).is_err(), "{bad}");
        }
        // One kind's id is not another's.
        assert!(JobId::parse(TimelapseId::generate().as_str()).is_err());
    }
}
