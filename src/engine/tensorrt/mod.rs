//! TensorRT backend (cargo feature `tensorrt`, for the Jetson): a `.plan` built on the
//! device by `engines/build-trt.sh`, run through a small C++ shim (`shim.cpp`, compiled by
//! `build.rs`), with device buffers and one CUDA stream from `cudarc`, frames staged through
//! pinned memory or, on the Jetson's integrated GPU, mapped zero-copy ([`staging`]), and
//! pre/post-processing as NVRTC-compiled CUDA kernels ([`kernels`]).
//!
//! This module owns checking a plan against this machine (TensorRT version and GPU, from the
//! plan's side-car `.toml` or its file name), binding the plan's tensors to the manifest's
//! names, and the per-frame copy/kernel/enqueue sequence. Like every backend it speaks RGB
//! pictures through the [`Engine`] trait and knows nothing of pipelines or threads. CUDA is
//! loaded at run time (`cudarc` dynamic loading), so a machine without a GPU builds and
//! lints this code and gets a clear refusal when it tries to open an engine.

pub mod kernels;
pub mod shim;
pub mod staging;

use std::ffi::CString;
use std::fs;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use cudarc::driver::{CudaContext, CudaSlice, CudaStream, DevicePtr, DriverError};
use thiserror::Error;

use self::kernels::{DeviceTensor, Geometry, Kernels};
use self::shim::{DataType, IoTensor, Plan};
use self::staging::FrameIo;
use super::plan::{PlanInfo, PlanMismatch};
use super::{Engine, EngineError, EngineInfo, RunError, StageTimes};
use crate::config::EngineConfig;
use crate::frame::{FrameError, Layout, RgbImage};
use crate::model::Manifest;
use crate::style::StyleSpec;

#[derive(Debug, Error)]
pub enum TensorRtError {
    #[error("CUDA: {0}")]
    Cuda(String),
    #[error("{}", shim::NOT_BUILT)]
    NotBuilt,
    #[error("no CUDA device: {0}")]
    NoDevice(String),
    #[error("cannot read TensorRT plan {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Incompatible(#[from] PlanMismatch),
    #[error("TensorRT could not load plan {path}: {message}")]
    Deserialize { path: PathBuf, message: String },
    #[error("TensorRT plan {path} does not fit model {model}: {message}")]
    Mismatch {
        path: PathBuf,
        model: String,
        message: String,
    },
    #[error("TensorRT inference failed: {0}")]
    Run(String),
    #[error(transparent)]
    Frame(#[from] FrameError),
}

impl From<DriverError> for TensorRtError {
    fn from(e: DriverError) -> Self {
        Self::Cuda(e.to_string())
    }
}

impl From<TensorRtError> for EngineError {
    fn from(e: TensorRtError) -> Self {
        match e {
            TensorRtError::Run(m) => EngineError::Run(RunError::Runtime(m)),
            TensorRtError::Frame(f) => EngineError::Frame(f),
            other => EngineError::Backend(other.to_string()),
        }
    }
}

/// Opens CUDA device 0, or says why not: no driver library, or no device behind it.
pub fn cuda_context() -> Result<Arc<CudaContext>, TensorRtError> {
    // SAFETY: only probes whether libcuda can be dlopen'ed; cudarc panics on the first
    // driver call when it cannot, so we must ask first.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        return Err(TensorRtError::NoDevice(
            "the CUDA driver library (libcuda.so) was not found".into(),
        ));
    }
    match CudaContext::device_count() {
        Ok(n) if n > 0 => Ok(CudaContext::new(0)?),
        Ok(_) => Err(TensorRtError::NoDevice(
            "the CUDA driver sees no GPU".into(),
        )),
        Err(e) => Err(TensorRtError::NoDevice(e.to_string())),
    }
}

/// One bound plan tensor.
struct Binding {
    name: CString,
    dims: Vec<i64>,
}

pub struct TensorRtEngine {
    info: EngineInfo,
    manifest: Manifest,
    styles: Vec<String>,
    style_weights: Vec<f32>,
    style_dirty: bool,
    // Drop order matters: the plan (which holds tensor addresses) goes before the buffers,
    // and the buffers before the stream and context they belong to.
    plan: Plan,
    kernels: Kernels,
    geometry: Geometry,
    frames: FrameIo,
    input: DeviceTensor,
    output: DeviceTensor,
    style: Option<CudaSlice<f32>>,
    stream: Arc<CudaStream>,
}

impl TensorRtEngine {
    pub fn open(manifest: &Manifest, config: &EngineConfig) -> Result<Self, EngineError> {
        Ok(Self::open_plan(manifest, config)?)
    }

