//! Hosts a camera URL may not point at: cloud instance-metadata endpoints.
//!
//! Whoever may add a camera chooses a URL that Heldar's server then fetches, and a failed capture
//! quotes a short excerpt of what came back (see `docs/security.md`). The one place on a network
//! where such a fetch hands out secrets by itself is a cloud's instance-metadata service (IAM
//! credentials, start-up scripts, tokens), which answers plain unauthenticated GETs from the
//! machine Heldar runs on. No camera lives at those addresses, so Heldar refuses them as camera
//! hosts (unless a setting allows them, below): as an IP literal in the URL, as a name that resolves to one (checked on every
//! connection, redirects included, by the HTTP back-end's resolver), and on redirects.
//!
//! An operator who really runs a camera at one of these addresses sets
//! HELDAR_ALLOW_METADATA_HOSTS=true; every check here is then off.
//!
//! The set is the documented metadata endpoints, not the whole link-local range: cameras without
//! DHCP pick a link-local address themselves (RFC 3927), so `169.254.0.0/16` must stay reachable.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The IPv4 metadata endpoints refused as camera hosts.
///
/// - `169.254.169.254`: AWS, Azure, Google Cloud, Oracle Cloud, OpenStack, DigitalOcean, Hetzner…
/// - `169.254.170.2`: AWS ECS task metadata and credentials.
/// - `169.254.170.23`: AWS EKS Pod Identity agent.
/// - `169.254.0.23`: Tencent Cloud metadata.
/// - `100.100.100.200`: Alibaba Cloud metadata.
/// - `192.0.0.192`: Oracle Cloud's legacy metadata address.
pub const METADATA_V4: [Ipv4Addr; 6] = [
    Ipv4Addr::new(169, 254, 169, 254),
    Ipv4Addr::new(169, 254, 170, 2),
    Ipv4Addr::new(169, 254, 170, 23),
    Ipv4Addr::new(169, 254, 0, 23),
    Ipv4Addr::new(100, 100, 100, 200),
    Ipv4Addr::new(192, 0, 0, 192),
];

/// The IPv6 metadata endpoints refused as camera hosts: AWS's `fd00:ec2::254` (instance
/// metadata) and `fd00:ec2::23` (EKS Pod Identity). IPv4-mapped forms of [`METADATA_V4`]
/// (`::ffff:169.254.169.254`) are refused too.
pub const METADATA_V6: [Ipv6Addr; 2] = [
    Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254),
    Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23),
];

/// Is `ip` a cloud metadata endpoint (see the module docs for the set)?
pub fn is_metadata(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => METADATA_V4.contains(&v4),
        IpAddr::V6(v6) => {
            METADATA_V6.contains(&v6)
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| METADATA_V4.contains(&v4))
        }
    }
}

/// What a checked host is for, so that a refusal names what was refused: a camera's URL, or a
/// webhook's (`ops::webhooks`, `services::webhooks`), which are checked the same way.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum HostUse {
    #[default]
    Camera,
    Webhook,
}

impl HostUse {
    fn noun(self) -> &'static str {
        match self {
            HostUse::Camera => "a camera host",
            HostUse::Webhook => "a webhook URL's host",
        }
    }
}

/// Why `url`'s host may not be used, if it may not: the sentence of a `forbidden_host` error.
/// Only IP literals are judged here; names are judged on resolution ([`MetadataGuard`]).
pub fn refusal(url: &url::Url) -> Option<String> {
    refusal_as(url, HostUse::Camera)
}

/// [`refusal`] for a host used as `used_as`.
pub fn refusal_as(url: &url::Url, used_as: HostUse) -> Option<String> {
    let ip = match url.host()? {
        url::Host::Ipv4(v4) => IpAddr::V4(v4),
        url::Host::Ipv6(v6) => IpAddr::V6(v6),
        url::Host::Domain(d) => {
            // `http://2852039166/` and friends are normalised by the URL parser; a bracket-less
            // textual IP that slipped through is parsed here.
            d.parse::<IpAddr>().ok()?
        }
    };
    is_metadata(ip).then(|| refused(&ip.to_string(), used_as))
}

/// The sentence for a refused metadata host.
pub fn refused(host: &str, used_as: HostUse) -> String {
    format!(
        "{host} is a cloud instance-metadata address, which Heldar never uses as {} \
         (it would hand out the server's cloud credentials)",
        used_as.noun()
    )
}

