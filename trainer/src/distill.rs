//! Distillation of a `live` student from an ONNX teacher (issue 13), optimized for agreement
//! with the teacher on whole frames: the teacher runs once per training frame (each photo
//! resized to cover `frame_w`x`frame_h` at a random zoom, a random window, every other frame
//! mirrored), at the size the daemon feeds it, so its normalization statistics are those of a
//! whole frame; the student then learns from random crops of those (photo, teacher) pairs.
//! The loss is pixel L1 plus `ssim_weight` * (1 - SSIM), SSIM on luma with 8x8 windows every
//! 4 pixels (the metric of the daemon's quality.rs), over the crop less a `margin` whose
//! teacher values depend on context outside the crop. Adam with a cosine learning rate
//! (computed from the step, so `--resume` continues exactly), checkpoints, previews.

use std::path::PathBuf;
use std::time::Instant;

use burn::prelude::*;
use burn::tensor::module::avg_pool2d;
use burn::tensor::ops::AvgPoolOptions;
use rand::{Rng, SeedableRng, rngs::StdRng};

use crate::checkpoint::{self, Adam, CheckpointMeta};
use crate::data;
use crate::live::{self, LiveConfig, LiveNet};
use crate::progress::Progress;
use crate::train::TrainError;

/// The schedule and loss of a distillation run.
#[derive(Debug, Clone)]
pub struct DistillConfig {
    pub data: PathBuf,
    /// Teacher frames per training photo.
    pub frames: usize,
    /// Photometric jitter of every frame but each photo's first (0: none): brightness,
    /// contrast, saturation and each channel's gain drawn within 1 +- `jitter` (the gains
    /// within a third of that), so the whole-frame context sees more than the training
    /// photos' own colours. The teacher styles the jittered frame.
    pub jitter: f32,
    pub frame_w: u32,
    pub frame_h: u32,
    /// Styles of a conditional student (0: the one style the teacher was opened with): each
    /// frame gets its own style vector (see [`frame_styles`]) and the teacher styles it so.
    pub styles: usize,
    /// Share of a conditional student's frames that get a blend of two styles.
    pub blend: f32,
    /// Square crop side (a multiple of 4).
    pub size: u32,
    pub batch: usize,
    pub steps: u64,
    pub lr: f64,
    /// The cosine schedule ends at `lr * lr_end`.
    pub lr_end: f64,
    pub ssim_weight: f32,
    /// Weight of the tone term: L1 between [`TONE_POOL`]-pixel block means of the output and
    /// the target, the large-scale light and colour whose error per-pixel L1 drowns in
    /// texture (0: none).
    pub tone_weight: f32,
    pub margin: usize,
    pub seed: u64,
    /// Where the teacher frames are kept as PNGs (reused by later runs with the same
    /// teacher, style, frames and seed); None: computed every run.
    pub cache: Option<PathBuf>,
    pub progress: Progress,
}

/// The learning rate at `step` (0-based) of `steps`: cosine from `lr` to `lr * lr_end`.
pub fn cosine_lr(lr: f64, lr_end: f64, step: u64, steps: u64) -> f64 {
    let t = (step as f64 / steps.max(1) as f64).min(1.0);
    let end = lr * lr_end;
    end + 0.5 * (lr - end) * (1.0 + (std::f64::consts::PI * t).cos())
}

mod frames;
pub use frames::{Pair, frame, frame_styles, jitter, make_pairs, teach};

/// The batch of step `step`: random crops (same window in input and target) and the index
/// of each crop's pair.
pub fn batch(
    pairs: &[Pair],
    cfg: &DistillConfig,
    step: u64,
    device: &Device,
) -> (Tensor<4>, Tensor<4>, Vec<usize>) {
    let (x, y, which, _) = batch_at(pairs, cfg, step, 1, device);
    (x, y, which)
}

