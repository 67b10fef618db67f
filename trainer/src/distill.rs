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
use image::RgbImage;
use rand::{Rng, SeedableRng, rngs::StdRng};

use crate::checkpoint::{self, Adam, CheckpointMeta};
use crate::data::{self, DataError};
use crate::live::{self, LiveConfig, LiveNet};
use crate::teacher::OnnxImageModel;
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
    pub margin: usize,
    pub seed: u64,
    /// Where the teacher frames are kept as PNGs (reused by later runs with the same
    /// teacher, style, frames and seed); None: computed every run.
    pub cache: Option<PathBuf>,
    pub checkpoint: PathBuf,
    pub checkpoint_every: u64,
    pub resume: bool,
    pub preview: Option<PathBuf>,
    pub preview_every: u64,
    pub log_every: u64,
}

/// The learning rate at `step` (0-based) of `steps`: cosine from `lr` to `lr * lr_end`.
pub fn cosine_lr(lr: f64, lr_end: f64, step: u64, steps: u64) -> f64 {
    let t = (step as f64 / steps.max(1) as f64).min(1.0);
    let end = lr * lr_end;
    end + 0.5 * (lr - end) * (1.0 + (std::f64::consts::PI * t).cos())
}

/// One training example: a frame and the teacher's output for it.
pub struct Pair {
    pub input: RgbImage,
    pub target: RgbImage,
    /// The style vector the teacher ran with, for a conditional student (else empty).
    pub style: Vec<f32>,
}

/// The style vectors of `count` frames for a conditional student of `styles` styles:
/// one-hot, every style once in each run of `styles` frames (in a seeded order, so the
/// frames of one photo get different styles), and a `blend` share of them mixed with a
/// second style at a weight within 0.25..0.75. Deterministic for a seed; empty vectors when
/// `styles` is 0.
pub fn frame_styles(seed: u64, count: usize, styles: usize, blend: f32) -> Vec<Vec<f32>> {
    if styles == 0 {
        return vec![Vec::new(); count];
    }
    let mut rng = StdRng::seed_from_u64(seed ^ 0x57_71e5);
    let mut order: Vec<usize> = Vec::new();
    (0..count)
        .map(|_| {
            if order.is_empty() {
                order = (0..styles).collect();
                for i in (1..styles).rev() {
                    order.swap(i, rng.random_range(0..=i));
                }
            }
            let k = order.pop().unwrap_or(0);
            let mut w = vec![0.0; styles];
            w[k] = 1.0;
            if styles > 1 && rng.random_range(0.0..1.0) < blend {
                let other = (k + rng.random_range(1..styles)) % styles;
                let a = rng.random_range(0.25..0.75);
                w[k] = a;
                w[other] = 1.0 - a;
            }
            w
        })
        .collect()
}

/// `img` resized to cover `w`x`h` times `zoom`, then the `w`x`h` window at (`fx`, `fy`)
/// (fractions of the slack), mirrored if `flip`.
pub fn frame(img: &RgbImage, w: u32, h: u32, zoom: f32, fx: f32, fy: f32, flip: bool) -> RgbImage {
    let (iw, ih) = img.dimensions();
    let s = (w as f32 / iw as f32).max(h as f32 / ih as f32) * zoom;
    let (nw, nh) = (
        ((iw as f32 * s).round() as u32).max(w),
        ((ih as f32 * s).round() as u32).max(h),
    );
    let scaled = image::imageops::resize(img, nw, nh, image::imageops::FilterType::Triangle);
    let (x, y) = (
        ((nw - w) as f32 * fx).round() as u32,
        ((nh - h) as f32 * fy).round() as u32,
    );
    let mut out = image::imageops::crop_imm(&scaled, x, y, w, h).to_image();
    if flip {
        image::imageops::flip_horizontal_in_place(&mut out);
    }
    out
}

/// A photometric change of `img`: `gain` per channel, then contrast `contrast` about the
/// mean luma, saturation `saturation` (blend with each pixel's luma), all times
/// `brightness`; rounded and clamped to 8 bits.
pub fn jitter(
    img: &RgbImage,
    brightness: f32,
    contrast: f32,
    saturation: f32,
    gain: [f32; 3],
) -> RgbImage {
    let luma = |p: [f32; 3]| 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2];
    let gained =
        |p: &image::Rgb<u8>| -> [f32; 3] { std::array::from_fn(|c| p.0[c] as f32 * gain[c]) };
    let n = (img.width() * img.height()).max(1) as f64;
    let mean = (img.pixels().map(|p| luma(gained(p)) as f64).sum::<f64>() / n) as f32;
    let mut out = img.clone();
    for p in out.pixels_mut() {
        let g = gained(p);
        let y = luma(g);
        p.0 = std::array::from_fn(|c| {
            let v = y + saturation * (g[c] - y);
            let v = mean + contrast * (v - mean);
            (v * brightness).round().clamp(0.0, 255.0) as u8
        });
    }
    out
}

