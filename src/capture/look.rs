//! What a frame looks like, in two numbers: its mean luma (how dark it is) and a 64-bit
//! difference hash (what is where), for a schedule's `skip_dark` and `skip_unchanged`
//! (docs/schedules.md "Which frames are kept").
//!
//! Both come from one decode of the JPEG's luma plane only: zune-jpeg, asked for `Luma` out of a
//! YCbCr JPEG, entropy-decodes every block but runs the inverse DCT and upsampling on the Y
//! component alone, and converts no colour: measured on a debug build, a third of a full RGB
//! decode. (A DCT-scaled 1/8 decode would be cheaper still, but no crate in Heldar's dependency
//! tree offers one.) It runs on a blocking thread, once per slot of a schedule that asks for it.
//! The plane is then sampled (at most ~65,536 pixels) into a 9x8 grid of cell means, from
//! which the hash is taken.
//!
//! The hash is the classic difference hash ("dHash"): for each of the 8 rows, 8 bits saying
//! whether a cell is brighter than its right neighbour. It ignores noise, JPEG re-encoding and
//! small changes of exposure, and changes when something in the picture moves. Two frames are
//! **unchanged** when their hashes differ in at most [`MAX_DISTANCE`] of the 64 bits *and* their
//! mean lumas differ by at most [`MAX_LUMA_DELTA`]: a dHash alone cannot tell a uniformly lit
//! scene from the same scene at dusk, and an operator expects the frame where the lights went
//! out to be kept.
//!
//! Pure and synchronous; fails only when the bytes cannot be decoded (a sentence saying why),
//! which callers treat as "keep the frame".

/// Hash bits two frames may differ in and still be the same picture.
pub const MAX_DISTANCE: u32 = 2;

/// Mean-luma difference (of 255) two frames may have and still be the same picture.
pub const MAX_LUMA_DELTA: u8 = 8;

/// A frame in brief.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Look {
    /// Mean luma, 0 (black) to 255 (white).
    pub luma: u8,
    /// The 9x8 difference hash, row-major, most significant bit first.
    pub hash: u64,
}

impl Look {
    /// Whether `other` is the same picture as `self` (see the module docs).
    pub fn unchanged(&self, other: &Look) -> bool {
        distance(self.hash, other.hash) <= MAX_DISTANCE
            && self.luma.abs_diff(other.luma) <= MAX_LUMA_DELTA
    }

    /// The hash as 16 hex digits (events, logs).
    pub fn hash_hex(&self) -> String {
        format!("{:016x}", self.hash)
    }
}

/// Bits in which two hashes differ (their Hamming distance).
pub fn distance(a: u64, b: u64) -> u32 {
    (a ^ b).count_ones()
}

/// Decode `jpeg`'s luma plane and look at it.
///
/// # Errors
/// A sentence when the JPEG cannot be decoded.
pub fn of_jpeg(jpeg: &[u8]) -> Result<Look, String> {
    use zune_jpeg::zune_core::colorspace::ColorSpace;
    use zune_jpeg::zune_core::options::DecoderOptions;
    let options = DecoderOptions::default()
        .jpeg_set_out_colorspace(ColorSpace::Luma)
        // The frames were validated by capture; cameras larger than 16k pixels a side do not exist.
        .set_max_width(1 << 14)
        .set_max_height(1 << 14);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(jpeg, options);
    let pixels = decoder
        .decode()
        .map_err(|e| format!("the JPEG cannot be decoded: {e:?}"))?;
    let (w, h) = decoder
        .dimensions()
        .ok_or("the JPEG has no dimensions once decoded")?;
    // A grey JPEG decodes to one byte a pixel as asked; anything else (CMYK) is refused, not
    // misread.
    if w == 0 || h == 0 || pixels.len() != w * h {
        return Err(format!(
            "the JPEG decoded to {} bytes for {w}x{h} pixels, not one luma byte each",
            pixels.len()
        ));
    }
    Ok(of_luma(&pixels, w, h))
}

