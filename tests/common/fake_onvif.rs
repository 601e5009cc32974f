//! A fake ONVIF camera: SOAP 1.2 over real HTTP on 127.0.0.1 (axum, port 0) and a WS-Discovery
//! responder over real UDP (multicast group 239.255.255.250:3702, joined on the loopback
//! interface, so a probe sent by 127.0.0.1 reaches it).
//!
//! It checks every authenticated request's WS-Security UsernameToken as a camera does: the user
//! name, `Created` within [`TOLERANCE_S`] of its own clock (which may be set hours off), and the
//! password digest `Base64(SHA-1(nonce + created + password))`, computed here with `sha1` on
//! its own. What it saw is recorded in [`Seen`] for the tests to assert. Its misbehaviours
//! ([`Behaviour`]) stand in for broken and hostile devices.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine as _;
use chrono::{DateTime, Datelike, TimeDelta, Timelike, Utc};
use heldar::onvif::soap;
use sha1::{Digest, Sha1};

/// How far a request's `Created` may be from the device's clock, in seconds.
pub const TOLERANCE_S: i64 = 5;

#[derive(Clone, Debug)]
pub struct FakeProfile {
    pub token: &'static str,
    pub name: &'static str,
    pub encoding: &'static str,
    pub width: u32,
    pub height: u32,
    /// The snapshot URI; `{base}` is replaced by `http://127.0.0.1:{port}`. `None`: the device
    /// answers GetSnapshotUri with a fault.
    pub snapshot: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Behaviour {
    pub username: &'static str,
    pub password: &'static str,
    /// The device's clock minus the real one.
    pub clock_offset: TimeDelta,
    pub profiles: Vec<FakeProfile>,
    /// GetProfiles is never answered (the connection stays silent).
    pub silent_get_profiles: bool,
    /// GetProfiles is answered with more than 1 MiB.
    pub huge_get_profiles: bool,
    /// GetDeviceInformation is answered with a "billion laughs" document.
    pub entity_bomb: bool,
    /// The discovery scopes' name.
    pub name: &'static str,
}

impl Behaviour {
    /// A normal camera: an H.264 main stream (1920×1080), an H.264 sub stream (640×360), a
    /// snapshot URI serving a real JPEG.
    pub fn normal() -> Behaviour {
        Behaviour {
            username: "onvifuser",
            password: "Pa55-w0rd<&>xyzzy",
            clock_offset: TimeDelta::zero(),
            profiles: vec![
                FakeProfile {
                    token: "prof_main",
                    name: "MainStream",
                    encoding: "H264",
                    width: 1920,
                    height: 1080,
                    snapshot: Some("{base}/snap.jpg?profile=main".into()),
                },
                FakeProfile {
                    token: "prof_sub",
                    name: "SubStream",
                    encoding: "H264",
                    width: 640,
                    height: 360,
                    snapshot: Some("{base}/snap.jpg".into()),
                },
            ],
            silent_get_profiles: false,
            huge_get_profiles: false,
            entity_bomb: false,
            name: "Fake Gate Cam",
        }
    }
}

/// What the device saw.
#[derive(Default, Debug, Clone)]
pub struct Seen {
    /// Operations asked, in order.
    pub operations: Vec<String>,
    /// For each accepted authenticated request: `Created` minus the device's clock, in seconds.
    pub created_skew_s: Vec<i64>,
    /// Authenticated requests refused, with the reason.
    pub refused: Vec<String>,
    /// Snapshot GETs served.
    pub snapshots: usize,
    /// Every request body, as text.
    pub bodies: Vec<String>,
}

pub struct FakeOnvif {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Seen>>,
    server: tokio::task::JoinHandle<()>,
    udp: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for FakeOnvif {
    fn drop(&mut self) {
        self.server.abort();
        if let Some(u) = &self.udp {
            u.abort();
        }
    }
}

struct Shared {
    b: Behaviour,
    base: String,
    seen: Arc<Mutex<Seen>>,
    jpeg: Vec<u8>,
}

impl FakeOnvif {
    /// Serve SOAP (and the snapshot) on 127.0.0.1, port 0.
    pub async fn start(b: Behaviour) -> FakeOnvif {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let shared = Arc::new(Shared {
            b,
            base: format!("http://{addr}"),
            seen: seen.clone(),
            jpeg: heldar::fakecam::pattern::solid_jpeg(64, 48, [40, 120, 200]),
        });
        let app = Router::new()
            .route("/onvif/device_service", post(soap_handler))
            .route("/onvif/media_service", post(soap_handler))
            .route("/snap.jpg", get(snapshot))
            .with_state(shared);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeOnvif {
            addr,
            seen,
            server,
            udp: None,
        }
    }

