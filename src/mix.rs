//! Style strength and colour preservation: how much of the stylized picture, and whose
//! colours, end up in the output (pure).
//!
//! - `preserve_color`: the output keeps the original's colours and takes the stylized
//!   picture's luminance. The luma/chroma space is **BT.601 full-range YCbCr** (JPEG's):
//!   `Y = 0.299 R + 0.587 G + 0.114 B`, Cb and Cr from the original. Swapping Y while
//!   keeping Cb/Cr is, before clamping to 0..255, the same as adding `Y_stylized -
//!   Y_original` to each of the original's R, G and B (Cb and Cr are differences whose
//!   weights sum to zero), which is what [`Mix::apply`] does, in integers.
//! - `strength` 0..1: `out = original + strength * (stylized - original)`, per channel;
//!   1 is the stylized picture unchanged, 0 the original. With `preserve_color` the
//!   stylized picture is the colour-kept one, i.e. the original plus `strength` times the
//!   luma shift (clamped once at the end, so a channel that would clip at full strength
//!   may reach 0 or 255 sooner).
//!
//! Both run per pixel with no allocation; `stylerd bench --mix` measures them.

use serde::{Deserialize, Serialize};

use crate::frame::RgbImage;

/// The BT.601 luma weights scaled to sum to 65536 (0.299, 0.587, 0.114).
const LUMA: [i32; 3] = [19_595, 38_470, 7_471];

/// Strength and colour settings of the running style.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Mix {
    /// 0 = the original, 1 = fully stylized.
    pub strength: f32,
    /// Keep the original's colours (BT.601 Cb/Cr), take the stylized luminance.
    pub preserve_color: bool,
}

impl Default for Mix {
    fn default() -> Self {
        Self {
            strength: 1.0,
            preserve_color: false,
        }
    }
}

/// Why a strength value was refused.
pub fn check_strength(strength: f64) -> Result<f32, String> {
    if (0.0..=1.0).contains(&strength) {
        Ok(strength as f32)
    } else {
        Err(format!("strength must be from 0 to 1, got {strength}"))
    }
}

impl Mix {
    /// Whether [`Mix::apply`] leaves the stylized picture as it is.
    pub fn is_identity(&self) -> bool {
        self.strength >= 1.0 && !self.preserve_color
    }

    /// Mixes `original` into `stylized` in place. Both must be the same size (the caller
    /// scales the stylized picture back first); a mismatch leaves `stylized` unchanged.
    pub fn apply(&self, original: &RgbImage, stylized: &mut RgbImage) {
        if self.is_identity()
            || (original.width, original.height) != (stylized.width, stylized.height)
            || original.data.len() != stylized.data.len()
        {
            return;
        }
        // Strength in 1/256 steps: 0 gives the original exactly, 256 the stylized.
        let k = (self.strength.clamp(0.0, 1.0) * 256.0).round() as i32;
        let pixels = original
            .data
            .chunks_exact(3)
            .zip(stylized.data.chunks_exact_mut(3));
        match (self.preserve_color, k) {
            (false, k) => {
                // Channel by channel over the flat bytes (vectorizes).
                for (o, s) in original.data.iter().zip(stylized.data.iter_mut()) {
                    *s = lerp(*o as i32, *s as i32, k);
                }
            }
            (true, 256) => {
                for (o, s) in pixels {
                    let d = luma_shift(o, s);
                    s[0] = clamp_u8(o[0] as i32 + d);
                    s[1] = clamp_u8(o[1] as i32 + d);
                    s[2] = clamp_u8(o[2] as i32 + d);
                }
            }
            (true, k) => {
                for (o, s) in pixels {
                    // The luma shift scaled by the strength: the same as mixing with the
                    // colour-kept picture wherever that did not clip.
                    let d = (luma_shift(o, s) * k + 128) >> 8;
                    s[0] = clamp_u8(o[0] as i32 + d);
                    s[1] = clamp_u8(o[1] as i32 + d);
                    s[2] = clamp_u8(o[2] as i32 + d);
                }
            }
        }
    }
}

