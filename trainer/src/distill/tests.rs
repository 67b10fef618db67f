//! The distillation tests: SSIM, the cosine schedule, learning, exact resume, and the context batches.

use super::*;
use crate::teacher::OnnxImageModel;
use image::RgbImage;

#[test]
fn ssim_is_one_for_equal_images_and_lower_otherwise() {
    let device = Device::flex();
    let a = Tensor::<4>::random([1, 3, 16, 16], burn::tensor::Distribution::Default, &device);
    let s = scalar(ssim(a.clone(), a.clone()));
    assert!((s - 1.0).abs() < 1e-4, "{s}");
    let b = a.clone() * 0.5 + 0.2;
    assert!(scalar(ssim(a, b)) < 0.99);
}

#[test]
fn cosine_lr_runs_from_lr_to_the_end_value() {
    assert!((cosine_lr(1e-3, 0.1, 0, 100) - 1e-3).abs() < 1e-12);
    assert!((cosine_lr(1e-3, 0.1, 50, 100) - 5.5e-4).abs() < 1e-9);
    assert!((cosine_lr(1e-3, 0.1, 100, 100) - 1e-4).abs() < 1e-12);
}

fn tiny_cfg(dir: &std::path::Path) -> DistillConfig {
    DistillConfig {
        data: dir.to_path_buf(),
        frames: 1,
        jitter: 0.0,
        frame_w: 24,
        frame_h: 16,
        styles: 0,
        blend: 0.0,
        size: 16,
        batch: 2,
        steps: 4,
        lr: 1e-2,
        lr_end: 0.1,
        ssim_weight: 1.0,
        tone_weight: 0.0,
        margin: 2,
        seed: 3,
        cache: None,
        progress: Progress {
            checkpoint: dir.join("ck.safetensors"),
            checkpoint_every: 2,
            resume: true,
            preview: None,
            preview_every: 100,
            log_every: 100,
        },
    }
}

/// `n` synthetic photos as `w`x`h` frames, each with a "teacher" that inverts its colours.
fn inverted_pairs(n: usize, w: u32, h: u32) -> Vec<Pair> {
    data::CropSampler::synthetic(n, w.max(h))
        .into_iter()
        .map(|i| {
            let mut t = i.clone();
            image::imageops::invert(&mut t);
            Pair {
                input: frame(&i, w, h, 1.0, 0.5, 0.5, false),
                target: frame(&t, w, h, 1.0, 0.5, 0.5, false),
                style: Vec::new(),
            }
        })
        .collect()
}

#[test]
fn a_spatial_context_trains_on_crops_cut_from_the_whole_frames_map() {
    let dir = tempfile::tempdir().unwrap();
    // 64x48 frames: pooled 16x12, a 2x2 map at 1/32 (upsampled to 16x16 at 1/4).
    let pairs = inverted_pairs(2, 64, 48);
    let device = Device::flex();
    let cfg = tiny_cfg(dir.path());
    let net = LiveConfig::new([4, 8], 1)
        .with_live_context(4)
        .with_live_grid(true);
    let mut d = Distiller::new(net.clone(), cfg.clone(), &device);
    let (x, y, which, at) = batch_at(&pairs, &cfg, 0, 4, &device);
    // Corners on the 1/4 grid, inside the frame.
    for &[r, c] in &at {
        assert!(
            r % 4 == 0 && c % 4 == 0 && r + 16 <= 48 && c + 16 <= 64,
            "{r},{c}"
        );
    }
    let ctx = context_batch(&contexts(&pairs, &net, &device), &which);
    let out = |d: &Distiller| {
        let g = d.net.context.as_ref().unwrap().grid.as_ref().unwrap();
        crate::checkpoint::HostTensor::of(&g.out.weight.val()).data
    };
    assert!(out(&d).iter().all(|&v| v == 0.0), "the grid starts at zero");
    d.step(x, y, ctx, None, &at);
    // The loss reaches the grid through its cut windows.
    assert!(out(&d).iter().any(|&v| v != 0.0), "the grid did not learn");
}

