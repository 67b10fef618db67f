//! `stylerd quantize`: INT8 without device-specific calibration caches.
//!
//! Runs the FP32 ONNX model with ONNX Runtime on CPU over calibration frames (a folder of
//! pictures, or N frames of any source URI), collecting the range of every Conv input
//! ([`calibrate`]), and writes a QDQ ONNX model with per-channel int8 weights ([`qdq`]) plus
//! its manifest. The same file runs INT8 on CPU through ONNX Runtime and builds an INT8
//! TensorRT engine on any Jetson (`engines/build-trt.sh --int8`). [`bench`] compares it
//! with FP32 on held-out frames. This module sits beside `bench`: it uses engines, sources
//! and manifests, and nothing uses it but the command line. `frames` collects calibration
//! and held-out frames.

pub mod bench;
pub mod calibrate;
mod frames;
pub mod qdq;

pub use frames::{check_disjoint, frames_from_dir, frames_from_source};

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use onnx_protobuf::{Message, ModelProto};
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::TensorRef;
use serde::Serialize;
use thiserror::Error;

use self::calibrate::{Histogram, Method};
use crate::config::{Size, SourceUri};
use crate::engine::EngineError;
use crate::frame::{self, RgbImage};
use crate::model::{Manifest, ModelError};

#[derive(Debug, Error)]
pub enum QuantizeError {
    #[error(transparent)]
    Manifest(#[from] ModelError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("cannot quantize this model: {0}")]
    Model(String),
    #[error("cannot read {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("calibration run failed: {0}")]
    Run(String),
    #[error("calibration frames: {0}")]
    Frames(String),
}

#[derive(Clone, Debug)]
pub struct QuantizeOptions {
    pub model: String,
    pub models_dir: PathBuf,
    /// Folder of calibration pictures (PNG/JPEG); crops of them are used.
    pub calib: Option<PathBuf>,
    /// Calibration frames from a source URI instead (test://, file://..., rtsp://...).
    pub calib_source: Option<SourceUri>,
    /// Calibration frames.
    pub frames: usize,
    /// Calibration (and bench) size WIDTHxHEIGHT.
    pub size: Size,
    /// Output QDQ model; its manifest is written beside it (`.toml`).
    pub out: PathBuf,
    /// How activation ranges are chosen from the calibration histograms.
    pub method: Method,
    /// Also quantize conv outputs (ONNX Runtime fuses Conv into QLinearConv only between
    /// a DequantizeLinear and a QuantizeLinear; TensorRT does not need it).
    pub conv_outputs: bool,
    /// Integer type of the activations: int8 for TensorRT and ARM CPUs (ONNX Runtime on ARM
    /// fuses them with --conv-outputs); uint8 for ONNX Runtime on x86 (which runs int8
    /// activations dequantized, in float).
    pub activations: qdq::Activations,
    /// The new model's description, in place of the source model's (the INT8 note is
    /// appended either way).
    pub description: Option<String>,
    /// Then compare INT8 with FP32 on held-out frames (latency ratio, PSNR, SSIM).
    pub bench: bool,
    /// Held-out frames for --bench: one crop per picture of --eval DIR (cycling if fewer),
    /// or, with --calib-source, the source's frames after the calibration ones.
    pub bench_frames: usize,
    /// Folder of held-out pictures for --bench, disjoint from --calib (checked by content).
    pub eval: Option<PathBuf>,
    /// Timed runs per model for --bench.
    pub iters: usize,
    /// ONNX Runtime threads.
    pub threads: usize,
}

/// What `quantize` needs besides the frames.
#[derive(Clone, Debug)]
pub struct Options {
    pub model: String,
    pub models_dir: PathBuf,
    pub method: Method,
    pub conv_outputs: bool,
    pub activations: qdq::Activations,
    /// Replaces the source model's description in the new manifest.
    pub description: Option<String>,
    pub out: PathBuf,
    pub threads: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub model: PathBuf,
    pub manifest: PathBuf,
    pub name: String,
    pub sha256: String,
    pub method: Method,
    pub calibration_frames: usize,
    pub summary: qdq::QdqSummary,
    /// Clipping range per quantized activation.
    pub ranges: Vec<(String, f32)>,
}

/// Calibrates on `frames` and writes the QDQ model and its manifest.
pub fn quantize(opts: &Options, frames: &[RgbImage]) -> Result<Report, QuantizeError> {
    if frames.is_empty() {
        return Err(QuantizeError::Frames("no calibration frames".into()));
    }
    let manifest = Manifest::find(&opts.models_dir, &opts.model)?;
    if manifest.style_vector_len.is_some() {
        return Err(QuantizeError::Model(format!(
            "model {} takes a computed style vector; only models with named styles or none \
             can be calibrated here",
            manifest.name
        )));
    }
    let path = manifest.verify_file()?;
    let bytes = fs::read(&path).map_err(|e| QuantizeError::Read {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let model = ModelProto::parse_from_bytes(&bytes).map_err(|e| QuantizeError::Read {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let sites = qdq::conv_sites(&model);
    let mut names: Vec<String> = Vec::new();
    for s in &sites {
        if !names.contains(&s.input) {
            names.push(s.input.clone());
        }
        if opts.conv_outputs && !names.contains(&s.output) {
            names.push(s.output.clone());
        }
    }
    let hists = collect(
        &manifest,
        &qdq::with_outputs(&model, &names),
        &names,
        frames,
        opts,
    )?;
    let ranges: HashMap<String, f32> = hists
        .iter()
        .map(|(n, h)| (n.clone(), h.amax(opts.method)))
        .collect();
    let (qmodel, summary) = qdq::to_qdq(&model, &ranges, opts.conv_outputs, opts.activations)?;
    let out_bytes = qmodel
        .write_to_bytes()
        .map_err(|e| QuantizeError::Model(e.to_string()))?;
    write(&opts.out, &out_bytes)?;
    let sha256 = crate::model::sha256_hex(&out_bytes);
    let name = opts
        .out
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("quantized")
        .to_string();
    let manifest_path = opts.out.with_extension("toml");
    let text = derived_manifest(&manifest, &name, &opts.out, &sha256, opts, frames.len())?;
    write(&manifest_path, text.as_bytes())?;
    Ok(Report {
        model: opts.out.clone(),
        manifest: manifest_path,
        name,
        sha256,
        method: opts.method,
        calibration_frames: frames.len(),
        summary,
        ranges: names
            .iter()
            .map(|n| (n.clone(), ranges.get(n).copied().unwrap_or_default()))
            .collect(),
    })
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), QuantizeError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|source| QuantizeError::Write {
            path: dir.into(),
            source,
        })?;
    }
    fs::write(path, bytes).map_err(|source| QuantizeError::Write {
        path: path.into(),
        source,
    })
}

/// The source model's manifest with the new name, file, checksum and provenance.
fn derived_manifest(
    m: &Manifest,
    name: &str,
    out: &Path,
    sha256: &str,
    opts: &Options,
    frames: usize,
) -> Result<String, QuantizeError> {
    let mut d = m.contents().clone();
    d.name = name.into();
    d.file = out.file_name().map(PathBuf::from).unwrap_or_default();
    d.sha256 = sha256.into();
    d.description = format!(
        "{} (INT8 QDQ: per-channel int8 conv weights, {} conv inputs{})",
        opts.description.as_deref().unwrap_or(&m.description),
        match opts.activations {
            qdq::Activations::Int8 => "int8",
            qdq::Activations::Uint8 => "uint8",
        },
        if opts.conv_outputs {
            " and outputs"
        } else {
            ""
        }
    );
    d.provenance = format!(
        "stylerd quantize {} from {} (sha256 {}), {:?} calibration on {frames} frames{}; {}",
        env!("CARGO_PKG_VERSION"),
        m.file.display(),
        m.sha256,
        opts.method,
        if opts.conv_outputs {
            ", conv outputs quantized too"
        } else {
            ""
        },
        m.provenance
    );
    d.check().map_err(QuantizeError::Model)?;
    Ok(d.to_toml())
}

/// Runs the model (with conv tensors exposed as outputs) over the frames.
fn collect(
    m: &Manifest,
    augmented: &ModelProto,
    names: &[String],
    frames: &[RgbImage],
    opts: &Options,
) -> Result<Vec<(String, Histogram)>, QuantizeError> {
    let env = crate::engine::onnx::environment(None)?;
    let bytes = augmented
        .write_to_bytes()
        .map_err(|e| QuantizeError::Model(e.to_string()))?;
    let run = |e: ort::Error| QuantizeError::Run(e.to_string());
    let mut session = Session::builder(env)
        .map_err(run)?
        .with_optimization_level(GraphOptimizationLevel::Level1)
        .map_err(|e| run(e.into()))?
        .with_intra_threads(opts.threads.max(1))
        .map_err(|e| run(e.into()))?
        .commit_from_memory(&bytes)
        .map_err(run)?;
    let mut hists: Vec<(String, Histogram)> = names
        .iter()
        .map(|n| (n.clone(), Histogram::default()))
        .collect();
    let styles = m.styles.len();
    for (i, img) in frames.iter().enumerate() {
        let t = frame::to_tensor(img, m.layout, m.input_range, m.pad_multiple)
            .map_err(|e| QuantizeError::Frames(e.to_string()))?;
        let image = TensorRef::from_array_view((t.shape(), t.data.as_slice())).map_err(run)?;
        // Cycle through the styles so every style's statistics are covered.
        let mut weights = vec![0f32; styles.max(1)];
        weights[i % styles.max(1)] = 1.0;
        let outputs = match &m.style_input {
            Some(name) => {
                let style = TensorRef::from_array_view(([weights.len()], weights.as_slice()))
                    .map_err(run)?;
                session.run(ort::inputs![m.input.as_str() => image, name.as_str() => style])
            }
            None => session.run(ort::inputs![m.input.as_str() => image]),
        }
        .map_err(run)?;
        for (name, hist) in &mut hists {
            let value = outputs
                .get(name.as_str())
                .ok_or_else(|| QuantizeError::Run(format!("no output {name}")))?;
            let (_, data) = value.try_extract_tensor::<f32>().map_err(run)?;
            hist.add(data);
        }
    }
    Ok(hists)
}

/// `stylerd quantize` (and `--bench`): prints a JSON report on stdout.
pub fn run(args: QuantizeOptions) -> anyhow::Result<()> {
    let frames_for = |skip: usize, count: usize| -> anyhow::Result<Vec<RgbImage>> {
        Ok(match (&args.calib, &args.calib_source) {
            (Some(dir), _) => frames_from_dir(dir, args.size, skip, count)?,
            (None, Some(uri)) => frames_from_source(uri, args.size, skip, count)?,
            (None, None) => {
                anyhow::bail!("give calibration frames: --calib DIR or --calib-source URI")
            }
        })
    };
    if args.bench
        && let Some(calib) = &args.calib
    {
        let Some(eval) = &args.eval else {
            anyhow::bail!(
                "--bench with --calib DIR needs --eval DIR: held-out pictures disjoint from the calibration ones"
            );
        };
        check_disjoint(calib, eval)?;
    }
    let frames = frames_for(0, args.frames).context("collecting calibration frames")?;
    let opts = Options {
        model: args.model.clone(),
        models_dir: args.models_dir.clone(),
        method: args.method,
        conv_outputs: args.conv_outputs,
        activations: args.activations,
        description: args.description.clone(),
        out: args.out.clone(),
        threads: args.threads,
    };
    let report = quantize(&opts, &frames).with_context(|| format!("quantizing {}", args.model))?;
    eprintln!(
        "wrote {} and {} ({} convs, {} activations, {:?})",
        report.model.display(),
        report.manifest.display(),
        report.summary.convs,
        report.summary.activations,
        report.method
    );
    let mut doc = serde_json::json!({ "quantize": report });
    if args.bench {
        let held_out = match &args.eval {
            Some(dir) => frames_from_dir(dir, args.size, 0, args.bench_frames),
            None => frames_for(args.frames, args.bench_frames)
                .map_err(|e| QuantizeError::Frames(format!("{e:#}"))),
        }
        .context("collecting held-out frames")?;
        let dir = report
            .model
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let b = bench::compare(
            &bench::Side {
                models_dir: args.models_dir.clone(),
                model: args.model.clone(),
            },
            &bench::Side {
                models_dir: dir,
                model: report.name.clone(),
            },
            args.size,
            &held_out,
            args.iters,
            args.threads,
        )?;
        doc["bench"] = serde_json::to_value(&b)?;
    }
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(())
}
