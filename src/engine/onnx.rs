//! ONNX Runtime backend (`ort` with `load-dynamic`), the embedded default.
//!
//! Owns finding `libonnxruntime.so`, creating one session per engine, checking the model's
//! real inputs and outputs against its manifest, and the CPU pre/post-processing around
//! `Session::run`. It must not know about pipelines or threads: the caller owns the engine
//! on its own thread.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::{TensorRef, ValueType};

use super::{Engine, EngineError, EngineInfo, RunError, StageTimes};
use crate::config::EngineConfig;
use crate::frame::{self, ImageTensor, Layout, RgbImage};
use crate::model::Manifest;
use crate::style::StyleSpec;

/// The ONNX Runtime version the Makefile installs (`make deps`), from the PyPI wheel.
pub const ORT_VERSION: &str = "1.31.1";

/// Where `make deps` and `make install` put the library, relative to a root.
const LIB_NAME: &str = "libonnxruntime.so.1.31.1";

static ENVIRONMENT: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();

/// Finds libonnxruntime: the config, then `ORT_DYLIB_PATH`, then the Makefile's install
/// folders relative to the working directory and to the executable, then `make install`'s.
pub fn locate_library(explicit: Option<&Path>) -> Result<PathBuf, EngineError> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = explicit {
        candidates.push(p.to_path_buf());
    } else {
        if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
            candidates.push(p.into());
        }
        candidates.push(Path::new(".deps/onnxruntime").join(LIB_NAME));
        if let Ok(exe) = std::env::current_exe() {
            // target/{release,debug}/stylerd and target/{release,debug}/deps/test-binary
            for up in exe.ancestors().skip(1).take(4) {
                candidates.push(up.join(".deps/onnxruntime").join(LIB_NAME));
            }
            if let Some(dir) = exe.parent() {
                candidates.push(dir.join("../lib/stylerd").join(LIB_NAME));
            }
        }
        candidates.push(Path::new("/usr/local/lib/stylerd").join(LIB_NAME));
        candidates.push(Path::new("/usr/lib/stylerd").join(LIB_NAME));
    }
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| EngineError::RuntimeMissing {
            searched: candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// Loads the library once per process and returns the shared environment.
pub(crate) fn environment(
    explicit: Option<&Path>,
) -> Result<&'static ort::environment::Environment, EngineError> {
    let path = locate_library(explicit)?;
    let env = ENVIRONMENT.get_or_init(|| {
        ort::init_from(&path)
            .map_err(|e| e.to_string())?
            .with_name("stylerd")
            .with_telemetry(false)
            .build()
            .map_err(|e| e.to_string())
    });
    env.as_ref().map_err(|message| EngineError::RuntimeLoad {
        path,
        message: message.clone(),
    })
}

pub struct OnnxEngine {
    session: Session,
    manifest: Manifest,
    info: EngineInfo,
    styles: Vec<String>,
    /// The style vector fed to `style-input` (empty when the model has none).
    style_weights: Vec<f32>,
    /// Shape of the style input as the model declares it (`[26]`, `[1, 1, 1, 100]`).
    style_shape: Vec<usize>,
}

/// Environment variable naming a file to write the optimized ONNX graph to (README).
pub const DUMP_OPTIMIZED_ENV: &str = "STYLERD_ORT_DUMP_OPTIMIZED";

impl OnnxEngine {
    pub fn open(manifest: &Manifest, config: &EngineConfig) -> Result<Self, EngineError> {
        let path = manifest.verify_file()?;
        let env = environment(config.onnxruntime.as_deref())?;
        let load = |e: ort::Error| EngineError::Load {
            path: path.clone(),
            message: e.to_string(),
        };
        let mut builder = Session::builder(env)
            .map_err(load)?
            .with_optimization_level(GraphOptimizationLevel::All)
            .map_err(|e| load(e.into()))?
            .with_intra_threads(config.threads)
            .map_err(|e| load(e.into()))?;
        // Between a live stream's frames the worker threads should sleep, not spin
        // (`engine.spin-us`).
        builder = if config.spin_us == 0 {
            builder.with_intra_op_spinning(false)
        } else {
            builder.with_config_entry(
                "session.intra_op.spin_duration_us",
                config.spin_us.to_string(),
            )
        }
        .map_err(|e| load(e.into()))?;
        // Diagnostics: the graph ONNX Runtime actually runs on this machine after its
        // optimizations and fusions (e.g. whether a QDQ model became QLinearConv here).
        if let Some(dump) = std::env::var_os(DUMP_OPTIMIZED_ENV) {
            builder = builder
                .with_optimized_model_path(&dump)
                .map_err(|e| load(e.into()))?;
        }
        let session = builder.commit_from_file(&path).map_err(load)?;
        check_io(&session, manifest)?;
        let style_shape = style_shape(&session, manifest);
        let styles = manifest.style_names();
        let info = EngineInfo {
            backend: "onnx".into(),
            model: manifest.name.clone(),
            precision: graph_precision(&path),
            input: [config.size.width, config.size.height],
        };
        Ok(Self {
            session,
            manifest: manifest.clone(),
            info,
            styles,
            style_weights: Vec::new(),
            style_shape,
        })
    }

