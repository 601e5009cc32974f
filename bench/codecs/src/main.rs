//! `codecs`: issue 15's codec measurements (docs/rtsp.md, docs/benchmarks.md).
//!
//! On the clips `make-clips.sh` makes (H.264 and H.265 elementary streams, Annex B) it measures,
//! each against ffmpeg run as a child with `-threads 1`:
//! 1. H.264 decoding with OpenH264 (the main crate's version): CPU per frame;
//! 2. JPEG encoders on the decoded pictures (jpeg-encoder, `image`, libjpeg-turbo's TurboJPEG,
//!    mozjpeg when built with the `mozjpeg` feature, ffmpeg's mjpeg `-q:v 3`): CPU per frame,
//!    bytes per frame, PSNR and SSIM of Y against the picture encoded, each encoder at the quality
//!    whose mean size is closest to ffmpeg's `-q:v 3` on the same pictures;
//! 3. H.265 decoding with libde265 (compiled from source) and, with the `rusty_h265` feature, the
//!    pure-Rust rusty_h265: CPU per frame.
//!
//! CPU is measured, not wall time (the machine is shared): `getrusage(RUSAGE_THREAD)` around the
//! in-process work (everything runs on this one thread), `getrusage(RUSAGE_CHILDREN)` around each
//! ffmpeg child. Every cell is the median of `--runs` runs (default 5). ffmpeg's per-frame figure
//! is marginal: (CPU for the whole clip − CPU for its first frame only) / (frames − 1), so its
//! process start and stream probing are not charged to each frame; both are reported.
//!
//! It fails loudly (a panic with the reason): it is a measuring tool, not part of Heldar.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// CPU time

