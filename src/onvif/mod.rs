//! ONVIF, the client side: find cameras on the local network ([`discovery`], WS-Discovery over
//! UDP) and ask one for what it is and where its pictures are ([`device`]: the clock, the
//! maker's information, the media service's address; [`media`]: the profiles, their snapshot
//! and stream URIs), over SOAP ([`soap`]: envelopes, the WS-Security UsernameToken, a reader
//! that refuses entity declarations).
//!
//! It owns the protocol only: no database, no camera registry, no decision about which profile a
//! camera uses (`ops::onvif` does that). Every call is bounded: [`REQUEST_TIMEOUT`] per request,
//! the [`Session`]'s deadline for the whole probe, [`MAX_RESPONSE_BYTES`] per answer, no
//! redirects, and the camera-host rules of `capture::hosts` (metadata endpoints refused). It
//! fails with an [`OnvifError`] whose sentence names the operation that failed; the password
//! appears in none of them (only its digest is ever sent).

pub mod device;
pub mod discovery;
pub mod media;
pub mod soap;

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use tokio::time::Instant;

use crate::capture::hosts;

/// Largest answer read from a device: 1 MiB. A camera's GetProfiles is a few kilobytes; the cap
/// bounds what a hostile or broken device can make Heldar hold, and is checked while the body
/// streams in (a `Content-Length` is not trusted).
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// How long one SOAP request may take, connection included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a whole probe (clock, information, capabilities, profiles and each profile's URIs)
/// may take.
pub const PROBE_DEADLINE: Duration = Duration::from_secs(20);

/// What went wrong talking to a device. Each sentence names the device's address and the ONVIF
/// operation; none carries a password.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OnvifError {
    /// No connection, or the connection broke.
    #[error("{0}")]
    Unreachable(String),
    /// No answer in time (a request, or the whole probe).
    #[error("{0}")]
    Timeout(String),
    /// The device refused the user name or password.
    #[error("{0}")]
    AuthRefused(String),
    /// The answer is not XML Heldar reads (malformed, entities, too deep).
    #[error("{0}")]
    BadXml(String),
    /// The device answered with a SOAP fault or an HTTP error other than an auth refusal.
    #[error("{0}")]
    Fault(String),
    /// The answer is over [`MAX_RESPONSE_BYTES`].
    #[error("{0}")]
    TooLarge(String),
    /// The address is a host Heldar never contacts (a cloud metadata endpoint).
    #[error("{0}")]
    ForbiddenHost(String),
}

impl OnvifError {
    /// The machine code of the API's error body.
    pub fn code(&self) -> &'static str {
        match self {
            OnvifError::Unreachable(_) => "unreachable",
            OnvifError::Timeout(_) => "timeout",
            OnvifError::AuthRefused(_) => "auth_failed",
            OnvifError::BadXml(_) => "bad_xml",
            OnvifError::Fault(_) => "onvif_fault",
            OnvifError::TooLarge(_) => "response_too_large",
            OnvifError::ForbiddenHost(_) => "forbidden_host",
        }
    }
}

/// The HTTP client of ONVIF calls: no redirects (a SOAP endpoint has no reason to move), the
/// metadata-host resolver of camera captures, Heldar's user agent.
pub fn http_client(allow_metadata_hosts: bool) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(std::sync::Arc::new(hosts::MetadataGuard {
            allow: allow_metadata_hosts,
            // An ONVIF device is a camera: its refusal reads as a camera host's.
            used_as: hosts::HostUse::Camera,
        }))
        .connect_timeout(REQUEST_TIMEOUT)
        .user_agent(concat!("heldar/", env!("CARGO_PKG_VERSION")))
        .build()?)
}

