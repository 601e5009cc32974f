//! Sunrise and sunset for a schedule's `daylight` window, through the `sunrise` crate (NOAA's
//! solar equation, standard refraction: the sun's upper rim at -0.833°). What this module adds is
//! the polar case the crate reports only as "no event": whether a day without sunrise is polar
//! day (the sun never sets: the window is the whole day) or polar night (it never rises: no
//! window). Pure; cannot fail for latitudes in -90..=90 and longitudes in -180..=180 (the API
//! refuses others before they get here).

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use sunrise::{Coordinates, SolarDay, SolarEvent};

/// The sun on one date at one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sun {
    /// It rises and sets (instants, to the second).
    RisesSets(DateTime<Utc>, DateTime<Utc>),
    /// It never sets.
    PolarDay,
    /// It never rises.
    PolarNight,
}

/// The sun on `date` (a local calendar date; the crate takes the solar day around that date's
/// mean solar noon at `lon`).
pub fn on(lat: f64, lon: f64, date: NaiveDate) -> Sun {
    let Some(coord) = Coordinates::new(lat, lon) else {
        // Refused by the API; treat as no daylight rather than panic.
        return Sun::PolarNight;
    };
    let day = SolarDay::new(coord, date);
    match (
        day.event_time(SolarEvent::Sunrise),
        day.event_time(SolarEvent::Sunset),
    ) {
        (Some(rise), Some(set)) => Sun::RisesSets(rise, set),
        _ => {
            // No sunrise: the sun's whole daily path lies above or below -0.833°. The middle of
            // that path is at elevation sign(lat)·δ, so it is polar day when sign(lat)·δ is above
            // -0.833°. δ from the usual cosine approximation (within about a degree): the only
            // dates where that could choose wrongly are within a day of an equinox above 89°.
            let n = f64::from(date.ordinal());
            let decl = -23.44 * (std::f64::consts::TAU / 365.0 * (n + 10.0)).cos();
            if lat.signum() * decl > -0.833 {
                Sun::PolarDay
            } else {
                Sun::PolarNight
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    // Longyearbyen, Svalbard: 78.22° N, 15.65° E.
    const LYR: (f64, f64) = (78.22, 15.65);

    #[test]
    fn longyearbyen_has_polar_day_in_june_and_polar_night_in_december() {
        assert_eq!(on(LYR.0, LYR.1, date(2026, 6, 21)), Sun::PolarDay);
        assert_eq!(on(LYR.0, LYR.1, date(2026, 12, 21)), Sun::PolarNight);
        // In March the sun rises and sets.
        assert!(matches!(
            on(LYR.0, LYR.1, date(2026, 3, 15)),
            Sun::RisesSets(..)
        ));
        // The southern hemisphere the other way round (McMurdo, 77.85° S).
        assert_eq!(on(-77.85, 166.67, date(2026, 6, 21)), Sun::PolarNight);
        assert_eq!(on(-77.85, 166.67, date(2026, 12, 21)), Sun::PolarDay);
    }

    #[test]
    fn berlin_midsummer_sunrise_and_sunset_are_where_an_almanac_puts_them() {
        // Berlin 2026-06-21: sunrise 04:43 CEST (02:43Z), sunset 21:33 CEST (19:33Z), ± 2 min.
        let Sun::RisesSets(rise, set) = on(52.52, 13.405, date(2026, 6, 21)) else {
            panic!("the sun rises in Berlin");
        };
        let near = |t: DateTime<Utc>, s: &str| {
            let want: DateTime<Utc> = s.parse().unwrap();
            (t - want).num_seconds().abs() <= 120
        };
        assert!(near(rise, "2026-06-21T02:43:00Z"), "{rise}");
        assert!(near(set, "2026-06-21T19:33:00Z"), "{set}");
    }
}
