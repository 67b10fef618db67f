//! FLOPs per frame counted from an ONNX graph, for the Jetson estimate.
//!
//! Reads the `.onnx` file with `onnx-protobuf`, gives the image input the size asked for,
//! and walks the nodes in (topological) file order, with [`super::shapes`] deriving every
//! tensor's shape. Conv, ConvTranspose, Gemm and MatMul are costed at 2 FLOPs per
//! multiply-accumulate; everything else (normalisation, activations, resize, pad) is
//! memory-bound and only counted as bytes moved. It never runs the model.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use onnx_protobuf::tensor_shape_proto::dimension;
use onnx_protobuf::{Message, ModelProto, NodeProto, type_proto};
use thiserror::Error;

use super::shapes::{MAX_FOLD_ELEMENTS, Value, attr_i, infer, product, tensor_value};
use crate::frame::Layout;

#[derive(Debug, Error)]
pub enum FlopsError {
    #[error("cannot read ONNX model {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("ONNX model {path} has no input named {input:?} (its manifest says so)")]
    NoInput { path: PathBuf, input: String },
    #[error(
        "cannot cost {op} node {node:?} in {path}: the shape of its input {tensor:?} could not \
         be derived (an unsupported op upstream)"
    )]
    Shape {
        path: PathBuf,
        op: String,
        node: String,
        tensor: String,
    },
}

/// One costed node.
#[derive(Clone, Debug)]
pub struct LayerCost {
    pub node: String,
    pub op: String,
    pub output: Vec<i64>,
    pub flops: u64,
    /// FP16 bytes the node must move at least once: its input, weights and output.
    pub bytes: u64,
}

/// The whole graph at one input size.
#[derive(Clone, Debug)]
pub struct GraphCost {
    pub layers: Vec<LayerCost>,
    /// FP16 bytes every node producing a feature map (rank >= 3) reads and writes, with no
    /// fusion at all: the upper bound that the conv-only [`GraphCost::bytes`] bounds below.
    pub unfused_bytes: u64,
}

impl GraphCost {
    pub fn flops(&self) -> u64 {
        self.layers.iter().map(|l| l.flops).sum()
    }
    pub fn bytes(&self) -> u64 {
        self.layers.iter().map(|l| l.bytes).sum()
    }
}

/// Counts the FLOPs of `path` with its image input `input` at `width` x `height`.
pub fn count(
    path: &Path,
    input: &str,
    layout: Layout,
    width: u32,
    height: u32,
) -> Result<GraphCost, FlopsError> {
    let bytes = std::fs::read(path).map_err(|e| FlopsError::Read {
        path: path.into(),
        message: e.to_string(),
    })?;
    let model = ModelProto::parse_from_bytes(&bytes).map_err(|e| FlopsError::Read {
        path: path.into(),
        message: e.to_string(),
    })?;
    let graph = model.graph.get_or_default();
    let mut values: HashMap<String, Value> = HashMap::new();
    for init in &graph.initializer {
        values.insert(init.name.clone(), tensor_value(init));
    }
    let (w, h) = (i64::from(width), i64::from(height));
    let mut found = false;
    for vi in &graph.input {
        if values.contains_key(&vi.name) {
            continue;
        }
        let declared = declared_shape(vi.type_.as_ref());
        let shape = if vi.name == input {
            found = true;
            let c = match layout {
                Layout::Nchw => declared.get(1).copied(),
                Layout::Nhwc => declared.get(3).copied(),
            }
            .filter(|&c| c > 0)
            .unwrap_or(3);
            match layout {
                Layout::Nchw => vec![1, c, h, w],
                Layout::Nhwc => vec![1, h, w, c],
            }
        } else {
            declared.iter().map(|&d| d.max(1)).collect()
        };
        values.insert(vi.name.clone(), Value::shape(shape));
    }
    if !found {
        return Err(FlopsError::NoInput {
            path: path.into(),
            input: input.into(),
        });
    }
    let mut layers = Vec::new();
    let mut unfused_bytes = 0;
    for node in &graph.node {
        let inputs: Vec<Option<&Value>> = node
            .input
            .iter()
            .map(|n| if n.is_empty() { None } else { values.get(n) })
            .collect();
        if let Some(cost) = cost(node, &inputs) {
            let cost = cost.map_err(|tensor| FlopsError::Shape {
                path: path.into(),
                op: node.op_type.clone(),
                node: node.name.clone(),
                tensor,
            })?;
            layers.push(cost);
        }
        let outputs = infer(node, &inputs);
        unfused_bytes += traffic(&inputs, &outputs);
        for (name, value) in node.output.iter().zip(outputs) {
            if let Some(v) = value {
                values.insert(name.clone(), v);
            }
        }
    }
    Ok(GraphCost {
        layers,
        unfused_bytes,
    })
}

