//! Schedules: create, change, delete — each written to the database, then announced to the
//! scheduler (so it acts at once, docs/design.md §7) and on the event bus. Also the reads and slot
//! claims the scheduler makes.
//!
//! Every change is logged once, at INFO, naming the schedule and its camera and saying what
//! changed (`interval_seconds 60 → 30`); turning `enabled` off logs as "schedule paused", on as
//! "schedule resumed".
//!
//! Semantics follow the Heldar kernel: `interval_seconds` defaults to 300 and is clamped to
//! 5..=86400 (not refused); `enabled` defaults to true. A new schedule is due at once; a changed
//! interval or a re-enable makes it due when `last_fired_at + interval` comes (at once if that
//! has passed), a slot claimed and still being captured counting as fired. A schedule with calendar fields (docs/schedules.md) is checked by
//! `slot::spec` (each refusal a 422 naming its field) and is first due at its first slot
//! ([`slot::first_slot`]): for aligned and fixed times the next one on the clock, outside its
//! window the window's opening, and with no window within 400 days never (`next_due_at` null).

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};

use crate::db::{self, schedules::Claim};
use crate::error::{OpError, OpResult};
use crate::events::{Change, Event};
use crate::models::{
    truncate, Calendar, CameraId, DraftPreview, Page, Position, Schedule, ScheduleCreate,
    ScheduleId, SchedulePatch, SchedulePreview, Stream, DEFAULT_INTERVAL_S, MAX_INTERVAL_S,
    MAX_RETENTION_HOURS, MIN_INTERVAL_S,
};
use crate::slot::{self, Plan, Timing};

use super::{cameras, Ops};

fn clamp(interval: i64) -> i64 {
    interval.clamp(MIN_INTERVAL_S, MAX_INTERVAL_S)
}

fn not_found(id: &ScheduleId) -> OpError {
    OpError::NotFound(format!(
        "no snapshot schedule with id {:?}",
        truncate(id.as_str(), 80)
    ))
}

/// Check calendar fields against `interval` (`interval_given`: the request named
/// `interval_seconds`): the plan, and the calendar as stored — times and weekdays in their
/// canonical spelling, `None` for the plain interval schedule.
fn checked(c: Calendar, interval: i64, interval_given: bool) -> OpResult<(Plan, Option<Calendar>)> {
    let plan = c
        .plan(interval, interval_given)
        .map_err(|e| OpError::invalid(e.field, e.message))?;
    let mut c = c;
    if let Timing::At(times) = &plan.timing {
        c.at = Some(times.iter().map(|t| hhmm(*t)).collect());
    }
    if c.weekdays.is_some() {
        c.weekdays = Some(
            plan.window
                .weekdays
                .names()
                .into_iter()
                .map(String::from)
                .collect(),
        );
    }
    for t in [&mut c.active_from, &mut c.active_to].into_iter().flatten() {
        if let Ok(parsed) = slot::spec::parse_time("active_from", t) {
            *t = hhmm(parsed);
        }
    }
    // UTC is the default: `{"timezone": "UTC"}` is the plain schedule, stored as such.
    c.timezone = (c.timezone.is_some() && plan.zone != chrono_tz::Tz::UTC)
        .then(|| plan.zone.name().to_string());
    if c.align == Some(false) {
        c.align = None;
    }
    let c = (c != Calendar::default()).then_some(c);
    Ok((plan, c))
}

/// `dark_threshold`: a mean luma, 0..=255.
fn check_threshold(t: Option<i64>) -> OpResult<Option<i64>> {
    match t {
        Some(t) if !(0..=255).contains(&t) => Err(OpError::invalid(
            "dark_threshold",
            format!(
                "dark_threshold {t} is not a mean luma: give 0 to 255 (a frame darker than it \
                 is skipped), or null for the default {}",
                crate::models::DEFAULT_DARK_THRESHOLD
            ),
        )),
        t => Ok(t),
    }
}

/// `retention_hours`: 1..=876000 (a hundred years).
fn check_retention(h: Option<i64>) -> OpResult<Option<i64>> {
    match h {
        Some(h) if !(1..=MAX_RETENTION_HOURS).contains(&h) => Err(OpError::invalid(
            "retention_hours",
            format!(
                "retention_hours {h} is not a number of hours to keep frames: give 1 to \
                 {MAX_RETENTION_HOURS}, or null for the global age limit"
            ),
        )),
        h => Ok(h),
    }
}

