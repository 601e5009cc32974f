//! Timelapse rules: "every day at 00:30 in Europe/Berlin, make the previous local day's
//! video" (or weekly, of the previous seven local days), and the runs that make them.
//!
//! Periods are local: a daily period runs from local midnight to the next local midnight, so it
//! is 23 or 25 hours long across a DST change; a weekly one covers seven local days ending at
//! the `weekday`'s midnight. A rule's run is at `at` local time on the day its period ends. A
//! local time that does not exist (inside a spring-forward gap) is read with the offset from
//! before the gap (02:30 on a night that skips from 02:00 to 03:00 is 03:30); one that exists
//! twice (a fall-back night) is the first of the two. Zones are chrono-tz's IANA database.
//!
//! Exactly once: `covered_until` is the end of the last period a rule claimed; a run claims its
//! period with a conditional update from the value it read (`db::timelapse_rules::claim`), in the
//! same transaction as the job it queues — across restarts and processes, a period is made once,
//! and a claimed period always has its job. After downtime, missed runs are made once each on
//! start, the last [`MAX_CATCH_UP`] of each rule at most (older ones are skipped and logged). A
//! period with no stored frames is claimed and makes no video (logged). A new rule, a re-enabled
//! one, and one whose period, time, zone or weekday changed start from their next run: nothing
//! before it is made.

use chrono::{
    DateTime, Datelike, Duration, NaiveDate, NaiveTime, Offset, SubsecRound, TimeZone, Utc,
};
use chrono_tz::Tz;

use crate::db;
use crate::error::{OpError, OpResult};
use crate::models::timelapse::{
    RuleCreate, RuleId, RulePatch, RulePeriod, TimelapseRule, TimelapseRuleView, TimelapseSpec,
    Weekday,
};
use crate::models::{fmt_ts, truncate, CameraId};

use super::timelapses::{check_format, check_fps, check_width};
use super::{cameras, Ops};

/// Missed runs made after downtime, per rule, at most (the newest ones).
pub const MAX_CATCH_UP: usize = 7;

fn not_found(id: &RuleId) -> OpError {
    OpError::NotFound(format!("no timelapse rule with id {:?}", id.as_str()))
}

fn check_period(s: &str) -> OpResult<RulePeriod> {
    RulePeriod::from_db(s).ok_or_else(|| {
        OpError::invalid(
            "period",
            format!("period {:?} is not one of daily or weekly", truncate(s, 40)),
        )
    })
}

fn check_at(s: &str) -> OpResult<NaiveTime> {
    let t = s;
    (t.len() == 5)
        .then(|| NaiveTime::parse_from_str(t, "%H:%M").ok())
        .flatten()
        .ok_or_else(|| {
            OpError::invalid(
                "at",
                format!(
                    "at {:?} is not a local time of day as HH:MM (24-hour), such as 00:30",
                    truncate(s, 40)
                ),
            )
        })
}

fn check_zone(s: &str) -> OpResult<Tz> {
    s.parse::<Tz>().map_err(|_| {
        OpError::invalid(
            "time_zone",
            format!(
                "time_zone {:?} is not an IANA time zone name such as Europe/Berlin, \
                 America/New_York or UTC",
                truncate(s, 64)
            ),
        )
    })
}

fn check_weekday(period: RulePeriod, s: Option<&str>) -> OpResult<Option<Weekday>> {
    match (period, s) {
        (RulePeriod::Daily, None) => Ok(None),
        (RulePeriod::Daily, Some(_)) => Err(OpError::invalid(
            "weekday",
            "weekday applies to weekly rules only; leave it out of a daily rule",
        )),
        (RulePeriod::Weekly, None) => Ok(Some(Weekday::Mon)),
        (RulePeriod::Weekly, Some(w)) => Weekday::from_db(w).map(Some).ok_or_else(|| {
            OpError::invalid(
                "weekday",
                format!(
                    "weekday {:?} is not one of mon, tue, wed, thu, fri, sat, sun",
                    truncate(w, 20)
                ),
            )
        }),
    }
}

// --- local time ------------------------------------------------------------------------------

