#!/bin/bash
# Cross-builds stylerd for the Jetson (aarch64, JetPack 5: glibc 2.31, GStreamer 1.16)
# against a sysroot assembled from Debian 11 (bullseye) arm64 packages, then checks with
# objdump that nothing needs glibc > 2.31 or a GStreamer symbol newer than 1.16.
#
#   cross/build.sh            -> target/aarch64-unknown-linux-gnu/release/stylerd
#   SYSROOT=... cross/build.sh   reuse a sysroot; CARGO_FEATURES=tensorrt with
#                                TENSORRT_ROOT=<JetPack include+lib copy> for the TRT engine
#
# Needs: the Rust aarch64-unknown-linux-gnu target (rustup target add), gcc-aarch64-linux-gnu
# and binutils-aarch64-linux-gnu (Debian), apt-get and dpkg-deb, python3. See cross/README.md
# for what was and was not run on our machines.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=aarch64-unknown-linux-gnu
SYSROOT=${SYSROOT:-$PWD/.deps/sysroot-bullseye-arm64}
APTDIR=$PWD/.deps/apt-bullseye-arm64
CARGO=${CARGO:-cargo}
# JetPack 5 (Ubuntu 20.04) has glibc 2.31; bullseye has the same.
MAX_GLIBC=2.31
MAX_GST=1.16
# Link-time packages (dev files) and the runtime libraries they pull in; kept explicit so the
# sysroot is reproducible (no dependency solver across architectures).
PACKAGES="libc6 libc6-dev linux-libc-dev libgcc-s1 libgcc-10-dev libstdc++6
  libglib2.0-0 libglib2.0-dev libffi7 libpcre3 zlib1g libmount1 libblkid1 libselinux1 libpcre2-8-0
  libgstreamer1.0-0 libgstreamer1.0-dev libgstreamer-plugins-base1.0-0
  libgstreamer-plugins-base1.0-dev libgstrtspserver-1.0-0 libgstrtspserver-1.0-dev
  liborc-0.4-0 libunwind8 libdw1 libelf1 liblzma5 libbz2-1.0 libzstd1
  libpcre3-dev libffi-dev zlib1g-dev libmount-dev libblkid-dev libselinux1-dev libsepol1-dev
  libpcre2-dev libunwind-dev libdw-dev libelf-dev liborc-0.4-dev liblzma-dev
  gstreamer1.0-plugins-base"

die() { echo "cross/build.sh: $*" >&2; exit 1; }

if ! rustup target list --installed 2>/dev/null | grep -qx "$TARGET"; then
    rustup target add "$TARGET" 2>/dev/null \
        || die "the Rust target $TARGET is not installed and cannot be fetched here \
(rustup target add $TARGET needs network access to static.rust-lang.org); build on the \
Jetson instead (cargo build --release) or on a machine with the target"
fi
command -v aarch64-linux-gnu-gcc >/dev/null \
    || die "aarch64-linux-gnu-gcc missing: apt-get install gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu"

# (Re)assemble when the package list changed; .done records the list it was made from.
if [ "$(cat "$SYSROOT/.done" 2>/dev/null)" != "$(echo $PACKAGES)" ]; then
    echo "assembling the bullseye arm64 sysroot in $SYSROOT"
    mkdir -p "$APTDIR"/{lists/partial,archives/partial,etc} "$SYSROOT"
    echo "deb [arch=arm64] http://deb.debian.org/debian bullseye main" > "$APTDIR/etc/sources.list"
    APT=(-o Dir::State="$APTDIR" -o Dir::State::status=/dev/null -o Dir::Cache="$APTDIR"
         -o Dir::Etc::SourceList="$APTDIR/etc/sources.list" -o Dir::Etc::SourceParts=/dev/null
         -o APT::Architecture=arm64 -o APT::Architectures::=arm64 -o Debug::NoLocking=1)
    apt-get "${APT[@]}" update -qq
    (cd "$APTDIR/archives" && apt-get "${APT[@]}" download $(for p in $PACKAGES; do echo "$p:arm64"; done))
    for deb in "$APTDIR"/archives/*.deb; do dpkg-deb -x "$deb" "$SYSROOT"; done
    # Absolute symlinks (libfoo.so -> /lib/...) must point inside the sysroot.
    find "$SYSROOT" -type l | while read -r link; do
        t=$(readlink "$link")
        case "$t" in /*) ln -sfn "$SYSROOT$t" "$link" ;; esac
    done
    echo $PACKAGES > "$SYSROOT/.done"
fi

# shellcheck source=cross/env.sh
. cross/env.sh
FEATURES=()
[ -z "${CARGO_FEATURES:-}" ] || FEATURES=(--features "$CARGO_FEATURES")
"$CARGO" build --release --target "$TARGET" --bin stylerd "${FEATURES[@]}"

BIN=${CARGO_TARGET_DIR:-target}/$TARGET/release/stylerd
echo "checking $BIN: glibc <= $MAX_GLIBC, GStreamer <= $MAX_GST"
GLIBC=$(aarch64-linux-gnu-objdump -T "$BIN" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
echo "newest glibc symbol version: $GLIBC"
[ "$(printf '%s\n%s\n' "$GLIBC" "$MAX_GLIBC" | sort -V | tail -1)" = "$MAX_GLIBC" ] \
    || die "$BIN needs glibc $GLIBC > $MAX_GLIBC: it will not start on JetPack 5"
# GStreamer has no symbol versions: look each undefined gst_* symbol up in the .gir files,
# whose version="1.x" attribute says which release introduced it.
aarch64-linux-gnu-objdump -T "$BIN" | awk '$3 == "*UND*" || $4 == "*UND*" {print $NF}' | grep '^gst_' \
    > "$SYSROOT/.gst-symbols" || true
python3 cross/gst-since.py "$MAX_GST" "$SYSROOT/usr/share/gir-1.0" < "$SYSROOT/.gst-symbols"
echo "ok: $BIN (glibc $GLIBC, GStreamer symbols <= $MAX_GST)"
