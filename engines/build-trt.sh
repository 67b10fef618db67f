#!/bin/bash
# Builds a TensorRT engine (.plan) from an ONNX model, on the Jetson itself: plans only run
# on the TensorRT version and GPU that built them (docs/design.md), so the file name carries both,
# e.g. engines/multistyle26.640x360.fp16.trt8.5.2.xavier.plan, and a side-car .plan.toml
# records them for the daemon's check (src/engine/tensorrt/mod.rs, PlanInfo).
#
#   engines/build-trt.sh [--config stylerd.toml] [--model multistyle26] [--size 640x360]
#                        [--precision fp16|int8|fp32] [--dynamic MINxMIN:OPTxOPT:MAXxMAX]
#                        [--dla N] [--trtexec PATH] [--models-dir engines] [--out-dir engines]
#
# --config takes the model, size and models-dir from the daemon's [engine] section (flags
# given on the command line win), so the plan matches what the daemon will ask for.
#
# --precision int8 builds from the explicitly quantized QDQ model (<model>-int8.onnx, from
# `stylerd quantize`): no calibration cache, so the same ONNX works on any Jetson.
# --dla N runs on DLA core N with GPU fallback for layers the DLA lacks (DLA: FP16/INT8,
# fixed sizes only). The timing cache is kept beside the plans (timing.trt<ver>.<dev>.cache)
# so rebuilding is fast. Needs trtexec (JetPack: /usr/src/tensorrt/bin/trtexec).
# --models-dir is where <model>.onnx and <model>.toml are (after `make install`:
# /usr/local/share/stylerd/engines). tests/build_trt.rs runs this script against a
# stand-in trtexec that prints TensorRT 8.5.2's log lines (tests/data/trtexec/trtexec).
set -euo pipefail

MODEL=
PRECISION=fp16
SIZE=
DYNAMIC=
DLA=
OUT_DIR=engines
MODELS_DIR=
CONFIG=
TRTEXEC=${TRTEXEC:-}
while [ $# -gt 0 ]; do
    case "$1" in
        --config) CONFIG=$2; shift 2 ;;
        --model) MODEL=$2; shift 2 ;;
        --precision) PRECISION=$2; shift 2 ;;
        --size) SIZE=$2; shift 2 ;;
        --dynamic) DYNAMIC=$2; shift 2 ;;
        --dla) DLA=$2; shift 2 ;;
        --out-dir) OUT_DIR=$2; shift 2 ;;
        --models-dir) MODELS_DIR=$2; shift 2 ;;
        --trtexec) TRTEXEC=$2; shift 2 ;;
        -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
        *) echo "build-trt.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

die() { echo "build-trt.sh: $*" >&2; exit 1; }

# A string key of the config's [engine] section (`size = "640x360"`), or nothing.
engine_key() {
    awk -v key="$1" '
        /^[[:space:]]*\[/ { section = $0; gsub(/[[:space:]]/, "", section) }
        section == "[engine]" && $1 == key && $2 == "=" {
            v = $3; gsub(/"/, "", v); print v; exit
        }' "$CONFIG"
}
if [ -n "$CONFIG" ]; then
    [ -f "$CONFIG" ] || die "config $CONFIG not found"
    [ -n "$MODEL" ] || MODEL=$(engine_key model)
    [ -n "$SIZE" ] || SIZE=$(engine_key size)
    [ -n "$MODELS_DIR" ] || MODELS_DIR=$(engine_key models-dir)
fi
MODEL=${MODEL:-multistyle26}
SIZE=${SIZE:-640x360}
MODELS_DIR=${MODELS_DIR:-engines}
[[ "$SIZE" =~ ^[0-9]+x[0-9]+$ ]] || die "size must be WIDTHxHEIGHT, not $SIZE"

if [ -z "$TRTEXEC" ]; then
    TRTEXEC=$(command -v trtexec || true)
    [ -z "$TRTEXEC" ] && [ -x /usr/src/tensorrt/bin/trtexec ] && TRTEXEC=/usr/src/tensorrt/bin/trtexec
fi
[ -n "$TRTEXEC" ] || die "trtexec not found: install JetPack's tensorrt package or pass --trtexec PATH"

case "$PRECISION" in
    fp16) ONNX=$MODELS_DIR/$MODEL.onnx; FLAGS=(--fp16) ;;
    int8) ONNX=$MODELS_DIR/$MODEL-int8.onnx; FLAGS=(--int8 --fp16)
          [ -f "$ONNX" ] || die "$ONNX missing: make it with 'stylerd quantize --model $MODEL --out $ONNX'" ;;
    fp32) ONNX=$MODELS_DIR/$MODEL.onnx; FLAGS=() ;;
    *) die "--precision must be fp16, int8 or fp32, not $PRECISION" ;;
esac
[ -f "$ONNX" ] || die "$ONNX missing: run 'make models' first"

