#!/bin/bash
# Runs the aarch64 stylerd (from cross/build.sh) under qemu-aarch64 against the bullseye
# sysroot, with ONNX Runtime from the official aarch64 PyPI wheel:
#   1. `stylerd stylize` on a test picture must match the x86_64 build within 1/255;
#   2. the daemon must process a few frames from the built-in test source.
# Needs qemu-user (Debian), the aarch64 build, and the x86_64 build (target/release/stylerd).
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=aarch64-unknown-linux-gnu
SYSROOT=${SYSROOT:-$PWD/.deps/sysroot-bullseye-arm64}
BIN=${CARGO_TARGET_DIR:-target}/$TARGET/release/stylerd
ORT_VERSION=1.31.1
ORT_DIR=.deps/onnxruntime-aarch64
ORT_LIB=$ORT_DIR/libonnxruntime.so.$ORT_VERSION
die() { echo "cross/test.sh: $*" >&2; exit 1; }

[ -x "$BIN" ] || die "$BIN missing: run make cross first"
[ -x target/release/stylerd ] || die "target/release/stylerd missing: run make build first"
QEMU=$(command -v qemu-aarch64 || command -v qemu-aarch64-static || true)
[ -n "$QEMU" ] || die "qemu-aarch64 missing: apt-get install qemu-user"
if [ ! -f "$ORT_LIB" ]; then
    mkdir -p "$ORT_DIR" .deps/wheels
    python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 \
        --platform manylinux_2_27_aarch64 --platform manylinux_2_28_aarch64 \
        -d .deps/wheels "onnxruntime==$ORT_VERSION"
    unzip -o -q -j .deps/wheels/onnxruntime-$ORT_VERSION-*aarch64.whl \
        "onnxruntime/capi/libonnxruntime.so.$ORT_VERSION" -d "$ORT_DIR"
fi

OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
IMG=${IMG:-.deps/train-eval/chelsea.png}
[ -f "$IMG" ] || die "$IMG missing: run make deps"
ORT_DYLIB_PATH=$PWD/.deps/onnxruntime/libonnxruntime.so.$ORT_VERSION \
    target/release/stylerd stylize --model multistyle26 --style 3 "$IMG" "$OUT/x86.png"
ORT_DYLIB_PATH=$PWD/$ORT_LIB QEMU_LD_PREFIX=$SYSROOT \
    "$QEMU" -L "$SYSROOT" "$BIN" stylize --model multistyle26 --style 3 "$IMG" "$OUT/arm.png"
.deps/venv/bin/python - "$OUT/x86.png" "$OUT/arm.png" <<'PY'
import sys
import numpy as np
from PIL import Image
a, b = (np.asarray(Image.open(p), dtype=np.int16) for p in sys.argv[1:3])
d = int(np.abs(a - b).max())
print(f"aarch64 vs x86_64 stylize: max difference {d}/255")
sys.exit(0 if d <= 1 else 1)
PY
GST_PLUGIN_SYSTEM_PATH=$SYSROOT/usr/lib/aarch64-linux-gnu/gstreamer-1.0 GST_REGISTRY_FORK=no \
GST_REGISTRY=$OUT/registry.bin \
ORT_DYLIB_PATH=$PWD/$ORT_LIB QEMU_LD_PREFIX=$SYSROOT \
    "$QEMU" -L "$SYSROOT" "$BIN" run --source 'test://?num-buffers=20' --output null:// \
    --size 128x128 --every-frame --frames 5 --report > "$OUT/report.json"
grep -q '"processed"' "$OUT/report.json" || die "the aarch64 daemon processed no frame"
echo "ok: aarch64 daemon processed frames under qemu"