#[test]
fn distillation_learns_and_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let pairs = inverted_pairs(3, 24, 16);
    let device = Device::flex();
    let mut cfg = tiny_cfg(dir.path());
    cfg.steps = 40;
    cfg.progress.checkpoint_every = 1000;
    let net = LiveConfig::new([4, 8], 1).with_live_context(4);
    let mut d = Distiller::new(net.clone(), cfg.clone(), &device);
    let all = contexts(&pairs, &net, &device);
    assert_eq!(all.len(), pairs.len());
    let (x, y, which) = batch(&pairs, &cfg, 0, &device);
    let ctx = context_batch(&all, &which);
    let first = d.step(x.clone(), y.clone(), ctx.clone(), None, &[]).total;
    d.run(&pairs).unwrap();
    let (l1, s, tone) = d.loss(d.net.valid().forward_with(x, ctx), y);
    assert!(tone.is_none(), "no tone term with tone_weight 0");
    let end = scalar(l1) + (1.0 - scalar(s));
    assert!(end < first * 0.9, "loss {first} -> {end}");

    // Resume: 2 steps, a checkpoint, then 2 more from it equal 4 steps straight.
    let mut cfg = tiny_cfg(dir.path());
    cfg.progress.checkpoint = dir.path().join("resume.safetensors");
    let mut a = Distiller::new(LiveConfig::new([4, 8], 1), cfg.clone(), &device);
    let manual = |d: &mut Distiller| {
        let (x, y, _) = batch(&pairs, &cfg, d.adam.step, &device);
        d.step(x, y, None, None, &[]);
    };
    manual(&mut a);
    manual(&mut a);
    a.save().unwrap();
    let mut b = Distiller::new(LiveConfig::new([4, 8], 1), cfg.clone(), &device);
    b.resume_if_asked().unwrap();
    b.run(&pairs).unwrap();
    manual(&mut a);
    manual(&mut a);
    let w = |n: &LiveNet| -> Vec<f32> {
        n.down1
            .weight
            .val()
            .inner()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
    };
    let worst = w(&a.net)
        .iter()
        .zip(w(&b.net))
        .map(|(p, q)| (p - q).abs())
        .fold(0.0, f32::max);
    assert_eq!(b.adam.step, 4);
    assert!(worst < 1e-6, "resumed weights differ by {worst}");
}

#[test]
fn jitter_is_the_identity_at_one_and_moves_colours_otherwise() {
    let img = data::CropSampler::synthetic(1, 16).remove(0);
    assert_eq!(jitter(&img, 1.0, 1.0, 1.0, [1.0; 3]), img);
    // Saturation 0: every pixel grey.
    let grey = jitter(&img, 1.0, 1.0, 0.0, [1.0; 3]);
    // One code value: each channel rounds the same luma on its own.
    assert!(
        grey.pixels()
            .all(|p| p.0.iter().max().unwrap() - p.0.iter().min().unwrap() <= 1)
    );
    // Brightness 2: twice each value, clamped at 255 (one code value of rounding).
    let bright = jitter(&img, 2.0, 1.0, 1.0, [1.0; 3]);
    for (a, b) in img.pixels().zip(bright.pixels()) {
        for c in 0..3 {
            let want = (2 * a.0[c] as i32).min(255);
            assert!((b.0[c] as i32 - want).abs() <= 1, "{a:?} -> {b:?}");
        }
    }
    // A red gain changes red only.
    let red = jitter(&img, 1.0, 1.0, 1.0, [0.5, 1.0, 1.0]);
    assert!(
        img.pixels()
            .zip(red.pixels())
            .all(|(a, b)| a.0[1..] == b.0[1..])
    );
    assert_ne!(red, img);
}

