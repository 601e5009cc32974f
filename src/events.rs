//! Domain events, and the bus they travel on.
//!
//! `ops` publishes one [`Event`] for each thing that happened — a frame stored, a capture
//! failed, a camera's state changed, a camera began or extended a backoff, a camera or schedule
//! changed, a timelapse job progressed or ended, a timelapse video was stored, a camera went offline or
//! recovered — and anything that wants to
//! know subscribes: the `/api/v1/events` stream (and through it the dashboard), and later MQTT
//! and webhooks. The bus is a bounded broadcast channel ([`EventBus::CAPACITY`] events): a
//! publisher never waits, whoever is subscribed. A subscriber that falls more than the capacity
//! behind loses the oldest events and is told how many it missed
//! ([`tokio::sync::broadcast::error::RecvError::Lagged`]); capture never slows down for it.
//!
//! Events carry no secret: errors are masked by the capture layer before they get here, and a
//! camera event names the camera, not its URLs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::broadcast;
use utoipa::ToSchema;

use crate::models::timelapse::JobState;
use crate::models::{BackoffReason, CameraId, CameraState, SkipReason};

/// What changed about a camera or a schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    Created,
    Updated,
    Deleted,
}

/// One thing that happened. Serialized with its kind in `type` (`frame.stored`, …), which is
/// also the name of the Server-Sent Event that carries it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(tag = "type")]
pub enum Event {
    /// A frame's file is in place and its row is written (or queued to the writer: see
    /// `db::writer` — the row of a scheduled frame may take up to its linger to commit).
    #[serde(rename = "frame.stored")]
    FrameStored {
        camera: CameraId,
        /// `None` for a frame kept through the API (`?store=true`).
        schedule: Option<String>,
        snapshot_id: String,
        taken_at: DateTime<Utc>,
        /// Where the JPEG is served: `/media/snapshots/{camera}/{file}`.
        url: String,
        size_bytes: i64,
        width: Option<i64>,
        height: Option<i64>,
        /// The tag it was taken with (an API or MQTT trigger's `tag`); `None` for most frames.
        tag: Option<String>,
    },
    /// A scheduled slot fired and its frame was not kept: dark (`skip_dark`) or like the
    /// previous stored frame (`skip_unchanged`). Not missed: the slot is done.
    #[serde(rename = "slot.skipped")]
    SlotSkipped {
        camera_id: CameraId,
        schedule_id: String,
        /// The slot's time.
        slot: DateTime<Utc>,
        reason: SkipReason,
        /// The frame's mean luma, 0..=255.
        luma: u8,
        /// With `unchanged`: the frame's 64-bit difference hash, 16 hex digits.
        #[serde(skip_serializing_if = "Option::is_none")]
        hash: Option<String>,
    },
    /// A capture gave no frame (scheduled or live).
    #[serde(rename = "capture.failed")]
    CaptureFailed {
        camera: CameraId,
        schedule: Option<String>,
        /// The machine code, as in the API's error body (`timeout`, `auth_failed`, …).
        code: String,
        /// The sentence, credentials masked.
        error: String,
        at: DateTime<Utc>,
    },
    /// A camera's state changed (`online` → `failing`, …): once per change, not per capture.
    #[serde(rename = "camera.state_changed")]
    CameraStateChanged {
        camera: CameraId,
        from: CameraState,
        to: CameraState,
        /// The error that caused a change to `failing` or `auth_failed`, masked.
        last_error: Option<String>,
        at: DateTime<Utc>,
    },
    /// A camera's scheduled captures wait until `until` instead of trying at every slot: sent
    /// when a scheduled capture failure starts or extends a backoff (at most once per try, so
    /// at most once per backoff period). Its end shows as `camera.state_changed` to `online`
    /// (a success) or `camera.changed` (an edit).
    #[serde(rename = "camera.backoff")]
    CameraBackoff {
        camera: CameraId,
        reason: BackoffReason,
        until: DateTime<Utc>,
        /// Failures in a row so far.
        failures: i64,
        at: DateTime<Utc>,
    },
    #[serde(rename = "camera.changed")]
    CameraChanged { camera: CameraId, change: Change },
    #[serde(rename = "schedule.changed")]
    ScheduleChanged {
        schedule: String,
        camera: CameraId,
        change: Change,
    },
    /// A timelapse job's progress: when it starts, at most twice a second while it encodes,
    /// and once more with its last count.
    #[serde(rename = "job.progress")]
    JobProgress {
        job_id: String,
        camera: CameraId,
        frames_done: i64,
        frames_total: i64,
        /// Seconds left at the pace so far; `null` until there is a pace.
        eta_seconds: Option<f64>,
    },
    /// A job ended: `done`, `failed` or `cancelled`.
    #[serde(rename = "job.finished")]
    JobFinished {
        job_id: String,
        camera: CameraId,
        state: JobState,
        /// The video, when `done`.
        timelapse_id: Option<String>,
        /// The machine code of a failure (`no_frames`, `ffmpeg_failed`, …).
        code: Option<String>,
        /// Why it failed, a sentence.
        error: Option<String>,
    },
    /// A camera went offline: `consecutive_failures` captures failed in a row
    /// (HELDAR_OFFLINE_AFTER_FAILURES), or it gave no frame for HELDAR_OFFLINE_AFTER_S while it
    /// has an enabled schedule. Once per outage; its row is in `/api/v1/outages`.
    #[serde(rename = "camera.offline")]
    CameraOffline {
        camera_id: CameraId,
        /// The outage's row.
        outage_id: String,
        /// When it went dark: the first failure of the run, or its last frame.
        since: DateTime<Utc>,
        /// The error that began it, masked; `null` for an outage found by silence alone.
        first_error: Option<String>,
        consecutive_failures: i64,
    },
    /// An offline camera gave a frame again: its outage is closed.
    #[serde(rename = "camera.recovered")]
    CameraRecovered {
        camera_id: CameraId,
        outage_id: String,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        duration_s: f64,
    },
    /// A timelapse video is stored and served at `url`.
    #[serde(rename = "timelapse.done")]
    TimelapseDone {
        camera: CameraId,
        timelapse_id: String,
        /// `/media/timelapses/{camera}/{file}`.
        url: String,
    },
}