/// Refuse a stream URL's host that is, or resolves to, a cloud metadata endpoint ([`hosts`]). ffmpeg
/// resolves the name again itself; the check is for configuration mistakes and casual misuse,
/// not for a DNS server that changes its answer between the two lookups.
pub async fn check_stream_host(req: &super::GrabRequest) -> Result<(), super::CaptureError> {
    let forbidden = |why: String| {
        super::CaptureError::ForbiddenHost(format!(
            "camera {}: {}: {why}",
            req.camera,
            req.shown_url()
        ))
    };
    if let Some(why) = refusal(&req.url) {
        return Err(forbidden(why));
    }
    let Some(host) = req.url.host_str() else {
        return Ok(());
    };
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    // A lookup failure is the back-end's to report (as `unreachable`).
    if let Ok(Ok(addrs)) = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        tokio::net::lookup_host((host.as_str(), 0)),
    )
    .await
    {
        for a in addrs {
            if is_metadata(a.ip()) {
                return Err(forbidden(refused(
                    &format!("{host} resolves to {}", a.ip()),
                    HostUse::Camera,
                )));
            }
        }
    }
    Ok(())
}

/// A DNS resolver for the HTTP back-end that drops metadata addresses from every answer, and
/// fails the lookup when nothing else is left, so a camera name that resolves to a metadata
/// endpoint (or a redirect to one) is never connected to.
/// `allow` (HELDAR_ALLOW_METADATA_HOSTS) turns the guard off: every address is kept.
#[derive(Debug, Default, Clone, Copy)]
pub struct MetadataGuard {
    pub allow: bool,
    /// What the looked-up names are for, named in the refusal.
    pub used_as: HostUse,
}

/// The error a refused lookup fails with; the HTTP back-end finds it in the error chain.
#[derive(Debug)]
pub struct ForbiddenHost(pub String);

impl std::fmt::Display for ForbiddenHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ForbiddenHost {}

impl MetadataGuard {
    /// The addresses of `host` a connection may use: all of them when allowed, else those that
    /// are not metadata endpoints — and if none is left, the refusal.
    pub fn keep(
        &self,
        host: &str,
        found: Vec<SocketAddr>,
    ) -> Result<Vec<SocketAddr>, ForbiddenHost> {
        if self.allow {
            return Ok(found);
        }
        let kept: Vec<SocketAddr> = found
            .iter()
            .copied()
            .filter(|a| !is_metadata(a.ip()))
            .collect();
        if kept.is_empty() && !found.is_empty() {
            let why = format!("{host} resolves to {}", found[0].ip());
            return Err(ForbiddenHost(refused(&why, self.used_as)));
        }
        Ok(kept)
    }
}

impl reqwest::dns::Resolve for MetadataGuard {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        let guard = *self;
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let kept = guard
                .keep(&host, found)
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?;
            Ok(Box::new(kept.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guard_drops_metadata_answers_unless_the_setting_allows_them() {
        let metadata: SocketAddr = "169.254.169.254:80".parse().unwrap();
        let camera: SocketAddr = "169.254.10.20:80".parse().unwrap();
        let guard = MetadataGuard::default();
        assert_eq!(
            guard.keep("cam", vec![metadata, camera]).unwrap(),
            vec![camera]
        );
        let e = guard.keep("meta.internal", vec![metadata]).unwrap_err();
        assert!(
            e.0.contains("meta.internal resolves to 169.254.169.254"),
            "{e}"
        );
        let allowed = MetadataGuard {
            allow: true,
            ..Default::default()
        };
        assert_eq!(
            allowed.keep("meta.internal", vec![metadata]).unwrap(),
            vec![metadata]
        );
    }

    #[test]
    fn metadata_endpoints_are_refused_and_cameras_on_link_local_are_not() {
        for u in [
            "http://169.254.169.254/latest/meta-data/",
            "http://[fd00:ec2::254]/latest/meta-data/",
            "http://[::ffff:169.254.169.254]/",
            "http://100.100.100.200/latest/meta-data",
            "http://169.254.170.2/v2/credentials",
            "rtsp://u:p@169.254.169.254:554/stream",
            "http://2852039166/", // 169.254.169.254 as one number
            "http://0xa9.0xfe.0xa9.0xfe/",
        ] {
            let url = url::Url::parse(u).unwrap();
            assert!(refusal(&url).is_some(), "{u} ({url})");
        }
        for u in [
            "http://169.254.10.20/snap.jpg",
            "http://192.168.1.64/ISAPI/Streaming/channels/101/picture",
            "http://[fe80::1]/",
            "http://camera.local/",
        ] {
            assert_eq!(refusal(&url::Url::parse(u).unwrap()), None, "{u}");
        }
    }
}