fn rusage(who: libc::c_int) -> Duration {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct we own.
    let rc = unsafe { libc::getrusage(who, &mut ru) };
    assert_eq!(rc, 0, "getrusage failed");
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn thread_cpu() -> Duration {
    rusage(libc::RUSAGE_THREAD)
}

/// CPU of `f` on this thread, in milliseconds.
fn cpu_ms<T>(f: impl FnOnce() -> T) -> (f64, T) {
    let t0 = thread_cpu();
    let out = f();
    ((thread_cpu() - t0).as_secs_f64() * 1e3, out)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// CPU (user + system) of one ffmpeg child, in milliseconds.
fn ffmpeg_cpu_ms(args: &[&str]) -> f64 {
    let t0 = rusage(libc::RUSAGE_CHILDREN);
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin"])
        .args(args)
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "ffmpeg {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (rusage(libc::RUSAGE_CHILDREN) - t0).as_secs_f64() * 1e3
}

// ---------------------------------------------------------------------------------------------
// Elementary streams

/// Split an Annex B stream into NAL units (without start codes).
fn nal_units(data: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut units = Vec::new();
    for (k, &s) in starts.iter().enumerate() {
        let mut e = starts.get(k + 1).map_or(data.len(), |&n| n - 3);
        // A four-byte start code leaves a zero before the next three-byte one.
        while e > s && data[e - 1] == 0 && k + 1 < starts.len() {
            e -= 1;
        }
        units.push(&data[s..e]);
    }
    units
}

#[derive(Clone, Copy, PartialEq)]
enum Codec {
    H264,
    H265,
}

/// Group NAL units into access units (Annex B again, with 4-byte start codes): a new unit starts
/// at a parameter set / SEI / delimiter after a picture's slices, or at a slice that is the
/// first of its picture.
fn access_units(data: &[u8], codec: Codec) -> Vec<Vec<u8>> {
    let mut aus: Vec<Vec<u8>> = Vec::new();
    let mut cur = Vec::new();
    let mut cur_has_vcl = false;
    for nal in nal_units(data) {
        if nal.is_empty() {
            continue;
        }
        let (vcl, first_slice, prefix) = match codec {
            Codec::H264 => {
                let t = nal[0] & 0x1f;
                let vcl = (1..=5).contains(&t);
                (
                    vcl,
                    vcl && nal.len() > 1 && nal[1] & 0x80 != 0,
                    matches!(t, 6..=9),
                )
            }
            Codec::H265 => {
                let t = (nal[0] >> 1) & 0x3f;
                let vcl = t < 32;
                (
                    vcl,
                    vcl && nal.len() > 2 && nal[2] & 0x80 != 0,
                    matches!(t, 32..=35 | 39),
                )
            }
        };
        if cur_has_vcl && (prefix || first_slice) {
            aus.push(std::mem::take(&mut cur));
            cur_has_vcl = false;
        }
        cur.extend_from_slice(&[0, 0, 0, 1]);
        cur.extend_from_slice(nal);
        cur_has_vcl |= vcl;
    }
    if !cur.is_empty() {
        aus.push(cur);
    }
    aus
}

// ---------------------------------------------------------------------------------------------
// Pictures

/// One decoded 8-bit I420 picture, planes packed (stride = width).
struct Yuv {
    w: usize,
    h: usize,
    y: Vec<u8>,
    u: Vec<u8>,
    v: Vec<u8>,
}

fn pack(w: usize, h: usize, planes: [(&[u8], usize); 3]) -> Yuv {
    let copy = |(p, stride): (&[u8], usize), pw: usize, ph: usize| {
        let mut out = Vec::with_capacity(pw * ph);
        for r in 0..ph {
            out.extend_from_slice(&p[r * stride..r * stride + pw]);
        }
        out
    };
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    Yuv {
        w,
        h,
        y: copy(planes[0], w, h),
        u: copy(planes[1], cw, ch),
        v: copy(planes[2], cw, ch),
    }
}

// ---------------------------------------------------------------------------------------------
// Decoders

/// OpenH264 exactly as Heldar configures it (src/capture/native/decode.rs). Returns the number of
/// pictures and the packed pictures whose index `keep` accepts.
fn decode_openh264(aus: &[Vec<u8>], keep: &dyn Fn(usize) -> bool) -> (usize, Vec<Yuv>) {
    use openh264::decoder::{DecodeOptions, Decoder, DecoderConfig, Flush};
    use openh264::formats::YUVSource;
    use openh264::OpenH264API;
    let mut dec = Decoder::with_api_config(
        OpenH264API::from_source(),
        DecoderConfig::new().flush_after_decode(Flush::NoFlush),
    )
    .expect("OpenH264 starts");
    let mut n = 0;
    let mut kept = Vec::new();
    let take = |p: &dyn YUVSource, n: &mut usize, kept: &mut Vec<Yuv>| {
        if keep(*n) {
            let (w, h) = p.dimensions();
            let (ys, us, vs) = p.strides();
            kept.push(pack(w, h, [(p.y(), ys), (p.u(), us), (p.v(), vs)]));
        }
        *n += 1;
    };
    for au in aus {
        let pic = dec
            .decode_with_options(au, DecodeOptions::new().flush_after_decode(Flush::NoFlush))
            .expect("OpenH264 decodes");
        if let Some(p) = pic {
            take(&p, &mut n, &mut kept);
        }
    }
    for p in dec.flush_remaining().expect("OpenH264 flushes") {
        take(&p, &mut n, &mut kept);
    }
    (n, kept)
}

/// libde265 (compiled from source by libde265-sys2's `embedded-libde265`), one thread.
fn decode_libde265(aus: &[Vec<u8>]) -> usize {
    use libde265_rs::{new_decoder, DeError, DecodeResult};
    let (mut input, mut output) = new_decoder().expect("libde265 starts");
    let mut n = 0;
    let drain = |input: &mut libde265_rs::DecoderInput,
                 output: &mut libde265_rs::DecoderOutput,
                 n: &mut usize| loop {
        match input.decode() {
            Ok(DecodeResult::Done) => break true,
            Ok(DecodeResult::CallAgain) | Err(DeError::ErrorImageBufferFull) => {
                while let Some(img) = output.next_picture() {
                    std::hint::black_box(img.plane(libde265_rs::Channel::Y).0[0]);
                    *n += 1;
                }
            }
            Err(DeError::ErrorWaitingForInputData) => break false,
            Err(e) => panic!("libde265: {e:?}"),
        }
    };
    for au in aus {
        input.push_data(au, 0, 0).expect("libde265 takes data");
        drain(&mut input, &mut output, &mut n);
    }
    input.flush_data().expect("libde265 flushes");
    while !drain(&mut input, &mut output, &mut n) {}
    while output.next_picture().is_some() {
        n += 1;
    }
    n
}

#[cfg(feature = "rusty_h265")]
fn decode_rusty_h265(aus: &[Vec<u8>]) -> Option<usize> {
    let mut dec = rusty_h265::Decoder::new();
    let mut n = 0;
    for au in aus {
        if let Err(e) = dec.push_annexb(au, None) {
            eprintln!("rusty_h265 refused an access unit: {e:?}");
            return None;
        }
        while let Ok(f) = dec.next_frame() {
            std::hint::black_box(f.picture.planes[0].data[0]);
            n += 1;
        }
    }
    dec.flush();
    while let Ok(f) = dec.next_frame() {
        std::hint::black_box(f.picture.planes[0].data[0]);
        n += 1;
    }
    Some(n)
}

#[cfg(not(feature = "rusty_h265"))]
fn decode_rusty_h265(_aus: &[Vec<u8>]) -> Option<usize> {
    None
}

// ---------------------------------------------------------------------------------------------
// JPEG encoders: each takes the packed I420 picture and a quality.

/// jpeg-encoder fed the YUV planes directly, as Heldar does (chroma repeated, re-subsampled 4:2:0).
fn enc_jpeg_encoder(p: &Yuv, q: u8) -> Vec<u8> {
    use jpeg_encoder::{Encoder, ImageBuffer, JpegColorType, SamplingFactor};
    struct Planes<'a>(&'a Yuv);
    impl ImageBuffer for Planes<'_> {
        fn get_jpeg_color_type(&self) -> JpegColorType {
            JpegColorType::Ycbcr
        }
        fn width(&self) -> u16 {
            self.0.w as u16
        }
        fn height(&self) -> u16 {
            self.0.h as u16
        }
        fn fill_buffers(&self, row: u16, buffers: &mut [Vec<u8>; 4]) {
            let p = self.0;
            let r = usize::from(row);
            buffers[0].extend_from_slice(&p.y[r * p.w..(r + 1) * p.w]);
            let cw = p.w.div_ceil(2);
            let c = (r / 2) * cw;
            for x in 0..p.w {
                buffers[1].push(p.u[c + x / 2]);
                buffers[2].push(p.v[c + x / 2]);
            }
        }
    }
    let mut out = Vec::with_capacity(p.w * p.h / 8);
    let mut enc = Encoder::new(&mut out, q);
    enc.set_sampling_factor(SamplingFactor::F_2_2);
    enc.encode_image(Planes(p)).expect("jpeg-encoder encodes");
    out
}

