//! The `nodes` service: this process's life as a node (docs/fleet.md) — a lease tick every
//! lease period / 3 (heartbeat, renew, rebalance: `ops::nodes::tick`), a look twice a second for
//! free cameras and for schedules changed through other nodes (`ops::nodes::look`), and on
//! shutdown the drain: marked draining, every lease given back at once, so the other nodes take
//! the cameras while this one's scheduler finishes its in-flight captures.
//!
//! A failed tick or look is logged and tried again at the next one; the held set stays as it
//! was, and if the database stays away for longer than a lease period the leases lapse and other
//! nodes may take the cameras (each slot is still captured once: the slot claim decides). It does
//! nothing when this process is not a node (the scheduler is off).

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::ops::{self, Ops};

/// How far back a look reads changed schedules beyond the previous look (clocks of nodes differ a
/// little; a schedule re-read twice costs a lookup).
const LOOK_MARGIN: chrono::Duration = chrono::Duration::seconds(2);

/// Run until `token` is cancelled, then drain.
pub async fn run(ops: Ops, token: CancellationToken) -> anyhow::Result<()> {
    let Some(period) = ops.nodes.lease_period() else {
        token.cancelled().await;
        return Ok(());
    };
    let every = period / 3;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut look = tokio::time::interval(ops::nodes::LOOK_EVERY);
    look.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut since = ops.clock.now() - LOOK_MARGIN;
    loop {
        tokio::select! {
            biased;
            _ = token.cancelled() => break,
            _ = tick.tick() => {
                match ops::nodes::tick(&ops, true).await {
                    Ok(_) => {}
                    // A database outage has its own ERROR line at its start and INFO at its
                    // end (db::writer); a WARN per tick would bury them.
                    Err(e @ crate::error::OpError::Unavailable { .. }) => {
                        tracing::debug!(error = %crate::error::report(&e), "node heartbeat waits for the database");
                    }
                    Err(e) => tracing::warn!(error = %crate::error::report(&e), "node heartbeat and lease renewal failed; trying again at the next tick"),
                }
            }
            _ = look.tick() => {
                let now = ops.clock.now();
                match ops::nodes::look(&ops, since).await {
                    Ok(()) => since = now - LOOK_MARGIN,
                    Err(e) => tracing::debug!(error = %crate::error::report(&e), "looking for free cameras failed; trying again"),
                }
            }
        }
    }
    // Bounded: a database that does not answer must not hold the shutdown (the leases then
    // lapse within a lease period instead).
    match tokio::time::timeout(Duration::from_secs(5), ops::nodes::drain(&ops)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %crate::error::report(&e), "cannot give back the camera leases; they lapse within a lease period")
        }
        Err(_) => tracing::warn!(
            "giving back the camera leases timed out; they lapse within a lease period"
        ),
    }
    Ok(())
}
