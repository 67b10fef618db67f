//! Picture quality measures: PSNR and SSIM between two RGB pictures of the same size.
//!
//! Used by the flicker benchmark, the INT8 comparison and tests. SSIM follows Wang et al.
//! (2004) on luma (BT.601) with 8x8 windows at stride 4 and the usual constants
//! (K1 = 0.01, K2 = 0.03, L = 255). Pure functions, no I/O.

use crate::frame::RgbImage;

/// BT.601 luma of every pixel, 0..255.
pub fn luma(img: &RgbImage) -> Vec<f32> {
    img.data
        .chunks_exact(3)
        .map(|p| 0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32)
        .collect()
}

/// Peak signal-to-noise ratio over all channels, in dB (infinite for equal pictures).
pub fn psnr(a: &RgbImage, b: &RgbImage) -> f64 {
    assert_eq!(
        (a.width, a.height),
        (b.width, b.height),
        "PSNR needs equal sizes"
    );
    let mse = a
        .data
        .iter()
        .zip(&b.data)
        .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
        .sum::<f64>()
        / a.data.len() as f64;
    if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255.0f64.powi(2) / mse).log10()
    }
}

/// Mean SSIM on luma over 8x8 windows placed every 4 pixels.
pub fn ssim(a: &RgbImage, b: &RgbImage) -> f64 {
    assert_eq!(
        (a.width, a.height),
        (b.width, b.height),
        "SSIM needs equal sizes"
    );
    const WIN: usize = 8;
    const STEP: usize = 4;
    let (c1, c2) = ((0.01f64 * 255.0).powi(2), (0.03f64 * 255.0).powi(2));
    let (w, h) = (a.width as usize, a.height as usize);
    let (la, lb) = (luma(a), luma(b));
    if w < WIN || h < WIN {
        return if la == lb { 1.0 } else { 0.0 };
    }
    let (mut total, mut count) = (0.0, 0usize);
    for y in (0..=h - WIN).step_by(STEP) {
        for x in (0..=w - WIN).step_by(STEP) {
            let (mut sa, mut sb, mut saa, mut sbb, mut sab) = (0.0f64, 0.0, 0.0, 0.0, 0.0);
            for j in y..y + WIN {
                for i in x..x + WIN {
                    let (p, q) = (la[j * w + i] as f64, lb[j * w + i] as f64);
                    sa += p;
                    sb += q;
                    saa += p * p;
                    sbb += q * q;
                    sab += p * q;
                }
            }
            let n = (WIN * WIN) as f64;
            let (ma, mb) = (sa / n, sb / n);
            let (va, vb, cov) = (saa / n - ma * ma, sbb / n - mb * mb, sab / n - ma * mb);
            total += ((2.0 * ma * mb + c1) * (2.0 * cov + c2))
                / ((ma * ma + mb * mb + c1) * (va + vb + c2));
            count += 1;
        }
    }
    total / count as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(w: u32, h: u32, f: impl Fn(u32, u32) -> u8) -> RgbImage {
        let f = &f;
        let data = (0..h)
            .flat_map(|y| (0..w).flat_map(move |x| [f(x, y); 3]))
            .collect();
        RgbImage::new(w, h, data).unwrap()
    }

    #[test]
    fn identical_pictures_score_perfectly() {
        let a = img(32, 16, |x, y| (x * 7 + y * 3) as u8);
        assert_eq!(ssim(&a, &a), 1.0);
        assert!(psnr(&a, &a).is_infinite());
    }

    #[test]
    fn psnr_matches_the_formula() {
        // Every value off by 5: MSE 25, PSNR = 10 log10(65025 / 25) = 34.15 dB.
        let a = img(8, 8, |_, _| 100);
        let b = img(8, 8, |_, _| 105);
        assert!((psnr(&a, &b) - 34.151).abs() < 1e-3);
    }

    #[test]
    fn ssim_of_a_constant_shift_matches_a_hand_computation() {
        // Flat windows: variances 0, so SSIM = (2 ma mb + c1) / (ma^2 + mb^2 + c1).
        let a = img(8, 8, |_, _| 100);
        let b = img(8, 8, |_, _| 150);
        let c1 = (0.01f64 * 255.0).powi(2);
        let (ma, mb) = (a.data[0] as f64, b.data[0] as f64);
        let want = (2.0 * ma * mb + c1) / (ma * ma + mb * mb + c1);
        assert!(
            (ssim(&a, &b) - want).abs() < 1e-4,
            "{} vs {want}",
            ssim(&a, &b)
        );
        // Noise lowers SSIM below a plain copy's 1.
        let noisy = img(32, 32, |x, y| ((x * 31 + y * 17) % 64) as u8 + 100);
        let flat = img(32, 32, |_, _| 131);
        assert!(ssim(&noisy, &flat) < 0.2);
    }
}