    /// Also answer WS-Discovery probes: bind 0.0.0.0:3702 (shared with other responders) and
    /// join the multicast group on the loopback interface.
    pub fn answer_discovery(&mut self, name: &'static str) {
        let s = socket2::Socket::new(
            socket2::Domain::IPV4,
            socket2::Type::DGRAM,
            Some(socket2::Protocol::UDP),
        )
        .unwrap();
        s.set_reuse_address(true).unwrap();
        s.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, 3702)).into())
            .unwrap();
        s.join_multicast_v4(&Ipv4Addr::new(239, 255, 255, 250), &Ipv4Addr::LOCALHOST)
            .unwrap();
        s.set_nonblocking(true).unwrap();
        let sock = tokio::net::UdpSocket::from_std(s.into()).unwrap();
        let port = self.addr.port();
        self.udp = Some(tokio::spawn(async move {
            let mut buf = vec![0u8; 65536];
            loop {
                let Ok((n, from)) = sock.recv_from(&mut buf).await else {
                    continue;
                };
                let Ok(root) = soap::parse(&buf[..n]) else {
                    continue;
                };
                if root.find("Probe").is_none() {
                    continue;
                }
                let id = root
                    .find("MessageID")
                    .map(|e| e.text.clone())
                    .unwrap_or_default();
                let answer = format!(
                    r#"<?xml version="1.0" encoding="UTF-8"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" xmlns:dn="http://www.onvif.org/ver10/network/wsdl">
<SOAP-ENV:Header><wsa:MessageID>urn:uuid:fake-{port}</wsa:MessageID><wsa:RelatesTo>{id}</wsa:RelatesTo><wsa:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</wsa:To><wsa:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatches</wsa:Action></SOAP-ENV:Header>
<SOAP-ENV:Body><d:ProbeMatches><d:ProbeMatch><wsa:EndpointReference><wsa:Address>urn:uuid:fake-{port}</wsa:Address></wsa:EndpointReference><d:Types>dn:NetworkVideoTransmitter</d:Types>
<d:Scopes>onvif://www.onvif.org/type/video_encoder onvif://www.onvif.org/name/{name} onvif://www.onvif.org/hardware/FC-1 onvif://www.onvif.org/location/yard</d:Scopes>
<d:XAddrs>http://127.0.0.1:{port}/onvif/device_service</d:XAddrs><d:MetadataVersion>1</d:MetadataVersion></d:ProbeMatch></d:ProbeMatches></SOAP-ENV:Body></SOAP-ENV:Envelope>"#,
                    name = name.replace(' ', "%20"),
                );
                let _ = sock.send_to(answer.as_bytes(), from).await;
            }
        }));
    }

    pub fn seen(&self) -> Seen {
        self.seen.lock().unwrap().clone()
    }
}

async fn snapshot(State(s): State<Arc<Shared>>) -> Response {
    s.seen.lock().unwrap().snapshots += 1;
    ([(header::CONTENT_TYPE, "image/jpeg")], s.jpeg.clone()).into_response()
}

fn envelope(body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://www.w3.org/2003/05/soap-envelope" xmlns:tds="http://www.onvif.org/ver10/device/wsdl" xmlns:trt="http://www.onvif.org/ver10/media/wsdl" xmlns:tt="http://www.onvif.org/ver10/schema" xmlns:ter="http://www.onvif.org/ver10/error"><SOAP-ENV:Body>{body}</SOAP-ENV:Body></SOAP-ENV:Envelope>"#
    )
}

fn soap_ok(body: &str) -> Response {
    (
        [(header::CONTENT_TYPE, "application/soap+xml; charset=utf-8")],
        envelope(body),
    )
        .into_response()
}

fn fault(status: StatusCode, subcode: &str, reason: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/soap+xml; charset=utf-8")],
        envelope(&format!(
            "<SOAP-ENV:Fault><SOAP-ENV:Code><SOAP-ENV:Value>SOAP-ENV:Sender</SOAP-ENV:Value><SOAP-ENV:Subcode><SOAP-ENV:Value>{subcode}</SOAP-ENV:Value></SOAP-ENV:Subcode></SOAP-ENV:Code><SOAP-ENV:Reason><SOAP-ENV:Text xml:lang=\"en\">{reason}</SOAP-ENV:Text></SOAP-ENV:Reason></SOAP-ENV:Fault>"
        )),
    )
        .into_response()
}

