//! The frame storage's outages, as the log tells them.
//!
//! When the frame storage is unavailable (a bucket that is down, refuses or throttles), every
//! frame captured meanwhile is lost and counted in `heldar_store_failures_total`; the log tells
//! the outage rather than each frame: one WARN when it begins (with the storage's own error),
//! one INFO when a frame is stored again or the health check finds the storage answering (how
//! long it lasted and how many frames it cost), and a DEBUG line per frame in between naming
//! its camera. A 30 s bucket outage under a thousand cameras is two lines at the default level.
//!
//! What it owns: only that bookkeeping (in memory, per process). It does not decide whether a
//! frame is kept, and other errors of the store (a full disk, a failed write) are each their
//! own problem, logged by the caller for every frame.
//!
//! Two rules keep the story true under concurrency and flapping:
//! - a write that began before the last outage was seen to end (one a silent bucket held until
//!   its deadline) belongs to that outage: it is counted by the metric and logged at DEBUG, but
//!   opens no new outage;
//! - a storage that flaps (a throttling bucket answering some PUTs with 503 SlowDown) does not
//!   fill the log: an outage that begins within [`WARN_EVERY`] of the last WARN is opened
//!   quietly and ends at DEBUG, unless a frame fails after it has lasted [`QUIET_UP_TO`]; then
//!   it is said at WARN (and its end at INFO) like any other. Short flaps cost a WARN a minute
//!   at most; a real outage is always said.

use std::sync::Mutex;

use chrono::{DateTime, Utc};

use super::Ops;
use crate::models::CameraId;
use crate::store::StoreError;

/// Within this of the last outage WARN, a new outage begins quietly (seconds).
pub const WARN_EVERY: i64 = 60;
/// How long a quiet outage may last before a failed frame says it at WARN (seconds).
pub const QUIET_UP_TO: i64 = 10;

/// One outage of the frame storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Outage {
    /// When the first write it failed began.
    pub since: DateTime<Utc>,
    /// Frames it cost so far.
    pub frames: u64,
    /// Whether its beginning was said at WARN (its end then is said at INFO).
    pub warned: bool,
}

/// What the log says of a frame the unavailable storage cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Say {
    /// The outage begins (or, begun quietly, has lasted [`QUIET_UP_TO`]): a WARN.
    Warn,
    /// One more frame of a known outage: a DEBUG line.
    Debug,
}

/// The bookkeeping; one per process.
#[derive(Debug, Default)]
pub(crate) struct StoreOutages {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    open: Option<Outage>,
    /// When the last outage was seen to end.
    closed_at: Option<DateTime<Utc>>,
    last_warned: Option<DateTime<Utc>>,
}

impl StoreOutages {
    /// A write begun at `began` failed at `now` because the storage is unavailable.
    pub(crate) fn failed(&self, began: DateTime<Utc>, now: DateTime<Utc>) -> Say {
        let every = chrono::Duration::seconds(WARN_EVERY);
        let quiet_up_to = chrono::Duration::seconds(QUIET_UP_TO);
        let mut s = self.state.lock().expect("store outage lock");
        let recently_warned = s.last_warned.is_some_and(|t| now - t < every);
        let leftover = s.closed_at.is_some_and(|t| t > began);
        let say = match s.open.as_mut() {
            Some(o) => {
                o.frames += 1;
                if !o.warned && now - o.since >= quiet_up_to {
                    o.warned = true;
                    Say::Warn
                } else {
                    Say::Debug
                }
            }
            None if leftover => Say::Debug,
            None => {
                s.open = Some(Outage {
                    since: began,
                    frames: 1,
                    warned: !recently_warned,
                });
                if recently_warned {
                    Say::Debug
                } else {
                    Say::Warn
                }
            }
        };
        if say == Say::Warn {
            s.last_warned = Some(now);
        }
        say
    }

    /// The storage answered at `now` (a frame was stored, or the health check listed it): the
    /// outage that was open, if any, is over.
    pub(crate) fn answered(&self, now: DateTime<Utc>) -> Option<Outage> {
        let mut s = self.state.lock().expect("store outage lock");
        let ended = s.open.take();
        if ended.is_some() {
            s.closed_at = Some(now);
        }
        ended
    }
}

