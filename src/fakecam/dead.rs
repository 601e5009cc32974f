//! Dead cameras, the three ways a camera can be dead on the network, for the tests and the
//! benchmark's `--broken` cameras:
//!
//! - **hang** — accepts the connection and the request and never answers
//!   ([`super::Behavior::Hang`] on a [`FakeCamera`]);
//! - **drip** — answers 200 and then the JPEG one byte at a time ([`super::Behavior::SlowDrip`]),
//!   so the response never completes within a capture deadline;
//! - **blackhole** — the connection never completes: a [`Blackhole`] is a socket listening with
//!   an accept backlog of 0 that never accepts, plugged with one connection of its own, so Linux
//!   drops every further SYN (as a host behind a dead switch does) and a client's connect waits
//!   for its own deadline.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use bytes::Bytes;

use super::{Behavior, FakeAuth, FakeCamera, FrameSupply};

/// How a dead camera is dead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadKind {
    Hang,
    Drip,
    Blackhole,
}

impl DeadKind {
    pub const ALL: [DeadKind; 3] = [DeadKind::Hang, DeadKind::Drip, DeadKind::Blackhole];

    pub fn as_str(self) -> &'static str {
        match self {
            DeadKind::Hang => "hang",
            DeadKind::Drip => "drip",
            DeadKind::Blackhole => "blackhole",
        }
    }
}

impl FromStr for DeadKind {
    type Err = String;
    fn from_str(s: &str) -> Result<DeadKind, String> {
        DeadKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("{s:?} is not hang, drip or blackhole"))
    }
}

/// Which kinds a fleet of dead cameras has: one kind, or all three in turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadMix {
    One(DeadKind),
    Mix,
}

impl DeadMix {
    /// The kind of dead camera number `i`.
    pub fn kind(self, i: usize) -> DeadKind {
        match self {
            DeadMix::One(k) => k,
            DeadMix::Mix => DeadKind::ALL[i % 3],
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DeadMix::One(k) => k.as_str(),
            DeadMix::Mix => "mix",
        }
    }
}

impl FromStr for DeadMix {
    type Err = String;
    fn from_str(s: &str) -> Result<DeadMix, String> {
        if s == "mix" {
            return Ok(DeadMix::Mix);
        }
        s.parse()
            .map(DeadMix::One)
            .map_err(|e| format!("{e} (nor mix)"))
    }
}

/// A listening socket whose connections never complete (see the module docs).
pub struct Blackhole {
    addr: SocketAddr,
    _listener: tokio::net::TcpListener,
    _plug: tokio::net::TcpStream,
}

impl Blackhole {
    /// Listen on `127.0.0.1` and a free port with a backlog of 0, and fill that backlog.
    ///
    /// # Errors
    /// When the port cannot be bound or the plug cannot connect.
    pub async fn start() -> std::io::Result<Blackhole> {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let listener = socket.listen(0)?;
        let addr = listener.local_addr()?;
        // Linux queues backlog + 1 completed connections: this one fills the queue and is never
        // accepted, so every later SYN is dropped.
        let plug = tokio::net::TcpStream::connect(addr).await?;
        Ok(Blackhole {
            addr,
            _listener: listener,
            _plug: plug,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/snapshot.jpg`.
    pub fn snapshot_url(&self) -> String {
        format!("http://{}/snapshot.jpg", self.addr)
    }
}

/// A running dead camera of any kind. Stops when dropped.
pub enum DeadCamera {
    Fake(FakeCamera),
    Blackhole(Blackhole),
}

impl DeadCamera {
    /// Start a dead camera of `kind`; a drip camera sends `frame` one byte per `drip`.
    ///
    /// # Errors
    /// When a port cannot be bound.
    pub async fn start(kind: DeadKind, frame: Bytes, drip: Duration) -> std::io::Result<Self> {
        Ok(match kind {
            DeadKind::Blackhole => DeadCamera::Blackhole(Blackhole::start().await?),
            DeadKind::Hang | DeadKind::Drip => {
                let cam = FakeCamera::start(FakeAuth::None, FrameSupply::Static(frame)).await?;
                cam.set_behavior(if kind == DeadKind::Hang {
                    Behavior::Hang
                } else {
                    Behavior::SlowDrip(drip)
                });
                DeadCamera::Fake(cam)
            }
        })
    }

    pub fn snapshot_url(&self) -> String {
        match self {
            DeadCamera::Fake(c) => c.snapshot_url(),
            DeadCamera::Blackhole(b) => b.snapshot_url(),
        }
    }
}

/// The pause between the bytes of a drip camera in the benchmark and the tests: slow enough
/// that no frame completes within any capture deadline, fast enough to cost the reader work.
pub const DRIP_EVERY: Duration = Duration::from_millis(100);

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_blackhole_never_completes_a_connection() {
        let hole = Blackhole::start().await.unwrap();
        let connect = tokio::net::TcpStream::connect(hole.addr());
        assert!(
            tokio::time::timeout(Duration::from_millis(1500), connect)
                .await
                .is_err(),
            "the connection completed"
        );
    }

    #[test]
    fn kinds_parse() {
        assert_eq!("mix".parse::<DeadMix>().unwrap(), DeadMix::Mix);
        assert_eq!(
            "drip".parse::<DeadMix>().unwrap(),
            DeadMix::One(DeadKind::Drip)
        );
        assert!("dead".parse::<DeadMix>().is_err());
        assert_eq!(DeadMix::Mix.kind(5), DeadKind::Blackhole);
    }
}
