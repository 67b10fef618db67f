//! The perceptual losses (Johnson et al. / Gatys et al.): per-layer weighted content loss
//! (L1 or MSE between feature maps), Gram-matrix style loss normalized by c*h*w, total
//! variation, an optional pixel term for distillation, and the hybrid weights that combine
//! them (CLI flags or a TOML file). Owns no network: features come from lossnet.rs.

use std::collections::HashMap;

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::lossnet::LossNet;

/// Why a loss configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum LossConfigError {
    #[error("cannot read loss config {path}: {message}")]
    Read { path: String, message: String },
    #[error("loss layer `{0}` does not exist in this loss network (it has: {1})")]
    UnknownLayer(String, String),
    #[error("{0} has {1} weights for {2} layers")]
    WeightCount(&'static str, usize, usize),
    #[error("loss weight `{0}` is {1}; weights must be finite and >= 0")]
    BadWeight(&'static str, f32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ContentMetric {
    L1,
    #[default]
    Mse,
}

/// Hybrid loss weights and layers; every key is optional in the TOML.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct LossConfig {
    #[serde(default = "default_content_weight")]
    pub content_weight: f32,
    #[serde(default = "default_style_weight")]
    pub style_weight: f32,
    #[serde(default = "default_tv_weight")]
    pub tv_weight: f32,
    /// L1 between output and target pixels (distillation only).
    #[serde(default)]
    pub pixel_weight: f32,
    #[serde(default)]
    pub content_metric: ContentMetric,
    /// Empty: the loss network's defaults.
    #[serde(default)]
    pub content_layers: Vec<String>,
    /// Empty: 1.0, 0.8, 0.6, 0.4, 0.2 (truncated to the layer count).
    #[serde(default)]
    pub content_layer_weights: Vec<f32>,
    #[serde(default)]
    pub style_layers: Vec<String>,
    /// Empty: all 1.0.
    #[serde(default)]
    pub style_layer_weights: Vec<f32>,
}

fn default_content_weight() -> f32 {
    1.0
}
fn default_style_weight() -> f32 {
    1e4
}
fn default_tv_weight() -> f32 {
    1.0
}

/// The seed's default per-layer content weights, shallow layers first.
pub const DEFAULT_CONTENT_LAYER_WEIGHTS: [f32; 5] = [1.0, 0.8, 0.6, 0.4, 0.2];

impl Default for LossConfig {
    fn default() -> Self {
        toml::from_str("").unwrap_or_else(|_| unreachable!("all keys have defaults"))
    }
}

impl LossConfig {
    pub fn load(path: &std::path::Path) -> Result<Self, LossConfigError> {
        let read = |message: String| LossConfigError::Read {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| read(e.to_string()))?;
        toml::from_str(&text).map_err(|e| read(e.to_string()))
    }

    /// Fills empty layer lists from the network's defaults and rejects impossible values.
    pub fn resolve(mut self, net: &LossNet) -> Result<Self, LossConfigError> {
        let (content, style) = net.default_layers();
        if self.content_layers.is_empty() {
            self.content_layers = content;
        }
        if self.style_layers.is_empty() {
            self.style_layers = style;
        }
        if self.content_layer_weights.is_empty() {
            self.content_layer_weights = (0..self.content_layers.len())
                .map(|i| DEFAULT_CONTENT_LAYER_WEIGHTS.get(i).copied().unwrap_or(0.2))
                .collect();
        }
        if self.style_layer_weights.is_empty() {
            self.style_layer_weights = vec![1.0; self.style_layers.len()];
        }
        for (what, w, l) in [
            (
                "content-layer-weights",
                self.content_layer_weights.len(),
                self.content_layers.len(),
            ),
            (
                "style-layer-weights",
                self.style_layer_weights.len(),
                self.style_layers.len(),
            ),
        ] {
            if w != l {
                return Err(LossConfigError::WeightCount(what, w, l));
            }
        }
        for (name, w) in [
            ("content-weight", self.content_weight),
            ("style-weight", self.style_weight),
            ("tv-weight", self.tv_weight),
            ("pixel-weight", self.pixel_weight),
        ] {
            if !w.is_finite() || w < 0.0 {
                return Err(LossConfigError::BadWeight(name, w));
            }
        }
        let known = net.tap_names();
        for l in self.content_layers.iter().chain(&self.style_layers) {
            if !known.contains(l) {
                return Err(LossConfigError::UnknownLayer(l.clone(), known.join(", ")));
            }
        }
        Ok(self)
    }

