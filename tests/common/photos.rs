//! The photo pool `make test` fetches (`make trainer-photos`, trainer/photos.tsv): disjoint
//! train, calibration and held-out folders under .deps/photos, and the models beside them.

use std::path::PathBuf;

use super::root;

/// `.deps/photos/<split>`: `train`, `calib` or `eval`.
pub fn photo_dir(split: &str) -> PathBuf {
    root().join(".deps/photos").join(split)
}

/// `engines/` when multistyle26, the photo pool and ONNX Runtime are there; else records the
/// skip with the reason and returns None.
pub fn models_or_skip() -> Option<PathBuf> {
    let models = root().join("engines");
    if !models.join("multistyle26.onnx").is_file() {
        stylerd_testkit::skip(
            stylerd_testkit::Kind::Setup,
            "engines/multistyle26.onnx missing (make models)",
        );
        return None;
    }
    if !photo_dir("calib").is_dir() || !photo_dir("eval").is_dir() {
        stylerd_testkit::skip(
            stylerd_testkit::Kind::Setup,
            ".deps/photos missing (make trainer-photos)",
        );
        return None;
    }
    if stylerd::engine::onnx::locate_library(None).is_err() {
        stylerd_testkit::skip(
            stylerd_testkit::Kind::Setup,
            "ONNX Runtime library missing (make deps)",
        );
        return None;
    }
    Some(models)
}
