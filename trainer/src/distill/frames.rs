//! The training frames of a distillation run: each photo framed at the daemon's size (zoom,
//! window, mirror, optional photometric jitter), the teacher's output for it, and for a
//! conditional student the style vector the teacher ran with; cached as PNGs under a key.

use std::time::Instant;

use burn::prelude::*;
use image::RgbImage;
use rand::{Rng, SeedableRng, rngs::StdRng};
use sha2::{Digest, Sha256};

use super::DistillConfig;
use crate::data::{self, DataError};
use crate::teacher::OnnxImageModel;
use crate::train::TrainError;

/// The photos a cache was made from, as one line: their count and a digest of each one's
/// path under `root` and contents (renamed, added, removed or changed photos change it; the
/// same folder moved elsewhere does not). An unreadable photo counts as empty here and is
/// reported when it is read.
pub fn photos_key(root: &std::path::Path, files: &[std::path::PathBuf]) -> String {
    let mut h = Sha256::new();
    for f in files {
        let rel = f.strip_prefix(root).unwrap_or(f);
        let bytes = std::fs::read(f).unwrap_or_default();
        h.update(format!("{}\t{}\n", rel.display(), bytes.len()).as_bytes());
        h.update(&bytes);
    }
    let hex = format!("{:x}", h.finalize());
    format!("photos {} {}", files.len(), &hex[..16])
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
    let files = data::images(&cfg.data)?;
    let count = files.len() * cfg.frames;
    let cached = |i: usize, kind: &str| {
        cfg.cache
            .as_ref()
            .map(|d| d.join(format!("{i:04}-{kind}.png")))
    };
    // With a cache, its key file and what the frames depend on besides the teacher's style
    // (the cache folder is one per style): a cache made with other settings or other photos
    // is made again. Without one nothing is keyed (and the photos are not read for it).
    let cache_key = cfg.cache.as_ref().map(|d| {
        let key = format!(
            "frames {} seed {} jitter {} frame {}x{}{}\n{}\n",
            cfg.frames,
            cfg.seed,
            cfg.jitter,
            cfg.frame_w,
            cfg.frame_h,
            match cfg.styles {
                0 => String::new(),
                s => format!(" styles {s} blend {}", cfg.blend),
            },
            photos_key(&cfg.data, &files)
        );
        (d.join("frames.key"), key)
    });
    let styles = frame_styles(cfg.seed, count, cfg.styles, cfg.blend);
    let key_matches = cache_key
        .as_ref()
        .is_some_and(|(f, key)| std::fs::read_to_string(f).is_ok_and(|k| &k == key));
    if let Some(last) = cached(count.saturating_sub(1), "teacher")
        && key_matches
        && last.exists()
    {
        let mut pairs = Vec::with_capacity(count);
        for (i, style) in styles.into_iter().enumerate() {
            let read = |k: &str| data::read_rgb(&cached(i, k).unwrap_or_default());
            pairs.push(Pair {
                input: read("photo")?,
                target: read("teacher")?,
                style,
            });
        }
        eprintln!("{count} teacher frames read from the cache");
        return Ok(pairs);
    }
    // The key goes until every frame is written: an interrupted run leaves no cache that
    // could pass for one made with the old settings.
    if let Some((f, _)) = &cache_key {
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
    if let Some((f, key)) = cache_key {
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
