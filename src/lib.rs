//! stylerd: real-time neural style transfer for edge boxes.
//!
//! The crate is the daemon's library; `src/main.rs` only parses the command line and calls
//! [`cli::run`]. Dependencies point one way, from pure logic at the bottom to the daemon on
//! top, and no module reaches upwards.
//!
//! # Layout
//! - [`frame`]: RGB frames and the tensor conversions around the engine (pure).
//! - [`style`]: style specs such as `7` or `3:0.5,12:0.5` (pure).
//! - [`quality`]: PSNR and SSIM (pure).
//! - [`stabilize`]: temporal stabilization and the flicker metric (pure).
//! - [`mix`]: style strength and colour preservation (pure).
//! - [`governor`]: the budget governor's ladder and decisions (pure).
//! - [`model`]: model manifests (`engines/<name>.toml`) and their checks.
//! - [`config`]: the one TOML config file, validated before anything starts.
//! - [`engine`]: the `Engine` trait and its backends (ONNX Runtime).
//! - [`monitor`]: latency histograms, power rails, CPU/GPU/memory, the budget verdict.
//! - [`notify`]: systemd `sd_notify` over its datagram socket.
//! - [`media`]: GStreamer: the capture pipeline, the outputs (file, RTSP, snapshots, null),
//!   the RTSP servers and their bus errors.
//! - [`control`]: the status document and the socket protocol (server and client).
//! - [`daemon`]: the frame and monitor threads tying source, engine and sink together.
//! - [`tools`]: offline commands: `stylerd bench`, `quantize`, `report`.
//! - [`cli`]: the command line.
//! - [`heap`]: keeps freed memory in the heap (no page faults per frame with glibc).

pub mod cli;
pub mod config;
pub mod control;
pub mod daemon;
pub mod engine;
pub mod frame;
pub mod governor;
pub mod heap;
pub mod http;
pub mod media;
pub mod mix;
pub mod model;
pub mod monitor;
pub mod notify;
pub mod quality;
pub mod stabilize;
pub mod style;
pub mod tools;