# Input names from the manifest; the image input is [1,3,H,W] (NCHW models).
MANIFEST=$MODELS_DIR/$MODEL.toml
INPUT=$(sed -n 's/^input = "\(.*\)"/\1/p' "$MANIFEST")
[ -n "$INPUT" ] || die "$MANIFEST names no input"
dims() { local w=${1%x*} h=${1#*x}; echo "1x3x${h}x${w}"; }
pad4() { local w=${1%x*} h=${1#*x}; echo "$(( (w + 3) / 4 * 4 ))x$(( (h + 3) / 4 * 4 ))"; }
if [ -n "$DYNAMIC" ]; then
    [ -z "$DLA" ] || die "DLA has no dynamic shapes: drop --dynamic or --dla"
    IFS=: read -r MIN OPT MAX <<< "$DYNAMIC"
    SHAPES=(--minShapes="$INPUT:$(dims "$(pad4 "$MIN")")" --optShapes="$INPUT:$(dims "$(pad4 "$OPT")")"
            --maxShapes="$INPUT:$(dims "$(pad4 "$MAX")")")
    LABEL=dynamic
else
    # The daemon pads frames to the manifest's pad-multiple (4) before inference.
    SHAPES=(--shapes="$INPUT:$(dims "$(pad4 "$SIZE")")")
    LABEL=$SIZE
fi
if [ -n "$DLA" ]; then
    FLAGS+=(--useDLACore="$DLA" --allowGPUFallback)
    LABEL=$LABEL.dla$DLA
fi

# trtexec's banner, "&&&& RUNNING TensorRT.trtexec [TensorRT v8502] # ...", carries the
# version as getInferLibVersion() encodes it: major*1000 + minor*100 + patch up to TensorRT 9,
# major*10000 + minor*100 + patch from 10 on (v100300 is 10.3.0). The build log's
# "TensorRT version: 8.5.2" line, when present, wins below.
decode_version() {
    local c=$1
    if [ "$c" -ge 100000 ]; then echo "$((c / 10000)).$((c / 100 % 100)).$((c % 100))"
    else echo "$((c / 1000)).$((c / 100 % 10)).$((c % 100))"; fi
}
CODE=$("$TRTEXEC" --help 2>&1 | sed -n 's/.*\[TensorRT v\([0-9]\+\)\].*/\1/p' | head -1 || true)
VERSION=
[ -z "$CODE" ] || VERSION=$(decode_version "$CODE")
mkdir -p "$OUT_DIR"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
LOG=$TMP/trtexec.log
# Reuse the timing cache of this TensorRT version (one GPU per Jetson); else start one.
CACHE=
[ -z "$VERSION" ] || CACHE=$(ls "$OUT_DIR"/timing.trt"$VERSION".*.cache 2>/dev/null | head -1 || true)
[ -n "$CACHE" ] || CACHE=$TMP/timing.cache
echo "building $ONNX ($PRECISION, $LABEL) with $TRTEXEC"
"$TRTEXEC" --onnx="$ONNX" "${FLAGS[@]}" "${SHAPES[@]}" \
    --inputIOFormats=fp32:chw,fp32:chw --outputIOFormats=fp32:chw \
    --timingCacheFile="$CACHE" --saveEngine="$TMP/out.plan" --skipInference 2>&1 | tee "$LOG" >/dev/null \
    || { tail -20 "$LOG" >&2; die "trtexec failed (full log above)"; }
LOGGED=$(sed -n 's/.*TensorRT version: \([0-9.]*\).*/\1/p' "$LOG" | head -1 | cut -d. -f1-3)
[ -z "$LOGGED" ] || VERSION=$LOGGED
DEVICE=$(sed -n 's/.*Selected Device: \(.*\)$/\1/p' "$LOG" | head -1)
CC=$(sed -n 's/.*Compute Capability: \([0-9.]*\).*/\1/p' "$LOG" | head -1)
[ -n "$VERSION" ] && [ -n "$DEVICE" ] || die "could not read the TensorRT version or device from trtexec's log"
# Same slug as src/engine/tensorrt/mod.rs device_slug(): "NVIDIA H100 80GB" -> h100-80gb.
SLUG=$(echo "$DEVICE" | tr 'A-Z' 'a-z' | sed 's/^nvidia //; s/[^a-z0-9]\+/-/g; s/^-//; s/-$//')
PLAN=$OUT_DIR/$MODEL.$LABEL.$PRECISION.trt$VERSION.$SLUG.plan
[ -s "$TMP/out.plan" ] || die "trtexec reported success but wrote no plan"
mv "$TMP/out.plan" "$PLAN"
[ "$CACHE" != "$TMP/timing.cache" ] || mv "$CACHE" "$OUT_DIR/timing.trt$VERSION.$SLUG.cache"
cat > "$PLAN.toml" <<TOML
# Written by engines/build-trt.sh; the daemon refuses the plan on another TensorRT or GPU.
tensorrt = "$VERSION"
device = "$DEVICE"
compute-capability = "$CC"
precision = "$PRECISION"
model = "$MODEL"
onnx = "$(basename "$ONNX")"
onnx-sha256 = "$(sha256sum "$ONNX" | cut -d' ' -f1)"
shape = "$LABEL"
TOML
echo "$PLAN"
