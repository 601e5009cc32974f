//! From request body to a valid camera: [`CameraSpec::from_create`] and
//! [`CameraSpec::from_patch`] check every field and report the first problem as a [`FieldError`]
//! naming the field and saying what is wrong in a sentence (the API answers it as a 422).
//!
//! PATCH merges the changes into the stored camera and checks the whole result again, so an edit
//! can never produce a camera a create would have refused.

use crate::camera::{fingerprint, vendor};
use crate::models::{
    truncate, CameraCreate, CameraId, CameraPatch, RtspFrameMode, SnapshotSource, TlsVerify, Vendor,
};
pub use crate::models::{CameraSpec, FieldError};

fn err(field: &'static str, message: impl Into<String>) -> FieldError {
    FieldError::new(field, message)
}

impl CameraSpec {
    pub fn from_create(body: CameraCreate) -> Result<CameraSpec, FieldError> {
        let id = CameraId::parse(&body.id).map_err(|m| err("id", m))?;
        let spec = CameraSpec {
            name: body.name.unwrap_or_else(|| id.to_string()),
            id,
            vendor: parse_vendor(body.vendor.as_deref().unwrap_or("generic"))?,
            address: body.address.unwrap_or_default(),
            rtsp_port: port("rtsp_port", body.rtsp_port.unwrap_or(554))?,
            http_port: port("http_port", body.http_port.unwrap_or(80))?,
            username: body.username,
            password: body.password,
            main_stream_url: body.main_stream_url,
            sub_stream_url: body.sub_stream_url,
            snapshot_url: body.snapshot_url,
            snapshot_source: parse_source(body.snapshot_source.as_deref().unwrap_or("auto"))?,
            tls_verify: parse_tls_verify(body.tls_verify.as_deref().unwrap_or("system"))?,
            tls_fingerprint: body.tls_fingerprint,
            rtsp_frame_mode: parse_frame_mode(body.rtsp_frame_mode.as_deref().unwrap_or("exact"))?,
            max_bytes: body.max_gb.map(max_bytes).transpose()?,
        };
        spec.checked(&URL_FIELDS)
    }