impl Event {
    /// The event's kind, as in its `type` field.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::FrameStored { .. } => "frame.stored",
            Event::CaptureFailed { .. } => "capture.failed",
            Event::SlotSkipped { .. } => "slot.skipped",
            Event::CameraStateChanged { .. } => "camera.state_changed",
            Event::CameraBackoff { .. } => "camera.backoff",
            Event::CameraChanged { .. } => "camera.changed",
            Event::ScheduleChanged { .. } => "schedule.changed",
            Event::JobProgress { .. } => "job.progress",
            Event::JobFinished { .. } => "job.finished",
            Event::TimelapseDone { .. } => "timelapse.done",
            Event::CameraOffline { .. } => "camera.offline",
            Event::CameraRecovered { .. } => "camera.recovered",
        }
    }

    /// The event as sent on every channel (the SSE stream, MQTT, webhooks): its fields, its
    /// kind in `type`, and the camera in `camera_id` on every event. `camera_id` is the
    /// canonical name (as in the API's resources); the older events (`frame.stored`,
    /// `capture.failed`, `camera.*` but `offline`/`recovered`, `schedule.changed`, `job.*`,
    /// `timelapse.done`) also keep `camera`, the same id, for the consumers written against
    /// them (docs/integrations.md).
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            if !o.contains_key("camera_id") {
                o.insert(
                    "camera_id".into(),
                    serde_json::Value::String(self.camera().as_str().to_string()),
                );
            }
        }
        v
    }

    /// The camera it is about.
    pub fn camera(&self) -> &CameraId {
        match self {
            Event::FrameStored { camera, .. }
            | Event::CaptureFailed { camera, .. }
            | Event::CameraStateChanged { camera, .. }
            | Event::CameraBackoff { camera, .. }
            | Event::CameraChanged { camera, .. }
            | Event::ScheduleChanged { camera, .. }
            | Event::JobProgress { camera, .. }
            | Event::JobFinished { camera, .. }
            | Event::TimelapseDone { camera, .. }
            | Event::CameraOffline {
                camera_id: camera, ..
            }
            | Event::CameraRecovered {
                camera_id: camera, ..
            } => camera,
            Event::SlotSkipped { camera_id, .. } => camera_id,
        }
    }
}