/// The instant of local `date` at `time` in `tz` (see the module docs for gaps and repeats).
pub fn local_instant(tz: Tz, date: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
    let naive = date.and_time(time);
    match tz.from_local_datetime(&naive) {
        chrono::LocalResult::Single(t) => t.with_timezone(&Utc),
        chrono::LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
        chrono::LocalResult::None => {
            // In a gap: read the wall time with the offset in force a day before.
            let before = tz
                .offset_from_utc_datetime(&(naive - Duration::hours(24)))
                .fix();
            (naive - Duration::seconds(i64::from(before.local_minus_utc()))).and_utc()
        }
    }
}

/// Days in one period.
fn days(period: RulePeriod) -> i64 {
    match period {
        RulePeriod::Daily => 1,
        RulePeriod::Weekly => 7,
    }
}

/// Is `date` a day a period of `rule` ends on (its midnight starts the day of the run)?
fn is_end_day(rule: &TimelapseRule, date: NaiveDate) -> bool {
    match rule.period {
        RulePeriod::Daily => true,
        RulePeriod::Weekly => Some(date.weekday()) == rule.weekday.map(Weekday::to_chrono),
    }
}

/// The first end day on or after `date`.
fn end_day_from(rule: &TimelapseRule, mut date: NaiveDate) -> NaiveDate {
    while !is_end_day(rule, date) {
        date = date.succ_opt().unwrap_or(date);
    }
    date
}

/// The last end day on or before `date`.
fn end_day_until(rule: &TimelapseRule, mut date: NaiveDate) -> NaiveDate {
    while !is_end_day(rule, date) {
        date = date.pred_opt().unwrap_or(date);
    }
    date
}

fn midnight(rule: &TimelapseRule, date: NaiveDate) -> DateTime<Utc> {
    local_instant(rule.time_zone, date, NaiveTime::MIN)
}

/// When the run of the period ending on `date` is.
fn run_at(rule: &TimelapseRule, date: NaiveDate) -> DateTime<Utc> {
    local_instant(rule.time_zone, date, rule.at)
}

/// The period ending on end day `date`: `[start, end)`.
pub fn period_ending(rule: &TimelapseRule, date: NaiveDate) -> Period {
    let start = date - Duration::days(days(rule.period));
    (midnight(rule, start), midnight(rule, date))
}

fn local_date(rule: &TimelapseRule, t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&rule.time_zone).date_naive()
}

/// Where a rule starts when it is new (or re-enabled, or re-timed) at `now`: the end of the last
/// period whose run has passed, so the first video made is the next run's.
pub fn initial_coverage(rule: &TimelapseRule, now: DateTime<Utc>) -> DateTime<Utc> {
    let mut d = end_day_until(rule, local_date(rule, now));
    if run_at(rule, d) > now {
        d = end_day_until(rule, d - Duration::days(1));
    }
    midnight(rule, d)
}

/// The first end day whose midnight is after `covered`.
fn next_end_day(rule: &TimelapseRule, covered: DateTime<Utc>) -> NaiveDate {
    let mut d = end_day_from(rule, local_date(rule, covered));
    while midnight(rule, d) <= covered {
        d = end_day_from(rule, d + Duration::days(1));
    }
    d
}

/// When the rule's next video is made.
pub fn next_run(rule: &TimelapseRule) -> DateTime<Utc> {
    run_at(rule, next_end_day(rule, rule.covered_until))
}

/// A period: `[start, end)`.
pub type Period = (DateTime<Utc>, DateTime<Utc>);

/// The periods due at `now` that the rule has not claimed, oldest first, and whether older ones
/// than those listed were left out (at most [`MAX_CATCH_UP`] are listed).
pub fn due_periods(rule: &TimelapseRule, now: DateTime<Utc>) -> (Vec<Period>, usize) {
    let mut d = next_end_day(rule, rule.covered_until);
    // After a long downtime, start near the end: only the last MAX_CATCH_UP are made.
    let span = days(rule.period) * (MAX_CATCH_UP as i64 + 2);
    let recent = end_day_from(rule, local_date(rule, now) - Duration::days(span));
    let mut skipped = 0usize;
    if recent > d {
        skipped += ((recent - d).num_days() / days(rule.period)) as usize;
        d = recent;
    }
    let mut due = Vec::new();
    while run_at(rule, d) <= now {
        due.push(period_ending(rule, d));
        d = end_day_from(rule, d + Duration::days(1));
    }
    if due.len() > MAX_CATCH_UP {
        skipped += due.len() - MAX_CATCH_UP;
        due.drain(..due.len() - MAX_CATCH_UP);
    }
    (due, skipped)
}