/// `stream`: one of `main`, `sub`, `snapshot`, and one the camera has a URL for (explicit or
/// from its vendor's template).
async fn check_stream(ops: &Ops, camera: &CameraId, raw: Option<&str>) -> OpResult<Option<Stream>> {
    let Some(raw) = raw else { return Ok(None) };
    let stream = Stream::parse(raw).ok_or_else(|| {
        OpError::invalid(
            "stream",
            format!(
                "stream {:?} is not one of main, sub, snapshot (or null for the camera's own \
                 choice)",
                truncate(raw, 40)
            ),
        )
    })?;
    let c = cameras::camera(ops, camera).await?;
    let urls = crate::camera::effective_urls(&c);
    let (has, field) = match stream {
        Stream::Main => (urls.main_stream.is_some(), "main_stream_url"),
        Stream::Sub => (urls.sub_stream.is_some(), "sub_stream_url"),
        Stream::Snapshot => (urls.snapshot.is_some(), "snapshot_url"),
    };
    if !has {
        return Err(OpError::invalid(
            "stream",
            format!(
                "stream is {} but camera {camera} has no {} URL (give the camera a {field}, \
                 or choose another stream)",
                stream.as_str(),
                match stream {
                    Stream::Main => "main-stream",
                    Stream::Sub => "sub-stream",
                    Stream::Snapshot => "snapshot",
                }
            ),
        ));
    }
    Ok(Some(stream))
}

/// `HH:MM`, or `HH:MM:SS` when the seconds are not zero.
fn hhmm(t: chrono::NaiveTime) -> String {
    use chrono::Timelike;
    if t.second() == 0 {
        t.format("%H:%M").to_string()
    } else {
        t.format("%H:%M:%S").to_string()
    }
}

pub async fn list(ops: &Ops, camera: &CameraId) -> OpResult<Vec<Schedule>> {
    cameras::require(ops, camera).await?;
    Ok(db::schedules::list_for_camera(&ops.db, camera).await?)
}

/// A page of every schedule, oldest first, optionally only `camera`'s (which must exist: a
/// filter naming no camera is a not-found, so a mistyped id is said, not answered with an
/// empty list) and only enabled or disabled ones.
pub async fn list_all(
    ops: &Ops,
    camera: Option<&CameraId>,
    enabled: Option<bool>,
    after: Option<&Position>,
    limit: i64,
) -> OpResult<Page<Schedule>> {
    if let Some(c) = camera {
        cameras::require(ops, c).await?;
    }
    Ok(db::schedules::page_all(&ops.db, camera, enabled, after, limit).await?)
}

/// One schedule by id.
pub async fn get(ops: &Ops, id: &ScheduleId) -> OpResult<Schedule> {
    db::schedules::get(&ops.db, id.as_str())
        .await?
        .ok_or_else(|| not_found(id))
}

pub async fn create(ops: &Ops, camera: &CameraId, body: ScheduleCreate) -> OpResult<Schedule> {
    cameras::require(ops, camera).await?;
    let interval = clamp(body.interval_seconds.unwrap_or(DEFAULT_INTERVAL_S));
    let (plan, calendar) = checked(body.calendar(), interval, body.interval_seconds.is_some())?;
    let dark_threshold = check_threshold(body.dark_threshold)?;
    let retention_hours = check_retention(body.retention_hours)?;
    let stream = check_stream(ops, camera, body.stream.as_deref()).await?;
    let now = ops.clock.now().trunc_subsecs(3);
    let next_due_at = match calendar {
        None => Some(now),
        Some(_) => slot::first_slot(&plan, None, now).map(|t| t.trunc_subsecs(3)),
    };
    let mut s = Schedule {
        id: ScheduleId::generate().to_string(),
        camera_id: camera.clone(),
        interval_seconds: interval,
        enabled: body.enabled.unwrap_or(true),
        last_fired_at: None,
        next_due_at,
        created_at: now,
        updated_at: now,
        timezone: String::new(),
        align: false,
        at: None,
        weekdays: None,
        active_from: None,
        active_to: None,
        daylight: None,
        skip_dark: body.skip_dark.unwrap_or(false),
        dark_threshold,
        skip_unchanged: body.skip_unchanged.unwrap_or(false),
        stream,
        retention_hours,
        last_skipped_at: None,
        last_skip_reason: None,
    };
    s.set_calendar(calendar);
    // The camera may vanish between the check and the insert: the foreign key says so (a
    // not-found, through `DbError::NoParent`).
    db::schedules::insert(&ops.db, &s).await?;
    ops.scheduler.refresh(&s.id);
    tracing::info!(schedule = %s.id, camera = %camera, interval_seconds = s.interval_seconds,
        enabled = s.enabled, "schedule created");
    ops.events.publish(Event::ScheduleChanged {
        schedule: s.id.clone(),
        camera: camera.clone(),
        change: Change::Created,
    });
    Ok(s)
}

