//! Parameters addressed by their module path (`encoder.0.conv.conv.weight`), the Adam
//! optimizer keyed by those paths, and safetensors checkpoints holding the network, the Adam
//! moments and the step, so a resumed run takes exactly the step the original would have.
//! Owns nothing about what the network computes.

use std::collections::HashMap;
use std::path::Path;

use burn::module::{ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;
use burn::tensor::Gradients;

/// Why a checkpoint could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("cannot access checkpoint {path}: {message}")]
    Io { path: String, message: String },
    #[error("checkpoint {path} lacks tensor `{name}` (was it written for another architecture?)")]
    Missing { path: String, name: String },
    #[error(
        "checkpoint {path}: tensor `{name}` has shape {found:?}, the network expects {expected:?}"
    )]
    Shape {
        path: String,
        name: String,
        found: Vec<usize>,
        expected: Vec<usize>,
    },
}

/// A host copy of one tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl HostTensor {
    pub fn of<const D: usize>(t: &Tensor<D>) -> Self {
        let t = t.clone().inner();
        HostTensor {
            shape: t.dims().to_vec(),
            data: t
                .into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .unwrap_or_default(),
        }
    }
}

struct Collector {
    path: Vec<String>,
    out: Vec<(String, HostTensor)>,
}

impl ModuleVisitor for Collector {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.out
            .push((self.path.join("."), HostTensor::of(&param.val())));
    }
}

/// Every float parameter of `module` by path, in visiting order.
pub fn collect_params<M: Module>(module: &M) -> Vec<(String, HostTensor)> {
    let mut c = Collector {
        path: Vec::new(),
        out: Vec::new(),
    };
    module.visit(&mut c);
    c.out
}

struct Loader<'a> {
    path: Vec<String>,
    source: &'a HashMap<String, HostTensor>,
    file: String,
    error: Option<CheckpointError>,
}

impl ModuleMapper for Loader<'_> {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let name = self.path.join(".");
        let Some(host) = self.source.get(&name) else {
            self.error.get_or_insert(CheckpointError::Missing {
                path: self.file.clone(),
                name,
            });
            return param;
        };
        let expected = param.val().dims().to_vec();
        if host.shape != expected {
            self.error.get_or_insert(CheckpointError::Shape {
                path: self.file.clone(),
                name,
                found: host.shape.clone(),
                expected,
            });
            return param;
        }
        let data = TensorData::new(host.data.clone(), host.shape.clone());
        param.map(|t| {
            let grad = t.is_require_grad();
            let n = Tensor::<D>::from_data(data, &t.device());
            if grad { n.require_grad() } else { n }
        })
    }
}

/// Replaces every float parameter of `module` with the tensor of the same path.
pub fn load_params<M: Module>(
    module: M,
    source: &HashMap<String, HostTensor>,
    file: &str,
) -> Result<M, CheckpointError> {
    let mut l = Loader {
        path: Vec::new(),
        source,
        file: file.to_string(),
        error: None,
    };
    let m = module.map(&mut l);
    match l.error {
        Some(e) => Err(e),
        None => Ok(m),
    }
}

/// Adam (Kingma & Ba) with moments kept per parameter path, flattened.
#[derive(Debug, Clone)]
pub struct Adam {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub epsilon: f64,
    pub step: u64,
    pub m: HashMap<String, Tensor<1>>,
    pub v: HashMap<String, Tensor<1>>,
}

impl Adam {
    pub fn new(lr: f64) -> Self {
        Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            step: 0,
            m: HashMap::new(),
            v: HashMap::new(),
        }
    }

    /// One update of every parameter that has a gradient in `grads`.
    pub fn step<M: Module>(&mut self, module: M, grads: &Gradients) -> M {
        self.step += 1;
        let mut s = AdamStep {
            adam: self,
            grads,
            path: Vec::new(),
        };
        module.map(&mut s)
    }
}

struct AdamStep<'a> {
    adam: &'a mut Adam,
    grads: &'a Gradients,
    path: Vec<String>,
}

impl ModuleMapper for AdamStep<'_> {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(grad) = param.val().grad(self.grads) else {
            return param;
        };
        let a = &mut *self.adam;
        let dims = grad.dims();
        let n: usize = dims.iter().product();
        let g = grad.reshape([n]);
        let name = self.path.join(".");
        let m = match a.m.remove(&name) {
            Some(m) => m * a.beta1 + g.clone() * (1.0 - a.beta1),
            None => g.clone() * (1.0 - a.beta1),
        };
        let v = match a.v.remove(&name) {
            Some(v) => v * a.beta2 + g.powf_scalar(2.0) * (1.0 - a.beta2),
            None => g.powf_scalar(2.0) * (1.0 - a.beta2),
        };
        let t = a.step as i32;
        let m_hat = m.clone() / (1.0 - a.beta1.powi(t));
        let v_hat = v.clone() / (1.0 - a.beta2.powi(t));
        let delta = (m_hat / (v_hat.sqrt() + a.epsilon) * a.lr).reshape(dims);
        a.m.insert(name.clone(), m);
        a.v.insert(name, v);
        param.map(|p| (p.inner() - delta).autodiff().require_grad())
    }
}

