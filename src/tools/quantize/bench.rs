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
use crate::quality::{psnr, ssim};
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
