//! The optimisation baseline (Gatys et al.): the output image itself is optimised with Adam
//! against the same perceptual loss the transformer nets train with, starting from the
//! content image; and the speed-up measurement that compares N such iterations with one
//! forward pass of a transformer net at the same size on the same machine.

use std::time::Instant;

use burn::module::Param;
use burn::prelude::*;

use crate::checkpoint::Adam;
use crate::loss::{LossTerms, PerceptualLoss};
use crate::transformer::TransformerNet;

/// The image being optimised, as a module so the path-keyed Adam can update it.
#[derive(Module, Debug)]
pub struct Canvas {
    pub pixels: Param<Tensor<4>>,
}

/// Optimises an image for `iterations` Adam steps; returns it (clamped to 0..1) and the
/// last loss terms. `content` is [1, 3, h, w] RGB 0..1 on a plain device.
pub fn stylize(
    content: Tensor<4>,
    loss: &PerceptualLoss,
    iterations: usize,
    lr: f64,
    mut progress: impl FnMut(usize, &LossTerms),
) -> (Tensor<4>, LossTerms) {
    let content = content.inner();
    let targets = loss.content_targets(content.clone());
    let mut canvas = Canvas {
        pixels: Param::from_tensor(content.clone().autodiff().require_grad()),
    };
    let mut adam = Adam::new(lr);
    let mut terms = LossTerms::default();
    for i in 0..iterations {
        let (total, t) = loss.loss(canvas.pixels.val(), &targets, None);
        terms = t;
        let grads = total.backward();
        canvas = adam.step(canvas, &grads);
        progress(i + 1, &terms);
    }
    (canvas.pixels.val().inner().clamp(0.0, 1.0), terms)
}

/// Timings of the speed-up measurement, in seconds.
#[derive(Debug, Clone, Copy)]
pub struct Speedup {
    pub iterations: usize,
    pub gatys_total: f64,
    pub forward: f64,
}

impl Speedup {
    pub fn ratio(&self) -> f64 {
        self.gatys_total / self.forward
    }
}

/// Times `iterations` Gatys steps and the median of 5 transformer forward passes on the
/// same `content`.
pub fn measure(
    content: Tensor<4>,
    loss: &PerceptualLoss,
    net: &TransformerNet,
    iterations: usize,
) -> Speedup {
    let content = content.inner();
    let net = net.valid();
    // One warm-up forward so allocation and thread start-up are not timed.
    let _ = net.forward(content.clone()).into_data();
    let mut times: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            let _ = net.forward(content.clone()).into_data();
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let t = Instant::now();
    let (img, _) = stylize(content, loss, iterations, 0.02, |_, _| {});
    let _ = img.into_data();
    Speedup {
        iterations,
        gatys_total: t.elapsed().as_secs_f64(),
        forward: times[2],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{CropSampler, to_tensor};
    use crate::loss::LossConfig;
    use crate::lossnet::LossNet;

    #[test]
    fn gatys_iterations_lower_the_loss() {
        let device = Device::flex();
        let net = LossNet::load("tiny", &device).unwrap();
        let config = LossConfig {
            style_weight: 100.0,
            ..LossConfig::default()
        }
        .resolve(&net)
        .unwrap();
        let imgs = CropSampler::synthetic(2, 16);
        let style = to_tensor(&imgs[1..], &device);
        let loss = PerceptualLoss::new(config, net, Some(style));
        let mut first = None;
        let (_, last) = stylize(to_tensor(&imgs[..1], &device), &loss, 20, 0.05, |i, t| {
            if i == 1 {
                first = Some(t.total)
            }
        });
        assert!(last.total < first.unwrap(), "{:?} -> {}", first, last.total);
    }
}