/// [`batch`] with each crop's top-left corner (rows, columns) in its frame, a multiple of
/// `align` (4 for a spatial context, which cuts its 1/4-resolution map there).
pub fn batch_at(
    pairs: &[Pair],
    cfg: &DistillConfig,
    step: u64,
    align: u32,
    device: &Device,
) -> (Tensor<4>, Tensor<4>, Vec<usize>, Vec<[usize; 2]>) {
    let mut rng = StdRng::seed_from_u64(cfg.seed.wrapping_mul(0x9e37_79b9).wrapping_add(step));
    let (mut ins, mut outs, mut which, mut at) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..cfg.batch {
        let i = rng.random_range(0..pairs.len());
        which.push(i);
        let p = &pairs[i];
        let (w, h) = p.input.dimensions();
        let s = cfg.size.min(w).min(h);
        let (x, y) = (rng.random_range(0..=w - s), rng.random_range(0..=h - s));
        let (x, y) = (x / align * align, y / align * align);
        at.push([y as usize, x as usize]);
        ins.push(image::imageops::crop_imm(&p.input, x, y, s, s).to_image());
        outs.push(image::imageops::crop_imm(&p.target, x, y, s, s).to_image());
    }
    (
        data::to_tensor(&ins, device),
        data::to_tensor(&outs, device),
        which,
        at,
    )
}

/// The context-branch input of every pair's whole frame ([`live::context_input`]), for a
/// network with a context branch; empty otherwise.
pub fn contexts(pairs: &[Pair], config: &LiveConfig, device: &Device) -> Vec<Tensor<4>> {
    if config.live_context == 0 {
        return Vec::new();
    }
    pairs
        .iter()
        .map(|p| live::context_input(data::to_tensor(std::slice::from_ref(&p.input), device)))
        .collect()
}

/// The style vectors of the pairs `which` as one [n, S, 1, 1] batch, for a conditional
/// student (None when the pairs have none).
pub fn style_batch(pairs: &[Pair], which: &[usize], device: &Device) -> Option<Tensor<4>> {
    let s = pairs.first()?.style.len();
    if s == 0 {
        return None;
    }
    let data: Vec<f32> = which.iter().flat_map(|&i| pairs[i].style.clone()).collect();
    Some(Tensor::<1>::from_floats(data.as_slice(), device).reshape([which.len(), s, 1, 1]))
}

/// The contexts of the pairs `which` as one batch (None when `all` is empty).
pub fn context_batch(all: &[Tensor<4>], which: &[usize]) -> Option<Tensor<4>> {
    if all.is_empty() {
        return None;
    }
    Some(Tensor::cat(
        which.iter().map(|&i| all[i].clone()).collect(),
        0,
    ))
}

/// BT.601 luma, [n, 1, h, w].
fn luma(x: Tensor<4>) -> Tensor<4> {
    let [n, _, h, w] = x.dims();
    let c = |i: usize| x.clone().slice([0..n, i..i + 1, 0..h, 0..w]);
    c(0) * 0.299 + c(1) * 0.587 + c(2) * 0.114
}

/// Mean SSIM on luma over 8x8 windows every 4 pixels (0..1 range constants).
pub fn ssim(a: Tensor<4>, b: Tensor<4>) -> Tensor<1> {
    let (a, b) = (luma(a), luma(b));
    let mut opts = AvgPoolOptions::new([8, 8]);
    opts.stride = [4, 4];
    let pool = |t: Tensor<4>| avg_pool2d(t, opts.clone());
    let (c1, c2) = (0.01f32.powi(2), 0.03f32.powi(2));
    let (ma, mb) = (pool(a.clone()), pool(b.clone()));
    let va = pool(a.clone() * a.clone()) - ma.clone() * ma.clone();
    let vb = pool(b.clone() * b.clone()) - mb.clone() * mb.clone();
    let cov = pool(a * b) - ma.clone() * mb.clone();
    let num = (ma.clone() * mb.clone() * 2.0 + c1) * (cov * 2.0 + c2);
    let den = (ma.clone() * ma + mb.clone() * mb + c1) * (va + vb + c2);
    (num / den).mean()
}

/// The block side of the tone term (pixels).
pub const TONE_POOL: usize = 8;