    fn open_plan(manifest: &Manifest, config: &EngineConfig) -> Result<Self, TensorRtError> {
        let path = config.plan.clone().unwrap_or_default();
        let mismatch = |message: String| TensorRtError::Mismatch {
            path: path.clone(),
            model: manifest.name.clone(),
            message,
        };
        let ours = shim::library_version().ok_or(TensorRtError::NotBuilt)?;
        let ctx = cuda_context()?;
        let device = ctx.name()?;
        let label = PlanInfo::for_plan(&path);
        label.check(&path, ours, &device, ctx.compute_capability()?)?;
        let bytes = fs::read(&path).map_err(|source| TensorRtError::Read {
            path: path.clone(),
            source,
        })?;
        let stream = ctx.new_stream()?;
        let mut plan = Plan::deserialize(&bytes).map_err(|message| TensorRtError::Deserialize {
            path: path.clone(),
            message,
        })?;
        let kernels = Kernels::compile(&ctx)?;

        let size = config.size;
        let geometry = Geometry::new(
            size.width,
            size.height,
            manifest.pad_multiple,
            manifest.layout,
            manifest.input_range,
            manifest.output_range,
        )?;
        let shape = image_shape(&geometry);
        let find = |name: &str, input: bool| -> Result<IoTensor, TensorRtError> {
            plan.io()
                .iter()
                .find(|t| t.name == name && t.is_input == input)
                .cloned()
                .ok_or_else(|| {
                    let all: Vec<&str> = plan.io().iter().map(|t| t.name.as_str()).collect();
                    mismatch(format!(
                        "it has no {} named {name:?} (its tensors: {})",
                        if input { "input" } else { "output" },
                        all.join(", ")
                    ))
                })
        };
        let image_in = find(&manifest.input, true)?;
        let image_out = find(&manifest.output, false)?;
        let style_in = match &manifest.style_input {
            Some(name) => Some(find(name, true)?),
            None => None,
        };
        let expected_inputs = 1 + usize::from(style_in.is_some());
        let inputs = plan.io().iter().filter(|t| t.is_input).count();
        if inputs != expected_inputs {
            return Err(mismatch(format!(
                "it has {inputs} inputs but the manifest describes {expected_inputs}"
            )));
        }
        let input = bind_image(&mut plan, &image_in, &shape, true).map_err(mismatch)?;
        let style = match &style_in {
            Some(t) => Some(bind_style(&mut plan, t, manifest).map_err(mismatch)?),
            None => None,
        };
        let output = bind_image(&mut plan, &image_out, &shape, false).map_err(mismatch)?;

        let half_in = image_in.dtype == DataType::Half;
        let half_out = image_out.dtype == DataType::Half;
        let input_buf = DeviceTensor::alloc(&stream, geometry.tensor_len(), half_in)?;
        let output_buf = DeviceTensor::alloc(&stream, geometry.tensor_len(), half_out)?;
        let style_buf = match &style {
            Some(b) => Some(stream.alloc_zeros::<f32>(b.dims.iter().product::<i64>() as usize)?),
            None => None,
        };
        let zero_copy = FrameIo::zero_copy_possible(&ctx)?;
        let frames = FrameIo::new(&ctx, &stream, geometry.image_len(), zero_copy)?;
        tracing::info!(
            device = %device,
            frames = if zero_copy { "zero-copy (mapped host memory)" } else { "copied (pinned staging)" },
            "TensorRT engine buffers"
        );

        bind_address(&mut plan, &input.name, &input_buf, &stream)?;
        bind_address(&mut plan, &output.name, &output_buf, &stream)?;
        if let (Some(b), Some(buf)) = (&style, &style_buf) {
            let (ptr, _sync) = buf.device_ptr(&stream);
            // SAFETY: `buf` lives in the engine next to the plan and is dropped after it.
            unsafe { plan.set_address(&b.name, ptr) }.map_err(TensorRtError::Run)?;
        }

        let precision = match (half_in, image_out.dtype) {
            (true, _) | (_, DataType::Half) => "fp16",
            _ => "fp32-io",
        };
        let precision = label.precision.unwrap_or_else(|| precision.to_string());
        let styles = manifest.style_names();
        Ok(Self {
            info: EngineInfo {
                backend: "tensorrt".into(),
                model: manifest.name.clone(),
                precision,
                input: [size.width, size.height],
            },
            manifest: manifest.clone(),
            styles,
            style_weights: Vec::new(),
            style_dirty: false,
            plan,
            kernels,
            geometry,
            frames,
            input: input_buf,
            output: output_buf,
            style: style_buf,
            stream,
        })
    }

    fn run(&mut self, image: &RgbImage, times: &mut StageTimes) -> Result<RgbImage, TensorRtError> {
        let t0 = Instant::now();
        self.frames.upload(&self.stream, &image.data)?;
        if self.style_dirty
            && let Some(style) = &mut self.style
        {
            if self.style_weights.len() != style.len() {
                return Err(TensorRtError::Run(format!(
                    "style vector has {} values but the plan's style input holds {}",
                    self.style_weights.len(),
                    style.len()
                )));
            }
            self.stream.memcpy_htod(&self.style_weights, style)?;
            self.style_dirty = false;
        }
        self.kernels.pre(
            &self.stream,
            self.frames.input(),
            &mut self.input,
            &self.geometry,
        )?;
        self.stream.synchronize()?;
        let t1 = Instant::now();
        // SAFETY: every tensor address was bound at open to buffers owned by `self`, and the
        // stream is this engine's own.
        unsafe { self.plan.enqueue(self.stream.cu_stream().cast()) }.map_err(TensorRtError::Run)?;
        self.stream.synchronize()?;
        let t2 = Instant::now();
        self.kernels.post(
            &self.stream,
            &self.output,
            self.frames.output(),
            &self.geometry,
        )?;
        let data = self.frames.download(&self.stream)?;
        times.pre = t1 - t0;
        times.infer = t2 - t1;
        times.post = t2.elapsed();
        Ok(RgbImage::new(image.width, image.height, data)?)
    }
}

