//! The process's file-descriptor budget.
//!
//! Every camera capture, frame file, database connection and HTTP connection holds a file
//! descriptor, and services commonly start with a soft RLIMIT_NOFILE of 1,024 (systemd's
//! default) while the hard limit is far higher. At start-up `heldar serve` raises the soft limit
//! to the hard one ([`raise_nofile`]) and logs both. The HTTP server then bounds its concurrent
//! connections (HELDAR_HTTP_MAX_CONNECTIONS) to what is left after a reserve for capture and
//! storage ([`default_http_connections`]), so no amount of client connections can take the
//! descriptors that capture needs.

use nix::sys::resource::{getrlimit, setrlimit, Resource, RLIM_INFINITY};

/// The soft and hard RLIMIT_NOFILE before and after [`raise_nofile`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NofileLimit {
    pub soft_before: u64,
    pub soft: u64,
    pub hard: u64,
}

/// The soft limit Heldar asks for when the hard limit is unlimited.
const UNLIMITED_TARGET: u64 = 1 << 20;

/// Raise the soft RLIMIT_NOFILE to the hard limit. Failing to raise it is not an error: the
/// current limit is returned and the caller logs it.
pub fn raise_nofile() -> std::io::Result<NofileLimit> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(std::io::Error::from)?;
    let target = if hard == RLIM_INFINITY {
        UNLIMITED_TARGET.max(soft)
    } else {
        hard
    };
    if target > soft && setrlimit(Resource::RLIMIT_NOFILE, target, hard).is_ok() {
        return Ok(NofileLimit {
            soft_before: soft,
            soft: target,
            hard,
        });
    }
    Ok(NofileLimit {
        soft_before: soft,
        soft,
        hard,
    })
}

/// The current soft RLIMIT_NOFILE.
pub fn current_soft() -> u64 {
    getrlimit(Resource::RLIMIT_NOFILE).map_or(1024, |(soft, _)| soft)
}

/// Descriptors kept for everything but HTTP clients: the database pool and writer (each
/// connection holds the database, its -wal and -shm), the listener, the runtime, logs, frame
/// files being written and removed, plus one socket per capture in flight and three pipes per
/// ffmpeg process.
pub fn reserve(capture_concurrency: usize, ffmpeg_concurrency: usize) -> u64 {
    96 + capture_concurrency as u64 + 3 * ffmpeg_concurrency as u64
}

/// HTTP connections allowed at once when HELDAR_HTTP_MAX_CONNECTIONS is not set: the soft limit
/// less [`reserve`], at least 16 and at most 16,384.
pub fn default_http_connections(
    soft_limit: u64,
    capture_concurrency: usize,
    ffmpeg_concurrency: usize,
) -> usize {
    let left = soft_limit.saturating_sub(reserve(capture_concurrency, ffmpeg_concurrency));
    left.clamp(16, 16_384) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_leaves_the_reserve() {
        // systemd's default soft limit, the default concurrencies.
        assert_eq!(default_http_connections(1024, 64, 16), 1024 - 96 - 64 - 48);
        assert_eq!(default_http_connections(65_536, 64, 16), 16_384);
        assert_eq!(default_http_connections(100, 64, 16), 16);
    }
}
