//! The HTTP snapshot back-end: `GET` the camera's snapshot URL and validate the JPEG.
//!
//! One pooled `reqwest` client serves every camera (connections are reused across captures).
//! Auth follows what the camera asks for: the first request goes without credentials; on a 401
//! the `WWW-Authenticate` challenge decides — Digest (what most cameras want) is preferred, Basic
//! is used when that is all the camera offers. Reolink's snapshot API takes the credentials as
//! query parameters instead. Bodies are capped at `HELDAR_CAPTURE_MAX_BYTES` while streaming.
//! Redirects are followed a few times, only between http and https.
//!
//! Errors never carry the URL from reqwest (it may hold a password); they carry our masked copy.

use std::error::Error as _;

use base64::Engine;
use bytes::{Bytes, BytesMut};
use futures_util::future::BoxFuture;
use reqwest::header::{HeaderValue, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::StatusCode;
use tokio::time::Instant;

use super::{CaptureError, Frame, FrameSource, GrabRequest};
use crate::models::Vendor;

pub struct HttpSource {
    client: reqwest::Client,
}

impl HttpSource {
    pub fn new() -> anyhow::Result<HttpSource> {
        let redirects = reqwest::redirect::Policy::custom(|attempt| {
            if attempt.previous().len() >= 5 {
                attempt.error("too many redirects")
            } else if !matches!(attempt.url().scheme(), "http" | "https") {
                attempt.error("redirect to a non-HTTP scheme")
            } else {
                attempt.follow()
            }
        });
        let client = reqwest::Client::builder()
            .redirect(redirects)
            .pool_max_idle_per_host(4)
            .pool_idle_timeout(std::time::Duration::from_secs(90))
            .tcp_nodelay(true)
            .user_agent(concat!("heldar/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(HttpSource { client })
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
        let mut resp = self.send(req, &url, None).await?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            let Some((user, pass)) = &creds else {
                return Err(CaptureError::AuthFailed(format!(
                    "camera {}: {shown} requires credentials (HTTP 401) and the camera has none set",
                    req.camera
                )));
            };
            let auth = authorization(&resp, &url, user, pass).map_err(|why| {
                CaptureError::AuthFailed(format!("camera {}: {shown}: {why}", req.camera))
            })?;
            resp = self.send(req, &url, Some(auth)).await?;
        }
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(CaptureError::AuthFailed(format!(
                "camera {}: {shown} rejected the credentials (HTTP {})",
                req.camera,
                status.as_u16()
            )));
        }
        if !status.is_success() {
            return Err(CaptureError::BadResponse(format!(
                "camera {}: {shown} answered HTTP {status}",
                req.camera
            )));
        }
        let body = read_capped(req, resp, &shown).await?;
        Frame::from_jpeg(body).map_err(|e| {
            CaptureError::BadResponse(format!("camera {}: {shown}: {}", req.camera, e.message()))
        })
    }

    async fn send(
        &self,
        req: &GrabRequest,
        url: &url::Url,
        auth: Option<HeaderValue>,
    ) -> Result<reqwest::Response, CaptureError> {
        let mut builder = self
            .client
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

/// Answer the camera's challenge: Digest if offered, else Basic.
fn authorization(
    resp: &reqwest::Response,
    url: &url::Url,
    user: &str,
    pass: &str,
) -> Result<HeaderValue, String> {
    let challenges: Vec<&str> = resp
        .headers()
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let mut uri = url.path().to_string();
    if let Some(q) = url.query() {
        uri.push('?');
        uri.push_str(q);
    }
    answer_challenges(&challenges, &uri, user, pass)
}

/// The `Authorization` value answering the `WWW-Authenticate` challenges of a 401 for `uri` (the
/// request's path and query): Digest if offered, else Basic (also when no challenge was given).
/// Public for the fuzz targets (`fuzz/`); the camera's header values are untrusted text.
#[doc(hidden)]
pub fn answer_challenges(
    challenges: &[&str],
    uri: &str,
    user: &str,
    pass: &str,
) -> Result<HeaderValue, String> {
    let starts = |c: &&str, scheme: &str| {
        c.as_bytes()
            .get(..scheme.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(scheme.as_bytes()))
    };
    let value = if let Some(c) = challenges.iter().find(|c| starts(c, "digest")) {
        let ctx = digest_auth::AuthContext::new(user, pass, uri);
        let mut prompt = digest_auth::parse(c)
            .map_err(|e| format!("the camera's Digest challenge cannot be parsed ({e})"))?;
        prompt
            .respond(&ctx)
            .map_err(|e| format!("cannot answer the camera's Digest challenge ({e})"))?
            .to_header_string()
    } else if challenges.is_empty() || challenges.iter().any(|c| starts(c, "basic")) {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        format!("Basic {token}")
    } else {
        return Err("the camera asks for an authentication scheme Heldar does not speak".into());
    };
    let mut v = HeaderValue::from_str(&value)
        .map_err(|_| "the credentials cannot be sent in an HTTP header".to_string())?;
    v.set_sensitive(true);
    Ok(v)
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
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > req.max_bytes {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body.freeze()),
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
    if e.is_timeout() {
        CaptureError::Timeout(format!(
            "camera {}: {shown} did not answer in time",
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

/// The error and its causes in one line, without the URL reqwest puts in its own message.
fn chain(e: &reqwest::Error) -> String {
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
