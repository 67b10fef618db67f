//! The addresses written in the config, source and output URIs, and how text values
//! (these and [`Size`], which lives with the frame types) deserialize.
//!
//! Each parses from its text form into a typed value, or into one sentence saying what is
//! accepted. Pure parsing; nothing is opened or connected here.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

pub use crate::frame::Size;

/// Config values written as text (`"640x360"`, `"rtsp://cam/live"`) are parsed once, here,
/// through their `FromStr`.
macro_rules! deserialize_from_str {
    ($($t:ty),*) => {$(
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d)?
                    .parse()
                    .map_err(serde::de::Error::custom)
            }
        }
    )*};
}
deserialize_from_str!(Size, SourceUri, OutputUri);

/// Where frames come from.
#[derive(Clone, Debug, PartialEq)]
pub enum SourceUri {
    Rtsp(String),
    File(PathBuf),
    V4l2(PathBuf),
    /// Built-in moving test pattern (`test://?pattern=ball&num-buffers=N&fps=30`).
    Test {
        pattern: String,
        num_buffers: Option<u32>,
        fps: u32,
    },
}

impl FromStr for SourceUri {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        const ACCEPTED: &str =
            "rtsp://HOST[:PORT]/PATH, file://PATH, v4l2:///dev/videoN or test://";
        if s.starts_with("rtsp://") || s.starts_with("rtsps://") {
            if s.split_once("://").is_some_and(|(_, rest)| rest.is_empty()) {
                return Err(format!("source {s:?} has no host; use {ACCEPTED}"));
            }
            return Ok(Self::Rtsp(s.into()));
        }
        if let Some(path) = s.strip_prefix("file://") {
            if path.is_empty() {
                return Err(format!("source {s:?} has no path; use {ACCEPTED}"));
            }
            return Ok(Self::File(path.into()));
        }
        if let Some(dev) = s.strip_prefix("v4l2://") {
            if !dev.starts_with("/dev/") {
                return Err(format!(
                    "source {s:?} must name a device like v4l2:///dev/video0"
                ));
            }
            return Ok(Self::V4l2(dev.into()));
        }
        if let Some(rest) = s.strip_prefix("test://") {
            let (mut pattern, mut num_buffers, mut fps) = ("ball".to_string(), None, 30);
            let query = rest.trim_start_matches('/').trim_start_matches('?');
            for kv in query.split('&').filter(|kv| !kv.is_empty()) {
                let bad =
                    || format!("source {s:?}: bad parameter {kv:?} (pattern, num-buffers, fps)");
                let (k, v) = kv.split_once('=').ok_or_else(bad)?;
                match k {
                    "pattern" if v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') => {
                        pattern = v.into()
                    }
                    "num-buffers" => num_buffers = Some(v.parse().map_err(|_| bad())?),
                    "fps" => {
                        fps = v
                            .parse()
                            .ok()
                            .filter(|f| (1..=240).contains(f))
                            .ok_or_else(bad)?
                    }
                    _ => return Err(bad()),
                }
            }
            return Ok(Self::Test {
                pattern,
                num_buffers,
                fps,
            });
        }
        Err(format!(
            "source {s:?} is not a supported URI; use {ACCEPTED}"
        ))
    }
}

impl fmt::Display for SourceUri {
    /// The URI in the form it parses from (test sources with their defaults left out).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rtsp(u) => f.write_str(u),
            Self::File(p) => write!(f, "file://{}", p.display()),
            Self::V4l2(p) => write!(f, "v4l2://{}", p.display()),
            Self::Test {
                pattern,
                num_buffers,
                fps,
            } => {
                write!(f, "test://?pattern={pattern}")?;
                if let Some(n) = num_buffers {
                    write!(f, "&num-buffers={n}")?;
                }
                if *fps != 30 {
                    write!(f, "&fps={fps}")?;
                }
                Ok(())
            }
        }
    }
}

impl Default for SourceUri {
    /// The built-in test pattern.
    fn default() -> Self {
        Self::Test {
            pattern: "ball".into(),
            num_buffers: None,
            fps: 30,
        }
    }
}

impl SourceUri {
    /// Cameras and streams: frames arrive in real time and end only when something fails.
    pub fn is_live(&self) -> bool {
        !matches!(self, Self::File(_))
    }

    /// Sources whose end is normal (a file, a test pattern with `num-buffers`): their EOS
    /// follows `source.on-eos` instead of counting as a lost camera.
    pub fn is_finite(&self) -> bool {
        matches!(
            self,
            Self::File(_)
                | Self::Test {
                    num_buffers: Some(_),
                    ..
                }
        )
    }
}

