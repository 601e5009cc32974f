//! Schedules: create, change, delete — each written to the database, then announced to the
//! scheduler (so it acts at once, DESIGN.md §7) and on the event bus. Also the reads and slot
//! claims the scheduler makes.
//!
//! Every change is logged once, at INFO, naming the schedule and its camera and saying what
//! changed (`interval_seconds 60 → 30`); turning `enabled` off logs as "schedule paused", on as
//! "schedule resumed".
//!
//! Semantics follow the Heldar kernel: `interval_seconds` defaults to 300 and is clamped to
//! 5..=86400 (not refused); `enabled` defaults to true. A new schedule is due at once; a changed
//! interval or a re-enable makes it due when `last_fired_at + interval` comes (at once if that
//! has passed).

use chrono::{DateTime, SubsecRound, Utc};

use crate::db::{self, schedules::Claim};
use crate::error::{OpError, OpResult};
use crate::events::{Change, Event};
use crate::models::{
    truncate, CameraId, Page, Position, Schedule, ScheduleCreate, ScheduleId, SchedulePatch,
    DEFAULT_INTERVAL_S, MAX_INTERVAL_S, MIN_INTERVAL_S,
};
use crate::slot;

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
    let now = ops.clock.now().trunc_subsecs(3);
    let s = Schedule {
        id: ScheduleId::generate().to_string(),
        camera_id: camera.clone(),
        interval_seconds: clamp(body.interval_seconds.unwrap_or(DEFAULT_INTERVAL_S)),
        enabled: body.enabled.unwrap_or(true),
        last_fired_at: None,
        next_due_at: Some(now),
        created_at: now,
        updated_at: now,
    };
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

pub async fn update(ops: &Ops, id: &ScheduleId, patch: SchedulePatch) -> OpResult<Schedule> {
    let mut s = db::schedules::get(&ops.db, id.as_str())
        .await?
        .ok_or_else(|| not_found(id))?;
    let now = ops.clock.now().trunc_subsecs(3);
    let was_enabled = s.enabled;
    let old_interval = s.interval_seconds;
    let asked_interval = patch.interval_seconds;
    if let Some(i) = patch.interval_seconds {
        s.interval_seconds = clamp(i);
    }
    if let Some(e) = patch.enabled {
        s.enabled = e;
    }
    if s.enabled && (!was_enabled || s.interval_seconds != old_interval) {
        let interval = chrono::Duration::seconds(s.interval_seconds);
        s.next_due_at = Some(slot::first_due(s.last_fired_at, interval, now).trunc_subsecs(3));
    }
    s.updated_at = now;
    if !db::schedules::update(&ops.db, &s).await? {
        return Err(not_found(id));
    }
    ops.scheduler.refresh(id.as_str());
    let changed = changes(
        (old_interval, was_enabled),
        (s.interval_seconds, s.enabled),
        asked_interval,
    );
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

/// Claim slots (DESIGN.md §7: a conditional update each, all in one transaction); one answer
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