/// The teacher frames' cache is reused only with the settings it was made with.
#[test]
fn teacher_frames_cache_is_keyed_by_its_settings() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    std::fs::create_dir(&photos).unwrap();
    for (k, img) in data::CropSampler::synthetic(2, 40).iter().enumerate() {
        data::save_png(img, &photos.join(format!("{k}.png"))).unwrap();
    }
    // A real ONNX teacher: a tiny random transformer, exported.
    let net = crate::transformer::TransformerConfig::preset("tiny")
        .unwrap()
        .init(&Device::flex());
    let info = crate::export::ManifestInfo {
        name: "teacher",
        description: "test",
        provenance: "test",
        student_of: None,
        styles: &[],
    };
    crate::export::export(&net, dir.path(), &info).unwrap();
    let onnx = dir.path().join("teacher.onnx");
    let Some(mut teacher) = OnnxImageModel::open_or_skip(&onnx, "teacher frames cache") else {
        return;
    };
    let mut cfg = tiny_cfg(dir.path());
    cfg.data = photos;
    cfg.frames = 3;
    cfg.cache = Some(dir.path().join("cache"));
    let first = make_pairs(&cfg, &mut teacher).unwrap();
    let key = cfg.cache.as_ref().unwrap().join("frames.key");
    let key_text = std::fs::read_to_string(&key).unwrap();
    let (settings, photos_line) = key_text.split_once('\n').unwrap();
    assert_eq!(settings, "frames 3 seed 3 jitter 0 frame 24x16");
    assert!(photos_line.starts_with("photos 2 "), "{key_text}");
    // Same settings: read back (a cached teacher frame overwritten shows it is read).
    let marker = RgbImage::from_pixel(24, 16, image::Rgb([7, 8, 9]));
    let last = cfg.cache.as_ref().unwrap().join("0005-teacher.png");
    data::save_png(&marker, &last).unwrap();
    let again = make_pairs(&cfg, &mut teacher).unwrap();
    assert_eq!(again[5].target, marker);
    assert!(
        first[..5]
            .iter()
            .zip(&again)
            .all(|(a, b)| a.input == b.input)
    );
    // Other settings: made again, whatever the folder holds.
    cfg.jitter = 0.3;
    let jittered = make_pairs(&cfg, &mut teacher).unwrap();
    assert_ne!(jittered[5].target, marker);
    assert!(
        std::fs::read_to_string(&key)
            .unwrap()
            .contains("jitter 0.3")
    );
    // Each photo's first frame is left as it is, the zoomed-in ones are jittered.
    for (i, (a, b)) in first.iter().zip(&jittered).enumerate() {
        assert_eq!(a.input == b.input, i % 3 == 0, "frame {i}");
    }
    // Other photos, same settings, count and names: made again (a photo replaced).
    data::save_png(&marker, &last).unwrap();
    let other = &data::CropSampler::synthetic(3, 40)[2];
    data::save_png(other, &cfg.data.join("1.png")).unwrap();
    let replaced = make_pairs(&cfg, &mut teacher).unwrap();
    assert_ne!(replaced[5].target, marker);
    assert_ne!(std::fs::read_to_string(&key).unwrap(), key_text);
    // No photos: one sentence, not the cache's frames.
    cfg.data = dir.path().join("no-photos");
    let e = make_pairs(&cfg, &mut teacher).err().unwrap().to_string();
    assert_eq!(
        e,
        format!("no .png/.jpg/.jpeg images under {}", cfg.data.display())
    );
}

#[test]
fn frame_styles_cover_every_style_and_blend_a_share() {
    assert!(frame_styles(1, 5, 0, 0.5).iter().all(|w| w.is_empty()));
    // No blends: one-hot, each style exactly once in every run of 26 frames.
    let one_hot = frame_styles(1, 26 * 40, 26, 0.0);
    for run in one_hot.chunks(26) {
        let mut seen = [0usize; 26];
        for v in run {
            assert_eq!(v.iter().filter(|x| **x == 1.0).count(), 1, "{v:?}");
            assert_eq!(v.iter().sum::<f32>(), 1.0, "{v:?}");
            seen[v.iter().position(|x| *x == 1.0).unwrap()] += 1;
        }
        assert!(seen.iter().all(|n| *n == 1), "{seen:?}");
    }
    let w = frame_styles(1, 26 * 40, 26, 0.125);
    assert_eq!(w, frame_styles(1, 26 * 40, 26, 0.125), "deterministic");
    assert_ne!(w, frame_styles(2, 26 * 40, 26, 0.125), "seeded");
    let mut blends = 0;
    for v in &w {
        assert_eq!(v.len(), 26);
        // Weights sum to 1 (f32 rounding of a + (1 - a)).
        assert!((v.iter().sum::<f32>() - 1.0).abs() < 1e-6, "{v:?}");
        match v.iter().filter(|x| **x > 0.0).count() {
            1 => {}
            2 => {
                blends += 1;
                assert!(
                    v.iter().all(|x| *x == 0.0 || (0.25..=0.75).contains(x)),
                    "{v:?}"
                );
            }
            n => panic!("{n} styles in {v:?}"),
        }
    }
    // 1040 draws at 1/8: 130 expected, sd 10.7; 5 sd either side.
    assert!((76..=184).contains(&blends), "{blends} blends");
}