/// BT.601 limited-range YUV → RGB (integer), what a caller of an RGB-only encoder must do first.
fn to_rgb(p: &Yuv) -> Vec<u8> {
    let mut rgb = Vec::with_capacity(p.w * p.h * 3);
    let cw = p.w.div_ceil(2);
    for r in 0..p.h {
        for x in 0..p.w {
            let y = (i32::from(p.y[r * p.w + x]) - 16) * 298;
            let ci = (r / 2) * cw + x / 2;
            let (u, v) = (i32::from(p.u[ci]) - 128, i32::from(p.v[ci]) - 128);
            let c = |v: i32| ((v + 128) >> 8).clamp(0, 255) as u8;
            rgb.push(c(y + 409 * v));
            rgb.push(c(y - 100 * u - 208 * v));
            rgb.push(c(y + 516 * u));
        }
    }
    rgb
}

/// The `image` crate's JpegEncoder takes RGB only: the conversion is charged to it.
fn enc_image(p: &Yuv, q: u8) -> Vec<u8> {
    let rgb = to_rgb(p);
    let mut out = Vec::with_capacity(p.w * p.h / 8);
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, q)
        .encode(&rgb, p.w as u32, p.h as u32, image::ExtendedColorType::Rgb8)
        .expect("image encodes");
    out
}

