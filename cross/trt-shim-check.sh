#!/bin/bash
# Compiles the TensorRT C++ shim (src/engine/tensorrt/shim.cpp) against real TensorRT
# headers without TensorRT's libraries or a GPU, and checks the Rust side against it:
#   1. g++ -Wall -Wextra -Werror -fsyntax-only on the shim (C++14, as build.rs builds it);
#   2. cargo clippy --features tensorrt -D warnings with TENSORRT_ROOT set, so build.rs
#      compiles the shim with cc and the cfg(stylerd_trt_shim) FFI code is type-checked;
#   3. every stylerd_trt_* function shim.rs declares is defined by the compiled object, and
#      the object needs nothing from libnvinfer but createInferRuntime_INTERNAL and
#      getInferLibVersion (both exported by every libnvinfer since 8.0);
#   4. the same clippy for aarch64-unknown-linux-gnu (the Jetson), the shim compiled by
#      aarch64-linux-gnu-g++ against the bullseye sysroot of cross/build.sh (skipped with a
#      message when that sysroot or cross compiler is missing).
#
#   TENSORRT_ROOT=<dir with include/NvInferRuntime.h> cross/trt-shim-check.sh
#
# TensorRT headers: on a Jetson, JetPack's /usr/include/aarch64-linux-gnu (pass a folder
# whose include/ links there); elsewhere the include/ folder of NVIDIA's open-source
# TensorRT repository at the release in question (8.5.2 = JetPack 5.1, commit bba31b10 on
# its release/8.5 branch), which is not reachable from CI. CUDA's runtime headers, which
# TensorRT's include, come from NVIDIA's PyPI wheels (pinned below) when CUDA_ROOT is unset.
set -euo pipefail
cd "$(dirname "$0")/.."
die() { echo "cross/trt-shim-check.sh: $*" >&2; exit 1; }

[ -n "${TENSORRT_ROOT:-}" ] || die "set TENSORRT_ROOT to a folder with include/NvInferRuntime.h"
[ -f "$TENSORRT_ROOT/include/NvInferRuntime.h" ] || die "$TENSORRT_ROOT/include/NvInferRuntime.h missing"
TRT_VERSION=$(sed -n 's/^#define NV_TENSORRT_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\).*/\2/p' \
    "$TENSORRT_ROOT/include/NvInferVersion.h" | paste -sd.)

if [ -z "${CUDA_ROOT:-}" ]; then
    CUDA_ROOT=$PWD/.deps/cuda-headers
    if [ ! -f "$CUDA_ROOT/include/crt/host_defines.h" ]; then
        mkdir -p .deps/wheels "$CUDA_ROOT/include"
        for spec in \
            "nvidia-cuda-runtime-cu11 nvidia_cuda_runtime_cu11 cuda_runtime cc768314ae58d2641f07eac350f40f99dcb35719c4faff4bc458a7cd2b119e31" \
            "nvidia-cuda-nvcc-cu11 nvidia_cuda_nvcc_cu11 cuda_nvcc 34f6dfc39a85a5a6f57dfc5ed145a9f903c3f6520a86e7d24b548894769f5e48"; do
            read -r pkg file dir sha <<< "$spec"
            whl=.deps/wheels/$file-11.7.99-py3-none-manylinux1_x86_64.whl
            [ -f "$whl" ] || python3 -m pip download --quiet --no-deps --only-binary=:all: \
                --platform manylinux1_x86_64 --python-version 3.11 -d .deps/wheels "$pkg==11.7.99"
            echo "$sha  $whl" | sha256sum -c --quiet || die "$whl does not have the pinned sha256"
            rm -rf "$CUDA_ROOT/unpack" && unzip -q -o "$whl" "nvidia/$dir/include/*" -d "$CUDA_ROOT/unpack"
            cp -rn "$CUDA_ROOT/unpack/nvidia/$dir/include/." "$CUDA_ROOT/include/"
        done
        rm -rf "$CUDA_ROOT/unpack"
    fi
fi
export TENSORRT_ROOT CUDA_ROOT

echo "1. g++ -Werror on the shim against TensorRT $TRT_VERSION headers"
g++ -std=c++14 -Wall -Wextra -Werror -fsyntax-only -isystem "$TENSORRT_ROOT/include" \
    -isystem "$CUDA_ROOT/include" src/engine/tensorrt/shim.cpp

# cargo clippy --features tensorrt with extra ARGS; fails unless build.rs built the shim.
clippy_with_shim() {
    local out
    out=$(cargo clippy --features tensorrt --message-format short "$@" -- -D warnings 2>&1) \
        || { echo "$out" >&2; die "clippy $* failed"; }
    ! grep -q "shim is not built" <<< "$out" || { echo "$out" >&2; die "build.rs did not build the shim ($*)"; }
}

echo "2. cargo clippy --features tensorrt with the shim compiled in"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target-trtcheck}
clippy_with_shim --all-targets

echo "3. FFI symbols"
OBJ=$(ls -t "$CARGO_TARGET_DIR"/debug/build/stylerd-*/out/*shim.o | head -1)
nm --defined-only "$OBJ" | grep -o 'stylerd_trt_[a-z0-9_]*' | sort -u > "$CARGO_TARGET_DIR/shim-defined.txt"
grep -o 'fn stylerd_trt_[a-z0-9_]*' src/engine/tensorrt/shim.rs | cut -c4- | sort -u \
    > "$CARGO_TARGET_DIR/shim-declared.txt"
diff "$CARGO_TARGET_DIR/shim-declared.txt" "$CARGO_TARGET_DIR/shim-defined.txt" \
    || die "shim.rs declares functions shim.cpp does not define (< lines above)"
NEEDS=$(nm -u "$OBJ" | awk '{print $2}' | grep -v '^_Z\|^__\|^_GLOBAL\|^_Unwind\|^mem\|^str\|^pthread_' | sort -u | paste -sd' ')
[ "$NEEDS" = "createInferRuntime_INTERNAL getInferLibVersion" ] \
    || die "the shim needs unexpected C symbols: $NEEDS"

echo "4. the same for aarch64-unknown-linux-gnu"
SYSROOT=${SYSROOT:-$PWD/.deps/sysroot-bullseye-arm64}
ARM=skipped
if [ ! -f "$SYSROOT/.done" ] || ! command -v aarch64-linux-gnu-g++ >/dev/null; then
    echo "   skipped: run make cross first and apt-get install g++-aarch64-linux-gnu"
else
    (. cross/env.sh && clippy_with_shim --target aarch64-unknown-linux-gnu)
    OBJ=$(ls -t "$CARGO_TARGET_DIR"/aarch64-unknown-linux-gnu/debug/build/stylerd-*/out/*shim.o | head -1)
    file "$OBJ" | grep -q "ARM aarch64" || die "$OBJ is not an aarch64 object"
    ARM=ok
fi
echo "ok: shim compiles against TensorRT $TRT_VERSION; $(wc -l < "$CARGO_TARGET_DIR/shim-declared.txt") FFI functions match; libnvinfer symbols: $NEEDS; aarch64: $ARM"
