//! The HTTP snapshot back-end: `GET` the camera's snapshot URL and validate the JPEG.
//!
//! One pooled `reqwest` client serves every camera whose `tls_verify` is `system` (connections
//! are reused across captures); `off` and each pinned fingerprint get their own client, made on
//! first use and kept, with the certificate verifier of [`super::tls`].
//! Auth follows what the camera asks for: the first request goes without credentials; on a 401
//! the `WWW-Authenticate` challenge decides — Digest (what most cameras want) is preferred, Basic
//! is used when that is all the camera offers. Reolink's snapshot API takes the credentials as
//! query parameters instead. Bodies are capped at `HELDAR_CAPTURE_MAX_BYTES` while streaming.
//! Redirects are followed a few times, only between http and https.
//!
//! Errors never carry the URL from reqwest (it may hold a password); they carry our masked copy.
//!
//! Leniency (what curl, browsers and ffmpeg accept, so Heldar accepts it too; see
//! `docs/compatibility.md`):
//! - response heads that a strict HTTP/1.1 parser refuses: header lines without a name (GoAhead's
//!   bare date line) or with invalid characters are skipped, spaces before a header's colon and
//!   obsolete folded header lines (RFC 9112 §5.2) are accepted; hyper (through httparse) also
//!   reads bare-LF line endings, a status line without a reason phrase and HTTP/1.0 bodies that
//!   end at close;
//! - a body longer than its JPEG: the frame ends at the JPEG's EOI ([`super::jpeg`]);
//! - a body shorter than its `Content-Length` that still holds a complete JPEG, cut by the camera
//!   closing the connection, or followed by silence ([`TAIL_GRACE`]);
//! - an MJPEG stream (`multipart/x-mixed-replace`) at the snapshot URL: the first frame
//!   ([`super::multipart`]);
//! - Digest challenges in any case and spacing, several per 401 ([`super::challenge`]).
//!
//! A response that cannot be parsed at all is `bad_response` (the camera answered), a TLS
//! handshake failure is `tls` with the certificate problem named, and a host that is a cloud
//! metadata endpoint is `forbidden_host` ([`super::hosts`]).

use std::error::Error as _;

use bytes::{Bytes, BytesMut};
use futures_util::future::BoxFuture;
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use reqwest::StatusCode;
use tokio::time::Instant;

use super::challenge::{self, ChallengeError};
use super::hosts;
use super::jpeg::{self, FrameEnd};
use super::multipart::{self, Scan};
use super::tls::{self, Trust};
use super::{CaptureError, Frame, FrameSource, GrabRequest};
use crate::models::Vendor;

/// How long a body that already holds a complete JPEG may stay silent before the capture takes
/// the JPEG and stops reading: for cameras whose `Content-Length` counts bytes they never send
/// and that keep the connection open.
pub const TAIL_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

/// At most this many bytes of a non-JPEG body are quoted in an error (printable text only).
pub const EXCERPT_BYTES: usize = 200;

/// The HTTP snapshot back-end (see the module docs).
pub struct HttpSource {
    /// The pooled client of every `system` camera.
    client: reqwest::Client,
    /// One client per other trust setting (`off`, each pinned fingerprint), made on first use.
    others: std::sync::Mutex<std::collections::HashMap<Trust, reqwest::Client>>,
    /// HELDAR_ALLOW_METADATA_HOSTS: no metadata-host check ([`hosts`]).
    allow_metadata_hosts: bool,
}

/// At most this many per-trust clients are kept; past it the cache starts again (each client is
/// cheap to make; the limit only bounds memory when fingerprints keep changing).
const MAX_TRUST_CLIENTS: usize = 256;

impl HttpSource {
    /// One pooled client for every camera, with tolerant HTTP/1 response parsing, at most five
    /// redirects (http and https only, never to a metadata host) and a resolver that refuses
    /// metadata hosts ([`hosts::MetadataGuard`]).
    ///
    /// # Errors
    /// When the TLS back-end cannot be initialised.
    /// `allow_metadata_hosts` (HELDAR_ALLOW_METADATA_HOSTS) turns the metadata-host checks off.
    pub fn new(allow_metadata_hosts: bool) -> anyhow::Result<HttpSource> {
        Ok(HttpSource {
            client: Self::build(Trust::System, allow_metadata_hosts)?,
            others: Default::default(),
            allow_metadata_hosts,
        })
    }