/// Log a frame of `camera` the store refused; `began` is when its write began.
pub(crate) fn frame_not_stored(ops: &Ops, camera: &CameraId, began: DateTime<Utc>, e: &StoreError) {
    if !matches!(e, StoreError::Unavailable(_)) {
        tracing::warn!(camera = %camera, error = %e, "frame captured but not stored");
        return;
    }
    match ops.frames.storage.failed(began, ops.clock.now()) {
        Say::Warn => tracing::warn!(camera = %camera, error = %e,
            "frame captured but not stored: the frame storage is unavailable; frames are counted \
             in heldar_store_failures_total, not logged one by one, until it answers again"),
        Say::Debug => {
            tracing::debug!(camera = %camera, error = %e, "frame captured but not stored")
        }
    }
}

/// The storage answered (a frame stored, a health check's listing): say the end of the outage
/// that was open, if any.
pub(crate) fn storage_answered(ops: &Ops) {
    let now = ops.clock.now();
    let Some(o) = ops.frames.storage.answered(now) else {
        return;
    };
    let lasted = (now - o.since).num_milliseconds().max(0) as f64 / 1000.0;
    if o.warned {
        tracing::info!(
            frames_not_stored = o.frames,
            "the frame storage answers again after {lasted:.1} s; {} frame(s) captured \
             meanwhile were not stored",
            o.frames
        );
    } else {
        tracing::debug!(
            frames_not_stored = o.frames,
            "the frame storage answers again after {lasted:.1} s (a short outage within a \
             minute of the last one said); {} frame(s) were not stored",
            o.frames
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    #[test]
    fn an_outage_is_one_warn_then_counted_until_the_storage_answers() {
        let o = StoreOutages::default();
        assert_eq!(o.failed(at(0), at(1)), Say::Warn);
        assert_eq!(o.failed(at(1), at(2)), Say::Debug);
        assert_eq!(o.failed(at(5), at(6)), Say::Debug);
        assert_eq!(
            o.answered(at(30)),
            Some(Outage {
                since: at(0),
                frames: 3,
                warned: true
            })
        );
        assert_eq!(o.answered(at(31)), None, "said once");
    }

    /// A write held by a silent bucket that fails after the storage answered again belongs to
    /// the outage that ended; one that fails first while others still succeed opens one.
    #[test]
    fn a_write_begun_before_the_end_opens_no_new_outage() {
        let o = StoreOutages::default();
        assert_eq!(o.failed(at(0), at(1)), Say::Warn);
        assert!(o.answered(at(20)).is_some());
        assert_eq!(o.failed(at(15), at(25)), Say::Debug, "a leftover");
        assert_eq!(o.answered(at(26)), None, "no outage was opened by it");
        // Without an outage before it, a failure whose write began before a success elsewhere
        // is an outage beginning (the bucket just went away), said at once.
        let fresh = StoreOutages::default();
        assert_eq!(fresh.answered(at(10)), None);
        assert_eq!(fresh.failed(at(9), at(11)), Say::Warn);
    }

    /// A flapping storage: short outages within a minute of the last WARN are quiet; one that
    /// lasts is said once it has lasted 10 s.
    #[test]
    fn a_flapping_storage_warns_at_most_once_a_minute_unless_an_outage_lasts() {
        let o = StoreOutages::default();
        assert_eq!(o.failed(at(0), at(0)), Say::Warn);
        assert!(o.answered(at(1)).unwrap().warned);
        assert_eq!(o.failed(at(10), at(10)), Say::Debug, "within the minute");
        assert_eq!(o.failed(at(15), at(15)), Say::Debug, "5 s on: still quiet");
        assert!(!o.answered(at(16)).unwrap().warned, "its end is quiet too");
        assert_eq!(o.failed(at(20), at(20)), Say::Debug);
        assert_eq!(o.failed(at(25), at(25)), Say::Debug);
        assert_eq!(o.failed(at(30), at(31)), Say::Warn, "lasted 10 s: said");
        assert_eq!(o.failed(at(35), at(35)), Say::Debug, "said once");
        let ended = o.answered(at(40)).unwrap();
        assert_eq!((ended.since, ended.frames, ended.warned), (at(20), 4, true));
        // Within a minute of that WARN a new one is quiet again; a minute on, said at once.
        assert_eq!(o.failed(at(50), at(50)), Say::Debug);
        assert!(!o.answered(at(51)).unwrap().warned);
        // A minute after the last WARN a new outage is said at once.
        assert_eq!(o.failed(at(92), at(92)), Say::Warn);
    }
}