/// Debian's libturbojpeg (TurboJPEG 2 API, linked directly: the `turbojpeg` crate wants the
/// TurboJPEG 3 API that Debian 12's libjpeg-turbo 2.1.5 does not have).
mod tj {
    use std::os::raw::{c_char, c_int, c_uchar, c_ulong, c_void};
    #[link(name = "turbojpeg")]
    extern "C" {
        pub fn tjInitCompress() -> *mut c_void;
        pub fn tjInitDecompress() -> *mut c_void;
        pub fn tjDestroy(h: *mut c_void) -> c_int;
        pub fn tjBufSize(w: c_int, h: c_int, subsamp: c_int) -> c_ulong;
        pub fn tjCompressFromYUVPlanes(
            h: *mut c_void,
            planes: *const *const c_uchar,
            width: c_int,
            strides: *const c_int,
            height: c_int,
            subsamp: c_int,
            jpeg: *mut *mut c_uchar,
            size: *mut c_ulong,
            quality: c_int,
            flags: c_int,
        ) -> c_int;
        pub fn tjDecompress2(
            h: *mut c_void,
            jpeg: *const c_uchar,
            size: c_ulong,
            dst: *mut c_uchar,
            width: c_int,
            pitch: c_int,
            height: c_int,
            pixel_format: c_int,
            flags: c_int,
        ) -> c_int;
        pub fn tjGetErrorStr2(h: *mut c_void) -> *const c_char;
    }
    pub const SAMP_420: c_int = 2;
    pub const PF_GRAY: c_int = 6;
    pub const FLAG_NOREALLOC: c_int = 1024;

    pub struct Tj(*mut c_void);
    impl Tj {
        pub fn compressor() -> Tj {
            let h = unsafe { tjInitCompress() };
            assert!(!h.is_null());
            Tj(h)
        }
        pub fn decompressor() -> Tj {
            let h = unsafe { tjInitDecompress() };
            assert!(!h.is_null());
            Tj(h)
        }
        fn err(&self) -> String {
            unsafe { std::ffi::CStr::from_ptr(tjGetErrorStr2(self.0)) }
                .to_string_lossy()
                .into_owned()
        }
        /// Encode packed I420 planes, 4:2:0, into a fresh buffer.
        pub fn compress(&self, p: &super::Yuv, q: u8) -> Vec<u8> {
            let (w, h) = (p.w as c_int, p.h as c_int);
            let cap = unsafe { tjBufSize(w, h, SAMP_420) };
            let mut out = vec![0u8; cap as usize];
            let mut ptr = out.as_mut_ptr();
            let mut size = cap;
            let planes = [p.y.as_ptr(), p.u.as_ptr(), p.v.as_ptr()];
            let cw = p.w.div_ceil(2) as c_int;
            let strides = [w, cw, cw];
            let rc = unsafe {
                tjCompressFromYUVPlanes(
                    self.0,
                    planes.as_ptr(),
                    w,
                    strides.as_ptr(),
                    h,
                    SAMP_420,
                    &mut ptr,
                    &mut size,
                    c_int::from(q),
                    FLAG_NOREALLOC,
                )
            };
            assert_eq!(rc, 0, "TurboJPEG: {}", self.err());
            out.truncate(size as usize);
            out
        }
        /// The luma of a JPEG (YCbCr → grey keeps Y as coded).
        pub fn luma(&self, jpeg: &[u8], w: usize, h: usize) -> Vec<u8> {
            let mut out = vec![0u8; w * h];
            let rc = unsafe {
                tjDecompress2(
                    self.0,
                    jpeg.as_ptr(),
                    jpeg.len() as c_ulong,
                    out.as_mut_ptr(),
                    w as c_int,
                    w as c_int,
                    h as c_int,
                    PF_GRAY,
                    0,
                )
            };
            assert_eq!(rc, 0, "TurboJPEG: {}", self.err());
            out
        }
    }
    impl Drop for Tj {
        fn drop(&mut self) {
            unsafe { tjDestroy(self.0) };
        }
    }
}

