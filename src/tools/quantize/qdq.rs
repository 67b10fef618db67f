//! The ONNX graph surgery of `stylerd quantize`, with `onnx-protobuf`: finding the Conv
//! nodes, exposing their inputs as extra graph outputs for calibration, and writing the QDQ
//! model (QuantizeLinear/DequantizeLinear pairs on conv activations, per-channel symmetric
//! int8 weights behind a DequantizeLinear).
//!
//! The QDQ form is what TensorRT 8.5 builds INT8 engines from without a calibration cache
//! (explicit quantization) and what ONNX Runtime runs on CPU. Scales are symmetric with zero
//! point 0 because TensorRT accepts only that. This module only rewrites protobufs; it does
//! not run models.

use std::collections::{HashMap, HashSet};

use onnx_protobuf::{
    AttributeProto, ModelProto, NodeProto, TensorProto, TypeProto, ValueInfoProto,
    attribute_proto::AttributeType, tensor_proto::DataType, type_proto,
};

use super::QuantizeError;

/// One convolution to quantize.
#[derive(Clone, Debug)]
pub struct ConvSite {
    pub node: String,
    pub input: String,
    pub weight: String,
    pub output: String,
}

/// Conv nodes whose weight is a 4-d float initializer, in graph order.
pub fn conv_sites(model: &ModelProto) -> Vec<ConvSite> {
    let graph = &model.graph;
    let float_inits: HashSet<&str> = graph
        .initializer
        .iter()
        .filter(|t| t.data_type == DataType::FLOAT as i32 && t.dims.len() == 4)
        .map(|t| t.name.as_str())
        .collect();
    graph
        .node
        .iter()
        .filter(|n| n.op_type == "Conv" && n.input.len() >= 2 && n.output.len() == 1)
        .filter(|n| float_inits.contains(n.input[1].as_str()))
        .map(|n| ConvSite {
            node: n.name.clone(),
            input: n.input[0].clone(),
            weight: n.input[1].clone(),
            output: n.output[0].clone(),
        })
        .collect()
}

/// A copy of `model` that also outputs `names` (float tensors of any shape).
pub fn with_outputs(model: &ModelProto, names: &[String]) -> ModelProto {
    let mut m = model.clone();
    let existing: HashSet<String> = m.graph.output.iter().map(|o| o.name.clone()).collect();
    for name in names.iter().filter(|n| !existing.contains(*n)) {
        m.graph.mut_or_insert_default().output.push(ValueInfoProto {
            name: name.clone(),
            type_: Some(TypeProto {
                value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                    elem_type: DataType::FLOAT as i32,
                    ..Default::default()
                })),
                ..Default::default()
            })
            .into(),
            ..Default::default()
        });
    }
    m
}

fn float_values(t: &TensorProto) -> Vec<f32> {
    if t.raw_data.is_empty() {
        t.float_data.clone()
    } else {
        t.raw_data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    }
}

fn scalar_f32(name: &str, v: f32) -> TensorProto {
    TensorProto {
        name: name.into(),
        data_type: DataType::FLOAT as i32,
        raw_data: v.to_le_bytes().to_vec(),
        ..Default::default()
    }
}

/// The integer type of quantized activations (weights are always int8).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Activations {
    /// int8, zero point 0: what TensorRT requires, and what ONNX Runtime fuses into integer
    /// kernels on ARM CPUs (the Jetson's).
    #[default]
    Int8,
    /// uint8, zero point 128 (the same grid shifted): what ONNX Runtime fuses on x86 CPUs,
    /// which never fuse int8 activations. TensorRT refuses non-zero zero points.
    Uint8,
}

impl std::str::FromStr for Activations {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "int8" => Ok(Self::Int8),
            "uint8" => Ok(Self::Uint8),
            other => Err(format!("activations {other:?}: int8 or uint8")),
        }
    }
}

/// The zero point of an activation QuantizeLinear/DequantizeLinear pair.
fn activation_zero_point(name: &str, act: Activations) -> TensorProto {
    match act {
        Activations::Int8 => int8(name, vec![], &[0]),
        Activations::Uint8 => TensorProto {
            name: name.into(),
            data_type: DataType::UINT8 as i32,
            raw_data: vec![128],
            ..Default::default()
        },
    }
}

