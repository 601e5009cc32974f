//! ONVIF discovery, probing and "add from ONVIF" (docs/onvif.md): the checks of what a person
//! asked for, the judgement of what a device answered (which URIs Heldar may use, which
//! profile it suggests) and the camera made from it through the normal camera create
//! ([`super::cameras::create`], so the credentials are sealed like any camera's).
//!
//! It does not speak the protocol (`crate::onvif` does) and keeps nothing: a probe is asked
//! again for every add. Device failures come back as [`OpError::Onvif`]; bad input as a 422
//! naming the field. Passwords go to the device only as a digest and into the camera sealed;
//! they are in no log line, error or answer (a URI that carries one is cleaned first).

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use tokio::time::Instant;

use super::Ops;
use crate::error::{OpError, OpResult};
use crate::models::onvif::{
    DiscoveredDevice, DiscoveryRequest, DiscoveryResult, OnvifAddRequest, OnvifDevice,
    OnvifProbeRequest, OnvifProbeResult, OnvifProfile, OnvifSuggestion,
};
use crate::models::{CameraCreate, CameraId, CameraView};
use crate::onvif::{self, device, discovery, media, OnvifError, Session};

/// Discovery's default wait.
pub const DEFAULT_WAIT_MS: i64 = 3000;

/// Run a WS-Discovery probe and list the devices that answered, marking those already
/// registered.
pub async fn discover(ops: &Ops, req: DiscoveryRequest) -> OpResult<DiscoveryResult> {
    let wait = req.timeout_ms.unwrap_or(DEFAULT_WAIT_MS);
    if !(100..=10_000).contains(&wait) {
        return Err(OpError::invalid(
            "timeout_ms",
            format!("timeout_ms is {wait}: give 100 to 10000 milliseconds"),
        ));
    }
    let interface = match req.interface.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(s) => {
            let ip: Ipv4Addr = s.parse().map_err(|_| {
                OpError::invalid(
                    "interface",
                    format!(
                        "interface {:?} is not an IPv4 address: give the address of one of this machine's interfaces",
                        crate::models::truncate(s, 64)
                    ),
                )
            })?;
            // Binding tells whether the address is this machine's.
            if std::net::UdpSocket::bind((ip, 0)).is_err() {
                return Err(OpError::invalid(
                    "interface",
                    format!("interface {ip} is not an address of this machine"),
                ));
            }
            Some(ip)
        }
    };
    let subnet = match req.subnet.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(s) => {
            let c = Cidr::parse(s).map_err(|why| OpError::invalid("subnet", why))?;
            // The probe goes out over IPv4 only (docs/onvif.md): an IPv6 block matches nothing.
            if c.net.is_ipv6() {
                return Err(OpError::invalid(
                    "subnet",
                    "discovery probes over IPv4 only: give an IPv4 block like 192.168.1.0/24",
                ));
            }
            Some(c)
        }
    };
    let found = discovery::discover(&discovery::Options {
        wait: Duration::from_millis(wait as u64),
        interface,
        target: discovery::MULTICAST.into(),
    })
    .await?;
    let cameras = super::cameras::for_capture(ops).await?;
    let devices = found
        .into_iter()
        .filter(|f| subnet.as_ref().is_none_or(|c| c.contains(f.address)))
        .map(|f| {
            let address = f.address.to_string();
            let registered_camera_id = cameras
                .iter()
                .find(|(c, _)| camera_is_at(c, f.address))
                .map(|(c, _)| c.id.clone());
            DiscoveredDevice {
                port: f.port(),
                address,
                xaddrs: f.xaddrs,
                name: f.name,
                hardware: f.hardware,
                location: f.location,
                scopes: f.scopes,
                registered_camera_id,
            }
        })
        .collect::<Vec<_>>();
    tracing::info!(devices = devices.len(), wait_ms = wait, "onvif discovery");
    Ok(DiscoveryResult { devices })
}

/// Is this camera the device at `ip`: its address, or the host of one of its URLs?
fn camera_is_at(c: &crate::models::Camera, ip: IpAddr) -> bool {
    let same = |host: &str| {
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|h| h == ip)
    };
    same(&c.address)
        || [&c.snapshot_url, &c.main_stream_url, &c.sub_stream_url]
            .into_iter()
            .flatten()
            .filter_map(|u| url::Url::parse(u).ok())
            .any(|u| u.host_str().is_some_and(same))
}