/// mozjpeg with its defaults (progressive, trellis quantisation, optimised Huffman), fed
/// interleaved YCbCr scanlines (no colour conversion).
#[cfg(feature = "mozjpeg")]
fn enc_mozjpeg(p: &Yuv, q: u8, fastest: bool) -> Vec<u8> {
    let mut c = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_YCbCr);
    c.set_color_space(mozjpeg::ColorSpace::JCS_YCbCr);
    if fastest {
        c.set_fastest_defaults();
    }
    c.set_size(p.w, p.h);
    c.set_quality(f32::from(q));
    c.set_chroma_sampling_pixel_sizes((2, 2), (2, 2));
    let mut s = c.start_compress(Vec::new()).expect("mozjpeg starts");
    let cw = p.w.div_ceil(2);
    let mut line = Vec::with_capacity(p.w * 3);
    for r in 0..p.h {
        line.clear();
        for x in 0..p.w {
            let ci = (r / 2) * cw + x / 2;
            line.extend_from_slice(&[p.y[r * p.w + x], p.u[ci], p.v[ci]]);
        }
        s.write_scanlines(&line).expect("mozjpeg writes");
    }
    s.finish().expect("mozjpeg finishes")
}

// ---------------------------------------------------------------------------------------------
// Quality

fn psnr(a: &[u8], b: &[u8]) -> f64 {
    let mse = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| {
            let d = f64::from(x) - f64::from(y);
            d * d
        })
        .sum::<f64>()
        / a.len() as f64;
    if mse == 0.0 {
        99.0
    } else {
        10.0 * (255.0f64 * 255.0 / mse).log10()
    }
}

/// Mean SSIM of luma over non-overlapping 8×8 windows (the usual constants).
fn ssim(a: &[u8], b: &[u8], w: usize, h: usize) -> f64 {
    let (c1, c2) = ((0.01f64 * 255.0).powi(2), (0.03f64 * 255.0).powi(2));
    let (mut sum, mut n) = (0.0, 0usize);
    for by in (0..h.saturating_sub(7)).step_by(8) {
        for bx in (0..w.saturating_sub(7)).step_by(8) {
            let (mut sa, mut sb, mut saa, mut sbb, mut sab) = (0.0, 0.0, 0.0, 0.0, 0.0);
            for y in by..by + 8 {
                for x in bx..bx + 8 {
                    let (p, q) = (f64::from(a[y * w + x]), f64::from(b[y * w + x]));
                    sa += p;
                    sb += q;
                    saa += p * p;
                    sbb += q * q;
                    sab += p * q;
                }
            }
            let (ma, mb) = (sa / 64.0, sb / 64.0);
            let (va, vb, cov) = (
                saa / 64.0 - ma * ma,
                sbb / 64.0 - mb * mb,
                sab / 64.0 - ma * mb,
            );
            sum += ((2.0 * ma * mb + c1) * (2.0 * cov + c2))
                / ((ma * ma + mb * mb + c1) * (va + vb + c2));
            n += 1;
        }
    }
    sum / n as f64
}

// ---------------------------------------------------------------------------------------------
// The run

struct Opts {
    clips: PathBuf,
    runs: usize,
    /// Pictures kept per clip for the JPEG comparison (spread evenly over the clip).
    sample: usize,
    only: Option<String>,
}

