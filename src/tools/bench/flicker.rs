//! The flicker benchmark: the temporal stabilizer on a clip with still and moving parts.
//!
//! A synthetic 320x180 clip (a smooth coloured scene, a bright square moving 3 px per
//! frame, and per-frame sensor-like noise of ±4 levels) is stylized frame by frame, then
//! stabilized. Reported: flicker (see `stabilize::flicker`) off and on, SSIM of the
//! stabilized frames to the unstabilized ones, and ghosting — the mean difference between
//! the two inside the moving square, where the stabilizer must not blend; and its time a
//! frame against the engine's in the same run.

use std::time::Instant;

use serde_json::{Value, json};

use crate::config::{Config, Size, StabilizerConfig};
use crate::engine::{self, StageTimes};
use crate::frame::RgbImage;
use crate::quality::ssim;
use crate::stabilize::{Stabilizer, flicker};
use crate::style::StyleSpec;

const SIZE: Size = Size {
    width: 320,
    height: 180,
};
const FRAMES: u32 = 48;
const SQUARE: u32 = 40;
/// Input change below this (luma levels) counts as "still" for the flicker metric.
const STILL: f32 = 16.0;

/// Deterministic noise in -4..=4.
fn noise(seed: &mut u64) -> i32 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    (*seed % 9) as i32 - 4
}

fn square_at(t: u32) -> (u32, u32) {
    (20 + 3 * t, 70)
}

fn clip() -> Vec<RgbImage> {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    (0..FRAMES)
        .map(|t| {
            let (sx, sy) = square_at(t);
            let mut data = Vec::with_capacity((SIZE.width * SIZE.height * 3) as usize);
            for y in 0..SIZE.height {
                for x in 0..SIZE.width {
                    let inside = (sx..sx + SQUARE).contains(&x) && (sy..sy + SQUARE).contains(&y);
                    let (fx, fy) = (x as f32 / 23.0, y as f32 / 17.0);
                    let base = if inside {
                        [240.0, 230.0, 60.0]
                    } else {
                        [
                            120.0 + 60.0 * fx.sin() * fy.cos(),
                            110.0 + 50.0 * (fx * 0.7 + fy).sin(),
                            100.0 + 70.0 * (fy * 0.5).cos(),
                        ]
                    };
                    for v in base {
                        data.push((v as i32 + noise(&mut seed)).clamp(0, 255) as u8);
                    }
                }
            }
            RgbImage {
                width: SIZE.width,
                height: SIZE.height,
                data,
            }
        })
        .collect()
}

/// Mean absolute difference of two pictures inside the moving square at time `t`.
fn inside_square(a: &RgbImage, b: &RgbImage, t: u32) -> f64 {
    let (sx, sy) = square_at(t);
    let (mut sum, mut n) = (0u64, 0u64);
    for y in sy..sy + SQUARE {
        for x in sx..(sx + SQUARE).min(SIZE.width) {
            for c in 0..3 {
                let i = ((y * SIZE.width + x) * 3 + c) as usize;
                sum += a.data[i].abs_diff(b.data[i]) as u64;
                n += 1;
            }
        }
    }
    sum as f64 / n.max(1) as f64
}

pub fn run(models_dir: &std::path::Path, model: &str, threads: usize) -> anyhow::Result<Value> {
    let mut config = Config::default().engine;
    config.models_dir = models_dir.into();
    config.model = model.into();
    config.size = SIZE;
    config.threads = threads;
    let mut engine = engine::open(&config, &StyleSpec::parse("0")?)?;
    let inputs = clip();
    let mut plain = Vec::new();
    let start = Instant::now();
    for frame in &inputs {
        plain.push(engine.stylize(frame, &mut StageTimes::default())?);
    }
    let engine_ms = start.elapsed().as_secs_f64() * 1e3 / inputs.len() as f64;
    let defaults = StabilizerConfig::default();
    let mut stabilizer = Stabilizer::new(defaults.strength, defaults.threshold);
    let mut steady = plain.clone();
    let start = Instant::now();
    for (frame, out) in inputs.iter().zip(steady.iter_mut()) {
        stabilizer.apply(frame, out);
    }
    let stabilizer_ms = start.elapsed().as_secs_f64() * 1e3 / inputs.len() as f64;
    let off = flicker(&inputs, &plain, STILL);
    let on = flicker(&inputs, &steady, STILL);
    let n = plain.len() as f64;
    let similarity = plain
        .iter()
        .zip(&steady)
        .map(|(a, b)| ssim(a, b))
        .sum::<f64>()
        / n;
    let ghosting = (1..FRAMES)
        .map(|t| inside_square(&plain[t as usize], &steady[t as usize], t))
        .sum::<f64>()
        / (FRAMES - 1) as f64;
    Ok(json!({
        "clip": format!("synthetic {SIZE}, {FRAMES} frames, moving {SQUARE}px square, noise ±4"),
        "model": model,
        "stabilizer": {"strength": defaults.strength, "threshold": defaults.threshold},
        "off": {"flicker": off},
        "on": {"flicker": on, "ssim_to_unstabilized": similarity},
        "flicker_ratio_on_over_off": on / off.max(1e-12),
        "ghosting_levels": ghosting,
        // what the stabilizer adds to a frame, against the engine's own time in this run
        "ms_per_frame": {"engine": engine_ms, "stabilizer": stabilizer_ms},
        "stabilizer_over_engine": stabilizer_ms / engine_ms.max(1e-12),
    }))
}