// --- the API's operations --------------------------------------------------------------------

fn view(rule: &TimelapseRule) -> TimelapseRuleView {
    TimelapseRuleView {
        id: rule.id.to_string(),
        camera_id: rule.camera_id.to_string(),
        period: rule.period,
        at: rule.at.format("%H:%M").to_string(),
        time_zone: rule.time_zone.name().to_string(),
        weekday: rule.weekday,
        fps: rule.fps,
        width: rule.width,
        format: rule.format,
        enabled: rule.enabled,
        covered_until: rule.covered_until,
        next_run_at: rule.enabled.then(|| next_run(rule)),
        created_at: rule.created_at,
        updated_at: rule.updated_at,
    }
}

pub async fn list(ops: &Ops, camera: &CameraId) -> OpResult<Vec<TimelapseRuleView>> {
    cameras::require(ops, camera).await?;
    Ok(db::timelapse_rules::list_for_camera(&ops.db, camera)
        .await?
        .iter()
        .map(view)
        .collect())
}

pub async fn create(ops: &Ops, camera: &CameraId, body: RuleCreate) -> OpResult<TimelapseRuleView> {
    cameras::require(ops, camera).await?;
    let period = check_period(&body.period)?;
    let now = ops.clock.now().trunc_subsecs(3);
    let mut rule = TimelapseRule {
        id: RuleId::generate(),
        camera_id: camera.clone(),
        period,
        at: check_at(&body.at)?,
        time_zone: check_zone(&body.time_zone)?,
        weekday: check_weekday(period, body.weekday.as_deref())?,
        fps: check_fps(body.fps)?,
        width: check_width(body.width)?,
        format: check_format(body.format.as_deref())?,
        enabled: body.enabled.unwrap_or(true),
        covered_until: now,
        created_at: now,
        updated_at: now,
    };
    rule.covered_until = initial_coverage(&rule, now);
    db::timelapse_rules::insert(&ops.db, &rule).await?;
    ops.jobs.rules_changed.notify_one();
    tracing::info!(rule = %rule.id, camera = %camera, period = period.as_str(),
        at = %rule.at.format("%H:%M"), time_zone = rule.time_zone.name(),
        next_run = %fmt_ts(next_run(&rule)), "timelapse rule created");
    Ok(view(&rule))
}

pub async fn update(ops: &Ops, id: &RuleId, patch: RulePatch) -> OpResult<TimelapseRuleView> {
    let mut rule = db::timelapse_rules::get(&ops.db, id.as_str())
        .await?
        .ok_or_else(|| not_found(id))?;
    let before = (
        rule.period,
        rule.at,
        rule.time_zone,
        rule.weekday,
        rule.enabled,
    );
    if let Some(p) = &patch.period {
        rule.period = check_period(p)?;
    }
    if let Some(a) = &patch.at {
        rule.at = check_at(a)?;
    }
    if let Some(z) = &patch.time_zone {
        rule.time_zone = check_zone(z)?;
    }
    rule.weekday = match (&patch.weekday, rule.period) {
        (Some(w), p) => check_weekday(p, Some(w))?,
        (None, RulePeriod::Daily) => None,
        (None, RulePeriod::Weekly) => rule.weekday.or(Some(Weekday::Mon)),
    };
    if let Some(f) = patch.fps {
        rule.fps = check_fps(Some(f))?;
    }
    if let Some(w) = patch.width {
        rule.width = check_width(w)?;
    }
    if let Some(f) = &patch.format {
        rule.format = check_format(Some(f))?;
    }
    if let Some(e) = patch.enabled {
        rule.enabled = e;
    }
    let now = ops.clock.now().trunc_subsecs(3);
    let retimed = (rule.period, rule.at, rule.time_zone, rule.weekday)
        != (before.0, before.1, before.2, before.3);
    if rule.enabled && (retimed || !before.4) {
        // From the next run on: nothing before it is made.
        rule.covered_until = initial_coverage(&rule, now);
    }
    rule.updated_at = now;
    if !db::timelapse_rules::update(&ops.db, &rule).await? {
        return Err(not_found(id));
    }
    ops.jobs.rules_changed.notify_one();
    tracing::info!(rule = %rule.id, camera = %rule.camera_id, enabled = rule.enabled, "timelapse rule updated");
    Ok(view(&rule))
}

