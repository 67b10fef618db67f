//! The status document and the control protocol spoken on the daemon's Unix socket.
//!
//! Requests are one JSON object per line (`{"cmd":"status"}`, `{"cmd":"set-style",
//! "style":"3:0.5,12:0.5"}`, `pause`, `resume`, `snapshot`); every answer is one JSON
//! object per line, errors as `{"error": "..."}`. This module owns the document's shape
//! ([`Status`], versioned) and the parsing of requests; the socket itself lives in
//! [`server`] and the command-line client in [`client`]. No I/O here.
//!
//! # Layout
//! - [`server`]: the tokio Unix socket (limits, permissions, stale-socket handling).
//! - [`client`]: `stylerd status` and `stylerd ctl`.
//! - [`metrics`]: the optional Prometheus text endpoint on loopback.

pub mod client;
pub mod metrics;
pub mod server;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::engine::EngineInfo;
use crate::monitor::budget::Verdict;
use crate::monitor::latency::Percentiles;
use crate::monitor::power::PowerStatus;
use crate::monitor::system::SystemSnapshot;

/// Version of the status document; bumped when a field changes meaning or disappears.
pub const STATUS_VERSION: u32 = 1;

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

#[derive(Clone, Debug, Default, Serialize)]
pub struct SourceStatus {
    pub uri: String,
    /// "connecting", "streaming", "lost" or "ended".
    pub state: &'static str,
    pub reconnects: u64,
    pub last_error: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct StyleStatus {
    /// The spec in force, as given (`7`, `3:0.5,12:0.5`).
    pub spec: String,
    /// The model's style names.
    pub available: usize,
}

#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct FrameCounts {
    pub captured: u64,
    pub processed: u64,
    pub dropped: u64,
    pub encoded: u64,
    pub engine_errors: u64,
}

#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct FpsStatus {
    #[serde(rename = "in")]
    pub input: f64,
    pub out: f64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct LatencyStatus {
    /// Engine run time (ONNX Runtime / TensorRT), sliding window.
    pub infer: Option<Percentiles>,
    /// Capture to push into the encoder, sliding window.
    pub glass_to_glass: Option<Percentiles>,
    /// Every stage over the window: queue_wait, pre_process, infer, post_process, push.
    pub stages: BTreeMap<&'static str, Percentiles>,
    pub window_s: f64,
}

/// The versioned document `{"cmd":"status"}` returns (docs/design.md "Status document").
#[derive(Clone, Debug, Serialize)]
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
}

#[derive(Clone, Debug, Default, Serialize)]
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
        }
    }
}

/// A parsed request line.
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    Status,
    SetStyle(String),
    /// Arbitrary style from a picture, optionally interpolated with a second one.
    SetStyleImage {
        image: PathBuf,
        and: Option<(PathBuf, f32)>,
    },
    Pause,
    Resume,
    Snapshot,
}

impl Request {
    /// Whether the request changes the daemon (refused on a read-only socket).
    pub fn is_control(&self) -> bool {
        !matches!(self, Request::Status)
    }

    /// Parses one request line; the error is the sentence to send back.
    pub fn parse(line: &[u8]) -> Result<Self, String> {
        const KNOWN: &str = "status, set-style, pause, resume, snapshot";
        let value: Value =
            serde_json::from_slice(line).map_err(|e| format!("request is not valid JSON: {e}"))?;
        let obj = value
            .as_object()
            .ok_or("a request must be a JSON object like {\"cmd\":\"status\"}")?;
        let cmd = obj
            .get("cmd")
            .and_then(Value::as_str)
            .ok_or("a request needs a \"cmd\" string field")?;
        let allowed: &[&str] = match cmd {
            "set-style" => &["cmd", "style", "image", "and", "weight"],
            _ => &["cmd"],
        };
        if let Some(extra) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(format!("unknown field {extra:?} for {cmd:?}"));
        }
        match cmd {
            "status" => Ok(Request::Status),
            "pause" => Ok(Request::Pause),
            "resume" => Ok(Request::Resume),
            "snapshot" => Ok(Request::Snapshot),
            "set-style" if obj.contains_key("image") => {
                let path = |key: &str| match obj.get(key) {
                    Some(Value::String(p)) if !p.is_empty() && p.len() <= 4096 => {
                        Ok(Some(PathBuf::from(p)))
                    }
                    None => Ok(None),
                    _ => Err(format!("set-style \"{key}\" must be a file path")),
                };
                let image = path("image")?.ok_or("set-style \"image\" must be a file path")?;
                if obj.contains_key("style") {
                    return Err("set-style takes \"style\" or \"image\", not both".into());
                }
                let weight = match obj.get("weight") {
                    None => 0.5,
                    Some(v) => v
                        .as_f64()
                        .filter(|w| (0.0..=1.0).contains(w))
                        .ok_or("set-style \"weight\" must be a number from 0 to 1")?
                        as f32,
                };
                let and = path("and")?.map(|p| (p, weight));
                Ok(Request::SetStyleImage { image, and })
            }
            "set-style" => match obj.get("style") {
                Some(Value::String(s)) if s.len() <= 1024 => Ok(Request::SetStyle(s.clone())),
                Some(Value::Number(n)) if n.is_u64() => Ok(Request::SetStyle(n.to_string())),
                _ => Err(
                    "set-style needs \"style\": an index, a name or a blend like \"3:0.5,12:0.5\""
                        .into(),
                ),
            },
            other => Err(format!("unknown command {other:?}; known: {KNOWN}")),
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
    fn requests_parse() {
        assert_eq!(Request::parse(br#"{"cmd":"status"}"#), Ok(Request::Status));
        assert_eq!(
            Request::parse(br#"{"cmd":"set-style","style":"3:0.5,12:0.5"}"#),
            Ok(Request::SetStyle("3:0.5,12:0.5".into()))
        );
        assert_eq!(
            Request::parse(br#"{"cmd":"set-style","style":7}"#),
            Ok(Request::SetStyle("7".into()))
        );
        assert_eq!(Request::parse(br#" {"cmd":"pause"} "#), Ok(Request::Pause));
        assert_eq!(
            Request::parse(br#"{"cmd":"set-style","image":"/a.jpg","and":"/b.jpg","weight":0.25}"#),
            Ok(Request::SetStyleImage {
                image: "/a.jpg".into(),
                and: Some(("/b.jpg".into(), 0.25))
            })
        );
        assert!(Request::parse(br#"{"cmd":"set-style","image":"/a.jpg","weight":2}"#).is_err());
        assert!(Request::parse(br#"{"cmd":"set-style","image":"/a.jpg","style":"3"}"#).is_err());
        assert!(Request::Pause.is_control() && !Request::Status.is_control());
    }

    #[test]
    fn bad_requests_get_a_sentence() {
        for (line, want) in [
            (&b"not json"[..], "not valid JSON"),
            (b"[1,2]", "must be a JSON object"),
            (b"{}", "needs a \"cmd\""),
            (br#"{"cmd":"reboot"}"#, "unknown command \"reboot\""),
            (br#"{"cmd":"status","x":1}"#, "unknown field \"x\""),
            (br#"{"cmd":"set-style"}"#, "set-style needs"),
            (br#"{"cmd":"set-style","style":-1}"#, "set-style needs"),
            (b"\xff\xfe", "not valid JSON"),
        ] {
            let e = Request::parse(line).unwrap_err();
            assert!(e.contains(want), "{line:?}: {e}");
        }
        // serde_json stops at its recursion limit instead of overflowing the stack.
        let deep = "[".repeat(100_000);
        assert!(Request::parse(deep.as_bytes()).is_err());
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