/// L1 between the `TONE_POOL`-pixel block means of `a` and `b` (blocks that fit).
pub fn tone_l1(a: Tensor<4>, b: Tensor<4>) -> Tensor<1> {
    let opts = AvgPoolOptions::new([TONE_POOL, TONE_POOL]);
    let pool = |t: Tensor<4>| avg_pool2d(t, opts.clone());
    (pool(a) - pool(b)).abs().mean()
}

/// The loss terms of one step.
#[derive(Debug, Clone, Copy, Default)]
pub struct DistillTerms {
    pub total: f32,
    pub l1: f32,
    pub ssim: f32,
    /// The tone term ([`tone_l1`]), 0 when its weight is 0.
    pub tone: f32,
}

/// A live student, its optimizer and its schedule.
pub struct Distiller {
    pub net: LiveNet,
    pub adam: Adam,
    pub config: LiveConfig,
    pub cfg: DistillConfig,
    pub device: Device,
}

fn scalar(t: Tensor<1>) -> f32 {
    t.into_scalar::<f32>()
}

impl Distiller {
    pub fn new(config: LiveConfig, cfg: DistillConfig, device: &Device) -> Self {
        let device = device.clone().autodiff();
        Distiller {
            net: config.init(&device),
            adam: Adam::new(cfg.lr),
            config,
            cfg,
            device,
        }
    }

    /// The loss terms of `output` against `target` on the crop less the margin: pixel L1,
    /// SSIM and, with a tone weight, the tone term.
    pub fn loss(
        &self,
        output: Tensor<4>,
        target: Tensor<4>,
    ) -> (Tensor<1>, Tensor<1>, Option<Tensor<1>>) {
        let [n, c, h, w] = output.dims();
        let m = self.cfg.margin.min(h / 4).min(w / 4);
        let crop = |t: Tensor<4>| t.slice([0..n, 0..c, m..h - m, m..w - m]);
        let (o, t) = (crop(output), crop(target));
        let l1 = (o.clone() - t.clone()).abs().mean();
        let tone = (self.cfg.tone_weight > 0.0).then(|| tone_l1(o.clone(), t.clone()));
        let s = ssim(o, t);
        (l1, s, tone)
    }

    /// One Adam step on (`input`, `target`), both [n, 3, s, s] 0..1 on the plain device,
    /// with the whole frames' `context` (see [`contexts`]) for a context branch.
    /// `styles` are a conditional student's style vectors ([`style_batch`]).
    pub fn step(
        &mut self,
        input: Tensor<4>,
        target: Tensor<4>,
        context: Option<Tensor<4>>,
        styles: Option<Tensor<4>>,
        at: &[[usize; 2]],
    ) -> DistillTerms {
        self.adam.lr = cosine_lr(self.cfg.lr, self.cfg.lr_end, self.adam.step, self.cfg.steps);
        let output = self.net.forward_at(
            input.autodiff(),
            context.map(|c| c.autodiff()),
            styles.map(|s| s.autodiff()),
            at,
        );
        let (l1, s, tone) = self.loss(output, target.autodiff().detach());
        let mut total = l1.clone() + (s.clone().neg() + 1.0) * self.cfg.ssim_weight;
        if let Some(t) = &tone {
            total = total + t.clone() * self.cfg.tone_weight;
        }
        let terms = DistillTerms {
            total: scalar(total.clone()),
            l1: scalar(l1),
            ssim: scalar(s),
            tone: tone.map(scalar).unwrap_or(0.0),
        };
        let grads = total.backward();
        self.net = self.adam.step(self.net.clone(), &grads);
        terms
    }

    pub fn save(&self) -> Result<(), TrainError> {
        let meta = CheckpointMeta {
            step: self.adam.step,
            network: serde_json::to_string(&self.config).unwrap_or_default(),
            lr: self.cfg.lr,
        };
        Ok(checkpoint::save(
            &self.cfg.progress.checkpoint,
            &self.net,
            &self.adam,
            &meta,
        )?)
    }

