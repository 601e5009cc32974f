//! In-process fake IP cameras that speak real HTTP on a loopback port: the demo camera, the test
//! suite's cameras and the benchmark's cameras all use this.
//!
//! A [`FakeCamera`] serves JPEG frames at any path, behind no auth, Basic or Digest auth (with
//! real nonces and response checks), and can be told to misbehave the ways real cameras do:
//! answer slowly, hang forever, return an error status, garbage, a truncated JPEG, a body cut off
//! mid-transfer, or an endless stream. Each camera counts the requests it served. Dropping the
//! handle (or [`FakeCamera::stop`]) shuts the server down, hanging requests included.
//!
//! [`raw::RawCamera`] answers with exact bytes instead, for the malformed responses an HTTP server
//! library cannot produce.

pub mod dead;
pub mod pattern;
pub mod raw;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use tokio_util::sync::CancellationToken;

/// Which credentials the camera wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FakeAuth {
    None,
    Basic { user: String, pass: String },
    Digest { user: String, pass: String },
}

/// Where frames come from.
#[derive(Clone)]
pub enum FrameSupply {
    /// The same bytes every time (cheap: tests and benchmarks).
    Static(Bytes),
    /// A fresh moving test pattern with the time on it (the demo camera).
    Pattern {
        width: u16,
        height: u16,
        label: String,
    },
}

/// How the camera answers the next requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behavior {
    Ok,
    /// Answer correctly after a delay.
    Delay(Duration),
    /// Accept the request and never answer.
    Hang,
    /// Answer with this HTTP status and a text body.
    Status(u16),
    /// 200 with bytes that are not a JPEG.
    Garbage,
    /// 200 with the first half of the JPEG (a complete HTTP response).
    Truncated,
    /// Promise the whole JPEG in Content-Length, send half, drop the connection.
    CutOff,
    /// 200 with a chunked body of this many bytes that starts like a JPEG.
    Oversized(usize),
    /// 200 with the JPEG sent one byte at a time, one byte per `Duration`.
    SlowDrip(Duration),
    /// 302 to this location (itself, for a loop; another scheme, for a scheme change).
    Redirect(String),
}

struct Inner {
    auth: FakeAuth,
    frames: FrameSupply,
    behavior: Mutex<Behavior>,
    nonce: String,
    hits: AtomicU64,
    auth_rejections: AtomicU64,
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
    token: CancellationToken,
}

/// A running fake camera. Stops when dropped.
pub struct FakeCamera {
    addr: SocketAddr,
    inner: Arc<Inner>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl FakeCamera {
    /// Start a camera on `127.0.0.1` and a free port.
    pub async fn start(auth: FakeAuth, frames: FrameSupply) -> std::io::Result<FakeCamera> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        Ok(FakeCamera::serve(listener, auth, frames))
    }

