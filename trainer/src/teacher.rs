//! ONNX Runtime access for the trainer: a teacher network for distillation (e.g.
//! multistyle26 with one style picked) and the runner the export round-trip test uses.
//! Loads libonnxruntime dynamically (ORT_DYLIB_PATH or the Makefile's `.deps/onnxruntime`).
//! Owns no training logic.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::session::Session;
use ort::value::TensorRef;

/// Why ONNX Runtime or a model could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TeacherError {
    #[error(
        "libonnxruntime.so.1.31.1 not found (searched {0}); run `make deps` or set ORT_DYLIB_PATH"
    )]
    RuntimeMissing(String),
    #[error("cannot load ONNX Runtime from {path}: {message}")]
    RuntimeLoad { path: String, message: String },
    #[error("cannot load model {path}: {message}")]
    Load { path: String, message: String },
    #[error("running {model}: {message}")]
    Run { model: String, message: String },
}

const LIB_NAME: &str = "libonnxruntime.so.1.31.1";

static ENVIRONMENT: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();

/// `ORT_DYLIB_PATH`, then `.deps/onnxruntime/` under the working directory and the workspace.
pub fn locate_runtime() -> Result<PathBuf, TeacherError> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        candidates.push(p.into());
    }
    candidates.push(Path::new(".deps/onnxruntime").join(LIB_NAME));
    candidates.push(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../.deps/onnxruntime")
            .join(LIB_NAME),
    );
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| {
            TeacherError::RuntimeMissing(
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            )
        })
}

fn environment() -> Result<&'static ort::environment::Environment, TeacherError> {
    let path = locate_runtime()?;
    let env = ENVIRONMENT.get_or_init(|| {
        ort::init_from(&path)
            .map_err(|e| e.to_string())?
            .with_name("stylerd-train")
            .with_telemetry(false)
            .build()
            .map_err(|e| e.to_string())
    });
    env.as_ref().map_err(|message| TeacherError::RuntimeLoad {
        path: path.display().to_string(),
        message: message.clone(),
    })
}

/// An image-to-image ONNX model run one frame at a time.
pub struct OnnxImageModel {
    session: Session,
    name: String,
    input: String,
    output: String,
    /// A style-vector input and its value (multistyle26's `style_weights`).
    style: Option<(String, Vec<f32>)>,
}

impl OnnxImageModel {
    pub fn open(
        path: &Path,
        input: &str,
        output: &str,
        style: Option<(String, Vec<f32>)>,
    ) -> Result<Self, TeacherError> {
        let env = environment()?;
        let load = |e: ort::Error| TeacherError::Load {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let session = Session::builder(env)
            .map_err(load)?
            .with_intra_threads(1)
            .map_err(|e| load(e.into()))?
            .commit_from_file(path)
            .map_err(load)?;
        Ok(OnnxImageModel {
            session,
            name: path.display().to_string(),
            input: input.to_string(),
            output: output.to_string(),
            style,
        })
    }

    /// For tests: an `image` -> `stylized` model, or `None` after recording `what` as
    /// skipped in the skip ledger when ONNX Runtime is not installed.
    #[cfg(test)]
    pub(crate) fn open_or_skip(path: &Path, what: &str) -> Option<Self> {
        Self::open_styled_or_skip(path, what, None)
    }

    /// [`Self::open_or_skip`] with a style-vector input and its value.
    #[cfg(test)]
    pub(crate) fn open_styled_or_skip(
        path: &Path,
        what: &str,
        style: Option<(String, Vec<f32>)>,
    ) -> Option<Self> {
        match Self::open(path, "image", "stylized", style) {
            Ok(m) => Some(m),
            Err(TeacherError::RuntimeMissing(s)) => {
                stylerd_testkit::skip(
                    stylerd_testkit::Kind::Setup,
                    &format!("{what}: ONNX Runtime not found ({s})"),
                );
                None
            }
            Err(e) => panic!("{e}"),
        }
    }

    /// Runs one [1, 3, h, w] frame; returns the output values in NCHW order.
    pub fn run(&mut self, data: &[f32], shape: [usize; 4]) -> Result<Vec<f32>, TeacherError> {
        let run = |e: ort::Error| TeacherError::Run {
            model: self.name.clone(),
            message: e.to_string(),
        };
        let image = TensorRef::from_array_view((shape, data)).map_err(run)?;
        let outputs = match &self.style {
            Some((name, w)) => {
                let style = TensorRef::from_array_view(([w.len()], w.as_slice())).map_err(run)?;
                self.session
                    .run(ort::inputs![self.input.as_str() => image, name.as_str() => style])
            }
            None => self.session.run(ort::inputs![self.input.as_str() => image]),
        }
        .map_err(|e| TeacherError::Run {
            model: self.name.clone(),
            message: e.to_string(),
        })?;
        let value = outputs.get(&self.output).ok_or_else(|| TeacherError::Run {
            model: self.name.clone(),
            message: format!("no output {}", self.output),
        })?;
        let (_, out) = value
            .try_extract_tensor::<f32>()
            .map_err(|e| TeacherError::Run {
                model: self.name.clone(),
                message: e.to_string(),
            })?;
        Ok(out.to_vec())
    }

    /// Feeds `w` to the style-vector input from now on (a model opened with one).
    pub fn set_style_vector(&mut self, w: Vec<f32>) {
        if let Some((_, v)) = &mut self.style {
            *v = w;
        }
    }

    /// multistyle26 with style `k` of 26 selected (a one-hot style vector).
    pub fn multistyle(path: &Path, k: usize) -> Result<Self, TeacherError> {
        let mut w = vec![0.0; 26];
        w[k.min(25)] = 1.0;
        Self::open(path, "image", "stylized", Some(("style_weights".into(), w)))
    }
}
