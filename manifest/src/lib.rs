//! The model manifest, `engines/<name>.toml` beside each ONNX file: which file holds the
//! network and its sha256, the names of its inputs and outputs, the tensor layout and value
//! range, how to pad, which sizes it accepts and which named styles its style vector selects.
//!
//! One serializable type: the daemon reads it (`stylerd::model`, which adds the file checks)
//! and the trainer writes it (`stylerd-train export`). Pure data and its own rules; no file
//! is read here.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Memory layout of an image tensor (batch 1, 3 channels).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    Nchw,
    Nhwc,
}

/// The tensor values that pixel values 0 and 255 map to.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "[f32; 2]", into = "[f32; 2]")]
pub struct ValueRange {
    pub lo: f32,
    pub hi: f32,
}

impl From<[f32; 2]> for ValueRange {
    fn from([lo, hi]: [f32; 2]) -> Self {
        Self { lo, hi }
    }
}

impl From<ValueRange> for [f32; 2] {
    fn from(r: ValueRange) -> Self {
        [r.lo, r.hi]
    }
}

impl ValueRange {
    pub const UNIT: ValueRange = ValueRange { lo: 0.0, hi: 1.0 };
}

/// Which frame sizes a network accepts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SizeSupport {
    /// `"any"`: any size (after padding to `pad-multiple`).
    Any(AnyTag),
    /// `[width, height]`: exactly this size.
    Fixed([u32; 2]),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AnyTag {
    Any,
}

/// A model manifest as written in `engines/<name>.toml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
    /// A student distilled from one style of another model: that model's name. While the
    /// teacher runs that style (`student-style`), the governor may run the student instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub student_of: Option<String>,
    /// The teacher's style name the student reproduces, or `all` for a conditional student
    /// (it takes the teacher's style vector and stands in for every style and blend).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub student_style: Option<String>,
}

/// `student-style` of a conditional student: it reproduces every style of its teacher.
pub const ALL_STYLES: &str = "all";

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

impl Manifest {
    /// Parses and checks manifest text; the error is one sentence.
    pub fn parse(text: &str) -> Result<Self, String> {
        let m: Manifest = toml::from_str(text).map_err(|e| e.message().to_string())?;
        m.check()?;
        Ok(m)
    }

    pub fn check(&self) -> Result<(), String> {
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
        match (&self.student_of, &self.student_style) {
            (Some(_), None) | (None, Some(_)) => {
                return Err(
                    "student-of and student-style go together (the teacher model and \
                            its style the student reproduces)"
                        .into(),
                );
            }
            (Some(_), Some(s))
                if s == ALL_STYLES && (self.style_input.is_none() || self.styles.is_empty()) =>
            {
                return Err(
                    "a student of all styles (student-style = \"all\") needs a style-input and its styles"
                        .into(),
                );
            }
            (Some(_), Some(s)) if s == ALL_STYLES => {}
            (Some(_), Some(_)) if self.style_input.is_some() => {
                return Err(
                    "a student (student-of) reproduces one style and takes no style-input".into(),
                );
            }
            _ => {}
        }
        Ok(())
    }

    /// The manifest as TOML text, as `engines/<name>.toml` holds it.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a manifest always serializes")
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every committed manifest parses, and writing it back gives the same manifest: what
    /// the trainer writes is what the daemon reads.
    #[test]
    fn committed_manifests_round_trip() {
        let engines = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../engines");
        let mut seen = 0;
        for entry in std::fs::read_dir(&engines).unwrap().flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "toml") {
                continue;
            }
            let m = Manifest::parse(&std::fs::read_to_string(&path).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(Manifest::parse(&m.to_toml()), Ok(m), "{}", path.display());
            seen += 1;
        }
        assert!(seen >= 4, "only {seen} manifests in {}", engines.display());
    }

    #[test]
    fn bad_manifests_get_a_sentence() {
        let e = Manifest::parse("name = 1").unwrap_err();
        assert!(e.contains("invalid type"), "{e}");
        let base = "name = \"s\"\nfile = \"s.onnx\"\nsha256 = \"".to_string()
            + &"0".repeat(64)
            + "\"\nlicence = \"x\"\nprovenance = \"x\"\ninput = \"image\"\n\
               output = \"stylized\"\nlayout = \"nchw\"\nsize = \"any\"\n";
        let student = Manifest::parse(
            &(base.clone() + "student-of = \"multistyle26\"\nstudent-style = \"style-19\"\n"),
        )
        .unwrap();
        assert_eq!(student.student_style.as_deref(), Some("style-19"));
        assert_eq!(Manifest::parse(&student.to_toml()), Ok(student));
        let e = Manifest::parse(&(base.clone() + "student-of = \"multistyle26\"\n")).unwrap_err();
        assert!(e.contains("go together"), "{e}");
        let e = Manifest::parse(
            &(base.clone() + "student-of = \"m\"\nstudent-style = \"a\"\nstyle-input = \"w\"\n"),
        )
        .unwrap_err();
        assert!(e.contains("takes no style-input"), "{e}");
        // A student of all styles takes the teacher's style vector, and must say so.
        let all = base.clone() + "student-of = \"m\"\nstudent-style = \"all\"\n";
        let e = Manifest::parse(&all).unwrap_err();
        assert_eq!(
            e,
            "a student of all styles (student-style = \"all\") needs a style-input and its styles"
        );
        let m = Manifest::parse(&(all + "style-input = \"w\"\nstyles = [\"a\", \"b\"]\n")).unwrap();
        assert_eq!(m.student_style.as_deref(), Some(ALL_STYLES));
        assert_eq!(Manifest::parse(&m.to_toml()), Ok(m));
    }
}
