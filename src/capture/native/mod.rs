//! The native RTSP back-end: retina (the RTSP client Moonfire NVR uses) over TCP interleaved,
//! H.264 decoded by OpenH264 and encoded as JPEG in process ([`decode`]); no ffmpeg process.
//!
//! What it owns: opening a camera's RTSP session ([`open`]: the host guard, credentials handed
//! to retina in process — never in a URL, a command line or a log —, DESCRIBE/SETUP/PLAY with the
//! policies written down in docs/rtsp.md), mapping a frame's RTP time to wall-clock time
//! ([`WallMap`]), a cold grab ([`NativeSource::grab_cold`]: connect, wait for a keyframe, decode
//! it), and the warm sessions of cameras with short intervals ([`session`]).
//!
//! What it does not: decide which cameras use it (`capture::plan` and `Capturer`), or decode
//! what it cannot. A stream it cannot decode — H.265, MJPEG, an H.264 profile OpenH264 does not
//! support — is a [`NativeError::Unsupported`] with the reason, and the `Capturer` falls back to
//! ffmpeg for that camera (logged once, shown in the camera's `rtsp` status).
//!
//! How it fails: every failure is a typed [`CaptureError`] (`unreachable`, `timeout`,
//! `auth_failed`, `bad_response`, `forbidden_host`) whose sentence comes from retina's first
//! error line, never with a credential in it. Decodes run on the blocking pool under a global
//! cap (`HELDAR_RTSP_DECODE_CONCURRENCY`), so a burst of slots never starves the async runtime.

pub mod decode;
pub mod session;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use retina::client::{
    Credentials, Demuxed, InitialTimestampPolicy, PlayOptions, SessionGroup, SessionIdPolicy,
    SessionOptions, SetupOptions, TeardownPolicy, Transport, UnassignedChannelDataPolicy,
};
use retina::codec::{CodecItem, FrameFormat, VideoFrame};
use tokio::sync::Semaphore;

use super::{hosts, CaptureError, Frame, GrabRequest};
use crate::models::CameraId;

/// Why the native path gave no frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NativeError {
    /// The camera failed the capture (the error any back-end would report).
    Capture(CaptureError),
    /// The native path cannot read this stream (codec, profile, scheme): the reason, for the
    /// fallback to ffmpeg.
    Unsupported(String),
}

impl From<CaptureError> for NativeError {
    fn from(e: CaptureError) -> Self {
        NativeError::Capture(e)
    }
}

/// The User-Agent Heldar's RTSP requests carry.
const USER_AGENT: &str = concat!("heldar/", env!("CARGO_PKG_VERSION"));

/// H.264 profiles (`profile_idc`) OpenH264 decodes: Baseline/Constrained Baseline (66), Main
/// (77), High (100). High 10, 4:2:2, 4:4:4 and Extended are not, and go to ffmpeg.
const DECODABLE_PROFILES: [u8; 3] = [66, 77, 100];

/// The back-end (see the module docs).
pub struct NativeSource {
    /// One retina session group per camera: the sessions a camera may still hold (a TEARDOWN
    /// in flight, a stale live555 session), so a new connection can wait for them.
    groups: Mutex<HashMap<CameraId, Arc<SessionGroup>>>,
    /// Decodes in flight at once, all cameras together.
    decodes: Arc<Semaphore>,
    allow_metadata_hosts: bool,
}

impl NativeSource {
    /// At most `decode_concurrency` (at least 1) decodes at once.
    pub fn new(decode_concurrency: usize, allow_metadata_hosts: bool) -> NativeSource {
        NativeSource {
            groups: Mutex::new(HashMap::new()),
            decodes: Arc::new(Semaphore::new(decode_concurrency.max(1))),
            allow_metadata_hosts,
        }
    }

