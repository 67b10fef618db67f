//! The status document and the control protocol spoken on the daemon's Unix socket.
//!
//! Requests are one JSON object per line (`{"cmd":"status"}`, `{"cmd":"set-style",
//! "style":"3:0.5,12:0.5"}`, `pause`, `resume`, `snapshot`); every answer is one JSON
//! object per line, errors as `{"error": "..."}`. This module owns the protocol's types,
//! used by the server and the client alike: [`Request`] (serde, tagged by `cmd`),
//! [`Control`] (a checked command for the frame loop), [`Reply`] and the versioned
//! [`Status`] document, which both serializes and deserializes. The socket itself lives in
//! [`server`] and the command-line client in [`client`]. No I/O here.
//!
//! # Layout
//! - [`server`]: the tokio Unix socket (limits, permissions, stale-socket handling).
//! - [`client`]: `stylerd status` and `stylerd ctl`.
//! - [`metrics`]: the optional Prometheus text endpoint on loopback.
//! - `request`: [`Request`] (the wire format) checked into [`Control`].

pub mod client;
pub mod metrics;
mod request;
pub mod server;

pub use request::{Control, Request, StyleArg, StyleChange};

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::engine::EngineInfo;
use crate::monitor::budget::Verdict;
use crate::monitor::latency::Percentiles;
use crate::monitor::power::PowerStatus;
use crate::monitor::system::SystemSnapshot;

/// Version of the status document; bumped when a field changes meaning or disappears.
pub const STATUS_VERSION: u32 = 1;

impl RunState {
    /// The name the status document uses.
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Starting => "starting",
            RunState::Running => "running",
            RunState::Reconnecting => "reconnecting",
            RunState::Paused => "paused",
            RunState::Stopping => "stopping",
        }
    }
}

/// The daemon's overall state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunState {
    #[default]
    Starting,
    Running,
    Reconnecting,
    Paused,
    Stopping,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SourceStatus {
    pub uri: String,
    /// "connecting", "streaming", "lost" or "ended".
    pub state: Cow<'static, str>,
    pub reconnects: u64,
    pub last_error: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StyleStatus {
    /// The spec in force, as given (`7`, `3:0.5,12:0.5`).
    pub spec: String,
    /// The model's style names.
    pub available: usize,
    /// Mix of stylized and original, 0..1.
    #[serde(default = "one")]
    pub strength: f32,
    /// The original's colours with the stylized luminance (BT.601 YCbCr).
    #[serde(default)]
    pub preserve_color: bool,
    /// Whether spec, strength or colour differ from the config file's (runtime changes
    /// not saved with `--save` are lost at restart); false when there is no file.
    #[serde(default)]
    pub differs_from_file: bool,
}

fn one() -> f32 {
    1.0
}

/// The config file in force (absent when the daemon runs without one).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ConfigStatus {
    pub path: String,
    /// When the running config was read (UTC, RFC 3339).
    pub loaded_at: String,
    /// sha256 of the file as read then.
    pub sha256: String,
    /// Why the last reload was refused; cleared by the next good one.
    pub reload_error: Option<String>,
    /// Good reloads since start.
    pub reloads: u64,
}