fn opts() -> Opts {
    let mut o = Opts {
        clips: PathBuf::from("clips"),
        runs: 5,
        sample: 20,
        only: None,
    };
    let mut a = std::env::args().skip(1);
    while let Some(k) = a.next() {
        let mut v = || a.next().unwrap_or_else(|| panic!("{k} needs a value"));
        match k.as_str() {
            "--clips" => o.clips = PathBuf::from(v()),
            "--runs" => o.runs = v().parse().expect("--runs N"),
            "--sample" => o.sample = v().parse().expect("--sample N"),
            "--only" => o.only = Some(v()),
            _ => panic!(
                "usage: codecs [--clips DIR] [--runs N] [--sample N] [--only h264|jpeg|h265]"
            ),
        }
    }
    o
}

const CLIPS: [&str; 4] = [
    "testsrc2-360p",
    "mandelbrot-360p",
    "testsrc2-1080p",
    "mandelbrot-1080p",
];

/// ffmpeg `-threads 1` decoding `clip` to nothing: (marginal ms per frame, ms for the first
/// frame alone including process start), medians.
fn ffmpeg_decode(clip: &Path, frames: usize, runs: usize) -> (f64, f64) {
    let c = clip.to_str().unwrap();
    let all = median(
        (0..runs)
            .map(|_| ffmpeg_cpu_ms(&["-threads", "1", "-i", c, "-f", "null", "-"]))
            .collect(),
    );
    let one = median(
        (0..runs)
            .map(|_| {
                ffmpeg_cpu_ms(&[
                    "-threads",
                    "1",
                    "-i",
                    c,
                    "-frames:v",
                    "1",
                    "-f",
                    "null",
                    "-",
                ])
            })
            .collect(),
    );
    ((all - one) / (frames - 1) as f64, one)
}

fn h264(o: &Opts) {
    println!(
        "\n### H.264 decode, CPU ms per frame (median of {} runs)\n",
        o.runs
    );
    println!("| clip | frames | bytes/frame | OpenH264 0.9.9 | ffmpeg -threads 1 (marginal) | ffmpeg first frame incl. start |");
    println!("|---|---|---|---|---|---|");
    for name in CLIPS {
        let path = o.clips.join(format!("{name}.h264"));
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let aus = access_units(&data, Codec::H264);
        let mut frames = 0;
        let ms = median(
            (0..o.runs)
                .map(|_| {
                    let (ms, (n, _)) = cpu_ms(|| decode_openh264(&aus, &|_| false));
                    frames = n;
                    ms / n as f64
                })
                .collect(),
        );
        let (ff, ff1) = ffmpeg_decode(&path, frames, o.runs);
        println!(
            "| {name} | {frames} | {} | {ms:.2} | {ff:.2} | {ff1:.0} |",
            data.len() / frames
        );
    }
}

fn h265(o: &Opts) {
    println!(
        "\n### H.265 decode, CPU ms per frame (median of {} runs)\n",
        o.runs
    );
    println!("| clip | frames | libde265 (embedded, 1 thread) | rusty_h265 | ffmpeg -threads 1 (marginal) | ffmpeg first frame incl. start |");
    println!("|---|---|---|---|---|---|");
    for name in CLIPS {
        let path = o.clips.join(format!("{name}.h265"));
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let aus = access_units(&data, Codec::H265);
        let mut frames = 0;
        let de = median(
            (0..o.runs)
                .map(|_| {
                    let (ms, n) = cpu_ms(|| decode_libde265(&aus));
                    frames = n;
                    ms / n as f64
                })
                .collect(),
        );
        let mut rusty = Vec::new();
        for _ in 0..o.runs {
            match cpu_ms(|| decode_rusty_h265(&aus)) {
                (ms, Some(n)) => {
                    if n != frames {
                        eprintln!("rusty_h265 gave {n} pictures of {frames} on {name}");
                    }
                    rusty.push(ms / n.max(1) as f64);
                }
                (_, None) => break,
            }
        }
        let rusty = if rusty.is_empty() {
            "—".to_string()
        } else {
            format!("{:.2}", median(rusty))
        };
        let (ff, ff1) = ffmpeg_decode(&path, frames, o.runs);
        println!("| {name} | {frames} | {de:.2} | {rusty} | {ff:.2} | {ff1:.0} |");
    }
}