/// Stylized luma minus original luma, rounded to whole levels (BT.601 weights / 65536).
#[inline(always)]
fn luma_shift(o: &[u8], s: &[u8]) -> i32 {
    let diff = |c: usize| s[c] as i32 - o[c] as i32;
    (LUMA[0] * diff(0) + LUMA[1] * diff(1) + LUMA[2] * diff(2) + 32_768) >> 16
}

#[inline(always)]
fn clamp_u8(v: i32) -> u8 {
    v.clamp(0, 255) as u8
}

/// `a + k/256 * (b - a)`, rounded (`>>` floors, also for negative values).
#[inline(always)]
fn lerp(a: i32, b: i32, k: i32) -> u8 {
    clamp_u8(a + (((b - a) * k + 128) >> 8))
}

/// BT.601 full-range (Cb, Cr) of one pixel, 0..255 with 128 neutral.
pub fn chroma(p: [u8; 3]) -> (f64, f64) {
    let [r, g, b] = p.map(f64::from);
    (
        128.0 - 0.168_736 * r - 0.331_264 * g + 0.5 * b,
        128.0 + 0.5 * r - 0.418_688 * g - 0.081_312 * b,
    )
}

/// BT.601 luma of one pixel, 0..255.
pub fn luma(p: [u8; 3]) -> f64 {
    let [r, g, b] = p.map(f64::from);
    0.299 * r + 0.587 * g + 0.114 * b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picture(seed: u32) -> RgbImage {
        let (w, h) = (64u32, 48u32);
        let data = (0..w * h * 3)
            .map(|i| ((i.wrapping_mul(2_654_435_761u32.wrapping_add(seed))) >> 24) as u8)
            .collect();
        RgbImage::new(w, h, data).unwrap()
    }

    #[test]
    fn strength_one_and_zero_are_exact() {
        let (o, s) = (picture(1), picture(2));
        let mut out = s.clone();
        Mix::default().apply(&o, &mut out);
        assert_eq!(out, s);
        let mut out = s.clone();
        Mix {
            strength: 0.0,
            preserve_color: false,
        }
        .apply(&o, &mut out);
        assert_eq!(out, o);
    }

    #[test]
    fn half_strength_is_the_mean_within_rounding() {
        let (o, s) = (picture(1), picture(2));
        let mut out = s.clone();
        Mix {
            strength: 0.5,
            preserve_color: false,
        }
        .apply(&o, &mut out);
        for ((a, b), m) in o.data.iter().zip(&s.data).zip(&out.data) {
            let want = (*a as f64 + *b as f64) / 2.0;
            // One rounding step.
            assert!((*m as f64 - want).abs() <= 0.5, "{a} {b} -> {m}");
        }
    }

    #[test]
    fn preserve_color_keeps_chroma_and_takes_luma() {
        // Mid-range pictures so that no channel clips.
        let o = RgbImage::new(2, 1, vec![120, 90, 60, 40, 100, 160]).unwrap();
        let mut s = RgbImage::new(2, 1, vec![200, 150, 170, 30, 60, 50]).unwrap();
        let styl = s.clone();
        Mix {
            strength: 1.0,
            preserve_color: true,
        }
        .apply(&o, &mut s);
        for i in 0..2 {
            let px = |img: &RgbImage| {
                let d = &img.data[i * 3..i * 3 + 3];
                [d[0], d[1], d[2]]
            };
            let (co, cs) = (chroma(px(&o)), chroma(px(&s)));
            // Integer R, G, B: the same shift on all three leaves Cb/Cr unchanged exactly.
            assert!((co.0 - cs.0).abs() < 1e-9 && (co.1 - cs.1).abs() < 1e-9);
            // The luma difference is rounded to whole levels: within half a level.
            assert!((luma(px(&s)) - luma(px(&styl))).abs() <= 0.5 + 1e-9);
        }
    }

    #[test]
    fn strength_is_checked() {
        assert_eq!(check_strength(0.25), Ok(0.25));
        assert!(check_strength(1.5).unwrap_err().contains("from 0 to 1"));
        assert!(check_strength(f64::NAN).is_err());
    }
}