/// The slot a plain-interval schedule last had claimed: the scheduler's claim moves
/// `next_due_at` from a slot to the slot plus the interval, so it is `next_due_at - interval`
/// once a slot has been claimed (at or after creation), and `None` before the first claim or
/// for a calendar (whose slots are not evenly spaced). A paused schedule keeps its
/// `next_due_at`: resumed during the capture of its last slot, it runs from that slot (a slot
/// long past makes it due at once, as before).
fn last_claimed(s: &Schedule) -> Option<DateTime<Utc>> {
    if s.calendar().is_some() {
        return None;
    }
    let slot = s.next_due_at? - chrono::Duration::seconds(s.interval_seconds);
    (slot >= s.created_at).then_some(slot)
}

pub async fn update(ops: &Ops, id: &ScheduleId, patch: SchedulePatch) -> OpResult<Schedule> {
    let mut s = db::schedules::get(&ops.db, id.as_str())
        .await?
        .ok_or_else(|| not_found(id))?;
    let now = ops.clock.now().trunc_subsecs(3);
    let was_enabled = s.enabled;
    let old_interval = s.interval_seconds;
    let asked_interval = patch.interval_seconds;
    let old_calendar = s.calendar();
    let old = s.clone();
    if let Some(i) = patch.interval_seconds {
        s.interval_seconds = clamp(i);
    }
    if let Some(e) = patch.enabled {
        s.enabled = e;
    }
    // The stored calendar with the patch's fields applied, checked as a whole (a patch naming
    // `interval_seconds` on a fixed-times schedule is refused unless it also clears `at`).
    let merged = patch.apply(old_calendar.clone().unwrap_or_default());
    let (plan, calendar) = checked(merged, s.interval_seconds, patch.interval_seconds.is_some())?;
    let calendar_changed = calendar != old_calendar;
    s.set_calendar(calendar);
    if let Some(v) = patch.skip_dark {
        s.skip_dark = v;
    }
    if let Some(v) = patch.dark_threshold {
        s.dark_threshold = check_threshold(v)?;
    }
    if let Some(v) = patch.skip_unchanged {
        s.skip_unchanged = v;
    }
    if let Some(v) = &patch.retention_hours {
        s.retention_hours = check_retention(*v)?;
    }
    if let Some(v) = &patch.stream {
        s.stream = check_stream(ops, &s.camera_id, v.as_deref()).await?;
    }
    if s.enabled && (!was_enabled || s.interval_seconds != old_interval || calendar_changed) {
        // The slot the scheduler claimed last counts as fired, though its frame (which sets
        // `last_fired_at`) may still be on its way: an edit made during that capture (a script
        // creating a schedule, then changing it) must not make the schedule due at once, which
        // would fire a slot while the camera is still busy with the previous one and count it
        // missed.
        let fired = std::cmp::max(s.last_fired_at, last_claimed(&old));
        s.next_due_at = match s.calendar() {
            None => {
                let interval = chrono::Duration::seconds(s.interval_seconds);
                Some(slot::first_due(fired, interval, now).trunc_subsecs(3))
            }
            Some(_) => slot::first_slot(&plan, fired, now).map(|t| t.trunc_subsecs(3)),
        };
    }
    s.updated_at = now;
    if !db::schedules::update(&ops.db, &s).await? {
        return Err(not_found(id));
    }
    ops.scheduler.refresh(id.as_str());
    let mut changed = changes(
        (old_interval, was_enabled),
        (s.interval_seconds, s.enabled),
        asked_interval,
    );
    let rules = rule_changes(&old, &s);
    if !rules.is_empty() {
        changed = if changed == "nothing" {
            rules
        } else {
            format!("{changed}, {rules}")
        };
    }
    let what = match (was_enabled, s.enabled) {
        (true, false) => "schedule paused",
        (false, true) => "schedule resumed",
        _ => "schedule updated",
    };
    tracing::info!(schedule = %s.id, camera = %s.camera_id, changed = %changed, "{what}");
    ops.events.publish(Event::ScheduleChanged {
        schedule: s.id.clone(),
        camera: s.camera_id.clone(),
        change: Change::Updated,
    });
    Ok(s)
}