/// An IPv4 or IPv6 CIDR block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let bad = || {
            format!(
                "subnet {:?} is not a CIDR block: write it like 192.168.1.0/24",
                crate::models::truncate(s, 64)
            )
        };
        let (ip, prefix) = s.split_once('/').ok_or_else(bad)?;
        let net: IpAddr = ip.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(bad());
        }
        Ok(Cidr { net, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - self.prefix as u32).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - self.prefix as u32).unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// The checked target of a probe.
struct Target {
    address: String,
    port: u16,
}

fn check_target(
    address: &str,
    port: Option<i64>,
    username: &str,
    password: &str,
) -> OpResult<Target> {
    let address = address.trim();
    if address.is_empty() || address.len() > 253 {
        return Err(OpError::invalid(
            "address",
            "address is required: the device's host name or IP address (1 to 253 characters)",
        ));
    }
    if address
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '/' | '@' | '?' | '#'))
        || (address.contains(':') && address.parse::<std::net::Ipv6Addr>().is_err())
    {
        return Err(OpError::invalid(
            "address",
            format!(
                "address {:?} is not a host name or IP address (give no scheme, port or path; the port goes in port)",
                crate::models::truncate(address, 80)
            ),
        ));
    }
    let port = match port {
        None => 80,
        Some(p) => u16::try_from(p)
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| OpError::invalid("port", format!("port is {p}: give 1 to 65535")))?,
    };
    if username.chars().count() > 128 || username.chars().any(char::is_control) {
        return Err(OpError::invalid(
            "username",
            "username is at most 128 characters, without control characters",
        ));
    }
    if password.chars().count() > 256 {
        return Err(OpError::invalid(
            "password",
            "password is at most 256 characters",
        ));
    }
    Ok(Target {
        address: address.to_string(),
        port,
    })
}

/// What a probe found, with the device's info for naming a camera.
struct Probed {
    result: OnvifProbeResult,
    /// Which profiles may be used, best first is not implied; see [`suggest`].
    info: device::DeviceInfo,
}

/// Ask the device what it is and where its pictures are (docs/onvif.md, "What is sent").
pub async fn probe(ops: &Ops, req: OnvifProbeRequest) -> OpResult<OnvifProbeResult> {
    let t = check_target(&req.address, req.port, &req.username, &req.password)?;
    Ok(probe_target(ops, &t, &req.username, &req.password)
        .await?
        .result)
}

async fn probe_target(ops: &Ops, t: &Target, username: &str, password: &str) -> OpResult<Probed> {
    let http = onvif::http_client(ops.config.allow_metadata_hosts).map_err(OpError::Internal)?;
    let deadline = Instant::now() + onvif::PROBE_DEADLINE;
    let mut s = Session::new(
        http,
        &t.address,
        t.port,
        username,
        password,
        deadline,
        ops.config.allow_metadata_hosts,
    )?;
    let offset = device::sync_clock(&mut s).await?;
    let info = device::information(&s).await?;
    let media_url = device::media_url(&s)
        .await?
        .unwrap_or_else(|| s.device_url.clone());
    let profiles = media::profiles(&s, &media_url).await?;
    if profiles.is_empty() {
        return Err(OpError::Onvif(OnvifError::Fault(format!(
            "{} answered GetProfiles with no media profile: it has nothing to capture",
            t.address
        ))));
    }
    let mut shown = Vec::with_capacity(profiles.len());
    for p in profiles.iter().take(32) {
        shown.push(judge(ops, &s, &media_url, p, password).await?);
    }
    let suggested = suggest(&shown);
    tracing::info!(
        device = %t.address,
        port = t.port,
        profiles = shown.len(),
        clock_offset_s = offset.num_seconds(),
        suggested = suggested.as_ref().map(|s| s.profile_token.as_str()).unwrap_or("none"),
        "onvif probe"
    );
    Ok(Probed {
        result: OnvifProbeResult {
            device: OnvifDevice {
                manufacturer: info.manufacturer.clone(),
                model: info.model.clone(),
                firmware: info.firmware.clone(),
                serial: info.serial.clone(),
            },
            clock_offset_s: (offset.num_milliseconds() as f64 / 1000.0).round() as i64,
            profiles: shown,
            suggested,
        },
        info,
    })
}

