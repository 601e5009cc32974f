//! A scripted fake RTSP camera: raw RTSP/1.0 over a real TCP socket on 127.0.0.1, RTP
//! interleaved over that connection (as retina asks), replaying H.264 access units recorded
//! from the GStreamer camera (`tests/fixtures/h264/`, made by `tests/fixtures/record_h264.py`).
//!
//! It owns everything a camera writes — RTSP responses, the SDP, RTP packets (single NAL units
//! and FU-A fragments, the marker bit on a frame's last packet, 90 kHz timestamps), Basic and
//! Digest challenges — so a test can make it misbehave the way real cameras do: a keepalive
//! rejected or answered with the wrong CSeq, a session dropped every few seconds, an old
//! session's packets landing on the next connection (old live555), 453 to a second session,
//! parameter sets only in-band, a resolution switch, bogus RTP-Info, a lost fragment, a Digest
//! re-challenge with a new nonce. Each knob is a field of [`Script`]; what happened is counted in
//! [`Stats`]. Frames are paced in real time (15 fps) from each PLAY; the clips loop with RTP
//! timestamps and sequence numbers going on.
//!
//! It does not speak UDP, RTCP or anything but H.264, and it is no RTSP reference: it answers
//! what retina sends. A request it does not know gets 501. It panics on nothing a client sends;
//! a connection it cannot parse is closed.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use md5::{Digest, Md5};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The 640×360 clip: 4 s at 15 fps, IDRs at frames 0 and 30.
pub const CLIP_360P: &[u8] = include_bytes!("../fixtures/h264/cam_640x360.h264");
/// The 320×240 clip: 2 s at 15 fps, IDRs at frames 0 and 15.
pub const CLIP_240P: &[u8] = include_bytes!("../fixtures/h264/cam_320x240.h264");

/// 90 kHz ticks per frame at 15 fps.
const TICKS_PER_FRAME: u32 = 6_000;
const FRAME_INTERVAL: Duration = Duration::from_nanos(1_000_000_000 / 15);
/// The largest RTP payload written; larger NAL units go as FU-A fragments.
const MAX_PAYLOAD: usize = 1_200;

/// One access unit of a clip: its NAL units (no start codes, no delimiter).
#[derive(Debug, Clone)]
pub struct Unit {
    pub nals: Vec<Vec<u8>>,
    pub idr: bool,
}

/// Split an Annex-B clip into access units (each opened by an access unit delimiter).
pub fn access_units(clip: &[u8]) -> Vec<Unit> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= clip.len() {
        if clip[i..i + 3] == [0, 0, 1] {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut units: Vec<Unit> = Vec::new();
    for (k, &s) in starts.iter().enumerate() {
        let mut end = starts.get(k + 1).map(|n| n - 3).unwrap_or(clip.len());
        // A four-byte start code leaves a zero behind the NAL unit before it.
        while end > s && clip[end - 1] == 0 {
            end -= 1;
        }
        let nal = clip[s..end].to_vec();
        match nal[0] & 0x1f {
            9 => units.push(Unit {
                nals: Vec::new(),
                idr: false,
            }),
            t => {
                let u = units.last_mut().expect("the clip opens with a delimiter");
                u.idr |= t == 5;
                u.nals.push(nal);
            }
        }
    }
    units
}

/// How a keepalive (`OPTIONS`, `GET_PARAMETER` or `SET_PARAMETER` while playing) is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keepalive {
    Ok,
    /// This status (405, 501, …) with the right CSeq.
    Status(u16),
    /// 200 with the CSeq of the previous request (TP-Link Tapo).
    WrongCseq,
    /// 401 with a new Digest nonce (`stale=true`): the old nonce is refused from now on.
    Rechallenge,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    None,
    Basic(String, String),
    Digest(String, String),
}

