//! A schedule's calendar as the API will carry it (`timezone`, `align`, `at`, `weekdays`,
//! `active_from`/`active_to`, `daylight`), checked and turned into a [`Plan`]. Owns the rules of
//! what may be combined and the sentences that say what is wrong, each naming its field; it
//! does not store anything or know about HTTP (a [`FieldError`] becomes a 422 where the API
//! layer maps it). Pure; fails only with a [`FieldError`].

use chrono::{Duration, NaiveTime, Timelike};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::plan::{Daily, Plan, Timing, Weekdays, Window};
use crate::models::truncate;

/// `daylight`: the window from sunrise to sunset at a place.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"lat": 78.22, "lon": 15.65, "offset_minutes": 30}))]
pub struct Daylight {
    /// Latitude in degrees, -90..=90 (north positive).
    pub lat: f64,
    /// Longitude in degrees, -180..=180 (east positive).
    pub lon: f64,
    /// Minutes the window opens before sunrise and closes after sunset (negative: after
    /// sunrise, before sunset), -240..=240; default 0.
    #[serde(default)]
    pub offset_minutes: i64,
}

/// The calendar fields of a schedule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Calendar {
    pub timezone: Option<String>,
    pub align: Option<bool>,
    pub at: Option<Vec<String>>,
    pub weekdays: Option<Vec<String>>,
    pub active_from: Option<String>,
    pub active_to: Option<String>,
    pub daylight: Option<Daylight>,
}

/// What is wrong with one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

fn bad(field: &'static str, message: String) -> FieldError {
    FieldError { field, message }
}

/// At most this many fixed times a day (one every quarter hour is 96).
pub const MAX_AT: usize = 96;
pub const MAX_OFFSET_MINUTES: i64 = 240;

/// A local time of day, `HH:MM` or `HH:MM:SS`, 24-hour.
pub fn parse_time(field: &'static str, raw: &str) -> Result<NaiveTime, FieldError> {
    NaiveTime::parse_from_str(raw, "%H:%M")
        .or_else(|_| NaiveTime::parse_from_str(raw, "%H:%M:%S"))
        .ok()
        // chrono reads `:60` as a leap second, which no slot can be at (`12:00:60Z` is no
        // timestamp a client reads): refused like `12:60`.
        .filter(|t| t.nanosecond() < 1_000_000_000)
        .ok_or(())
        .map_err(|_| {
            bad(
                field,
                format!(
                    "{field} {:?} is not a time of day (HH:MM, 24-hour, e.g. 06:30)",
                    truncate(raw, 40)
                ),
            )
        })
}

