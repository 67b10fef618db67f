//! Model manifests: `engines/<name>.toml` beside each ONNX file.
//!
//! A manifest says which file holds the network, its sha256, the names of its inputs and
//! outputs, the tensor layout and value range, how to pad, which sizes it accepts and which
//! named styles its style vector selects (format in `engines/README.md`). This module reads
//! and checks manifests and the file they point to; it does not run models (`engine` does).

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::frame::{Layout, ValueRange};
use crate::style::{StyleError, StyleSpec};

/// Which frame sizes a network accepts.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum SizeSupport {
    /// `"any"`: any size (after padding to `pad-multiple`).
    Any(AnyTag),
    /// `[width, height]`: exactly this size.
    Fixed([u32; 2]),
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AnyTag {
    Any,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Manifest {
    pub name: String,
    pub file: PathBuf,
    pub sha256: String,
    #[serde(default)]
    pub description: String,
    pub licence: String,
    pub provenance: String,
    pub input: String,
    pub output: String,
    pub layout: Layout,
    #[serde(default = "default_range")]
    pub input_range: ValueRange,
    #[serde(default = "default_range")]
    pub output_range: ValueRange,
    #[serde(default = "default_pad_multiple")]
    pub pad_multiple: u32,
    pub size: SizeSupport,
    #[serde(default)]
    pub style_input: Option<String>,
    #[serde(default)]
    pub styles: Vec<String>,
    /// Length of a style vector that comes from elsewhere (arbitrary-style models).
    #[serde(default)]
    pub style_vector_len: Option<usize>,
    /// Folder the manifest was read from; `file` is relative to it.
    #[serde(skip)]
    pub dir: PathBuf,
}

fn default_range() -> ValueRange {
    ValueRange::UNIT
}

fn default_pad_multiple() -> u32 {
    1
}

/// A fixed-size network asked to run at another size.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error(
    "model {model} only accepts {}x{} frames, not {}x{}",
    accepted[0], accepted[1], asked[0], asked[1]
)]
pub struct SizeMismatch {
    pub model: String,
    pub accepted: [u32; 2],
    pub asked: [u32; 2],
}

/// Why a style spec cannot be applied to a model.
#[derive(Debug, Error)]
pub enum StyleSelectError {
    #[error("model {0} takes a style vector computed from a style image, not a named style")]
    NeedsImage(String),
    #[error(transparent)]
    Style(#[from] StyleError),
}

#[derive(Debug, Error)]
pub enum ModelError {
    #[error("model {name:?} not found: no manifest {path} (models available: {available})")]
    NotFound {
        name: String,
        path: PathBuf,
        available: String,
    },
    #[error("cannot read model manifest {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("model manifest {path} is invalid: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("model file {path} is missing; run `make models` to fetch the starter models")]
    FileMissing { path: PathBuf },
    #[error(
        "model file {path} does not match its manifest (sha256 {actual}, manifest says {expected}); \
         the file is corrupt or was replaced: run `make models` again"
    )]
    Checksum {
        path: PathBuf,
        expected: String,
        actual: String,
    },
}