/// One conversation with one device: where it is, who we are, how far its clock is from ours,
/// and when the whole conversation must end.
pub struct Session {
    http: reqwest::Client,
    /// The device service, `http://{address}:{port}/onvif/device_service`.
    pub device_url: url::Url,
    /// What the person typed as the address (it names the device in sentences).
    pub address: String,
    username: String,
    password: String,
    /// The device's clock minus ours, added to `Created` (set by [`device::sync_clock`]).
    pub offset: TimeDelta,
    deadline: Instant,
    allow_metadata_hosts: bool,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("device_url", &self.device_url.as_str())
            .field("username", &self.username)
            .field("offset", &self.offset)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A session with the device at `address:port` (host name or IP, no scheme), ending at
    /// `deadline`.
    ///
    /// # Errors
    /// `ForbiddenHost` for a metadata endpoint; `Unreachable` for an address that makes no URL.
    pub fn new(
        http: reqwest::Client,
        address: &str,
        port: u16,
        username: &str,
        password: &str,
        deadline: Instant,
        allow_metadata_hosts: bool,
    ) -> Result<Session, OnvifError> {
        let host = if address.contains(':') && !address.starts_with('[') {
            format!("[{address}]")
        } else {
            address.to_string()
        };
        let device_url = url::Url::parse(&format!("http://{host}:{port}/onvif/device_service"))
            .map_err(|e| {
                OnvifError::Unreachable(format!("{address:?} is not a host name or address: {e}"))
            })?;
        if !allow_metadata_hosts {
            if let Some(why) = hosts::refusal(&device_url) {
                return Err(OnvifError::ForbiddenHost(why));
            }
        }
        Ok(Session {
            http,
            device_url,
            address: address.to_string(),
            username: username.to_string(),
            password: password.to_string(),
            offset: TimeDelta::zero(),
            deadline,
            allow_metadata_hosts,
        })
    }

    /// The device's time now, as Heldar reckons it.
    pub fn device_now(&self) -> DateTime<Utc> {
        Utc::now() + self.offset
    }

    /// A service address the device gave (GetCapabilities): kept only if it is http(s), with
    /// the host replaced by the address Heldar reached the device at (devices behind NAT, or
    /// with a stale address, report hosts Heldar cannot or should not reach; the port and path
    /// are what identify the service).
    pub fn service_url(&self, xaddr: &str) -> Option<url::Url> {
        let mut u = url::Url::parse(xaddr.trim()).ok()?;
        if !matches!(u.scheme(), "http" | "https") {
            return None;
        }
        u.set_host(self.device_url.host_str()).ok()?;
        let _ = u.set_username("");
        let _ = u.set_password(None);
        Some(u)
    }

    /// Call `operation` at `url` and return the first element inside the answer's Body. With
    /// `auth`, the request carries a UsernameToken stamped with the device's time.
    pub async fn call(
        &self,
        url: &url::Url,
        operation: &str,
        auth: bool,
        body: soap::BodyWriter<'_>,
    ) -> Result<soap::Element, OnvifError> {
        // The address with the port of this request (a media service may sit on another port
        // than the device service): what an operator checks first when a call fails.
        let who = &match (url.host_str(), url.port_or_known_default()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            _ => self.address.clone(),
        };
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(OnvifError::Timeout(format!(
                "the ONVIF probe of {who} ran out of time ({} s) before {operation}",
                PROBE_DEADLINE.as_secs()
            )));
        }
        // No user name: no WS-Security header (a device open to anyone).
        let token = (auth && !self.username.is_empty()).then(|| {
            let mut nonce = [0u8; 16];
            rand::Rng::fill(&mut rand::thread_rng(), &mut nonce[..]);
            soap::UsernameToken {
                username: &self.username,
                password: &self.password,
                nonce,
                created: self.device_now().to_rfc3339_opts(SecondsFormat::Secs, true),
            }
        });
        let envelope = soap::envelope(token.as_ref(), body);
        if !self.allow_metadata_hosts {
            if let Some(why) = hosts::refusal(url) {
                return Err(OnvifError::ForbiddenHost(why));
            }
        }
        let timeout = left.min(REQUEST_TIMEOUT);
        let work = async {
            let resp = self
                .http
                .post(url.clone())
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/soap+xml; charset=utf-8",
                )
                .body(envelope)
                .send()
                .await
                .map_err(|e| self.transport_error(operation, &e))?;
            let status = resp.status();
            let bytes = read_capped(resp, operation, who).await?;
            Ok::<_, OnvifError>((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(timeout, work).await.map_err(|_| {
            OnvifError::Timeout(format!(
                "{who} did not answer {operation} within {} ms",
                timeout.as_millis()
            ))
        })??;
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(self.auth_refused(operation));
        }
        // An error status with a body that is no SOAP at all (a web server's HTML page, with or
        // without a DOCTYPE, well-formed or not) says "not an ONVIF service here", not "bad
        // XML": nothing of it was expanded either way.
        let not_soap = || {
            OnvifError::Fault(format!(
                "{who} answered {operation} at {} with HTTP {status} and no SOAP answer: is \
                 this the device's ONVIF service (its address and port)?",
                url.path()
            ))
        };
        let root = match soap::parse(&bytes) {
            Ok(root) => root,
            Err(_) if !status.is_success() => return Err(not_soap()),
            Err(e) => return Err(bad_xml(who, operation, &e)),
        };
        let body = match root.find("Body") {
            Some(body) => body,
            None if !status.is_success() => return Err(not_soap()),
            None => {
                return Err(OnvifError::BadXml(format!(
                    "the device answered with XML Heldar cannot read: {who}'s answer to \
                     {operation} has no SOAP Body"
                )))
            }
        };
        if let Some(fault) = body.child("Fault") {
            return Err(self.fault(operation, fault));
        }
        if !status.is_success() {
            return Err(OnvifError::Fault(format!(
                "{who} answered {operation} with HTTP {status}"
            )));
        }
        body.children.first().cloned().ok_or_else(|| {
            OnvifError::BadXml(format!(
                "the device answered with XML Heldar cannot read: {who}'s answer to {operation} has an empty Body"
            ))
        })
    }