fn int8(name: &str, dims: Vec<i64>, v: &[i8]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims,
        data_type: DataType::INT8 as i32,
        raw_data: v.iter().map(|&b| b as u8).collect(),
        ..Default::default()
    }
}

fn node(op: &str, name: &str, inputs: &[&str], output: &str, axis: Option<i64>) -> NodeProto {
    NodeProto {
        op_type: op.into(),
        name: name.into(),
        input: inputs.iter().map(|s| (*s).to_string()).collect(),
        output: vec![output.into()],
        attribute: axis
            .map(|a| AttributeProto {
                name: "axis".into(),
                type_: AttributeType::INT.into(),
                i: a,
                ..Default::default()
            })
            .into_iter()
            .collect(),
        ..Default::default()
    }
}

/// Per-output-channel symmetric int8: `q = round(w / s)`, `s = max|w| / 127`.
pub fn quantize_weights(w: &[f32], out_channels: usize) -> (Vec<i8>, Vec<f32>) {
    let per = w.len() / out_channels.max(1);
    let mut q = Vec::with_capacity(w.len());
    let mut scales = Vec::with_capacity(out_channels);
    for ch in w.chunks(per.max(1)) {
        let amax = ch.iter().fold(0f32, |m, v| m.max(v.abs()));
        let s = if amax > 0.0 { amax / 127.0 } else { 1.0 };
        scales.push(s);
        q.extend(
            ch.iter()
                .map(|v| (v / s).round().clamp(-127.0, 127.0) as i8),
        );
    }
    (q, scales)
}

/// What the rewrite did, for the manifest and the log.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct QdqSummary {
    pub convs: usize,
    pub activations: usize,
    pub weights_int8_bytes: usize,
}

