//! ONNX export of a trained transformer network, written from Rust with onnx-protobuf
//! (opset 17: Pad reflect, Conv, InstanceNormalization, Relu, Add, Resize nearest,
//! DepthToSpace CRD, Sigmoid), and the daemon's model manifest (engines/README.md). It reads
//! the networks' public fields; it must not change what they compute. The `live` students
//! export to Conv (zero pads), Relu, Add, DepthToSpace and Sigmoid only, plus AveragePool,
//! GlobalAveragePool and a broadcast Mul with their whole-frame context branch, and Reshape
//! and Concat for a conditional student's `style_weights` (export/live.rs).

use std::path::Path;

use burn::module::Param;
use burn::nn::InstanceNorm;
use burn::nn::conv::Conv2d;
use burn::prelude::*;
use onnx_protobuf::{
    AttributeProto, GraphProto, Message, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
    attribute_proto::AttributeType,
    tensor_proto::DataType,
    tensor_shape_proto::{Dimension, dimension},
    type_proto,
};
use sha2::{Digest, Sha256};

use crate::blocks::{ConvLayer, ConvNormRelu, ResidualBlock, UpsampleBlock};
use crate::transformer::TransformerNet;

/// Why a model could not be exported.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("cannot write {path}: {message}")]
    Write { path: String, message: String },
    #[error("{name} takes a vector of {want} styles but {got} style names were given")]
    Styles {
        name: String,
        want: usize,
        got: usize,
    },
}

/// Input and output names, as the manifest declares them.
pub const INPUT: &str = "image";
pub const OUTPUT: &str = "stylized";
/// A conditional student's style-vector input (multistyle26's name for it).
pub const STYLE_INPUT: &str = "style_weights";

#[derive(Default)]
struct Graph {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    next: usize,
}

fn host<const D: usize>(p: &Param<Tensor<D>>) -> (Vec<i64>, Vec<f32>) {
    let t = p.val().inner();
    let dims = t.dims().iter().map(|&d| d as i64).collect();
    (
        dims,
        t.into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap_or_default(),
    )
}

fn attr_int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        type_: AttributeType::INT.into(),
        i: v,
        ..Default::default()
    }
}
fn attr_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        type_: AttributeType::INTS.into(),
        ints: v.to_vec(),
        ..Default::default()
    }
}
fn attr_float(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        type_: AttributeType::FLOAT.into(),
        f: v,
        ..Default::default()
    }
}
fn attr_str(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        type_: AttributeType::STRING.into(),
        s: v.as_bytes().to_vec(),
        ..Default::default()
    }
}