    /// Sets the style vector directly (arbitrary-style models, whose vector comes from a
    /// style image through a predictor network).
    pub fn set_style_vector(&mut self, vector: Vec<f32>) -> Result<(), EngineError> {
        let want: usize = self.style_shape.iter().product();
        if self.manifest.style_input.is_none() || vector.len() != want {
            return Err(EngineError::StyleVector {
                model: self.manifest.name.clone(),
                len: vector.len(),
            });
        }
        self.style_weights = vector;
        Ok(())
    }

    /// Runs a network whose output is not a picture (a style predictor) and returns the
    /// output values flat.
    pub fn run_flat(&mut self, input: &ImageTensor) -> Result<Vec<f32>, EngineError> {
        let run = |e: ort::Error| EngineError::Run(RunError::Runtime(e.to_string()));
        let image =
            TensorRef::from_array_view((input.shape(), input.data.as_slice())).map_err(run)?;
        let outputs = self
            .session
            .run(ort::inputs![self.manifest.input.as_str() => image])
            .map_err(run)?;
        let value = outputs
            .get(&self.manifest.output)
            .ok_or_else(|| RunError::MissingOutput {
                name: self.manifest.output.clone(),
            })?;
        Ok(value.try_extract_tensor::<f32>().map_err(run)?.1.to_vec())
    }

    /// Runs the network on a prepared tensor (exposed for benchmarks and tests).
    pub fn run_tensor(&mut self, input: &ImageTensor) -> Result<ImageTensor, EngineError> {
        let run = |e: ort::Error| EngineError::Run(RunError::Runtime(e.to_string()));
        let image =
            TensorRef::from_array_view((input.shape(), input.data.as_slice())).map_err(run)?;
        let outputs = match &self.manifest.style_input {
            Some(name) => {
                if self.style_weights.is_empty() {
                    return Err(RunError::NoStyleSet {
                        model: self.manifest.name.clone(),
                    }
                    .into());
                }
                let style = TensorRef::from_array_view((
                    self.style_shape.clone(),
                    self.style_weights.as_slice(),
                ))
                .map_err(run)?;
                self.session.run(
                    ort::inputs![self.manifest.input.as_str() => image, name.as_str() => style],
                )
            }
            None => self
                .session
                .run(ort::inputs![self.manifest.input.as_str() => image]),
        }
        .map_err(run)?;
        let value = outputs
            .get(&self.manifest.output)
            .ok_or_else(|| RunError::MissingOutput {
                name: self.manifest.output.clone(),
            })?;
        let (shape, data) = value.try_extract_tensor::<f32>().map_err(run)?;
        let want = ImageTensor {
            data: Vec::new(),
            ..input.clone()
        }
        .shape();
        if shape.iter().map(|&d| d as usize).ne(want) {
            return Err(RunError::OutputShape {
                name: self.manifest.output.clone(),
                got: shape.to_vec(),
                want: want.to_vec(),
            }
            .into());
        }
        Ok(ImageTensor {
            data: data.to_vec(),
            ..input.clone()
        })
    }
}

impl Engine for OnnxEngine {
    fn info(&self) -> &EngineInfo {
        &self.info
    }

    fn styles(&self) -> &[String] {
        &self.styles
    }

    fn any_size(&self) -> bool {
        matches!(self.manifest.size, crate::model::SizeSupport::Any(_))
    }

    fn set_style(&mut self, spec: &StyleSpec) -> Result<(), EngineError> {
        if let Some(weights) = self.manifest.style_weights(spec)? {
            self.style_weights = weights;
        }
        Ok(())
    }

    fn stylize(
        &mut self,
        image: &RgbImage,
        times: &mut StageTimes,
    ) -> Result<RgbImage, EngineError> {
        let (w, h) = (image.width, image.height);
        self.manifest.accepts(w, h)?;
        let m = &self.manifest;
        let t0 = Instant::now();
        let input = frame::to_tensor(image, m.layout, m.input_range, m.pad_multiple)?;
        let t1 = Instant::now();
        let output = self.run_tensor(&input)?;
        let t2 = Instant::now();
        let out = frame::from_tensor(&output, self.manifest.output_range, w, h)?;
        times.pre = t1 - t0;
        times.infer = t2 - t1;
        times.post = t2.elapsed();
        Ok(out)
    }
}