pub async fn delete(ops: &Ops, id: &ScheduleId) -> OpResult<()> {
    let Some(s) = db::schedules::get(&ops.db, id.as_str()).await? else {
        return Err(not_found(id));
    };
    if !db::schedules::delete(&ops.db, id.as_str()).await? {
        return Err(not_found(id));
    }
    ops.scheduler.refresh(id.as_str());
    ops.frames.forget_schedule(id.as_str());
    tracing::info!(schedule = %id, camera = %s.camera_id, interval_seconds = s.interval_seconds,
        enabled = s.enabled, "schedule deleted");
    ops.events.publish(Event::ScheduleChanged {
        schedule: s.id,
        camera: s.camera_id,
        change: Change::Deleted,
    });
    Ok(())
}

/// What an update changed, for the log: `interval_seconds 60 → 30, enabled true → false`, a
/// clamped interval with what was asked, or `nothing`.
fn changes(old: (i64, bool), new: (i64, bool), asked: Option<i64>) -> String {
    let mut out = Vec::new();
    if old.0 != new.0 {
        let clamped = asked
            .filter(|a| *a != new.0)
            .map(|a| format!(" (asked {a}, clamped to {MIN_INTERVAL_S}..={MAX_INTERVAL_S})"))
            .unwrap_or_default();
        out.push(format!("interval_seconds {} → {}{clamped}", old.0, new.0));
    }
    if old.1 != new.1 {
        out.push(format!("enabled {} → {}", old.1, new.1));
    }
    if out.is_empty() {
        "nothing".into()
    } else {
        out.join(", ")
    }
}

