//! INT8 against FP32 on held-out frames: latency ratio, PSNR and SSIM of the INT8 output
//! against the FP32 output. A benchmark: it measures and reports, it never asserts.
//!
//! SSIM is the usual mean SSIM (Wang et al. 2004) with a 7x7 uniform window and
//! K1 = 0.01, K2 = 0.03, per RGB channel (scikit-image's defaults), so the numbers can be
//! checked against `skimage.metrics.structural_similarity(..., channel_axis=2)`.

use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;

use super::QuantizeError;
use crate::config::{EngineConfig, Size};
use crate::engine::{self, Engine, StageTimes};
use crate::frame::RgbImage;
use crate::style::StyleSpec;

/// One model to run: a manifest name in a models folder.
pub struct Side {
    pub models_dir: PathBuf,
    pub model: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    pub size: [u32; 2],
    pub threads: usize,
    pub frames: usize,
    pub iters: usize,
    /// Median `Engine::stylize` inference time (ms), FP32 and INT8.
    pub fp32_infer_ms: f64,
    pub int8_infer_ms: f64,
    /// fp32 / int8: above 1 means INT8 is faster.
    pub speedup: f64,
    pub psnr_db_mean: f64,
    pub psnr_db_min: f64,
    pub ssim_mean: f64,
}

fn open(side: &Side, size: Size, threads: usize) -> Result<Box<dyn Engine>, QuantizeError> {
    let config = EngineConfig {
        models_dir: side.models_dir.clone(),
        model: side.model.clone(),
        size,
        threads,
        ..Default::default()
    };
    let style = StyleSpec::parse("0").map_err(|e| QuantizeError::Model(e.to_string()))?;
    Ok(engine::open(&config, &style)?)
}

fn median_infer_ms(
    e: &mut dyn Engine,
    frames: &[RgbImage],
    iters: usize,
) -> Result<f64, QuantizeError> {
    let mut times = StageTimes::default();
    e.stylize(&frames[0], &mut times)?; // warm-up
    let mut ms: Vec<f64> = (0..iters.max(1))
        .map(|i| {
            let t = Instant::now();
            e.stylize(&frames[i % frames.len()], &mut times)
                .map(|_| times.infer.as_secs_f64() * 1e3)
                .map_err(|err| (err, t))
        })
        .collect::<Result<_, _>>()
        .map_err(|(err, _)| QuantizeError::Engine(err))?;
    ms.sort_by(f64::total_cmp);
    Ok(ms[ms.len() / 2])
}

/// Runs both models on `frames` (styles cycling per frame) and compares.
pub fn compare(
    fp32: &Side,
    int8: &Side,
    size: Size,
    frames: &[RgbImage],
    iters: usize,
    threads: usize,
) -> Result<Comparison, QuantizeError> {
    if frames.is_empty() {
        return Err(QuantizeError::Frames("no held-out frames".into()));
    }
    let mut a = open(fp32, size, threads)?;
    let mut b = open(int8, size, threads)?;
    let (mut psnrs, mut ssims) = (Vec::new(), Vec::new());
    let styles = a.styles().len().max(1);
    let mut times = StageTimes::default();
    for (i, f) in frames.iter().enumerate() {
        let spec = StyleSpec::parse(&(i % styles).to_string())
            .map_err(|e| QuantizeError::Model(e.to_string()))?;
        a.set_style(&spec)?;
        b.set_style(&spec)?;
        let ya = a.stylize(f, &mut times)?;
        let yb = b.stylize(f, &mut times)?;
        psnrs.push(psnr(&ya, &yb));
        ssims.push(ssim(&ya, &yb));
    }
    let fa = median_infer_ms(a.as_mut(), frames, iters)?;
    let fb = median_infer_ms(b.as_mut(), frames, iters)?;
    let n = frames.len() as f64;
    Ok(Comparison {
        size: [size.width, size.height],
        threads,
        frames: frames.len(),
        iters,
        fp32_infer_ms: fa,
        int8_infer_ms: fb,
        speedup: fa / fb,
        psnr_db_mean: psnrs.iter().sum::<f64>() / n,
        psnr_db_min: psnrs.iter().copied().fold(f64::INFINITY, f64::min),
        ssim_mean: ssims.iter().sum::<f64>() / n,
    })
}

/// PSNR in dB between two 8-bit pictures of one size (100 for identical ones).
pub fn psnr(a: &RgbImage, b: &RgbImage) -> f64 {
    let mse = a
        .data
        .iter()
        .zip(&b.data)
        .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
        .sum::<f64>()
        / a.data.len().max(1) as f64;
    if mse == 0.0 {
        100.0
    } else {
        10.0 * (255f64 * 255.0 / mse).log10()
    }
}

/// Mean SSIM over RGB channels, 7x7 uniform window, sample covariances.
pub fn ssim(a: &RgbImage, b: &RgbImage) -> f64 {
    const WIN: usize = 7;
    let (w, h) = (a.width as usize, a.height as usize);
    if w < WIN || h < WIN {
        return if a == b { 1.0 } else { 0.0 };
    }
    let (c1, c2) = ((0.01f64 * 255.0).powi(2), (0.03f64 * 255.0).powi(2));
    let n = (WIN * WIN) as f64;
    let cov_norm = n / (n - 1.0);
    let (mut total, mut count) = (0f64, 0usize);
    for c in 0..3 {
        let px = |img: &RgbImage, x: usize, y: usize| img.data[(y * w + x) * 3 + c] as f64;
        // Valid windows only (scikit-image crops the border of the SSIM map likewise).
        for y0 in 0..=h - WIN {
            for x0 in 0..=w - WIN {
                let (mut sa, mut sb, mut saa, mut sbb, mut sab) = (0f64, 0f64, 0f64, 0f64, 0f64);
                for y in y0..y0 + WIN {
                    for x in x0..x0 + WIN {
                        let (p, q) = (px(a, x, y), px(b, x, y));
                        sa += p;
                        sb += q;
                        saa += p * p;
                        sbb += q * q;
                        sab += p * q;
                    }
                }
                let (ma, mb) = (sa / n, sb / n);
                let va = (saa / n - ma * ma) * cov_norm;
                let vb = (sbb / n - mb * mb) * cov_norm;
                let vab = (sab / n - ma * mb) * cov_norm;
                total += ((2.0 * ma * mb + c1) * (2.0 * vab + c2))
                    / ((ma * ma + mb * mb + c1) * (va + vb + c2));
                count += 1;
            }
        }
    }
    total / count as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_pictures_score_perfectly_and_noise_lowers_both() {
        let data: Vec<u8> = (0..32 * 32 * 3).map(|i| (i * 13 % 251) as u8).collect();
        let a = RgbImage::new(32, 32, data.clone()).unwrap();
        assert_eq!(psnr(&a, &a), 100.0);
        assert!((ssim(&a, &a) - 1.0).abs() < 1e-9);
        let noisy: Vec<u8> = data
            .iter()
            .enumerate()
            .map(|(i, &v)| v.wrapping_add((i % 5) as u8))
            .collect();
        let b = RgbImage::new(32, 32, noisy).unwrap();
        let p = psnr(&a, &b);
        assert!(p > 30.0 && p < 100.0, "{p}");
        assert!(ssim(&a, &b) < 1.0);
    }
}
