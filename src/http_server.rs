//! The HTTP accept loop, owned here rather than left to `axum::serve` so that no client load can
//! take what capture needs:
//!
//! - **Bounded connections.** At most `max_connections` (HELDAR_HTTP_MAX_CONNECTIONS, by default
//!   sized from the file-descriptor limit — see `fd_limit`) are served at once. A connection
//!   over the bound is answered `503` with `Connection: close` at once and closed, so it holds a
//!   descriptor for microseconds and the listen backlog keeps draining: an answer, not a hang.
//! - **Header deadline.** A connection that has not sent a whole request head within
//!   `header_read_timeout` (5 s) is dropped — also between keep-alive requests — so idle or
//!   slow-loris connections free their slot within seconds.
//! - **Accept errors** (EMFILE/ENFILE when descriptors run out anyway, aborted handshakes) never
//!   stop the loop: it logs at most one line a second and tries again after 50 ms.
//!
//! HTTP/1.1 only (the API, the dashboard and `/metrics` need nothing else). Graceful shutdown:
//! when the token is cancelled the listener closes, idle connections close, and requests in
//! flight get up to [`DRAIN`] to finish.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long requests in flight may take to finish after shutdown starts.
pub const DRAIN: Duration = Duration::from_secs(10);
/// The default header deadline.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);

const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
connection: close\r\nretry-after: 1\r\ncontent-length: 80\r\n\r\n\
{\"error\":\"too many open HTTP connections; try again in a second\",\"code\":\"busy\"}\n";

#[derive(Clone)]
pub struct ServeOptions {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    /// `heldar_http_connections` and `heldar_http_connections_refused_total`.
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// Serve `router` on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    opts: ServeOptions,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(opts.max_connections.max(1)));
    let tracker = TaskTracker::new();
    let mut last_error_log: Option<Instant> = None;
    let mut refused: u64 = 0;
    loop {
        let stream = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    if last_error_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                        tracing::warn!(error = %e, "cannot accept an HTTP connection; retrying");
                        last_error_log = Some(Instant::now());
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            // Full: answer and close now (best effort; the socket buffer takes 200 bytes).
            let _ = stream.try_write(BUSY);
            drop(stream);
            refused += 1;
            opts.metrics.http_refused.inc();
            if last_error_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                tracing::warn!(
                    max = opts.max_connections,
                    refused,
                    "HTTP connection limit reached (HELDAR_HTTP_MAX_CONNECTIONS); refusing with 503"
                );
                last_error_log = Some(Instant::now());
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let token = shutdown.clone();
        let (metrics, header_read_timeout) = (opts.metrics.clone(), opts.header_read_timeout);
        metrics.http_connections.inc();
        tracker.spawn(async move {
            let _slot = slot;
            let _gauge = DecOnDrop(metrics);
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_read_timeout)
                .keep_alive(true);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::trace!(error = %e, "HTTP connection ended with an error");
                    }
                }
                _ = token.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    drop(listener);
    tracker.close();
    if tokio::time::timeout(DRAIN, tracker.wait()).await.is_err() {
        tracing::warn!(
            "HTTP requests still in flight after {} s; not waiting for them",
            DRAIN.as_secs()
        );
    }
    Ok(())
}

/// Counts a connection out of `heldar_http_connections` however its task ends.
struct DecOnDrop(Arc<crate::metrics::Metrics>);

impl Drop for DecOnDrop {
    fn drop(&mut self) {
        self.0.http_connections.dec();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_busy_answer_is_well_formed() {
        let text = std::str::from_utf8(super::BUSY).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(len, body.len());
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["code"], "busy");
    }
}
