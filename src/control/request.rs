//! Requests as the socket, `stylerd ctl` and other front ends speak them ([`Request`],
//! serde, tagged by `cmd`), and their check into a [`Control`] for the frame loop.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

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
        /// Mix of stylized and original, 0..1 (1 = fully stylized); alone, it changes only
        /// the strength.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        strength: Option<f64>,
        /// Keep the original's colours, take the stylized luminance.
        #[serde(
            default,
            rename = "preserve-color",
            skip_serializing_if = "Option::is_none"
        )]
        preserve_color: Option<bool>,
        /// Also write the change into the config file (atomically, comments kept).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        save: Option<bool>,
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
    SetStyle(StyleChange),
    /// Arbitrary style from a picture, optionally interpolated with a second one.
    SetStyleImage {
        image: PathBuf,
        and: Option<(PathBuf, f32)>,
        strength: Option<f32>,
        preserve_color: Option<bool>,
    },
    Pause,
    Resume,
    Snapshot,
}

/// A named style, strength or colour change (at least one of the three).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StyleChange {
    pub spec: Option<String>,
    pub strength: Option<f32>,
    pub preserve_color: Option<bool>,
    /// Write the change into the config file too.
    pub save: bool,
}

impl StyleChange {
    pub fn spec(spec: impl Into<String>) -> Self {
        Self {
            spec: Some(spec.into()),
            ..Default::default()
        }
    }
}

impl Request {
    /// A set-style request for a style spec.
    pub fn set_style(spec: impl Into<String>) -> Self {
        Request::SetStyle {
            style: Some(StyleArg::Spec(spec.into())),
            image: None,
            and: None,
            weight: None,
            strength: None,
            preserve_color: None,
            save: None,
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
                style,
                image,
                and,
                weight,
                strength,
                preserve_color,
                save,
            } => {
                let strength = strength
                    .map(crate::mix::check_strength)
                    .transpose()
                    .map_err(|e| format!("set-style \"strength\": {e}"))?;
                let save = save.unwrap_or(false);
                match (style, image) {
                    (Some(_), Some(_)) => {
                        return Err("set-style takes \"style\" or \"image\", not both".into());
                    }
                    (None, Some(image)) => {
                        if !path_ok(&image) || and.as_deref().is_some_and(|p| !path_ok(p)) {
                            return Err("set-style \"image\" and \"and\" must be file paths".into());
                        }
                        if save {
                            return Err("set-style \"save\" works with a style index, name or \
                                        blend, not with \"image\""
                                .into());
                        }
                        let weight = match weight {
                            None => 0.5,
                            Some(w) if (0.0..=1.0).contains(&w) => w as f32,
                            Some(_) => {
                                return Err(
                                    "set-style \"weight\" must be a number from 0 to 1".into()
                                );
                            }
                        };
                        Control::SetStyleImage {
                            image,
                            and: and.map(|p| (p, weight)),
                            strength,
                            preserve_color,
                        }
                    }
                    _ if and.is_some() || weight.is_some() => {
                        return Err("set-style \"and\" and \"weight\" go with \"image\"".into());
                    }
                    (None, None) if strength.is_none() && preserve_color.is_none() && !save => {
                        return Err(
                            "set-style needs \"style\": an index, a name or a blend like \
                                    \"3:0.5,12:0.5\" (or \"strength\" / \"preserve-color\" alone, or \
                                    \"save\" to save the running style)"
                                .into(),
                        );
                    }
                    (style, None) => Control::SetStyle(StyleChange {
                        spec: match style {
                            None => None,
                            Some(StyleArg::Index(i)) => Some(i.to_string()),
                            Some(StyleArg::Spec(s)) if s.len() <= 1024 => Some(s),
                            Some(StyleArg::Spec(_)) => {
                                return Err("set-style \"style\" is too long".into());
                            }
                        },
                        strength,
                        preserve_color,
                        save,
                    }),
                }
            }
        }))
    }
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
            Ok(Some(Control::SetStyle(StyleChange::spec("3:0.5,12:0.5"))))
        );
        assert_eq!(
            control(br#"{"cmd":"set-style","style":7}"#),
            Ok(Some(Control::SetStyle(StyleChange::spec("7"))))
        );
        assert_eq!(
            control(br#"{"cmd":"set-style","style":7,"strength":0.5,"preserve-color":true,"save":true}"#),
            Ok(Some(Control::SetStyle(StyleChange {
                spec: Some("7".into()),
                strength: Some(0.5),
                preserve_color: Some(true),
                save: true,
            })))
        );
        assert_eq!(
            control(br#"{"cmd":"set-style","strength":0}"#),
            Ok(Some(Control::SetStyle(StyleChange {
                strength: Some(0.0),
                ..Default::default()
            })))
        );
        assert_eq!(control(br#" {"cmd":"pause"} "#), Ok(Some(Control::Pause)));
        assert_eq!(
            control(br#"{"cmd":"set-style","image":"/a.jpg","and":"/b.jpg","weight":0.25}"#),
            Ok(Some(Control::SetStyleImage {
                image: "/a.jpg".into(),
                and: Some(("/b.jpg".into(), 0.25)),
                strength: None,
                preserve_color: None,
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
        let mut r = Request::set_style("7");
        if let Request::SetStyle {
            strength,
            preserve_color,
            save,
            ..
        } = &mut r
        {
            (*strength, *preserve_color, *save) = (Some(0.5), Some(true), Some(true));
        }
        assert_eq!(
            line(&r),
            r#"{"cmd":"set-style","style":"7","strength":0.5,"preserve-color":true,"save":true}"#
        );
        for r in [
            Request::Pause {},
            Request::set_style("7"),
            Request::Resume {},
        ] {
            assert_eq!(Request::parse(line(&r).as_bytes()), Ok(r));
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
            (
                br#"{"cmd":"set-style","style":"3","strength":2}"#,
                "strength must be from 0 to 1",
            ),
            (
                br#"{"cmd":"set-style","image":"/a.jpg","save":true}"#,
                "not with \"image\"",
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
}