/// What the fake camera does (see the module docs). `Script::default()` is a well-behaved
/// 640×360 camera without authentication.
#[derive(Debug, Clone)]
pub struct Script {
    /// Played in order; the last one loops.
    pub clips: Vec<&'static [u8]>,
    /// `sprop-parameter-sets` in the SDP (from the first clip); else in-band only.
    pub sprop: bool,
    /// `a=tool:` in the SDP (e.g. an old live555 version).
    pub tool: Option<String>,
    /// The session timeout announced in `Session:`; retina keeps alive every half of it.
    pub session_timeout_s: u32,
    /// `GET_PARAMETER` listed in the `OPTIONS` answer's `Public:`.
    pub get_parameter: bool,
    /// How the n-th keepalive of a connection is answered; past the list, `Ok`.
    pub keepalives: Vec<Keepalive>,
    /// Close each connection this long after its PLAY (TP-Link Tapo: about 15 s).
    pub drop_after: Option<Duration>,
    pub auth: Auth,
    /// Sessions served at once; the next SETUP gets 453 Not Enough Bandwidth.
    pub max_sessions: Option<usize>,
    /// `seq` and `rtptime` written in `RTP-Info`, whatever the stream's really are.
    pub rtp_info: Option<(u16, u32)>,
    /// After the first access unit of a PLAY, IDR access units are not sent (a camera with one
    /// keyframe at PLAY and none after).
    pub keyframe_only_at_play: bool,
    /// The access unit (index in the first clip) one FU-A fragment of which is not sent, the
    /// first time each connection plays it.
    pub lose_fragment_of: Option<usize>,
    /// Old live555: a session whose connection the camera dropped stays alive (its packets go
    /// on being written, to whichever connection comes next) until a TEARDOWN names it and at
    /// least this long has passed.
    pub stale_sessions: Option<Duration>,
}

impl Default for Script {
    fn default() -> Self {
        Script {
            clips: vec![CLIP_360P],
            sprop: true,
            tool: None,
            session_timeout_s: 60,
            get_parameter: true,
            keepalives: Vec::new(),
            drop_after: None,
            auth: Auth::None,
            max_sessions: None,
            rtp_info: None,
            keyframe_only_at_play: false,
            lose_fragment_of: None,
            stale_sessions: None,
        }
    }
}

/// What the camera saw and did.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub connections: usize,
    /// Sessions set up and neither torn down nor gone with their connection (stale ones count).
    pub active: usize,
    /// The most sessions active at once.
    pub max_active: usize,
    pub setups: usize,
    pub plays: usize,
    /// When each PLAY was answered.
    pub played_at: Vec<chrono::DateTime<chrono::Utc>>,
    pub refused_453: usize,
    /// Session ids named by TEARDOWNs.
    pub teardowns: Vec<String>,
    /// Keepalive requests: connection number and method.
    pub keepalives: Vec<(usize, String)>,
    /// Connections that received packets of a stale session.
    pub stale_deliveries: usize,
    /// … of which those where it came after a DESCRIBE (a client opening a session, not one
    /// sending a TEARDOWN).
    pub stale_after_describe: usize,
    /// Digest nonces handed out (the first, then one per re-challenge).
    pub nonces: Vec<String>,
    /// Requests authenticated, with the index in `nonces` of the nonce they used.
    pub authenticated: Vec<(String, usize)>,
    /// Requests refused for their credentials.
    pub unauthorized: usize,
    /// When a frame with a lost fragment was sent, and when the next keyframe after it.
    pub lost_frame_at: Vec<chrono::DateTime<chrono::Utc>>,
    pub keyframe_after_loss_at: Vec<chrono::DateTime<chrono::Utc>>,
    /// Every request line and header block received, for checks on what clients send.
    pub requests: Vec<String>,
    /// Sessions' lives, in order: `setup ID on N`, `teardown ID`, `closed N (session ID)`.
    pub events: Vec<String>,
}

struct Shared {
    script: Script,
    stats: Mutex<Stats>,
    /// Live sessions: id → its connection number.
    sessions: Mutex<HashMap<String, usize>>,
    /// Stale sessions (their connection is gone): id → (stale since, torn down).
    stale: Mutex<HashMap<String, (tokio::time::Instant, bool)>>,
    nonce: Mutex<String>,
    units: Vec<Vec<Unit>>,
    sps_pps: (Vec<u8>, Vec<u8>),
}

/// A running fake camera; stops when dropped.
pub struct FakeCamera {
    pub port: u16,
    shared: Arc<Shared>,
    stop: CancellationToken,
}