/// `[1, 3, h, w]` or `[1, h, w, 3]` of the padded tensor.
fn image_shape(g: &Geometry) -> Vec<i64> {
    let (w, h) = (g.tensor_width as i64, g.tensor_height as i64);
    match g.layout {
        Layout::Nchw => vec![1, 3, h, w],
        Layout::Nhwc => vec![1, h, w, 3],
    }
}

/// Checks an image tensor's type and shape, sets a dynamic input's shape.
fn bind_image(
    plan: &mut Plan,
    t: &IoTensor,
    shape: &[i64],
    input: bool,
) -> Result<Binding, String> {
    if !matches!(t.dtype, DataType::Float | DataType::Half) || !t.linear {
        return Err(format!(
            "tensor {:?} is {:?}{}; build the plan with float or half linear IO (build-trt.sh does)",
            t.name,
            t.dtype,
            if t.linear {
                ""
            } else {
                " in a vectorized format"
            }
        ));
    }
    let fits =
        t.dims.len() == shape.len() && t.dims.iter().zip(shape).all(|(&d, &s)| d == -1 || d == s);
    if !fits {
        return Err(format!(
            "tensor {:?} has shape {:?} but engine.size needs {shape:?}; build a plan for this \
             size or with a dynamic profile",
            t.name, t.dims
        ));
    }
    let name = CString::new(t.name.clone()).map_err(|e| e.to_string())?;
    if input && t.dims.contains(&-1) {
        plan.set_input_shape(&name, shape)?;
    }
    if !input {
        let resolved = plan.context_shape(&name)?;
        if resolved != shape {
            return Err(format!(
                "output {:?} would have shape {resolved:?}, expected {shape:?}",
                t.name
            ));
        }
    }
    Ok(Binding {
        name,
        dims: shape.to_vec(),
    })
}

fn bind_style(plan: &mut Plan, t: &IoTensor, m: &Manifest) -> Result<Binding, String> {
    let want = m.style_len();
    if t.dtype != DataType::Float {
        return Err(format!(
            "style input {:?} is {:?}, not float",
            t.name, t.dtype
        ));
    }
    let name = CString::new(t.name.clone()).map_err(|e| e.to_string())?;
    let mut dims = t.dims.clone();
    if let Some(len) = want
        && dims.contains(&-1)
    {
        dims = vec![len as i64];
        plan.set_input_shape(&name, &dims)?;
    }
    let len: i64 = dims.iter().product();
    if len <= 0 || want.is_some_and(|w| w as i64 != len) {
        return Err(format!(
            "style input {:?} has shape {dims:?} but the manifest lists {} styles",
            t.name,
            want.unwrap_or_default()
        ));
    }
    Ok(Binding { name, dims })
}

fn bind_address(
    plan: &mut Plan,
    name: &CString,
    buf: &DeviceTensor,
    stream: &Arc<CudaStream>,
) -> Result<(), TensorRtError> {
    let ptr = match buf {
        DeviceTensor::F32(b) => b.device_ptr(stream).0,
        DeviceTensor::F16(b) => b.device_ptr(stream).0,
    };
    // SAFETY: `buf` is owned by the engine alongside the plan and dropped after it; it holds
    // the full padded tensor the shape was set to.
    unsafe { plan.set_address(name, ptr) }.map_err(TensorRtError::Run)
}

impl Engine for TensorRtEngine {
    fn info(&self) -> &EngineInfo {
        &self.info
    }

    fn styles(&self) -> &[String] {
        &self.styles
    }

    /// Buffers and the plan's shapes are fixed at open: only `info().input` runs.
    fn any_size(&self) -> bool {
        false
    }

    fn set_style(&mut self, spec: &StyleSpec) -> Result<(), EngineError> {
        if let Some(weights) = self.manifest.style_weights(spec)? {
            self.style_weights = weights;
            self.style_dirty = true;
        }
        Ok(())
    }

    fn stylize(
        &mut self,
        image: &RgbImage,
        times: &mut StageTimes,
    ) -> Result<RgbImage, EngineError> {
        let [w, h] = self.info.input;
        if (image.width, image.height) != (w, h) {
            return Err(EngineError::FrameSize {
                got: [image.width, image.height],
                want: [w, h],
            });
        }
        Ok(self.run(image, times)?)
    }
}