/// A conditional student learns a style-dependent teacher: here the identity under style a
/// and half the brightness under style b, which no one-style network can fit at once.
#[test]
fn a_conditional_student_learns_what_each_style_does() {
    let dir = tempfile::tempdir().unwrap();
    let mut pairs = Vec::new();
    for (k, i) in data::CropSampler::synthetic(4, 24).into_iter().enumerate() {
        let input = frame(&i, 24, 16, 1.0, 0.5, 0.5, false);
        let (target, style) = if k % 2 == 0 {
            (input.clone(), vec![1.0, 0.0])
        } else {
            let mut dark = input.clone();
            dark.pixels_mut().for_each(|p| p.0 = p.0.map(|v| v / 2));
            (dark, vec![0.0, 1.0])
        };
        pairs.push(Pair {
            input,
            target,
            style,
        });
    }
    let device = Device::flex();
    let mut cfg = tiny_cfg(dir.path());
    cfg.steps = 600;
    cfg.progress.checkpoint_every = 1000;
    cfg.styles = 2;
    // 8/16 channels and 16 context channels: at 4/8 with 4 to 16, about 1 start in 15 left
    // the style's scales and shifts no way to the output (the 1/4-resolution path's ReLUs
    // dead, only the unmodulated 1/2-resolution skip reaching it; gap 0.01). The start is
    // redrawn from a local generator, so it is the same every run: burn's generator is
    // global, and other tests drawing at the same time shifted a `device.seed` start into a
    // dead one (gap 0.019 in a fresh-clone CI run).
    let net = LiveConfig::new([8, 16], 1)
        .with_live_context(16)
        .with_live_styles(2);
    let mut d = Distiller::new(net.clone(), cfg.clone(), &device);
    d.net = d.net.map(&mut Redraw(rand::SeedableRng::seed_from_u64(5)));
    d.run(&pairs).unwrap();
    let (x, _, which) = batch(&pairs, &cfg, 0, &device);
    let ctx = context_batch(&contexts(&pairs, &net, &device), &which);
    let n = which.len();
    let as_style = |v: [f32; 2]| {
        let s = Tensor::<1>::from_floats(v, &device)
            .reshape([1, 2, 1, 1])
            .repeat_dim(0, n);
        d.net
            .valid()
            .forward_styled(x.clone(), ctx.clone(), Some(s))
    };
    // The two teachers differ by x / 2 per pixel, mean(x) / 2 on average; learned: 0.22 to
    // 0.26 over 16 seeds (a one-style network: 0); this start 0.24 to 0.26 in six runs
    // alone and beside the other tests.
    let gap: f32 = (as_style([1.0, 0.0]) - as_style([0.0, 1.0]))
        .abs()
        .mean()
        .into_scalar();
    assert!(gap > 0.15, "the styles give nearly the same output ({gap})");
    let sb = style_batch(&pairs, &which, &device).unwrap();
    assert_eq!(sb.dims(), [n, 2, 1, 1]);
    assert!(style_batch(&pairs[..0], &[], &device).is_none());
}

#[test]
fn the_tone_term_sees_block_means_not_texture() {
    let device = Device::flex();
    let plane = |f: &dyn Fn(usize, usize) -> f32| {
        let v: Vec<f32> = (0..3 * 16 * 16).map(|i| f((i / 16) % 16, i % 16)).collect();
        Tensor::<1>::from_floats(v.as_slice(), &device).reshape([1, 3, 16, 16])
    };
    let grey = plane(&|_, _| 0.5);
    // A checkerboard of +-0.2 around the same grey: every 8x8 block has the same mean.
    let checker = plane(&|y, x| if (x + y) % 2 == 0 { 0.7 } else { 0.3 });
    // The same grey 0.1 lighter in the left half (two of the four 8x8 blocks).
    let lighter = plane(&|_, x| if x < 8 { 0.6 } else { 0.5 });
    let tone = |a: &Tensor<4>, b: &Tensor<4>| scalar(tone_l1(a.clone(), b.clone()));
    // float sums of 64 values: 1e-6 is rounding, not a tolerance on the behaviour
    assert!(tone(&grey, &checker) < 1e-6, "{}", tone(&grey, &checker));
    assert!(
        (tone(&grey, &lighter) - 0.05).abs() < 1e-6,
        "{}",
        tone(&grey, &lighter)
    );
}

/// Redraws every float parameter from its own generator: uniform with the tensor's mean and
/// standard deviation, so the initialiser's scale stays and zero-initialised tensors (the
/// scales and shifts, biases) stay zero.
struct Redraw(rand::rngs::StdRng);

impl burn::module::ModuleMapper for Redraw {
    fn map_float<const D: usize>(
        &mut self,
        param: burn::module::Param<Tensor<D>>,
    ) -> burn::module::Param<Tensor<D>> {
        use rand::Rng;
        param.map(|t| {
            let (dims, device, grad) = (t.dims(), t.device(), t.is_require_grad());
            let v: Vec<f32> = t.into_data().try_to_vec::<f32>().unwrap();
            let n = v.len() as f32;
            let mean = v.iter().sum::<f32>() / n;
            let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / n).sqrt();
            let w: Vec<f32> = v
                .iter()
                .map(|_| mean + sd * 3f32.sqrt() * (2.0 * self.0.random::<f32>() - 1.0))
                .collect();
            Tensor::from_data(burn::tensor::TensorData::new(w, dims), &device)
                .set_require_grad(grad)
        })
    }
}