impl Manifest {
    /// Reads `dir/<name>.toml`.
    pub fn find(dir: &Path, name: &str) -> Result<Self, ModelError> {
        let path = dir.join(format!("{name}.toml"));
        if !path.is_file() {
            let available = Self::list(dir)
                .map(|all| {
                    all.iter()
                        .map(|m| m.name.clone())
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            let available = if available.is_empty() {
                "none".into()
            } else {
                available
            };
            return Err(ModelError::NotFound {
                name: name.into(),
                path,
                available,
            });
        }
        Self::load(&path)
    }

    pub fn load(path: &Path) -> Result<Self, ModelError> {
        let text = fs::read_to_string(path).map_err(|source| ModelError::Read {
            path: path.into(),
            source,
        })?;
        let mut m = Self::parse(&text).map_err(|message| ModelError::Invalid {
            path: path.into(),
            message,
        })?;
        m.dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(m)
    }

    /// Parses and checks manifest text; the error is one sentence.
    pub fn parse(text: &str) -> Result<Self, String> {
        let m: Manifest = toml::from_str(text).map_err(|e| e.message().to_string())?;
        m.check()?;
        Ok(m)
    }

    fn check(&self) -> Result<(), String> {
        let hex = self.sha256.len() == 64 && self.sha256.bytes().all(|b| b.is_ascii_hexdigit());
        if !hex {
            return Err("sha256 must be 64 hexadecimal digits".into());
        }
        if self.pad_multiple == 0 || self.pad_multiple > 64 {
            return Err(format!(
                "pad-multiple must be 1 to 64, got {}",
                self.pad_multiple
            ));
        }
        if self.input_range.lo >= self.input_range.hi
            || self.output_range.lo >= self.output_range.hi
        {
            return Err("input-range and output-range must be [low, high] with low < high".into());
        }
        if !self.styles.is_empty() && self.style_input.is_none() {
            return Err("styles are listed but there is no style-input to feed them to".into());
        }
        if let SizeSupport::Fixed([w, h]) = self.size
            && (w == 0 || h == 0)
        {
            return Err("a fixed size needs a width and height above 0".into());
        }
        Ok(())
    }

    /// All manifests in `dir`, sorted by name; unreadable ones are skipped.
    pub fn list(dir: &Path) -> Result<Vec<Self>, ModelError> {
        let entries = fs::read_dir(dir).map_err(|source| ModelError::Read {
            path: dir.into(),
            source,
        })?;
        let mut all: Vec<Self> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .filter_map(|p| Self::load(&p).ok())
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(all)
    }

    pub fn model_path(&self) -> PathBuf {
        self.dir.join(&self.file)
    }

    /// Checks the model file exists and has the manifest's sha256.
    pub fn verify_file(&self) -> Result<PathBuf, ModelError> {
        let path = self.model_path();
        let mut f = match fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ModelError::FileMissing { path });
            }
            Err(source) => return Err(ModelError::Read { path, source }),
        };
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = f.read(&mut buf).map_err(|source| ModelError::Read {
                path: path.clone(),
                source,
            })?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        let actual = hex(&hasher.finalize());
        if !actual.eq_ignore_ascii_case(&self.sha256) {
            return Err(ModelError::Checksum {
                path,
                expected: self.sha256.clone(),
                actual,
            });
        }
        Ok(path)
    }

    /// The style names a spec picks from: the listed ones, or, for a single-style network
    /// without a style input, the model itself.
    pub fn style_names(&self) -> Vec<String> {
        if self.styles.is_empty() && self.style_input.is_none() {
            vec![self.name.clone()]
        } else {
            self.styles.clone()
        }
    }

    /// How many values the style input takes, when the manifest says.
    pub fn style_len(&self) -> Option<usize> {
        if self.styles.is_empty() {
            self.style_vector_len
        } else {
            Some(self.styles.len())
        }
    }

    /// The style vector for a spec: `Some(weights)` for a model with a style input, `None`
    /// for a single-style network (after checking the spec names its one style).
    pub fn style_weights(&self, spec: &StyleSpec) -> Result<Option<Vec<f32>>, StyleSelectError> {
        if self.style_input.is_some() && self.styles.is_empty() {
            return Err(StyleSelectError::NeedsImage(self.name.clone()));
        }
        let weights = spec.weights(&self.style_names())?;
        Ok(self.style_input.is_some().then_some(weights))
    }

    /// Whether the network accepts frames of this size.
    pub fn accepts(&self, width: u32, height: u32) -> Result<(), SizeMismatch> {
        match self.size {
            SizeSupport::Any(_) => Ok(()),
            SizeSupport::Fixed([w, h]) if (w, h) == (width, height) => Ok(()),
            SizeSupport::Fixed(accepted) => Err(SizeMismatch {
                model: self.name.clone(),
                accepted,
                asked: [width, height],
            }),
        }
    }
}

