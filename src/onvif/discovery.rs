//! WS-Discovery (the ONVIF flavour): send one Probe for `dn:NetworkVideoTransmitter` to the
//! multicast group 239.255.255.250:3702 and collect the ProbeMatches that arrive before the
//! wait ends.
//!
//! The Probe is sent twice (SOAP-over-UDP's retransmission, same MessageID: UDP may drop one),
//! from one socket bound to an ephemeral port (on the chosen interface's address when one is
//! given, which also picks the interface the multicast leaves by). Answers are read from that
//! socket only: a ProbeMatch whose `RelatesTo` names another probe is ignored, as is anything
//! that is not XML Heldar reads (a device that answers badly is skipped, not fatal). At most
//! [`MAX_DEVICES`] devices are kept. Multicast reaches only the local network segment: routers
//! do not forward it (docs/onvif.md).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use super::soap;
use super::OnvifError;

/// The WS-Discovery multicast group and port.
pub const MULTICAST: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(239, 255, 255, 250), 3702);

/// Most devices one discovery returns.
pub const MAX_DEVICES: usize = 1024;

const NS_ADDRESSING: &str = "http://schemas.xmlsoap.org/ws/2004/08/addressing";
const NS_DISCOVERY: &str = "http://schemas.xmlsoap.org/ws/2005/04/discovery";
const NS_NETWORK_WSDL: &str = "http://www.onvif.org/ver10/network/wsdl";
const TO_DISCOVERY: &str = "urn:schemas-xmlsoap-org:ws:2005:04:discovery";
const ACTION_PROBE: &str = "http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe";

/// One device that answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Where the answer came from.
    pub address: IpAddr,
    /// The device service addresses it gave.
    pub xaddrs: Vec<String>,
    /// Its scope URIs, as sent.
    pub scopes: Vec<String>,
    /// From the `onvif://www.onvif.org/name/…`, `…/hardware/…`, `…/location/…` scopes
    /// (percent-decoded; several values joined with a space).
    pub name: Option<String>,
    pub hardware: Option<String>,
    pub location: Option<String>,
}

impl Found {
    /// The port of its device service: that of the first XAddr at the address it answered from,
    /// else of the first XAddr, else 80.
    pub fn port(&self) -> u16 {
        let parsed: Vec<url::Url> = self
            .xaddrs
            .iter()
            .filter_map(|x| url::Url::parse(x).ok())
            .collect();
        let at_address = parsed.iter().find(|u| {
            u.host_str()
                .map(|h| h.trim_start_matches('[').trim_end_matches(']'))
                .and_then(|h| h.parse::<IpAddr>().ok())
                == Some(self.address)
        });
        at_address
            .or(parsed.first())
            .and_then(|u| u.port_or_known_default())
            .unwrap_or(80)
    }
}

/// Where and how long to probe.
#[derive(Debug, Clone)]
pub struct Options {
    /// How long to collect answers.
    pub wait: Duration,
    /// The local interface's address to send from (and by); `None`: the system's default route.
    pub interface: Option<Ipv4Addr>,
    /// Where the Probe goes: [`MULTICAST`] outside tests.
    pub target: SocketAddr,
}

/// The Probe message with `message_id` (`urn:uuid:…`).
pub fn probe_message(message_id: &str) -> Vec<u8> {
    let mut w = quick_xml::Writer::new(Vec::with_capacity(768));
    let _ = w
        .create_element("s:Envelope")
        .with_attribute(("xmlns:s", soap::NS_SOAP))
        .with_attribute(("xmlns:a", NS_ADDRESSING))
        .with_attribute(("xmlns:d", NS_DISCOVERY))
        .with_attribute(("xmlns:dn", NS_NETWORK_WSDL))
        .write_inner_content(|w| {
            w.create_element("s:Header").write_inner_content(|w| {
                soap::text_element(w, "a:MessageID", message_id)?;
                soap::text_element(w, "a:To", TO_DISCOVERY)?;
                soap::text_element(w, "a:Action", ACTION_PROBE)
            })?;
            w.create_element("s:Body").write_inner_content(|w| {
                w.create_element("d:Probe").write_inner_content(|w| {
                    soap::text_element(w, "d:Types", "dn:NetworkVideoTransmitter")
                })?;
                Ok(())
            })?;
            Ok(())
        });
    w.into_inner()
}