    /// The session group of `camera`.
    pub(crate) fn group(&self, camera: &CameraId) -> Arc<SessionGroup> {
        let mut groups = self.groups.lock().expect("groups lock");
        groups
            .entry(camera.clone())
            .or_insert_with(|| Arc::new(SessionGroup::default().named(camera.to_string())))
            .clone()
    }

    /// The decode limit, shared with the warm sessions.
    pub(crate) fn decode_permits(&self) -> Arc<Semaphore> {
        self.decodes.clone()
    }

    /// Connect, wait for the first intact keyframe, decode it. The frame's `taken_at` is that
    /// keyframe's capture time ([`WallMap`]).
    pub async fn grab_cold(&self, req: &GrabRequest) -> Result<Frame, NativeError> {
        let mut s = open(req, self.group(&req.camera), self.allow_metadata_hosts).await?;
        loop {
            match s.next_frame(req).await? {
                Next::Frame(f, taken_at) if f.is_random_access_point() => {
                    let unit = Bytes::from(f.into_data());
                    let gop = vec![unit];
                    return decode_frame(&self.decodes, req, gop, taken_at, true).await;
                }
                Next::Frame(..) | Next::Other => {}
            }
        }
    }
}

/// Decode `gop` (a keyframe and the frames after it) on the blocking pool, under a decode
/// permit, into a validated frame taken at `taken_at`. `first` (no frame of this stream was ever
/// decoded) turns a decoder refusal into [`NativeError::Unsupported`]: the stream is one
/// OpenH264 cannot read, not a damaged GOP.
pub(crate) async fn decode_frame(
    permits: &Semaphore,
    req: &GrabRequest,
    gop: Vec<Bytes>,
    taken_at: DateTime<Utc>,
    first: bool,
) -> Result<Frame, NativeError> {
    let _permit = permits.acquire().await.expect("semaphore never closed");
    let encoded =
        tokio::task::spawn_blocking(move || decode::encode_gop(&gop, decode::JPEG_QUALITY))
            .await
            .map_err(|e| {
                CaptureError::BadResponse(format!(
                    "camera {}: the decoder task failed ({e})",
                    req.camera
                ))
            })?;
    match encoded {
        Ok(e) => {
            if e.jpeg.len() > req.max_bytes {
                return Err(CaptureError::BadResponse(format!(
                    "camera {}: the frame is larger than the {} byte limit \
                     (HELDAR_CAPTURE_MAX_BYTES)",
                    req.camera, req.max_bytes
                ))
                .into());
            }
            let mut frame = Frame::from_jpeg(Bytes::from(e.jpeg))?;
            frame.taken_at = Some(taken_at);
            Ok(frame)
        }
        Err(why) if first => Err(NativeError::Unsupported(format!(
            "the in-process H.264 decoder cannot read this stream ({why})"
        ))),
        Err(why) => Err(CaptureError::BadResponse(format!(
            "camera {}: {}: {why}",
            req.camera,
            req.shown_url()
        ))
        .into()),
    }
}

/// A frame's wall-clock capture time, from its RTP timestamp.
///
/// With an RTCP sender report at hand, the frame's RTP time is mapped through the report's
/// (NTP, RTP) pair: the camera's own clock. A camera clock that disagrees with Heldar's by more
/// than [`WallMap::TRUST`] (no NTP on the camera, a wrong time zone baked into NTP time) is not
/// believed: the frame's arrival time is used instead, and the disagreement is logged once.
/// Without a report, the arrival time of the frame's first packet is used.
#[derive(Debug, Default)]
pub(crate) struct WallMap {
    /// The last sender report: its RTP time (extended, in clock ticks) and wall time.
    sr: Option<(i64, DateTime<Utc>)>,
    clock_rate: u32,
    warned: bool,
}

impl WallMap {
    /// How far a sender-report time may be from the arrival time and still be believed.
    pub const TRUST: chrono::Duration = chrono::Duration::seconds(2);