    /// Serve on a listener the caller bound.
    pub fn serve(
        listener: tokio::net::TcpListener,
        auth: FakeAuth,
        frames: FrameSupply,
    ) -> FakeCamera {
        let addr = listener
            .local_addr()
            .expect("bound listener has an address");
        let token = CancellationToken::new();
        let inner = Arc::new(Inner {
            auth,
            frames,
            behavior: Mutex::new(Behavior::Ok),
            nonce: format!("{:032x}", rand::random::<u128>()),
            hits: AtomicU64::new(0),
            auth_rejections: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            max_in_flight: AtomicU64::new(0),
            token: token.clone(),
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(inner.clone());
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(token.cancelled_owned())
                .await;
            if let Err(e) = served {
                tracing::warn!(error = %e, "fake camera server stopped");
            }
        });
        FakeCamera {
            addr,
            inner,
            task: Some(task),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/snapshot.jpg`.
    pub fn snapshot_url(&self) -> String {
        format!("http://{}/snapshot.jpg", self.addr)
    }

    pub fn set_behavior(&self, b: Behavior) {
        *self.inner.behavior.lock().expect("behavior lock") = b;
    }

    /// Requests served, whatever their outcome.
    pub fn hits(&self) -> u64 {
        self.inner.hits.load(Ordering::Relaxed)
    }

    /// Requests refused for missing or wrong credentials.
    pub fn auth_rejections(&self) -> u64 {
        self.inner.auth_rejections.load(Ordering::Relaxed)
    }

    /// Requests being served right now.
    pub fn in_flight(&self) -> u64 {
        self.inner.in_flight.load(Ordering::SeqCst)
    }

    /// The most requests this camera was serving at one moment.
    pub fn max_in_flight(&self) -> u64 {
        self.inner.max_in_flight.load(Ordering::Relaxed)
    }

    /// Stop serving and wait until the listener is closed.
    pub async fn stop(mut self) {
        self.inner.token.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for FakeCamera {
    fn drop(&mut self) {
        self.inner.token.cancel();
    }
}

async fn handle(
    State(cam): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    cam.hits.fetch_add(1, Ordering::Relaxed);
    let _in_flight = InFlight::enter(&cam);
    if let Some(challenge) = check_auth(&cam, &method, &uri, &headers) {
        cam.auth_rejections.fetch_add(1, Ordering::Relaxed);
        return challenge;
    }
    let behavior = cam.behavior.lock().expect("behavior lock").clone();
    let frame = || -> Bytes {
        match &cam.frames {
            FrameSupply::Static(b) => b.clone(),
            FrameSupply::Pattern {
                width,
                height,
                label,
            } => Bytes::from(pattern::demo_frame(
                *width,
                *height,
                label,
                chrono::Utc::now(),
            )),
        }
    };
    let jpeg = |b: Bytes| ([(header::CONTENT_TYPE, "image/jpeg")], b).into_response();
    match behavior {
        Behavior::Ok => jpeg(frame()),
        Behavior::Delay(d) => {
            tokio::select! {
                _ = tokio::time::sleep(d) => jpeg(frame()),
                _ = cam.token.cancelled() => StatusCode::SERVICE_UNAVAILABLE.into_response(),
            }
        }
        Behavior::Hang => {
            cam.token.cancelled().await;
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
        Behavior::Status(s) => {
            let status = StatusCode::from_u16(s).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (status, format!("fake camera error {s}\n")).into_response()
        }
        Behavior::Garbage => (
            [(header::CONTENT_TYPE, "image/jpeg")],
            "this is not a jpeg at all",
        )
            .into_response(),
        Behavior::Truncated => {
            let f = frame();
            jpeg(f.slice(..f.len() / 2))
        }
        Behavior::CutOff => {
            let f = frame();
            let half = f.slice(..f.len() / 2);
            // Send the headers and half the body, give the client time to read them, then fail
            // the body so the connection drops mid-transfer.
            let chunks = futures_util::stream::unfold(0u8, move |step| {
                let half = half.clone();
                async move {
                    match step {
                        0 => Some((Ok(half), 1)),
                        1 => {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            let cut =
                                std::io::Error::new(std::io::ErrorKind::ConnectionReset, "cut off");
                            Some((Err(cut), 2))
                        }
                        _ => None,
                    }
                }
            });
            Response::builder()
                .header(header::CONTENT_TYPE, "image/jpeg")
                .header(header::CONTENT_LENGTH, f.len())
                .body(Body::from_stream(chunks))
                .expect("valid response")
        }
        Behavior::SlowDrip(every) => {
            let f = frame();
            let token = cam.token.clone();
            let drip = futures_util::stream::unfold(0usize, move |i| {
                let (f, token) = (f.clone(), token.clone());
                async move {
                    if i >= f.len() {
                        return None;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(every) => {}
                        _ = token.cancelled() => return None,
                    }
                    Some((Ok::<_, std::io::Error>(f.slice(i..i + 1)), i + 1))
                }
            });
            Response::builder()
                .header(header::CONTENT_TYPE, "image/jpeg")
                .body(Body::from_stream(drip))
                .expect("valid response")
        }
        Behavior::Redirect(to) => (StatusCode::FOUND, [(header::LOCATION, to)]).into_response(),
        Behavior::Oversized(n) => {
            let chunk = 64 * 1024;
            let count = n.div_ceil(chunk);
            let stream = futures_util::stream::iter((0..count).map(move |i| {
                let mut c = vec![0x55u8; chunk.min(n - i * chunk)];
                if i == 0 {
                    c[..3].copy_from_slice(&[0xFF, 0xD8, 0xFF]);
                }
                Ok::<_, std::io::Error>(Bytes::from(c))
            }));
            Response::builder()
                .header(header::CONTENT_TYPE, "image/jpeg")
                .body(Body::from_stream(stream))
                .expect("valid response")
        }
    }
}

/// Counts a request as in flight until it is answered or dropped.
struct InFlight<'a>(&'a Inner);

impl<'a> InFlight<'a> {
    fn enter(cam: &'a Inner) -> InFlight<'a> {
        let now = cam.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        cam.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(cam)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// `None` when the request may pass; otherwise the 401 to send.
fn check_auth(cam: &Inner, method: &Method, uri: &Uri, headers: &HeaderMap) -> Option<Response> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let ok = match &cam.auth {
        FakeAuth::None => return None,
        FakeAuth::Basic { user, pass } => given
            .strip_prefix("Basic ")
            .and_then(|t| {
                base64::engine::general_purpose::STANDARD
                    .decode(t.trim())
                    .ok()
            })
            .is_some_and(|d| d == format!("{user}:{pass}").as_bytes()),
        FakeAuth::Digest { user, pass } => digest_ok(cam, user, pass, method, uri, given),
    };
    if ok {
        return None;
    }
    let challenge = match &cam.auth {
        FakeAuth::Digest { .. } => format!(
            "Digest realm=\"heldar-fake\", qop=\"auth\", nonce=\"{}\", opaque=\"0a1b2c\", algorithm=MD5",
            cam.nonce
        ),
        _ => "Basic realm=\"heldar-fake\"".to_string(),
    };
    Some(
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, challenge)],
            "401 Unauthorized\n",
        )
            .into_response(),
    )
}

fn digest_ok(cam: &Inner, user: &str, pass: &str, method: &Method, uri: &Uri, given: &str) -> bool {
    if !given.starts_with("Digest ") {
        return false;
    }
    let Ok(hdr) = digest_auth::AuthorizationHeader::parse(given) else {
        return false;
    };
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    if hdr.username != user || hdr.nonce != cam.nonce || hdr.uri != path {
        return false;
    }
    let http_method = match *method {
        Method::GET => digest_auth::HttpMethod::GET,
        Method::HEAD => digest_auth::HttpMethod::HEAD,
        _ => return false,
    };
    let ctx =
        digest_auth::AuthContext::new_with_method(user, pass, &hdr.uri, None::<&[u8]>, http_method);
    let mut expected = hdr.clone();
    expected.digest(&ctx);
    expected.response == hdr.response
}