/// FP16 bytes a node moves when it reads and writes feature maps; shape arithmetic and
/// weights-only nodes (rank < 3 or tiny) move nothing worth counting.
fn traffic(inputs: &[Option<&Value>], outputs: &[Option<Value>]) -> u64 {
    let map = |v: &Value| {
        let n = product(&v.shape);
        if v.shape.len() >= 3 && n > MAX_FOLD_ELEMENTS as u64 {
            n
        } else {
            0
        }
    };
    let written: u64 = outputs.iter().flatten().map(map).sum();
    if written == 0 {
        return 0;
    }
    let read: u64 = inputs.iter().flatten().map(|v| map(v)).sum();
    2 * (read + written)
}

fn declared_shape(tp: Option<&onnx_protobuf::TypeProto>) -> Vec<i64> {
    let Some(type_proto::Value::TensorType(t)) = tp.and_then(|t| t.value.as_ref()) else {
        return Vec::new();
    };
    t.shape
        .dim
        .iter()
        .map(|d| match d.value {
            Some(dimension::Value::DimValue(v)) => v,
            _ => -1,
        })
        .collect()
}

/// The cost of a compute node, `None` for nodes that are not counted, `Err(tensor)` when an
/// input shape is unknown.
fn cost(node: &NodeProto, inputs: &[Option<&Value>]) -> Option<Result<LayerCost, String>> {
    let op = node.op_type.as_str();
    if !matches!(op, "Conv" | "ConvTranspose" | "Gemm" | "MatMul") {
        return None;
    }
    let need = |i: usize| -> Result<&Value, String> {
        inputs
            .get(i)
            .copied()
            .flatten()
            .ok_or_else(|| node.input.get(i).cloned().unwrap_or_default())
    };
    let result = (|| {
        let x = need(0)?;
        let wt = need(1)?;
        let out = infer(node, inputs)
            .into_iter()
            .next()
            .flatten()
            .ok_or_else(|| node.output.first().cloned().unwrap_or_default())?;
        let macs = match op {
            // out[N, Cout, ...] x (Cin / group) x kernel
            "Conv" => product(&out.shape) * product(&wt.shape[1..]),
            // every input pixel scatters into Cout/group x kernel outputs
            "ConvTranspose" => product(&x.shape) * product(&wt.shape[1..]),
            // out[M, N] x K, and batched MatMul likewise: K is A's last dimension
            _ => {
                let k = if op == "Gemm" && attr_i(node, "transA", 0) != 0 {
                    x.shape.first().copied().unwrap_or(1)
                } else {
                    x.shape.last().copied().unwrap_or(1)
                };
                product(&out.shape) * k.max(0) as u64
            }
        };
        let elems = product(&x.shape) + product(&wt.shape) + product(&out.shape);
        Ok(LayerCost {
            node: node.name.clone(),
            op: op.to_string(),
            output: out.shape.clone(),
            flops: 2 * macs,
            bytes: 2 * elems,
        })
    })();
    Some(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::report::fold::window;
    use onnx_protobuf::AttributeProto;

    #[test]
    fn conv_output_size_follows_stride_and_pads() {
        let mut node = NodeProto::new();
        node.op_type = "Conv".into();
        let mut a = AttributeProto::new();
        a.name = "strides".into();
        a.ints = vec![2, 2];
        node.attribute.push(a);
        let x = Value::shape(vec![1, 32, 258, 258]);
        let w = Value::shape(vec![32, 32, 3, 3]);
        let out = window(&node, &[Some(&x), Some(&w)]).unwrap();
        assert_eq!(out.shape, vec![1, 32, 128, 128]);
        let c = cost(&node, &[Some(&x), Some(&w)]).unwrap().unwrap();
        assert_eq!(c.flops, 2 * 32 * 128 * 128 * 32 * 9);
    }
}