    pub fn new(clock_rate: u32) -> WallMap {
        WallMap {
            clock_rate: clock_rate.max(1),
            ..WallMap::default()
        }
    }

    /// Learn from an RTCP compound packet (only a sender report teaches anything).
    pub fn on_rtcp(&mut self, pkt: &retina::rtcp::ReceivedCompoundPacket) {
        let Some(rtp) = pkt.rtp_timestamp() else {
            return;
        };
        let Some(Ok(Some(sr))) = pkt.pkts().next().map(|p| p.as_sender_report()) else {
            return;
        };
        if let Some(wall) = ntp_to_utc(sr.ntp_timestamp().0) {
            self.sr = Some((rtp.timestamp(), wall));
        }
    }

    /// The capture time of a frame with extended RTP time `rtp` that began arriving at
    /// `arrival`.
    pub fn wall_of(&mut self, rtp: i64, arrival: DateTime<Utc>) -> DateTime<Utc> {
        let Some((sr_rtp, sr_wall)) = self.sr else {
            return arrival;
        };
        let ticks = rtp - sr_rtp;
        let micros = ticks.saturating_mul(1_000_000) / i64::from(self.clock_rate);
        let mapped = sr_wall + chrono::Duration::microseconds(micros);
        // A frame is captured before it arrives; a little slack for the two clocks' jitter.
        let slack = chrono::Duration::milliseconds(100);
        if mapped <= arrival + slack && arrival - mapped <= Self::TRUST {
            mapped
        } else {
            if !self.warned {
                self.warned = true;
                tracing::info!(
                    offset_ms = (mapped - arrival).num_milliseconds(),
                    "the camera's clock (RTCP sender reports) disagrees with this machine's; \
                     frames are timed by their arrival"
                );
            }
            arrival
        }
    }
}

/// An NTP timestamp (seconds since 1900 in the high 32 bits, fraction in the low) as UTC.
fn ntp_to_utc(ntp: u64) -> Option<DateTime<Utc>> {
    let secs = (ntp >> 32) as i64 - 2_208_988_800;
    let nanos = ((ntp & 0xFFFF_FFFF) * 1_000_000_000) >> 32;
    DateTime::from_timestamp(secs, nanos as u32)
}

/// One frame's arrival time (its first packet's), as UTC.
fn arrival_of(f: &VideoFrame) -> DateTime<Utc> {
    let t: std::time::SystemTime = f.start_ctx().received_wall().into();
    DateTime::<Utc>::from(t)
}

/// A playing session, reading one video stream.
pub(crate) struct Opened {
    pub demuxed: Demuxed,
    pub stream_i: usize,
    pub clock: WallMap,
}

/// What [`Opened::next_frame`] read.
pub(crate) enum Next {
    /// A complete video frame of our stream with its capture time. Frames after packet loss
    /// are given too, with `loss() > 0`: the caller decides (a keyframe is needed again).
    Frame(VideoFrame, DateTime<Utc>),
    /// Anything else (RTCP, another stream).
    Other,
}

impl Opened {
    /// The next item of the session. The stream ending or failing is an error.
    pub async fn next_frame(&mut self, req: &GrabRequest) -> Result<Next, NativeError> {
        match self.demuxed.next().await {
            None => Err(CaptureError::Unreachable(format!(
                "camera {}: {}: the camera closed the stream",
                req.camera,
                req.shown_url()
            ))
            .into()),
            Some(Err(e)) => Err(classify(req, &e).into()),
            Some(Ok(CodecItem::Rtcp(r))) => {
                if r.stream_id() == self.stream_i {
                    self.clock.on_rtcp(&r);
                }
                Ok(Next::Other)
            }
            Some(Ok(CodecItem::VideoFrame(f))) if f.stream_id() == self.stream_i => {
                if f.has_new_parameters() {
                    check_profile(&self.demuxed, self.stream_i)?;
                }
                let at = self
                    .clock
                    .wall_of(f.timestamp().timestamp(), arrival_of(&f));
                Ok(Next::Frame(f, at))
            }
            Some(Ok(_)) => Ok(Next::Other),
        }
    }
}