    /// A client with the shared settings and `trust`'s certificate verifier ([`super::tls`]).
    fn build(trust: Trust, allow_metadata_hosts: bool) -> anyhow::Result<reqwest::Client> {
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 5 {
                attempt.error("too many redirects")
            } else if !matches!(attempt.url().scheme(), "http" | "https") {
                attempt.error("redirect to a non-HTTP scheme")
            } else if let Some(why) =
                hosts::refusal(attempt.url()).filter(|_| !allow_metadata_hosts)
            {
                attempt.error(hosts::ForbiddenHost(why))
            } else {
                attempt.follow()
            }
        });
        let client = reqwest::Client::builder()
            .redirect(redirects)
            .dns_resolver(std::sync::Arc::new(hosts::MetadataGuard {
                allow: allow_metadata_hosts,
                used_as: hosts::HostUse::Camera,
            }))
            .http1_ignore_invalid_headers_in_responses(true)
            .http1_allow_spaces_after_header_name_in_responses(true)
            .http1_allow_obsolete_multiline_headers_in_responses(true)
            .pool_max_idle_per_host(4)
            .pool_idle_timeout(std::time::Duration::from_secs(90))
            .tcp_nodelay(true)
            .user_agent(concat!("heldar/", env!("CARGO_PKG_VERSION")))
            .use_preconfigured_tls(tls::client_config(trust))
            .build()?;
        Ok(client)
    }

    /// The client for `trust`: the shared one for `system`, else a cached per-trust one.
    fn client_for(&self, req: &GrabRequest) -> Result<reqwest::Client, CaptureError> {
        if req.tls == Trust::System {
            return Ok(self.client.clone());
        }
        let mut others = self.others.lock().expect("client cache poisoned");
        if let Some(c) = others.get(&req.tls) {
            return Ok(c.clone());
        }
        let client =
            Self::build(req.tls, self.allow_metadata_hosts).map_err(|e| CaptureError::Tls {
                message: format!(
                    "camera {}: cannot set up TLS for {} ({e})",
                    req.camera,
                    req.shown_url()
                ),
                fingerprint: None,
            })?;
        if others.len() >= MAX_TRUST_CLIENTS {
            others.clear();
        }
        others.insert(req.tls, client.clone());
        Ok(client)
    }

    async fn fetch(&self, req: &GrabRequest) -> Result<Frame, CaptureError> {
        let mut url = req.url.clone();
        let creds = req.credentials();
        // Credentials travel in headers, never in the URL's userinfo.
        let _ = url.set_username("");
        let _ = url.set_password(None);
        if let (Vendor::Reolink, Some((user, pass))) = (req.vendor, &creds) {
            if !url.query_pairs().any(|(k, _)| k == "password") {
                url.query_pairs_mut()
                    .append_pair("user", user)
                    .append_pair("password", pass);
            }
        }
        let shown = req.shown_url();
        if let Some(why) = hosts::refusal(&url).filter(|_| !self.allow_metadata_hosts) {
            return Err(CaptureError::ForbiddenHost(format!(
                "camera {}: {shown}: {why}",
                req.camera
            )));
        }
        let mut resp = self.send(req, &url, None).await?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            let Some((user, pass)) = &creds else {
                return Err(CaptureError::AuthFailed(format!(
                    "camera {}: {shown} requires credentials (HTTP 401) and the camera has none set",
                    req.camera
                )));
            };
            // No credentials were refused yet: a challenge Heldar cannot answer is the camera's
            // response being unusable, not an auth failure (and must not start the auth backoff).
            let auth = authorization(&resp, &url, user, pass).map_err(|e| match e {
                ChallengeError::Unparseable(why) | ChallengeError::Unsupported(why) => {
                    CaptureError::BadResponse(format!("camera {}: {shown}: {why}", req.camera))
                }
                ChallengeError::Unsendable(why) => {
                    CaptureError::NoSource(format!("camera {}: {why}", req.camera))
                }
            })?;
            resp = self.send(req, &url, Some(auth)).await?;
            // A second 401 whose Digest challenge says `stale=true` refused the nonce, not the
            // credentials (RFC 7616 §3.3): answer the fresh nonce once more.
            if resp.status() == StatusCode::UNAUTHORIZED && stale(&resp) {
                if let Ok(again) = authorization(&resp, &url, user, pass) {
                    resp = self.send(req, &url, Some(again)).await?;
                }
            }
        }
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(CaptureError::AuthFailed(format!(
                "camera {}: {shown} rejected the credentials (HTTP {})",
                req.camera,
                status.as_u16()
            )));
        }
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_string());
        if !status.is_success() {
            let said = said(&read_excerpt(req, resp).await);
            return Err(CaptureError::BadResponse(format!(
                "camera {}: {shown} answered HTTP {status}{said}",
                req.camera
            )));
        }
        if let Some(boundary) = content_type
            .as_deref()
            .and_then(multipart::multipart_boundary)
        {
            return read_first_part(req, resp, &shown, boundary.as_deref()).await;
        }
        let body = read_capped(req, resp, &shown).await?;
        Frame::from_jpeg(body.clone()).map_err(|e| {
            CaptureError::BadResponse(format!(
                "camera {}: {shown}: {}",
                req.camera,
                not_a_jpeg(&body, content_type.as_deref(), e.message())
            ))
        })
    }

    async fn send(
        &self,
        req: &GrabRequest,
        url: &url::Url,
        auth: Option<HeaderValue>,
    ) -> Result<reqwest::Response, CaptureError> {
        let mut builder = self
            .client_for(req)?
            .get(url.clone())
            .timeout(remaining(req.deadline));
        if let Some(auth) = auth {
            builder = builder.header(AUTHORIZATION, auth);
        }
        builder.send().await.map_err(|e| classify(req, e))
    }
}