type Enc = Box<dyn Fn(&Yuv, u8) -> Vec<u8>>;

fn encoders() -> Vec<(&'static str, Enc)> {
    let tj = tj::Tj::compressor();
    let mut v: Vec<(&'static str, Enc)> = vec![
        (
            if cfg!(feature = "simd") {
                "jpeg-encoder 0.6.1 (simd)"
            } else {
                "jpeg-encoder 0.6.1 (scalar)"
            },
            Box::new(enc_jpeg_encoder),
        ),
        ("image 0.25 JpegEncoder (+ YUV→RGB)", Box::new(enc_image)),
        (
            "libjpeg-turbo 2.1.5 (TurboJPEG, Debian)",
            Box::new(move |p: &Yuv, q: u8| tj.compress(p, q)),
        ),
    ];
    #[cfg(feature = "mozjpeg")]
    {
        v.push((
            "mozjpeg 0.10 (defaults)",
            Box::new(|p: &Yuv, q: u8| enc_mozjpeg(p, q, false)),
        ));
        v.push((
            "mozjpeg 0.10 (fastest)",
            Box::new(|p: &Yuv, q: u8| enc_mozjpeg(p, q, true)),
        ));
    }
    v
}

fn mean_bytes(enc: &Enc, pics: &[Yuv], q: u8) -> f64 {
    pics.iter().map(|p| enc(p, q).len() as f64).sum::<f64>() / pics.len() as f64
}

/// The quality (1..=100) whose mean size on `pics` is closest to `target` bytes.
fn match_quality(enc: &Enc, pics: &[Yuv], target: f64) -> u8 {
    // Size grows with quality: bisect, then take the nearer neighbour.
    let (mut lo, mut hi) = (1u8, 100u8);
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if mean_bytes(enc, pics, mid) < target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let (dl, dh) = (
        (mean_bytes(enc, pics, lo) - target).abs(),
        (mean_bytes(enc, pics, hi) - target).abs(),
    );
    if dl <= dh {
        lo
    } else {
        hi
    }
}