impl Calendar {
    /// The plan of a schedule with these fields and `interval_seconds` (already clamped).
    /// `interval_given`: the body named `interval_seconds`, which `at` excludes.
    pub fn plan(&self, interval_seconds: i64, interval_given: bool) -> Result<Plan, FieldError> {
        let zone = match &self.timezone {
            None => Tz::UTC,
            Some(name) => name.parse::<Tz>().map_err(|_| {
                bad(
                    "timezone",
                    format!(
                        "timezone {:?} is not an IANA time zone name (e.g. Europe/Berlin, UTC)",
                        truncate(name, 60)
                    ),
                )
            })?,
        };
        let align = self.align.unwrap_or(false);
        let timing = match &self.at {
            Some(times) => {
                if interval_given {
                    return Err(bad("at", "at and interval_seconds exclude each other: a schedule fires at fixed times of day or every interval, not both".into()));
                }
                if align {
                    return Err(bad("at", "at and align exclude each other: fixed times of day are already on the clock".into()));
                }
                if times.is_empty() || times.len() > MAX_AT {
                    return Err(bad(
                        "at",
                        format!("at needs 1 to {MAX_AT} times of day, not {}", times.len()),
                    ));
                }
                let mut parsed = times
                    .iter()
                    .map(|t| parse_time("at", t))
                    .collect::<Result<Vec<_>, _>>()?;
                parsed.sort();
                parsed.dedup();
                Timing::At(parsed)
            }
            None if align => Timing::Aligned(interval_seconds),
            None => Timing::Interval(Duration::seconds(interval_seconds)),
        };
        let weekdays = match &self.weekdays {
            None => Weekdays::ALL,
            Some(names) => {
                let w = Weekdays::parse(names)
                    .map_err(|e| bad("weekdays", format!("weekdays: {e}")))?;
                if w.is_empty() {
                    return Err(bad("weekdays", "weekdays is empty: name at least one day (mon … sun), or omit it for every day".into()));
                }
                w
            }
        };
        let daily = match (&self.active_from, &self.active_to, &self.daylight) {
            (None, None, None) => Daily::Always,
            (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => {
                return Err(bad("daylight", "daylight and active_from/active_to exclude each other: a window is either hours of the day or daylight".into()));
            }
            (Some(from), Some(to), None) => {
                let (from_t, to_t) = (
                    parse_time("active_from", from)?,
                    parse_time("active_to", to)?,
                );
                if from_t == to_t {
                    return Err(bad("active_to", format!("active_from and active_to are both {from}: a window needs two different times (omit both for the whole day)")));
                }
                Daily::Hours {
                    from: from_t,
                    to: to_t,
                }
            }
            (Some(_), None, None) => {
                return Err(bad(
                    "active_to",
                    "active_from is set but active_to is not: a window needs both".into(),
                ));
            }
            (None, Some(_), None) => {
                return Err(bad(
                    "active_from",
                    "active_to is set but active_from is not: a window needs both".into(),
                ));
            }
            (None, None, Some(d)) => {
                if !(d.lat.is_finite() && (-90.0..=90.0).contains(&d.lat)) {
                    return Err(bad(
                        "daylight",
                        format!("daylight.lat {} is not a latitude (-90 to 90)", d.lat),
                    ));
                }
                if !(d.lon.is_finite() && (-180.0..=180.0).contains(&d.lon)) {
                    return Err(bad(
                        "daylight",
                        format!("daylight.lon {} is not a longitude (-180 to 180)", d.lon),
                    ));
                }
                if d.offset_minutes.abs() > MAX_OFFSET_MINUTES {
                    return Err(bad("daylight", format!("daylight.offset_minutes {} is outside -{MAX_OFFSET_MINUTES}..={MAX_OFFSET_MINUTES}", d.offset_minutes)));
                }
                Daily::Daylight {
                    lat: d.lat,
                    lon: d.lon,
                    offset_minutes: d.offset_minutes,
                }
            }
        };
        Ok(Plan {
            zone,
            timing,
            window: Window { weekdays, daily },
        })
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_leap_second_is_no_time_of_day() {
        assert!(parse_time("at", "12:00:60").is_err());
        assert!(parse_time("at", "23:59:59").is_ok());
    }

    use super::*;

    fn cal(json: serde_json::Value) -> Calendar {
        serde_json::from_value(json).unwrap()
    }

    fn err(json: serde_json::Value, interval_given: bool) -> FieldError {
        cal(json).plan(300, interval_given).unwrap_err()
    }

    #[test]
    fn no_calendar_fields_is_the_kernel_interval_schedule() {
        assert_eq!(
            Calendar::default().plan(300, true).unwrap(),
            Plan::interval(Duration::seconds(300))
        );
    }

    #[test]
    fn a_full_calendar_becomes_its_plan() {
        let p = cal(serde_json::json!({
            "timezone": "Europe/Berlin", "at": ["18:00", "06:00", "12:00:30", "06:00"],
            "weekdays": ["mon", "fri"], "active_from": "22:00", "active_to": "06:00"
        }))
        .plan(300, false)
        .unwrap();
        assert_eq!(p.zone, chrono_tz::Europe::Berlin);
        let t = |h, m, s| NaiveTime::from_hms_opt(h, m, s).unwrap();
        assert_eq!(
            p.timing,
            Timing::At(vec![t(6, 0, 0), t(12, 0, 30), t(18, 0, 0)])
        );
        assert_eq!(p.window.weekdays.names(), ["mon", "fri"]);
        assert_eq!(
            p.window.daily,
            Daily::Hours {
                from: t(22, 0, 0),
                to: t(6, 0, 0)
            }
        );
        let p = cal(serde_json::json!({"align": true, "daylight": {"lat": 78.2, "lon": 15.6}}))
            .plan(600, true)
            .unwrap();
        assert_eq!(p.timing, Timing::Aligned(600));
        assert_eq!(
            p.window.daily,
            Daily::Daylight {
                lat: 78.2,
                lon: 15.6,
                offset_minutes: 0
            }
        );
    }

    #[test]
    fn each_bad_field_is_named_in_a_sentence() {
        use serde_json::json;
        let cases = [
            (
                json!({"timezone": "Mars/Olympus"}),
                false,
                "timezone",
                "not an IANA time zone",
            ),
            (
                json!({"at": ["06:00"]}),
                true,
                "at",
                "at and interval_seconds exclude each other",
            ),
            (
                json!({"at": ["06:00"], "align": true}),
                false,
                "at",
                "at and align",
            ),
            (json!({"at": []}), false, "at", "1 to 96"),
            (
                json!({"at": ["25:00"]}),
                false,
                "at",
                "\"25:00\" is not a time of day",
            ),
            (
                json!({"weekdays": ["mon", "caturday"]}),
                false,
                "weekdays",
                "\"caturday\" is not a weekday",
            ),
            (
                json!({"weekdays": []}),
                false,
                "weekdays",
                "weekdays is empty",
            ),
            (
                json!({"active_from": "08:00", "active_to": "08:00"}),
                false,
                "active_to",
                "both 08:00",
            ),
            (
                json!({"active_from": "08:00"}),
                false,
                "active_to",
                "needs both",
            ),
            (
                json!({"active_to": "08:00"}),
                false,
                "active_from",
                "needs both",
            ),
            (
                json!({"active_from": "8h", "active_to": "09:00"}),
                false,
                "active_from",
                "\"8h\" is not a time",
            ),
            (
                json!({"active_from": "08:00", "active_to": "18:00", "daylight": {"lat": 1.0, "lon": 1.0}}),
                false,
                "daylight",
                "exclude each other",
            ),
            (
                json!({"daylight": {"lat": 91.0, "lon": 0.0}}),
                false,
                "daylight",
                "not a latitude",
            ),
            (
                json!({"daylight": {"lat": 0.0, "lon": -180.5}}),
                false,
                "daylight",
                "not a longitude",
            ),
            (
                json!({"daylight": {"lat": 0.0, "lon": 0.0, "offset_minutes": 300}}),
                false,
                "daylight",
                "offset_minutes 300",
            ),
        ];
        for (body, interval_given, field, words) in cases {
            let e = err(body.clone(), interval_given);
            assert_eq!(e.field, field, "{body}: {e:?}");
            assert!(
                e.message.contains(words),
                "{body}: {:?} lacks {words:?}",
                e.message
            );
        }
    }
}
