//! Moving a frame's RGB bytes between the CPU and the TensorRT engine's GPU.
//!
//! On a discrete GPU a frame goes through pinned staging buffers and two copies: host to
//! device before the pre-processing kernel, device to host after the post-processing one.
//! On a Jetson the GPU shares the board's DRAM (`CU_DEVICE_ATTRIBUTE_INTEGRATED`), so those
//! copies only move bytes from one place in the same memory to another: there the pinned
//! buffers are mapped into the GPU's address space (`CU_MEMHOSTALLOC_DEVICEMAP`) and the
//! kernels read the camera picture and write the stylized one in place ("zero-copy").
//!
//! This module owns that choice and the buffers; the kernels take either kind through
//! [`RgbBuffer`]. The caller synchronizes its stream before touching host memory again, so
//! the CPU never writes a buffer the GPU is still reading.

use std::sync::Arc;

use cudarc::driver::sys::{self, CUdevice_attribute};
use cudarc::driver::{
    CudaContext, CudaSlice, CudaStream, LaunchArgs, PinnedHostSlice, PushKernelArg,
};

use super::TensorRtError;

/// An RGB byte buffer a kernel can be handed: device memory or mapped host memory.
pub trait RgbBuffer {
    /// Pushes the buffer as a kernel argument the kernel only reads.
    fn push_read<'a>(&'a self, launch: &mut LaunchArgs<'a>);
    /// Pushes the buffer as a kernel argument the kernel writes.
    fn push_write<'a>(&'a mut self, launch: &mut LaunchArgs<'a>);
}

impl RgbBuffer for CudaSlice<u8> {
    fn push_read<'a>(&'a self, launch: &mut LaunchArgs<'a>) {
        launch.arg(self);
    }

    fn push_write<'a>(&'a mut self, launch: &mut LaunchArgs<'a>) {
        launch.arg(self);
    }
}

/// Pinned host memory the GPU reads and writes through its own address for it.
pub struct MappedHost {
    host: PinnedHostSlice<u8>,
    /// The device address of `host` (a `CUdeviceptr`), valid as long as `host` lives.
    device: sys::CUdeviceptr,
}

impl MappedHost {
    pub fn alloc(ctx: &Arc<CudaContext>, len: usize) -> Result<Self, TensorRtError> {
        // SAFETY: the bytes are written before they are read: the input by `upload` from each
        // frame, the output by the post-processing kernel.
        let mut host =
            unsafe { ctx.alloc_pinned_with_flags::<u8>(len, sys::CU_MEMHOSTALLOC_DEVICEMAP) }?;
        let ptr = host.as_mut_ptr()?;
        let mut device: sys::CUdeviceptr = 0;
        ctx.bind_to_thread()?;
        // SAFETY: `ptr` was allocated just above by cuMemHostAlloc with DEVICEMAP in this
        // context; flags must be 0.
        unsafe { sys::cuMemHostGetDevicePointer_v2(&mut device, ptr.cast(), 0) }.result()?;
        Ok(Self { host, device })
    }
}

impl RgbBuffer for MappedHost {
    fn push_read<'a>(&'a self, launch: &mut LaunchArgs<'a>) {
        launch.arg(&self.device);
    }

    fn push_write<'a>(&'a mut self, launch: &mut LaunchArgs<'a>) {
        launch.arg(&self.device);
    }
}

/// The engine's frame buffers, in whichever form suits its GPU.
pub enum FrameIo {
    /// Discrete GPU: pinned staging buffers and device copies of the picture.
    Copied {
        host_in: PinnedHostSlice<u8>,
        host_out: PinnedHostSlice<u8>,
        rgb_in: CudaSlice<u8>,
        rgb_out: CudaSlice<u8>,
    },
    /// Integrated GPU (Jetson): the kernels work on mapped host memory in place.
    Mapped {
        input: MappedHost,
        output: MappedHost,
    },
}

impl FrameIo {
    /// Whether the GPU shares host memory and can map it (every Jetson does).
    pub fn zero_copy_possible(ctx: &Arc<CudaContext>) -> Result<bool, TensorRtError> {
        Ok(
            ctx.attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_INTEGRATED)? == 1
                && ctx.attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_CAN_MAP_HOST_MEMORY)? == 1,
        )
    }

    /// Buffers for `len`-byte pictures: mapped when `zero_copy`, else staged and copied.
    pub fn new(
        ctx: &Arc<CudaContext>,
        stream: &Arc<CudaStream>,
        len: usize,
        zero_copy: bool,
    ) -> Result<Self, TensorRtError> {
        if zero_copy {
            return Ok(Self::Mapped {
                input: MappedHost::alloc(ctx, len)?,
                output: MappedHost::alloc(ctx, len)?,
            });
        }
        // SAFETY: the staging buffers are written in full (host_in from each frame, host_out
        // by the device copy) before anything reads them.
        let (host_in, host_out) = unsafe {
            (
                // Write-combined: the CPU only writes it, the GPU reads it across the bus.
                ctx.alloc_pinned::<u8>(len)?,
                // Plain pinned: the CPU reads it back, which write-combined memory makes slow.
                ctx.alloc_pinned_with_flags::<u8>(len, 0)?,
            )
        };
        Ok(Self::Copied {
            host_in,
            host_out,
            rgb_in: stream.alloc_zeros::<u8>(len)?,
            rgb_out: stream.alloc_zeros::<u8>(len)?,
        })
    }

    pub fn is_zero_copy(&self) -> bool {
        matches!(self, Self::Mapped { .. })
    }

    /// Puts a frame's bytes where the pre-processing kernel reads them (queued on `stream`
    /// for a discrete GPU).
    pub fn upload(&mut self, stream: &Arc<CudaStream>, data: &[u8]) -> Result<(), TensorRtError> {
        match self {
            Self::Copied {
                host_in, rgb_in, ..
            } => {
                host_in.as_mut_slice()?.copy_from_slice(data);
                stream.memcpy_htod(host_in, rgb_in)?;
            }
            Self::Mapped { input, .. } => input.host.as_mut_slice()?.copy_from_slice(data),
        }
        Ok(())
    }

    /// What the pre-processing kernel reads.
    pub fn input(&self) -> &dyn RgbBuffer {
        match self {
            Self::Copied { rgb_in, .. } => rgb_in,
            Self::Mapped { input, .. } => input,
        }
    }

    /// What the post-processing kernel writes.
    pub fn output(&mut self) -> &mut dyn RgbBuffer {
        match self {
            Self::Copied { rgb_out, .. } => rgb_out,
            Self::Mapped { output, .. } => output,
        }
    }

    /// The stylized bytes, once the post-processing kernel queued on `stream` has run.
    pub fn download(&mut self, stream: &Arc<CudaStream>) -> Result<Vec<u8>, TensorRtError> {
        match self {
            Self::Copied {
                host_out, rgb_out, ..
            } => {
                stream.memcpy_dtoh(rgb_out, host_out)?;
                stream.synchronize()?;
                Ok(host_out.as_slice()?.to_vec())
            }
            Self::Mapped { output, .. } => {
                stream.synchronize()?;
                Ok(output.host.as_slice()?.to_vec())
            }
        }
    }
}
