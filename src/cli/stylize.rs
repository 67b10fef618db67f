//! `stylerd stylize`: pictures (one, several, or a folder of them) and video files, with
//! one engine for the whole batch and a progress line per item, no config needed.
//!
//! `stylize IN.jpg OUT.png` writes one PNG; `stylize A.jpg B.png DIR/` or `stylize
//! FOLDER/ DIR/` writes `DIR/<name>.png` for each picture; `stylize clip.mp4 out.mkv`
//! stylizes every frame of a video ([`crate::tools::video`]).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;

use crate::config::{Config, Size};
use crate::engine::{self, Engine};
use crate::frame::RgbImage;
use crate::media::sink;
use crate::mix::{Mix, check_strength};
use crate::style::StyleSpec;
use crate::tools::video::{self, stylize_any_size};

/// Picture files a folder input contributes (by extension, case-insensitive).
const PICTURES: [&str; 3] = ["png", "jpg", "jpeg"];

#[derive(Args, Debug)]
pub struct StylizeArgs {
    /// Inputs, then the output: `IN.jpg OUT.png`, `A.jpg B.jpg... OUTDIR`, `FOLDER OUTDIR`,
    /// or `clip.mp4 out.mkv` (a video; .mkv or .mp4 out, no audio).
    #[arg(required = true, num_args = 2.., value_name = "IN... OUT")]
    paths: Vec<PathBuf>,
    #[arg(long, default_value = "0")]
    style: String,
    #[arg(long, default_value = "multistyle26")]
    model: String,
    #[arg(long, default_value = "engines")]
    models_dir: PathBuf,
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Mix of stylized and original, 0..1 (1 = fully stylized, 0 = the input).
    #[arg(long, default_value_t = 1.0)]
    strength: f64,
    /// Keep the input's colours, take the stylized luminance (BT.601 YCbCr).
    #[arg(long)]
    preserve_color: bool,
    /// Video only: stylize at this size (default: the video's own, rounded down to even).
    #[arg(long)]
    size: Option<String>,
}

/// Whether a path names a video (by extension); anything else is read as a picture.
pub fn is_video(path: &Path) -> bool {
    const VIDEO: [&str; 10] = [
        "mp4", "mkv", "mov", "avi", "webm", "mpg", "mpeg", "m4v", "ts", "ogv",
    ];
    extension_in(path, &VIDEO)
}

fn extension_in(path: &Path, list: &[&str]) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| list.iter().any(|v| v.eq_ignore_ascii_case(e)))
}

pub fn run(args: StylizeArgs) -> anyhow::Result<()> {
    let spec = StyleSpec::parse(&args.style)?;
    let mix = Mix {
        strength: check_strength(args.strength)
            .map_err(anyhow::Error::msg)
            .context("--strength")?,
        preserve_color: args.preserve_color,
    };
    let (output, inputs) = args
        .paths
        .split_last()
        .expect("clap asks for at least two paths");
    let size = args
        .size
        .as_deref()
        .map(|s| {
            s.parse::<Size>()
                .map_err(anyhow::Error::msg)
                .context("--size")
        })
        .transpose()?;
    let mut config = Config::default().engine;
    config.model = args.model.clone();
    config.models_dir = args.models_dir.clone();
    config.threads = args.threads;
    let open = |size: Size| -> anyhow::Result<Box<dyn Engine>> {
        let mut c = config.clone();
        c.size = size;
        Ok(engine::open(&c, &spec)?)
    };
    if let [input] = inputs
        && input.is_file()
        && is_video(input)
    {
        return video::stylize_file(input, output, size, mix, &open);
    }
    let jobs = jobs(inputs, output)?;
    // One engine for the batch, opened at the first picture's size.
    let mut engine: Option<Box<dyn Engine>> = None;
    let started = Instant::now();
    let mut failed = 0;
    for (i, (input, out)) in jobs.iter().enumerate() {
        let t0 = Instant::now();
        let done = (|| -> anyhow::Result<()> {
            let img = read_picture(input)?;
            let engine = match engine.as_mut() {
                Some(e) => e,
                None => engine.insert(open(Size {
                    width: img.width,
                    height: img.height,
                })?),
            };
            let mut stylized = stylize_any_size(engine.as_mut(), &img)?;
            mix.apply(&img, &mut stylized);
            sink::write_png(out, &stylized)?;
            Ok(())
        })();
        let n = i + 1;
        let eta = started.elapsed().as_secs_f64() / n as f64 * (jobs.len() - n) as f64;
        match done {
            Ok(()) => tracing::info!(
                progress = format_args!("{n}/{}", jobs.len()),
                input = %input.display(),
                output = %out.display(),
                ms = format_args!("{:.0}", t0.elapsed().as_secs_f64() * 1000.0),
                eta_s = format_args!("{eta:.0}"),
                "stylized"
            ),
            // The engine itself failing (the model) ends the batch; a bad picture does not.
            Err(e) if engine.is_none() && e.downcast_ref::<engine::EngineError>().is_some() => {
                return Err(e);
            }
            Err(e) if jobs.len() == 1 => return Err(e),
            Err(e) => {
                failed += 1;
                eprintln!("error: {e:#}");
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} pictures failed", jobs.len());
    }
    Ok(())
}

/// (input, output) pairs: one picture to one file, or pictures into a folder.
fn jobs(inputs: &[PathBuf], output: &Path) -> anyhow::Result<Vec<(PathBuf, PathBuf)>> {
    if let [input] = inputs
        && !input.is_dir()
    {
        let out = if output.is_dir() {
            output.join(png_name(input))
        } else {
            output.to_path_buf()
        };
        return Ok(vec![(input.clone(), out)]);
    }
    let mut pictures = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(input)
                .with_context(|| format!("cannot read folder {}", input.display()))?
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file() && extension_in(p, &PICTURES))
                .collect();
            if found.is_empty() {
                bail!("folder {} holds no .png or .jpg pictures", input.display());
            }
            found.sort();
            pictures.extend(found);
        } else {
            pictures.push(input.clone());
        }
    }
    if output.is_file() {
        bail!(
            "with several inputs the output must be a folder, and {} is a file",
            output.display()
        );
    }
    std::fs::create_dir_all(output)
        .with_context(|| format!("cannot create output folder {}", output.display()))?;
    let mut seen = std::collections::BTreeMap::new();
    let mut jobs = Vec::new();
    for p in pictures {
        let out = output.join(png_name(&p));
        if let Some(first) = seen.insert(out.clone(), p.clone()) {
            bail!(
                "{} and {} would both be written to {}",
                first.display(),
                p.display(),
                out.display()
            );
        }
        jobs.push((p, out));
    }
    Ok(jobs)
}

fn png_name(input: &Path) -> String {
    let stem = input.file_stem().unwrap_or_default().to_string_lossy();
    format!("{stem}.png")
}

fn read_picture(path: &Path) -> anyhow::Result<RgbImage> {
    let decoded = image::open(path)
        .map_err(|e| anyhow::anyhow!("cannot read image {}: {e}", path.display()))?
        .to_rgb8();
    let (w, h) = decoded.dimensions();
    Ok(RgbImage::new(w, h, decoded.into_raw())?)
}