/// The bus: cheap to clone, shared by every publisher and subscriber.
#[derive(Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Arc<Event>>,
    published: Arc<AtomicU64>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus::new(EventBus::CAPACITY)
    }
}

impl EventBus {
    /// Events a subscriber may fall behind before it loses the oldest: at 1,000 frames a
    /// second, four seconds of them.
    pub const CAPACITY: usize = 4096;

    pub fn new(capacity: usize) -> EventBus {
        let (tx, _) = broadcast::channel(capacity);
        EventBus {
            tx,
            published: Arc::default(),
        }
    }

    /// Publish `event` to every subscriber. Never waits; with no subscriber it is dropped.
    pub fn publish(&self, event: Event) {
        self.published.fetch_add(1, Ordering::Relaxed);
        let _ = self.tx.send(Arc::new(event));
    }

    /// Every event published from now on (up to the capacity behind).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    /// Events published since start.
    pub fn published(&self) -> u64 {
        self.published.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::broadcast::error::RecvError;

    fn changed(n: usize) -> Event {
        Event::CameraChanged {
            camera: CameraId::parse(&format!("c{n}")).unwrap(),
            change: Change::Updated,
        }
    }

    #[tokio::test]
    async fn a_subscriber_that_falls_behind_is_told_how_many_it_missed_and_never_blocks_publishing()
    {
        let bus = EventBus::new(4);
        let mut slow = bus.subscribe();
        for n in 0..10 {
            bus.publish(changed(n)); // returns at once although `slow` reads nothing
        }
        assert_eq!(bus.published(), 10);
        assert!(matches!(slow.recv().await, Err(RecvError::Lagged(6))));
        // Then the newest four, in order.
        for n in 6..10 {
            assert_eq!(*slow.recv().await.unwrap(), changed(n));
        }
    }

    #[test]
    fn events_serialize_with_their_kind_in_type() {
        let e = Event::CameraStateChanged {
            camera: CameraId::parse("gate").unwrap(),
            from: CameraState::Online,
            to: CameraState::Failing,
            last_error: Some("camera gate: no frame within 20 s".into()),
            at: DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
                .unwrap()
                .with_timezone(&Utc),
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["type"], e.kind());
        assert_eq!(v["camera"], "gate");
        assert_eq!(v["from"], "online");
        assert_eq!(v["to"], "failing");
    }

    #[test]
    fn every_event_names_its_camera_in_camera_id_and_the_older_ones_keep_camera() {
        let gate = || CameraId::parse("gate").unwrap();
        let at = DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
            .unwrap()
            .with_timezone(&Utc);
        let older = [
            Event::CameraChanged {
                camera: gate(),
                change: Change::Created,
            },
            Event::CaptureFailed {
                camera: gate(),
                schedule: None,
                code: "timeout".into(),
                error: "late".into(),
                at,
            },
            Event::TimelapseDone {
                camera: gate(),
                timelapse_id: "tl_1".into(),
                url: "/media/timelapses/gate/x.mp4".into(),
            },
        ];
        for e in &older {
            let v = e.to_json();
            assert_eq!(v["camera_id"], "gate", "{v}");
            assert_eq!(v["camera"], "gate", "{v}");
            assert_eq!(v["type"], e.kind());
        }
        let newer = Event::CameraRecovered {
            camera_id: gate(),
            outage_id: "out_1".into(),
            from: at,
            to: at,
            duration_s: 0.0,
        };
        let v = newer.to_json();
        assert_eq!(v["camera_id"], "gate", "{v}");
        assert!(v.get("camera").is_none(), "{v}");
    }
}
