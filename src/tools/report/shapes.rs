//! Shapes of every tensor in an ONNX graph at one input size, for [`super::flops`].
//!
//! Owns [`Value`] (a tensor's shape, and its values when small and constant) and [`infer`],
//! which derives a node's output shapes from its inputs and attributes: kernel sizes,
//! strides, pads, resize scales, reshapes. The integer sub-graphs exporters emit for shape
//! arithmetic (PyTorch's `F.pad` builds its pads from `Constant`/`Concat`/`Slice`/
//! `Transpose`) are folded on the way. Ops it does not know give unknown shapes, never a
//! guess; nothing here costs anything or reads files.

use onnx_protobuf::tensor_proto::DataType;
use onnx_protobuf::{AttributeProto, NodeProto, TensorProto};

use super::fold::{
    broadcast, concat, constant, gather, matmul, reduce, reshape, resize, slice, squeeze,
    transpose, window,
};

/// Tensors with at most this many elements keep their values for folding; shape sub-graphs
/// are a handful of integers, weights are far bigger and only their shapes matter.
pub(super) const MAX_FOLD_ELEMENTS: usize = 4096;

/// A tensor as far as it is known: always its shape, its values only when small and constant.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Value {
    pub(super) shape: Vec<i64>,
    pub(super) data: Option<Vec<f64>>,
}

impl Value {
    pub(super) fn shape(shape: Vec<i64>) -> Self {
        Self { shape, data: None }
    }
    pub(super) fn with_data(shape: Vec<i64>, data: Vec<f64>) -> Self {
        let data = (data.len() <= MAX_FOLD_ELEMENTS).then_some(data);
        Self { shape, data }
    }
    pub(super) fn ints(&self) -> Option<Vec<i64>> {
        Some(self.data.as_ref()?.iter().map(|&v| v as i64).collect())
    }
    pub(super) fn floats(&self) -> Option<&[f64]> {
        self.data.as_deref()
    }
}
pub(super) fn tensor_value(t: &TensorProto) -> Value {
    let shape = t.dims.clone();
    let n: i64 = shape.iter().product();
    if n as usize > MAX_FOLD_ELEMENTS {
        return Value::shape(shape);
    }
    let raw = &t.raw_data;
    let data: Option<Vec<f64>> = match t.data_type {
        x if x == DataType::INT64 as i32 => Some(if raw.is_empty() {
            t.int64_data.iter().map(|&v| v as f64).collect()
        } else {
            raw.chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f64)
                .collect()
        }),
        x if x == DataType::INT32 as i32 => Some(if raw.is_empty() {
            t.int32_data.iter().map(|&v| f64::from(v)).collect()
        } else {
            raw.chunks_exact(4)
                .map(|c| f64::from(i32::from_le_bytes(c.try_into().unwrap_or([0; 4]))))
                .collect()
        }),
        x if x == DataType::FLOAT as i32 => Some(if raw.is_empty() {
            t.float_data.iter().map(|&v| f64::from(v)).collect()
        } else {
            raw.chunks_exact(4)
                .map(|c| f64::from(f32::from_le_bytes(c.try_into().unwrap_or([0; 4]))))
                .collect()
        }),
        _ => None,
    };
    match data {
        Some(d) if d.len() == n as usize => Value::with_data(shape, d),
        _ => Value::shape(shape),
    }
}

pub(super) fn attr<'a>(node: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}
pub(super) fn attr_i(node: &NodeProto, name: &str, default: i64) -> i64 {
    attr(node, name).map_or(default, |a| a.i)
}
pub(super) fn attr_ints(node: &NodeProto, name: &str) -> Option<Vec<i64>> {
    attr(node, name).map(|a| a.ints.clone())
}
pub(super) fn attr_s(node: &NodeProto, name: &str) -> String {
    attr(node, name).map_or_else(String::new, |a| String::from_utf8_lossy(&a.s).into_owned())
}

/// Normalises a possibly negative axis against `rank`.
pub(super) fn axis(a: i64, rank: usize) -> usize {
    if a < 0 {
        (a + rank as i64).max(0) as usize
    } else {
        a as usize
    }
}

