//! MobileNetV2 feature extractor for the perceptual losses, with the pretrained trunk of
//! Magenta's arbitrary-style predictor (`engines/arbitrary_predict.onnx`, an int8 TFLite
//! model converted by tf2onnx). It owns reading that ONNX file (int8 / int32 initializers
//! behind `DequantizeLinear`, or plain float ones), dequantizing each weight once, the block
//! layout and the tap names (`conv`, `block0` … `block16`). Like vgg.rs it must not hold
//! trainable state: every weight is created without gradients.
//!
//! The graph feeds RGB 0..1 straight into the first conv (its input quantizer has scale
//! 1/255, zero point -128: no rescaling to -1..1), so the network takes the trainer's images
//! unchanged. Activations run in float: the predictor's activation quantizers are not
//! simulated, so features differ from the int8 graph by about one quantization step.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::prelude::*;
use onnx_protobuf::{Message, ModelProto, NodeProto, TensorProto};

/// Where `make deps models` puts the predictor, relative to the workspace root.
pub const PREDICTOR: &str = "engines/arbitrary_predict.onnx";

/// Environment variable that overrides [`PREDICTOR`].
pub const PREDICTOR_ENV: &str = "STYLERD_MOBILENETV2_ONNX";

/// Why the MobileNetV2 weights could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum MobileNetError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not an ONNX model: {message}")]
    Parse { path: String, message: String },
    #[error(
        "{path} has no Conv with weights under `{scope}/` (expected Magenta's arbitrary_predict.onnx, a MobileNetV2 trunk)"
    )]
    Missing { path: String, scope: String },
    #[error("weight `{name}` in {path} has shape {found:?}, expected {expected:?}")]
    Shape {
        path: String,
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    #[error(
        "initializer `{name}` in {path} has ONNX data type {data_type} (only float, int8, uint8 and int32 are read)"
    )]
    Dtype {
        path: String,
        name: String,
        data_type: i32,
    },
}

/// Channels of the stem conv (3x3, stride 2).
pub const STEM_CHANNELS: usize = 32;

/// (expansion, out channels, repeats, first stride) of MobileNetV2 1.0, Sandler et al. 2018,
/// Table 2, up to the 320-channel stage (the 1280-channel head is not a useful tap).
const STAGES: [(usize, usize, usize, usize); 7] = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
];

/// Shape of one inverted residual block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockShape {
    pub in_c: usize,
    pub hidden: usize,
    pub out_c: usize,
    pub stride: usize,
}

/// The 17 inverted residual blocks, in order.
pub fn block_layout() -> Vec<BlockShape> {
    let mut out = Vec::new();
    let mut in_c = STEM_CHANNELS;
    for (t, c, n, s) in STAGES {
        for i in 0..n {
            out.push(BlockShape {
                in_c,
                hidden: in_c * t,
                out_c: c,
                stride: if i == 0 { s } else { 1 },
            });
            in_c = c;
        }
    }
    out
}

/// TensorFlow scope of block `k`: `expanded_conv`, then `expanded_conv_1` … `_16`.
fn block_scope(k: usize) -> String {
    if k == 0 {
        "MobilenetV2/expanded_conv".into()
    } else {
        format!("MobilenetV2/expanded_conv_{k}")
    }
}

/// ReLU6, the activation of every MobileNetV2 conv except the linear projections.
fn relu6(x: Tensor<4>) -> Tensor<4> {
    x.clamp(0.0, 6.0)
}

/// Expand (1x1, ReLU6), depthwise 3x3 (ReLU6), project (1x1, linear), plus the input where
/// the shape is kept. Batch norm is already folded into each conv's bias.
#[derive(Module, Debug)]
pub struct InvertedResidual {
    pub expand: Option<Conv2d>,
    pub depthwise: Conv2d,
    pub project: Conv2d,
    pub residual: bool,
}

impl InvertedResidual {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let h = match &self.expand {
            Some(c) => relu6(c.forward(x.clone())),
            None => x.clone(),
        };
        let h = relu6(self.depthwise.forward(h));
        let h = self.project.forward(h);
        if self.residual { h + x } else { h }
    }
}

#[derive(Module, Debug)]
pub struct MobileNetV2 {
    pub stem: Conv2d,
    pub blocks: Vec<InvertedResidual>,
}

/// One conv's dequantized weight and bias as read from the graph.
struct ConvWeights {
    weight: Vec<f32>,
    dims: Vec<usize>,
    bias: Vec<f32>,
}