impl Drop for FakeCamera {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl FakeCamera {
    /// Bind 127.0.0.1:0 and serve `script` (inside the tokio runtime).
    pub async fn start(script: Script) -> FakeCamera {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().unwrap().port();
        let units: Vec<Vec<Unit>> = script.clips.iter().map(|c| access_units(c)).collect();
        let first = &units[0][0];
        let find = |t: u8| {
            first
                .nals
                .iter()
                .find(|n| n[0] & 0x1f == t)
                .cloned()
                .expect("the first access unit carries SPS and PPS")
        };
        let sps_pps = (find(7), find(8));
        let shared = Arc::new(Shared {
            script,
            stats: Mutex::new(Stats {
                nonces: vec!["n0nce-0".into()],
                ..Stats::default()
            }),
            sessions: Mutex::new(HashMap::new()),
            stale: Mutex::new(HashMap::new()),
            nonce: Mutex::new("n0nce-0".into()),
            units,
            sps_pps,
        });
        let stop = CancellationToken::new();
        let (s, st) = (shared.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0usize;
            loop {
                let accepted = tokio::select! {
                    _ = st.cancelled() => return,
                    a = listener.accept() => a,
                };
                let Ok((sock, _)) = accepted else { continue };
                n += 1;
                s.stats.lock().unwrap().connections += 1;
                tokio::spawn(connection(s.clone(), sock, n, st.child_token()));
            }
        });
        FakeCamera { port, shared, stop }
    }

    pub fn url(&self) -> String {
        format!("rtsp://127.0.0.1:{}/stream", self.port)
    }

    pub fn stats(&self) -> Stats {
        self.shared.stats.lock().unwrap().clone()
    }
}

/// What a connection's writer is asked to write.
type Out = mpsc::UnboundedSender<Vec<u8>>;