/// Where stylized frames go.
#[derive(Clone, Debug, PartialEq)]
pub enum OutputUri {
    /// Matroska segments named after this path (`out/stylized.mkv` ->
    /// `out/stylized-<start time>-00000.mkv`, …).
    File(PathBuf),
    Rtsp {
        host: String,
        port: u16,
        mount: String,
    },
    Null,
}

impl FromStr for OutputUri {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        const ACCEPTED: &str = "file://PATH, rtsp://HOST:PORT/MOUNT or null://";
        if let Some(path) = s.strip_prefix("file://") {
            if path.is_empty() || path.ends_with('/') {
                return Err(format!(
                    "output {s:?} needs a file name, e.g. file://out/stylized.mkv"
                ));
            }
            return Ok(Self::File(path.into()));
        }
        if let Some(rest) = s.strip_prefix("rtsp://") {
            let (authority, mount) = rest.split_once('/').unwrap_or((rest, "stylized"));
            // `[::1]:8554` keeps its colons inside the brackets.
            let (host, port) = match authority.strip_prefix('[') {
                Some(v6) => v6.split_once(']').unwrap_or((v6, "")),
                None => match authority.rsplit_once(':') {
                    Some((h, p)) => (h, p),
                    None => (authority, ""),
                },
            };
            let port = match port.trim_start_matches(':') {
                "" => 8554,
                p => p
                    .parse::<u16>()
                    .map_err(|_| format!("output {s:?} has a bad port"))?,
            };
            let mount = mount.trim_matches('/');
            if host.is_empty() || mount.is_empty() || mount.contains(['?', '#', ' ']) {
                return Err(format!(
                    "output {s:?} is not a valid RTSP URI; use {ACCEPTED}"
                ));
            }
            return Ok(Self::Rtsp {
                host: host.into(),
                port,
                mount: format!("/{mount}"),
            });
        }
        if s == "null://" || s == "null" {
            return Ok(Self::Null);
        }
        Err(format!(
            "output {s:?} is not a supported URI; use {ACCEPTED}"
        ))
    }
}

impl fmt::Display for OutputUri {
    /// The URI in the form it parses from.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(p) => write!(f, "file://{}", p.display()),
            Self::Rtsp { host, port, mount } if host.contains(':') => {
                write!(f, "rtsp://[{host}]:{port}{mount}")
            }
            Self::Rtsp { host, port, mount } => write!(f, "rtsp://{host}:{port}{mount}"),
            Self::Null => f.write_str("null://"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_parse() {
        assert_eq!(
            "file:///a/b.mp4".parse::<SourceUri>().unwrap(),
            SourceUri::File("/a/b.mp4".into())
        );
        assert_eq!(
            "v4l2:///dev/video1".parse::<SourceUri>().unwrap(),
            SourceUri::V4l2("/dev/video1".into())
        );
        assert_eq!(
            "test://?pattern=smpte&num-buffers=10&fps=15"
                .parse::<SourceUri>()
                .unwrap(),
            SourceUri::Test {
                pattern: "smpte".into(),
                num_buffers: Some(10),
                fps: 15
            }
        );
        assert_eq!(
            "rtsp://127.0.0.1:8554/stylized"
                .parse::<OutputUri>()
                .unwrap(),
            OutputUri::Rtsp {
                host: "127.0.0.1".into(),
                port: 8554,
                mount: "/stylized".into()
            }
        );
        assert_eq!(
            "rtsp://[::1]/live".parse::<OutputUri>().unwrap(),
            OutputUri::Rtsp {
                host: "::1".into(),
                port: 8554,
                mount: "/live".into()
            }
        );
        assert_eq!(
            "file://out/x.mkv".parse::<OutputUri>().unwrap(),
            OutputUri::File("out/x.mkv".into())
        );
        assert!("file://out/".parse::<OutputUri>().is_err());
    }

    #[test]
    fn uris_print_as_they_parse() {
        for s in [
            "rtsp://cam.local:554/live?x=1",
            "file:///a/b.mp4",
            "v4l2:///dev/video1",
            "test://?pattern=smpte&num-buffers=10&fps=15",
            "test://?pattern=ball",
        ] {
            let u: SourceUri = s.parse().unwrap();
            assert_eq!(u.to_string(), s);
            assert_eq!(u.to_string().parse::<SourceUri>().unwrap(), u);
        }
        for s in [
            "rtsp://127.0.0.1:8554/stylized",
            "rtsp://[::1]:8554/live",
            "file://out/x.mkv",
            "null://",
        ] {
            let u: OutputUri = s.parse().unwrap();
            assert_eq!(u.to_string(), s);
        }
        assert_eq!(SourceUri::default().to_string(), "test://?pattern=ball");
    }
}
