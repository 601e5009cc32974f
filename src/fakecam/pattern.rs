//! Generated JPEG frames: a moving test pattern with a timestamp, so a frame shows at a glance
//! that it is live (the bars move, the clock ticks). Used by the demo camera and fake cameras.

use chrono::{DateTime, Utc};

/// 5×7 glyphs, one row per byte, bit 4 = leftmost column.
fn glyph(c: char) -> [u8; 7] {
    match c {
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        ':' => [0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00],
        '-' => [0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00],
        '.' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C],
        'A' => [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        'D' => [0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C],
        'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        'H' => [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        'M' => [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11],
        'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'Z' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F],
        _ => [0; 7],
    }
}

struct Canvas {
    w: usize,
    h: usize,
    px: Vec<u8>,
}

impl Canvas {
    fn fill_rect(&mut self, x: usize, y: usize, w: usize, h: usize, rgb: [u8; 3]) {
        for yy in y.min(self.h)..(y + h).min(self.h) {
            for xx in x.min(self.w)..(x + w).min(self.w) {
                let i = (yy * self.w + xx) * 3;
                self.px[i..i + 3].copy_from_slice(&rgb);
            }
        }
    }

    fn text(&mut self, x: usize, y: usize, scale: usize, s: &str, rgb: [u8; 3]) {
        for (n, c) in s.chars().enumerate() {
            let g = glyph(c);
            for (row, bits) in g.iter().enumerate() {
                for col in 0..5 {
                    if bits & (0x10 >> col) != 0 {
                        self.fill_rect(
                            x + (n * 6 + col) * scale,
                            y + row * scale,
                            scale,
                            scale,
                            rgb,
                        );
                    }
                }
            }
        }
    }

    fn jpeg(&self, quality: u8) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.w * self.h / 4);
        let enc = jpeg_encoder::Encoder::new(&mut out, quality);
        enc.encode(
            &self.px,
            self.w as u16,
            self.h as u16,
            jpeg_encoder::ColorType::Rgb,
        )
        .expect("encoding into a Vec cannot fail");
        out
    }
}

/// One demo frame at time `t`: scrolling colour bars, a bouncing block, the label and the time.
pub fn demo_frame(width: u16, height: u16, label: &str, t: DateTime<Utc>) -> Vec<u8> {
    let (w, h) = (usize::from(width.max(64)), usize::from(height.max(48)));
    let mut c = Canvas {
        w,
        h,
        px: vec![0; w * h * 3],
    };
    let ms = t.timestamp_millis().rem_euclid(1 << 40) as usize;
    const BARS: [[u8; 3]; 7] = [
        [192, 192, 192],
        [192, 192, 0],
        [0, 192, 192],
        [0, 192, 0],
        [192, 0, 192],
        [192, 0, 0],
        [0, 0, 192],
    ];
    let bar_w = w.div_ceil(BARS.len());
    let shift = (ms / 10) % w;
    for x in 0..w {
        let rgb = BARS[((x + shift) % w) / bar_w % BARS.len()];
        c.fill_rect(x, 0, 1, h, rgb);
    }
    // A block bouncing across the frame once every few seconds.
    let span = w.saturating_sub(h / 4).max(1);
    let phase = (ms / 5) % (2 * span);
    let bx = if phase < span {
        phase
    } else {
        2 * span - phase
    };
    c.fill_rect(bx, h / 3, h / 4, h / 4, [255, 255, 255]);
    let scale = (w / 160).max(1);
    c.fill_rect(0, 0, w, 10 * scale, [16, 16, 16]);
    c.text(
        2 * scale,
        2 * scale,
        scale,
        &label.to_uppercase(),
        [255, 255, 255],
    );
    c.fill_rect(0, h - 10 * scale, w, 10 * scale, [16, 16, 16]);
    let stamp = t.format("%Y-%m-%d %H:%M:%S%.3fZ").to_string();
    c.text(2 * scale, h - 8 * scale, scale, &stamp, [255, 255, 0]);
    c.jpeg(80)
}

/// A plain one-colour JPEG (tests).
pub fn solid_jpeg(width: u16, height: u16, rgb: [u8; 3]) -> Vec<u8> {
    let (w, h) = (usize::from(width), usize::from(height));
    let mut c = Canvas {
        w,
        h,
        px: vec![0; w * h * 3],
    };
    c.fill_rect(0, 0, w, h, rgb);
    c.jpeg(90)
}

/// A noisy JPEG of at least `kb` kilobytes (kB = 1,000 bytes; benchmarks and fake cameras that
/// want a real size).
pub fn sized_jpeg(kb: usize) -> Vec<u8> {
    // Noise compresses poorly, so the size follows the pixel count: grow until big enough.
    let mut side = 64usize;
    loop {
        let mut c = Canvas {
            w: side,
            h: side * 9 / 16,
            px: Vec::new(),
        };
        let mut state: u32 = 0x9E37_79B9;
        c.px = (0..c.w * c.h * 3)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state >> 24) as u8
            })
            .collect();
        let j = c.jpeg(75);
        if j.len() >= kb * 1000 || side >= 8192 {
            return j;
        }
        side = (side as f64
            * ((kb * 1000) as f64 / j.len() as f64)
                .sqrt()
                .clamp(1.05, 4.0)) as usize;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::jpeg::validate;

    #[test]
    fn demo_frames_are_valid_and_change_over_time() {
        let t0 = Utc::now();
        let a = demo_frame(640, 360, "heldar demo", t0);
        let b = demo_frame(
            640,
            360,
            "heldar demo",
            t0 + chrono::Duration::milliseconds(700),
        );
        assert_eq!(validate(&a), Ok((640, 360)));
        assert_ne!(a, b);
    }

    #[test]
    fn sized_jpegs_reach_their_size() {
        let j = sized_jpeg(50);
        assert!(j.len() >= 50_000 && j.len() < 120_000, "{}", j.len());
        assert!(validate(&j).is_ok());
    }
}