/// The style input's declared shape, unknown dimensions read as 1 (or as the vector
/// length when it is the only dimension).
/// What the model file computes in, read from its graph: `int8` when activations are
/// quantized (QDQ pairs, as `stylerd quantize` writes), `fp32 (int8 weights)` when only
/// weights are stored as integers and dequantized (the converted Magenta TFLite models),
/// `fp16` when its float weights are half precision, else `fp32`. `unknown` if the file
/// does not parse (ONNX Runtime has already accepted it, so this is diagnostics only).
pub fn graph_precision(path: &Path) -> String {
    use onnx_protobuf::tensor_proto::DataType;
    use onnx_protobuf::{Message, ModelProto};
    let Some(model) = std::fs::read(path)
        .ok()
        .and_then(|b| ModelProto::parse_from_bytes(&b).ok())
    else {
        return "unknown".into();
    };
    let g = &model.graph;
    let has = |op: &str| g.node.iter().any(|n| n.op_type == op);
    if has("QuantizeLinear") || has("QLinearConv") || has("ConvInteger") {
        return "int8".into();
    }
    if has("DequantizeLinear") {
        return "fp32 (int8 weights)".into();
    }
    let count = |t: DataType| {
        g.initializer
            .iter()
            .filter(|i| i.data_type == t as i32)
            .count()
    };
    if count(DataType::FLOAT16) > count(DataType::FLOAT) {
        "fp16".into()
    } else {
        "fp32".into()
    }
}

fn style_shape(session: &Session, m: &Manifest) -> Vec<usize> {
    let len = m.style_len().unwrap_or(0);
    let declared = m.style_input.as_ref().and_then(|name| {
        session
            .inputs()
            .iter()
            .find(|o| o.name() == name)
            .and_then(|o| match o.dtype() {
                ValueType::Tensor { shape, .. } => {
                    Some(shape.iter().copied().collect::<Vec<i64>>())
                }
                _ => None,
            })
    });
    match declared {
        Some(dims) if dims.len() == 1 => vec![len],
        Some(dims) => dims
            .iter()
            .map(|&d| if d > 0 { d as usize } else { 1 })
            .collect(),
        None => vec![len],
    }
}

/// Compares the session's inputs and outputs with the manifest, naming the first mismatch.
fn check_io(session: &Session, m: &Manifest) -> Result<(), EngineError> {
    let mismatch = |message: String| EngineError::Mismatch {
        model: m.name.clone(),
        message,
    };
    let names = |outlets: &[ort::value::Outlet]| {
        outlets
            .iter()
            .map(|o| o.name().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let find_input = |name: &str| {
        session
            .inputs()
            .iter()
            .find(|o| o.name() == name)
            .ok_or_else(|| {
                mismatch(format!(
                    "it has no input {name:?} (its inputs: {})",
                    names(session.inputs())
                ))
            })
    };
    let image = find_input(&m.input)?;
    if !session.outputs().iter().any(|o| o.name() == m.output) {
        return Err(mismatch(format!(
            "it has no output {:?} (its outputs: {})",
            m.output,
            names(session.outputs())
        )));
    }
    let expected_inputs = 1 + usize::from(m.style_input.is_some());
    if session.inputs().len() != expected_inputs {
        return Err(mismatch(format!(
            "it has {} inputs ({}) but the manifest describes {expected_inputs}",
            session.inputs().len(),
            names(session.inputs())
        )));
    }
    match image.dtype() {
        ValueType::Tensor { shape, .. } if shape.len() == 4 => {
            let channels = if m.layout == Layout::Nchw {
                shape[1]
            } else {
                shape[3]
            };
            if channels != 3 && channels != -1 {
                return Err(mismatch(format!(
                    "input {:?} has shape {:?}, which is not a 3-channel {:?} image",
                    m.input,
                    &shape[..],
                    m.layout
                )));
            }
        }
        other => {
            return Err(mismatch(format!(
                "input {:?} is {other:?}, not a 4-d image tensor",
                m.input
            )));
        }
    }
    if let Some(style) = &m.style_input {
        let want = m.style_len();
        match find_input(style)?.dtype() {
            ValueType::Tensor { shape, .. } => {
                let len: i64 = shape.iter().product();
                if want.is_some_and(|w| len > 0 && len as usize != w) {
                    return Err(mismatch(format!(
                        "style input {style:?} holds {len} values but the manifest lists {}",
                        want.unwrap_or_default()
                    )));
                }
            }
            other => return Err(mismatch(format!("style input {style:?} is {other:?}"))),
        }
    }
    Ok(())
}