/// Progress through a finite source (a file), in the current pass.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct ProgressStatus {
    pub frames_done: u64,
    /// Frames in the file (duration x frame rate), when the container says.
    pub frames_total: Option<u64>,
    /// Seconds left at the recent output rate.
    pub eta_s: Option<f64>,
}

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct FrameCounts {
    pub captured: u64,
    pub processed: u64,
    pub dropped: u64,
    pub encoded: u64,
    pub engine_errors: u64,
}

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct FpsStatus {
    #[serde(rename = "in")]
    pub input: f64,
    pub out: f64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LatencyStatus {
    /// Engine run time (ONNX Runtime / TensorRT), sliding window.
    pub infer: Option<Percentiles>,
    /// Capture to push into the encoder, sliding window.
    pub glass_to_glass: Option<Percentiles>,
    /// Every stage over the window: queue_wait, pre_process, infer, post_process, push.
    pub stages: BTreeMap<Cow<'static, str>, Percentiles>,
    pub window_s: f64,
}

/// The versioned document `{"cmd":"status"}` returns (docs/design.md "Status document").
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Status {
    pub version: u32,
    pub state: RunState,
    pub uptime_s: f64,
    pub source: SourceStatus,
    pub engine: Option<EngineInfo>,
    pub style: StyleStatus,
    pub frames: FrameCounts,
    pub fps: FpsStatus,
    pub latency_ms: LatencyStatus,
    pub power: PowerStatus,
    pub system: Option<SystemSnapshot>,
    pub budget: Option<Verdict>,
    pub outputs: Vec<String>,
    pub recording: Option<RecordingStatus>,
    pub governor: Option<crate::governor::GovernorStatus>,
    /// The web dashboard's URL, when it is served.
    #[serde(default)]
    pub http: Option<String>,
    #[serde(default)]
    pub config: Option<ConfigStatus>,
    /// Only for finite sources (files).
    #[serde(default)]
    pub progress: Option<ProgressStatus>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RecordingStatus {
    /// File name pattern of this run's segments.
    pub pattern: String,
    /// Why recording stopped (e.g. a full disk); streaming goes on regardless.
    pub error: Option<String>,
}

impl Default for Status {
    fn default() -> Self {
        Self {
            version: STATUS_VERSION,
            state: RunState::Starting,
            uptime_s: 0.0,
            source: SourceStatus::default(),
            engine: None,
            style: StyleStatus::default(),
            frames: FrameCounts::default(),
            fps: FpsStatus::default(),
            latency_ms: LatencyStatus::default(),
            power: PowerStatus::none(),
            system: None,
            budget: None,
            outputs: Vec::new(),
            recording: None,
            governor: None,
            http: None,
            config: None,
            progress: None,
        }
    }
}

/// What a control command that worked reports (only the fields that apply are present).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Done {
    /// Always `true`.
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub style: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strength: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preserve_color: Option<bool>,
    /// The change was written into the config file (`save`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saved: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<RunState>,
    /// A snapshot's absolute path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

impl Done {
    pub fn ok() -> Self {
        Self {
            ok: true,
            ..Default::default()
        }
    }
}

/// One answer line: the status document, a command done, or `{"error": "..."}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Reply {
    Error { error: String },
    Done(Done),
    Status(Box<Status>),
}

impl Reply {
    pub fn error(e: impl std::fmt::Display) -> Self {
        Reply::Error {
            error: e.to_string(),
        }
    }
}

/// The socket path: the config's, else systemd's `RuntimeDirectory`, else
/// `$XDG_RUNTIME_DIR`, else `/tmp/stylerd-<uid>.sock`.
pub fn default_socket_path(configured: Option<&Path>) -> PathBuf {
    if let Some(p) = configured {
        return p.to_path_buf();
    }
    for var in ["RUNTIME_DIRECTORY", "XDG_RUNTIME_DIR"] {
        if let Some(dir) = std::env::var_os(var).filter(|d| !d.is_empty()) {
            // RUNTIME_DIRECTORY may list several folders separated by ':'.
            let first = dir
                .to_string_lossy()
                .split(':')
                .next()
                .unwrap_or_default()
                .to_string();
            return Path::new(&first).join("stylerd.sock");
        }
    }
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    PathBuf::from(format!("/tmp/stylerd-{uid}.sock"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_round_trip() {
        let error = serde_json::to_string(&Reply::error("no stylized frame yet")).unwrap();
        assert_eq!(error, r#"{"error":"no stylized frame yet"}"#);
        let done = Reply::Done(Done {
            state: Some(RunState::Paused),
            ..Done::ok()
        });
        let text = serde_json::to_string(&done).unwrap();
        assert_eq!(text, r#"{"ok":true,"state":"paused"}"#);
        assert!(
            matches!(serde_json::from_str(&text).unwrap(), Reply::Done(d) if d.state == Some(RunState::Paused))
        );
        let status = serde_json::to_string(&Reply::Status(Box::default())).unwrap();
        match serde_json::from_str(&status).unwrap() {
            Reply::Status(s) => assert_eq!(s.version, STATUS_VERSION),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn status_serializes_with_the_documented_fields() {
        let v = serde_json::to_value(Status::default()).unwrap();
        for key in [
            "version",
            "state",
            "uptime_s",
            "source",
            "engine",
            "style",
            "frames",
            "fps",
            "latency_ms",
            "power",
            "system",
            "budget",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        assert_eq!(v["version"], 1);
        assert_eq!(v["power"]["source"], "none");
        assert_eq!(v["fps"]["in"], 0.0);
    }
}
