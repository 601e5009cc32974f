//! `spawn_supervised(name, factory)`: the one way Heldar runs background work (docs/design.md §10).
//!
//! The factory builds a fresh run of the service from a cancellation token. If the run panics,
//! fails or returns while Heldar is not shutting down, the failure is logged and the service is
//! started again after a backoff (doubling from `initial` to `max`; reset once a run has stayed up
//! for `reset_after`). On shutdown the token is cancelled, the backoff is cut short, and
//! [`Supervisor::shutdown`] waits — up to a grace period — for every service to finish its run.
//!
//! A service failing affects only itself: the others, and the HTTP server, keep running.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Restart delays.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    /// A run that lasted this long counts as healthy: the next failure starts from `initial`.
    pub reset_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            reset_after: Duration::from_secs(60),
        }
    }
}

/// Owns the shutdown token and every supervised task.
#[derive(Clone)]
pub struct Supervisor {
    shutdown: CancellationToken,
    tracker: TaskTracker,
    backoff: Backoff,
}

impl Supervisor {
    pub fn new(shutdown: CancellationToken) -> Supervisor {
        Supervisor::with_backoff(shutdown, Backoff::default())
    }

    pub fn with_backoff(shutdown: CancellationToken, backoff: Backoff) -> Supervisor {
        Supervisor {
            shutdown,
            tracker: TaskTracker::new(),
            backoff,
        }
    }

    /// The token every service watches.
    pub fn token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Run `factory`'s service until shutdown, restarting it with backoff when it panics, fails or
    /// returns early.
    pub fn spawn_supervised<F, Fut>(&self, name: &'static str, mut factory: F)
    where
        F: FnMut(CancellationToken) -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let shutdown = self.shutdown.clone();
        let backoff = self.backoff;
        self.tracker.spawn(async move {
            let mut delay = backoff.initial;
            loop {
                let started = Instant::now();
                let run = tokio::spawn(factory(shutdown.child_token()));
                let outcome = run.await;
                if shutdown.is_cancelled() {
                    match outcome {
                        Ok(Err(e)) => tracing::warn!(service = name, error = %crate::error::report(&*e), "service failed while stopping"),
                        Err(e) if e.is_panic() => tracing::error!(service = name, "service panicked while stopping"),
                        _ => tracing::debug!(service = name, "service stopped"),
                    }
                    return;
                }
                match outcome {
                    Ok(Ok(())) => tracing::warn!(service = name, "service returned unexpectedly; restarting"),
                    Ok(Err(e)) => tracing::error!(service = name, error = %crate::error::report(&*e), "service failed; restarting"),
                    Err(e) if e.is_panic() => tracing::error!(service = name, panic = %panic_message(e), "service panicked; restarting"),
                    Err(_) => tracing::error!(service = name, "service was cancelled; restarting"),
                }
                if started.elapsed() >= backoff.reset_after {
                    delay = backoff.initial;
                }
                tracing::info!(service = name, delay_ms = delay.as_millis() as u64, "restarting after backoff");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.cancelled() => return,
                }
                delay = (delay * 2).min(backoff.max);
            }
        });
    }

    /// Cancel every service and wait up to `grace` for them to finish. Returns whether all did.
    pub async fn shutdown(&self, grace: Duration) -> bool {
        self.shutdown.cancel();
        self.tracker.close();
        let done = tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_ok();
        if !done {
            tracing::warn!(
                still_running = self.tracker.len(),
                "services did not stop within the grace period"
            );
        }
        done
    }
}

fn panic_message(e: tokio::task::JoinError) -> String {
    let p = e.into_panic();
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-text panic".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    fn fast() -> Backoff {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            reset_after: Duration::from_secs(3600),
        }
    }

    /// Under a paused clock, so backoff sleeps pass instantly and deterministically.
    #[tokio::test(start_paused = true)]
    async fn a_panicking_service_is_restarted_until_it_stays_up_and_shutdown_stops_it() {
        let sup = Supervisor::with_backoff(CancellationToken::new(), fast());
        let runs = Arc::new(AtomicU32::new(0));
        let stopped = Arc::new(AtomicU32::new(0));
        let (r, s) = (runs.clone(), stopped.clone());
        sup.spawn_supervised("flaky", move |token| {
            let (r, s) = (r.clone(), s.clone());
            async move {
                let n = r.fetch_add(1, Ordering::SeqCst) + 1;
                if n <= 2 {
                    panic!("run {n} panics");
                }
                if n == 3 {
                    anyhow::bail!("run 3 fails");
                }
                token.cancelled().await;
                s.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        });
        // Runs 1–3 fail; the 4th stays up. Backoff 100 + 200 + 400 ms of virtual time.
        let waited = tokio::time::timeout(Duration::from_secs(10), async {
            while runs.load(Ordering::SeqCst) < 4 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        assert!(waited.is_ok(), "the service was not restarted");
        let before = Instant::now();
        assert!(sup.shutdown(Duration::from_secs(5)).await);
        assert!(before.elapsed() < Duration::from_secs(1));
        assert_eq!(
            stopped.load(Ordering::SeqCst),
            1,
            "the live run saw the shutdown"
        );
        assert_eq!(runs.load(Ordering::SeqCst), 4, "no restart after shutdown");
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_doubles_up_to_its_max() {
        let sup = Supervisor::with_backoff(CancellationToken::new(), fast());
        let starts = Arc::new(std::sync::Mutex::new(Vec::new()));
        let st = starts.clone();
        let t0 = Instant::now();
        sup.spawn_supervised("always-fails", move |_| {
            st.lock().unwrap().push(t0.elapsed());
            async { anyhow::bail!("nope") }
        });
        tokio::time::timeout(Duration::from_secs(60), async {
            while starts.lock().unwrap().len() < 7 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .unwrap();
        sup.shutdown(Duration::from_secs(1)).await;
        let s = starts.lock().unwrap().clone();
        let gaps: Vec<u128> = s.windows(2).map(|w| (w[1] - w[0]).as_millis()).collect();
        // 100, 200, 400, 800, then capped at 1000 (±10 ms of polling in this test).
        let want = [100u128, 200, 400, 800, 1000, 1000];
        for (g, w) in gaps.iter().zip(want) {
            assert!(g.abs_diff(w) <= 15, "gaps {gaps:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_cuts_a_backoff_short() {
        let sup = Supervisor::with_backoff(
            CancellationToken::new(),
            Backoff {
                initial: Duration::from_secs(3600),
                ..fast()
            },
        );
        let runs = Arc::new(AtomicU32::new(0));
        let r = runs.clone();
        sup.spawn_supervised("fails-once", move |_| {
            r.fetch_add(1, Ordering::SeqCst);
            async { anyhow::bail!("nope") }
        });
        tokio::time::timeout(Duration::from_secs(1), async {
            while runs.load(Ordering::SeqCst) < 1 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await
        .unwrap();
        let before = Instant::now();
        assert!(sup.shutdown(Duration::from_secs(5)).await);
        assert!(
            before.elapsed() < Duration::from_secs(1),
            "waited out the hour-long backoff"
        );
    }
}
