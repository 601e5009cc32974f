//! A fake camera that answers with exact bytes over a real TCP socket on `127.0.0.1`: for the
//! malformed responses real cameras send and an HTTP server library would never produce (header
//! lines without a name, bare LF line endings, a `Content-Length` that lies, an MJPEG stream, odd
//! `WWW-Authenticate` challenges).
//!
//! Each connection serves one request: the camera reads the request head (up to the blank line),
//! records it, asks the script what to do, plays the [`Step`]s and closes the connection
//! (responses should say `Connection: close` where a client could otherwise reuse it).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

/// One thing the camera does on a connection, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Write these bytes.
    Send(Vec<u8>),
    /// Wait this long.
    Wait(Duration),
    /// Keep the connection open, silent, until the client closes it or the camera stops.
    Hold,
    /// Write these bytes again and again, pausing in between, until the client goes away or the
    /// camera stops (an MJPEG stream's parts).
    Repeat(Vec<u8>, Duration),
}

/// Decides the steps for request number `n` (from 0) with this request head (text up to and
/// including the blank line).
pub type Script = dyn Fn(usize, &str) -> Vec<Step> + Send + Sync;

struct Shared {
    requests: Mutex<Vec<String>>,
    open: AtomicU64,
    token: CancellationToken,
}

/// A running raw-bytes camera. Stops (closing every connection) when dropped.
pub struct RawCamera {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl RawCamera {
    /// Listen on `127.0.0.1` and a free port, answering every request with `script`.
    ///
    /// # Errors
    /// When the port cannot be bound.
    pub async fn start(
        script: impl Fn(usize, &str) -> Vec<Step> + Send + Sync + 'static,
    ) -> std::io::Result<RawCamera> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            requests: Mutex::new(Vec::new()),
            open: AtomicU64::new(0),
            token: CancellationToken::new(),
        });
        let script: Arc<Script> = Arc::new(script);
        let s = shared.clone();
        tokio::spawn(async move {
            loop {
                let conn = tokio::select! {
                    c = listener.accept() => c,
                    _ = s.token.cancelled() => return,
                };
                let Ok((sock, _)) = conn else { continue };
                let (s, script) = (s.clone(), script.clone());
                tokio::spawn(async move {
                    s.open.fetch_add(1, Ordering::SeqCst);
                    let token = s.token.clone();
                    tokio::select! {
                        _ = serve(sock, &s, &*script) => {}
                        _ = token.cancelled() => {}
                    }
                    s.open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Ok(RawCamera { addr, shared })
    }

    /// A camera that answers every request with `response`, then closes the connection.
    ///
    /// # Errors
    /// When the port cannot be bound.
    pub async fn fixed(response: Vec<u8>) -> std::io::Result<RawCamera> {
        RawCamera::start(move |_, _| vec![Step::Send(response.clone())]).await
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The request heads received so far, in order.
    pub fn requests(&self) -> Vec<String> {
        self.shared.requests.lock().expect("requests lock").clone()
    }

    /// Connections open right now.
    pub fn open_connections(&self) -> u64 {
        self.shared.open.load(Ordering::SeqCst)
    }
}

impl Drop for RawCamera {
    fn drop(&mut self) {
        self.shared.token.cancel();
    }
}

async fn serve(mut sock: tokio::net::TcpStream, shared: &Shared, script: &Script) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match sock.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > 64 * 1024 {
            return;
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let n = {
        let mut r = shared.requests.lock().expect("requests lock");
        r.push(head.clone());
        r.len() - 1
    };
    for step in script(n, &head) {
        match step {
            Step::Send(bytes) => {
                if sock.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            Step::Wait(d) => tokio::time::sleep(d).await,
            Step::Hold => {
                // Returns when the client closes (read gives 0 or an error).
                while let Ok(n) = sock.read(&mut buf).await {
                    if n == 0 {
                        return;
                    }
                }
                return;
            }
            Step::Repeat(bytes, every) => loop {
                if sock.write_all(&bytes).await.is_err() {
                    return;
                }
                // Notice a client that closed even while the socket buffer still takes writes.
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    r = sock.read(&mut buf) => {
                        if matches!(r, Ok(0) | Err(_)) {
                            return;
                        }
                    }
                }
            },
        }
    }
    let _ = sock.shutdown().await;
}
