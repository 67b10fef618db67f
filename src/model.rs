//! Model manifests: `engines/<name>.toml` beside each ONNX file.
//!
//! A manifest says which file holds the network, its sha256, the names of its inputs and
//! outputs, the tensor layout and value range, how to pad, which sizes it accepts and which
//! named styles its style vector selects (format in `engines/README.md`). The format is one
//! type shared with the trainer, which writes it (`manifest/`, `stylerd_manifest`); this
//! module finds and reads manifests and checks the file they point to; it does not run
//! models (`engine` does).

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::style::{StyleError, StyleSpec};
use stylerd_manifest::Manifest as ManifestFile;
pub use stylerd_manifest::{AnyTag, SizeMismatch, SizeSupport};

/// A manifest as read from `dir`: the file's contents (the shared
/// [`stylerd_manifest::Manifest`], reached through `Deref`) and the folder its `file` is
/// relative to.
#[derive(Clone, Debug)]
pub struct Manifest {
    contents: ManifestFile,
    /// Folder the manifest was read from; `file` is relative to it.
    pub dir: PathBuf,
}

impl std::ops::Deref for Manifest {
    type Target = ManifestFile;
    fn deref(&self) -> &ManifestFile {
        &self.contents
    }
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
        Ok(Self {
            contents: ManifestFile::parse(text)?,
            dir: PathBuf::new(),
        })
    }

    /// The file's contents.
    pub fn contents(&self) -> &ManifestFile {
        &self.contents
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

    /// The style vector for a spec: `Some(weights)` for a model with a style input, `None`
    /// for a single-style network (after checking the spec names its one style).
    pub fn style_weights(&self, spec: &StyleSpec) -> Result<Option<Vec<f32>>, StyleSelectError> {
        if self.style_input.is_some() && self.styles.is_empty() {
            return Err(StyleSelectError::NeedsImage(self.name.clone()));
        }
        let weights = spec.weights(&self.style_names())?;
        Ok(self.style_input.is_some().then_some(weights))
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
    use crate::frame::{Layout, ValueRange};

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