/// The H.264 profile the stream's parameters declare, if OpenH264 cannot decode it.
fn check_profile(demuxed: &Demuxed, stream_i: usize) -> Result<(), NativeError> {
    let Some(retina::codec::ParametersRef::Video(v)) = demuxed.streams()[stream_i].parameters()
    else {
        return Ok(());
    };
    // `avc1.PPCCLL`: profile_idc in hex.
    let codec = v.rfc6381_codec();
    let profile = codec
        .strip_prefix("avc1.")
        .and_then(|s| s.get(..2))
        .and_then(|p| u8::from_str_radix(p, 16).ok());
    match profile {
        Some(p) if !DECODABLE_PROFILES.contains(&p) => Err(NativeError::Unsupported(format!(
            "H.264 profile {p} ({codec}) is not one the in-process decoder reads (Baseline, Main, \
             High)"
        ))),
        _ => Ok(()),
    }
}

/// The stream URL as retina gets it: no userinfo (credentials travel in `Credentials`).
fn bare_url(url: &url::Url) -> url::Url {
    let mut bare = url.clone();
    let _ = bare.set_username("");
    let _ = bare.set_password(None);
    bare
}

/// Open `req`'s stream: check the host, DESCRIBE (with the credentials, Basic or Digest as the
/// camera asks), SETUP the first video stream over TCP interleaved, PLAY.
pub(crate) async fn open(
    req: &GrabRequest,
    group: Arc<SessionGroup>,
    allow_metadata_hosts: bool,
) -> Result<Opened, NativeError> {
    if req.url.scheme() != "rtsp" {
        return Err(NativeError::Unsupported(format!(
            "{} streams are read by ffmpeg (the native client speaks plain rtsp://)",
            req.url.scheme()
        )));
    }
    if !allow_metadata_hosts {
        hosts::check_stream_host(req).await?;
    }
    // A session of ours still being torn down (a camera that serves one or two sessions would
    // answer 453 to the new one): give its TEARDOWN a moment, bounded.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), group.await_teardown()).await;
    let creds = req
        .credentials()
        .map(|(username, password)| Credentials { username, password });
    let options = SessionOptions::default()
        .creds(creds)
        .user_agent(USER_AGENT.to_string())
        .session_group(group)
        .teardown(TeardownPolicy::Auto)
        .unassigned_channel_data(UnassignedChannelDataPolicy::Auto)
        .session_id(SessionIdPolicy::UseFirst);
    let mut session = retina::client::Session::describe(bare_url(&req.url), options)
        .await
        .map_err(|e| classify(req, &e))?;
    let Some(stream_i) = session.streams().iter().position(|s| s.media() == "video") else {
        return Err(CaptureError::BadResponse(format!(
            "camera {}: {}: the stream has no video",
            req.camera,
            req.shown_url()
        ))
        .into());
    };
    let codec = session.streams()[stream_i].encoding_name().to_string();
    if codec != "h264" {
        return Err(NativeError::Unsupported(match codec.as_str() {
            "h265" => "the stream is H.265, which the in-process decoder does not read".into(),
            "jpeg" => "the stream is MJPEG over RTSP, which the native client does not read".into(),
            other => format!("the stream's codec {other:?} is not H.264"),
        }));
    }
    let clock_rate = session.streams()[stream_i].clock_rate_hz();
    session
        .setup(
            stream_i,
            SetupOptions::default()
                .transport(Transport::Tcp(Default::default()))
                .frame_format(FrameFormat::SIMPLE),
        )
        .await
        .map_err(|e| classify(req, &e))?;
    // One stream: RTP-Info's rtptime is ignored (bogus `rtptime=0` is common), and suspicious
    // `seq=0`/`seq=1` values too (retina's defaults, spelled out).
    let play = PlayOptions::default()
        .initial_timestamp(InitialTimestampPolicy::Ignore)
        .initial_seq(retina::client::InitialSequenceNumberPolicy::IgnoreSuspiciousValues);
    let playing = session.play(play).await.map_err(|e| classify(req, &e))?;
    let demuxed = playing.demuxed().map_err(|e| classify(req, &e))?;
    check_profile(&demuxed, stream_i)?;
    Ok(Opened {
        demuxed,
        stream_i,
        clock: WallMap::new(clock_rate),
    })
}

