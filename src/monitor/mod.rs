//! The monitor: what the frame path costs in time and power, and whether that fits the budget.
//!
//! Owns the pure measuring parts; the daemon's monitor thread owns the loop that feeds them
//! and publishes their snapshots. Nothing here touches GStreamer, the engine or tokio, and
//! nothing reads the clock on its own where a caller can pass `now` in, so tests are exact.
//!
//! # Layout
//! - [`latency`]: per-stage latency histograms (sliding window and since start) and fps.
//! - [`window`]: one histogram over a sliding window of seconds, and since start.
//! - [`power`]: board power from INA3221 (hwmon or iio) or RAPL, behind [`power::PowerSource`].
//! - [`system`]: CPU %, resident memory and GPU load.
//! - [`budget`]: the latency/power budget and its verdict, reported once per change.

pub mod budget;
pub mod latency;
pub mod power;
pub mod system;
pub mod window;
