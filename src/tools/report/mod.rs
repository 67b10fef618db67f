//! `stylerd report`: the evaluation report, `report.md` with PNG plots in one folder.
//!
//! Reads what other commands measured — the daemon's `--timeline` (latency, fps, power,
//! governor), `stylerd bench` JSON, the INT8 and flicker JSON — and adds what it can work
//! out itself from the models: a grid of every style on a test picture with SSIM against
//! the content, and an analytic Jetson AGX Xavier 15 W estimate from FLOPs counted in the
//! ONNX graphs. Every input but the models is optional; a missing one leaves its section
//! saying which command produces it. It measures nothing live and never asserts a budget.
//!
//! # Layout
//! - [`timeline`]: the `--timeline` JSON lines.
//! - [`tables`]: Markdown tables from bench / INT8 / flicker JSON.
//! - [`plot`]: the PNG charts and the style grid (plotters, DejaVu Sans).
//! - [`styles`]: the test picture and one engine run per style.
//! - [`flops`]: FLOPs per frame from an ONNX graph.
//! - [`shapes`]: tensor shapes through an ONNX graph.
//! - [`fold`]: constant folding and shape rules of single operators, for `shapes`.
//! - [`estimate`]: the Xavier 15 W arithmetic and its assumptions.

pub mod estimate;
pub mod flops;
pub mod fold;
pub mod plot;
pub mod shapes;
pub mod styles;
pub mod tables;
pub mod timeline;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::engine::EngineError;

use self::plot::PlotError;
use self::timeline::{STAGES, Sample, TimelineError};