    /// The camera after `patch`, checked as a whole.
    pub fn from_patch(camera: &CameraSpec, patch: CameraPatch) -> Result<CameraSpec, FieldError> {
        // The URLs this patch sets: only those give up their credentials (a stored URL written
        // before that rule existed stays as it is until it is edited).
        let given: Vec<&'static str> = [
            ("main_stream_url", &patch.main_stream_url),
            ("sub_stream_url", &patch.sub_stream_url),
            ("snapshot_url", &patch.snapshot_url),
        ]
        .into_iter()
        .filter(|(_, v)| matches!(v, Some(Some(_))))
        .map(|(f, _)| f)
        .collect();
        let spec = CameraSpec {
            id: camera.id.clone(),
            name: patch.name.unwrap_or_else(|| camera.name.clone()),
            vendor: match patch.vendor {
                Some(v) => parse_vendor(&v)?,
                None => camera.vendor,
            },
            address: patch.address.unwrap_or_else(|| camera.address.clone()),
            rtsp_port: match patch.rtsp_port {
                Some(p) => port("rtsp_port", p)?,
                None => camera.rtsp_port,
            },
            http_port: match patch.http_port {
                Some(p) => port("http_port", p)?,
                None => camera.http_port,
            },
            username: patch.username.unwrap_or_else(|| camera.username.clone()),
            password: patch.password.unwrap_or_else(|| camera.password.clone()),
            main_stream_url: patch
                .main_stream_url
                .unwrap_or_else(|| camera.main_stream_url.clone()),
            sub_stream_url: patch
                .sub_stream_url
                .unwrap_or_else(|| camera.sub_stream_url.clone()),
            snapshot_url: patch
                .snapshot_url
                .unwrap_or_else(|| camera.snapshot_url.clone()),
            snapshot_source: match patch.snapshot_source {
                Some(s) => parse_source(&s)?,
                None => camera.snapshot_source,
            },
            tls_verify: match patch.tls_verify {
                Some(v) => parse_tls_verify(&v)?,
                None => camera.tls_verify,
            },
            tls_fingerprint: patch
                .tls_fingerprint
                .unwrap_or_else(|| camera.tls_fingerprint.clone()),
            rtsp_frame_mode: match patch.rtsp_frame_mode {
                Some(m) => parse_frame_mode(&m)?,
                None => camera.rtsp_frame_mode,
            },
            max_bytes: match patch.max_gb {
                Some(gb) => gb.map(max_bytes).transpose()?,
                None => camera.max_bytes,
            },
        };
        spec.checked(&given)
    }

    /// Normalise (trim, empty → none) and check every field, then the camera as a whole. The
    /// URLs named in `given` (those this request sets) give up their credentials first
    /// ([`CameraSpec::take_url_credentials`]).
    fn checked(mut self, given: &[&'static str]) -> Result<CameraSpec, FieldError> {
        self.name = self.name.trim().to_string();
        if self.name.is_empty() || self.name.chars().count() > 200 {
            return Err(err("name", "name must be 1 to 200 characters"));
        }
        if self.name.chars().any(char::is_control) {
            return Err(err("name", "name must not contain control characters"));
        }
        self.address = self.address.trim().to_string();
        check_address(&self.address)?;
        self.username = none_if_empty(self.username);
        if let Some(u) = &self.username {
            if check_username(u).is_err() {
                return Err(err(
                    "username",
                    "username must be at most 128 characters, without ':' or control characters",
                ));
            }
        }
        // A password is kept exactly as given (spaces can be part of it); only "" clears it.
        self.password = self.password.filter(|p| !p.is_empty());
        self.take_url_credentials(given)?;
        if let Some(p) = &self.password {
            if check_password(p).is_err() {
                return Err(err(
                    "password",
                    "password must be at most 256 characters, without control characters",
                ));
            }
        }
        self.main_stream_url = check_url(
            "main_stream_url",
            none_if_empty(self.main_stream_url),
            STREAM_SCHEMES,
        )?;
        self.sub_stream_url = check_url(
            "sub_stream_url",
            none_if_empty(self.sub_stream_url),
            STREAM_SCHEMES,
        )?;
        self.snapshot_url = check_url(
            "snapshot_url",
            none_if_empty(self.snapshot_url),
            HTTP_SCHEMES,
        )?;
        self.tls_fingerprint = match none_if_empty(self.tls_fingerprint) {
            Some(f) => Some(fingerprint::format(&fingerprint::parse(&f).map_err(
                |why| {
                    err(
                        "tls_fingerprint",
                        format!("tls_fingerprint {:?} {why}", truncate(&f, 120)),
                    )
                },
            )?)),
            None => None,
        };
        if self.tls_verify == TlsVerify::Pinned && self.tls_fingerprint.is_none() {
            return Err(err(
                "tls_fingerprint",
                "tls_verify is pinned but no tls_fingerprint is given: give the SHA-256 \
                 fingerprint of the camera's certificate (a failed capture's tls error reports it)",
            ));
        }

        let t = vendor::template_urls(self.vendor, &self.address, self.rtsp_port, self.http_port);
        let has_snapshot = self.snapshot_url.is_some() || t.snapshot.is_some();
        let has_stream = self.main_stream_url.is_some()
            || self.sub_stream_url.is_some()
            || t.main_stream.is_some();
        match self.snapshot_source {
            _ if !has_snapshot && !has_stream => {
                let why = if self.address.is_empty() {
                    "give the camera's address (for a known vendor) or an explicit snapshot_url or main_stream_url"
                } else {
                    "this vendor has no URL template: give an explicit snapshot_url or main_stream_url"
                };
                return Err(err(
                    if self.address.is_empty() {
                        "address"
                    } else {
                        "snapshot_url"
                    },
                    why,
                ));
            }
            SnapshotSource::Http if !has_snapshot => return Err(err(
                "snapshot_source",
                "snapshot_source is http but the camera has no snapshot URL (give snapshot_url)",
            )),
            SnapshotSource::Rtsp | SnapshotSource::Native if !has_stream => {
                return Err(err(
                    "snapshot_source",
                    format!(
                    "snapshot_source is {} but the camera has no stream URL (give main_stream_url)",
                    self.snapshot_source.as_str()
                ),
                ))
            }
            _ => {}
        }
        Ok(self)
    }
}