/// Check the UsernameToken against the device's clock; `Err(reason)` when refused.
fn check_token(root: &soap::Element, b: &Behaviour, now: DateTime<Utc>) -> Result<i64, String> {
    let token = root.find("UsernameToken").ok_or("no UsernameToken")?;
    let user = token.text_at(&["Username"]).unwrap_or_default();
    let digest = token.text_at(&["Password"]).unwrap_or_default();
    let nonce = token.text_at(&["Nonce"]).unwrap_or_default();
    let created = token.text_at(&["Created"]).unwrap_or_default();
    let when = DateTime::parse_from_rfc3339(created)
        .map_err(|e| format!("Created {created:?}: {e}"))?
        .with_timezone(&Utc);
    let skew = (when - now).num_seconds();
    if skew.abs() > TOLERANCE_S {
        return Err(format!("Created is {skew} s from the device's clock"));
    }
    let nonce = base64::engine::general_purpose::STANDARD
        .decode(nonce)
        .map_err(|e| format!("nonce: {e}"))?;
    let mut h = Sha1::new();
    h.update(&nonce);
    h.update(created.as_bytes());
    h.update(b.password.as_bytes());
    let want = base64::engine::general_purpose::STANDARD.encode(h.finalize());
    if user != b.username || digest != want {
        return Err("wrong user name or password digest".into());
    }
    Ok(skew)
}