impl Graph {
    fn name(&mut self, stem: &str) -> String {
        self.next += 1;
        format!("{stem}_{}", self.next)
    }
    fn floats(&mut self, stem: &str, dims: Vec<i64>, data: Vec<f32>) -> String {
        let name = self.name(stem);
        self.initializers.push(TensorProto {
            name: name.clone(),
            dims,
            data_type: DataType::FLOAT as i32,
            raw_data: data.iter().flat_map(|f| f.to_le_bytes()).collect(),
            ..Default::default()
        });
        name
    }
    fn ints(&mut self, stem: &str, data: Vec<i64>) -> String {
        let name = self.name(stem);
        self.initializers.push(TensorProto {
            name: name.clone(),
            dims: vec![data.len() as i64],
            data_type: DataType::INT64 as i32,
            raw_data: data.iter().flat_map(|f| f.to_le_bytes()).collect(),
            ..Default::default()
        });
        name
    }
    fn node(&mut self, op: &str, inputs: &[&str], attribute: Vec<AttributeProto>) -> String {
        let out = self.name(&op.to_lowercase());
        self.nodes.push(NodeProto {
            op_type: op.into(),
            name: out.clone(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![out.clone()],
            attribute,
            ..Default::default()
        });
        out
    }

    fn conv(&mut self, c: &Conv2d, x: &str) -> String {
        self.conv_padded(c, x, 0)
    }

    /// A Conv node with `pad` zeros on each side (the live networks pad inside the conv).
    fn conv_padded(&mut self, c: &Conv2d, x: &str, pad: i64) -> String {
        let pad = pad * c.dilation[0] as i64;
        let (wd, w) = host(&c.weight);
        let kernel = vec![wd[2], wd[3]];
        let w = self.floats("w", wd, w);
        let mut inputs = vec![x.to_string(), w];
        if let Some(b) = &c.bias {
            let (bd, b) = host(b);
            inputs.push(self.floats("b", bd, b));
        }
        let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        let stride = c.stride.map(|s| s as i64);
        self.node(
            "Conv",
            &inputs,
            vec![
                attr_ints("kernel_shape", &kernel),
                attr_ints("strides", &stride),
                attr_int("group", c.groups as i64),
                attr_ints("dilations", &c.dilation.map(|d| d as i64)),
                attr_ints("pads", &[pad, pad, pad, pad]),
            ],
        )
    }

    fn conv_layer(&mut self, c: &ConvLayer, x: &str) -> String {
        let p = c.pad as i64;
        let mut x = x.to_string();
        if p > 0 {
            let pads = self.ints("pads", vec![0, 0, p, p, 0, 0, p, p]);
            x = self.node("Pad", &[&x, &pads], vec![attr_str("mode", "reflect")]);
        }
        if let Some(dw) = &c.depthwise {
            x = self.conv(dw, &x);
        }
        self.conv(&c.conv, &x)
    }

    fn instance_norm(&mut self, n: &InstanceNorm, x: &str) -> String {
        let channels = n.num_channels;
        let (gd, g) = n
            .gamma
            .as_ref()
            .map(host)
            .unwrap_or((vec![channels as i64], vec![1.0; channels]));
        let (bd, b) = n
            .beta
            .as_ref()
            .map(host)
            .unwrap_or((vec![channels as i64], vec![0.0; channels]));
        let g = self.floats("gamma", gd, g);
        let b = self.floats("beta", bd, b);
        self.node(
            "InstanceNormalization",
            &[x, &g, &b],
            vec![attr_float("epsilon", n.epsilon as f32)],
        )
    }

    fn conv_norm_relu(&mut self, b: &ConvNormRelu, x: &str) -> String {
        let y = self.conv_layer(&b.conv, x);
        let y = self.instance_norm(&b.norm, &y);
        self.node("Relu", &[&y], vec![])
    }

    fn residual(&mut self, b: &ResidualBlock, x: &str) -> String {
        let y = self.conv_norm_relu(&b.first, x);
        let y = self.conv_layer(&b.second, &y);
        let y = self.instance_norm(&b.norm, &y);
        self.node("Add", &[x, &y], vec![])
    }

    fn upsample(&mut self, b: &UpsampleBlock, x: &str) -> String {
        let y = if b.shuffle.is_some() {
            let y = self.conv_layer(&b.conv, x);
            self.node(
                "DepthToSpace",
                &[&y],
                vec![attr_int("blocksize", 2), attr_str("mode", "CRD")],
            )
        } else {
            let scales = self.floats("scales", vec![4], vec![1.0, 1.0, 2.0, 2.0]);
            let y = self.node(
                "Resize",
                &[x, "", &scales],
                vec![
                    attr_str("mode", "nearest"),
                    attr_str("coordinate_transformation_mode", "asymmetric"),
                    attr_str("nearest_mode", "floor"),
                ],
            );
            self.conv_layer(&b.conv, &y)
        };
        let y = self.instance_norm(&b.norm, &y);
        self.node("Relu", &[&y], vec![])
    }
}

fn image_value(name: &str) -> ValueInfoProto {
    use dimension::Value::{DimParam, DimValue};
    value(
        name,
        vec![
            DimValue(1),
            DimValue(3),
            DimParam("height".into()),
            DimParam("width".into()),
        ],
    )
}

/// A float tensor value of shape `dims`.
fn value(name: &str, dims: Vec<dimension::Value>) -> ValueInfoProto {
    let dim = |v: dimension::Value| Dimension {
        value: Some(v),
        ..Default::default()
    };
    let shape = TensorShapeProto {
        dim: dims.into_iter().map(dim).collect(),
        ..Default::default()
    };
    let tensor = type_proto::Tensor {
        elem_type: DataType::FLOAT as i32,
        shape: Some(shape).into(),
        ..Default::default()
    };
    ValueInfoProto {
        name: name.into(),
        type_: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(tensor)),
            ..Default::default()
        })
        .into(),
        ..Default::default()
    }
}

/// A network that export can write as ONNX.
pub trait ToOnnx {
    /// The ONNX model as bytes: input `image` and output `stylized`, both
    /// [1, 3, height, width] RGB 0..1, height and width free (multiples of 4); a
    /// conditional student also takes `style_weights` [S].
    fn to_onnx(&self, name: &str) -> Vec<u8>;
    /// Length of the style vector a conditional student takes (0: none).
    fn styles(&self) -> usize {
        0
    }
    /// What height and width must be multiples of (the manifest's `pad-multiple`).
    fn pad_multiple(&self) -> u32 {
        4
    }
}