impl FrameSource for HttpSource {
    fn grab<'a>(&'a self, req: &'a GrabRequest) -> BoxFuture<'a, Result<Frame, CaptureError>> {
        Box::pin(self.fetch(req))
    }
}

fn remaining(deadline: Instant) -> std::time::Duration {
    deadline
        .saturating_duration_since(Instant::now())
        .max(std::time::Duration::from_millis(1))
}

/// Every `WWW-Authenticate` value of a 401, as text.
fn challenge_values(resp: &reqwest::Response) -> Vec<String> {
    resp.headers()
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect()
}

/// Does the 401's chosen Digest challenge say `stale=true`?
fn stale(resp: &reqwest::Response) -> bool {
    let values = challenge_values(resp);
    let values: Vec<&str> = values.iter().map(String::as_str).collect();
    matches!(challenge::choose(&values), Ok(challenge::Choice::Digest(d)) if d.stale)
}

/// Answer the camera's challenges ([`challenge::answer`]).
fn authorization(
    resp: &reqwest::Response,
    url: &url::Url,
    user: &str,
    pass: &str,
) -> Result<HeaderValue, ChallengeError> {
    let values = challenge_values(resp);
    let challenges: Vec<&str> = values.iter().map(String::as_str).collect();
    let mut uri = url.path().to_string();
    if let Some(q) = url.query() {
        uri.push('?');
        uri.push_str(q);
    }
    answer_challenges(&challenges, &uri, user, pass)
}

/// The `Authorization` value answering the `WWW-Authenticate` challenges of a 401 for `uri` (the
/// request's path and query): the strongest Digest offered, else Basic (also when no challenge
/// was given); see [`challenge`]. Public for the fuzz targets (`fuzz/`); the camera's header
/// values are untrusted text.
///
/// # Errors
/// [`ChallengeError`] saying why no answer can be given; never quotes the password.
#[doc(hidden)]
pub fn answer_challenges(
    challenges: &[&str],
    uri: &str,
    user: &str,
    pass: &str,
) -> Result<HeaderValue, ChallengeError> {
    challenge::answer(challenges, uri, user, pass)
}

/// A short, printable excerpt of a body for an error message, or how many bytes of what it is.
/// At most [`EXCERPT_BYTES`] bytes of text; control characters become spaces or `?`.
pub fn body_excerpt(body: &[u8]) -> String {
    if body.is_empty() {
        return "an empty body (0 bytes)".into();
    }
    let head = &body[..body.len().min(EXCERPT_BYTES * 2)];
    let text = String::from_utf8_lossy(head);
    let printable = text
        .chars()
        .filter(|c| !c.is_control() || c.is_ascii_whitespace())
        .count();
    if printable * 10 < text.chars().count() * 9 {
        return format!("{} bytes of binary data", body.len());
    }
    let mut flat = String::new();
    for c in text.chars() {
        let c = match c {
            c if c.is_ascii_whitespace() => ' ',
            c if c.is_control() || c == '\u{FFFD}' => '?',
            c => c,
        };
        if c == ' ' && flat.ends_with(' ') {
            continue;
        }
        flat.push(c);
    }
    let cut = challenge::excerpt(&flat, EXCERPT_BYTES);
    format!("{} bytes: \"{cut}\"", body.len())
}

