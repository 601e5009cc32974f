//! How operations tell the snapshot scheduler about changes: a command handle, so a schedule
//! created, changed or deleted through this process reaches the scheduler at once (docs/design.md
//! §7), and a changed camera is re-read before its next slot. The scheduler owns the receiving
//! side; this module owns only the message shape, so `ops` never reaches into the scheduler.

use std::sync::Arc;

use tokio::sync::{mpsc, Mutex};

use crate::models::CameraId;

/// What ops tell the scheduler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// This schedule was created, changed or deleted: re-read it.
    Refresh(String),
    /// Many schedules may have changed (a camera was deleted): re-read all.
    RefreshAll,
    /// This camera was edited or deleted: forget what is cached of it.
    CameraChanged(CameraId),
}

/// The sending side, held in [`super::Ops`]. Sending never blocks and never fails loudly: with
/// the scheduler disabled, the periodic re-read of another process picks changes up instead.
#[derive(Clone)]
pub struct SchedulerHandle {
    tx: mpsc::UnboundedSender<Command>,
}

/// The receiving side; it outlives one run of the scheduler, so a restarted run keeps it.
pub type CommandReceiver = Arc<Mutex<mpsc::UnboundedReceiver<Command>>>;

impl SchedulerHandle {
    pub fn channel() -> (SchedulerHandle, CommandReceiver) {
        let (tx, rx) = mpsc::unbounded_channel();
        (SchedulerHandle { tx }, Arc::new(Mutex::new(rx)))
    }

    pub fn refresh(&self, schedule_id: &str) {
        let _ = self.tx.send(Command::Refresh(schedule_id.to_string()));
    }

    pub fn refresh_all(&self) {
        let _ = self.tx.send(Command::RefreshAll);
    }

    pub fn camera_changed(&self, camera: &CameraId) {
        let _ = self.tx.send(Command::CameraChanged(camera.clone()));
    }
}
