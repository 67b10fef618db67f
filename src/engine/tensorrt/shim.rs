//! The Rust side of the TensorRT C++ shim (`shim.cpp`): FFI declarations and a safe
//! [`Plan`] owning one deserialized engine and its execution context.
//!
//! `build.rs` sets `cfg(stylerd_trt_shim)` only when it compiled the shim against real
//! TensorRT headers. Without it this module keeps the same API but every call refuses with
//! [`NOT_BUILT`], so the rest of the engine compiles, lints and fails cleanly at run time on
//! machines without TensorRT. This module must not touch CUDA memory: it only passes the
//! addresses and stream that `cudarc` owns.

use std::ffi::CStr;

pub use crate::engine::plan::TrtVersion;

/// What the engine says when the shim was not compiled in.
pub const NOT_BUILT: &str = "this stylerd was built with --features tensorrt but without the \
     TensorRT headers (build.rs warned about it), so it cannot load plans; install TensorRT \
     (JetPack's libnvinfer-dev) or set TENSORRT_ROOT, and rebuild";

/// `nvinfer1::DataType` values of TensorRT 8.5.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataType {
    Float,
    Half,
    Int8,
    Int32,
    Bool,
    Uint8,
    Other(i32),
}

impl DataType {
    pub fn from_code(code: i32) -> Self {
        match code {
            0 => Self::Float,
            1 => Self::Half,
            2 => Self::Int8,
            3 => Self::Int32,
            4 => Self::Bool,
            5 => Self::Uint8,
            other => Self::Other(other),
        }
    }
}

/// One input or output tensor of a plan, as the engine declares it (-1: dynamic).
#[derive(Clone, Debug)]
pub struct IoTensor {
    pub name: String,
    pub is_input: bool,
    pub dtype: DataType,
    /// Whether the tensor is in TensorRT's plain row-major (`kLINEAR`) format.
    pub linear: bool,
    pub dims: Vec<i64>,
}

pub use imp::{Plan, library_version};

#[cfg(stylerd_trt_shim)]
mod imp {
    use std::ffi::{CStr, c_char, c_void};
    use std::ptr::NonNull;

    use super::{DataType, IoTensor, TrtVersion};

    #[repr(C)]
    struct StylerdTrt {
        _private: [u8; 0],
    }

    unsafe extern "C" {
        fn stylerd_trt_version() -> i32;
        fn stylerd_trt_open(
            plan: *const c_void,
            len: usize,
            err: *mut c_char,
            err_len: usize,
        ) -> *mut StylerdTrt;
        fn stylerd_trt_close(h: *mut StylerdTrt);
        fn stylerd_trt_num_io(h: *const StylerdTrt) -> i32;
        fn stylerd_trt_io(
            h: *const StylerdTrt,
            i: i32,
            name: *mut *const c_char,
            is_input: *mut i32,
            dtype: *mut i32,
            linear: *mut i32,
            nb_dims: *mut i32,
            dims: *mut i64,
        ) -> i32;
        fn stylerd_trt_set_input_shape(
            h: *mut StylerdTrt,
            name: *const c_char,
            nb_dims: i32,
            dims: *const i64,
        ) -> i32;
        fn stylerd_trt_context_shape(
            h: *const StylerdTrt,
            name: *const c_char,
            nb_dims: *mut i32,
            dims: *mut i64,
        ) -> i32;
        fn stylerd_trt_set_address(
            h: *mut StylerdTrt,
            name: *const c_char,
            ptr: *mut c_void,
        ) -> i32;
        fn stylerd_trt_enqueue(h: *mut StylerdTrt, stream: *mut c_void) -> i32;
        fn stylerd_trt_last_error(h: *const StylerdTrt) -> *const c_char;
    }

    /// The version of the libnvinfer this process loaded.
    pub fn library_version() -> Option<TrtVersion> {
        // SAFETY: getInferLibVersion takes no arguments and has no preconditions.
        Some(TrtVersion::from_code(unsafe { stylerd_trt_version() }))
    }

    /// A deserialized engine with one execution context.
    pub struct Plan {
        handle: NonNull<StylerdTrt>,
        io: Vec<IoTensor>,
    }

    // SAFETY: the handle is only used through `&mut self` (or `&self` for reads of immutable
    // engine metadata), so one thread at a time; TensorRT allows a context to move threads.
    unsafe impl Send for Plan {}

    impl Plan {
        pub fn deserialize(bytes: &[u8]) -> Result<Self, String> {
            let mut err = vec![0 as c_char; 1024];
            // SAFETY: `bytes` is valid for `len` bytes, `err` for 1024; the shim copies what
            // it needs and NUL-terminates `err`.
            let raw = unsafe {
                stylerd_trt_open(
                    bytes.as_ptr().cast(),
                    bytes.len(),
                    err.as_mut_ptr(),
                    err.len(),
                )
            };
            let Some(handle) = NonNull::new(raw) else {
                // SAFETY: the shim wrote a NUL-terminated string into `err` (or left zeros).
                let text = unsafe { CStr::from_ptr(err.as_ptr()) };
                return Err(text.to_string_lossy().into_owned());
            };
            let mut plan = Self {
                handle,
                io: Vec::new(),
            };
            // SAFETY: the handle is live.
            let n = unsafe { stylerd_trt_num_io(plan.handle.as_ptr()) };
            for i in 0..n {
                let mut name: *const c_char = std::ptr::null();
                let (mut is_input, mut dtype, mut linear, mut nb) = (0, 0, 0, 0);
                let mut dims = [0i64; 8];
                // SAFETY: every out-pointer is valid; `dims` holds the 8 the shim may write.
                let ok = unsafe {
                    stylerd_trt_io(
                        plan.handle.as_ptr(),
                        i,
                        &mut name,
                        &mut is_input,
                        &mut dtype,
                        &mut linear,
                        &mut nb,
                        dims.as_mut_ptr(),
                    )
                };
                if ok == 0 || name.is_null() {
                    return Err(format!("TensorRT lists no IO tensor {i}"));
                }
                // SAFETY: TensorRT's tensor names live as long as the engine.
                let name = unsafe { CStr::from_ptr(name) }
                    .to_string_lossy()
                    .into_owned();
                plan.io.push(IoTensor {
                    name,
                    is_input: is_input != 0,
                    dtype: DataType::from_code(dtype),
                    linear: linear != 0,
                    dims: dims[..nb.clamp(0, 8) as usize].to_vec(),
                });
            }
            Ok(plan)
        }

