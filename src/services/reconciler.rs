//! The background half of reconciliation (`ops::reconcile::full_pass`): started with the other
//! services on every start, it cross-checks the whole store while the scheduler and the API
//! already run, logs `background reconciliation done` with its counts, then idles until
//! shutdown.
//!
//! Failure: an error ends the pass; the supervisor starts it again (from the beginning: every
//! step is idempotent) after its backoff. A shutdown stops it between two batches; the next
//! start runs it again.

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::ops::reconcile::{self, Parts};
use crate::ops::Ops;

/// Run the full pass once for the run that started at `run_start`, then wait for shutdown.
/// With a `gate`, the pass waits for a permit first (tests hold it to see the application
/// before the pass ends).
pub async fn run(
    ops: Ops,
    run_start: DateTime<Utc>,
    gate: Option<Arc<Semaphore>>,
    token: CancellationToken,
) -> anyhow::Result<()> {
    if let Some(gate) = gate {
        tokio::select! {
            permit = gate.acquire() => drop(permit?),
            _ = token.cancelled() => return Ok(()),
        }
    }
    let began = Instant::now();
    let parts = Parts {
        store: &ops.store,
        pool: &ops.db,
        writer: &ops.writer,
        clock: ops.clock.as_ref(),
    };
    // A database outage (docs/design.md §8.1) cuts the pass short: wait and run it again
    // (it is idempotent: what it already settled it finds settled), rather than fail the
    // service and have the supervisor restart it.
    let pass = loop {
        match reconcile::full_pass(parts, run_start, &token).await {
            Err(e) if crate::services::retention::is_outage(&e) => {
                tracing::warn!(error = %crate::error::report(&*e), "background reconciliation waits for the database");
                tokio::select! {
                    _ = token.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
                }
            }
            other => break other?,
        }
    };
    match pass {
        Some(report) => {
            ops.metrics
                .storage_missing_frames
                .set(report.rows_kept_missing_file as i64);
            tracing::info!(
                temp_files_removed = report.temp_files_removed,
                rows_without_file_removed = report.rows_without_file_removed,
                rows_kept_missing_file = report.rows_kept_missing_file,
                files_reindexed = report.files_reindexed,
                damaged_frames_removed = report.damaged_frames_removed,
                entries_left_alone = report.entries_left_alone,
                folders_checked = report.folders_checked,
                elapsed_ms = began.elapsed().as_millis() as u64,
                "background reconciliation done"
            )
        }
        None => {
            tracing::info!("background reconciliation stopped by the shutdown; it runs again at the next start");
            return Ok(());
        }
    }
    token.cancelled().await;
    Ok(())
}