    /// Continues from `cfg.progress.checkpoint` (written for the same network).
    pub fn resume(&mut self) -> Result<(), TrainError> {
        let ck = checkpoint::read(&self.cfg.progress.checkpoint)?;
        let wanted = serde_json::to_string(&self.config).unwrap_or_default();
        if !self.config.same_as_json(&ck.meta.network) {
            return Err(TrainError::Network {
                path: ck.path,
                found: ck.meta.network,
                wanted,
            });
        }
        let (net, adam) = ck.restore(self.net.clone(), &self.device.clone().inner())?;
        self.net = net;
        self.adam = adam;
        Ok(())
    }

    /// With `cfg.progress.resume`, continues from its checkpoint when it exists (saying so); the
    /// caller can then see from `adam.step` whether any step is left before it makes frames.
    pub fn resume_if_asked(&mut self) -> Result<(), TrainError> {
        if self.cfg.progress.resume_from().is_some() {
            self.resume()?;
            eprintln!(
                "resumed from {} at step {}",
                self.cfg.progress.checkpoint.display(),
                self.adam.step
            );
        }
        Ok(())
    }

    /// Trains from the current step to `cfg.steps` on `pairs`; returns the last terms (all
    /// zero when no step was left).
    pub fn run(&mut self, pairs: &[Pair]) -> Result<DistillTerms, TrainError> {
        let plain = self.device.clone().inner();
        let cfg = self.cfg.clone();
        if self.adam.step >= cfg.steps {
            // nothing to train: not even the frames' contexts
            return Ok(DistillTerms::default());
        }
        eprintln!(
            "{} live {}: {} frames, {}x{} crops, batch {}, {} steps",
            if self.adam.step > 0 {
                "continuing"
            } else {
                "training"
            },
            self.config.label(),
            pairs.len(),
            cfg.size,
            cfg.size,
            cfg.batch,
            cfg.steps
        );
        let (mut last, mut sum, mut count) = (DistillTerms::default(), DistillTerms::default(), 0);
        let (mut images, mut since, start) = (0usize, Instant::now(), Instant::now());
        let all = contexts(pairs, &self.config, &plain);
        while self.adam.step < cfg.steps {
            let align = if self.config.live_grid { 4 } else { 1 };
            let (input, target, which, at) = batch_at(pairs, &cfg, self.adam.step, align, &plain);
            let context = context_batch(&all, &which);
            let styles = style_batch(pairs, &which, &plain);
            last = self.step(
                input.clone(),
                target.clone(),
                context.clone(),
                styles.clone(),
                &at,
            );
            (sum.total, sum.l1, sum.ssim, sum.tone) = (
                sum.total + last.total,
                sum.l1 + last.l1,
                sum.ssim + last.ssim,
                sum.tone + last.tone,
            );
            count += 1;
            images += cfg.batch;
            let step = self.adam.step;
            if cfg.progress.log_at(step, cfg.steps) {
                let k = count as f32;
                let tone = if cfg.tone_weight > 0.0 {
                    format!("  tone {:.4}", sum.tone / k)
                } else {
                    String::new()
                };
                eprintln!(
                    "step {step}/{}  loss {:.4}  l1 {:.4}  ssim {:.4}{tone}  (mean of {count})  lr {:.2e}  {:.2} img/s  {:.0} s",
                    cfg.steps,
                    sum.total / k,
                    sum.l1 / k,
                    sum.ssim / k,
                    self.adam.lr,
                    images as f64 / since.elapsed().as_secs_f64(),
                    start.elapsed().as_secs_f64()
                );
                (sum, count, images, since) = (DistillTerms::default(), 0, 0, Instant::now());
            }
            if cfg.progress.checkpoint_at(step, cfg.steps) {
                self.save()?;
            }
            if let Some(p) = cfg.progress.preview_at(step, cfg.steps) {
                let output = self
                    .net
                    .valid()
                    .forward_at(input.clone(), context, styles, &at);
                let mut tiles = Vec::new();
                for i in 0..cfg.batch.min(4) {
                    tiles.push(data::to_image(&input, i));
                    tiles.push(data::to_image(&target, i));
                    tiles.push(data::to_image(&output, i));
                }
                data::save_png(&data::grid(&tiles, 3), p)?;
            }
        }
        Ok(last)
    }
}

#[cfg(test)]
mod tests;