        pub fn io(&self) -> &[IoTensor] {
            &self.io
        }

        fn last_error(&self) -> String {
            // SAFETY: the shim returns a pointer into the live handle's error string.
            let text = unsafe { CStr::from_ptr(stylerd_trt_last_error(self.handle.as_ptr())) };
            text.to_string_lossy().into_owned()
        }

        pub fn set_input_shape(&mut self, name: &CStr, dims: &[i64]) -> Result<(), String> {
            // SAFETY: the handle is live, `name` NUL-terminated, `dims` holds `len` values.
            let ok = unsafe {
                stylerd_trt_set_input_shape(
                    self.handle.as_ptr(),
                    name.as_ptr(),
                    dims.len() as i32,
                    dims.as_ptr(),
                )
            };
            if ok == 0 {
                return Err(self.last_error());
            }
            Ok(())
        }

        pub fn context_shape(&self, name: &CStr) -> Result<Vec<i64>, String> {
            let mut nb = 0;
            let mut dims = [0i64; 8];
            // SAFETY: the handle is live and `dims` holds the 8 values the shim may write.
            let ok = unsafe {
                stylerd_trt_context_shape(
                    self.handle.as_ptr(),
                    name.as_ptr(),
                    &mut nb,
                    dims.as_mut_ptr(),
                )
            };
            if ok == 0 {
                return Err(format!("TensorRT has no shape for {name:?}"));
            }
            Ok(dims[..nb.clamp(0, 8) as usize].to_vec())
        }

        /// Binds a tensor to device memory.
        ///
        /// # Safety
        /// `ptr` must point to device memory large enough for the tensor's current shape and
        /// stay allocated until the address is replaced or the plan dropped.
        pub unsafe fn set_address(&mut self, name: &CStr, ptr: u64) -> Result<(), String> {
            // SAFETY: the caller guarantees `ptr`; the handle is live.
            let ok = unsafe {
                stylerd_trt_set_address(self.handle.as_ptr(), name.as_ptr(), ptr as *mut c_void)
            };
            if ok == 0 {
                return Err(self.last_error());
            }
            Ok(())
        }

        /// Queues one inference on `stream`.
        ///
        /// # Safety
        /// `stream` must be a live CUDA stream of the current context, and every bound
        /// address still valid.
        pub unsafe fn enqueue(&mut self, stream: *mut c_void) -> Result<(), String> {
            // SAFETY: the caller guarantees the stream and addresses; the handle is live.
            let ok = unsafe { stylerd_trt_enqueue(self.handle.as_ptr(), stream) };
            if ok == 0 {
                return Err(self.last_error());
            }
            Ok(())
        }
    }

    impl Drop for Plan {
        fn drop(&mut self) {
            // SAFETY: the handle came from stylerd_trt_open and is closed exactly once.
            unsafe { stylerd_trt_close(self.handle.as_ptr()) }
        }
    }
}

#[cfg(not(stylerd_trt_shim))]
mod imp {
    use std::convert::Infallible;
    use std::ffi::{CStr, c_void};

    use super::{IoTensor, NOT_BUILT, TrtVersion};

    /// No TensorRT library is linked into this build.
    pub fn library_version() -> Option<TrtVersion> {
        None
    }

    /// Cannot be constructed: every path to one refuses with [`NOT_BUILT`].
    pub struct Plan {
        never: Infallible,
    }

    impl Plan {
        pub fn deserialize(_bytes: &[u8]) -> Result<Self, String> {
            Err(NOT_BUILT.into())
        }
        pub fn io(&self) -> &[IoTensor] {
            match self.never {}
        }
        pub fn set_input_shape(&mut self, _name: &CStr, _dims: &[i64]) -> Result<(), String> {
            match self.never {}
        }
        pub fn context_shape(&self, _name: &CStr) -> Result<Vec<i64>, String> {
            match self.never {}
        }
        /// # Safety
        /// As in the real shim: `ptr` must be device memory that outlives the binding.
        pub unsafe fn set_address(&mut self, _name: &CStr, _ptr: u64) -> Result<(), String> {
            match self.never {}
        }
        /// # Safety
        /// As in the real shim: `stream` must be a live CUDA stream.
        pub unsafe fn enqueue(&mut self, _stream: *mut c_void) -> Result<(), String> {
            match self.never {}
        }
    }
}

/// Whether a C string is one of the plan's tensor names (helper for error messages).
pub fn has_tensor(io: &[IoTensor], name: &CStr) -> bool {
    io.iter().any(|t| t.name.as_bytes() == name.to_bytes())
}
