//! Pre/post-processing as CUDA kernels, compiled at start-up with NVRTC (through `cudarc`).
//!
//! The kernels do exactly what `frame::to_tensor` / `frame::from_tensor` do on the CPU:
//! u8 RGB HWC -> f32 or f16 NCHW/NHWC in the model's value range with reflect padding at the
//! right and bottom, and back with clamping, rounding and cropping. Every float operation is
//! written with round-to-nearest intrinsics (`__fdiv_rn`, `__fmul_rn`, ...) so NVRTC cannot
//! fuse them into FMAs: the f32 results are bit-identical to the CPU's (tests/tensorrt.rs).
//! The f16 conversions use PTX `cvt` so no CUDA headers are needed at run time.
//!
//! This module owns the kernels and their launch geometry; buffers and the stream belong to
//! the caller (`TensorRtEngine` or a test).

use std::sync::Arc;

use cudarc::driver::{
    CudaContext, CudaFunction, CudaSlice, CudaStream, LaunchConfig, PushKernelArg,
};
use cudarc::nvrtc::{CompileOptions, compile_ptx_with_opts};

use super::TensorRtError;
use super::staging::RgbBuffer;
use crate::frame::{self, FrameError, ImageTensor, Layout, RgbImage, ValueRange};

/// CUDA C source of the four kernels; `to_value` / `to_byte` mirror `frame.rs` line by line.
const SOURCE: &str = r#"
__device__ __forceinline__ int reflect(int i, int len) {
    return i < len ? i : 2 * (len - 1) - i;
}
__device__ __forceinline__ unsigned short f32_to_f16(float x) {
    unsigned short r;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(r) : "f"(x));
    return r;
}
__device__ __forceinline__ float f16_to_f32(unsigned short x) {
    float r;
    asm("cvt.f32.f16 %0, %1;" : "=f"(r) : "h"(x));
    return r;
}
__device__ __forceinline__ int tensor_index(int c, int y, int x, int tw, int th, int nchw) {
    return nchw ? (c * th + y) * tw + x : (y * tw + x) * 3 + c;
}
// frame.rs: v as f32 / 255.0 * scale + range.lo
__device__ __forceinline__ float to_value(unsigned char v, float scale, float lo) {
    return __fadd_rn(__fmul_rn(__fdiv_rn((float)v, 255.0f), scale), lo);
}
// frame.rs: (unit.clamp(0.0, 1.0) * 255.0 + 0.5) as u8, NaN -> 0
__device__ __forceinline__ unsigned char to_byte(float v, float scale, float lo, int unit) {
    float u = unit ? v : __fdiv_rn(__fsub_rn(v, lo), scale);
    if (!(u == u)) return 0;
    u = fminf(fmaxf(u, 0.0f), 1.0f);
    return (unsigned char)__fadd_rn(__fmul_rn(u, 255.0f), 0.5f);
}

#define PRE_BODY(STORE)                                                        \
    int x = blockIdx.x * blockDim.x + threadIdx.x;                             \
    int y = blockIdx.y * blockDim.y + threadIdx.y;                             \
    if (x >= tw || y >= th) return;                                            \
    int s = (reflect(y, h) * w + reflect(x, w)) * 3;                           \
    for (int c = 0; c < 3; ++c) {                                              \
        float v = to_value(src[s + c], scale, lo);                             \
        dst[tensor_index(c, y, x, tw, th, nchw)] = STORE(v);                   \
    }

#define POST_BODY(LOAD)                                                        \
    int x = blockIdx.x * blockDim.x + threadIdx.x;                             \
    int y = blockIdx.y * blockDim.y + threadIdx.y;                             \
    if (x >= w || y >= h) return;                                              \
    for (int c = 0; c < 3; ++c) {                                              \
        float v = LOAD(src[tensor_index(c, y, x, tw, th, nchw)]);              \
        dst[(y * w + x) * 3 + c] = to_byte(v, scale, lo, unit);                \
    }

#define IDENT(v) (v)

extern "C" __global__ void pre_f32(const unsigned char* src, float* dst, int w, int h,
                                   int tw, int th, int nchw, float scale, float lo) {
    PRE_BODY(IDENT)
}
extern "C" __global__ void pre_f16(const unsigned char* src, unsigned short* dst, int w, int h,
                                   int tw, int th, int nchw, float scale, float lo) {
    PRE_BODY(f32_to_f16)
}
extern "C" __global__ void post_f32(const float* src, unsigned char* dst, int w, int h,
                                    int tw, int th, int nchw, float scale, float lo, int unit) {
    POST_BODY(IDENT)
}
extern "C" __global__ void post_f16(const unsigned short* src, unsigned char* dst, int w, int h,
                                    int tw, int th, int nchw, float scale, float lo, int unit) {
    POST_BODY(f16_to_f32)
}
"#;

