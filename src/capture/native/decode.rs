//! H.264 access units → one JPEG, in process: OpenH264 (the `openh264` crate, built from source,
//! no system library) decodes, `jpeg-encoder` (pure Rust) encodes the decoded YUV planes
//! directly, with no RGB step.
//!
//! [`encode_gop`] takes the access units of one GOP from its keyframe up to the frame wanted
//! (Annex B, the keyframe carrying its SPS/PPS: retina's `FrameFormat::SIMPLE`), decodes them
//! in order with a fresh decoder and encodes the last picture. A fresh decoder per call is the
//! simplest correct answer to parameter sets that change mid-stream (a resolution switch): the
//! GOP always starts with the parameter sets that govern it.
//!
//! **Sample range.** A JPEG (JFIF) holds full-range YCbCr (0–255). Most H.264 streams are
//! limited range ("TV" range: luma 16–235, chroma 16–240), which the SPS says with its VUI
//! `video_full_range_flag` (ITU-T H.264 Annex E.2.1; absent means limited). Limited-range
//! planes copied into a JPEG as they are look washed out (black is dark grey), so they are
//! widened to full range on the way into the encoder, as ffmpeg does when it writes a JPEG;
//! full-range streams (many IP cameras flag theirs) are copied as they are. The colour matrix
//! (BT.601 or BT.709) is not converted: JFIF assumes BT.601, and ffmpeg's JPEG path does not
//! convert it either.
//!
//! It fails with a sentence when OpenH264 refuses the stream or gives no picture; the caller
//! decides whether that means "fall back to ffmpeg" (the stream's profile is one OpenH264 cannot
//! decode) or "this GOP is damaged".
//!
//! Every call is accounted in [`STATS`]: pictures decoded, and the decoding thread's own CPU
//! time spent decoding and spent encoding the JPEG (`getrusage(RUSAGE_THREAD)`, so other
//! threads' work and waiting for a CPU are not counted). `heldar bench` reports them per
//! capture: they are the profile of where a native frame's CPU goes.

use std::sync::atomic::{AtomicU64, Ordering};

use h264_reader::nal::sps::SeqParameterSet;
use h264_reader::rbsp::{decode_nal, BitReader};
use jpeg_encoder::{ColorType, Encoder, ImageBuffer, JpegColorType, SamplingFactor};
use nix::sys::resource::{getrusage, UsageWho};
use openh264::decoder::{DecodeOptions, Decoder, DecoderConfig, Flush};
use openh264::formats::YUVSource;
use openh264::OpenH264API;

/// JPEG quality of a native frame: 85 with 4:2:0 chroma, which measured close to ffmpeg's
/// `-q:v 3` in size at a fraction of its CPU (docs/rtsp.md).
pub const JPEG_QUALITY: u8 = 85;

/// Process-wide totals of the in-process decoder's work since start (see the module docs).
#[derive(Debug, Default)]
pub struct DecodeStats {
    /// Calls of [`encode_gop`] (one per native frame made, live or scheduled).
    pub gops: AtomicU64,
    /// H.264 access units fed to the decoder.
    pub pictures: AtomicU64,
    /// The decoding thread's CPU time in OpenH264, microseconds.
    pub decode_cpu_us: AtomicU64,
    /// The decoding thread's CPU time encoding JPEGs, microseconds.
    pub jpeg_cpu_us: AtomicU64,
}

/// A snapshot of [`DecodeStats`], for differences over a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecodeTotals {
    pub gops: u64,
    pub pictures: u64,
    pub decode_cpu_us: u64,
    pub jpeg_cpu_us: u64,
}

impl DecodeStats {
    /// The totals now.
    pub fn totals(&self) -> DecodeTotals {
        DecodeTotals {
            gops: self.gops.load(Ordering::Relaxed),
            pictures: self.pictures.load(Ordering::Relaxed),
            decode_cpu_us: self.decode_cpu_us.load(Ordering::Relaxed),
            jpeg_cpu_us: self.jpeg_cpu_us.load(Ordering::Relaxed),
        }
    }
}

/// The decoder's accounting for this process.
pub static STATS: DecodeStats = DecodeStats {
    gops: AtomicU64::new(0),
    pictures: AtomicU64::new(0),
    decode_cpu_us: AtomicU64::new(0),
    jpeg_cpu_us: AtomicU64::new(0),
};