    fn auth_refused(&self, operation: &str) -> OnvifError {
        OnvifError::AuthRefused(format!(
            "{} refused the user name or password (at {operation}); check them, and that the \
             user is an ONVIF user on the camera (many cameras keep ONVIF users apart from web users)",
            self.address
        ))
    }

    fn fault(&self, operation: &str, fault: &soap::Element) -> OnvifError {
        // SOAP 1.2: Code/Value, Code/Subcode/Value…, Reason/Text; SOAP 1.1: faultcode, faultstring.
        let mut codes = Vec::new();
        let mut code = fault.child("Code");
        while let Some(c) = code {
            if let Some(v) = c.text_at(&["Value"]) {
                codes.push(v.to_string());
            }
            code = c.child("Subcode");
        }
        if let Some(v) = fault.text_at(&["faultcode"]) {
            codes.push(v.to_string());
        }
        let reason = fault
            .text_at(&["Reason", "Text"])
            .or_else(|| fault.text_at(&["faultstring"]))
            .unwrap_or("no reason given");
        let auth = codes.iter().any(|c| {
            let c = c.to_ascii_lowercase();
            c.ends_with("notauthorized") || c.ends_with("failedauthentication")
        }) || reason.to_ascii_lowercase().contains("not authorized");
        if auth {
            return self.auth_refused(operation);
        }
        OnvifError::Fault(format!(
            "{} answered {operation} with a SOAP fault: {} ({})",
            self.address,
            crate::models::truncate(reason, 200),
            crate::models::truncate(&codes.join(" / "), 200)
        ))
    }

    fn transport_error(&self, operation: &str, e: &reqwest::Error) -> OnvifError {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
        while let Some(s) = source {
            if let Some(f) = s.downcast_ref::<hosts::ForbiddenHost>() {
                return OnvifError::ForbiddenHost(f.0.clone());
            }
            source = s.source();
        }
        if e.is_timeout() {
            return OnvifError::Timeout(format!(
                "{} did not answer {operation} in time",
                self.address
            ));
        }
        // reqwest's own message names the URL; ours names the address and port only (the URL
        // holds no secret here, but one shape of sentence is easier to read), then every cause
        // down to the one a person can act on ("Connection refused", "No route to host").
        OnvifError::Unreachable(format!(
            "Heldar could not reach {} for {operation}: {}",
            self.device_url.authority(),
            crate::models::truncate(&crate::capture::http::chain(e), 300)
        ))
    }
}

fn bad_xml(who: &str, operation: &str, e: &soap::XmlError) -> OnvifError {
    OnvifError::BadXml(format!(
        "the device answered with XML Heldar cannot read: {who}'s answer to {operation}: {e}"
    ))
}

/// Read a body, refusing it as soon as it passes [`MAX_RESPONSE_BYTES`].
async fn read_capped(
    mut resp: reqwest::Response,
    operation: &str,
    who: &str,
) -> Result<Vec<u8>, OnvifError> {
    let too_large = || {
        OnvifError::TooLarge(format!(
            "{who}'s answer to {operation} is over {} KiB, the most Heldar reads from a device; refused",
            MAX_RESPONSE_BYTES / 1024
        ))
    };
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_RESPONSE_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut out = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(c)) => {
                if out.len() + c.len() > MAX_RESPONSE_BYTES {
                    return Err(too_large());
                }
                out.extend_from_slice(&c);
            }
            Ok(None) => return Ok(out),
            Err(e) => {
                return Err(OnvifError::Unreachable(format!(
                    "{who}'s answer to {operation} broke off: {}",
                    crate::models::truncate(
                        &std::error::Error::source(&e)
                            .map(|s| s.to_string())
                            .unwrap_or_else(|| e.to_string()),
                        200
                    )
                )))
            }
        }
    }
}