/// What an update changed of a schedule's frame rules, for the log (`skip_dark false → true,
/// stream none → main`), or "".
fn rule_changes(old: &Schedule, new: &Schedule) -> String {
    fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
        v.map_or("none".into(), |v| v.to_string())
    }
    let pairs = [
        (
            "skip_dark",
            old.skip_dark.to_string(),
            new.skip_dark.to_string(),
        ),
        (
            "dark_threshold",
            opt(old.dark_threshold),
            opt(new.dark_threshold),
        ),
        (
            "skip_unchanged",
            old.skip_unchanged.to_string(),
            new.skip_unchanged.to_string(),
        ),
        (
            "stream",
            opt(old.stream.map(|s| s.as_str())),
            opt(new.stream.map(|s| s.as_str())),
        ),
        (
            "retention_hours",
            opt(old.retention_hours),
            opt(new.retention_hours),
        ),
    ];
    pairs
        .into_iter()
        .filter(|(_, a, b)| a != b)
        .map(|(name, a, b)| format!("{name} {a} → {b}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Preview at most this many slots.
pub const MAX_PREVIEW: usize = 100;

/// The next `n` slots of a schedule: from its `next_due_at` if it is enabled and waiting for
/// it, else from where it would start if enabled now ([`slot::first_slot`]). An enabled
/// schedule idling with no window within 400 days has none.
pub async fn preview(ops: &Ops, id: &ScheduleId, n: usize) -> OpResult<SchedulePreview> {
    let s = db::schedules::get(&ops.db, id.as_str())
        .await?
        .ok_or_else(|| not_found(id))?;
    let plan = s.plan();
    let now = ops.clock.now().trunc_subsecs(3);
    let first = if s.enabled {
        s.next_due_at
    } else {
        slot::first_slot(&plan, s.last_fired_at, now)
    };
    let mut slots = Vec::new();
    if let Some(first) = first {
        slots.push(first);
        slots.extend(plan.upcoming(first, first, n.saturating_sub(1)));
    }
    slots.truncate(n);
    let local = in_zone(&plan, &slots);
    Ok(SchedulePreview {
        schedule_id: s.id,
        timezone: s.timezone,
        slots,
        local,
    })
}

/// The slots in the plan's zone, RFC 3339 with the offset in force at each.
fn in_zone(plan: &Plan, slots: &[DateTime<Utc>]) -> Vec<String> {
    slots
        .iter()
        .map(|t| {
            t.with_timezone(&plan.zone)
                .to_rfc3339_opts(SecondsFormat::AutoSi, false)
        })
        .collect()
}

/// The first `n` slots the create body `body` would fire on `camera` if it were created now —
/// the dashboard's live preview while the operator edits a schedule, before it is saved (or
/// while an existing one is being changed). Checked exactly as [`create`] checks it, so a body
/// this refuses is one `create` would refuse with the same 422 sentence; nothing is written.
/// `enabled` is ignored: the slots are those the schedule fires while it is enabled.
pub async fn preview_draft(
    ops: &Ops,
    camera: &CameraId,
    body: ScheduleCreate,
    n: usize,
) -> OpResult<DraftPreview> {
    cameras::require(ops, camera).await?;
    let interval = clamp(body.interval_seconds.unwrap_or(DEFAULT_INTERVAL_S));
    let (plan, calendar) = checked(body.calendar(), interval, body.interval_seconds.is_some())?;
    // The frame rules too, in `create`'s order: a preview never shows slots for a body whose
    // save would be refused.
    check_threshold(body.dark_threshold)?;
    check_retention(body.retention_hours)?;
    check_stream(ops, camera, body.stream.as_deref()).await?;
    let now = ops.clock.now().trunc_subsecs(3);
    // The same first slot as `create` gives.
    let first = match &calendar {
        None => Some(now),
        Some(_) => slot::first_slot(&plan, None, now).map(|t| t.trunc_subsecs(3)),
    };
    let mut slots = Vec::new();
    if let Some(first) = first {
        slots.push(first);
        slots.extend(plan.upcoming(first, first, n.saturating_sub(1)));
    }
    slots.truncate(n);
    let local = in_zone(&plan, &slots);
    Ok(DraftPreview {
        camera_id: camera.clone(),
        timezone: calendar
            .and_then(|c| c.timezone)
            .unwrap_or_else(|| "UTC".into()),
        slots,
        local,
    })
}

// What the scheduler reads and writes (its `ScheduleStore` is built on these).

pub async fn enabled(ops: &Ops) -> OpResult<Vec<Schedule>> {
    Ok(db::schedules::list_enabled(&ops.db).await?)
}

/// Every schedule, enabled or not, changed at or after `since`.
pub async fn changed_since(ops: &Ops, since: DateTime<Utc>) -> OpResult<Vec<Schedule>> {
    Ok(db::schedules::list_changed_since(&ops.db, since).await?)
}

pub async fn find(ops: &Ops, id: &str) -> OpResult<Option<Schedule>> {
    Ok(db::schedules::get(&ops.db, id).await?)
}

/// Claim slots (docs/design.md §7: a conditional update each, all in one transaction); one answer
/// per claim, in order: true if this call moved `next_due_at` from the slot.
pub async fn claim(ops: &Ops, claims: Vec<Claim>) -> OpResult<Vec<bool>> {
    Ok(ops.writer.claim_many(claims).await?)
}

#[cfg(test)]
mod tests {
    use super::changes;

    #[test]
    fn an_update_says_what_changed() {
        assert_eq!(
            changes((60, true), (30, false), Some(30)),
            "interval_seconds 60 → 30, enabled true → false"
        );
        assert_eq!(
            changes((60, true), (5, true), Some(1)),
            "interval_seconds 60 → 5 (asked 1, clamped to 5..=86400)"
        );
        assert_eq!(changes((60, true), (60, true), Some(60)), "nothing");
    }
}
