//! Offline commands: they use the engine and the media pipelines but are not part of the
//! running daemon, and nothing in the daemon uses them.
//!
//! # Layout
//! - [`bench`]: `stylerd bench` (engine vs the Python reference, end-to-end daemon runs,
//!   flicker).
//! - [`quantize`]: `stylerd quantize`, QDQ INT8 models from calibration frames, and their
//!   bench.
//! - [`report`]: `stylerd report`, the evaluation report (plots, style grid, Xavier estimate).
//! - [`video`]: `stylerd stylize clip.mp4 out.mkv`, a video file stylized frame by frame.

pub mod bench;
pub mod quantize;
pub mod report;
pub mod video;