pub async fn delete(ops: &Ops, id: &RuleId) -> OpResult<()> {
    if !db::timelapse_rules::delete(&ops.db, id.as_str()).await? {
        return Err(not_found(id));
    }
    ops.jobs.rules_changed.notify_one();
    tracing::info!(rule = %id, "timelapse rule deleted");
    Ok(())
}

// --- the rule runner's side ------------------------------------------------------------------

/// Claim every due period of every enabled rule at `now` and queue its job. Returns when the
/// next run of any rule is (`None`: no enabled rule).
pub async fn run_due(ops: &Ops, now: DateTime<Utc>) -> OpResult<Option<DateTime<Utc>>> {
    let mut next: Option<DateTime<Utc>> = None;
    for mut rule in db::timelapse_rules::list_enabled(&ops.db).await? {
        let (due, skipped) = due_periods(&rule, now);
        if skipped > 0 {
            tracing::warn!(rule = %rule.id, camera = %rule.camera_id, skipped,
                "missed timelapse runs older than the last {MAX_CATCH_UP} are not made");
        }
        for (from, to) in due {
            let n = db::jobs::count_frames(&ops.db, &rule.camera_id, from, to).await?;
            let job = (n > 0).then(|| {
                super::timelapses::rule_job(
                    ops,
                    &rule.camera_id,
                    rule.id.as_str(),
                    TimelapseSpec {
                        from,
                        to,
                        fps: rule.fps,
                        width: rule.width,
                        every_nth: 1,
                        format: rule.format,
                    },
                    n,
                )
            });
            if !db::timelapse_rules::claim(&ops.db, &rule.id, rule.covered_until, to, job.as_ref())
                .await?
            {
                // Another process (or a change) moved the rule on: those periods are not ours.
                tracing::debug!(rule = %rule.id, "a timelapse rule's period was claimed elsewhere");
                break;
            }
            rule.covered_until = to;
            match job {
                Some(j) => {
                    tracing::info!(rule = %rule.id, camera = %rule.camera_id, job = %j.id,
                        from = %fmt_ts(from), to = %fmt_ts(to), frames = j.frames_total,
                        "timelapse rule queued its video");
                    ops.jobs.queued.notify_one();
                }
                None => tracing::info!(rule = %rule.id, camera = %rule.camera_id,
                    from = %fmt_ts(from), to = %fmt_ts(to),
                    "no stored frames in the rule's period; no video made"),
            }
        }
        // Re-read: a claim elsewhere moved it.
        if let Some(fresh) = db::timelapse_rules::get(&ops.db, rule.id.as_str()).await? {
            if fresh.enabled {
                let n = next_run(&fresh);
                next = Some(next.map_or(n, |m| m.min(n)));
            }
        }
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::timelapse::VideoFormat;

    fn ts(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn rule(period: RulePeriod, at: &str, tz: &str, covered: &str) -> TimelapseRule {
        TimelapseRule {
            id: RuleId::generate(),
            camera_id: CameraId::parse("gate").unwrap(),
            period,
            at: check_at(at).unwrap(),
            time_zone: check_zone(tz).unwrap(),
            weekday: (period == RulePeriod::Weekly).then_some(Weekday::Mon),
            fps: 24,
            width: None,
            format: VideoFormat::Mp4,
            enabled: true,
            covered_until: ts(covered),
            created_at: ts(covered),
            updated_at: ts(covered),
        }
    }

    #[test]
    fn a_daily_period_is_a_local_day_of_23_24_or_25_hours() {
        let r = rule(
            RulePeriod::Daily,
            "00:30",
            "Europe/Berlin",
            "2026-03-27T23:00:00Z",
        );
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        // Spring forward (29 March 2026): 23 hours.
        let (a, b) = period_ending(&r, d("2026-03-30"));
        assert_eq!(
            (a, b),
            (ts("2026-03-28T23:00:00Z"), ts("2026-03-29T22:00:00Z"))
        );
        // Fall back (25 October 2026): 25 hours.
        let (a, b) = period_ending(&r, d("2026-10-26"));
        assert_eq!(
            (a, b),
            (ts("2026-10-24T22:00:00Z"), ts("2026-10-25T23:00:00Z"))
        );
        // An ordinary day.
        let (a, b) = period_ending(&r, d("2026-03-28"));
        assert_eq!(b - a, Duration::hours(24));
    }

    #[test]
    fn runs_fall_at_the_local_time_and_missed_ones_are_bounded() {
        let r = rule(
            RulePeriod::Daily,
            "00:30",
            "Europe/Berlin",
            "2026-03-27T23:00:00Z",
        );
        assert_eq!(next_run(&r), ts("2026-03-28T23:30:00Z")); // 29 March 00:30 CET
        let (due, skipped) = due_periods(&r, ts("2026-03-28T23:29:59Z"));
        assert!(due.is_empty() && skipped == 0);
        let (due, _) = due_periods(&r, ts("2026-03-28T23:30:00Z"));
        assert_eq!(
            due,
            vec![(ts("2026-03-27T23:00:00Z"), ts("2026-03-28T23:00:00Z"))]
        );
        // Thirty days later: the last seven only, the newest last.
        let (due, skipped) = due_periods(&r, ts("2026-04-28T12:00:00Z"));
        assert_eq!(due.len(), MAX_CATCH_UP);
        assert!(skipped > 0);
        assert_eq!(due.last().unwrap().1, ts("2026-04-27T22:00:00Z"));
    }

    #[test]
    fn a_time_in_the_spring_gap_runs_after_it_and_a_repeated_one_runs_first() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let d = NaiveDate::from_ymd_opt(2026, 3, 29).unwrap();
        let t = NaiveTime::from_hms_opt(2, 30, 0).unwrap();
        assert_eq!(local_instant(tz, d, t), ts("2026-03-29T01:30:00Z")); // 03:30 CEST
        let d = NaiveDate::from_ymd_opt(2026, 10, 25).unwrap();
        assert_eq!(local_instant(tz, d, t), ts("2026-10-25T00:30:00Z")); // the CEST one
    }

    #[test]
    fn a_new_rule_starts_from_its_next_run() {
        let mut r = rule(
            RulePeriod::Daily,
            "00:30",
            "Europe/Berlin",
            "2000-01-01T00:00:00Z",
        );
        // 00:10 local on 28 March: yesterday's run passed, today's has not.
        let now = ts("2026-03-27T23:10:00Z");
        r.covered_until = initial_coverage(&r, now);
        assert_eq!(r.covered_until, ts("2026-03-26T23:00:00Z"));
        assert_eq!(next_run(&r), ts("2026-03-27T23:30:00Z"));
        // Weekly on Monday: the seven days before the Monday.
        let mut w = rule(RulePeriod::Weekly, "06:00", "UTC", "2000-01-01T00:00:00Z");
        w.covered_until = initial_coverage(&w, ts("2026-03-25T12:00:00Z")); // a Wednesday
        assert_eq!(w.covered_until, ts("2026-03-23T00:00:00Z"));
        assert_eq!(next_run(&w), ts("2026-03-30T06:00:00Z"));
        assert_eq!(
            period_ending(&w, NaiveDate::from_ymd_opt(2026, 3, 30).unwrap()),
            (ts("2026-03-23T00:00:00Z"), ts("2026-03-30T00:00:00Z"))
        );
    }

    #[test]
    fn bad_rule_fields_name_the_field() {
        for (v, ok) in [
            ("00:30", true),
            ("23:59", true),
            ("24:00", false),
            ("0:30", false),
            ("noon", false),
        ] {
            assert_eq!(check_at(v).is_ok(), ok, "{v}");
        }
        assert!(check_zone("Europe/Berlin").is_ok());
        let e = check_zone("Mars/Olympus").unwrap_err();
        assert!(
            matches!(&e, OpError::Invalid(f) if f.field == "time_zone"),
            "{e}"
        );
        assert!(check_weekday(RulePeriod::Daily, Some("mon")).is_err());
        assert_eq!(
            check_weekday(RulePeriod::Weekly, None).unwrap(),
            Some(Weekday::Mon)
        );
    }
}
