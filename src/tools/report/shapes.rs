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

fn constant(node: &NodeProto) -> Option<Value> {
    let a = node.attribute.first()?;
    match a.name.as_str() {
        "value" => a.t.as_ref().map(tensor_value),
        "value_int" => Some(Value::with_data(vec![], vec![a.i as f64])),
        "value_float" => Some(Value::with_data(vec![], vec![f64::from(a.f)])),
        "value_ints" => Some(Value::with_data(
            vec![a.ints.len() as i64],
            a.ints.iter().map(|&v| v as f64).collect(),
        )),
        "value_floats" => Some(Value::with_data(
            vec![a.floats.len() as i64],
            a.floats.iter().map(|&v| f64::from(v)).collect(),
        )),
        _ => None,
    }
}

/// Row-major strides of `shape`.
fn strides(shape: &[i64]) -> Vec<usize> {
    let mut s = vec![1usize; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1].max(0) as usize;
    }
    s
}

/// Builds a tensor of `shape` whose element at each index is read from `src` at `map(index)`.
fn gather_nd(src: &Value, shape: Vec<i64>, map: impl Fn(&[usize]) -> Vec<usize>) -> Value {
    let Some(data) = src.floats() else {
        return Value::shape(shape);
    };
    let n = product(&shape) as usize;
    if n > MAX_FOLD_ELEMENTS {
        return Value::shape(shape);
    }
    let src_strides = strides(&src.shape);
    let mut out = Vec::with_capacity(n);
    let mut idx = vec![0usize; shape.len()];
    for _ in 0..n {
        let at: usize = map(&idx).iter().zip(&src_strides).map(|(i, s)| i * s).sum();
        out.push(data.get(at).copied().unwrap_or(0.0));
        for d in (0..idx.len()).rev() {
            idx[d] += 1;
            if (idx[d] as i64) < shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    Value::with_data(shape, out)
}

fn broadcast(op: &str, inputs: &[Option<&Value>]) -> Option<Value> {
    let known: Vec<&Value> = inputs.iter().copied().collect::<Option<Vec<_>>>()?;
    let rank = known.iter().map(|v| v.shape.len()).max()?;
    let mut shape = vec![1i64; rank];
    for v in &known {
        let off = rank - v.shape.len();
        for (i, &d) in v.shape.iter().enumerate() {
            if d != 1 {
                shape[off + i] = d;
            }
        }
    }
    let foldable = matches!(op, "Add" | "Sub" | "Mul" | "Div") && known.len() == 2;
    if !foldable || known.iter().any(|v| v.data.is_none()) {
        return Some(Value::shape(shape));
    }
    let expand = |v: &Value| {
        let off = rank - v.shape.len();
        gather_nd(v, shape.clone(), |idx| {
            (0..v.shape.len())
                .map(|i| if v.shape[i] == 1 { 0 } else { idx[off + i] })
                .collect()
        })
    };
    let (a, b) = (expand(known[0]), expand(known[1]));
    let (a, b) = (a.data?, b.data?);
    let data = a.iter().zip(b).map(|(x, y)| match op {
        "Add" => x + y,
        "Sub" => x - y,
        "Mul" => x * y,
        _ => x / y,
    });
    Some(Value::with_data(shape.clone(), data.collect()))
}

fn concat(node: &NodeProto, inputs: &[Option<&Value>]) -> Option<Value> {
    let known: Vec<&Value> = inputs.iter().copied().collect::<Option<Vec<_>>>()?;
    let first = known.first()?;
    let a = axis(attr_i(node, "axis", 0), first.shape.len());
    let mut shape = first.shape.clone();
    *shape.get_mut(a)? = known
        .iter()
        .map(|v| v.shape.get(a).copied().unwrap_or(0))
        .sum();
    // Values fold only along the outermost axis, where concatenation is appending.
    if a == 0 && known.iter().all(|v| v.data.is_some()) {
        let data = known.iter().flat_map(|v| v.data.iter().flatten().copied());
        return Some(Value::with_data(shape, data.collect()));
    }
    Some(Value::shape(shape))
}

pub(super) fn reshape(
    x: Option<&Value>,
    target: Option<&Value>,
    allow_zero: bool,
) -> Option<Value> {
    let x = x?;
    let mut shape = target?.ints()?;
    for (i, d) in shape.iter_mut().enumerate() {
        if *d == 0 && !allow_zero {
            *d = *x.shape.get(i)?;
        }
    }
    if let Some(pos) = shape.iter().position(|&d| d == -1) {
        let rest: i64 = shape.iter().filter(|&&d| d != -1).product();
        shape[pos] = if rest == 0 {
            0
        } else {
            product(&x.shape) as i64 / rest
        };
    }
    Some(Value {
        shape,
        data: x.data.clone(),
    })
}

fn squeeze(v: &Value, axes: Option<Vec<i64>>, unsqueeze: bool) -> Option<Value> {
    let mut shape = v.shape.clone();
    if unsqueeze {
        let rank = shape.len() + axes.as_ref()?.len();
        let mut axes: Vec<usize> = axes?.iter().map(|&a| axis(a, rank)).collect();
        axes.sort_unstable();
        for a in axes {
            shape.insert(a.min(shape.len()), 1);
        }
    } else {
        let r = shape.len();
        let drop: Vec<usize> = match axes {
            Some(a) => a.iter().map(|&a| axis(a, r)).collect(),
            None => (0..r).filter(|&i| shape[i] == 1).collect(),
        };
        shape = (0..r)
            .filter(|i| !drop.contains(i))
            .map(|i| shape[i])
            .collect();
    }
    Some(Value {
        shape,
        data: v.data.clone(),
    })
}

pub(super) fn transpose(v: &Value, perm: &[usize]) -> Value {
    let shape: Vec<i64> = perm
        .iter()
        .map(|&p| v.shape.get(p).copied().unwrap_or(1))
        .collect();
    gather_nd(v, shape, |idx| {
        let mut src = vec![0; perm.len()];
        for (o, &p) in perm.iter().enumerate() {
            if let Some(s) = src.get_mut(p) {
                *s = idx[o];
            }
        }
        src
    })
}

pub(super) fn slice(node: &NodeProto, v: &Value, inputs: &[Option<&Value>]) -> Option<Value> {
    let ints = |i: usize, name: &str| {
        inputs
            .get(i)
            .copied()
            .flatten()
            .and_then(Value::ints)
            .or_else(|| attr_ints(node, name))
    };
    let starts = ints(1, "starts")?;
    let ends = ints(2, "ends")?;
    let r = v.shape.len();
    let axes: Vec<usize> = ints(3, "axes")
        .map(|a| a.iter().map(|&a| axis(a, r)).collect())
        .unwrap_or_else(|| (0..starts.len()).collect());
    let steps = ints(4, "steps").unwrap_or_else(|| vec![1; starts.len()]);
    let mut begin = vec![0i64; r];
    let mut step = vec![1i64; r];
    let mut shape = v.shape.clone();
    for (k, &a) in axes.iter().enumerate() {
        let dim = *v.shape.get(a)?;
        let st = *steps.get(k)?;
        if st == 0 {
            return None;
        }
        let clamp = |x: i64| {
            let x = if x < 0 { x + dim } else { x };
            if st > 0 {
                x.clamp(0, dim)
            } else {
                x.clamp(-1, dim - 1)
            }
        };
        let (s, e) = (clamp(starts[k]), clamp(ends[k]));
        let n = if st > 0 {
            (e - s + st - 1) / st
        } else {
            (s - e - st - 1) / -st
        };
        shape[a] = n.max(0);
        begin[a] = s;
        step[a] = st;
    }
    Some(gather_nd(v, shape, |idx| {
        (0..r)
            .map(|i| (begin[i] + idx[i] as i64 * step[i]).max(0) as usize)
            .collect()
    }))
}

fn gather(node: &NodeProto, x: Option<&Value>, indices: Option<&Value>) -> Option<Value> {
    let (x, ind) = (x?, indices?);
    let a = axis(attr_i(node, "axis", 0), x.shape.len());
    let dim = *x.shape.get(a)?;
    let mut shape: Vec<i64> = x.shape[..a].to_vec();
    shape.extend(&ind.shape);
    shape.extend(&x.shape[a + 1..]);
    let idx_vals = ind.ints()?;
    let ind_rank = ind.shape.len();
    Some(gather_nd(x, shape, |out| {
        let lead = &out[..a];
        let pos: usize = out[a..a + ind_rank]
            .iter()
            .zip(strides(&ind.shape))
            .map(|(i, s)| i * s)
            .sum();
        let k = idx_vals.get(pos).copied().unwrap_or(0);
        let k = if k < 0 { k + dim } else { k }.max(0) as usize;
        lead.iter()
            .copied()
            .chain(std::iter::once(k))
            .chain(out[a + ind_rank..].iter().copied())
            .collect()
    }))
}

fn reduce(v: &Value, axes: Option<Vec<i64>>, keep: bool) -> Value {
    let r = v.shape.len();
    let axes: Vec<usize> = axes
        .map(|a| a.iter().map(|&a| axis(a, r)).collect())
        .unwrap_or_else(|| (0..r).collect());
    let shape = (0..r)
        .filter_map(|i| match (axes.contains(&i), keep) {
            (true, true) => Some(1),
            (true, false) => None,
            (false, _) => Some(v.shape[i]),
        })
        .collect();
    Value::shape(shape)
}

fn resize(op: &str, x: Option<&Value>, inputs: &[Option<&Value>]) -> Option<Value> {
    let x = x?;
    let get = |i: usize| inputs.get(i).copied().flatten();
    if op == "Resize"
        && let Some(sizes) = get(3).and_then(Value::ints).filter(|s| !s.is_empty())
    {
        return Some(Value::shape(sizes));
    }
    let scales_at = if op == "Resize" { 2 } else { 1 };
    let scales = get(scales_at)
        .and_then(Value::floats)
        .filter(|s| !s.is_empty())?;
    let shape = x
        .shape
        .iter()
        .zip(scales)
        .map(|(&d, &s)| (d as f64 * s).floor() as i64)
        .collect();
    Some(Value::shape(shape))
}

/// Conv, ConvTranspose and pooling: the spatial size from kernel, strides, pads, dilations.
pub(super) fn window(node: &NodeProto, inputs: &[Option<&Value>]) -> Option<Value> {
    let op = node.op_type.as_str();
    let x = inputs.first().copied().flatten()?;
    let spatial = x.shape.len().checked_sub(2)?;
    let weight = inputs.get(1).copied().flatten();
    let kernel = match attr_ints(node, "kernel_shape") {
        Some(k) => k,
        None => weight?.shape.get(2..)?.to_vec(),
    };
    let ones = vec![1; spatial];
    let strides = attr_ints(node, "strides").unwrap_or_else(|| ones.clone());
    let dil = attr_ints(node, "dilations").unwrap_or_else(|| ones.clone());
    let pads = attr_ints(node, "pads").unwrap_or_else(|| vec![0; 2 * spatial]);
    let auto = attr_s(node, "auto_pad");
    let group = attr_i(node, "group", 1).max(1);
    let channels = match op {
        "Conv" => weight?.shape[0],
        "ConvTranspose" => weight?.shape.get(1)? * group,
        _ => x.shape[1],
    };
    let mut shape = vec![x.shape[0], channels];
    for i in 0..spatial {
        let n = x.shape[2 + i];
        let (k, s, d) = (kernel[i], strides[i].max(1), dil[i]);
        let pad = pads.get(i).unwrap_or(&0) + pads.get(i + spatial).unwrap_or(&0);
        let out = if op == "ConvTranspose" {
            let extra = attr_ints(node, "output_padding").map_or(0, |p| p[i]);
            if auto.starts_with("SAME") {
                n * s
            } else {
                (n - 1) * s - pad + d * (k - 1) + 1 + extra
            }
        } else if auto.starts_with("SAME") {
            (n + s - 1) / s
        } else if auto == "VALID" {
            (n - d * (k - 1) - 1) / s + 1
        } else {
            (n + pad - d * (k - 1) - 1) / s + 1
        };
        shape.push(out);
    }
    Some(Value::shape(shape))
}

fn matmul(a: &Value, b: &Value) -> Option<Value> {
    let (mut sa, mut sb) = (a.shape.clone(), b.shape.clone());
    if sa.len() == 1 {
        sa.insert(0, 1);
    }
    if sb.len() == 1 {
        sb.push(1);
    }
    let m = sa[sa.len() - 2];
    let n = sb[sb.len() - 1];
    let batch_a = &sa[..sa.len() - 2];
    let batch_b = &sb[..sb.len() - 2];
    let rank = batch_a.len().max(batch_b.len());
    let mut shape: Vec<i64> = (0..rank)
        .map(|i| {
            let da = batch_a
                .len()
                .checked_sub(rank - i)
                .map_or(1, |j| batch_a[j]);
            let db = batch_b
                .len()
                .checked_sub(rank - i)
                .map_or(1, |j| batch_b[j]);
            da.max(db)
        })
        .collect();
    shape.extend([m, n]);
    Some(Value::shape(shape))
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