/// Runs `teacher` on one image; the output rounded to 8 bits.
pub fn teach(teacher: &mut OnnxImageModel, img: &RgbImage) -> Result<RgbImage, TrainError> {
    let t = data::to_tensor(std::slice::from_ref(img), &Device::flex());
    let (w, h) = img.dimensions();
    let input: Vec<f32> = t.into_data().try_to_vec::<f32>().unwrap_or_default();
    let out = teacher.run(&input, [1, 3, h as usize, w as usize])?;
    let n = (w * h) as usize;
    Ok(RgbImage::from_fn(w, h, |x, y| {
        let i = (y * w + x) as usize;
        image::Rgb(std::array::from_fn(|c| {
            (out[c * n + i].clamp(0.0, 1.0) * 255.0).round() as u8
        }))
    }))
}

/// The teacher frames for every photo under `cfg.data` (deterministic for a seed), read
/// from `cfg.cache` when it holds them all, else computed (and written there).
pub fn make_pairs(
    cfg: &DistillConfig,
    teacher: &mut OnnxImageModel,
) -> Result<Vec<Pair>, TrainError> {
    let files = data::list_images(&cfg.data);
    let count = files.len() * cfg.frames;
    let cached = |i: usize, kind: &str| {
        cfg.cache
            .as_ref()
            .map(|d| d.join(format!("{i:04}-{kind}.png")))
    };
    // What the frames depend on besides the photos and the teacher's style (the cache
    // folder is one per style): a cache made with other settings is made again.
    let key = format!(
        "frames {} seed {} jitter {} frame {}x{}{}\n",
        cfg.frames,
        cfg.seed,
        cfg.jitter,
        cfg.frame_w,
        cfg.frame_h,
        match cfg.styles {
            0 => String::new(),
            s => format!(" styles {s} blend {}", cfg.blend),
        }
    );
    let styles = frame_styles(cfg.seed, count, cfg.styles, cfg.blend);
    let key_file = cfg.cache.as_ref().map(|d| d.join("frames.key"));
    let key_matches = key_file
        .as_ref()
        .is_some_and(|f| std::fs::read_to_string(f).is_ok_and(|k| k == key));
    if let Some(last) = cached(count.saturating_sub(1), "teacher")
        && key_matches
        && last.exists()
    {
        let mut pairs = Vec::with_capacity(count);
        for i in 0..count {
            let read = |k: &str| data::read_rgb(&cached(i, k).unwrap_or_default());
            pairs.push(Pair {
                input: read("photo")?,
                target: read("teacher")?,
                style: styles[i].clone(),
            });
        }
        eprintln!("{count} teacher frames read from the cache");
        return Ok(pairs);
    }
    if files.is_empty() {
        return Err(DataError::Empty(cfg.data.display().to_string()).into());
    }
    // The key goes until every frame is written: an interrupted run leaves no cache that
    // could pass for one made with the old settings.
    if let Some(f) = &key_file {
        let _ = std::fs::remove_file(f);
    }
    let mut rng = StdRng::seed_from_u64(cfg.seed ^ 0x5eed_f4a3);
    // Its own generator: the frames' windows are the same with or without jitter.
    let mut colours = StdRng::seed_from_u64(cfg.seed ^ 0xc010_u64);
    let mut pairs = Vec::new();
    let t = Instant::now();
    for p in &files {
        let img = data::read_rgb(p)?;
        for k in 0..cfg.frames {
            let zoom = if k == 0 {
                1.0
            } else {
                rng.random_range(1.0..1.8)
            };
            let (fx, fy) = (rng.random_range(0.0..=1.0), rng.random_range(0.0..=1.0));
            let mut input = frame(&img, cfg.frame_w, cfg.frame_h, zoom, fx, fy, k % 2 == 1);
            if cfg.jitter > 0.0 && k > 0 {
                let j = cfg.jitter;
                let mut draw = |r: f32| colours.random_range(1.0 - r..=1.0 + r);
                let (b, c, s) = (draw(j), draw(j), draw(j));
                let gain = [draw(j / 3.0), draw(j / 3.0), draw(j / 3.0)];
                input = jitter(&input, b, c, s, gain);
            }
            let style = styles[pairs.len()].clone();
            if !style.is_empty() {
                teacher.set_style_vector(style.clone());
            }
            let target = teach(teacher, &input)?;
            if let (Some(a), Some(b)) =
                (cached(pairs.len(), "photo"), cached(pairs.len(), "teacher"))
            {
                data::save_png(&input, &a)?;
                data::save_png(&target, &b)?;
            }
            pairs.push(Pair {
                input,
                target,
                style,
            });
        }
    }
    if let Some(f) = key_file {
        std::fs::write(&f, &key).map_err(|e| DataError::Write {
            path: f.display().to_string(),
            message: e.to_string(),
        })?;
    }
    eprintln!(
        "{} teacher frames ({}x{}) from {} photos in {:.0} s",
        pairs.len(),
        cfg.frame_w,
        cfg.frame_h,
        files.len(),
        t.elapsed().as_secs_f64()
    );
    Ok(pairs)
}