/// One profile's URIs, asked and judged. A failure of one profile's URI requests is that
/// profile's problem, except an auth refusal or the probe's deadline, which end the probe.
async fn judge(
    ops: &Ops,
    s: &Session,
    media_url: &url::Url,
    p: &media::Profile,
    password: &str,
) -> OpResult<OnvifProfile> {
    let mut problems: Vec<String> = Vec::new();
    let fatal = |e: &OnvifError| matches!(e, OnvifError::AuthRefused(_) | OnvifError::Timeout(_));
    let snapshot = match media::snapshot_uri(s, media_url, &p.token).await {
        Ok(u) => u,
        Err(e) if fatal(&e) => return Err(e.into()),
        Err(e) => {
            problems.push(e.to_string());
            None
        }
    };
    let stream = match media::stream_uri(s, media_url, &p.token).await {
        Ok(u) => u,
        Err(e) if fatal(&e) => return Err(e.into()),
        Err(e) => {
            problems.push(e.to_string());
            None
        }
    };
    let allow = ops.config.allow_metadata_hosts;
    let snapshot_uri = snapshot.and_then(|u| {
        usable_uri(&u, &["http", "https"], password, allow)
            .map_err(|why| problems.push(format!("its snapshot URI {why}")))
            .ok()
    });
    let stream_uri = stream.and_then(|u| {
        usable_uri(&u, &["rtsp", "rtsps"], password, allow)
            .map_err(|why| problems.push(format!("its stream URI {why}")))
            .ok()
    });
    if snapshot_uri.is_none() && stream_uri.is_none() && problems.is_empty() {
        problems.push("the device gave neither a snapshot URI nor a stream URI for it".into());
    }
    let encoding = normalise_encoding(&p.encoding);
    let note = (encoding == "H265").then(|| {
        "H.265: Heldar's in-process RTSP reader decodes H.264 only, so captures from this \
         stream run ffmpeg (docs/rtsp.md); its snapshot URI, when there is one, needs neither"
            .to_string()
    });
    Ok(OnvifProfile {
        token: crate::models::truncate(&p.token, 64),
        name: crate::models::truncate(&p.name, 200),
        encoding,
        width: p.width,
        height: p.height,
        snapshot_uri,
        stream_uri,
        problem: (!problems.is_empty()).then(|| {
            format!(
                "{}; this profile is not used",
                crate::models::truncate(&problems.join("; "), 600)
            )
        }),
        note,
    })
}

/// `H264`, `H265`, `JPEG`, `MPEG4` from what devices send (`H.264`, `h265`, `HEVC`…).
fn normalise_encoding(e: &str) -> String {
    let up: String = e
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_uppercase();
    match up.as_str() {
        "H264" | "AVC" => "H264".into(),
        "H265" | "HEVC" => "H265".into(),
        "JPEG" | "MJPEG" => "JPEG".into(),
        _ => crate::models::truncate(e.trim(), 32),
    }
}

/// A URI a device gave, if Heldar may use it: one of `schemes`, with a host that is not a
/// metadata endpoint; returned without credentials (userinfo removed, and any query value equal
/// to the password dropped). Else the sentence why not (the URI is not quoted: it may carry a
/// secret).
fn usable_uri(
    raw: &str,
    schemes: &[&str],
    password: &str,
    allow_metadata: bool,
) -> Result<String, String> {
    let mut u = url::Url::parse(raw.trim()).map_err(|_| "is not a URL".to_string())?;
    if !schemes.contains(&u.scheme()) {
        return Err(format!(
            "has the scheme {}:, which Heldar does not use (only {})",
            crate::models::truncate(u.scheme(), 16),
            schemes.join(" or ")
        ));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err("has no host".into());
    }
    if !allow_metadata {
        if let Some(why) = crate::capture::hosts::refusal(&u) {
            return Err(format!("points at a refused host: {why}"));
        }
    }
    let _ = u.set_username("");
    let _ = u.set_password(None);
    if !password.is_empty() && u.query().is_some() {
        let kept: Vec<(String, String)> = u
            .query_pairs()
            .filter(|(_, v)| v != password)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if kept.is_empty() {
            u.set_query(None);
        } else {
            u.query_pairs_mut().clear().extend_pairs(kept);
        }
    }
    if u.as_str().len() > 2048 {
        return Err("is over 2048 characters".into());
    }
    Ok(u.to_string())
}

