//! The distillation tests: SSIM, the cosine schedule, learning, exact resume, and the context batches.

use super::*;

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
        frame_w: 24,
        frame_h: 16,
        size: 16,
        batch: 2,
        steps: 4,
        lr: 1e-2,
        lr_end: 0.1,
        ssim_weight: 1.0,
        margin: 2,
        seed: 3,
        cache: None,
        checkpoint: dir.join("ck.safetensors"),
        checkpoint_every: 2,
        resume: true,
        preview: None,
        preview_every: 100,
        log_every: 100,
    }
}

#[test]
fn distillation_learns_and_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let imgs = data::CropSampler::synthetic(3, 24);
    // The "teacher" here is a fixed colour inversion of the photo.
    let pairs: Vec<Pair> = imgs
        .into_iter()
        .map(|i| {
            let mut t = i.clone();
            image::imageops::invert(&mut t);
            Pair {
                input: frame(&i, 24, 16, 1.0, 0.5, 0.5, false),
                target: frame(&t, 24, 16, 1.0, 0.5, 0.5, false),
            }
        })
        .collect();
    let device = Device::flex();
    let mut cfg = tiny_cfg(dir.path());
    cfg.steps = 40;
    cfg.checkpoint_every = 1000;
    let net = LiveConfig::new([4, 8], 1).with_live_context(4);
    let mut d = Distiller::new(net.clone(), cfg.clone(), &device);
    let all = contexts(&pairs, &net, &device);
    assert_eq!(all.len(), pairs.len());
    let (x, y, which) = batch(&pairs, &cfg, 0, &device);
    let ctx = context_batch(&all, &which);
    let first = d.step(x.clone(), y.clone(), ctx.clone()).total;
    d.run(&pairs).unwrap();
    let (l1, s) = d.loss(d.net.valid().forward_with(x, ctx), y);
    let end = scalar(l1) + (1.0 - scalar(s));
    assert!(end < first * 0.9, "loss {first} -> {end}");

    // Resume: 2 steps, a checkpoint, then 2 more from it equal 4 steps straight.
    let mut cfg = tiny_cfg(dir.path());
    cfg.checkpoint = dir.path().join("resume.safetensors");
    let mut a = Distiller::new(LiveConfig::new([4, 8], 1), cfg.clone(), &device);
    let manual = |d: &mut Distiller| {
        let (x, y, _) = batch(&pairs, &cfg, d.adam.step, &device);
        d.step(x, y, None);
    };
    manual(&mut a);
    manual(&mut a);
    a.save().unwrap();
    let mut b = Distiller::new(LiveConfig::new([4, 8], 1), cfg.clone(), &device);
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