/// The float value of every initializer a Conv reads, resolved through `DequantizeLinear`.
struct OnnxWeights {
    path: String,
    init: HashMap<String, TensorProto>,
    dequant: HashMap<String, NodeProto>,
    /// Scope (weight name up to its last `/`) -> the Conv node reading it.
    convs: HashMap<String, NodeProto>,
}

impl OnnxWeights {
    fn read(path: &Path) -> Result<Self, MobileNetError> {
        let p = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| MobileNetError::Io {
            path: p.clone(),
            source,
        })?;
        let model = ModelProto::parse_from_bytes(&bytes).map_err(|e| MobileNetError::Parse {
            path: p.clone(),
            message: e.to_string(),
        })?;
        let graph = model.graph.unwrap_or_default();
        let init: HashMap<String, TensorProto> = graph
            .initializer
            .into_iter()
            .map(|t| (t.name.clone(), t))
            .collect();
        let mut dequant = HashMap::new();
        let mut convs = HashMap::new();
        for node in graph.node {
            match node.op_type.as_str() {
                "DequantizeLinear" if node.output.len() == 1 => {
                    dequant.insert(node.output[0].clone(), node);
                }
                "Conv" if node.input.len() >= 2 => {
                    convs.insert(node.input[1].clone(), node);
                }
                _ => {}
            }
        }
        // Key the convs by the scope of the stored weight, not of the dequantized copy.
        let convs = convs
            .into_iter()
            .map(|(w, node)| {
                let root = dequant.get(&w).map_or(w.clone(), |d| d.input[0].clone());
                let scope = root
                    .rsplit_once('/')
                    .map_or(root.clone(), |(s, _)| s.into());
                (scope, node)
            })
            .collect();
        Ok(OnnxWeights {
            path: p,
            init,
            dequant,
            convs,
        })
    }

    /// An initializer's values as f64 (int32 biases exceed f32's exact range).
    fn raw(&self, name: &str) -> Result<(Vec<f64>, Vec<usize>), MobileNetError> {
        let t = self.init.get(name).ok_or_else(|| MobileNetError::Missing {
            path: self.path.clone(),
            scope: name.into(),
        })?;
        let dims = t.dims.iter().map(|&d| d as usize).collect();
        let raw = &t.raw_data;
        let values = match t.data_type {
            1 if raw.is_empty() => t.float_data.iter().map(|&v| v as f64).collect(),
            1 => raw
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
                .collect(),
            2 | 3 | 6 if raw.is_empty() => t.int32_data.iter().map(|&v| v as f64).collect(),
            2 => raw.iter().map(|&v| v as f64).collect(),
            3 => raw.iter().map(|&v| v as i8 as f64).collect(),
            6 => raw
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
                .collect(),
            data_type => {
                return Err(MobileNetError::Dtype {
                    path: self.path.clone(),
                    name: name.into(),
                    data_type,
                });
            }
        };
        Ok((values, dims))
    }

    /// The float value of `name`: an initializer, or `scale * (q - zero_point)` of the
    /// `DequantizeLinear` producing it, per tensor or per channel along its `axis`.
    fn value(&self, name: &str) -> Result<(Vec<f32>, Vec<usize>), MobileNetError> {
        let Some(node) = self.dequant.get(name) else {
            let (v, dims) = self.raw(name)?;
            return Ok((v.into_iter().map(|x| x as f32).collect(), dims));
        };
        let (q, dims) = self.raw(&node.input[0])?;
        let (scale, _) = self.raw(&node.input[1])?;
        let zero = match node.input.get(2).filter(|z| !z.is_empty()) {
            Some(z) => self.raw(z)?.0,
            None => vec![0.0],
        };
        let axis = node
            .attribute
            .iter()
            .find(|a| a.name == "axis")
            .map_or(1, |a| a.i);
        let axis = if axis < 0 {
            axis + dims.len() as i64
        } else {
            axis
        } as usize;
        let inner: usize = dims.iter().skip(axis + 1).product();
        let channels = dims.get(axis).copied().unwrap_or(1);
        let pick = |v: &[f64], i: usize| {
            if v.len() == 1 {
                v[0]
            } else {
                v[(i / inner) % channels]
            }
        };
        let values = q
            .iter()
            .enumerate()
            .map(|(i, &x)| (pick(&scale, i) * (x - pick(&zero, i))) as f32)
            .collect();
        Ok((values, dims))
    }

    /// The weight and bias of the Conv under `scope`, checked against `expected`.
    fn conv(&self, scope: &str, expected: [usize; 4]) -> Result<ConvWeights, MobileNetError> {
        let node = self
            .convs
            .get(scope)
            .ok_or_else(|| MobileNetError::Missing {
                path: self.path.clone(),
                scope: scope.into(),
            })?;
        let (weight, dims) = self.value(&node.input[1])?;
        let (bias, _) = match node.input.get(2).filter(|b| !b.is_empty()) {
            Some(b) => self.value(b)?,
            None => (vec![0.0; expected[0]], vec![expected[0]]),
        };
        if dims != expected || bias.len() != expected[0] {
            return Err(MobileNetError::Shape {
                path: self.path.clone(),
                name: node.input[1].clone(),
                expected: expected.to_vec(),
                found: dims,
            });
        }
        Ok(ConvWeights { weight, dims, bias })
    }
}