/// This thread's CPU time (user + system), microseconds; 0 where the kernel does not say.
fn thread_cpu_us() -> u64 {
    getrusage(UsageWho::RUSAGE_THREAD)
        .map(|u| {
            let us = |t: nix::sys::time::TimeVal| {
                u64::try_from(t.tv_sec()).unwrap_or(0) * 1_000_000
                    + u64::try_from(t.tv_usec()).unwrap_or(0)
            };
            us(u.user_time()) + us(u.system_time())
        })
        .unwrap_or(0)
}

/// A JPEG made from a decoded picture.
#[derive(Debug, Clone)]
pub struct Encoded {
    pub jpeg: Vec<u8>,
    pub width: u16,
    pub height: u16,
}

/// One decoded I420 picture's planes, as `jpeg-encoder` reads them row by row, each sample
/// through its plane's [`Range`] table.
struct Planes<'a> {
    y: &'a [u8],
    u: &'a [u8],
    v: &'a [u8],
    y_stride: usize,
    uv_stride: usize,
    width: u16,
    height: u16,
    range: &'a Range,
}

/// Sample tables into full range: identity for a full-range stream, the widening of limited
/// range otherwise (luma 16–235 and chroma 16–240 onto 0–255, rounded and clamped).
struct Range {
    luma: [u8; 256],
    chroma: [u8; 256],
}

impl Range {
    fn new(full: bool) -> Range {
        let mut r = Range {
            luma: [0; 256],
            chroma: [0; 256],
        };
        for v in 0..256usize {
            let (l, c) = if full {
                (v as f64, v as f64)
            } else {
                let x = v as f64;
                (
                    (x - 16.0) * 255.0 / 219.0,
                    (x - 128.0) * 255.0 / 224.0 + 128.0,
                )
            };
            r.luma[v] = l.round().clamp(0.0, 255.0) as u8;
            r.chroma[v] = c.round().clamp(0.0, 255.0) as u8;
        }
        r
    }
}

/// Whether the stream uses full-range samples, from the first SPS in `unit` (Annex B): its VUI
/// `video_full_range_flag`. `false` (limited, the standard's default) when the SPS has no VUI
/// or no video signal type, and when no SPS is there or it does not parse.
pub fn full_range(unit: &[u8]) -> bool {
    nal_units(unit)
        .find(|n| n.first().is_some_and(|h| h & 0x1f == 7))
        .and_then(|nal| {
            let rbsp = decode_nal(nal).ok()?;
            let sps = SeqParameterSet::from_bits(BitReader::new(&rbsp[..])).ok()?;
            sps.vui_parameters?
                .video_signal_type
                .map(|t| t.video_full_range_flag)
        })
        .unwrap_or(false)
}

