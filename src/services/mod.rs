//! Long-running work. Every background service is started through
//! [`supervisor::Supervisor::spawn_supervised`]: it is watched, restarted with backoff when it
//! panics or returns, and stopped by the shared shutdown token (docs/design.md §10).

pub mod demo_camera;
pub mod mqtt;
pub mod nodes;
pub mod outage_watch;
pub mod reconciler;
pub mod retention;
pub mod rtsp_warm;
pub mod snapshot_scheduler;
pub mod supervisor;
pub mod timelapses;
pub mod webhooks;
