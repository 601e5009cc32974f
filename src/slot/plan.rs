//! A schedule's calendar (docs/schedules.md): *when* its slots are (a plain interval, an interval
//! aligned to local wall-clock time, or fixed local times of day) and *while* it is active (a
//! set of weekdays, a daily window from–to that may cross midnight, or daylight). Pure: every
//! answer is a function of the plan and the instants passed in, so the scheduler, the preview
//! endpoint and the tests all share one rule. It owns no state and never fails; a plan whose
//! window never opens (within [`HORIZON_DAYS`]) has no next slot (`None`).
//!
//! The rules, in one place:
//! - **Aligned** slots are local wall-clock times that are multiples of the interval since
//!   local midnight, restarting each day (`every 7 min` gives 00:00, 00:07, … 23:55, then 00:00,
//!   as cron's `*/7` does). Fixed times (`at`) are local times of day.
//! - **Repeated hour** (clocks go back): each local time is taken once, at its first
//!   occurrence; the second pass of that hour has no aligned or fixed slots.
//! - **Skipped hour** (clocks go forward): a slot whose local time does not exist fires at the
//!   first instant after the gap; several such slots are one slot there.
//! - **Windows** belong to the local date they open on: a window 22:00–06:00 on `fri` runs
//!   Friday 22:00 to Saturday 06:00. A window is `[open, close)`. Outside every window a
//!   schedule is idle (its slots there are not missed); its next slot is the first one inside
//!   the next window. A plain interval restarts its phase at each window's opening (the opening
//!   is a slot).
//! - **Daylight** is sunrise − `offset_minutes` to sunset + `offset_minutes` of each local
//!   date; polar day is the whole local day, polar night no window.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Utc, Weekday};
use chrono_tz::Tz;

use super::local::{local_of, resolve};
use super::sun::{self, Sun};

/// How far ahead a window is looked for before a plan is declared never due: longer than the
/// polar night at any latitude.
pub const HORIZON_DAYS: i64 = 400;

/// A set of weekdays (bit 0 = Monday).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Weekdays(u8);

impl Weekdays {
    pub const ALL: Weekdays = Weekdays(0x7f);

    pub fn contains(self, d: Weekday) -> bool {
        self.0 & (1 << d.num_days_from_monday()) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// From names (`mon`, `tue`, … or `monday`, …; any case). The error names the bad entry.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Weekdays, String> {
        let mut bits = 0u8;
        for n in names {
            let d: Weekday = n.as_ref().parse().map_err(|_| {
                format!(
                    "{:?} is not a weekday (mon, tue, wed, thu, fri, sat, sun)",
                    crate::models::truncate(n.as_ref(), 40)
                )
            })?;
            bits |= 1 << d.num_days_from_monday();
        }
        Ok(Weekdays(bits))
    }

    /// Names in week order, as the API returns them.
    pub fn names(self) -> Vec<&'static str> {
        const NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
        (0..7)
            .filter(|i| self.0 & (1 << i) != 0)
            .map(|i| NAMES[i])
            .collect()
    }
}

/// When the slots are.
#[derive(Debug, Clone, PartialEq)]
pub enum Timing {
    /// Every interval from the previous slot, keeping its phase (the Heldar kernel's rule).
    Interval(Duration),
    /// Every so many seconds on local wall-clock multiples since local midnight.
    Aligned(i64),
    /// Fixed local times of day, sorted, without repeats.
    At(Vec<NaiveTime>),
}

/// The daily part of a window.
#[derive(Debug, Clone, PartialEq)]
pub enum Daily {
    /// The whole day.
    Always,
    /// Local `from` to local `to` (on the next day if `to < from`); `from != to`.
    Hours { from: NaiveTime, to: NaiveTime },
    /// Sunrise − offset to sunset + offset (negative offsets narrow the window).
    Daylight {
        lat: f64,
        lon: f64,
        offset_minutes: i64,
    },
}

/// While a schedule is active.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub weekdays: Weekdays,
    pub daily: Daily,
}