/// A retina error as a capture error an operator can act on. retina's message runs over
/// several lines of connection context; its first line says what happened.
pub(crate) fn classify(req: &GrabRequest, e: &retina::Error) -> CaptureError {
    let text = e.to_string();
    let first = text.lines().next().unwrap_or("").trim().to_string();
    let msg = |what: &str| {
        format!(
            "camera {}: {}: {what} ({})",
            req.camera,
            req.shown_url(),
            crate::models::truncate(&first, 200)
        )
    };
    let lower = text.to_ascii_lowercase();
    match e.status_code() {
        Some(401) | Some(403) => {
            return CaptureError::AuthFailed(msg("the stream rejected the credentials"))
        }
        Some(404) => return CaptureError::BadResponse(msg("the stream does not exist")),
        Some(453) => {
            return CaptureError::Unreachable(msg(
                "the camera serves no more sessions (453 Not Enough Bandwidth): another client \
                 holds them",
            ))
        }
        Some(_) => return CaptureError::BadResponse(msg("the camera refused the request")),
        None => {}
    }
    if lower.contains("authentication requested and no credentials")
        || lower.contains("unauthorized")
    {
        CaptureError::AuthFailed(msg("the stream wants credentials"))
    } else if lower.contains("connection refused")
        || lower.contains("no route to host")
        || lower.contains("network is unreachable")
        || lower.contains("unable to connect")
        || lower.contains("failed to lookup")
        || lower.contains("name or service not known")
    {
        CaptureError::Unreachable(msg("cannot connect"))
    } else if lower.contains("timed out") || lower.contains("timeout") {
        CaptureError::Timeout(msg("the camera stopped answering"))
    } else if lower.contains("eof") || lower.contains("connection reset") {
        CaptureError::Unreachable(msg("the camera closed the connection"))
    } else {
        CaptureError::BadResponse(msg("the stream could not be read"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ntp_times_map_to_utc() {
        // 2026-01-01T00:00:00.5Z as NTP.
        let secs = 1_767_225_600u64 + 2_208_988_800;
        let t = ntp_to_utc((secs << 32) | (1u64 << 31)).unwrap();
        assert_eq!(crate::models::fmt_ts(t), "2026-01-01T00:00:00.500Z");
    }

    #[test]
    fn a_sender_report_times_frames_unless_the_camera_clock_is_off() {
        let arrival = DateTime::parse_from_rfc3339("2026-01-01T00:00:10Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut m = WallMap::new(90_000);
        // No report: arrival.
        assert_eq!(m.wall_of(900_000, arrival), arrival);
        // A report 40 ms before arrival at RTP 900_000 - 3_600: the frame is 40 ms old.
        m.sr = Some((
            900_000 - 3_600,
            arrival - chrono::Duration::milliseconds(80),
        ));
        assert_eq!(
            m.wall_of(900_000, arrival),
            arrival - chrono::Duration::milliseconds(40)
        );
        // A camera clock 30 s behind: not believed.
        m.sr = Some((900_000, arrival - chrono::Duration::seconds(30)));
        assert_eq!(m.wall_of(900_000, arrival), arrival);
        // Ahead of arrival: not believed either.
        m.sr = Some((900_000, arrival + chrono::Duration::seconds(1)));
        assert_eq!(m.wall_of(900_000, arrival), arrival);
    }
}