    pub fn all_layers(&self) -> Vec<String> {
        let mut v = self.content_layers.clone();
        for l in &self.style_layers {
            if !v.contains(l) {
                v.push(l.clone());
            }
        }
        v
    }
}

/// Gram matrices of a batch of feature maps, normalized by c*h*w: [n, c, h, w] -> [n, c, c].
pub fn gram(f: Tensor<4>) -> Tensor<3> {
    let [n, c, h, w] = f.dims();
    let f = f.reshape([n, c, h * w]);
    f.clone().matmul(f.swap_dims(1, 2)) / (c * h * w) as f32
}

/// Total variation: mean squared difference of vertically and of horizontally adjacent pixels.
pub fn total_variation(x: Tensor<4>) -> Tensor<1> {
    let [n, c, h, w] = x.dims();
    let dy =
        x.clone().slice([0..n, 0..c, 1..h, 0..w]) - x.clone().slice([0..n, 0..c, 0..h - 1, 0..w]);
    let dx = x.clone().slice([0..n, 0..c, 0..h, 1..w]) - x.slice([0..n, 0..c, 0..h, 0..w - 1]);
    dy.powf_scalar(2.0).mean() + dx.powf_scalar(2.0).mean()
}

/// Mean L1 or squared error between two tensors.
pub fn distance<const D: usize>(a: Tensor<D>, b: Tensor<D>, metric: ContentMetric) -> Tensor<1> {
    let d = a - b;
    match metric {
        ContentMetric::L1 => d.abs().mean(),
        ContentMetric::Mse => d.powf_scalar(2.0).mean(),
    }
}

/// The per-term values of one loss evaluation, for progress lines.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LossTerms {
    pub content: f32,
    pub style: f32,
    pub tv: f32,
    pub pixel: f32,
    pub total: f32,
}

/// A loss configuration bound to a loss network and a style image's Gram targets.
pub struct PerceptualLoss {
    pub config: LossConfig,
    pub net: LossNet,
    /// Per style layer: the style image's Gram matrix, [1, c, c].
    pub style_grams: HashMap<String, Tensor<3>>,
}

impl PerceptualLoss {
    /// `style` is the style image (RGB 0..1, [1, 3, h, w]) or None (pure distillation).
    pub fn new(config: LossConfig, net: LossNet, style: Option<Tensor<4>>) -> Self {
        let mut style_grams = HashMap::new();
        if let Some(style) = style {
            let feats = net.features(style.detach(), &config.style_layers);
            for (name, f) in feats {
                style_grams.insert(name, gram(f).detach());
            }
        }
        PerceptualLoss {
            config,
            net,
            style_grams,
        }
    }

    /// Features of the content targets, computed once per batch without gradients.
    pub fn content_targets(&self, target: Tensor<4>) -> HashMap<String, Tensor<4>> {
        self.net
            .features(target.detach(), &self.config.content_layers)
            .into_iter()
            .map(|(k, v)| (k, v.detach()))
            .collect()
    }