/// The ProbeMatches of one datagram from `from`, if it answers `message_id`.
pub fn parse_matches(bytes: &[u8], from: IpAddr, message_id: &str) -> Vec<Found> {
    let Ok(root) = soap::parse(bytes) else {
        return Vec::new();
    };
    if let Some(rel) = root.find("RelatesTo") {
        if rel.text != message_id {
            return Vec::new();
        }
    }
    let Some(matches) = root.find("ProbeMatches") else {
        return Vec::new();
    };
    matches
        .children_named("ProbeMatch")
        .map(|m| {
            let split = |name: &str| -> Vec<String> {
                m.text_at(&[name])
                    .map(|t| t.split_whitespace().map(str::to_string).collect())
                    .unwrap_or_default()
            };
            let scopes = split("Scopes");
            let scope = |kind: &str| {
                let prefix = format!("onvif://www.onvif.org/{kind}/");
                let values: Vec<String> = scopes
                    .iter()
                    .filter_map(|s| s.strip_prefix(&prefix))
                    .map(|v| {
                        percent_encoding::percent_decode_str(v)
                            .decode_utf8_lossy()
                            .replace('_', " ")
                            .trim()
                            .to_string()
                    })
                    .filter(|v| !v.is_empty())
                    .collect();
                (!values.is_empty()).then(|| crate::models::truncate(&values.join(" "), 200))
            };
            Found {
                address: from,
                xaddrs: split("XAddrs").into_iter().take(16).collect(),
                name: scope("name"),
                hardware: scope("hardware"),
                location: scope("location"),
                scopes: scopes.into_iter().take(64).collect(),
            }
        })
        .collect()
}

/// Probe and collect answers for `opts.wait` (see the module docs). One device per address.
///
/// # Errors
/// `Unreachable` when the socket cannot be made or the probe cannot be sent (no such interface
/// address, no route for multicast).
pub async fn discover(opts: &Options) -> Result<Vec<Found>, OnvifError> {
    let socket = socket(opts)?;
    let message_id = format!("urn:uuid:{}", uuid::Uuid::new_v4());
    let probe = probe_message(&message_id);
    for _ in 0..2 {
        socket.send_to(&probe, opts.target).await.map_err(|e| {
            OnvifError::Unreachable(format!(
                "the discovery probe could not be sent to {}: {e}",
                opts.target
            ))
        })?;
    }
    let mut found: BTreeMap<IpAddr, Found> = BTreeMap::new();
    let end = tokio::time::Instant::now() + opts.wait;
    let mut buf = vec![0u8; 65_536];
    while found.len() < MAX_DEVICES {
        let Ok(got) = tokio::time::timeout_at(end, socket.recv_from(&mut buf)).await else {
            break;
        };
        let Ok((n, from)) = got else {
            continue;
        };
        for f in parse_matches(&buf[..n], from.ip(), &message_id) {
            found.entry(f.address).or_insert(f);
        }
    }
    Ok(found.into_values().collect())
}

fn socket(opts: &Options) -> Result<tokio::net::UdpSocket, OnvifError> {
    use socket2::{Domain, Protocol, Socket, Type};
    let fail = |what: &str, e: std::io::Error| {
        OnvifError::Unreachable(format!("discovery could not {what}: {e}"))
    };
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))
        .map_err(|e| fail("open a UDP socket", e))?;
    let local = opts.interface.unwrap_or(Ipv4Addr::UNSPECIFIED);
    s.bind(&SocketAddr::from((local, 0)).into()).map_err(|e| {
        fail(
            &format!("use the interface address {local} (is it an address of this machine?)"),
            e,
        )
    })?;
    if let Some(ip) = opts.interface {
        s.set_multicast_if_v4(&ip)
            .map_err(|e| fail(&format!("send multicast by {ip}"), e))?;
    }
    // One hop: discovery is for the local segment.
    let _ = s.set_multicast_ttl_v4(1);
    s.set_nonblocking(true)
        .map_err(|e| fail("make its socket non-blocking", e))?;
    tokio::net::UdpSocket::from_std(s.into()).map_err(|e| fail("register its socket", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_match_is_read_by_local_name_and_others_probes_are_ignored() {
        let id = "urn:uuid:1";
        let answer = br#"<?xml version="1.0"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery">
<SOAP-ENV:Header><wsa:RelatesTo>urn:uuid:1</wsa:RelatesTo></SOAP-ENV:Header>
<SOAP-ENV:Body><d:ProbeMatches><d:ProbeMatch>
<d:XAddrs>http://192.168.1.20/onvif/device_service http://[fe80::1]/onvif/device_service</d:XAddrs>
<d:Scopes>onvif://www.onvif.org/name/Gate%20Cam onvif://www.onvif.org/hardware/IPC_123 onvif://www.onvif.org/location/yard</d:Scopes>
</d:ProbeMatch></d:ProbeMatches></SOAP-ENV:Body></SOAP-ENV:Envelope>"#;
        let from: IpAddr = "192.168.1.20".parse().unwrap();
        let f = parse_matches(answer, from, id);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].name.as_deref(), Some("Gate Cam"));
        assert_eq!(f[0].hardware.as_deref(), Some("IPC 123"));
        assert_eq!(f[0].location.as_deref(), Some("yard"));
        assert_eq!(f[0].xaddrs.len(), 2);
        assert_eq!(f[0].port(), 80);
        assert!(parse_matches(answer, from, "urn:uuid:2").is_empty());
        let probe = String::from_utf8(probe_message(id)).unwrap();
        assert!(
            probe.contains("<a:MessageID>urn:uuid:1</a:MessageID>"),
            "{probe}"
        );
        assert!(probe.contains("dn:NetworkVideoTransmitter"));
    }
}
