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

pub mod client;
pub mod metrics;
pub mod server;

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
        }
    }
}

/// One request line, as the socket and `stylerd ctl` speak it: `{"cmd":"status"}`,
/// `{"cmd":"set-style","style":"3:0.5,12:0.5"}`, `{"cmd":"set-style","image":"/a.jpg",
/// "and":"/b.jpg","weight":0.3}`, `pause`, `resume`, `snapshot`. Unknown commands and
/// unknown fields are refused.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    Status {},
    SetStyle {
        /// A style index, name or blend (`7`, `"3:0.5,12:0.5"`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        style: Option<StyleArg>,
        /// A picture whose style to take (arbitrary style), instead of `style`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        image: Option<PathBuf>,
        /// A second picture to interpolate with `image`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        and: Option<PathBuf>,
        /// Weight of `and`, 0..1 (default 0.5).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        weight: Option<f64>,
    },
    Pause {},
    Resume {},
    Snapshot {},
}

/// A style as a request gives it: a number or a spec string.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StyleArg {
    Index(u64),
    Spec(String),
}

/// A checked command for the frame loop: everything but `status`, which the socket answers
/// from the published document itself.
#[derive(Clone, Debug, PartialEq)]
pub enum Control {
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
    /// A set-style request for a style spec.
    pub fn set_style(spec: impl Into<String>) -> Self {
        Request::SetStyle {
            style: Some(StyleArg::Spec(spec.into())),
            image: None,
            and: None,
            weight: None,
        }
    }

    /// Parses one request line; the error is the sentence to send back.
    pub fn parse(line: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(line).map_err(|e| {
            if e.is_syntax() || e.is_eof() {
                format!("request is not valid JSON: {e}")
            } else {
                format!("bad request ({e}); a request is a JSON object like {{\"cmd\":\"status\"}}")
            }
        })
    }

    /// `None` for `status`; otherwise the checked command, or the sentence to send back.
    pub fn into_control(self) -> Result<Option<Control>, String> {
        let path_ok = |p: &Path| !p.as_os_str().is_empty() && p.as_os_str().len() <= 4096;
        Ok(Some(match self {
            Request::Status {} => return Ok(None),
            Request::Pause {} => Control::Pause,
            Request::Resume {} => Control::Resume,
            Request::Snapshot {} => Control::Snapshot,
            Request::SetStyle {
                style: None,
                image: Some(image),
                and,
                weight,
            } => {
                if !path_ok(&image) || and.as_deref().is_some_and(|p| !path_ok(p)) {
                    return Err("set-style \"image\" and \"and\" must be file paths".into());
                }
                let weight = match weight {
                    None => 0.5,
                    Some(w) if (0.0..=1.0).contains(&w) => w as f32,
                    Some(_) => {
                        return Err("set-style \"weight\" must be a number from 0 to 1".into());
                    }
                };
                Control::SetStyleImage {
                    image,
                    and: and.map(|p| (p, weight)),
                }
            }
            Request::SetStyle {
                style: Some(_),
                image: Some(_),
                ..
            } => return Err("set-style takes \"style\" or \"image\", not both".into()),
            Request::SetStyle {
                style: Some(style),
                image: None,
                and: None,
                weight: None,
            } => match style {
                StyleArg::Index(i) => Control::SetStyle(i.to_string()),
                StyleArg::Spec(s) if s.len() <= 1024 => Control::SetStyle(s),
                StyleArg::Spec(_) => return Err("set-style \"style\" is too long".into()),
            },
            Request::SetStyle { style: Some(_), .. } => {
                return Err("set-style \"and\" and \"weight\" go with \"image\"".into());
            }
            Request::SetStyle { style: None, .. } => {
                return Err(
                    "set-style needs \"style\": an index, a name or a blend like \"3:0.5,12:0.5\""
                        .into(),
                );
            }
        }))
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

    fn control(line: &[u8]) -> Result<Option<Control>, String> {
        Request::parse(line)?.into_control()
    }

    #[test]
    fn requests_parse() {
        assert_eq!(control(br#"{"cmd":"status"}"#), Ok(None));
        assert_eq!(
            control(br#"{"cmd":"set-style","style":"3:0.5,12:0.5"}"#),
            Ok(Some(Control::SetStyle("3:0.5,12:0.5".into())))
        );
        assert_eq!(
            control(br#"{"cmd":"set-style","style":7}"#),
            Ok(Some(Control::SetStyle("7".into())))
        );
        assert_eq!(control(br#" {"cmd":"pause"} "#), Ok(Some(Control::Pause)));
        assert_eq!(
            control(br#"{"cmd":"set-style","image":"/a.jpg","and":"/b.jpg","weight":0.25}"#),
            Ok(Some(Control::SetStyleImage {
                image: "/a.jpg".into(),
                and: Some(("/b.jpg".into(), 0.25))
            }))
        );
        assert!(control(br#"{"cmd":"set-style","image":"/a.jpg","weight":2}"#).is_err());
        assert!(control(br#"{"cmd":"set-style","image":"/a.jpg","style":"3"}"#).is_err());
    }

    #[test]
    fn requests_serialize_to_the_documented_wire_format() {
        let line = |r: &Request| serde_json::to_string(r).unwrap();
        assert_eq!(line(&Request::Status {}), r#"{"cmd":"status"}"#);
        assert_eq!(
            line(&Request::set_style("3:0.5,12:0.5")),
            r#"{"cmd":"set-style","style":"3:0.5,12:0.5"}"#
        );
        assert_eq!(line(&Request::Snapshot {}), r#"{"cmd":"snapshot"}"#);
        for r in [
            Request::Pause {},
            Request::set_style("7"),
            Request::Resume {},
        ] {
            assert_eq!(Request::parse(line(&r).as_bytes()), Ok(r));
        }
    }

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
    fn bad_requests_get_a_sentence() {
        for (line, want) in [
            (&b"not json"[..], "not valid JSON"),
            (b"[1,2]", "a request is a JSON object like"),
            (b"{}", "missing field `cmd`"),
            (br#"{"cmd":"reboot"}"#, "unknown variant `reboot`"),
            (br#"{"cmd":"status","x":1}"#, "unknown field `x`"),
            (br#"{"cmd":"set-style"}"#, "set-style needs"),
            (br#"{"cmd":"set-style","style":-1}"#, "bad request"),
            (
                br#"{"cmd":"set-style","style":"3","weight":0.5}"#,
                "go with \"image\"",
            ),
            (b"\xff\xfe", "not valid JSON"),
        ] {
            let e = control(line).unwrap_err();
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