/// A frozen conv with TensorFlow's SAME padding: symmetric for stride 1, bottom/right only
/// for stride 2 (what tf2onnx wrote for the predictor's even input sizes).
fn frozen_conv(w: ConvWeights, in_c: usize, stride: usize, device: &Device) -> Conv2d {
    let (out_c, per_group, k) = (w.dims[0], w.dims[1], w.dims[2]);
    let padding = match (k, stride) {
        (1, _) => PaddingConfig2d::Valid,
        (_, 1) => PaddingConfig2d::Explicit(k / 2, k / 2, k / 2, k / 2),
        _ => PaddingConfig2d::Explicit(0, 0, k / 2, k / 2),
    };
    let mut c = Conv2dConfig::new([in_c, out_c], [k, k])
        .with_stride([stride, stride])
        .with_groups(in_c / per_group)
        .with_padding(padding)
        .init(device);
    let weight = Tensor::from_data(TensorData::new(w.weight, [out_c, per_group, k, k]), device);
    let bias = Tensor::from_data(TensorData::new(w.bias, [out_c]), device);
    c.weight = Param::from_tensor(weight).set_require_grad(false);
    c.bias = Some(Param::from_tensor(bias).set_require_grad(false));
    c
}

impl MobileNetV2 {
    /// The trunk of Magenta's arbitrary-style predictor (see [`predictor_path`]).
    pub fn from_onnx(path: &Path, device: &Device) -> Result<Self, MobileNetError> {
        let onnx = OnnxWeights::read(path)?;
        let stem = onnx.conv("MobilenetV2/Conv", [STEM_CHANNELS, 3, 3, 3])?;
        let stem = frozen_conv(stem, 3, 2, device);
        let mut blocks = Vec::new();
        for (k, b) in block_layout().into_iter().enumerate() {
            let scope = block_scope(k);
            let expand = if b.hidden != b.in_c {
                let w = onnx.conv(&format!("{scope}/expand"), [b.hidden, b.in_c, 1, 1])?;
                Some(frozen_conv(w, b.in_c, 1, device))
            } else {
                None
            };
            let dw = onnx.conv(&format!("{scope}/depthwise"), [b.hidden, 1, 3, 3])?;
            let project = onnx.conv(&format!("{scope}/project"), [b.out_c, b.hidden, 1, 1])?;
            blocks.push(InvertedResidual {
                expand,
                depthwise: frozen_conv(dw, b.hidden, b.stride, device),
                project: frozen_conv(project, b.hidden, 1, device),
                residual: b.stride == 1 && b.in_c == b.out_c,
            });
        }
        Ok(MobileNetV2 { stem, blocks }.no_grad())
    }

    /// Feature maps at the named taps (`conv`: the stem after ReLU6, `block{k}`: the output
    /// of inverted residual block k), computing only as deep as the deepest one.
    pub fn features(&self, x: Tensor<4>, taps: &[String]) -> HashMap<String, Tensor<4>> {
        let names = self.tap_names();
        let last = names.iter().rposition(|n| taps.contains(n)).unwrap_or(0);
        let mut out = HashMap::new();
        let mut x = relu6(self.stem.forward(x));
        for (k, name) in names.iter().enumerate().take(last + 1) {
            if k > 0 {
                x = self.blocks[k - 1].forward(x);
            }
            if taps.contains(name) {
                out.insert(name.clone(), x.clone());
            }
        }
        out
    }

    pub fn tap_names(&self) -> Vec<String> {
        std::iter::once("conv".to_string())
            .chain((0..self.blocks.len()).map(|k| format!("block{k}")))
            .collect()
    }
}

/// The predictor: `$STYLERD_MOBILENETV2_ONNX`, else [`PREDICTOR`] under the current
/// directory or the workspace root.
pub fn predictor_path() -> PathBuf {
    if let Ok(p) = std::env::var(PREDICTOR_ENV) {
        return p.into();
    }
    let here = Path::new(PREDICTOR);
    if here.exists() {
        return here.into();
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(PREDICTOR)
}

#[cfg(test)]
mod tests;