/// The largest `max_gb`: a petabyte.
pub const MAX_GB: f64 = 1_000_000.0;

/// The smallest `max_gb`: 1 MB, a handful of frames. A smaller cap cannot hold even one full-HD
/// frame, so it would delete every frame the camera stores at the next sweep; a value like
/// `1e-300` (rounded up to a 1-byte cap) is a typo, not a wish.
pub const MIN_GB: f64 = 0.001;

/// `max_gb` (decimal GB, 10^9 bytes, as `units::fmt_bytes` shows sizes) as bytes.
pub fn max_bytes(gb: f64) -> Result<u64, FieldError> {
    if !(MIN_GB..=MAX_GB).contains(&gb) {
        return Err(err(
            "max_gb",
            format!(
                "max_gb {gb} is not a size a camera can be capped at: give decimal gigabytes from \
                 {MIN_GB} (1 MB) to {MAX_GB} (a petabyte; 0.5 is 500 MB), or null for no \
                 per-camera cap"
            ),
        ));
    }
    Ok((gb * 1e9).round() as u64)
}

/// The explicit URL fields, which may carry `user:password@`.
const URL_FIELDS: [&str; 3] = ["main_stream_url", "sub_stream_url", "snapshot_url"];

impl CameraSpec {
    fn url_field(&mut self, field: &str) -> &mut Option<String> {
        match field {
            "main_stream_url" => &mut self.main_stream_url,
            "sub_stream_url" => &mut self.sub_stream_url,
            _ => &mut self.snapshot_url,
        }
    }

    /// Credentials written into a URL (`http://user:pass@host/…`) move into `username` and
    /// `password`, and the URL is kept without them: a camera has one account, kept in one
    /// place, sealed, and sent the way its protocol wants (capture adds it back to an RTSP URL
    /// itself). A field that is empty takes the URL's value; a field that holds the same value
    /// stays; a field that holds a different one refuses the camera with a sentence naming the
    /// URL field, since Heldar cannot know which the operator meant. Nothing here quotes a
    /// password back. Credentials in the query (`?password=`, which some cameras want) are not
    /// userinfo: they stay in the URL, sealed at rest and masked when shown.
    fn take_url_credentials(&mut self, given: &[&'static str]) -> Result<(), FieldError> {
        // The URL the fields' values came from, once one has given them.
        let mut moved_from: Option<&'static str> = None;
        for field in URL_FIELDS.into_iter().filter(|f| given.contains(f)) {
            let Some(raw) = self.url_field(field).as_deref().map(str::trim) else {
                continue;
            };
            // A URL that does not parse, or has no host, is refused later by `check_url`.
            let Ok(mut url) = url::Url::parse(raw) else {
                continue;
            };
            // Nor is one with a scheme this field does not take: that error comes first.
            let schemes = if field == "snapshot_url" {
                HTTP_SCHEMES
            } else {
                STREAM_SCHEMES
            };
            if raw.len() > 2048
                || !schemes.contains(&url.scheme())
                || url.host_str().is_none_or(str::is_empty)
                || (url.username().is_empty() && url.password().is_none())
            {
                continue;
            }
            let decode = |what: &str, s: &str| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8()
                    .map(|c| c.into_owned())
                    .map_err(|_| {
                        err(
                            field,
                            format!("the {what} in {field} is not UTF-8 once percent-decoded"),
                        )
                    })
            };
            let user = decode("user name", url.username())?.trim().to_string();
            let pass = match url.password() {
                Some(p) => Some(decode("password", p)?).filter(|p| !p.is_empty()),
                None => None,
            };
            if user.is_empty() {
                return Err(err(
                    field,
                    format!(
                        "{field} has a password but no user name: give the user name and \
                         password in the username and password fields instead"
                    ),
                ));
            }
            if pass.as_deref() == Some(crate::camera::mask::MASK) {
                return Err(err(
                    field,
                    format!(
                        "the password in {field} is the mask {} (Heldar never shows a stored \
                         password): leave it out of the URL and type the real one in the \
                         password field",
                        crate::camera::mask::MASK
                    ),
                ));
            }
            check_username(&user).map_err(|why| {
                err(
                    field,
                    format!("the user name in {field} is not usable: {why}"),
                )
            })?;
            if let Some(p) = &pass {
                check_password(p).map_err(|why| {
                    err(
                        field,
                        format!("the password in {field} is not usable: {why}"),
                    )
                })?;
            }
            let conflict = self.username.as_ref().is_some_and(|u| *u != user)
                || pass
                    .as_ref()
                    .is_some_and(|p| self.password.as_ref().is_some_and(|q| q != p));
            if conflict {
                let other = match moved_from {
                    Some(other) => format!("those in {other}"),
                    None => "the camera's username and password fields".to_string(),
                };
                return Err(err(
                    field,
                    format!(
                        "{field} carries a user name and password that differ from {other}: a \
                         camera has one account, so give it once, in the username and password \
                         fields, and the URLs without it"
                    ),
                ));
            }
            if self.username.is_none() || (pass.is_some() && self.password.is_none()) {
                moved_from = Some(field);
            }
            self.username = Some(user);
            if pass.is_some() {
                self.password = pass;
            }
            let _ = url.set_username("");
            let _ = url.set_password(None);
            *self.url_field(field) = Some(url.to_string());
        }
        Ok(())
    }
}