fn pixels(p: &OnvifProfile) -> u64 {
    match (p.width, p.height) {
        (Some(w), Some(h)) => w as u64 * h as u64,
        // An unknown size sorts last: it may be the main stream.
        _ => u64::MAX,
    }
}

/// The suggestion rule (docs/onvif.md, "Which profile"): among usable profiles (no problem)
/// with a stream, the smallest-resolution H.264 one (the sub stream: cheapest to decode, and
/// in-process); without one, the smallest of any encoding; without any stream, the first with
/// a snapshot. The snapshot URL is that profile's, else the first usable profile's (a
/// device's snapshot is usually the same picture for every profile).
pub fn suggest(profiles: &[OnvifProfile]) -> Option<OnvifSuggestion> {
    let usable: Vec<&OnvifProfile> = profiles.iter().filter(|p| p.problem.is_none()).collect();
    let with_stream = || usable.iter().copied().filter(|p| p.stream_uri.is_some());
    let chosen = with_stream()
        .filter(|p| p.encoding == "H264")
        .min_by_key(|p| pixels(p))
        .or_else(|| with_stream().min_by_key(|p| pixels(p)))
        .or_else(|| usable.iter().copied().find(|p| p.snapshot_uri.is_some()))?;
    let snapshot_url = chosen
        .snapshot_uri
        .clone()
        .or_else(|| usable.iter().find_map(|p| p.snapshot_uri.clone()));
    Some(OnvifSuggestion {
        profile_token: chosen.token.clone(),
        snapshot_url,
        rtsp_url: chosen.stream_uri.clone(),
    })
}

