//! Build script: compiles the TensorRT C++ shim (`src/engine/tensorrt/shim.cpp`) with `cc`
//! when the `tensorrt` feature is on and the TensorRT and CUDA headers are found.
//!
//! Without the feature it does nothing. With the feature but without headers it prints one
//! `cargo:warning=` and the crate still builds: the TensorRT engine then refuses at run time
//! with a sentence saying the shim was not built (see `engine::tensorrt::shim`). It must not
//! download anything or look outside the paths named below.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(stylerd_trt_shim)");
    println!("cargo::rerun-if-changed=build.rs");
    #[cfg(feature = "tensorrt")]
    tensorrt::build();
}

#[cfg(feature = "tensorrt")]
mod tensorrt {
    use std::env;
    use std::path::{Path, PathBuf};

    const SHIM: &str = "src/engine/tensorrt/shim.cpp";

    /// Folders that may hold `NvInferRuntime.h`, most specific first: `TENSORRT_ROOT`, then
    /// JetPack's and the Debian/Ubuntu packages' multiarch folders, then NVIDIA's tarball.
    fn include_candidates(arch: &str) -> Vec<PathBuf> {
        let mut dirs = Vec::new();
        if let Some(root) = env::var_os("TENSORRT_ROOT") {
            dirs.push(Path::new(&root).join("include"));
        }
        dirs.push(PathBuf::from(format!("/usr/include/{arch}-linux-gnu")));
        dirs.push(PathBuf::from("/usr/include/aarch64-linux-gnu"));
        dirs.push(PathBuf::from("/usr/include/x86_64-linux-gnu"));
        dirs.push(PathBuf::from("/usr/local/tensorrt/include"));
        dirs.push(PathBuf::from("/usr/include"));
        dirs
    }

    /// Folders that may hold `cuda_runtime_api.h` (TensorRT's headers include it).
    fn cuda_candidates() -> Vec<PathBuf> {
        let mut dirs = Vec::new();
        for var in ["CUDA_ROOT", "CUDA_HOME", "CUDA_PATH"] {
            if let Some(root) = env::var_os(var) {
                dirs.push(Path::new(&root).join("include"));
            }
        }
        dirs.push(PathBuf::from("/usr/local/cuda/include"));
        dirs.push(PathBuf::from("/usr/local/cuda-11.4/include"));
        dirs.push(PathBuf::from("/usr/include"));
        dirs
    }

    pub fn build() {
        for var in ["TENSORRT_ROOT", "CUDA_ROOT", "CUDA_HOME", "CUDA_PATH"] {
            println!("cargo::rerun-if-env-changed={var}");
        }
        println!("cargo::rerun-if-changed={SHIM}");
        let target_arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
        let arch = if target_arch == "aarch64" {
            "aarch64"
        } else {
            "x86_64"
        };
        let trt = include_candidates(arch)
            .into_iter()
            .find(|d| d.join("NvInferRuntime.h").is_file());
        let cuda = cuda_candidates()
            .into_iter()
            .find(|d| d.join("cuda_runtime_api.h").is_file());
        let (trt, cuda) = match (trt, cuda) {
            (Some(t), Some(c)) => (t, c),
            (t, c) => {
                let missing = match (t, c) {
                    (None, _) => "TensorRT headers (NvInferRuntime.h)",
                    _ => "CUDA headers (cuda_runtime_api.h)",
                };
                println!(
                    "cargo:warning=tensorrt feature: {missing} not found (set TENSORRT_ROOT / \
                     CUDA_ROOT); the TensorRT shim is not built and the tensorrt engine will \
                     refuse to start"
                );
                return;
            }
        };
        cc::Build::new()
            .cpp(true)
            .std("c++14")
            .file(SHIM)
            // System includes: NVIDIA's headers warn about their own deprecated classes
            // (IPluginV2, IGpuAllocator::free) and unused parameters; the shim itself is
            // warning-free with -Wall -Wextra against TensorRT 8.5.2, 8.6.1 and 10.3.
            .flag("-isystem")
            .flag(&trt)
            .flag("-isystem")
            .flag(&cuda)
            .warnings(true)
            .extra_warnings(true)
            .compile("stylerd_trt_shim");
        if let Some(root) = env::var_os("TENSORRT_ROOT") {
            println!(
                "cargo::rustc-link-search=native={}",
                Path::new(&root).join("lib").display()
            );
        }
        println!("cargo::rustc-link-search=native=/usr/lib/{arch}-linux-gnu");
        println!("cargo::rustc-link-lib=dylib=nvinfer");
        println!("cargo::rustc-cfg=stylerd_trt_shim");
    }
}