fn jpeg(o: &Opts) {
    let dj = tj::Tj::decompressor();
    let tmp = std::env::temp_dir().join(format!("heldar-codecs-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    println!(
        "\n### JPEG encode on decoded pictures ({} pictures per clip; CPU median of {} runs)\n",
        o.sample, o.runs
    );
    println!("| clip | encoder | setting | CPU ms/frame | bytes/frame | PSNR-Y dB | SSIM-Y |");
    println!("|---|---|---|---|---|---|---|");
    for name in CLIPS {
        let path = o.clips.join(format!("{name}.h264"));
        let c = path.to_str().unwrap();
        let data = std::fs::read(&path).unwrap();
        let aus = access_units(&data, Codec::H264);
        let (frames, _) = decode_openh264(&aus, &|_| false);
        let step = (frames / o.sample).max(1);
        let keep = |i: usize| i % step == step / 2 && i / step < o.sample;
        let (_, pics) = decode_openh264(&aus, &keep);
        let idx: Vec<usize> = (0..frames).filter(|&i| keep(i)).collect();
        let (w, h) = (pics[0].w, pics[0].h);

        // ffmpeg's mjpeg -q:v 3, as Heldar's ffmpeg path ran it: it converts to full-range
        // yuvj420p first, so its PSNR is taken against ffmpeg's own full-range picture.
        let jdir = tmp.join(name);
        std::fs::create_dir_all(&jdir).unwrap();
        let pattern = jdir.join("%05d.jpg");
        let pat = pattern.to_str().unwrap();
        let dec_ms = median(
            (0..o.runs)
                .map(|_| ffmpeg_cpu_ms(&["-threads", "1", "-i", c, "-f", "null", "-"]))
                .collect(),
        );
        let enc_ms = median(
            (0..o.runs)
                .map(|_| {
                    ffmpeg_cpu_ms(&[
                        "-threads", "1", "-i", c, "-threads", "1", "-c:v", "mjpeg", "-q:v", "3",
                        "-y", pat,
                    ])
                })
                .collect(),
        );
        let ff_ms = (enc_ms - dec_ms) / frames as f64;
        let reff = tmp.join(format!("{name}.yuvj"));
        ffmpeg_cpu_ms(&[
            "-i",
            c,
            "-pix_fmt",
            "yuvj420p",
            "-f",
            "rawvideo",
            "-y",
            reff.to_str().unwrap(),
        ]);
        let refy = std::fs::read(&reff).unwrap();
        let fsz = w * h + 2 * w.div_ceil(2) * h.div_ceil(2);
        let mut ff_bytes = 0.0;
        for i in 0..frames {
            ff_bytes += std::fs::metadata(jdir.join(format!("{:05}.jpg", i + 1)))
                .unwrap()
                .len() as f64;
        }
        ff_bytes /= frames as f64;
        let (mut ps, mut ss, mut sample_bytes) = (0.0, 0.0, 0.0);
        for &i in &idx {
            let j = std::fs::read(jdir.join(format!("{:05}.jpg", i + 1))).unwrap();
            sample_bytes += j.len() as f64;
            let y = dj.luma(&j, w, h);
            let r = &refy[i * fsz..i * fsz + w * h];
            ps += psnr(r, &y);
            ss += ssim(r, &y, w, h);
        }
        let k = idx.len() as f64;
        sample_bytes /= k;
        println!(
            "| {name} | ffmpeg mjpeg (full range) | -q:v 3 | {ff_ms:.2} | {ff_bytes:.0} | {:.2} | {:.4} |",
            ps / k,
            ss / k
        );
        std::fs::remove_dir_all(&jdir).ok();
        std::fs::remove_file(&reff).ok();

        for (ename, enc) in encoders() {
            for (label, q) in [
                ("85", 85u8),
                ("matched", match_quality(&enc, &pics, sample_bytes)),
            ] {
                if label == "85" && !ename.starts_with("jpeg-encoder") {
                    continue;
                }
                let ms = median(
                    (0..o.runs)
                        .map(|_| {
                            let (ms, _) = cpu_ms(|| {
                                for p in &pics {
                                    std::hint::black_box(enc(p, q));
                                }
                            });
                            ms / pics.len() as f64
                        })
                        .collect(),
                );
                let (mut bytes, mut ps, mut ss) = (0.0, 0.0, 0.0);
                for p in &pics {
                    let j = enc(p, q);
                    bytes += j.len() as f64;
                    let y = dj.luma(&j, w, h);
                    // The `image` path goes through RGB and back to full-range YCbCr: its luma
                    // is compared with the picture's luma expanded to full range.
                    let full;
                    let r: &[u8] = if ename.starts_with("image") {
                        full =
                            p.y.iter()
                                .map(|&v| {
                                    ((f64::from(v) - 16.0) * 255.0 / 219.0)
                                        .round()
                                        .clamp(0.0, 255.0) as u8
                                })
                                .collect::<Vec<u8>>();
                        &full
                    } else {
                        &p.y
                    };
                    ps += psnr(r, &y);
                    ss += ssim(r, &y, w, h);
                }
                let setting = if label == "85" {
                    "q 85 (Heldar's)".to_string()
                } else {
                    format!("q {q}")
                };
                println!(
                    "| {name} | {ename} | {setting} | {ms:.2} | {:.0} | {:.2} | {:.4} |",
                    bytes / k,
                    ps / k,
                    ss / k
                );
            }
        }
    }
    std::fs::remove_dir_all(&tmp).ok();
}

fn main() {
    let o = opts();
    let run = |what: &str| o.only.as_deref().is_none_or(|x| x == what);
    println!(
        "codecs: clips {}, {} runs per cell; load at start: {}",
        o.clips.display(),
        o.runs,
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    if run("h264") {
        h264(&o);
    }
    if run("jpeg") {
        jpeg(&o);
    }
    if run("h265") {
        h265(&o);
    }
    println!(
        "\nload at end: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
}