/// The batch of step `step`: random crops (same window in input and target) and the index
/// of each crop's pair.
pub fn batch(
    pairs: &[Pair],
    cfg: &DistillConfig,
    step: u64,
    device: &Device,
) -> (Tensor<4>, Tensor<4>, Vec<usize>) {
    let mut rng = StdRng::seed_from_u64(cfg.seed.wrapping_mul(0x9e37_79b9).wrapping_add(step));
    let (mut ins, mut outs, mut which) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..cfg.batch {
        let i = rng.random_range(0..pairs.len());
        which.push(i);
        let p = &pairs[i];
        let (w, h) = p.input.dimensions();
        let s = cfg.size.min(w).min(h);
        let (x, y) = (rng.random_range(0..=w - s), rng.random_range(0..=h - s));
        ins.push(image::imageops::crop_imm(&p.input, x, y, s, s).to_image());
        outs.push(image::imageops::crop_imm(&p.target, x, y, s, s).to_image());
    }
    (
        data::to_tensor(&ins, device),
        data::to_tensor(&outs, device),
        which,
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

/// The loss terms of one step.
#[derive(Debug, Clone, Copy, Default)]
pub struct DistillTerms {
    pub total: f32,
    pub l1: f32,
    pub ssim: f32,
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

    /// The loss of `output` against `target` on the crop less the margin.
    pub fn loss(&self, output: Tensor<4>, target: Tensor<4>) -> (Tensor<1>, Tensor<1>) {
        let [n, c, h, w] = output.dims();
        let m = self.cfg.margin.min(h / 4).min(w / 4);
        let crop = |t: Tensor<4>| t.slice([0..n, 0..c, m..h - m, m..w - m]);
        let (o, t) = (crop(output), crop(target));
        let l1 = (o.clone() - t.clone()).abs().mean();
        let s = ssim(o, t);
        (l1, s)
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
    ) -> DistillTerms {
        self.adam.lr = cosine_lr(self.cfg.lr, self.cfg.lr_end, self.adam.step, self.cfg.steps);
        let output = self.net.forward_styled(
            input.autodiff(),
            context.map(|c| c.autodiff()),
            styles.map(|s| s.autodiff()),
        );
        let (l1, s) = self.loss(output, target.autodiff().detach());
        let total = l1.clone() + (s.clone().neg() + 1.0) * self.cfg.ssim_weight;
        let terms = DistillTerms {
            total: scalar(total.clone()),
            l1: scalar(l1),
            ssim: scalar(s),
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
            &self.cfg.checkpoint,
            &self.net,
            &self.adam,
            &meta,
        )?)
    }

    /// Continues from `cfg.checkpoint` (written for the same network).
    pub fn resume(&mut self) -> Result<(), TrainError> {
        let ck = checkpoint::read(&self.cfg.checkpoint)?;
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

    /// Trains to `cfg.steps` on `pairs`; returns the last terms.
    pub fn run(&mut self, pairs: &[Pair]) -> Result<DistillTerms, TrainError> {
        let plain = self.device.clone().inner();
        if self.cfg.resume && self.cfg.checkpoint.exists() {
            self.resume()?;
            eprintln!(
                "resumed from {} at step {}",
                self.cfg.checkpoint.display(),
                self.adam.step
            );
        }
        let cfg = self.cfg.clone();
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
            let (input, target, which) = batch(pairs, &cfg, self.adam.step, &plain);
            let context = context_batch(&all, &which);
            let styles = style_batch(pairs, &which, &plain);
            last = self.step(
                input.clone(),
                target.clone(),
                context.clone(),
                styles.clone(),
            );
            (sum.total, sum.l1, sum.ssim) = (
                sum.total + last.total,
                sum.l1 + last.l1,
                sum.ssim + last.ssim,
            );
            count += 1;
            images += cfg.batch;
            let step = self.adam.step;
            if step.is_multiple_of(cfg.log_every.max(1)) || step == cfg.steps {
                let k = count as f32;
                eprintln!(
                    "step {step}/{}  loss {:.4}  l1 {:.4}  ssim {:.4}  (mean of {count})  lr {:.2e}  {:.2} img/s  {:.0} s",
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
            if step.is_multiple_of(cfg.checkpoint_every.max(1)) || step == cfg.steps {
                self.save()?;
            }
            if let Some(p) = &cfg.preview
                && (step.is_multiple_of(cfg.preview_every.max(1)) || step == cfg.steps)
            {
                let output = self
                    .net
                    .valid()
                    .forward_styled(input.clone(), context, styles);
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
