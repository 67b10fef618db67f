//! `stylerd quantize` end to end: calibrate multistyle26 with ONNX Runtime on real photos,
//! write the QDQ model and its manifest, load that model through our own engine
//! (`engine::open`, sha256 checked) and compare its output with FP32 on held-out frames.
//!
//! Needs `make models` and `make deps` (ONNX Runtime); says `skipped:` otherwise.

use std::path::PathBuf;

use onnx_protobuf::{Message, ModelProto};
use stylerd::config::{EngineConfig, Size};
use stylerd::engine::{self, StageTimes};
use stylerd::frame::RgbImage;
use stylerd::quality::{psnr, ssim};
use stylerd::quantize::calibrate::Method;
use stylerd::quantize::{self, Options};
use stylerd::style::StyleSpec;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Photos from `make deps` when present, else generated pictures with edges and gradients.
fn frames(size: Size, skip: usize, count: usize) -> Vec<RgbImage> {
    let photos = root().join(".deps/train-data");
    if photos.is_dir()
        && let Ok(f) = quantize::frames_from_dir(&photos, size, skip, count)
    {
        return f;
    }
    (skip..skip + count)
        .map(|k| {
            let (w, h) = (size.width, size.height);
            let data = (0..w * h)
                .flat_map(|i| {
                    let (x, y) = (i % w, i / w);
                    let r = ((x * 255 / w) as usize + k * 31) % 256;
                    let g = if (x / 12 + y / 12 + k as u32).is_multiple_of(2) {
                        40
                    } else {
                        210
                    };
                    let b = (y * 255 / h) as u8;
                    [r as u8, g, b]
                })
                .collect();
            RgbImage::new(w, h, data).unwrap()
        })
        .collect()
}

#[test]
fn qdq_model_runs_in_our_engine_close_to_fp32() {
    let models = root().join("engines");
    if !models.join("multistyle26.onnx").is_file() {
        println!("skipped: engines/multistyle26.onnx missing (make models)");
        return;
    }
    if stylerd::engine::onnx::locate_library(None).is_err() {
        println!("skipped: ONNX Runtime library missing (make deps)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let size = Size {
        width: 128,
        height: 96,
    };
    let out = dir.path().join("multistyle26-int8.onnx");
    let opts = Options {
        model: "multistyle26".into(),
        models_dir: models.clone(),
        method: Method::Percentile(99.99),
        conv_outputs: false,
        out: out.clone(),
        threads: 2,
    };
    let report = quantize::quantize(&opts, &frames(size, 0, 8)).unwrap();
    assert_eq!(report.summary.convs, 18);
    assert_eq!(report.summary.activations, 18);
    assert!(report.ranges.iter().all(|(_, r)| *r > 0.0));

    // Structure: every Conv reads a dequantized activation and dequantized int8 weights.
    let model = ModelProto::parse_from_bytes(&std::fs::read(&out).unwrap()).unwrap();
    let g = &model.graph;
    let producer = |name: &str| g.node.iter().find(|n| n.output.iter().any(|o| o == name));
    for conv in g.node.iter().filter(|n| n.op_type == "Conv") {
        for input in &conv.input[..2] {
            let p = producer(input).expect("conv input has a producer");
            assert_eq!(p.op_type, "DequantizeLinear", "{} <- {}", conv.name, input);
        }
    }
    let int8 = g.initializer.iter().filter(|t| t.data_type == 3).count();
    assert!(int8 >= 36, "int8 weights and zero points: {int8}");

    // Load it through the daemon's own engine (manifest + sha256) and compare with FP32.
    let config = |dir: PathBuf, model: &str| EngineConfig {
        models_dir: dir,
        model: model.into(),
        size,
        threads: 2,
        ..Default::default()
    };
    let style = StyleSpec::parse("3").unwrap();
    let mut fp32 = engine::open(&config(models, "multistyle26"), &style).unwrap();
    let mut int8 = engine::open(&config(dir.path().into(), "multistyle26-int8"), &style).unwrap();
    let mut t = StageTimes::default();
    let (mut p_sum, mut s_sum) = (0.0, 0.0);
    let held_out = frames(size, 8, 4);
    for f in &held_out {
        let a = fp32.stylize(f, &mut t).unwrap();
        let b = int8.stylize(f, &mut t).unwrap();
        p_sum += psnr(&a, &b);
        s_sum += ssim(&a, &b);
    }
    let n = held_out.len() as f64;
    println!(
        "INT8 vs FP32 on {} held-out frames: PSNR {:.1} dB, SSIM {:.3}",
        held_out.len(),
        p_sum / n,
        s_sum / n
    );
    assert!(p_sum / n > 27.0, "PSNR {:.1} dB", p_sum / n);
    assert!(s_sum / n > 0.85, "SSIM {:.3}", s_sum / n);
}