struct Request {
    method: String,
    uri: String,
    headers: Vec<(String, String)>,
    text: String,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Read the next request, skipping interleaved data the client sends. `None`: closed or garbage.
async fn read_request(
    r: &mut tokio::net::tcp::OwnedReadHalf,
    buf: &mut Vec<u8>,
) -> Option<Request> {
    loop {
        if buf.first() == Some(&b'$') && buf.len() >= 4 {
            let len = u16::from_be_bytes([buf[2], buf[3]]) as usize;
            if buf.len() >= 4 + len {
                buf.drain(..4 + len);
                continue;
            }
        } else if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let mut lines = head.split("\r\n");
            let first = lines.next()?;
            let mut parts = first.split(' ');
            let method = parts.next()?.to_string();
            let uri = parts.next()?.to_string();
            let headers: Vec<(String, String)> = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .collect();
            let body_len: usize = headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + body_len {
                buf.drain(..end + 4 + body_len);
                return Some(Request {
                    method,
                    uri,
                    headers,
                    text: head,
                });
            }
        }
        let mut chunk = [0u8; 4096];
        let n = r.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn response(
    status: u16,
    reason: &str,
    cseq: &str,
    headers: &[(String, String)],
    body: &str,
) -> Vec<u8> {
    let mut s =
        format!("RTSP/1.0 {status} {reason}\r\nCSeq: {cseq}\r\nServer: heldar-fake-camera\r\n");
    for (k, v) in headers {
        s.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() {
        s.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    s.push_str("\r\n");
    s.push_str(body);
    s.into_bytes()
}

fn md5_hex(s: &str) -> String {
    let d = Md5::digest(s.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// The `key="value"` (or `key=value`) pairs of a Digest header.
fn digest_params(h: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = h;
    while let Some(eq) = rest.find('=') {
        let key = rest[..eq].trim().trim_start_matches(',').trim().to_string();
        let after = &rest[eq + 1..];
        let (value, tail) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"').unwrap_or(q.len());
            (q[..end].to_string(), &q[(end + 1).min(q.len())..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        out.insert(key.to_ascii_lowercase(), value);
        rest = tail;
    }
    out
}

const REALM: &str = "heldar-fake-camera";

impl Shared {
    fn challenge(&self, stale: bool) -> (String, String) {
        let nonce = self.nonce.lock().unwrap().clone();
        let v = match &self.script.auth {
            Auth::Basic(..) => format!("Basic realm=\"{REALM}\""),
            _ => format!(
                "Digest realm=\"{REALM}\", nonce=\"{nonce}\"{}",
                if stale { ", stale=\"true\"" } else { "" }
            ),
        };
        ("WWW-Authenticate".into(), v)
    }

    /// Whether `req` carries the right credentials (with the current nonce, for Digest).
    fn authorized(&self, req: &Request) -> bool {
        let given = req.header("Authorization").unwrap_or("");
        let ok = match &self.script.auth {
            Auth::None => return true,
            Auth::Basic(u, p) => given.strip_prefix("Basic ").is_some_and(|b| {
                base64::engine::general_purpose::STANDARD
                    .decode(b.trim())
                    .is_ok_and(|d| d == format!("{u}:{p}").as_bytes())
            }),
            Auth::Digest(u, p) => {
                let Some(rest) = given.strip_prefix("Digest ") else {
                    return self.refused();
                };
                let d = digest_params(rest);
                let get = |k: &str| d.get(k).map(String::as_str).unwrap_or("");
                let nonce = self.nonce.lock().unwrap().clone();
                let ha1 = md5_hex(&format!("{u}:{REALM}:{p}"));
                let ha2 = md5_hex(&format!("{}:{}", req.method, get("uri")));
                let want = if get("qop").is_empty() {
                    md5_hex(&format!("{ha1}:{nonce}:{ha2}"))
                } else {
                    md5_hex(&format!(
                        "{ha1}:{nonce}:{}:{}:{}:{ha2}",
                        get("nc"),
                        get("cnonce"),
                        get("qop")
                    ))
                };
                let ok = get("username") == u && get("nonce") == nonce && get("response") == want;
                if ok {
                    let mut st = self.stats.lock().unwrap();
                    let i = st.nonces.iter().position(|n| *n == nonce).unwrap_or(0);
                    st.authenticated.push((req.method.clone(), i));
                }
                ok
            }
        };
        if !ok {
            return self.refused();
        }
        true
    }

    fn refused(&self) -> bool {
        self.stats.lock().unwrap().unauthorized += 1;
        false
    }

    fn rotate_nonce(&self) {
        let mut st = self.stats.lock().unwrap();
        let next = format!("n0nce-{}", st.nonces.len());
        st.nonces.push(next.clone());
        *self.nonce.lock().unwrap() = next;
    }

    fn sdp(&self, port: u16) -> String {
        let (sps, pps) = &self.sps_pps;
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let profile = format!("{:02x}{:02x}{:02x}", sps[1], sps[2], sps[3]);
        let sprop = if self.script.sprop {
            format!(";sprop-parameter-sets={},{}", b64(sps), b64(pps))
        } else {
            String::new()
        };
        let tool = self
            .script
            .tool
            .as_ref()
            .map(|t| format!("a=tool:{t}\r\n"))
            .unwrap_or_default();
        format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=Heldar fake camera\r\nc=IN IP4 127.0.0.1\r\n\
             t=0 0\r\n{tool}a=control:rtsp://127.0.0.1:{port}/stream/\r\nm=video 0 RTP/AVP 96\r\n\
             a=rtpmap:96 H264/90000\r\n\
             a=fmtp:96 packetization-mode=1;profile-level-id={profile}{sprop}\r\n\
             a=control:trackID=0\r\n"
        )
    }
}

/// Where a connection's stream stands.
struct Playing {
    session: String,
    stop: CancellationToken,
}

async fn connection(shared: Arc<Shared>, sock: TcpStream, conn: usize, stop: CancellationToken) {
    let port = sock.local_addr().map(|a| a.port()).unwrap_or(0);
    let (mut r, mut w) = sock.into_split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let writer_stop = stop.clone();
    let writer = tokio::spawn(async move {
        loop {
            let msg = tokio::select! {
                _ = writer_stop.cancelled() => break,
                m = rx.recv() => m,
            };
            let Some(m) = msg else { break };
            if w.write_all(&m).await.is_err() {
                break;
            }
        }
        let _ = w.shutdown().await;
    });
    let mut buf = Vec::new();
    let mut session: Option<String> = None;
    let mut playing: Option<Playing> = None;
    let mut keepalives = 0usize;
    let mut last_cseq = "0".to_string();
    let mut stale_sent = false;
    let mut torn_down = false;
    loop {
        let req = tokio::select! {
            _ = stop.cancelled() => None,
            r = read_request(&mut r, &mut buf) => r,
        };
        let Some(req) = req else { break };
        shared.stats.lock().unwrap().requests.push(req.text.clone());
        let cseq = req.header("CSeq").unwrap_or("0").to_string();
        let mut extra: Vec<(String, String)> = Vec::new();
        let keepalive = playing.is_some()
            && matches!(
                req.method.as_str(),
                "OPTIONS" | "GET_PARAMETER" | "SET_PARAMETER"
            );
        let out: Vec<u8> = if keepalive {
            shared
                .stats
                .lock()
                .unwrap()
                .keepalives
                .push((conn, req.method.clone()));
            let how = shared
                .script
                .keepalives
                .get(keepalives)
                .copied()
                .unwrap_or(Keepalive::Ok);
            keepalives += 1;
            if req.method == "OPTIONS" {
                extra.push(("Public".into(), public(&shared.script)));
            }
            match how {
                Keepalive::Ok if shared.authorized(&req) => response(200, "OK", &cseq, &extra, ""),
                Keepalive::Ok => {
                    let c = shared.challenge(false);
                    response(401, "Unauthorized", &cseq, &[c], "")
                }
                Keepalive::Status(s) => response(s, "Not Allowed", &cseq, &[], ""),
                Keepalive::WrongCseq => response(200, "OK", &last_cseq, &extra, ""),
                Keepalive::Rechallenge => {
                    shared.rotate_nonce();
                    let c = shared.challenge(true);
                    response(401, "Unauthorized", &cseq, &[c], "")
                }
            }
        } else if req.method == "OPTIONS" {
            extra.push(("Public".into(), public(&shared.script)));
            response(200, "OK", &cseq, &extra, "")
        } else if !shared.authorized(&req) {
            let c = shared.challenge(false);
            response(401, "Unauthorized", &cseq, &[c], "")
        } else {
            match req.method.as_str() {
                "DESCRIBE" => {
                    extra.push(("Content-Type".into(), "application/sdp".into()));
                    extra.push((
                        "Content-Base".into(),
                        format!("rtsp://127.0.0.1:{port}/stream/"),
                    ));
                    response(200, "OK", &cseq, &extra, &shared.sdp(port))
                }
                "SETUP" => {
                    let busy = {
                        let st = shared.stats.lock().unwrap();
                        shared.script.max_sessions.is_some_and(|m| st.active >= m)
                    };
                    if busy || session.is_some() {
                        shared.stats.lock().unwrap().refused_453 += usize::from(busy);
                        response(453, "Not Enough Bandwidth", &cseq, &[], "")
                    } else {
                        let id = format!("{:08X}", rand::random::<u32>());
                        {
                            let mut st = shared.stats.lock().unwrap();
                            st.setups += 1;
                            st.events.push(format!("setup {id} on {conn}"));
                            st.active += 1;
                            st.max_active = st.max_active.max(st.active);
                        }
                        shared.sessions.lock().unwrap().insert(id.clone(), conn);
                        extra.push((
                            "Transport".into(),
                            "RTP/AVP/TCP;unicast;interleaved=0-1;ssrc=1A2B3C4D".into(),
                        ));
                        extra.push((
                            "Session".into(),
                            format!("{id};timeout={}", shared.script.session_timeout_s),
                        ));
                        session = Some(id);
                        response(200, "OK", &cseq, &extra, "")
                    }
                }
                "PLAY" => {
                    match &session {
                        Some(id) if playing.is_none() => {
                            {
                                let mut st = shared.stats.lock().unwrap();
                                st.plays += 1;
                                st.played_at.push(chrono::Utc::now());
                            }
                            let seq0 = 20_000u16.wrapping_add((conn as u16).wrapping_mul(1_000));
                            let ts0 = 3_000_000u32.wrapping_add(conn as u32 * 900_000);
                            let (s, t) = shared.script.rtp_info.unwrap_or((seq0, ts0));
                            extra.push(("Session".into(), id.clone()));
                            extra.push(("Range".into(), "npt=0.000-".into()));
                            extra.push((
                            "RTP-Info".into(),
                            format!("url=rtsp://127.0.0.1:{port}/stream/trackID=0;seq={s};rtptime={t}"),
                        ));
                            let resp = response(200, "OK", &cseq, &extra, "");
                            let _ = tx.send(resp);
                            let p = Playing {
                                session: id.clone(),
                                stop: stop.child_token(),
                            };
                            tokio::spawn(play(
                                shared.clone(),
                                tx.clone(),
                                conn,
                                seq0,
                                ts0,
                                p.stop.clone(),
                                stop.clone(),
                            ));
                            playing = Some(p);
                            last_cseq = cseq;
                            continue;
                        }
                        _ => response(454, "Session Not Found", &cseq, &[], ""),
                    }
                }
                "TEARDOWN" => {
                    let id = req
                        .header("Session")
                        .unwrap_or("")
                        .split(';')
                        .next()
                        .unwrap_or("")
                        .to_string();
                    {
                        let mut st = shared.stats.lock().unwrap();
                        st.teardowns.push(id.clone());
                        st.events.push(format!("teardown {id} on {conn}"));
                    }
                    let known = end_session(&shared, &id);
                    if let Some(s) = shared.stale.lock().unwrap().get_mut(&id) {
                        s.1 = true;
                    }
                    if session.as_deref() == Some(id.as_str()) {
                        session = None;
                        torn_down = true;
                        if let Some(p) = playing.take() {
                            p.stop.cancel();
                        }
                    }
                    if known || shared.stale.lock().unwrap().contains_key(&id) {
                        response(200, "OK", &cseq, &[], "")
                    } else {
                        response(454, "Session Not Found", &cseq, &[], "")
                    }
                }
                _ => response(501, "Not Implemented", &cseq, &[], ""),
            }
        };
        last_cseq = cseq;
        if tx.send(out).is_err() {
            break;
        }
        // Old live555: packets of a session whose connection went away land on this one,
        // after its first answer (so the client knows the server's `a=tool` by then).
        if !stale_sent && deliver_stale(&shared, &tx) {
            stale_sent = true;
            if req.method == "DESCRIBE" {
                shared.stats.lock().unwrap().stale_after_describe += 1;
            }
        }
    }
    // The connection is gone: its session ends with it, unless this camera keeps it (stale:
    // only a session that was streaming has packets to misdeliver).
    let was_playing = playing.is_some();
    shared
        .stats
        .lock()
        .unwrap()
        .events
        .push(format!("closed {conn} (session {session:?})"));
    if let Some(p) = playing.take() {
        p.stop.cancel();
    }
    if let Some(id) = session.take() {
        if !torn_down && was_playing && shared.script.stale_sessions.is_some() {
            shared.sessions.lock().unwrap().remove(&id);
            shared
                .stale
                .lock()
                .unwrap()
                .insert(id, (tokio::time::Instant::now(), false));
        } else {
            end_session(&shared, &id);
        }
    }
    stop.cancel();
    let _ = writer.await;
}

/// Forget session `id`; whether it was a live one.
fn end_session(shared: &Shared, id: &str) -> bool {
    let live = shared.sessions.lock().unwrap().remove(id).is_some();
    let stale = {
        let mut stale = shared.stale.lock().unwrap();
        let min = shared.script.stale_sessions.unwrap_or_default();
        let gone = stale
            .get(id)
            .is_some_and(|(since, _)| since.elapsed() >= min);
        if gone {
            stale.remove(id);
        }
        gone
    };
    if live || stale {
        shared.stats.lock().unwrap().active -= 1;
    }
    live
}

/// Write a stale session's packet to `tx` if there is a stale session; whether one was written.
fn deliver_stale(shared: &Shared, tx: &Out) -> bool {
    let Some(min) = shared.script.stale_sessions else {
        return false;
    };
    let mut stale = shared.stale.lock().unwrap();
    // One torn down and old enough is gone for good.
    let before = stale.len();
    stale.retain(|_, (since, down)| !(*down && since.elapsed() >= min));
    let ended = before - stale.len();
    if ended > 0 {
        shared.stats.lock().unwrap().active -= ended;
    }
    if stale.is_empty() {
        return false;
    }
    // An RTP packet of the old session on its channel 0 (a P-frame slice fragment's worth).
    let mut pkt = rtp_header(true, 7, 123_456, 0x0BAD_5E55);
    pkt.extend_from_slice(&[0x41, 0x9a, 0x00, 0x00]);
    let _ = tx.send(interleaved(0, &pkt));
    shared.stats.lock().unwrap().stale_deliveries += 1;
    true
}

fn public(script: &Script) -> String {
    let mut p = "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN".to_string();
    if script.get_parameter {
        p.push_str(", GET_PARAMETER");
    }
    p
}

fn rtp_header(marker: bool, seq: u16, ts: u32, ssrc: u32) -> Vec<u8> {
    let mut h = vec![0x80, if marker { 0x80 | 96 } else { 96 }];
    h.extend_from_slice(&seq.to_be_bytes());
    h.extend_from_slice(&ts.to_be_bytes());
    h.extend_from_slice(&ssrc.to_be_bytes());
    h
}

fn interleaved(channel: u8, pkt: &[u8]) -> Vec<u8> {
    let mut out = vec![b'$', channel];
    out.extend_from_slice(&(pkt.len() as u16).to_be_bytes());
    out.extend_from_slice(pkt);
    out
}

/// The RTP payloads of one NAL unit: itself, or FU-A fragments.
fn payloads(nal: &[u8]) -> Vec<Vec<u8>> {
    if nal.len() <= MAX_PAYLOAD {
        return vec![nal.to_vec()];
    }
    let indicator = (nal[0] & 0xe0) | 28;
    let kind = nal[0] & 0x1f;
    let body = &nal[1..];
    let chunks: Vec<&[u8]> = body.chunks(MAX_PAYLOAD - 2).collect();
    let last = chunks.len() - 1;
    chunks
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut fu = vec![indicator, kind];
            if i == 0 {
                fu[1] |= 0x80;
            }
            if i == last {
                fu[1] |= 0x40;
            }
            fu.extend_from_slice(c);
            fu
        })
        .collect()
}

/// Send the clips in real time from now on, until `stop`; `drop_conn` closes the connection
/// when the script drops sessions.
async fn play(
    shared: Arc<Shared>,
    tx: Out,
    _conn: usize,
    seq0: u16,
    ts0: u32,
    stop: CancellationToken,
    drop_conn: CancellationToken,
) {
    let script = &shared.script;
    let started = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(FRAME_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut seq = seq0;
    let mut frame: u32 = 0;
    let (mut clip, mut idx) = (0usize, 0usize);
    let mut lost = false;
    let mut awaiting_keyframe = false;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        if script.drop_after.is_some_and(|d| started.elapsed() >= d) {
            drop_conn.cancel();
            return;
        }
        let unit = &shared.units[clip][idx];
        let ts = ts0.wrapping_add(frame.wrapping_mul(TICKS_PER_FRAME));
        let skip = script.keyframe_only_at_play && frame > 0 && unit.idr;
        if !skip {
            let lose_here = !lost && clip == 0 && script.lose_fragment_of == Some(idx);
            if unit.idr && awaiting_keyframe {
                awaiting_keyframe = false;
                shared
                    .stats
                    .lock()
                    .unwrap()
                    .keyframe_after_loss_at
                    .push(chrono::Utc::now());
            }
            let packets: Vec<Vec<u8>> = unit.nals.iter().flat_map(|n| payloads(n)).collect();
            let last = packets.len() - 1;
            let mut out = Vec::new();
            let mut dropped = false;
            for (i, p) in packets.iter().enumerate() {
                let fragment = p[0] & 0x1f == 28;
                // A fragment after the first of the frame's slice goes missing.
                if lose_here && !dropped && fragment && p[1] & 0x80 == 0 {
                    dropped = true;
                    seq = seq.wrapping_add(1);
                    continue;
                }
                let mut pkt = rtp_header(i == last, seq, ts, 0x1A2B_3C4D);
                pkt.extend_from_slice(p);
                out.extend_from_slice(&interleaved(0, &pkt));
                seq = seq.wrapping_add(1);
            }
            if lose_here {
                assert!(dropped, "access unit {idx} is not fragmented");
                lost = true;
                awaiting_keyframe = true;
                shared
                    .stats
                    .lock()
                    .unwrap()
                    .lost_frame_at
                    .push(chrono::Utc::now());
            }
            if tx.send(out).is_err() {
                return;
            }
        }
        frame += 1;
        idx += 1;
        if idx == shared.units[clip].len() {
            idx = 0;
            if clip + 1 < shared.units.len() {
                clip += 1;
            }
        }
    }
}

/// Session ids a set of TEARDOWNs named, for assertions.
pub fn distinct(ids: &[String]) -> HashSet<String> {
    ids.iter().cloned().collect()
}