impl Window {
    pub const ALWAYS: Window = Window {
        weekdays: Weekdays::ALL,
        daily: Daily::Always,
    };

    fn is_always(&self) -> bool {
        self.weekdays == Weekdays::ALL && self.daily == Daily::Always
    }
}

/// A schedule's calendar.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub zone: Tz,
    pub timing: Timing,
    pub window: Window,
}

impl Plan {
    /// The kernel's schedule: every `interval`, always active (zone irrelevant).
    pub fn interval(interval: Duration) -> Plan {
        Plan {
            zone: Tz::UTC,
            timing: Timing::Interval(interval),
            window: Window::ALWAYS,
        }
    }

    /// The first slot strictly after `after`. `anchor` is a slot of the schedule (the one just
    /// fired): a plain interval keeps its phase from it; other timings ignore it.
    pub fn next_slot(&self, anchor: DateTime<Utc>, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let (mut anchor, mut from) = (anchor, after);
        if self.window.is_always() {
            return Some(self.timing_next(anchor, from));
        }
        // Each turn either returns or moves to a later window; windows open at most about once
        // a day, so this is bounded by the horizon.
        for _ in 0..HORIZON_DAYS * 2 {
            let cand = self.timing_next(anchor, from);
            if self.active_at(cand) {
                return Some(cand);
            }
            let open = self.next_open(cand)?;
            if let Timing::Interval(_) = self.timing {
                // A plain interval starts afresh at the opening.
                return Some(open);
            }
            anchor = open;
            from = open - Duration::milliseconds(1);
        }
        None
    }

    /// Whether `t` lies inside one of the plan's windows.
    pub fn active_at(&self, t: DateTime<Utc>) -> bool {
        if self.window.is_always() {
            return true;
        }
        let d = local_of(self.zone, t).date();
        // A window opening on the day before may still run (over midnight, or daylight
        // widened by an offset); one opening on the next day may start before local midnight.
        [d.pred_opt(), Some(d), d.succ_opt()]
            .into_iter()
            .flatten()
            .filter_map(|d| self.span(d))
            .any(|(o, c)| o <= t && t < c)
    }

    /// The slots strictly after `after`, at most `n` (the preview).
    pub fn upcoming(
        &self,
        anchor: DateTime<Utc>,
        after: DateTime<Utc>,
        n: usize,
    ) -> Vec<DateTime<Utc>> {
        let mut out = Vec::with_capacity(n);
        let (mut anchor, mut after) = (anchor, after);
        while out.len() < n {
            let Some(next) = self.next_slot(anchor, after) else {
                break;
            };
            out.push(next);
            anchor = next;
            after = next;
        }
        out
    }

    /// After firing `slot` at `now`: the next slot (the first after `now`) and how many slots
    /// lay in between, in `(slot, now]` — missed, not idle: slots outside a window are not
    /// slots. Counted one by one up to `cap`, beyond which the count stops at `cap` (a long
    /// downtime of a 5 s schedule is reported as "at least cap", not by walking a day of slots).
    pub fn advance(
        &self,
        slot: DateTime<Utc>,
        now: DateTime<Utc>,
        cap: u64,
    ) -> (Option<DateTime<Utc>>, u64) {
        if let (Timing::Interval(i), true) = (&self.timing, self.window.is_always()) {
            let (next, skipped) = super::advance(slot, *i, now);
            return (Some(next), skipped);
        }
        // Strictly after the slot as well as `now`: a slot is claimed ahead of its time
        // (`now < slot`), and the first aligned or fixed time after `now` is then the slot
        // itself, which was claimed again and counted missed at every slot.
        let next = self.next_slot(slot, now.max(slot));
        let mut skipped = 0;
        let mut at = slot;
        while skipped < cap {
            match self.next_slot(at, at) {
                Some(s) if s <= now => {
                    skipped += 1;
                    at = s;
                }
                _ => break,
            }
        }
        (next, skipped)
    }

