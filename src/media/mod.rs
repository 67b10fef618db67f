//! GStreamer, in one folder: capture, outputs, RTSP servers and the bus errors they share.
//!
//! # Layout
//! - [`source`]: the capture pipeline (RTSP, file, V4L2, test pattern).
//! - [`sink`]: the output pipeline (file recording, RTSP, snapshots, null).
//! - [`rtsp`]: RTSP servers (the stylized output and the built-in test camera).
//! - [`bus`]: [`bus::BusError`], an error message from a pipeline's bus as data.

pub mod bus;
pub mod rtsp;
pub mod sink;
pub mod source;
