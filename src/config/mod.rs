//! The one TOML config file, and the URIs in it.
//!
//! Everything the daemon does is set here (`systemd/stylerd.toml` is the default); the
//! command line only overrides single values for one run. Keys are kebab-case, unknown keys
//! are refused, defaults live in `default_*` functions, and [`Config::check`] rejects
//! impossible values before anything starts. Pure parsing: no GStreamer, no files opened
//! beyond the config itself.
//!
//! # Layout
//! - `check`: [`Config::load`] and [`Config::check`], the rules across values.
//! - [`edit`]: writing a style change back into the file (comments kept, atomic).
//! - [`uri`]: source and output URIs and `WIDTHxHEIGHT` sizes.

use std::path::PathBuf;

use serde::Deserialize;
use thiserror::Error;

pub use self::http::HttpConfig;
pub use self::uri::{OutputUri, Size, SourceUri};
use crate::governor::LadderEntry;
use crate::style::StyleSpec;

mod check;
pub mod edit;
mod http;
mod uri;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is invalid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config value {key} is invalid: {message}")]
    Value { key: &'static str, message: String },
    #[error("cannot save the config file {path}: {message}")]
    Save { path: PathBuf, message: String },
}

fn bad(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Value {
        key,
        message: message.into(),
    }
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub source: SourceConfig,
    #[serde(default)]
    pub engine: EngineConfig,
    #[serde(default)]
    pub output: OutputConfig,
    #[serde(default)]
    pub control: ControlConfig,
    #[serde(default)]
    pub monitor: MonitorConfig,
    #[serde(default)]
    pub governor: GovernorConfig,
    #[serde(default)]
    pub stabilizer: StabilizerConfig,
    #[serde(default)]
    pub http: HttpConfig,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceMode {
    /// Keep only the newest frame; count the ones dropped (cameras).
    Live,
    /// Process every frame, as fast as the engine allows (files, tests, benchmarks).
    EveryFrame,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnEos {
    Stop,
    Loop,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SourceConfig {
    #[serde(default)]
    pub uri: SourceUri,
    /// `live` or `every-frame`; unset = every-frame for `file://`, live otherwise (see
    /// [`SourceConfig::mode`]).
    #[serde(default)]
    pub mode: Option<SourceMode>,
    /// rtspsrc jitter-buffer latency.
    #[serde(default = "default_rtsp_latency_ms")]
    pub rtsp_latency_ms: u32,
    /// A live source silent this long is treated as lost.
    #[serde(default = "default_no_frame_timeout_s")]
    pub no_frame_timeout_s: f64,
    /// What a file source does at its end.
    #[serde(default = "default_on_eos")]
    pub on_eos: OnEos,
}

fn default_rtsp_latency_ms() -> u32 {
    100
}
fn default_no_frame_timeout_s() -> f64 {
    3.0
}
fn default_on_eos() -> OnEos {
    OnEos::Stop
}

impl Default for SourceConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults parse")
    }
}

impl SourceConfig {
    /// The mode in force: the configured one, else every-frame for files (read whole)
    /// and live for cameras and test patterns.
    pub fn mode(&self) -> SourceMode {
        self.mode.unwrap_or(match self.uri {
            SourceUri::File(_) => SourceMode::EveryFrame,
            _ => SourceMode::Live,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    Onnx,
    Tensorrt,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct EngineConfig {
    #[serde(default = "default_backend")]
    pub backend: Backend,
    #[serde(default = "default_models_dir")]
    pub models_dir: PathBuf,
    #[serde(default = "default_model")]
    pub model: String,
    #[serde(default = "default_style")]
    pub style: StyleSpec,
    /// Mix of stylized and original, 0..1 (1 = fully stylized).
    #[serde(default = "default_strength")]
    pub strength: f32,
    /// Keep the original's colours (BT.601 Cb/Cr), take the stylized luminance.
    #[serde(default)]
    pub preserve_color: bool,
    /// Inference size; frames are scaled to it.
    #[serde(default = "default_size")]
    pub size: Size,
    /// ONNX Runtime intra-op threads.
    #[serde(default = "default_threads")]
    pub threads: usize,
    /// How long (microseconds) an idle ONNX Runtime worker thread spins for new work
    /// before it sleeps; 0 = never spins. ONNX Runtime's own default spins for longer than
    /// the gap between a live stream's frames, so its worker never sleeps and holds a whole
    /// core (measured: 97 % of one with a 19 ms student at 30 fps, 59 % at 1000 us with the
    /// same latency).
    #[serde(default = "default_spin_us")]
    pub spin_us: u64,
    /// Path of libonnxruntime.so; found automatically when unset.
    #[serde(default)]
    pub onnxruntime: Option<PathBuf>,
    /// TensorRT engine file, for `backend = "tensorrt"`.
    #[serde(default)]
    pub plan: Option<PathBuf>,
}

fn default_backend() -> Backend {
    Backend::Onnx
}
fn default_models_dir() -> PathBuf {
    "engines".into()
}
fn default_model() -> String {
    "multistyle26".into()
}
fn default_style() -> StyleSpec {
    StyleSpec::parse("0").expect("style 0 parses")
}
fn default_strength() -> f32 {
    1.0
}
fn default_size() -> Size {
    Size {
        width: 640,
        height: 360,
    }
}
fn default_threads() -> usize {
    2
}
fn default_spin_us() -> u64 {
    1000
}

impl Default for EngineConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults parse")
    }
}

impl EngineConfig {
    /// The strength and colour settings.
    pub fn mix(&self) -> crate::mix::Mix {
        crate::mix::Mix {
            strength: self.strength,
            preserve_color: self.preserve_color,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Encoder {
    /// Software H.264 (x264enc, tune=zerolatency).
    X264,
    /// Jetson hardware H.264 (nvv4l2h264enc).
    Nvv4l2h264,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct OutputConfig {
    /// `file://PATH` (Matroska segments), `rtsp://HOST:PORT/MOUNT`, `null://`.
    #[serde(default = "default_output_uris")]
    pub uris: Vec<OutputUri>,
    #[serde(default = "default_encoder")]
    pub encoder: Encoder,
    #[serde(default = "default_bitrate_kbps")]
    pub bitrate_kbps: u32,
    /// Nominal output frame rate (keyframe spacing and caps); timestamps are real times.
    #[serde(default = "default_fps")]
    pub fps: u32,
    /// A file segment is closed and a new one started this often.
    #[serde(default = "default_segment_s")]
    pub segment_s: u32,
    /// A segment is also closed at this size in MiB; 0 = by time only.
    #[serde(default)]
    pub segment_mb: u64,
    /// Oldest segments of the same recording name are deleted once all of them together
    /// pass this many MiB; 0 = never delete.
    #[serde(default)]
    pub max_disk_mb: u64,
    /// PNG snapshots of the stylized output go here; unset = no snapshots.
    #[serde(default)]
    pub snapshot_dir: Option<PathBuf>,
    /// Seconds between periodic snapshots; 0 = only on request.
    #[serde(default)]
    pub snapshot_every_s: f64,
    /// At most this many RTSP viewers at once; more are answered 503.
    #[serde(default = "default_rtsp_max_clients")]
    pub rtsp_max_clients: u32,
}

fn default_output_uris() -> Vec<OutputUri> {
    vec![OutputUri::Null]
}
fn default_encoder() -> Encoder {
    Encoder::X264
}
fn default_bitrate_kbps() -> u32 {
    2000
}
fn default_fps() -> u32 {
    30
}
fn default_segment_s() -> u32 {
    300
}
fn default_rtsp_max_clients() -> u32 {
    8
}

impl Default for OutputConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults parse")
    }
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ControlConfig {
    /// Status/control socket; `$RUNTIME_DIRECTORY` (systemd) or `$XDG_RUNTIME_DIR`
    /// `/stylerd.sock` when unset.
    #[serde(default)]
    pub socket: Option<PathBuf>,
    /// Accept control commands (set-style, pause, resume, snapshot) besides status. The
    /// socket is read-only unless this is set.
    #[serde(default)]
    pub allow_control: bool,
    /// Serve the status as Prometheus text on 127.0.0.1:PORT/metrics; unset = off.
    #[serde(default)]
    pub metrics_port: Option<u16>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct MonitorConfig {
    /// Where `/sys` is read from (fixture trees in tests).
    #[serde(default = "default_sysfs_root")]
    pub sysfs_root: PathBuf,
    /// Seconds between progress lines on the terminal/journal.
    #[serde(default = "default_progress_every_s")]
    pub progress_every_s: f64,
    /// Budget: glass-to-glass p95 in milliseconds (docs/design.md: 30 ms per frame).
    #[serde(default = "default_budget_latency_ms")]
    pub budget_latency_ms: f64,
    /// Budget: mean board power in watts (Jetson AGX Xavier 15 W nvpmodel mode).
    #[serde(default = "default_budget_power_w")]
    pub budget_power_w: f64,
}

fn default_sysfs_root() -> PathBuf {
    "/sys".into()
}
fn default_progress_every_s() -> f64 {
    1.0
}
fn default_budget_latency_ms() -> f64 {
    30.0
}
fn default_budget_power_w() -> f64 {
    15.0
}

impl Default for MonitorConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults parse")
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct GovernorConfig {
    /// Adapt the inference size and frame skipping to the budget; unset = on, except for
    /// an every-frame source, which keeps its full size unless this is set to true.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Hold this rung (0 = full size) instead of adapting.
    #[serde(default)]
    pub pin: Option<usize>,
    /// Rungs from most to least work, each `WxH` (the configured model) or `MODEL@WxH`;
    /// default: engine.size, 80 %, 60 % (with a student of the running style: the
    /// configured model at engine.size, then the student at 100, 80 and 60 %).
    #[serde(default)]
    pub ladder: Option<Vec<LadderEntry>>,
    /// Let the governor run a student of the running style (a model whose manifest says
    /// `student-of` the configured model), or else a student of all its styles
    /// (`student-style = "all"`, fed the running style vector), in place of its teacher.
    #[serde(default = "default_true")]
    pub students: bool,
}

fn default_true() -> bool {
    true
}

impl Default for GovernorConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults parse")
    }
}

impl Config {
    /// Whether the governor adapts: as configured, else off for every-frame sources (a
    /// file turned into a stylized file keeps every frame at full size) and on otherwise.
    pub fn governor_enabled(&self) -> bool {
        self.governor
            .enabled
            .unwrap_or(self.source.mode() == SourceMode::Live)
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct StabilizerConfig {
    /// Temporal stabilization of live video (less flicker where the picture is still).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Weight of the previous output where the input is still, 0 to 0.95.
    #[serde(default = "default_stabilizer_strength")]
    pub strength: f32,
    /// Input luma change (0-255) treated as motion, where blending stops.
    #[serde(default = "default_stabilizer_threshold")]
    pub threshold: f32,
}

fn default_stabilizer_strength() -> f32 {
    0.6
}
fn default_stabilizer_threshold() -> f32 {
    12.0
}

impl Default for StabilizerConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults parse")
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        let c: Config = toml::from_str(text).map_err(|e| e.message().to_string())?;
        c.check().map_err(|e| e.to_string())?;
        Ok(c)
    }

    #[test]
    fn defaults_are_valid() {
        let c = parse("").unwrap();
        assert_eq!(
            c.engine.size,
            Size {
                width: 640,
                height: 360
            }
        );
        assert_eq!(
            c.source.uri,
            SourceUri::Test {
                pattern: "ball".into(),
                num_buffers: None,
                fps: 30
            }
        );
        assert_eq!(c.output.uris, vec![OutputUri::Null]);
        assert_eq!(c.engine.style.to_string(), "0");
        assert_eq!((c.engine.strength, c.engine.preserve_color), (1.0, false));
        assert!(c.governor_enabled());
    }

    #[test]
    fn files_are_read_whole_unless_asked_otherwise() {
        let c = parse("[source]\nuri = \"file:///tmp/clip.mp4\"").unwrap();
        assert_eq!(c.source.mode(), SourceMode::EveryFrame);
        assert!(!c.governor_enabled());
        let c = parse("[source]\nuri = \"file:///tmp/clip.mp4\"\nmode = \"live\"").unwrap();
        assert_eq!(c.source.mode(), SourceMode::Live);
        assert!(c.governor_enabled());
        let c = parse("[source]\nuri = \"file:///c.mp4\"\n[governor]\nenabled = true").unwrap();
        assert!(c.governor_enabled());
        let c = parse("[source]\nuri = \"rtsp://cam/x\"").unwrap();
        assert_eq!(c.source.mode(), SourceMode::Live);
    }

    #[test]
    fn the_shipped_config_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/stylerd.toml");
        Config::load(&path).unwrap().check().unwrap();
    }

    #[test]
    fn unknown_keys_are_refused() {
        let e = parse("[engine]\nmodle = \"x\"\n").unwrap_err();
        assert!(e.contains("unknown field `modle`"), "{e}");
        let e = parse("colour = 1\n").unwrap_err();
        assert!(e.contains("unknown field `colour`"), "{e}");
    }

    #[test]
    fn impossible_values_are_refused() {
        for (text, want) in [
            ("[engine]\nthreads = 0", "engine.threads"),
            ("[engine]\nspin-us = 2000000", "engine.spin-us"),
            ("[engine]\nsize = \"641x360\"", "even sides"),
            ("[engine]\nsize = \"big\"", "WIDTHxHEIGHT"),
            ("[engine]\nstyle = \"3:x\"", "bad style spec \"3:x\""),
            ("[source]\nuri = \"http://cam\"", "not a supported URI"),
            ("[source]\nuri = \"v4l2://video0\"", "/dev/video0"),
            ("[source]\nuri = \"test://?bogus=1\"", "bad parameter"),
            ("[output]\nuris = []", "at least one output"),
            ("[output]\nuris = [\"rtsp://h:99999/x\"]", "bad port"),
            ("[output]\nsnapshot-every-s = 5.0", "snapshot-dir"),
            ("[output]\nrtsp-max-clients = 0", "rtsp-max-clients"),
            ("[engine]\nbackend = \"tensorrt\"", "plan"),
            ("[engine]\nstrength = 1.5", "engine.strength"),
            ("[engine]\nstrength = -0.1", "from 0 to 1"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
    }
}
