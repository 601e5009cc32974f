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

/// Is `e` a step that does not run on PostgreSQL yet ([`crate::db::DbError::NotOnPostgres`]),
/// however it was wrapped? A service meeting one idles instead of failing and restarting over
/// and over (docs/scale-out.md "Where PostgreSQL stands" lists what runs where).
pub fn not_on_postgres(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<crate::db::DbError>(),
            Some(crate::db::DbError::NotOnPostgres { .. })
        ) || matches!(
            c.downcast_ref::<crate::error::OpError>(),
            Some(crate::error::OpError::Unavailable {
                code: crate::error::NOT_ON_POSTGRES,
                ..
            })
        )
    })
}

/// The end of a service's run: `r`, unless it failed on a step not yet ported to PostgreSQL;
/// then one WARN line naming the service, and an idle wait for shutdown instead of a restart.
pub async fn idle_if_not_on_postgres(
    service: &'static str,
    r: anyhow::Result<()>,
    token: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    match r {
        Err(e) if not_on_postgres(&e) => {
            tracing::warn!(
                service,
                error = %format!("{e:#}"),
                "{service} does not run on PostgreSQL yet: the service is idle on this node"
            );
            token.cancelled().await;
            Ok(())
        }
        r => r,
    }
}