    /// The timing's first slot after `from`, ignoring windows.
    fn timing_next(&self, anchor: DateTime<Utc>, from: DateTime<Utc>) -> DateTime<Utc> {
        match &self.timing {
            Timing::Interval(i) => {
                let step = i.num_milliseconds().max(1);
                let behind = (from - anchor).num_milliseconds();
                let k = behind.div_euclid(step) + 1;
                anchor + Duration::milliseconds(step * k)
            }
            Timing::Aligned(every) => {
                let every = (*every).max(1);
                let per_day = (86_400 + every - 1) / every;
                self.daily_next(from, per_day as usize, |k| {
                    NaiveTime::from_num_seconds_from_midnight_opt((k as i64 * every) as u32, 0)
                        .unwrap_or(NaiveTime::MIN)
                })
            }
            Timing::At(times) => {
                if times.is_empty() {
                    // Refused by the API; a day from now rather than a busy loop.
                    return from + Duration::days(1);
                }
                self.daily_next(from, times.len(), |k| times[k])
            }
        }
    }

    /// The first of the local times `time(0) < time(1) < … < time(n - 1)` of some local day that
    /// resolves after `from`. Resolution is non-decreasing in local time, so within a day the
    /// first one after `from` is found by binary search.
    fn daily_next(
        &self,
        from: DateTime<Utc>,
        n: usize,
        time: impl Fn(usize) -> NaiveTime,
    ) -> DateTime<Utc> {
        let zone = self.zone;
        let at = |d: NaiveDate, k: usize| resolve(zone, d.and_time(time(k)));
        let mut day = local_of(zone, from)
            .date()
            .pred_opt()
            .unwrap_or(NaiveDate::MIN);
        // Three days always suffice (the previous, this, the next); a zone skipping a whole
        // day (Samoa, 2011-12-30) needs one more.
        for _ in 0..5 {
            if at(day, n - 1) > from {
                let (mut lo, mut hi) = (0, n - 1);
                while lo < hi {
                    let mid = (lo + hi) / 2;
                    if at(day, mid) > from {
                        hi = mid;
                    } else {
                        lo = mid + 1;
                    }
                }
                return at(day, lo);
            }
            day = day.succ_opt().unwrap_or(day);
        }
        from + Duration::days(1)
    }

    /// The window opening on local date `d`, as `[open, close)`, if there is one.
    fn span(&self, d: NaiveDate) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        if !self.window.weekdays.contains(d.weekday()) {
            return None;
        }
        let zone = self.zone;
        let whole_day = || {
            let next = d.succ_opt()?;
            Some((
                resolve(zone, d.and_time(NaiveTime::MIN)),
                resolve(zone, next.and_time(NaiveTime::MIN)),
            ))
        };
        let (open, close) = match &self.window.daily {
            Daily::Always => whole_day()?,
            Daily::Hours { from, to } => {
                let close_day = if to > from { d } else { d.succ_opt()? };
                (
                    resolve(zone, d.and_time(*from)),
                    resolve(zone, close_day.and_time(*to)),
                )
            }
            Daily::Daylight {
                lat,
                lon,
                offset_minutes,
            } => match sun::on(*lat, *lon, d) {
                Sun::RisesSets(rise, set) => {
                    let off = Duration::minutes(*offset_minutes);
                    (rise - off, set + off)
                }
                Sun::PolarDay => whole_day()?,
                Sun::PolarNight => return None,
            },
        };
        // A window wholly inside a skipped hour, or daylight narrowed past nothing, is empty.
        (open < close).then_some((open, close))
    }

    /// The first window opening after `t`, within [`HORIZON_DAYS`].
    fn next_open(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut d = local_of(self.zone, t).date().pred_opt()?;
        for _ in 0..HORIZON_DAYS {
            if let Some((open, _)) = self.span(d) {
                if open > t {
                    return Some(open);
                }
            }
            d = d.succ_opt()?;
        }
        None
    }
}