/// Threads per block side; 16x16 = 256 threads, a safe occupancy on Volta (Xavier) and up.
const BLOCK: u32 = 16;

/// An image tensor in device memory, in the precision the TensorRT plan binds.
pub enum DeviceTensor {
    F32(CudaSlice<f32>),
    /// IEEE half floats as raw bits (the kernels convert with PTX `cvt`).
    F16(CudaSlice<u16>),
}

impl DeviceTensor {
    pub fn alloc(stream: &Arc<CudaStream>, len: usize, half: bool) -> Result<Self, TensorRtError> {
        Ok(if half {
            Self::F16(stream.alloc_zeros::<u16>(len)?)
        } else {
            Self::F32(stream.alloc_zeros::<f32>(len)?)
        })
    }
}

/// Sizes and value mapping shared by the pre and post kernels of one engine.
#[derive(Clone, Copy, Debug)]
pub struct Geometry {
    /// Picture size.
    pub width: u32,
    pub height: u32,
    /// Tensor size after reflect padding.
    pub tensor_width: u32,
    pub tensor_height: u32,
    pub layout: Layout,
    pub input_range: ValueRange,
    pub output_range: ValueRange,
}

impl Geometry {
    /// The geometry `frame::to_tensor` would use for a `width` x `height` picture.
    pub fn new(
        width: u32,
        height: u32,
        pad_multiple: u32,
        layout: Layout,
        input_range: ValueRange,
        output_range: ValueRange,
    ) -> Result<Self, FrameError> {
        let (pw, ph) = (
            frame::pad_to(width, pad_multiple),
            frame::pad_to(height, pad_multiple),
        );
        if width == 0 || height == 0 {
            return Err(FrameError::Empty { width, height });
        }
        for (len, pad) in [(width, pw), (height, ph)] {
            if pad >= len {
                return Err(FrameError::TooSmallToPad { len, pad });
            }
        }
        Ok(Self {
            width,
            height,
            tensor_width: width + pw,
            tensor_height: height + ph,
            layout,
            input_range,
            output_range,
        })
    }

    pub fn tensor_len(&self) -> usize {
        self.tensor_width as usize * self.tensor_height as usize * 3
    }

    pub fn image_len(&self) -> usize {
        self.width as usize * self.height as usize * 3
    }

    fn grid(w: u32, h: u32) -> LaunchConfig {
        LaunchConfig {
            grid_dim: (w.div_ceil(BLOCK), h.div_ceil(BLOCK), 1),
            block_dim: (BLOCK, BLOCK, 1),
            shared_mem_bytes: 0,
        }
    }
}

/// The compiled pre/post kernels of one CUDA context.
pub struct Kernels {
    pre_f32: CudaFunction,
    pre_f16: CudaFunction,
    post_f32: CudaFunction,
    post_f16: CudaFunction,
}

