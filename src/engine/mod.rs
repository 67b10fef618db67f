//! The `Engine` trait: one stylized picture in, one out, whichever backend runs it.
//!
//! The daemon, `stylize`, `bench` and the tests only see [`Engine`]; [`open`] picks the
//! backend from the config. Backends own their pre/post-processing (the CPU backend uses
//! `frame::to_tensor`/`from_tensor`; the TensorRT backend does it in CUDA kernels), so the
//! trait works on RGB pictures, not tensors. This module does not touch GStreamer.
//!
//! # Backends
//! - [`onnx`]: ONNX Runtime through `ort` (the embedded default, CPU here).
//! - [`arbitrary`]: arbitrary style from a picture (predictor + transform networks).
//! - `tensorrt` (feature `tensorrt`): TensorRT plans on the Jetson's GPU; [`plan`] says
//!   which machine a plan was built for (compiled without the feature).

pub mod arbitrary;
pub mod onnx;
pub mod plan;
#[cfg(feature = "tensorrt")]
pub mod tensorrt;

use std::path::PathBuf;
use std::time::Duration;

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::config::{Backend, EngineConfig};
use crate::frame::{FrameError, RgbImage};
use crate::model::{Manifest, ModelError, SizeMismatch, StyleSelectError};
use crate::style::{StyleError, StyleSpec};

/// What the status document says about the engine.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EngineInfo {
    pub backend: Cow<'static, str>,
    pub model: String,
    pub precision: String,
    /// `[width, height]` the network runs at.
    pub input: [u32; 2],
}

/// Time spent in each stage of one `stylize` call.
#[derive(Clone, Copy, Debug, Default)]
pub struct StageTimes {
    pub pre: Duration,
    pub infer: Duration,
    pub post: Duration,
}

#[derive(Debug, Error)]
pub enum EngineError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(
        "ONNX Runtime library not found (looked in: {searched}); run `make deps`, or set \
         engine.onnxruntime in the config or ORT_DYLIB_PATH"
    )]
    RuntimeMissing { searched: String },
    #[error("cannot load ONNX Runtime from {path}: {message}")]
    RuntimeLoad { path: PathBuf, message: String },
    #[error("model file {path} is not a model ONNX Runtime can load: {message}")]
    Load { path: PathBuf, message: String },
    #[error("model {model} does not match its manifest: {message}")]
    Mismatch { model: String, message: String },
    #[error("{0}; set engine.size to match")]
    Size(#[from] SizeMismatch),
    #[error("frame is {}x{} but the engine runs at {}x{}", got[0], got[1], want[0], want[1])]
    FrameSize { got: [u32; 2], want: [u32; 2] },
    #[error(transparent)]
    Style(#[from] StyleError),
    #[error(transparent)]
    Select(StyleSelectError),
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("inference failed: {0}")]
    Run(#[from] RunError),
    #[error(
        "this stylerd was built without the tensorrt feature; use engine.backend = \"onnx\" \
         or rebuild with --features tensorrt on the Jetson"
    )]
    NotBuilt,
    #[error("cannot read style image {}: {message}", path.display())]
    StyleImage { path: PathBuf, message: String },
    #[error(
        "style image {} is {width}x{height}; it needs at least 16 pixels on each side",
        path.display()
    )]
    StyleImageTooSmall {
        path: PathBuf,
        width: u32,
        height: u32,
    },
    #[error("interpolation weight {0} is not between 0 and 1")]
    Weight(f32),
    #[error("model {model} takes no style vector of {len} values")]
    StyleVector { model: String, len: usize },
    /// A TensorRT failure other than running a frame (plan, CUDA, bindings).
    #[error("{0}")]
    Backend(String),
}

/// Why running the network on one frame failed.
#[derive(Debug, Error)]
pub enum RunError {
    /// The runtime's own message (ONNX Runtime, TensorRT).
    #[error("{0}")]
    Runtime(String),
    #[error("model {model} has no style set")]
    NoStyleSet { model: String },
    #[error("no output named {name}")]
    MissingOutput { name: String },
    #[error("output {name} has shape {got:?}, expected {want:?}")]
    OutputShape {
        name: String,
        got: Vec<i64>,
        want: Vec<usize>,
    },
}

impl From<StyleSelectError> for EngineError {
    fn from(e: StyleSelectError) -> Self {
        match e {
            StyleSelectError::Style(e) => EngineError::Style(e),
            other => EngineError::Select(other),
        }
    }
}

pub trait Engine: Send {
    fn info(&self) -> &EngineInfo;
    /// The model's style names, in index order (empty when it has none).
    fn styles(&self) -> &[String];
    /// Selects a style or blend; takes effect on the next `stylize`.
    fn set_style(&mut self, spec: &StyleSpec) -> Result<(), EngineError>;
    /// Whether the network takes any frame size (else only `info().input`).
    fn any_size(&self) -> bool;
    /// Stylizes one picture (at `info().input`, or any size when `any_size`).
    fn stylize(
        &mut self,
        image: &RgbImage,
        times: &mut StageTimes,
    ) -> Result<RgbImage, EngineError>;
}

/// Builds the engine the config asks for, checking the model before the first frame.
pub fn open(config: &EngineConfig, style: &StyleSpec) -> Result<Box<dyn Engine>, EngineError> {
    let manifest = Manifest::find(&config.models_dir, &config.model)?;
    let size = config.size;
    manifest.accepts(size.width, size.height)?;
    match config.backend {
        Backend::Onnx => {
            let mut engine = onnx::OnnxEngine::open(&manifest, config)?;
            engine.set_style(style)?;
            Ok(Box::new(engine))
        }
        #[cfg(feature = "tensorrt")]
        Backend::Tensorrt => {
            let mut engine = tensorrt::TensorRtEngine::open(&manifest, config)?;
            engine.set_style(style)?;
            Ok(Box::new(engine))
        }
        #[cfg(not(feature = "tensorrt"))]
        Backend::Tensorrt => Err(EngineError::NotBuilt),
    }
}