/// Probe the device, then register it as an `onvif` camera with the chosen profile's URLs
/// (sub stream = the chosen stream, main stream = the largest usable profile's when it is
/// another, snapshot URL when there is one) through the normal camera create.
pub async fn add(ops: &Ops, req: OnvifAddRequest) -> OpResult<CameraView> {
    let t = check_target(&req.address, req.port, &req.username, &req.password)?;
    if let Some(id) = &req.id {
        let id = CameraId::parse(id).map_err(|why| OpError::invalid("id", why))?;
        // A taken id is refused before the device is contacted (and sent the credentials):
        // the probe would be wasted. The create below still decides if one races in meanwhile.
        if super::cameras::camera(ops, &id).await.is_ok() {
            return Err(OpError::Conflict(format!(
                "camera {:?} already exists",
                id.as_str()
            )));
        }
    }
    let probed = probe_target(ops, &t, &req.username, &req.password).await?;
    let profiles = &probed.result.profiles;
    let chosen = match req.profile_token.as_deref() {
        Some(token) => {
            let p = profiles.iter().find(|p| p.token == token).ok_or_else(|| {
                OpError::invalid(
                    "profile_token",
                    format!(
                        "the device has no profile {:?}; it has {}",
                        crate::models::truncate(token, 64),
                        profiles
                            .iter()
                            .map(|p| p.token.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })?;
            if let Some(problem) = &p.problem {
                return Err(OpError::invalid(
                    "profile_token",
                    format!("profile {:?} cannot be used: {problem}", p.token),
                ));
            }
            OnvifSuggestion {
                profile_token: p.token.clone(),
                snapshot_url: p.snapshot_uri.clone(),
                rtsp_url: p.stream_uri.clone(),
            }
        }
        None => probed.result.suggested.clone().ok_or_else(|| {
            OpError::Unprocessable {
                code: "no_usable_profile",
                message: format!(
                    "{} has no profile Heldar can use (each profile's problem is in the probe's answer)",
                    t.address
                ),
                field: None,
            }
        })?,
    };
    let main = profiles
        .iter()
        .filter(|p| p.problem.is_none() && p.stream_uri.is_some())
        .max_by_key(|p| match (p.width, p.height) {
            (Some(w), Some(h)) => w as u64 * h as u64,
            _ => 0,
        })
        .and_then(|p| p.stream_uri.clone())
        .filter(|m| Some(m) != chosen.rtsp_url.as_ref());
    let name = req
        .name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| default_name(&probed.info, &t.address));
    let id = match req.id.clone() {
        Some(id) => id,
        None => default_id(&probed.info, &t.address),
    };
    let body = CameraCreate {
        id,
        name: Some(name),
        vendor: Some("onvif".into()),
        address: Some(t.address.clone()),
        http_port: Some(t.port as i64),
        username: (!req.username.is_empty()).then(|| req.username.clone()),
        password: (!req.password.is_empty()).then(|| req.password.clone()),
        main_stream_url: main,
        sub_stream_url: chosen.rtsp_url.clone(),
        snapshot_url: chosen.snapshot_url.clone(),
        ..CameraCreate::default()
    };
    let view = super::cameras::create(ops, body).await?;
    tracing::info!(camera = %view.id, device = %t.address, profile = %chosen.profile_token, "camera added from onvif");
    Ok(view)
}

fn default_name(info: &device::DeviceInfo, address: &str) -> String {
    let maker_model = format!("{} {}", info.manufacturer.trim(), info.model.trim());
    let maker_model = maker_model.trim();
    let base = if maker_model.is_empty() {
        "ONVIF camera"
    } else {
        maker_model
    };
    let name: String = format!("{base} at {address}")
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    crate::models::truncate(&name, 190)
}

/// `{model}-{address}` as a slug (`ipc-123-192-168-1-64`), 63 characters at most.
fn default_id(info: &device::DeviceInfo, address: &str) -> String {
    let base = if info.model.trim().is_empty() {
        "onvif"
    } else {
        info.model.trim()
    };
    let mut out = String::new();
    for c in format!("{base}-{address}").chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let out: String = out.trim_end_matches('-').chars().take(63).collect();
    let out = out.trim_end_matches('-').to_string();
    if out.is_empty() {
        "onvif".into()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(token: &str, enc: &str, w: u32, h: u32, stream: bool) -> OnvifProfile {
        OnvifProfile {
            token: token.into(),
            name: token.into(),
            encoding: enc.into(),
            width: Some(w),
            height: Some(h),
            snapshot_uri: Some(format!("http://cam/{token}.jpg")),
            stream_uri: stream.then(|| format!("rtsp://cam/{token}")),
            problem: None,
            note: None,
        }
    }

    #[test]
    fn the_smallest_h264_profile_is_suggested_and_problems_never_are() {
        let mut ps = vec![
            profile("main", "H264", 1920, 1080, true),
            profile("sub", "H264", 640, 360, true),
            profile("h265small", "H265", 320, 180, true),
        ];
        let s = suggest(&ps).unwrap();
        assert_eq!(s.profile_token, "sub");
        assert_eq!(s.rtsp_url.as_deref(), Some("rtsp://cam/sub"));
        ps[1].problem = Some("bad".into());
        assert_eq!(suggest(&ps).unwrap().profile_token, "main");
        ps[0].problem = Some("bad".into());
        assert_eq!(suggest(&ps).unwrap().profile_token, "h265small");
        ps[2].problem = Some("bad".into());
        assert!(suggest(&ps).is_none());
    }

    #[test]
    fn uris_lose_their_credentials_and_bad_schemes_are_refused() {
        assert_eq!(
            usable_uri(
                "rtsp://admin:pw@10.0.0.5/s?user=admin&pass=pw",
                &["rtsp"],
                "pw",
                false
            )
            .unwrap(),
            "rtsp://10.0.0.5/s?user=admin"
        );
        let e = usable_uri("file:///etc/passwd", &["http", "https"], "", false).unwrap_err();
        assert!(e.contains("scheme file:"), "{e}");
        assert!(usable_uri("http://169.254.169.254/x", &["http"], "", false).is_err());
        assert!(usable_uri("http://169.254.169.254/x", &["http"], "", true).is_ok());
    }

    #[test]
    fn cidr_blocks_filter_addresses() {
        let c = Cidr::parse("192.168.1.0/24").unwrap();
        assert!(c.contains("192.168.1.77".parse().unwrap()));
        assert!(!c.contains("192.168.2.1".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("10.0.0.0").is_err());
    }

    #[test]
    fn default_ids_are_slugs() {
        let info = device::DeviceInfo {
            model: "IPC-HFW 2431".into(),
            ..Default::default()
        };
        let id = default_id(&info, "192.168.1.64");
        assert_eq!(id, "ipc-hfw-2431-192-168-1-64");
        assert!(CameraId::parse(&id).is_ok());
        assert!(CameraId::parse(&default_id(&device::DeviceInfo::default(), "::1")).is_ok());
    }
}