/// Why `user` cannot be a camera's user name, if it cannot.
fn check_username(user: &str) -> Result<(), &'static str> {
    if user.chars().count() > 128 || user.contains(':') || user.chars().any(char::is_control) {
        return Err("a user name is at most 128 characters, without ':' or control characters");
    }
    Ok(())
}

/// Why `pass` cannot be a camera's password, if it cannot.
fn check_password(pass: &str) -> Result<(), &'static str> {
    if pass.chars().count() > 256 || pass.chars().any(char::is_control) {
        return Err("a password is at most 256 characters, without control characters");
    }
    Ok(())
}

const STREAM_SCHEMES: &[&str] = &["rtsp", "rtsps", "http", "https"];
const HTTP_SCHEMES: &[&str] = &["http", "https"];

fn none_if_empty(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

fn parse_vendor(v: &str) -> Result<Vendor, FieldError> {
    Vendor::from_db(v).ok_or_else(|| {
        err(
            "vendor",
            format!(
                "unknown vendor {:?}: use one of hikvision, dahua, reolink, amcrest, axis, onvif, generic",
                truncate(v, 40)
            ),
        )
    })
}

fn parse_source(v: &str) -> Result<SnapshotSource, FieldError> {
    SnapshotSource::from_db(v).ok_or_else(|| {
        err(
            "snapshot_source",
            format!(
                "unknown snapshot_source {:?}: use auto, http, rtsp (ffmpeg) or native",
                truncate(v, 40)
            ),
        )
    })
}

fn parse_frame_mode(v: &str) -> Result<RtspFrameMode, FieldError> {
    RtspFrameMode::from_db(v).ok_or_else(|| {
        err(
            "rtsp_frame_mode",
            format!(
                "unknown rtsp_frame_mode {:?}: use exact or keyframe",
                truncate(v, 40)
            ),
        )
    })
}

fn parse_tls_verify(v: &str) -> Result<TlsVerify, FieldError> {
    TlsVerify::from_db(v).ok_or_else(|| {
        err(
            "tls_verify",
            format!(
                "unknown tls_verify {:?}: use system, pinned or off",
                truncate(v, 40)
            ),
        )
    })
}

fn port(field: &'static str, p: i64) -> Result<u16, FieldError> {
    u16::try_from(p).ok().filter(|p| *p > 0).ok_or_else(|| {
        err(
            field,
            format!("{field} must be a port number from 1 to 65535, not {p}"),
        )
    })
}

fn check_address(address: &str) -> Result<(), FieldError> {
    if address.is_empty() {
        return Ok(());
    }
    let bad = || {
        err(
            "address",
            format!(
                "address {:?} is not a host name or IP address (give just the host, e.g. 192.168.1.20, \
                 without scheme, port or path)",
                truncate(address, 80)
            ),
        )
    };
    if address.len() > 253 {
        return Err(bad());
    }
    let bare = address.trim_start_matches('[').trim_end_matches(']');
    if bare.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    // The URL parser reads a name that ends in a number (`99999`, `cam.1`, `010.0.0.1`,
    // `0x7f.1`) as an IPv4 address, or refuses it, and decodes `xn--` labels: accept only names
    // it keeps as written, so the templated URLs go to the address the operator gave.
    let kept = matches!(url::Host::parse(address),
        Ok(url::Host::Domain(d)) if d.eq_ignore_ascii_case(address));
    if address.split('.').all(label_ok) && kept {
        Ok(())
    } else {
        Err(bad())
    }
}

/// An outgoing HTTP URL that is not a camera's (a webhook receiver), checked by the camera URL
/// rules: it parses, is at most 2,048 characters, uses `http` or `https` and has a host; it
/// carries no user name or password (unlike a camera URL, whose credentials are taken out and
/// sealed, such a URL has nowhere safe to keep them). The metadata-host rule is the caller's
/// (`capture::hosts::refusal`).
pub fn check_http_url(field: &'static str, raw: &str) -> Result<url::Url, FieldError> {
    let raw = raw.trim().to_string();
    let checked = check_url(field, Some(raw), &["http", "https"])?.unwrap_or_default();
    let url = url::Url::parse(&checked)
        .map_err(|e| err(field, format!("{field} is not a valid URL ({e})")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(err(
            field,
            format!(
                "{field} must not carry a user name or password ({:?}); receivers check the \
                 signature made with the subscription's secret instead",
                truncate(&crate::camera::mask::mask_url(&checked), 120)
            ),
        ));
    }
    Ok(url)
}

fn check_url(
    field: &'static str,
    value: Option<String>,
    schemes: &[&str],
) -> Result<Option<String>, FieldError> {
    let Some(raw) = value else { return Ok(None) };
    // Quote the URL back masked: it may carry a password.
    let shown = || truncate(&crate::camera::mask::mask_url(&raw), 120);
    if raw.len() > 2048 {
        return Err(err(
            field,
            format!("{field} is longer than 2048 characters"),
        ));
    }
    let url = url::Url::parse(&raw).map_err(|e| {
        err(
            field,
            format!("{field} {:?} is not a valid URL ({e})", shown()),
        )
    })?;
    if !schemes.contains(&url.scheme()) {
        return Err(err(
            field,
            format!(
                "{field} must use one of the schemes {}, not {:?}",
                schemes.join(", "),
                truncate(url.scheme(), 20)
            ),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(err(field, format!("{field} {:?} has no host", shown())));
    }
    Ok(Some(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(json: serde_json::Value) -> Result<CameraSpec, FieldError> {
        CameraSpec::from_create(serde_json::from_value(json).unwrap())
    }

    #[test]
    fn a_vendor_camera_needs_only_an_address() {
        let s = create(
            serde_json::json!({"id": "gate_a", "vendor": "hikvision", "address": "10.0.0.5"}),
        )
        .unwrap();
        assert_eq!(s.name, "gate_a");
        assert_eq!((s.rtsp_port, s.http_port), (554, 80));
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases = [
            (serde_json::json!({"id": "Bad Id", "address": "h"}), "id"),
            (
                serde_json::json!({"id": "a", "vendor": "sony", "address": "h"}),
                "vendor",
            ),
            (
                serde_json::json!({"id": "a", "vendor": "axis", "address": "http://h/"}),
                "address",
            ),
            (
                serde_json::json!({"id": "a", "vendor": "axis", "address": "h", "rtsp_port": 0}),
                "rtsp_port",
            ),
            (
                serde_json::json!({"id": "a", "vendor": "axis", "address": "h", "http_port": 70000}),
                "http_port",
            ),
            (
                serde_json::json!({"id": "a", "snapshot_url": "ftp://h/x.jpg"}),
                "snapshot_url",
            ),
            (
                serde_json::json!({"id": "a", "snapshot_url": "rtsp://h/x"}),
                "snapshot_url",
            ),
            (
                serde_json::json!({"id": "a", "main_stream_url": "file:///etc/passwd"}),
                "main_stream_url",
            ),
            (
                serde_json::json!({"id": "a", "main_stream_url": "not a url"}),
                "main_stream_url",
            ),
            (serde_json::json!({"id": "a"}), "address"),
            (
                serde_json::json!({"id": "a", "vendor": "generic", "address": "h"}),
                "snapshot_url",
            ),
            (
                serde_json::json!({"id": "a", "main_stream_url": "rtsp://h/x", "snapshot_source": "http"}),
                "snapshot_source",
            ),
            (
                serde_json::json!({"id": "a", "address": "h", "vendor": "axis", "name": " "}),
                "name",
            ),
            (
                serde_json::json!({"id": "a", "address": "h", "vendor": "axis", "username": "a:b"}),
                "username",
            ),
            (
                serde_json::json!({"id": "a", "address": "h", "vendor": "axis", "tls_verify": "yes"}),
                "tls_verify",
            ),
            (
                serde_json::json!({"id": "a", "address": "h", "vendor": "axis", "tls_fingerprint": "AB:CD"}),
                "tls_fingerprint",
            ),
            (
                serde_json::json!({"id": "a", "address": "h", "vendor": "axis", "tls_verify": "pinned"}),
                "tls_fingerprint",
            ),
        ];
        for (body, field) in cases {
            let e = create(body.clone()).unwrap_err();
            assert_eq!(e.field, field, "{body} → {e:?}");
            assert!(e.message.len() > 10, "{e:?}");
        }
    }

    #[test]
    fn a_host_name_the_url_parser_would_read_as_a_number_is_refused() {
        // Found by fuzz/camera_spec: "99999" passed as a host name, and the templated URL went
        // to 0.1.134.159.
        for address in ["99999", "010.0.0.1", "0x7f.1", "cam.1", "10.1"] {
            let e = create(serde_json::json!({"id": "a", "vendor": "axis", "address": address}))
                .unwrap_err();
            assert_eq!(e.field, "address", "{address}: {e:?}");
        }
        for address in [
            "Cam-01.local",
            "cam1",
            "10.0.0.5",
            "fe80::1",
            "1cam.example",
        ] {
            create(serde_json::json!({"id": "a", "vendor": "axis", "address": address}))
                .unwrap_or_else(|e| panic!("{address}: {e:?}"));
        }
    }

    #[test]
    fn credentials_in_a_url_move_into_the_fields() {
        let s = create(serde_json::json!({"id": "a",
            "snapshot_url": "http://admin:p%40ss%20w@10.0.0.5:8080/snap.jpg",
            "main_stream_url": "rtsp://admin@10.0.0.5/live"}))
        .unwrap();
        assert_eq!(s.username.as_deref(), Some("admin"));
        assert_eq!(s.password.as_deref(), Some("p@ss w"));
        assert_eq!(
            s.snapshot_url.as_deref(),
            Some("http://10.0.0.5:8080/snap.jpg")
        );
        assert_eq!(s.main_stream_url.as_deref(), Some("rtsp://10.0.0.5/live"));
        // The same credentials in the fields too: the URL is only cleaned.
        let s = create(
            serde_json::json!({"id": "a", "username": "admin", "password": "pw",
            "sub_stream_url": "rtsp://admin:pw@h/sub"}),
        )
        .unwrap();
        assert_eq!(s.sub_stream_url.as_deref(), Some("rtsp://h/sub"));
        // Query credentials are not userinfo: they stay.
        let s = create(
            serde_json::json!({"id": "a", "snapshot_url": "http://h/s.cgi?user=u&password=pw"}),
        )
        .unwrap();
        assert_eq!(
            s.snapshot_url.as_deref(),
            Some("http://h/s.cgi?user=u&password=pw")
        );
        assert_eq!(s.username, None);
    }

    #[test]
    fn credentials_in_a_url_that_differ_from_the_fields_are_refused() {
        for (body, field) in [
            (
                serde_json::json!({"id": "a", "password": "other", "snapshot_url": "http://u:s3cret@h/x"}),
                "snapshot_url",
            ),
            (
                serde_json::json!({"id": "a", "username": "bob", "main_stream_url": "rtsp://u:s3cret@h/x"}),
                "main_stream_url",
            ),
            (
                serde_json::json!({"id": "a", "snapshot_url": "http://u:s3cret@h/x",
                    "main_stream_url": "rtsp://u:other@h/x"}),
                "snapshot_url",
            ),
            (
                serde_json::json!({"id": "a", "snapshot_url": "http://:s3cret@h/x"}),
                "snapshot_url",
            ),
            (
                serde_json::json!({"id": "a", "snapshot_url": "http://u:***@h/x"}),
                "snapshot_url",
            ),
            (
                serde_json::json!({"id": "a", "snapshot_url": "http://u%3Ab:s3cret@h/x"}),
                "snapshot_url",
            ),
            (
                serde_json::json!({"id": "a", "snapshot_url": "http://u:s3%FFcret@h/x"}),
                "snapshot_url",
            ),
        ] {
            let e = create(body.clone()).unwrap_err();
            // Two URLs that disagree: whichever is read second is the one refused.
            assert!(
                e.field == field || e.field == "main_stream_url",
                "{body} → {e:?}"
            );
            assert!(
                !e.message.contains("s3cret") && !e.message.contains("other"),
                "{e:?}"
            );
        }
    }

    #[test]
    fn a_patch_moves_credentials_only_from_the_urls_it_sets() {
        let stored = CameraSpec {
            snapshot_url: Some("http://old:pw@h/x".into()),
            ..create(serde_json::json!({"id": "a", "snapshot_url": "http://h/x"})).unwrap()
        };
        // A patch of the name leaves a stored URL as it is.
        let s = CameraSpec::from_patch(
            &stored,
            serde_json::from_value(serde_json::json!({"name": "A"})).unwrap(),
        )
        .unwrap();
        assert_eq!(s.snapshot_url.as_deref(), Some("http://old:pw@h/x"));
        // A patch that sets it moves them.
        let s = CameraSpec::from_patch(
            &stored,
            serde_json::from_value(serde_json::json!({"snapshot_url": "http://new:pw2@h/y"}))
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            (s.username.as_deref(), s.password.as_deref()),
            (Some("new"), Some("pw2"))
        );
        assert_eq!(s.snapshot_url.as_deref(), Some("http://h/y"));
        // Against stored fields that differ: refused, naming the URL.
        let e = CameraSpec::from_patch(
            &s,
            serde_json::from_value(serde_json::json!({"main_stream_url": "rtsp://new:pw3@h/z"}))
                .unwrap(),
        )
        .unwrap_err();
        assert_eq!(e.field, "main_stream_url");
    }

    #[test]
    fn a_bad_url_is_quoted_back_without_its_password() {
        let e = create(serde_json::json!({"id": "a", "snapshot_url": "gopher://u:s3cret@h/x"}))
            .unwrap_err();
        assert!(!e.message.contains("s3cret"), "{e:?}");
        let e =
            create(serde_json::json!({"id": "a", "snapshot_url": "http://u:s3cret@"})).unwrap_err();
        assert!(!e.message.contains("s3cret"), "{e:?}");
        // Found by fuzz/camera_spec: a space or slash in the password of a broken URL.
        for url in [
            "http://u:s3c ret@",
            "http://u:s3c/ret@",
            "rtsp://u:s3c ret@:99999/x",
        ] {
            let e = create(serde_json::json!({"id": "a", "snapshot_url": url})).unwrap_err();
            assert!(!e.message.contains("s3c"), "{e:?}");
        }
    }
}