async fn soap_handler(State(s): State<Arc<Shared>>, body: axum::body::Bytes) -> Response {
    let text = String::from_utf8_lossy(&body).into_owned();
    let root = match soap::parse(&body) {
        Ok(r) => r,
        Err(e) => return fault(StatusCode::BAD_REQUEST, "ter:WellFormed", &e.to_string()),
    };
    let op = root
        .find("Body")
        .and_then(|b| b.children.first())
        .map(|e| e.name.clone())
        .unwrap_or_default();
    {
        let mut seen = s.seen.lock().unwrap();
        seen.operations.push(op.clone());
        seen.bodies.push(text);
    }
    let b = &s.b;
    let now = Utc::now() + b.clock_offset;
    if op == "GetSystemDateAndTime" {
        return soap_ok(&format!(
            "<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime><tt:DateTimeType>NTP</tt:DateTimeType><tt:DaylightSavings>false</tt:DaylightSavings><tt:TimeZone><tt:TZ>CET-1</tt:TZ></tt:TimeZone><tt:UTCDateTime><tt:Time><tt:Hour>{}</tt:Hour><tt:Minute>{}</tt:Minute><tt:Second>{}</tt:Second></tt:Time><tt:Date><tt:Year>{}</tt:Year><tt:Month>{}</tt:Month><tt:Day>{}</tt:Day></tt:Date></tt:UTCDateTime></tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>",
            now.hour(), now.minute(), now.second(), now.year(), now.month(), now.day()
        ));
    }
    match check_token(&root, b, now) {
        Ok(skew) => s.seen.lock().unwrap().created_skew_s.push(skew),
        Err(why) => {
            s.seen.lock().unwrap().refused.push(why);
            return fault(
                StatusCode::BAD_REQUEST,
                "ter:NotAuthorized",
                "Sender not Authorized",
            );
        }
    }
    let token_of = || {
        root.find("ProfileToken")
            .map(|e| e.text.clone())
            .unwrap_or_default()
    };
    match op.as_str() {
        "GetDeviceInformation" if b.entity_bomb => {
            let mut x = String::from("<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">");
            for i in 1..10 {
                let prev = if i == 1 { "lol".to_string() } else { format!("lol{}", i - 1) };
                x.push_str(&format!("<!ENTITY lol{i} \"{}\">", format!("&{prev};").repeat(10)));
            }
            x.push_str("]><SOAP-ENV:Envelope xmlns:SOAP-ENV=\"http://www.w3.org/2003/05/soap-envelope\"><SOAP-ENV:Body><Manufacturer>&lol9;</Manufacturer></SOAP-ENV:Body></SOAP-ENV:Envelope>");
            ([(header::CONTENT_TYPE, "application/soap+xml")], x).into_response()
        }
        "GetDeviceInformation" => soap_ok(
            "<tds:GetDeviceInformationResponse><tds:Manufacturer>FakeCam</tds:Manufacturer><tds:Model>FC-1</tds:Model><tds:FirmwareVersion>1.2.3</tds:FirmwareVersion><tds:SerialNumber>SN0001</tds:SerialNumber><tds:HardwareId>hw1</tds:HardwareId></tds:GetDeviceInformationResponse>",
        ),
        // The media service is announced at an address the test never reaches (TEST-NET-1):
        // Heldar must keep the port and path and use the address it reached the device at.
        "GetCapabilities" => soap_ok(&format!(
            "<tds:GetCapabilitiesResponse><tds:Capabilities><tt:Device><tt:XAddr>http://192.0.2.1:{port}/onvif/device_service</tt:XAddr></tt:Device><tt:Media><tt:XAddr>http://192.0.2.1:{port}/onvif/media_service</tt:XAddr><tt:StreamingCapabilities><tt:RTPMulticast>false</tt:RTPMulticast></tt:StreamingCapabilities></tt:Media></tds:Capabilities></tds:GetCapabilitiesResponse>",
            port = s.base.rsplit(':').next().unwrap()
        )),
        "GetProfiles" if b.silent_get_profiles => {
            std::future::pending::<()>().await;
            unreachable!()
        }
        "GetProfiles" if b.huge_get_profiles => {
            let filler = "<tt:Extension>".to_string() + &"x".repeat(2 * 1024 * 1024) + "</tt:Extension>";
            soap_ok(&format!("<trt:GetProfilesResponse>{filler}</trt:GetProfilesResponse>"))
        }
        "GetProfiles" => {
            let mut out = String::from("<trt:GetProfilesResponse>");
            for p in &b.profiles {
                out.push_str(&format!(
                    "<trt:Profiles token=\"{}\" fixed=\"true\"><tt:Name>{}</tt:Name><tt:VideoSourceConfiguration token=\"vs\"><tt:Name>vs</tt:Name></tt:VideoSourceConfiguration><tt:VideoEncoderConfiguration token=\"ve_{}\"><tt:Name>ve</tt:Name><tt:Encoding>{}</tt:Encoding><tt:Resolution><tt:Width>{}</tt:Width><tt:Height>{}</tt:Height></tt:Resolution><tt:Quality>4</tt:Quality></tt:VideoEncoderConfiguration></trt:Profiles>",
                    p.token, p.name, p.token, p.encoding, p.width, p.height
                ));
            }
            out.push_str("</trt:GetProfilesResponse>");
            soap_ok(&out)
        }
        "GetSnapshotUri" => {
            let token = token_of();
            match b.profiles.iter().find(|p| p.token == token).and_then(|p| p.snapshot.clone()) {
                Some(uri) => soap_ok(&format!(
                    "<trt:GetSnapshotUriResponse><trt:MediaUri><tt:Uri>{}</tt:Uri><tt:InvalidAfterConnect>false</tt:InvalidAfterConnect><tt:InvalidAfterReboot>false</tt:InvalidAfterReboot><tt:Timeout>PT0S</tt:Timeout></trt:MediaUri></trt:GetSnapshotUriResponse>",
                    uri.replace("{base}", &s.base).replace('&', "&amp;")
                )),
                None => fault(StatusCode::BAD_REQUEST, "ter:ActionNotSupported", "no snapshot"),
            }
        }
        "GetStreamUri" => {
            let token = token_of();
            // Like some cameras, it puts the credentials into the URI: Heldar must take them out.
            soap_ok(&format!(
                "<trt:GetStreamUriResponse><trt:MediaUri><tt:Uri>rtsp://{}:{}@127.0.0.1:8554/{token}</tt:Uri><tt:InvalidAfterConnect>false</tt:InvalidAfterConnect><tt:InvalidAfterReboot>false</tt:InvalidAfterReboot><tt:Timeout>PT0S</tt:Timeout></trt:MediaUri></trt:GetStreamUriResponse>",
                b.username,
                percent_encoding::utf8_percent_encode(b.password, percent_encoding::NON_ALPHANUMERIC).to_string().replace('&', "&amp;")
            ))
        }
        _ => fault(StatusCode::BAD_REQUEST, "ter:ActionNotSupported", "unknown action"),
    }
}
