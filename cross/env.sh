# Sourced by cross/build.sh and cross/trt-shim-check.sh: the environment that makes cargo,
# pkg-config and cc build for aarch64-unknown-linux-gnu against $SYSROOT (the bullseye
# arm64 sysroot that cross/build.sh assembles).
: "${SYSROOT:?SYSROOT must be set}"
export PKG_CONFIG_ALLOW_CROSS=1
export PKG_CONFIG_SYSROOT_DIR=$SYSROOT
export PKG_CONFIG_LIBDIR=$SYSROOT/usr/lib/aarch64-linux-gnu/pkgconfig:$SYSROOT/usr/share/pkgconfig
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export CXX_aarch64_unknown_linux_gnu=aarch64-linux-gnu-g++
export CFLAGS_aarch64_unknown_linux_gnu="--sysroot=$SYSROOT"
export CXXFLAGS_aarch64_unknown_linux_gnu="--sysroot=$SYSROOT"
# The cross gcc (Debian 12) ships a libgcc_s built against glibc 2.36; bullseye's own
# libgcc_s (glibc 2.31) must win, so its folders go first on the search path.
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C link-arg=--sysroot=$SYSROOT \
-C link-arg=-L$SYSROOT/lib/aarch64-linux-gnu -C link-arg=-L$SYSROOT/usr/lib/gcc/aarch64-linux-gnu/10 \
-C link-arg=-Wl,-rpath-link,$SYSROOT/lib/aarch64-linux-gnu \
-C link-arg=-Wl,-rpath-link,$SYSROOT/usr/lib/aarch64-linux-gnu"