/// Lower-case hexadecimal, as manifests write digests.
fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The sha256 of `bytes` as a manifest's `sha256` field holds it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "m"
file = "m.onnx"
sha256 = "0a2a0c9436a935cd1d4279cd06e171475b06222cb37c8c8d4afc53a9a7a1885e"
licence = "Apache-2.0"
provenance = "test"
input = "image"
output = "stylized"
layout = "nchw"
pad-multiple = 4
size = "any"
style-input = "style_weights"
styles = ["a", "b"]
"#;

    #[test]
    fn parses_a_good_manifest() {
        let m = Manifest::parse(GOOD).unwrap();
        assert_eq!(m.layout, Layout::Nchw);
        assert_eq!(m.size, SizeSupport::Any(AnyTag::Any));
        assert_eq!(m.input_range, ValueRange::UNIT);
        assert_eq!(m.styles.len(), 2);
        assert!(m.accepts(640, 360).is_ok());
    }

    #[test]
    fn refuses_unknown_keys_and_bad_values() {
        let e = Manifest::parse(&format!("{GOOD}\ncolour = 1\n")).unwrap_err();
        assert!(e.contains("unknown field `colour`"), "{e}");
        let e = Manifest::parse(&GOOD.replace("0a2a0c", "zz")).unwrap_err();
        assert!(e.contains("sha256"), "{e}");
        let e = Manifest::parse(&GOOD.replace("\"nchw\"", "\"chw\"")).unwrap_err();
        assert!(e.contains("unknown variant `chw`"), "{e}");
        let e = Manifest::parse(&GOOD.replace("size = \"any\"", "size = [0, 4]")).unwrap_err();
        assert!(e.contains("fixed size"), "{e}");
    }

    #[test]
    fn style_selection_follows_the_manifest() {
        let m = Manifest::parse(GOOD).unwrap();
        let spec = StyleSpec::parse("1").unwrap();
        assert_eq!(m.style_weights(&spec).unwrap(), Some(vec![0.0, 1.0]));
        assert_eq!(m.style_len(), Some(2));
        // A single-style network: its one style is the model itself, and no vector is fed.
        let single = Manifest::parse(&GOOD.replace(
            "style-input = \"style_weights\"\nstyles = [\"a\", \"b\"]\n",
            "",
        ))
        .unwrap();
        assert_eq!(single.style_names(), vec!["m".to_string()]);
        assert_eq!(
            single
                .style_weights(&StyleSpec::parse("0").unwrap())
                .unwrap(),
            None
        );
        assert!(
            single.style_weights(&spec).is_err(),
            "index 1 of a single-style model"
        );
        // A vector from a style image cannot be picked by name.
        let arbitrary =
            Manifest::parse(&GOOD.replace("styles = [\"a\", \"b\"]", "style-vector-len = 100"))
                .unwrap();
        let e = arbitrary.style_weights(&spec).unwrap_err().to_string();
        assert!(e.contains("computed from a style image"), "{e}");
    }

    #[test]
    fn fixed_size_is_enforced() {
        let m = Manifest::parse(&GOOD.replace("size = \"any\"", "size = [384, 384]")).unwrap();
        assert!(m.accepts(384, 384).is_ok());
        let e = m.accepts(640, 360).unwrap_err();
        assert_eq!((e.accepted, e.asked), ([384, 384], [640, 360]));
        assert_eq!(
            e.to_string(),
            "model m only accepts 384x384 frames, not 640x360"
        );
    }

    #[test]
    fn checksum_and_missing_file_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("m.toml"), GOOD).unwrap();
        let m = Manifest::find(dir.path(), "m").unwrap();
        assert!(matches!(
            m.verify_file(),
            Err(ModelError::FileMissing { .. })
        ));
        fs::write(dir.path().join("m.onnx"), b"not a model").unwrap();
        let e = m.verify_file().unwrap_err();
        assert!(e.to_string().contains("does not match its manifest"), "{e}");
        let e = Manifest::find(dir.path(), "other").unwrap_err();
        assert!(e.to_string().contains("models available: m"), "{e}");
    }
}
