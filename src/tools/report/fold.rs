//! Constant folding and shape rules of single ONNX operators, for [`super::shapes`]:
//! broadcasting arithmetic, concat, reshape, squeeze, transpose, slice, gather, reductions,
//! resize and matmul on [`Value`]s. Unknown inputs give unknown outputs, never a guess.

use onnx_protobuf::NodeProto;

use super::shapes::{
    MAX_FOLD_ELEMENTS, Value, attr_i, attr_ints, attr_s, axis, product, tensor_value,
};

pub(super) fn constant(node: &NodeProto) -> Option<Value> {
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
pub(super) fn strides(shape: &[i64]) -> Vec<usize> {
    let mut s = vec![1usize; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1].max(0) as usize;
    }
    s
}

/// Builds a tensor of `shape` whose element at each index is read from `src` at `map(index)`.
pub(super) fn gather_nd(
    src: &Value,
    shape: Vec<i64>,
    map: impl Fn(&[usize]) -> Vec<usize>,
) -> Value {
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

pub(super) fn broadcast(op: &str, inputs: &[Option<&Value>]) -> Option<Value> {
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

pub(super) fn concat(node: &NodeProto, inputs: &[Option<&Value>]) -> Option<Value> {
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

pub(super) fn squeeze(v: &Value, axes: Option<Vec<i64>>, unsqueeze: bool) -> Option<Value> {
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

pub(super) fn gather(
    node: &NodeProto,
    x: Option<&Value>,
    indices: Option<&Value>,
) -> Option<Value> {
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

pub(super) fn reduce(v: &Value, axes: Option<Vec<i64>>, keep: bool) -> Value {
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

pub(super) fn resize(op: &str, x: Option<&Value>, inputs: &[Option<&Value>]) -> Option<Value> {
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

pub(super) fn matmul(a: &Value, b: &Value) -> Option<Value> {
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