impl Kernels {
    /// Compiles the kernels with NVRTC and loads them into `ctx`.
    pub fn compile(ctx: &Arc<CudaContext>) -> Result<Self, TensorRtError> {
        // SAFETY: only probes whether libnvrtc can be dlopen'ed; cudarc would panic on the
        // first NVRTC call otherwise.
        if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
            return Err(TensorRtError::Cuda(
                "the NVRTC library (libnvrtc.so) was not found; it ships with CUDA (JetPack's \
                 cuda-nvrtc package)"
                    .into(),
            ));
        }
        let opts = CompileOptions {
            // Keep IEEE semantics so results match the CPU bit for bit.
            fmad: Some(false),
            ftz: Some(false),
            prec_div: Some(true),
            name: Some("stylerd_prepost.cu".into()),
            ..Default::default()
        };
        let ptx = compile_ptx_with_opts(SOURCE, opts).map_err(|e| {
            TensorRtError::Cuda(format!("NVRTC could not compile the kernels: {e}"))
        })?;
        let module = ctx.load_module(ptx)?;
        Ok(Self {
            pre_f32: module.load_function("pre_f32")?,
            pre_f16: module.load_function("pre_f16")?,
            post_f32: module.load_function("post_f32")?,
            post_f16: module.load_function("post_f16")?,
        })
    }

    /// Queues u8 RGB (`src`, `g.image_len()` bytes) -> `dst` on `stream`.
    pub fn pre(
        &self,
        stream: &Arc<CudaStream>,
        src: &dyn RgbBuffer,
        dst: &mut DeviceTensor,
        g: &Geometry,
    ) -> Result<(), TensorRtError> {
        let (w, h, tw, th) = dims(g);
        let nchw = i32::from(g.layout == Layout::Nchw);
        let scale = g.input_range.hi - g.input_range.lo;
        let lo = g.input_range.lo;
        let cfg = Geometry::grid(g.tensor_width, g.tensor_height);
        let func = match dst {
            DeviceTensor::F32(_) => &self.pre_f32,
            DeviceTensor::F16(_) => &self.pre_f16,
        };
        let mut launch = stream.launch_builder(func);
        src.push_read(&mut launch);
        match dst {
            DeviceTensor::F32(d) => launch.arg(d),
            DeviceTensor::F16(d) => launch.arg(d),
        };
        launch
            .arg(&w)
            .arg(&h)
            .arg(&tw)
            .arg(&th)
            .arg(&nchw)
            .arg(&scale)
            .arg(&lo);
        // SAFETY: the argument list matches the kernel's signature; `src` holds w*h*3 bytes
        // and `dst` tw*th*3 values (the caller allocated both from `g`), and every thread
        // bounds-checks its (x, y) against tw/th.
        unsafe { launch.launch(cfg) }?;
        Ok(())
    }

    /// Queues `src` -> u8 RGB (`dst`, `g.image_len()` bytes) on `stream`.
    pub fn post(
        &self,
        stream: &Arc<CudaStream>,
        src: &DeviceTensor,
        dst: &mut dyn RgbBuffer,
        g: &Geometry,
    ) -> Result<(), TensorRtError> {
        let (w, h, tw, th) = dims(g);
        let nchw = i32::from(g.layout == Layout::Nchw);
        let range = g.output_range;
        let scale = range.hi - range.lo;
        let lo = range.lo;
        let unit = i32::from(range == ValueRange::UNIT);
        let cfg = Geometry::grid(g.width, g.height);
        let func = match src {
            DeviceTensor::F32(_) => &self.post_f32,
            DeviceTensor::F16(_) => &self.post_f16,
        };
        let mut launch = stream.launch_builder(func);
        match src {
            DeviceTensor::F32(s) => launch.arg(s),
            DeviceTensor::F16(s) => launch.arg(s),
        };
        dst.push_write(&mut launch);
        launch
            .arg(&w)
            .arg(&h)
            .arg(&tw)
            .arg(&th)
            .arg(&nchw)
            .arg(&scale)
            .arg(&lo)
            .arg(&unit);
        // SAFETY: as in `pre`: matching signature, buffers sized from `g`, bounds-checked
        // threads (w/h here, the crop).
        unsafe { launch.launch(cfg) }?;
        Ok(())
    }

    /// Host round trip of [`Kernels::pre`], for tests and benchmarks: the tensor comes back
    /// as f32 (f16 values widened exactly).
    pub fn to_tensor_host(
        &self,
        stream: &Arc<CudaStream>,
        img: &RgbImage,
        g: &Geometry,
        half: bool,
    ) -> Result<ImageTensor, TensorRtError> {
        let src = stream.clone_htod(&img.data)?;
        let mut dst = DeviceTensor::alloc(stream, g.tensor_len(), half)?;
        self.pre(stream, &src, &mut dst, g)?;
        let data = match &dst {
            DeviceTensor::F32(d) => stream.clone_dtoh(d)?,
            DeviceTensor::F16(d) => stream
                .clone_dtoh(d)?
                .into_iter()
                .map(|b| half::f16::from_bits(b).to_f32())
                .collect(),
        };
        Ok(ImageTensor {
            layout: g.layout,
            width: g.tensor_width,
            height: g.tensor_height,
            data,
        })
    }

    /// Host round trip of [`Kernels::post`]; with `half` the tensor is first rounded to f16
    /// on the host (as TensorRT would hand it over).
    pub fn from_tensor_host(
        &self,
        stream: &Arc<CudaStream>,
        t: &ImageTensor,
        g: &Geometry,
        half: bool,
    ) -> Result<RgbImage, TensorRtError> {
        let src = if half {
            let bits: Vec<u16> = t
                .data
                .iter()
                .map(|&v| half::f16::from_f32(v).to_bits())
                .collect();
            DeviceTensor::F16(stream.clone_htod(&bits)?)
        } else {
            DeviceTensor::F32(stream.clone_htod(&t.data)?)
        };
        let mut dst = stream.alloc_zeros::<u8>(g.image_len())?;
        self.post(stream, &src, &mut dst, g)?;
        let data = stream.clone_dtoh(&dst)?;
        Ok(RgbImage::new(g.width, g.height, data)?)
    }
}

fn dims(g: &Geometry) -> (i32, i32, i32, i32) {
    (
        g.width as i32,
        g.height as i32,
        g.tensor_width as i32,
        g.tensor_height as i32,
    )
}