/// The NAL units of an Annex B byte stream (start codes `00 00 01` or `00 00 00 01`).
fn nal_units(stream: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= stream.len() {
        if stream[i] == 0 && stream[i + 1] == 0 && stream[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let ends: Vec<usize> = starts
        .iter()
        .skip(1)
        .map(|&next| {
            // The start code before `next`, and the zero of a four-byte one.
            let mut e = next - 3;
            while e > 0 && stream[e - 1] == 0 {
                e -= 1;
            }
            e
        })
        .chain(std::iter::once(stream.len()))
        .collect();
    starts
        .into_iter()
        .zip(ends)
        .filter(|(a, b)| a < b)
        .map(move |(a, b)| &stream[a..b])
}

impl ImageBuffer for Planes<'_> {
    fn get_jpeg_color_type(&self) -> JpegColorType {
        JpegColorType::Ycbcr
    }

    fn width(&self) -> u16 {
        self.width
    }

    fn height(&self) -> u16 {
        self.height
    }

    fn fill_buffers(&self, row: u16, buffers: &mut [Vec<u8>; 4]) {
        let (w, r) = (usize::from(self.width), usize::from(row));
        let y_row = &self.y[r * self.y_stride..r * self.y_stride + w];
        let (luma, chroma) = (&self.range.luma, &self.range.chroma);
        buffers[0].extend(y_row.iter().map(|&v| luma[usize::from(v)]));
        // Chroma is stored at half resolution; the encoder subsamples 4:2:0 again, so each
        // chroma sample is repeated for the two pixels it covers.
        let c = (r / 2) * self.uv_stride;
        for x in 0..w {
            buffers[1].push(chroma[usize::from(self.u[c + x / 2])]);
            buffers[2].push(chroma[usize::from(self.v[c + x / 2])]);
        }
    }
}

/// A fresh OpenH264 decoder.
fn decoder() -> Result<Decoder, String> {
    Decoder::with_api_config(
        OpenH264API::from_source(),
        DecoderConfig::new().flush_after_decode(Flush::NoFlush),
    )
    .map_err(|e| format!("the H.264 decoder cannot start ({e})"))
}

/// Decode `units` (a keyframe first, then the frames after it, Annex B) and encode the picture
/// of the last one as a JPEG of `quality`.
pub fn encode_gop<B: AsRef<[u8]>>(units: &[B], quality: u8) -> Result<Encoded, String> {
    STATS.gops.fetch_add(1, Ordering::Relaxed);
    STATS
        .pictures
        .fetch_add(units.len() as u64, Ordering::Relaxed);
    let t0 = thread_cpu_us();
    let mut jpeg_us = 0;
    let out = decode_and_encode(units, quality, &mut jpeg_us);
    let total = thread_cpu_us().saturating_sub(t0);
    STATS
        .decode_cpu_us
        .fetch_add(total.saturating_sub(jpeg_us), Ordering::Relaxed);
    STATS.jpeg_cpu_us.fetch_add(jpeg_us, Ordering::Relaxed);
    out
}

/// [`encode_gop`]'s work; `jpeg_us` gets the thread CPU time spent encoding the JPEG.
fn decode_and_encode<B: AsRef<[u8]>>(
    units: &[B],
    quality: u8,
    jpeg_us: &mut u64,
) -> Result<Encoded, String> {
    let Some(last) = units.len().checked_sub(1) else {
        return Err("no frame to decode".into());
    };
    // The keyframe carries the SPS that governs this GOP (retina's FrameFormat::SIMPLE).
    let range = Range::new(full_range(units[0].as_ref()));
    let mut dec = decoder()?;
    for (i, unit) in units.iter().enumerate() {
        let flush = if i == last {
            Flush::Flush
        } else {
            Flush::NoFlush
        };
        let picture = dec
            .decode_with_options(
                unit.as_ref(),
                DecodeOptions::new().flush_after_decode(flush),
            )
            .map_err(|e| {
                format!(
                    "the H.264 decoder refused frame {} of {} ({e})",
                    i + 1,
                    units.len()
                )
            })?;
        if i == last {
            if let Some(p) = picture {
                return timed(jpeg_us, || encode_yuv(&p, &range, quality));
            }
        }
    }
    // The decoder held the last picture back (reordering): take what it still has.
    let held = dec
        .flush_remaining()
        .map_err(|e| format!("the H.264 decoder failed flushing ({e})"))?;
    match held.last() {
        Some(p) => timed(jpeg_us, || encode_yuv(p, &range, quality)),
        None => Err("the H.264 decoder gave no picture for the frame".into()),
    }
}

/// Run `f`, adding this thread's CPU time in it to `us`.
fn timed<T>(us: &mut u64, f: impl FnOnce() -> T) -> T {
    let t0 = thread_cpu_us();
    let out = f();
    *us += thread_cpu_us().saturating_sub(t0);
    out
}

/// Encode one decoded picture, its samples through `range`.
fn encode_yuv(p: &impl YUVSource, range: &Range, quality: u8) -> Result<Encoded, String> {
    let (w, h) = p.dimensions();
    let (ys, us, _vs) = p.strides();
    let (width, height) = (
        u16::try_from(w).map_err(|_| format!("picture width {w} is too large for a JPEG"))?,
        u16::try_from(h).map_err(|_| format!("picture height {h} is too large for a JPEG"))?,
    );
    if width == 0 || height == 0 {
        return Err("the decoder gave an empty picture".into());
    }
    let planes = Planes {
        y: p.y(),
        u: p.u(),
        v: p.v(),
        y_stride: ys,
        uv_stride: us,
        width,
        height,
        range,
    };
    // Bounds: the slices must hold every row the encoder will read.
    let need_y = (usize::from(height) - 1) * ys + usize::from(width);
    let need_uv = ((usize::from(height) - 1) / 2) * us + (usize::from(width) - 1) / 2 + 1;
    if planes.y.len() < need_y || planes.u.len() < need_uv || planes.v.len() < need_uv {
        return Err("the decoded picture's planes are shorter than its size".into());
    }
    let mut out = Vec::with_capacity(usize::from(width) * usize::from(height) / 8);
    let mut enc = Encoder::new(&mut out, quality);
    enc.set_sampling_factor(SamplingFactor::F_2_2);
    enc.encode_image(planes)
        .map_err(|e| format!("JPEG encoding failed ({e})"))?;
    Ok(Encoded {
        jpeg: out,
        width,
        height,
    })
}

/// Encode packed RGB as a JPEG (tests and the bench's encoder comparison).
pub fn encode_rgb(rgb: &[u8], width: u16, height: u16, quality: u8) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    Encoder::new(&mut out, quality)
        .encode(rgb, width, height, ColorType::Rgb)
        .map_err(|e| format!("JPEG encoding failed ({e})"))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openh264::encoder::Encoder as H264Encoder;
    use openh264::formats::{RgbSliceU8, YUVBuffer};

    /// A few H.264 access units of a moving gradient, encoded with OpenH264's own encoder.
    fn stream(w: usize, h: usize, frames: usize) -> Vec<Vec<u8>> {
        let mut enc = H264Encoder::new().unwrap();
        (0..frames)
            .map(|i| {
                let rgb: Vec<u8> = (0..w * h)
                    .flat_map(|p| {
                        let (x, y) = (p % w, p / w);
                        [((x + i * 8) % 256) as u8, (y % 256) as u8, 128]
                    })
                    .collect();
                let yuv = YUVBuffer::from_rgb_source(RgbSliceU8::new(&rgb, (w, h)));
                enc.encode(&yuv).unwrap().to_vec()
            })
            .collect()
    }

    /// One frame of a flat colour, encoded with OpenH264's encoder (limited range, no VUI).
    fn flat(rgb: [u8; 3]) -> Vec<u8> {
        let (w, h) = (64, 48);
        let px: Vec<u8> = (0..w * h).flat_map(|_| rgb).collect();
        let yuv = YUVBuffer::from_rgb_source(RgbSliceU8::new(&px, (w, h)));
        H264Encoder::new().unwrap().encode(&yuv).unwrap().to_vec()
    }

    #[test]
    fn limited_range_black_and_white_become_jpeg_black_and_white() {
        let black = flat([0, 0, 0]);
        assert!(
            !full_range(&black),
            "OpenH264's encoder writes no full-range flag"
        );
        let luma = |unit: Vec<u8>| {
            let e = encode_gop(&[unit], JPEG_QUALITY).unwrap();
            crate::capture::look::of_jpeg(&e.jpeg).unwrap().luma
        };
        // Copied as decoded these would be about 16 and 235: washed out.
        assert!(luma(black) <= 3, "black stays black");
        assert!(luma(flat([255, 255, 255])) >= 250, "white stays white");
    }

    #[test]
    fn the_range_tables_widen_limited_range_and_keep_full_range() {
        let limited = Range::new(false);
        assert_eq!(
            (
                limited.luma[16],
                limited.luma[235],
                limited.luma[0],
                limited.luma[255]
            ),
            (0, 255, 0, 255)
        );
        // Chroma 16 maps to 0.5, rounded up; 240 to 255.5, clamped.
        assert_eq!(
            (limited.chroma[128], limited.chroma[16], limited.chroma[240]),
            (128, 1, 255)
        );
        let full = Range::new(true);
        assert!((0..256).all(|v| full.luma[v] as usize == v && full.chroma[v] as usize == v));
    }

    #[test]
    fn nal_units_split_on_three_and_four_byte_start_codes() {
        let s = [
            0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 4, 5,
        ];
        let units: Vec<&[u8]> = nal_units(&s).collect();
        assert_eq!(
            units,
            vec![&[0x67, 1, 2][..], &[0x68, 3][..], &[0x65, 4, 5][..]]
        );
        assert!(
            !full_range(&s),
            "an SPS that does not parse is limited range"
        );
    }

    #[test]
    fn a_gop_decodes_to_a_jpeg_of_its_size() {
        let units = stream(320, 176, 5);
        let e = encode_gop(&units, JPEG_QUALITY).unwrap();
        assert_eq!((e.width, e.height), (320, 176));
        assert_eq!(
            crate::capture::jpeg::validate(&e.jpeg),
            Ok((320, 176)),
            "a valid JPEG"
        );
        // The picture is the last frame's: it differs from the keyframe's.
        let first = encode_gop(&units[..1], JPEG_QUALITY).unwrap();
        assert_ne!(first.jpeg, e.jpeg);
    }

    #[test]
    fn garbage_is_refused_with_a_sentence_not_a_panic() {
        let e = encode_gop(&[vec![0, 0, 0, 1, 0x65, 1, 2, 3]], 80).unwrap_err();
        assert!(e.contains("decoder") || e.contains("picture"), "{e}");
        assert!(encode_gop::<Vec<u8>>(&[], 80).is_err());
    }
}