/// The QDQ model: `ranges` maps each activation to quantize (conv inputs, and conv outputs
/// when `outputs` is set) to its clipping range; `act` is the activations' integer type.
pub fn to_qdq(
    model: &ModelProto,
    ranges: &HashMap<String, f32>,
    outputs: bool,
    act: Activations,
) -> Result<(ModelProto, QdqSummary), QuantizeError> {
    let sites = conv_sites(model);
    if sites.is_empty() {
        return Err(QuantizeError::Model(
            "it has no Conv node with a constant weight to quantize".into(),
        ));
    }
    let mut m = model.clone();
    let by_node: HashMap<&str, &ConvSite> = sites.iter().map(|s| (s.node.as_str(), s)).collect();
    let mut summary = QdqSummary {
        convs: sites.len(),
        ..Default::default()
    };
    let mut new_inits: Vec<TensorProto> = Vec::new();
    let mut quantized_weights: HashSet<String> = HashSet::new();
    // Activation name -> its dequantized name, created at its first use.
    let mut dq_of: HashMap<String, String> = HashMap::new();
    let inits: HashMap<String, TensorProto> = m
        .graph
        .initializer
        .iter()
        .map(|t| (t.name.clone(), t.clone()))
        .collect();
    let range = |name: &str| {
        ranges
            .get(name)
            .copied()
            .ok_or_else(|| QuantizeError::Model(format!("no calibrated range for tensor {name:?}")))
    };
    let qdq = |name: &str, nodes: &mut Vec<NodeProto>, inits: &mut Vec<TensorProto>| {
        let amax = range(name)?;
        let (s, z) = (format!("{name}_scale"), format!("{name}_zero_point"));
        inits.push(scalar_f32(&s, amax / 127.0));
        inits.push(activation_zero_point(&z, act));
        let (q, dq) = (format!("{name}_quantized"), format!("{name}_dequantized"));
        nodes.push(node(
            "QuantizeLinear",
            &format!("{name}_Q"),
            &[name, &s, &z],
            &q,
            None,
        ));
        nodes.push(node(
            "DequantizeLinear",
            &format!("{name}_DQ"),
            &[&q, &s, &z],
            &dq,
            None,
        ));
        Ok::<String, QuantizeError>(dq)
    };

    let mut nodes = Vec::with_capacity(m.graph.node.len() + sites.len() * 5);
    for mut n in std::mem::take(&mut m.graph.mut_or_insert_default().node) {
        let Some(site) = by_node.get(n.name.as_str()).filter(|_| n.op_type == "Conv") else {
            nodes.push(n);
            continue;
        };
        let dq = match dq_of.get(&site.input) {
            Some(dq) => dq.clone(),
            None => {
                let dq = qdq(&site.input, &mut nodes, &mut new_inits)?;
                dq_of.insert(site.input.clone(), dq.clone());
                summary.activations += 1;
                dq
            }
        };
        n.input[0] = dq;

        let w = inits.get(&site.weight).ok_or_else(|| {
            QuantizeError::Model(format!("weight {:?} is not an initializer", site.weight))
        })?;
        let out_channels = w.dims[0].max(1) as usize;
        let wq_name = format!("{}_quantized", site.weight);
        let ws_name = format!("{}_scale", site.weight);
        let wz_name = format!("{}_zero_point", site.weight);
        let wdq_name = format!("{}_dequantized", site.weight);
        if quantized_weights.insert(site.weight.clone()) {
            let (q, scales) = quantize_weights(&float_values(w), out_channels);
            summary.weights_int8_bytes += q.len();
            new_inits.push(int8(&wq_name, w.dims.clone(), &q));
            new_inits.push(TensorProto {
                name: ws_name.clone(),
                dims: vec![out_channels as i64],
                data_type: DataType::FLOAT as i32,
                raw_data: scales.iter().flat_map(|s| s.to_le_bytes()).collect(),
                ..Default::default()
            });
            new_inits.push(int8(
                &wz_name,
                vec![out_channels as i64],
                &vec![0; out_channels],
            ));
            nodes.push(node(
                "DequantizeLinear",
                &format!("{}_DQ", site.weight),
                &[&wq_name, &ws_name, &wz_name],
                &wdq_name,
                Some(0),
            ));
        }
        n.input[1] = wdq_name;

        if outputs {
            // Conv -> Q -> DQ -> (old consumers): lets ONNX Runtime fuse QLinearConv.
            let raw = format!("{}_float", site.output);
            n.output[0] = raw.clone();
            nodes.push(n);
            let amax = range(&site.output)?;
            let (s, z) = (
                format!("{}_scale", site.output),
                format!("{}_zero_point", site.output),
            );
            new_inits.push(scalar_f32(&s, amax / 127.0));
            new_inits.push(activation_zero_point(&z, act));
            let q = format!("{}_quantized", site.output);
            nodes.push(node(
                "QuantizeLinear",
                &format!("{}_Q", site.output),
                &[&raw, &s, &z],
                &q,
                None,
            ));
            nodes.push(node(
                "DequantizeLinear",
                &format!("{}_DQ", site.output),
                &[&q, &s, &z],
                &site.output,
                None,
            ));
            summary.activations += 1;
        } else {
            nodes.push(n);
        }
    }
    let graph = m.graph.mut_or_insert_default();
    graph.node = nodes;
    // Float weights now only feed the DequantizeLinear nodes through their int8 copies.
    let still_used: HashSet<String> = graph
        .node
        .iter()
        .flat_map(|n| n.input.iter().cloned())
        .collect();
    graph
        .initializer
        .retain(|t| !quantized_weights.contains(&t.name) || still_used.contains(&t.name));
    graph.initializer.extend(new_inits);
    m.producer_name = "stylerd-quantize".into();
    m.producer_version = env!("CARGO_PKG_VERSION").into();
    Ok((m, summary))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_quantize_per_channel_symmetrically() {
        let w = [0.5, -1.0, 0.25, 0.0, 0.02, -0.01, 0.0, 0.0];
        let (q, s) = quantize_weights(&w, 2);
        assert_eq!(q[..4], [64, -127, 32, 0]);
        assert_eq!(q[4], 127);
        assert!((s[0] - 1.0 / 127.0).abs() < 1e-9);
        assert!((s[1] - 0.02 / 127.0).abs() < 1e-9);
        let (_, s0) = quantize_weights(&[0.0; 4], 1);
        assert_eq!(s0, [1.0]);
    }
}