#[derive(Debug, Error)]
pub enum ReportError {
    #[error(transparent)]
    Plot(#[from] PlotError),
    #[error(transparent)]
    Timeline(#[from] TimelineError),
    #[error(transparent)]
    Flops(#[from] flops::FlopsError),
    #[error("cannot run the model for the style grid: {0}")]
    Engine(#[from] EngineError),
    #[error("model {model} returned a {got} picture for a {want} input; cannot compare them")]
    OutputSize {
        model: String,
        got: String,
        want: String,
    },
    #[error("cannot read {path}: {message}")]
    Input { path: PathBuf, message: String },
    #[error("model {0} has no styles to show; pick one with styles (--model multistyle26)")]
    NoStyles(String),
    #[error("cannot write {path}: {message}")]
    Write { path: PathBuf, message: String },
}

#[derive(Clone, Debug)]
pub struct ReportOptions {
    /// JSON lines from `stylerd run --timeline FILE`.
    pub timeline: Option<PathBuf>,
    /// JSON printed by `stylerd bench`.
    pub bench: Option<PathBuf>,
    /// INT8 vs FP32 JSON from `stylerd quantize`.
    pub quantize: Option<PathBuf>,
    /// Flicker JSON (stabilizer off/on) from the flicker bench.
    pub flicker: Option<PathBuf>,
    pub models_dir: PathBuf,
    /// Model whose styles make the grid.
    pub model: String,
    /// Content picture for the style grid (default: a generated test picture).
    pub image: Option<PathBuf>,
    /// Output folder (report.md and the PNGs).
    pub out: PathBuf,
    /// TrueType font for the plots' text.
    pub font: PathBuf,
}

/// The section headings, in order; the test checks each is present.
pub const SECTIONS: [&str; 10] = [
    "## Latency",
    "## Throughput",
    "## Power",
    "## Governor",
    "## Engine benchmark",
    "## INT8 vs FP32",
    "## Temporal stability",
    "## Styles",
    "## SSIM per style",
    "## Jetson AGX Xavier 15 W estimate",
];

/// `stylerd report`: writes the report and prints the path of `report.md`.
pub fn run(args: ReportOptions) -> anyhow::Result<()> {
    let path = write(&args)?;
    println!("{}", path.display());
    Ok(())
}

/// Writes `report.md` and its PNGs into `args.out`; returns the path of `report.md`.
pub fn write(args: &ReportOptions) -> Result<PathBuf, ReportError> {
    plot::load_font(&args.font)?;
    std::fs::create_dir_all(&args.out).map_err(|e| ReportError::Write {
        path: args.out.clone(),
        message: e.to_string(),
    })?;
    let mut md = String::from("# stylerd evaluation report\n\n");
    let inputs = [
        ("timeline", &args.timeline),
        ("bench", &args.bench),
        ("INT8", &args.quantize),
        ("flicker", &args.flicker),
    ];
    for (what, path) in inputs {
        let shown = path
            .as_ref()
            .map_or("not given".into(), |p| format!("`{}`", p.display()));
        let _ = writeln!(md, "- {what}: {shown}");
    }
    let _ = writeln!(md, "- models: `{}`\n", args.models_dir.display());

    match &args.timeline {
        Some(path) => md.push_str(&timeline_sections(&timeline::read(path)?, &args.out)?),
        None => {
            for heading in &SECTIONS[..4] {
                let _ = writeln!(
                    md,
                    "{heading}\n\nNo timeline given. Record one with `stylerd run --timeline \
                     out/timeline.jsonl ...` (or `make report`) and pass `--timeline \
                     out/timeline.jsonl`.\n"
                );
            }
        }
    }
    md.push_str("## Engine benchmark\n\n");
    match &args.bench {
        Some(path) => md.push_str(&tables::bench(&tables::read_object(path)?)),
        None => md.push_str(
            "No bench file given. Run `stylerd bench > out/bench.json` (or `make bench`) and \
             pass `--bench out/bench.json`.\n",
        ),
    }
    md.push_str("\n## INT8 vs FP32\n\n");
    match &args.quantize {
        Some(path) => md.push_str(&tables::key_values(&tables::read_object(path)?)),
        None => md.push_str(
            "No INT8 results given. Run `stylerd quantize` with its comparison written to a \
             JSON file and pass `--quantize FILE`.\n",
        ),
    }
    md.push_str("\n## Temporal stability (flicker)\n\n");
    match &args.flicker {
        Some(path) => md.push_str(&tables::key_values(&tables::read_object(path)?)),
        None => md.push_str(
            "No flicker results given. Run the flicker bench (stabilizer off and on) to a JSON \
             file and pass `--flicker FILE`.\n",
        ),
    }
    md.push_str(&style_sections(args)?);
    md.push_str("\n## Jetson AGX Xavier 15 W estimate\n\n");
    let (rows, skipped) = estimate::rows(&args.models_dir)?;
    md.push_str(&estimate::markdown(&rows, &skipped));

    let path = args.out.join("report.md");
    std::fs::write(&path, md).map_err(|e| ReportError::Write {
        path: path.clone(),
        message: e.to_string(),
    })?;
    Ok(path)
}

fn timeline_sections(samples: &[Sample], out: &Path) -> Result<String, ReportError> {
    let mut md = String::new();
    let last = samples.last().map_or(0.0, |s| s.t);
    let budget_ms = samples.iter().find_map(|s| s.budget_latency_ms);
    let budget_w = samples.iter().find_map(|s| s.budget_power_w);

    // Latency: the status document carries percentiles of a sliding window, not every
    // frame, so the histogram is over the per-sample percentiles.
    let p50: Vec<f64> = samples.iter().filter_map(|s| s.g2g_p50).collect();
    let p95: Vec<f64> = samples.iter().filter_map(|s| s.g2g_p95).collect();
    let _ = writeln!(
        md,
        "## Latency\n\n{} samples over {last:.0} s. Each sample is the daemon's status once \
         a second: percentiles over its last 10 s window.\n",
        samples.len()
    );
    if p95.is_empty() {
        md.push_str(
            "No glass-to-glass latency in the timeline (no frame reached the encoder).\n\n",
        );
    } else {
        plot::histogram(
            &out.join("latency_histogram.png"),
            "Glass-to-glass latency (per-sample window percentiles)",
            "latency (ms)",
            &[("p50", &p50), ("p95", &p95)],
            budget_ms,
        )?;
        let max95 = p95.iter().copied().fold(f64::MIN, f64::max);
        let over = budget_ms.map_or(0, |b| p95.iter().filter(|&&v| v > b).count());
        let _ = writeln!(
            md,
            "![latency histogram](latency_histogram.png)\n\nGlass-to-glass p95: mean {:.1} ms, \
             worst {max95:.1} ms; {over} of {} samples over the {} budget.\n",
            timeline::mean(p95.iter().map(|&v| Some(v))).unwrap_or(0.0),
            p95.len(),
            budget_ms.map_or("(unknown)".into(), |b| format!("{b:.0} ms")),
        );
    }
    let stage_p50: Vec<Option<f64>> = (0..STAGES.len())
        .map(|i| timeline::mean(samples.iter().map(|s| s.stages[i].0)))
        .collect();
    if stage_p50.iter().any(Option::is_some) {
        let stage_p95: Vec<f64> = (0..STAGES.len())
            .map(|i| timeline::mean(samples.iter().map(|s| s.stages[i].1)).unwrap_or(0.0))
            .collect();
        let p50s: Vec<f64> = stage_p50.iter().map(|v| v.unwrap_or(0.0)).collect();
        plot::bars(
            &out.join("stages.png"),
            "Per-stage latency (mean over the timeline)",
            "ms",
            &STAGES,
            &[("p50", p50s.clone()), ("p95", stage_p95.clone())],
        )?;
        md.push_str(
            "![per-stage breakdown](stages.png)\n\n| stage | p50 ms | p95 ms |\n|---|---:|---:|\n",
        );
        for (i, name) in STAGES.iter().enumerate() {
            let _ = writeln!(md, "| {name} | {:.2} | {:.2} |", p50s[i], stage_p95[i]);
        }
        md.push('\n');
    } else {
        md.push_str("No per-stage timings in the timeline (`latency_ms.stages`).\n\n");
    }

    let fps = timeline::points(samples, |s| s.fps_out);
    md.push_str("## Throughput\n\n");
    if fps.is_empty() {
        md.push_str("No `fps.out` in the timeline.\n\n");
    } else {
        plot::series(
            &out.join("fps.png"),
            "Output frame rate",
            "frames per second",
            &[("fps out", fps.clone())],
            None,
            false,
        )?;
        let mean = timeline::mean(fps.iter().map(|p| Some(p.1))).unwrap_or(0.0);
        let min = fps.iter().map(|p| p.1).fold(f64::MAX, f64::min);
        let _ = writeln!(
            md,
            "![fps over time](fps.png)\n\nMean {mean:.1} fps, lowest {min:.1} fps.\n"
        );
    }

    let power = timeline::points(samples, |s| s.power_w);
    md.push_str("## Power\n\n");
    if power.is_empty() {
        let source = samples.iter().find_map(|s| s.power_source.clone());
        let _ = writeln!(
            md,
            "No power sensor (power.source = {}): the daemon reports power only from real \
             rails (INA3221 on the Jetson, RAPL on x86), never made up.\n",
            source.as_deref().unwrap_or("absent")
        );
    } else {
        let budget = budget_w.map(|b| (b, "budget"));
        plot::series(
            &out.join("power.png"),
            "Board power",
            "watts",
            &[("total", power.clone())],
            budget,
            false,
        )?;
        let mean = timeline::mean(power.iter().map(|p| Some(p.1))).unwrap_or(0.0);
        let _ = writeln!(
            md,
            "![power over time](power.png)\n\nMean {mean:.2} W against a {} budget.\n",
            budget_w.map_or("(unknown)".into(), |b| format!("{b:.0} W"))
        );
    }

    md.push_str("## Governor\n\n");
    let levels = timeline::points(samples, |s| s.governor.as_ref().map(|g| g.level as f64));
    if levels.is_empty() {
        md.push_str(
            "No `governor` field in the timeline: the daemon that wrote it has no budget \
             governor, or it was disabled.\n\n",
        );
    } else {
        plot::series(
            &out.join("governor.png"),
            "Governor level (0 = the configured model at full size)",
            "level",
            &[("level", levels)],
            None,
            true,
        )?;
        md.push_str(
            "![governor level over time](governor.png)\n\n| t (s) | level | model | size | skip | reason |\n\
             |---:|---:|---|---|---:|---|\n",
        );
        for (t, g) in timeline::governor_changes(samples) {
            let size = g.size.map_or("-".into(), |[w, h]| format!("{w}x{h}"));
            let skip = g.skip.map_or("-".into(), |s| s.to_string());
            let model = g.model.as_deref().unwrap_or("-");
            let reason = g.reason.replace('|', "\\|");
            let _ = writeln!(
                md,
                "| {t:.1} | {} | {model} | {size} | {skip} | {reason} |",
                g.level
            );
        }
        md.push('\n');
    }
    Ok(md)
}

fn style_sections(args: &ReportOptions) -> Result<String, ReportError> {
    let content = styles::content(args.image.as_deref(), styles::SIDE)?;
    let styled = styles::run_all(&args.models_dir, &args.model, &content)?;
    // Tiles at half size keep the 27-tile grid near 1300 px wide.
    let mut tiles = vec![("content".to_string(), styles::shrink(&content, 2))];
    tiles.extend(
        styled
            .iter()
            .map(|s| (s.name.clone(), styles::shrink(&s.image, 2))),
    );
    plot::grid(&args.out.join("styles.png"), &tiles, 7)?;
    let source = args
        .image
        .as_ref()
        .map_or("a generated test picture".into(), |p| {
            format!("`{}`", p.display())
        });
    let mut md = String::new();
    let _ = writeln!(
        md,
        "\n## Styles\n\nEvery style of `{}` on {source} at {side}x{side} (shown at half size).\n\n\
         ![style grid](styles.png)\n\n## SSIM per style\n\nSSIM of each output against the \
         content picture (`quality::ssim`: luma, 8x8 windows every 4 pixels, as the flicker bench uses): how much structure survives \
         the style. 1 = unchanged.\n\n| style | SSIM vs content | stylize ms (this machine) |\n\
         |---|---:|---:|",
        args.model,
        side = styles::SIDE
    );
    for s in &styled {
        let _ = writeln!(md, "| {} | {:.3} | {:.1} |", s.name, s.ssim, s.ms);
    }
    Ok(md)
}