/// Look at a `w`×`h` luma plane (one byte a pixel, row-major). `pixels.len()` must be `w * h`,
/// both non-zero.
pub fn of_luma(pixels: &[u8], w: usize, h: usize) -> Look {
    assert!(w > 0 && h > 0 && pixels.len() == w * h, "a w*h luma plane");
    const GW: usize = 9;
    const GH: usize = 8;
    let mut sums = [[0u64; GW]; GH];
    let mut counts = [[0u64; GW]; GH];
    let (mut total, mut samples) = (0u64, 0u64);
    // Every `step`-th pixel of every `step`-th row: at most 65,536 samples (a 1080p frame is
    // read at every 6th pixel, ~800 samples a grid cell), plenty for a mean and 72 cell means;
    // reading every pixel cost more than the decode itself on a debug build.
    let step = ((w * h) as f64 / 65_536.0).sqrt().ceil().max(1.0) as usize;
    // Column → grid column, computed once per frame rather than per pixel.
    let cols: Vec<(usize, usize)> = (0..w).step_by(step).map(|x| (x, x * GW / w)).collect();
    for y in (0..h).step_by(step) {
        let row = &pixels[y * w..(y + 1) * w];
        let gy = y * GH / h;
        let (s, c) = (&mut sums[gy], &mut counts[gy]);
        for &(x, gx) in &cols {
            let p = u64::from(row[x]);
            s[gx] += p;
            c[gx] += 1;
            total += p;
        }
        samples += cols.len() as u64;
    }
    // A plane narrower than 9 or lower than 8 pixels leaves cells empty: they take the mean.
    let mean = total / samples.max(1);
    // In 1/256 of a level, so cells differing by less than a level still compare.
    let cell = |gy: usize, gx: usize| {
        (sums[gy][gx] * 256)
            .checked_div(counts[gy][gx])
            .unwrap_or(mean * 256)
    };
    let mut hash = 0u64;
    for gy in 0..GH {
        for gx in 0..GW - 1 {
            hash = (hash << 1) | u64::from(cell(gy, gx) > cell(gy, gx + 1));
        }
    }
    Look {
        luma: mean as u8,
        hash,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plane(w: usize, h: usize, f: impl Fn(usize, usize) -> u8) -> Vec<u8> {
        (0..h)
            .flat_map(|y| (0..w).map(move |x| (x, y)))
            .map(|(x, y)| f(x, y))
            .collect()
    }

    fn jpeg(w: u16, h: u16, f: impl Fn(usize, usize) -> [u8; 3]) -> Vec<u8> {
        let rgb: Vec<u8> = (0..h as usize)
            .flat_map(|y| (0..w as usize).map(move |x| (x, y)))
            .flat_map(|(x, y)| f(x, y))
            .collect();
        let mut out = Vec::new();
        jpeg_encoder::Encoder::new(&mut out, 85)
            .encode(&rgb, w, h, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        out
    }

    #[test]
    fn the_mean_luma_of_a_plane_is_its_average() {
        assert_eq!(of_luma(&plane(64, 48, |_, _| 0), 64, 48).luma, 0);
        assert_eq!(of_luma(&plane(64, 48, |_, _| 200), 64, 48).luma, 200);
        // Half black, half white: 127.
        let half = plane(64, 48, |x, _| if x < 32 { 0 } else { 255 });
        assert_eq!(of_luma(&half, 64, 48).luma, 127);
    }

    #[test]
    fn a_uniform_plane_hashes_to_zero_and_a_gradient_to_all_ones() {
        assert_eq!(of_luma(&plane(90, 80, |_, _| 77), 90, 80).hash, 0);
        // Brighter to the left: every cell is brighter than its right neighbour.
        let falling = plane(90, 80, |x, _| 255 - (x * 255 / 89) as u8);
        assert_eq!(of_luma(&falling, 90, 80).hash, u64::MAX);
    }

    #[test]
    fn distance_counts_differing_bits() {
        assert_eq!(distance(0, 0), 0);
        assert_eq!(distance(0b1011, 0b0001), 2);
        assert_eq!(distance(0, u64::MAX), 64);
    }

    #[test]
    fn tiny_planes_do_not_panic() {
        let l = of_luma(&[10, 20, 30], 3, 1);
        assert_eq!(l.luma, 20);
        let _ = of_luma(&[5], 1, 1);
    }

    #[test]
    fn unchanged_needs_both_a_close_hash_and_a_close_brightness() {
        let a = Look {
            luma: 100,
            hash: 0xF0F0,
        };
        assert!(
            a.unchanged(&Look {
                luma: 104,
                hash: 0xF0F3
            }),
            "2 bits, 4 levels"
        );
        assert!(
            !a.unchanged(&Look {
                luma: 100,
                hash: 0xF0F7
            }),
            "3 bits"
        );
        assert!(
            !a.unchanged(&Look {
                luma: 109,
                hash: 0xF0F0
            }),
            "9 levels darker"
        );
    }

    #[test]
    fn real_jpegs_black_is_dark_the_same_frame_is_unchanged_a_moved_one_is_not() {
        let black = of_jpeg(&jpeg(320, 240, |_, _| [0, 0, 0])).unwrap();
        assert!(black.luma < 4, "black decodes dark: {}", black.luma);
        let bright = of_jpeg(&jpeg(320, 240, |_, _| [200, 200, 200])).unwrap();
        assert!(
            bright.luma > 180,
            "grey 200 decodes bright: {}",
            bright.luma
        );
        // A white square on grey, twice (encoded twice: the bytes may differ, the picture not),
        // then moved to the other side.
        let square = |left: bool| {
            jpeg(320, 240, move |x, y| {
                let inside = (60..140).contains(&y)
                    && if left {
                        (20..120).contains(&x)
                    } else {
                        (200..300).contains(&x)
                    };
                if inside {
                    [250, 250, 250]
                } else {
                    [90, 110, 90]
                }
            })
        };
        let a = of_jpeg(&square(true)).unwrap();
        let b = of_jpeg(&square(true)).unwrap();
        let moved = of_jpeg(&square(false)).unwrap();
        assert!(a.unchanged(&b));
        assert!(
            !a.unchanged(&moved),
            "{:016x} vs {:016x}",
            a.hash,
            moved.hash
        );
        assert!(distance(a.hash, moved.hash) > MAX_DISTANCE);
    }

    #[test]
    fn bytes_that_are_no_jpeg_are_an_error_not_a_panic() {
        assert!(of_jpeg(b"not a jpeg").is_err());
        assert!(of_jpeg(&[0xFF, 0xD8, 0xFF, 0xD9]).is_err());
    }
}
