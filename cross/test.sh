#!/bin/bash
# Runs the aarch64 stylerd (from cross/build.sh) under qemu-aarch64 against the bullseye
# sysroot, with ONNX Runtime from the official aarch64 PyPI wheel:
#   1. `stylerd stylize` on a test picture must match the x86_64 build within 1/255;
#   2. the daemon must process frames from the built-in test source with no engine error.
# Needs qemu-user (Debian), the aarch64 build, and an x86_64 build for the reference picture
# (X86_BIN, default target/debug/stylerd: ONNX Runtime does the arithmetic, so a debug and a
# release build give the same pixels).
#
# qemu-user hands the guest the x86 host's /proc/cpuinfo. ONNX Runtime's CPU probe (cpuinfo)
# finds no ARM core in it and dereferences NULL on its first session. qemu resolves absolute
# paths under its -L prefix first, so the guest is given $SYSROOT/proc/cpuinfo instead: one
# Jetson Xavier (Carmel) block per host CPU, in the kernel's format (cross/cpuinfo-carmel.txt).
# QEMU_CPU=cortex-a72 keeps the ISA to ARMv8.0 + NEON (no SVE, no dot product), which is
# what Carmel also lacks, so ONNX Runtime picks the kernels a Xavier would use.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=aarch64-unknown-linux-gnu
SYSROOT=${SYSROOT:-$PWD/.deps/sysroot-bullseye-arm64}
BIN=${CARGO_TARGET_DIR:-target}/$TARGET/release/stylerd
# ONNX Runtime for aarch64: `make cross-test` fetches it (make ARCH=aarch64 DEPS=.deps/aarch64
# ort: the same pinned wheel the Jetson's `make install` uses).
ORT_VERSION=${ORT_VERSION:-1.31.1}
ORT_LIB=${CROSS_ORT_LIB:-.deps/aarch64/onnxruntime/libonnxruntime.so.$ORT_VERSION}
die() { echo "cross/test.sh: $*" >&2; exit 1; }

[ -x "$BIN" ] || die "$BIN missing: run make cross first"
X86_BIN=${X86_BIN:-${CARGO_TARGET_DIR:-target}/debug/stylerd}
[ -x "$X86_BIN" ] || die "$X86_BIN missing: run cargo build --bin stylerd first"
QEMU=$(command -v qemu-aarch64 || command -v qemu-aarch64-static || true)
[ -n "$QEMU" ] || die "qemu-aarch64 missing: apt-get install qemu-user"
[ -f "$ORT_LIB" ] || die "$ORT_LIB missing: run make cross-test (it fetches the aarch64 wheel)"

OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
IMG=${IMG:-.deps/train-eval/chelsea.png}
[ -f "$IMG" ] || die "$IMG missing: run make deps"

# One cpuinfo block per CPU the host kernel lists as present (qemu passes /sys through).
mkdir -p "$SYSROOT/proc"
python3 - cross/cpuinfo-carmel.txt /sys/devices/system/cpu/present > "$SYSROOT/proc/cpuinfo" <<'PY'
import sys
block = open(sys.argv[1]).read()
cpus = []
for part in open(sys.argv[2]).read().strip().split(","):
    lo, _, hi = part.partition("-")
    cpus += range(int(lo), int(hi or lo) + 1)
for n in cpus:
    sys.stdout.write(block.replace("processor\t: 0\n", f"processor\t: {n}\n", 1))
PY
export QEMU_CPU=${QEMU_CPU:-cortex-a72} QEMU_LD_PREFIX=$SYSROOT
arm() { ORT_DYLIB_PATH=$PWD/$ORT_LIB "$QEMU" -L "$SYSROOT" "$BIN" "$@"; }

ORT_DYLIB_PATH=$PWD/.deps/onnxruntime/libonnxruntime.so.$ORT_VERSION \
    "$X86_BIN" stylize --model multistyle26 --style 3 "$IMG" "$OUT/x86.png"
start=$(date +%s.%N)
arm stylize --model multistyle26 --style 3 "$IMG" "$OUT/arm.png"
echo "aarch64 stylize under qemu took $(python3 -c "print(round($(date +%s.%N) - $start, 1))") s"
.deps/venv/bin/python - "$OUT/x86.png" "$OUT/arm.png" <<'PY'
import sys
import numpy as np
from PIL import Image
a, b = (np.asarray(Image.open(p), dtype=np.int16) for p in sys.argv[1:3])
if a.shape != b.shape:
    sys.exit(f"aarch64 output is {b.shape}, x86_64 output is {a.shape}")
d = np.abs(a - b)
print(f"aarch64 vs x86_64 stylize {a.shape[1]}x{a.shape[0]}: max difference {int(d.max())}/255, "
      f"{100 * (d > 0).mean():.4f} % of values differ")
sys.exit(0 if d.max() <= 1 else 1)
PY

# The daemon: only the plug-ins the test source needs, from the sysroot (the others there
# want libraries the sysroot does not carry and would only print load warnings).
mkdir -p "$OUT/plugins"
for p in coreelements app videotestsrc videoconvert videoscale videorate; do
    ln -s "$SYSROOT/usr/lib/aarch64-linux-gnu/gstreamer-1.0/libgst$p.so" "$OUT/plugins/"
done
FRAMES=5
GST_PLUGIN_SYSTEM_PATH=$OUT/plugins GST_REGISTRY_FORK=no GST_REGISTRY=$OUT/registry.bin \
    arm run --source 'test://?num-buffers=30' --output null:// --size 128x128 --every-frame \
    --frames $FRAMES --socket "$OUT/stylerd.sock" --report > "$OUT/report.json"
python3 - "$OUT/report.json" $FRAMES <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
want = int(sys.argv[2])
print(f"aarch64 daemon under qemu: processed {r['processed']}, engine errors "
      f"{r['engine_errors']}, infer p50 {r['infer_ms']['p50']:.0f} ms (emulated)")
if r["processed"] < want or r["engine_errors"] != 0:
    sys.exit(f"cross/test.sh: wanted {want} frames with no engine error")
PY
echo "ok: aarch64 stylize matches x86_64 and the aarch64 daemon processes frames under qemu"