impl ToOnnx for TransformerNet {
    fn to_onnx(&self, name: &str) -> Vec<u8> {
        to_onnx(self, name)
    }
}

/// The ONNX model of `net` as bytes: input `image` and output `stylized`, both
/// [1, 3, height, width] RGB 0..1, height and width free (multiples of 4).
pub fn to_onnx(net: &TransformerNet, name: &str) -> Vec<u8> {
    let mut g = Graph::default();
    let mut x = INPUT.to_string();
    for b in &net.encoder {
        x = g.conv_norm_relu(b, &x);
    }
    for b in &net.residuals {
        x = g.residual(b, &x);
    }
    for b in &net.decoder {
        x = g.upsample(b, &x);
    }
    let y = g.conv_layer(&net.output, &x);
    g.node("Sigmoid", &[&y], vec![]);
    finish(g, name, vec![image_value(INPUT)])
}

/// The model around `g`'s nodes taking `inputs`, with the last node's output renamed to
/// `stylized`.
fn finish(mut g: Graph, name: &str, inputs: Vec<ValueInfoProto>) -> Vec<u8> {
    if let Some(last) = g.nodes.last_mut() {
        last.output = vec![OUTPUT.to_string()];
    }
    let graph = GraphProto {
        name: name.into(),
        node: g.nodes,
        initializer: g.initializers,
        input: inputs,
        output: vec![image_value(OUTPUT)],
        ..Default::default()
    };
    let model = ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 17,
            ..Default::default()
        }],
        producer_name: "stylerd-train".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        graph: Some(graph).into(),
        ..Default::default()
    };
    model
        .write_to_bytes()
        .unwrap_or_else(|_| unreachable!("in-memory protobuf encoding cannot fail"))
}

/// What the manifest says about a model besides what export knows.
pub struct ManifestInfo<'a> {
    pub name: &'a str,
    pub description: &'a str,
    pub provenance: &'a str,
    /// For a student: the teacher model and the style of it the student reproduces
    /// (`all` for a conditional student).
    pub student_of: Option<(&'a str, &'a str)>,
    /// A conditional student's style names (the teacher's), one per style-vector entry.
    pub styles: &'a [String],
}

/// Writes `<dir>/<name>.onnx` and its manifest `<dir>/<name>.toml` (making `dir` if it is
/// missing); returns the sha256.
pub fn export<N: ToOnnx>(net: &N, dir: &Path, info: &ManifestInfo) -> Result<String, ExportError> {
    let conditional = net.styles() > 0;
    if conditional && info.styles.len() != net.styles() {
        return Err(ExportError::Styles {
            name: info.name.into(),
            want: net.styles(),
            got: info.styles.len(),
        });
    }
    let bytes = net.to_onnx(info.name);
    std::fs::create_dir_all(dir).map_err(|e| ExportError::Write {
        path: dir.display().to_string(),
        message: e.to_string(),
    })?;
    let onnx = dir.join(format!("{}.onnx", info.name));
    let write = |p: &Path, data: &[u8]| {
        std::fs::write(p, data).map_err(|e| ExportError::Write {
            path: p.display().to_string(),
            message: e.to_string(),
        })
    };
    write(&onnx, &bytes)?;
    let sha = format!("{:x}", Sha256::digest(&bytes));
    // The daemon's own manifest type (stylerd-manifest): written here, read there.
    use stylerd_manifest::{AnyTag, Layout, Manifest, SizeSupport, ValueRange};
    let manifest = Manifest {
        name: info.name.into(),
        file: format!("{}.onnx", info.name).into(),
        sha256: sha.clone(),
        description: info.description.into(),
        licence: "Apache-2.0".into(),
        provenance: info.provenance.into(),
        input: INPUT.into(),
        output: OUTPUT.into(),
        layout: Layout::Nchw,
        input_range: ValueRange::UNIT,
        output_range: ValueRange::UNIT,
        pad_multiple: net.pad_multiple(),
        size: SizeSupport::Any(AnyTag::Any),
        style_input: conditional.then(|| STYLE_INPUT.to_string()),
        styles: if conditional {
            info.styles.to_vec()
        } else {
            Vec::new()
        },
        style_vector_len: None,
        student_of: info.student_of.map(|(m, _)| m.to_string()),
        student_style: info.student_of.map(|(_, s)| s.to_string()),
    };
    manifest.check().map_err(|message| ExportError::Write {
        path: info.name.into(),
        message,
    })?;
    let manifest = manifest.to_toml();
    write(
        &dir.join(format!("{}.toml", info.name)),
        manifest.as_bytes(),
    )?;
    Ok(sha)
}

mod live;

#[cfg(test)]
mod tests;