    /// The weighted loss of `output` against content targets (features of the content image
    /// or of the teacher's output) and, when `target_pixels` is given, the pixel term.
    pub fn loss(
        &self,
        output: Tensor<4>,
        targets: &HashMap<String, Tensor<4>>,
        target_pixels: Option<Tensor<4>>,
    ) -> (Tensor<1>, LossTerms) {
        let c = &self.config;
        let feats = self.net.features(output.clone(), &c.all_layers());
        let device = output.device();
        let mut content = Tensor::<1>::zeros([1], &device);
        for (l, w) in c.content_layers.iter().zip(&c.content_layer_weights) {
            if let (Some(f), Some(t)) = (feats.get(l), targets.get(l)) {
                content = content + distance(f.clone(), t.clone(), c.content_metric) * *w;
            }
        }
        let mut style = Tensor::<1>::zeros([1], &device);
        for (l, w) in c.style_layers.iter().zip(&c.style_layer_weights) {
            if let (Some(f), Some(g)) = (feats.get(l), self.style_grams.get(l)) {
                let gf = gram(f.clone());
                let g = g.clone().expand(gf.dims());
                style = style + distance(gf, g, ContentMetric::Mse) * *w;
            }
        }
        let tv = total_variation(output.clone());
        let pixel = match target_pixels {
            Some(t) => distance(output, t.detach(), ContentMetric::L1),
            None => Tensor::<1>::zeros([1], &device),
        };
        let total = content.clone() * c.content_weight
            + style.clone() * c.style_weight
            + tv.clone() * c.tv_weight
            + pixel.clone() * c.pixel_weight;
        let scalar = |t: Tensor<1>| t.into_scalar::<f32>();
        let terms = LossTerms {
            content: scalar(content) * c.content_weight,
            style: scalar(style) * c.style_weight,
            tv: scalar(tv) * c.tv_weight,
            pixel: scalar(pixel) * c.pixel_weight,
            total: scalar(total.clone()),
        };
        (total, terms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t4(v: Vec<f32>, shape: [usize; 4]) -> Tensor<4> {
        Tensor::from_data(TensorData::new(v, shape), &Device::flex())
    }

    #[test]
    fn gram_matches_hand_computed_values() {
        // c = 2, h*w = 2: F = [[1, 2], [3, 4]]; F F^T = [[5, 11], [11, 25]]; / (2*1*2).
        let g = gram(t4(vec![1.0, 2.0, 3.0, 4.0], [1, 2, 1, 2]));
        let v: Vec<f32> = g.into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(v, vec![1.25, 2.75, 2.75, 6.25]);
    }

    #[test]
    fn total_variation_matches_hand_computed_values() {
        // [[0, 1], [3, 5]]: vertical diffs 3, 4 -> mean sq 12.5; horizontal 1, 2 -> 2.5.
        let tv = total_variation(t4(vec![0.0, 1.0, 3.0, 5.0], [1, 1, 2, 2]));
        assert!((tv.into_scalar::<f32>() - 15.0).abs() < 1e-6);
    }

    #[test]
    fn content_distance_l1_and_mse() {
        let a = t4(vec![0.0, 1.0, 2.0, 3.0], [1, 1, 2, 2]);
        let b = t4(vec![1.0, 1.0, 0.0, 3.0], [1, 1, 2, 2]);
        let l1 = distance(a.clone(), b.clone(), ContentMetric::L1).into_scalar::<f32>();
        let mse = distance(a, b, ContentMetric::Mse).into_scalar::<f32>();
        assert!((l1 - 0.75).abs() < 1e-6 && (mse - 1.25).abs() < 1e-6);
    }

    #[test]
    fn loss_toml_refuses_unknown_keys_and_fills_defaults() {
        assert!(toml::from_str::<LossConfig>("style-wieght = 3.0").is_err());
        let c: LossConfig = toml::from_str("style-weight = 3.0\ncontent-metric = \"l1\"").unwrap();
        assert_eq!(
            (c.style_weight, c.content_weight, c.content_metric),
            (3.0, 1.0, ContentMetric::L1)
        );
        let net = LossNet::Vgg(crate::vgg::Vgg::random(16, &Device::flex()));
        let c = c.resolve(&net).unwrap();
        assert_eq!(
            c.content_layer_weights,
            DEFAULT_CONTENT_LAYER_WEIGHTS[..c.content_layers.len()].to_vec()
        );
        let bad = LossConfig {
            content_layers: vec!["relu9_9".into()],
            ..LossConfig::default()
        };
        assert!(
            bad.resolve(&net)
                .unwrap_err()
                .to_string()
                .contains("relu9_9")
        );
    }
}