pub(super) fn product(dims: &[i64]) -> u64 {
    dims.iter().map(|&d| d.max(0) as u64).product()
}

/// The output values of one node, as far as they can be derived.
pub(super) fn infer(node: &NodeProto, inputs: &[Option<&Value>]) -> Vec<Option<Value>> {
    let op = node.op_type.as_str();
    let x = inputs.first().copied().flatten();
    let input = |i: usize| inputs.get(i).copied().flatten();
    let one = |v: Option<Value>| vec![v];
    match op {
        "Constant" => one(constant(node)),
        "Identity"
        | "Relu"
        | "Sigmoid"
        | "Tanh"
        | "Sqrt"
        | "Reciprocal"
        | "Neg"
        | "Exp"
        | "Log"
        | "Abs"
        | "Clip"
        | "LeakyRelu"
        | "HardSigmoid"
        | "HardSwish"
        | "Erf"
        | "Softplus"
        | "Floor"
        | "Ceil"
        | "Round"
        | "Dropout"
        | "QuantizeLinear"
        | "DequantizeLinear"
        | "InstanceNormalization"
        | "BatchNormalization"
        | "LayerNormalization"
        | "Softmax"
        | "Elu"
        | "Selu"
        | "PRelu" => one(x.map(|v| Value::shape(v.shape.clone()))),
        "Cast" => one(x.cloned().map(|mut v| {
            let to = attr_i(node, "to", 1);
            let float = [DataType::FLOAT as i64, DataType::DOUBLE as i64, 10, 16].contains(&to);
            if let (Some(d), false) = (v.data.as_mut(), float) {
                d.iter_mut().for_each(|e| *e = e.trunc());
            }
            v
        })),
        "Add" | "Sub" | "Mul" | "Div" | "Pow" | "Equal" | "Less" | "Greater" | "Where" | "Max"
        | "Min" | "And" | "Or" => one(broadcast(op, inputs)),
        "Shape" => one(x.map(|v| {
            let r = v.shape.len();
            let start = axis(attr_i(node, "start", 0), r).min(r);
            let end = attr(node, "end").map_or(r, |a| axis(a.i, r).min(r));
            let dims: Vec<f64> = v.shape[start..end.max(start)]
                .iter()
                .map(|&d| d as f64)
                .collect();
            Value::with_data(vec![dims.len() as i64], dims)
        })),
        "ConstantOfShape" => one(x.and_then(Value::ints).map(|shape| {
            let fill = attr(node, "value")
                .and_then(|a| a.t.as_ref())
                .and_then(|t| tensor_value(t).data)
                .and_then(|d| d.first().copied())
                .unwrap_or(0.0);
            let n = product(&shape) as usize;
            Value::with_data(shape, vec![fill; n.min(MAX_FOLD_ELEMENTS + 1)])
        })),
        "Concat" => one(concat(node, inputs)),
        "Reshape" => one(reshape(x, input(1), attr_i(node, "allowzero", 0) != 0)),
        "Flatten" => one(x.map(|v| {
            let a = axis(attr_i(node, "axis", 1), v.shape.len());
            let outer = product(&v.shape[..a.min(v.shape.len())]) as i64;
            Value::shape(vec![
                outer,
                product(&v.shape[a.min(v.shape.len())..]) as i64,
            ])
        })),
        "Unsqueeze" | "Squeeze" => {
            let axes = input(1)
                .and_then(Value::ints)
                .or_else(|| attr_ints(node, "axes"));
            one(x.and_then(|v| squeeze(v, axes, op == "Unsqueeze")))
        }
        "Transpose" => one(x.map(|v| {
            let r = v.shape.len();
            let perm = attr_ints(node, "perm")
                .map(|p| p.iter().map(|&a| axis(a, r)).collect())
                .unwrap_or_else(|| (0..r).rev().collect::<Vec<_>>());
            transpose(v, &perm)
        })),
        "Slice" => one(x.and_then(|v| slice(node, v, inputs))),
        "Gather" => one(gather(node, x, input(1))),
        "ReduceMean" | "ReduceSum" | "ReduceMax" | "ReduceMin" | "ReduceL2" => {
            let axes = input(1)
                .and_then(Value::ints)
                .or_else(|| attr_ints(node, "axes"));
            let keep = attr_i(node, "keepdims", 1) != 0;
            one(x.map(|v| reduce(v, axes, keep)))
        }
        "GlobalAveragePool" | "GlobalMaxPool" => one(x.map(|v| {
            let mut s = v.shape.clone();
            s.iter_mut().skip(2).for_each(|d| *d = 1);
            Value::shape(s)
        })),
        "Pad" => {
            let pads = input(1)
                .and_then(Value::ints)
                .or_else(|| attr_ints(node, "pads"));
            one(x.zip(pads).map(|(v, p)| {
                let r = v.shape.len();
                let s = (0..r)
                    .map(|i| v.shape[i] + p.get(i).unwrap_or(&0) + p.get(i + r).unwrap_or(&0))
                    .collect();
                Value::shape(s)
            }))
        }
        "Resize" | "Upsample" => one(resize(op, x, inputs)),
        "DepthToSpace" | "SpaceToDepth" => one(x.map(|v| {
            let b = attr_i(node, "blocksize", 1).max(1);
            let mut s = v.shape.clone();
            if s.len() == 4 {
                let (c, sp) = if op == "DepthToSpace" {
                    (s[1] / (b * b), b)
                } else {
                    (s[1] * b * b, 1)
                };
                s[1] = c;
                s[2] = if sp == 1 { s[2] / b } else { s[2] * b };
                s[3] = if sp == 1 { s[3] / b } else { s[3] * b };
            }
            Value::shape(s)
        })),
        "Conv" | "ConvTranspose" | "MaxPool" | "AveragePool" => one(window(node, inputs)),
        "Gemm" => one(x.zip(input(1)).map(|(a, b)| {
            let m = if attr_i(node, "transA", 0) != 0 {
                a.shape[1]
            } else {
                a.shape[0]
            };
            let n = if attr_i(node, "transB", 0) != 0 {
                b.shape[0]
            } else {
                b.shape[1]
            };
            Value::shape(vec![m, n])
        })),
        "MatMul" => one(x.zip(input(1)).and_then(|(a, b)| matmul(a, b))),
        _ => vec![None; node.output.len()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ints(shape: Vec<i64>, data: &[i64]) -> Value {
        Value::with_data(shape, data.iter().map(|&v| v as f64).collect())
    }

    #[test]
    fn transpose_and_slice_fold_pytorch_pads() {
        // F.pad(x, (4, 4, 4, 4)) exports [4,4,4,4,0,0,0,0] -> reshape [-1,2] -> reverse rows
        // -> transpose -> flatten, giving ONNX's [0,0,4,4, 0,0,4,4].
        let flat = ints(vec![8], &[1, 2, 3, 4, 0, 0, 0, 0]);
        let pairs = reshape(Some(&flat), Some(&ints(vec![2], &[-1, 2])), false).unwrap();
        assert_eq!(pairs.shape, vec![4, 2]);
        let mut node = NodeProto::new();
        node.op_type = "Slice".into();
        let starts = ints(vec![1], &[-1]);
        let ends = ints(vec![1], &[i64::MIN + 1]);
        let axes = ints(vec![1], &[0]);
        let steps = ints(vec![1], &[-1]);
        let inputs = [
            Some(&pairs),
            Some(&starts),
            Some(&ends),
            Some(&axes),
            Some(&steps),
        ];
        let rev = slice(&node, &pairs, &inputs).unwrap();
        assert_eq!(rev.ints().unwrap(), vec![0, 0, 0, 0, 3, 4, 1, 2]);
        let t = transpose(&rev, &[1, 0]);
        assert_eq!(t.shape, vec![2, 4]);
        assert_eq!(t.ints().unwrap(), vec![0, 0, 3, 1, 0, 0, 4, 2]);
    }
}