fn said(excerpt: &str) -> String {
    if excerpt.is_empty() {
        String::new()
    } else {
        format!(" ({excerpt})")
    }
}

/// The sentence for a 200 whose body is not a JPEG: the JPEG check that failed, the content type
/// and an excerpt of the body (the camera's "Device busy" XML is what the operator needs).
fn not_a_jpeg(body: &[u8], content_type: Option<&str>, why: &str) -> String {
    let ct = content_type
        .map(|c| challenge::excerpt(c, 60))
        .unwrap_or_else(|| "no content type".into());
    if body.is_empty() {
        return format!("the camera answered 200 ({ct}) with an empty body (0 bytes)");
    }
    if body.starts_with(&[0xFF, 0xD8]) {
        return format!("{why} ({ct}, {} bytes)", body.len());
    }
    format!("{why}; the camera sent {ct}, {}", body_excerpt(body))
}

/// Up to a few KiB of an error response's body, for its excerpt; empty when it cannot be read
/// within a second (the status is what matters).
async fn read_excerpt(req: &GrabRequest, mut resp: reqwest::Response) -> String {
    let limit = std::time::Duration::from_secs(1).min(remaining(req.deadline));
    let mut body = Vec::new();
    let read = async {
        while let Ok(Some(chunk)) = resp.chunk().await {
            body.extend_from_slice(&chunk);
            if body.len() >= 4096 {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(limit, read).await;
    if body.is_empty() {
        String::new()
    } else {
        body_excerpt(&body)
    }
}

/// Read a multipart (MJPEG) body until its first part holds a complete JPEG, then stop (dropping
/// the response closes the connection).
async fn read_first_part(
    req: &GrabRequest,
    mut resp: reqwest::Response,
    shown: &str,
    boundary: Option<&str>,
) -> Result<Frame, CaptureError> {
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let bad =
        |why: String| CaptureError::BadResponse(format!("camera {}: {shown}: {why}", req.camera));
    loop {
        match multipart::first_jpeg(&buf, boundary) {
            Scan::Frame(r) => {
                let frame = buf.freeze().slice(r);
                return Frame::from_jpeg(frame).map_err(|e| bad(e.message().to_string()));
            }
            Scan::Invalid(why) => return Err(bad(why)),
            Scan::NeedMore => {}
        }
        if buf.len() > req.max_bytes {
            return Err(bad(format!(
                "the MJPEG stream gave no complete JPEG within the {} byte limit \
                 (HELDAR_CAPTURE_MAX_BYTES)",
                req.max_bytes
            )));
        }
        match resp.chunk().await {
            Ok(Some(chunk)) => buf.extend_from_slice(&chunk),
            Ok(None) => {
                return Err(bad(format!(
                    "the MJPEG stream ended after {} bytes without a complete JPEG",
                    buf.len()
                )))
            }
            Err(e) if e.is_timeout() => return Err(classify(req, e)),
            Err(e) => {
                return Err(bad(format!(
                    "the MJPEG stream was cut off after {} bytes ({})",
                    buf.len(),
                    chain(&e)
                )))
            }
        }
    }
}

async fn read_capped(
    req: &GrabRequest,
    mut resp: reqwest::Response,
    shown: &str,
) -> Result<Bytes, CaptureError> {
    let too_large = || {
        CaptureError::BadResponse(format!(
            "camera {}: {shown}: the response is larger than the {} byte limit \
             (HELDAR_CAPTURE_MAX_BYTES)",
            req.camera, req.max_bytes
        ))
    };
    if resp
        .content_length()
        .is_some_and(|n| n > req.max_bytes as u64)
    {
        return Err(too_large());
    }
    let mut body = BytesMut::with_capacity(
        resp.content_length()
            .unwrap_or(64 * 1024)
            .min(req.max_bytes as u64) as usize,
    );
    // A body that stalls for TAIL_GRACE, or breaks off, while the bytes so far already hold a
    // complete JPEG is taken as it is: the rest (a vendor trailer, or bytes the Content-Length
    // promised and the camera never sends) is not part of the frame. The JPEG is only walked
    // then, so a camera that sends its body promptly costs no extra scan.
    let complete = |body: &BytesMut| matches!(jpeg::find_end(body), FrameEnd::Complete(_));
    loop {
        let next = match tokio::time::timeout(TAIL_GRACE, resp.chunk()).await {
            Ok(r) => r,
            Err(_) if complete(&body) => return Ok(body.freeze()),
            Err(_) => resp.chunk().await,
        };
        match next {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > req.max_bytes {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body.freeze()),
            // The camera closed the connection short of its Content-Length, after a whole JPEG.
            Err(_) if complete(&body) => return Ok(body.freeze()),
            Err(e) if e.is_timeout() => return Err(classify(req, e)),
            Err(e) => {
                return Err(CaptureError::BadResponse(format!(
                    "camera {}: {shown}: the response was cut off after {} bytes ({})",
                    req.camera,
                    body.len(),
                    chain(&e)
                )))
            }
        }
    }
}

/// Map a transport error to the capture error an operator can act on.
fn classify(req: &GrabRequest, e: reqwest::Error) -> CaptureError {
    let shown = req.shown_url();
    let why = chain(&e);
    if let Some(why) = forbidden(&e) {
        CaptureError::ForbiddenHost(format!("camera {}: {shown}: {why}", req.camera))
    } else if e.is_timeout() {
        CaptureError::Timeout(format!(
            "camera {}: {shown} did not answer in time",
            req.camera
        ))
    } else if let Some(refused) = tls::refusal(&e) {
        tls::refused_error(req, refused)
    } else if let Some(problem) = tls_problem(&why) {
        CaptureError::Tls {
            message: format!(
                "camera {}: the TLS handshake with {shown} failed: {problem} ({why})",
                req.camera
            ),
            fingerprint: None,
        }
    } else if is_parse_error(&why) {
        CaptureError::BadResponse(format!(
            "camera {}: {shown} answered with a response Heldar cannot parse as HTTP ({why})",
            req.camera
        ))
    } else if e.is_connect() {
        CaptureError::Unreachable(format!(
            "camera {}: cannot connect to {shown} ({why})",
            req.camera
        ))
    } else if e.is_redirect() {
        CaptureError::BadResponse(format!(
            "camera {}: {shown}: redirect refused ({why})",
            req.camera
        ))
    } else {
        CaptureError::Unreachable(format!(
            "camera {}: request to {shown} failed ({why})",
            req.camera
        ))
    }
}

/// The metadata-host refusal in `e`'s causes, if any (from the resolver or the redirect policy).
fn forbidden(e: &reqwest::Error) -> Option<String> {
    let mut cur: Option<&dyn std::error::Error> = e.source();
    while let Some(err) = cur {
        if let Some(f) = err.downcast_ref::<hosts::ForbiddenHost>() {
            return Some(f.0.clone());
        }
        cur = err.source();
    }
    None
}

/// Is `why` (an error chain's text) hyper's refusal of a malformed response head? Hyper's parse
/// errors are not exposed through reqwest as a type, so their messages are matched: "invalid
/// HTTP version/status-code/header parsed", "message head is too large", "invalid
/// content-length parsed", "unexpected transfer-encoding parsed".
pub fn is_parse_error(why: &str) -> bool {
    let w = why.to_ascii_lowercase();
    (w.contains("invalid http") && w.contains("parsed"))
        || w.contains("message head is too large")
        || w.contains("invalid content-length parsed")
        || w.contains("transfer-encoding parsed")
}

/// The certificate problem named by a TLS failure's error chain text (rustls' messages), or
/// `None` when `why` is not a TLS failure.
pub fn tls_problem(why: &str) -> Option<&'static str> {
    let w = why.to_ascii_lowercase();
    let tls = w.contains("invalid peer certificate")
        || w.contains("certificate")
        || w.contains("received fatal alert")
        || w.contains("peer is incompatible")
        || w.contains("peer misbehaved")
        || w.contains("invalidcontenttype")
        || w.contains("tls handshake");
    if !tls {
        return None;
    }
    Some(if w.contains("causedasendentity") {
        // What `openssl req -x509` makes by default: a CA certificate serving as its own host's.
        "the camera's certificate is self-signed (a CA certificate used as the camera's own), \
         not issued by an authority Heldar trusts (unknown issuer)"
    } else if w.contains("unknownissuer") || w.contains("unknown issuer") {
        "the camera's certificate is not signed by an authority Heldar trusts (unknown issuer; \
         a self-signed certificate?)"
    } else if w.contains("expired") {
        "the camera's certificate has expired"
    } else if w.contains("notvalidyet") || w.contains("not valid yet") {
        "the camera's certificate is not valid yet (is the camera's or the server's clock wrong?)"
    } else if w.contains("notvalidforname") || w.contains("not valid for name") {
        "the camera's certificate is for another host name than the one in the URL"
    } else if w.contains("invalidcontenttype") || w.contains("corrupt message") {
        "the camera did not answer with TLS (is the URL https:// for a plain-HTTP port?)"
    } else if w.contains("peer is incompatible") || w.contains("handshake") {
        "the camera and Heldar share no TLS version or cipher (Heldar needs TLS 1.2 or newer)"
    } else {
        "the camera's certificate was refused"
    })
}

/// The error and its causes in one line, without the URL reqwest puts in its own message
/// (also the ONVIF client's, `onvif`: the innermost cause, such as "Connection refused", is the
/// part an operator acts on).
pub(crate) fn chain(e: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut cur: Option<&dyn std::error::Error> = e.source();
    while let Some(err) = cur {
        let s = err.to_string();
        if !parts.contains(&s) {
            parts.push(s);
        }
        cur = err.source();
    }
    if parts.is_empty() {
        parts.push(e.to_string());
    }
    crate::camera::mask::mask_text(&parts.join(": "), &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_failures_name_the_certificate_problem() {
        let cases = [
            (
                "client error (Connect): invalid peer certificate: UnknownIssuer",
                "unknown issuer",
            ),
            (
                "invalid peer certificate: certificate expired: verification time 1 (UNIX), but \
                 certificate is not valid after 0 (1 seconds ago)",
                "expired",
            ),
            (
                "invalid peer certificate: certificate not valid for name \"cam.example\"; \
                 certificate is only valid for other.example",
                "another host name",
            ),
            (
                "invalid peer certificate: NotValidForName",
                "another host name",
            ),
            ("invalid peer certificate: NotValidYet", "not valid yet"),
            (
                "invalid peer certificate: Other(OtherError(CaUsedAsEndEntity))",
                "self-signed",
            ),
            (
                "received corrupt message of type InvalidContentType",
                "did not answer with TLS",
            ),
        ];
        for (why, expected) in cases {
            let got = tls_problem(why).unwrap_or_else(|| panic!("{why}: not TLS"));
            assert!(got.contains(expected), "{why}: {got}");
        }
        assert_eq!(tls_problem("tcp connect error: Connection refused"), None);
    }

    #[test]
    fn hyper_parse_errors_are_recognised() {
        for why in [
            "client error (SendRequest): invalid HTTP header parsed",
            "invalid HTTP version parsed",
            "invalid HTTP status-code parsed",
            "message head is too large",
            "invalid content-length parsed",
        ] {
            assert!(is_parse_error(why), "{why}");
        }
        assert!(!is_parse_error(
            "connection closed before message completed"
        ));
    }

    #[test]
    fn excerpts_are_short_printable_and_say_what_they_are() {
        assert_eq!(body_excerpt(b""), "an empty body (0 bytes)");
        let x = body_excerpt(b"<xml>\r\n  <status>Device\tBusy</status>\x07</xml>");
        assert_eq!(x, "44 bytes: \"<xml> <status>Device Busy</status>?</xml>\"");
        let long = "a".repeat(5000);
        let x = body_excerpt(long.as_bytes());
        assert!(x.len() < EXCERPT_BYTES + 30, "{x}");
        assert!(x.ends_with("…\""), "{x}");
        assert_eq!(
            body_excerpt(&[0x89, b'P', b'N', b'G', 0, 1, 2, 3, 4, 5, 0xFF, 0xFE]),
            "12 bytes of binary data"
        );
    }
}