/// What a checkpoint records besides tensors.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointMeta {
    pub step: u64,
    /// The network's `TransformerConfig` as JSON, so `export` needs no flags.
    pub network: String,
    pub lr: f64,
}

/// Writes the network, the Adam state and `meta` to one safetensors file.
pub fn save<M: Module>(
    path: &Path,
    module: &M,
    adam: &Adam,
    meta: &CheckpointMeta,
) -> Result<(), CheckpointError> {
    let mut tensors: Vec<(String, HostTensor)> = collect_params(module)
        .into_iter()
        .map(|(k, v)| (format!("model.{k}"), v))
        .collect();
    for (prefix, map) in [("adam.m", &adam.m), ("adam.v", &adam.v)] {
        for (k, t) in map {
            tensors.push((format!("{prefix}.{k}"), HostTensor::of(t)));
        }
    }
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .into_iter()
        .map(|(k, t)| {
            (
                k,
                t.shape,
                t.data.iter().flat_map(|f| f.to_le_bytes()).collect(),
            )
        })
        .collect();
    let views = bytes.iter().map(|(k, s, d)| {
        let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), d)
            .unwrap_or_else(|_| unreachable!("shape and data length agree"));
        (k.clone(), view)
    });
    let metadata = HashMap::from([
        ("step".to_string(), meta.step.to_string()),
        ("network".to_string(), meta.network.clone()),
        ("lr".to_string(), meta.lr.to_string()),
    ]);
    let io = |e: &dyn std::fmt::Display| CheckpointError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| io(&e))?;
    }
    let tmp = path.with_extension("tmp");
    safetensors::serialize_to_file(views, Some(metadata), &tmp).map_err(|e| io(&e))?;
    std::fs::rename(&tmp, path).map_err(|e| io(&e))
}

/// A checkpoint read back: model tensors by path, Adam moments, metadata.
pub struct Checkpoint {
    pub model: HashMap<String, HostTensor>,
    pub adam_m: HashMap<String, HostTensor>,
    pub adam_v: HashMap<String, HostTensor>,
    pub meta: CheckpointMeta,
    pub path: String,
}

pub fn read(path: &Path) -> Result<Checkpoint, CheckpointError> {
    let p = path.display().to_string();
    let io = |e: &dyn std::fmt::Display| CheckpointError::Io {
        path: p.clone(),
        message: e.to_string(),
    };
    let bytes = std::fs::read(path).map_err(|e| io(&e))?;
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| io(&e))?;
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| io(&e))?;
    let meta_map = header.metadata().clone().unwrap_or_default();
    let get = |k: &str| meta_map.get(k).cloned().unwrap_or_default();
    let meta = CheckpointMeta {
        step: get("step").parse().unwrap_or(0),
        network: get("network"),
        lr: get("lr").parse().unwrap_or(1e-3),
    };
    let mut ck = Checkpoint {
        model: HashMap::new(),
        adam_m: HashMap::new(),
        adam_v: HashMap::new(),
        meta,
        path: p.clone(),
    };
    for (name, view) in st.tensors() {
        let data = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let t = HostTensor {
            shape: view.shape().to_vec(),
            data,
        };
        if let Some(k) = name.strip_prefix("model.") {
            ck.model.insert(k.to_string(), t);
        } else if let Some(k) = name.strip_prefix("adam.m.") {
            ck.adam_m.insert(k.to_string(), t);
        } else if let Some(k) = name.strip_prefix("adam.v.") {
            ck.adam_v.insert(k.to_string(), t);
        }
    }
    Ok(ck)
}

impl Checkpoint {
    /// Loads the weights into `module` and rebuilds the optimizer at the saved step.
    pub fn restore<M: Module>(
        &self,
        module: M,
        device: &Device,
    ) -> Result<(M, Adam), CheckpointError> {
        let module = load_params(module, &self.model, &self.path)?;
        let mut adam = Adam::new(self.meta.lr);
        adam.step = self.meta.step;
        let flat = |t: &HostTensor| {
            Tensor::<1>::from_data(TensorData::new(t.data.clone(), [t.data.len()]), device)
        };
        adam.m = self
            .adam_m
            .iter()
            .map(|(k, t)| (k.clone(), flat(t)))
            .collect();
        adam.v = self
            .adam_v
            .iter()
            .map(|(k, t)| (k.clone(), flat(t)))
            .collect();
        Ok((module, adam))
    }
}
