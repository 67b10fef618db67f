//! `stylerd-train distill` and `live-probe`: the live students' command-line arguments and
//! the two commands (issue 13). The training itself is the library's `distill` and `live`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use clap::Args;

use stylerd_train::data;
use stylerd_train::distill::{self, DistillConfig, Distiller};
use stylerd_train::export::{self, ManifestInfo};
use stylerd_train::live::{LIVE_PRESETS, LiveConfig};
use stylerd_train::teacher::OnnxImageModel;

use crate::ProgressArgs;

#[derive(Args)]
pub struct LiveArgs {
    /// live-s (16,32 x2, C0 0), live-m (16,32 x3, C0 0), live-l (16,32 x4, C0 8), or live
    /// (live-m changed by the flags below).
    #[arg(long, default_value = "live-m")]
    arch: String,
    /// C1,C2: channels at 1/2 and 1/4 resolution (overrides the preset).
    #[arg(long)]
    live_channels: Option<String>,
    /// Residual blocks at 1/4 resolution (overrides the preset).
    #[arg(long)]
    live_blocks: Option<usize>,
    /// Full-resolution channels before the last conv; 0: none (overrides the preset).
    #[arg(long)]
    live_out: Option<usize>,
    /// Dilate residual block i by 2^i.
    #[arg(long)]
    live_dilate: bool,
    /// Channels of a whole-frame context branch (per-channel scale and shift from the
    /// whole frame, as the teacher's instance norm sees it); 0: none (overrides the preset).
    #[arg(long)]
    live_context: Option<usize>,
    /// Channels of a 1/8-resolution level added after the residual blocks (large-scale
    /// tone); 0: none. Frames must then be multiples of 8.
    #[arg(long)]
    live_deep: Option<usize>,
    /// A spatial context: a coarse map of scales and shifts from the context branch's
    /// 1/32-resolution features, upsampled and applied after the residual blocks, so the
    /// tone can differ across the frame (needs --live-context).
    #[arg(long)]
    live_grid: bool,
}

impl LiveArgs {
    fn config(&self) -> Result<LiveConfig> {
        let mut c = match self.arch.as_str() {
            "live" => LiveConfig::preset("live-m").context("live-m preset")?,
            name => LiveConfig::preset(name).with_context(|| {
                format!(
                    "unknown --arch {name}; expected live or one of {}",
                    LIVE_PRESETS.join(", ")
                )
            })?,
        };
        if let Some(ch) = &self.live_channels {
            c.live_channels = LiveConfig::parse_channels(ch)
                .with_context(|| format!("--live-channels {ch}: expected C1,C2"))?;
        }
        if let Some(b) = self.live_blocks {
            c.live_blocks = b;
        }
        if let Some(o) = self.live_out {
            c.live_out = o;
        }
        if self.live_dilate {
            c.live_dilate = true;
        }
        if let Some(k) = self.live_context {
            c.live_context = k;
        }
        if let Some(d) = self.live_deep {
            c.live_deep = d;
        }
        if self.live_grid {
            if c.live_context == 0 {
                bail!(
                    "--live-grid needs a context branch (--live-context K): its map comes from there"
                );
            }
            c.live_grid = true;
        }
        Ok(c)
    }
}

#[derive(Args)]
pub struct DistillArgs {
    /// Folder of training photos (searched recursively); never the eval split.
    #[arg(long, default_value = ".deps/photos/train")]
    data: PathBuf,
    #[arg(long, default_value = "engines/multistyle26.onnx")]
    teacher: PathBuf,
    /// Style index of the multistyle26 teacher, or `all`: a conditional student of all 26
    /// styles (needs --live-context; each frame gets a style, see --blend).
    #[arg(long)]
    teacher_style: String,
    /// For `--teacher-style all`: the share of frames styled with a blend of two styles.
    #[arg(long, default_value_t = 0.125)]
    blend: f32,
    #[command(flatten)]
    net: LiveArgs,
    /// Teacher frames per photo (the first at zoom 1, the rest zoomed in; odd ones mirrored).
    #[arg(long, default_value_t = 4)]
    frames: usize,
    /// Photometric jitter of the zoomed-in frames: brightness, contrast, saturation within
    /// 1 +- J, each channel's gain within 1 +- J/3 (0: none).
    #[arg(long, default_value_t = 0.0)]
    jitter: f32,
    #[arg(long, default_value_t = 640)]
    frame_width: u32,
    #[arg(long, default_value_t = 360)]
    frame_height: u32,
    /// Square crop side (multiple of 4).
    #[arg(long, default_value_t = 192)]
    size: u32,
    #[arg(long, default_value_t = 8)]
    batch: usize,
    #[arg(long, default_value_t = 2000)]
    steps: u64,
    #[arg(long, default_value_t = 2e-3)]
    lr: f64,
    /// The cosine schedule ends at lr * lr-end.
    #[arg(long, default_value_t = 0.05)]
    lr_end: f64,
    /// Weight of (1 - SSIM) next to pixel L1.
    #[arg(long, default_value_t = 1.0)]
    ssim_weight: f32,
    /// Weight of the tone term: L1 between 8x8-pixel block means of the student's and the
    /// teacher's output (large-scale light and colour), next to pixel L1 (0: none).
    #[arg(long, default_value_t = 0.0)]
    tone_weight: f32,
    /// Crop border left out of the loss (pixels).
    #[arg(long, default_value_t = 8)]
    margin: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Folder for the teacher frames (PNG), reused by --resume and reruns; one per style.
    #[arg(long)]
    cache: Option<PathBuf>,
    #[command(flatten)]
    progress: ProgressArgs,
}

/// The styles of the multistyle26 teacher.
const TEACHER_STYLES: usize = 26;

/// What `distill`'s arguments ask for, checked.
struct Settings {
    config: LiveConfig,
    cfg: DistillConfig,
    teacher: PathBuf,
    /// The teacher's style, or None for all of them.
    style: Option<usize>,
}

/// Checks the arguments (one sentence for the first bad one).
fn settings(a: DistillArgs) -> Result<Settings> {
    let mut config = a.net.config()?;
    let style = match a.teacher_style.as_str() {
        "all" => None,
        s => match s.parse::<usize>() {
            Ok(k) if k < TEACHER_STYLES => Some(k),
            _ => bail!(
                "--teacher-style {s}: expected a style index 0 to {} or all",
                TEACHER_STYLES - 1
            ),
        },
    };
    if style.is_none() {
        if config.live_context == 0 {
            bail!(
                "--teacher-style all needs a context branch (--live-context K): the style enters there"
            );
        }
        config.live_styles = TEACHER_STYLES;
    }
    if !(0.0..=1.0).contains(&a.blend) {
        bail!("--blend must be within 0 and 1 (got {})", a.blend);
    }
    let m = config.frame_multiple();
    if ![a.size, a.frame_width, a.frame_height]
        .iter()
        .all(|v| v.is_multiple_of(m))
    {
        let with = if m == 8 { "with --live-deep, " } else { "" };
        bail!("{with}--size, --frame-width and --frame-height must be multiples of {m}");
    }
    if !(a.tone_weight >= 0.0 && a.tone_weight.is_finite()) {
        bail!(
            "--tone-weight must be a number of at least 0 (got {})",
            a.tone_weight
        );
    }
    if !(0.0..1.0).contains(&a.jitter) {
        bail!("--jitter must be at least 0 and below 1 (got {})", a.jitter);
    }
    let cfg = DistillConfig {
        data: a.data,
        frames: a.frames,
        jitter: a.jitter,
        frame_w: a.frame_width,
        frame_h: a.frame_height,
        styles: config.live_styles,
        blend: a.blend,
        size: a.size,
        batch: a.batch,
        steps: a.steps,
        lr: a.lr,
        lr_end: a.lr_end,
        ssim_weight: a.ssim_weight,
        tone_weight: a.tone_weight,
        margin: a.margin,
        seed: a.seed,
        cache: a.cache,
        progress: a.progress.into_progress("out/live/checkpoint.safetensors"),
    };
    Ok(Settings {
        config,
        cfg,
        teacher: a.teacher,
        style,
    })
}

/// Distils one style of the teacher (or all of them) into a live student.
pub fn distill(a: DistillArgs, device: &Device) -> Result<()> {
    let Settings {
        config,
        cfg,
        teacher,
        style,
    } = settings(a)?;
    // The teacher and the photos first: a wrong path is reported even by a round that
    // finds nothing to train.
    let mut teacher = OnnxImageModel::multistyle(&teacher, style.unwrap_or(0))?;
    data::images(&cfg.data)?;
    let mut d = Distiller::new(config, cfg, device);
    d.resume_if_asked()?;
    if d.adam.step >= d.cfg.steps {
        // a round of `make live-model-N` before the last finds the checkpoint past its steps
        let at = if d.adam.step > d.cfg.steps {
            "past"
        } else {
            "of"
        };
        println!(
            "{} is already at step {} {at} {}: nothing to train",
            d.cfg.progress.checkpoint.display(),
            d.adam.step,
            d.cfg.steps
        );
        return Ok(());
    }
    let pairs = distill::make_pairs(&d.cfg, &mut teacher)?;
    drop(teacher);
    let last = d.run(&pairs)?;
    println!(
        "final loss {:.4} (l1 {:.4}, ssim {:.4}; checkpoint {})",
        last.total,
        last.l1,
        last.ssim,
        d.cfg.progress.checkpoint.display()
    );
    Ok(())
}

/// Writes each `C1,C2,BLOCKS,C0[,d]` variant with initial weights, for timing.
pub fn probe(
    variants: Vec<String>,
    out: &Path,
    width: usize,
    height: usize,
    device: &Device,
) -> Result<()> {
    std::fs::create_dir_all(out)?;
    println!("variant  GFLOPs@{width}x{height}  parameters  file");
    for v in variants {
        let dilate = v.ends_with(",d");
        let n: Vec<usize> = v
            .trim_end_matches(",d")
            .split(',')
            .map(|x| x.trim().parse())
            .collect::<Result<_, _>>()
            .with_context(|| format!("--variant {v}: expected C1,C2,BLOCKS,C0"))?;
        let [c1, c2, blocks, c0] = n[..] else {
            bail!("--variant {v}: expected C1,C2,BLOCKS,C0");
        };
        let cfg = LiveConfig::new([c1, c2], blocks)
            .with_live_out(c0)
            .with_live_dilate(dilate);
        let net = cfg.init(device);
        let d = if dilate { "-d" } else { "" };
        let name = format!("live-{c1}-{c2}-{blocks}-{c0}{d}");
        export::export(
            &net,
            out,
            &ManifestInfo {
                name: &name,
                description: "live probe (initial weights)",
                provenance: "stylerd-train live-probe",
                student_of: None,
                styles: &[],
            },
        )?;
        println!(
            "{}  {:.3}  {}  {}/{name}.onnx",
            cfg.label(),
            net.flops(width, height) as f64 / 1e9,
            net.num_params(),
            out.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: DistillArgs,
    }

    #[test]
    fn distill_refuses_a_jitter_outside_zero_to_one_in_one_sentence() {
        for j in ["-0.1", "1", "1.5", "NaN"] {
            let jitter = format!("--jitter={j}");
            let cli = Cli::try_parse_from(["distill", "--teacher-style", "19", &jitter]).unwrap();
            let e = distill(cli.args, &Device::flex()).unwrap_err().to_string();
            assert_eq!(
                e,
                format!("--jitter must be at least 0 and below 1 (got {j})"),
                "{j}"
            );
        }
    }

    /// A round of `make live-model-N` that finds its checkpoint finished still reports a
    /// wrong teacher or photo folder (it used to say "nothing to train" and succeed).
    #[test]
    fn distill_reports_a_bad_teacher_or_photos_even_with_nothing_to_train() {
        let dir = tempfile::tempdir().unwrap();
        let photos = dir.path().join("photos");
        std::fs::create_dir(&photos).unwrap();
        let img = &stylerd_train::data::CropSampler::synthetic(1, 32)[0];
        data::save_png(img, &photos.join("a.png")).unwrap();
        let ck = dir.path().join("ck.safetensors");
        let teacher = Path::new(env!("CARGO_MANIFEST_DIR")).join("../engines/multistyle26.onnx");
        let args = |teacher: &Path, data: &Path| {
            let (t, d, c) = (teacher.to_str(), data.to_str(), ck.to_str());
            let argv = [
                "distill",
                "--teacher-style",
                "19",
                "--resume",
                "--steps",
                "3",
            ];
            let paths = [
                "--teacher",
                t.unwrap(),
                "--data",
                d.unwrap(),
                "--checkpoint",
                c.unwrap(),
            ];
            Cli::try_parse_from(argv.iter().chain(&paths)).unwrap().args
        };
        // A checkpoint already at its 3 steps.
        let s = settings(args(&teacher, &photos)).unwrap();
        let mut d = Distiller::new(s.config, s.cfg, &Device::flex());
        d.adam.step = 3;
        d.save().unwrap();
        let missing = dir.path().join("missing.onnx");
        let e = distill(args(&missing, &photos), &Device::flex()).unwrap_err();
        let e = e.to_string();
        if e.contains("not found (searched") {
            stylerd_testkit::skip(
                stylerd_testkit::Kind::Setup,
                &format!("distill's teacher and photo checks: {e}"),
            );
            return;
        }
        assert!(
            e.starts_with(&format!("cannot load model {}: ", missing.display())),
            "{e}"
        );
        let empty = dir.path().join("no-photos");
        let e = distill(args(&teacher, &empty), &Device::flex()).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("no .png/.jpg/.jpeg images under {}", empty.display())
        );
        // Both right: nothing to train, and no error.
        distill(args(&teacher, &photos), &Device::flex()).unwrap();
    }

    #[test]
    fn distill_refuses_a_bad_teacher_style_blend_or_grid_in_one_sentence() {
        let err = |args: &[&str]| {
            let cli = Cli::try_parse_from([&["distill"][..], args].concat()).unwrap();
            distill(cli.args, &Device::flex()).unwrap_err().to_string()
        };
        for s in ["26", "x", "1.5", "All"] {
            assert_eq!(
                err(&["--teacher-style", s]),
                format!("--teacher-style {s}: expected a style index 0 to 25 or all")
            );
        }
        assert_eq!(
            err(&["--teacher-style", "all"]),
            "--teacher-style all needs a context branch (--live-context K): the style enters there"
        );
        assert_eq!(
            err(&[
                "--teacher-style",
                "all",
                "--live-context",
                "8",
                "--blend",
                "1.5"
            ]),
            "--blend must be within 0 and 1 (got 1.5)"
        );
        assert_eq!(
            err(&["--teacher-style", "23", "--live-grid"]),
            "--live-grid needs a context branch (--live-context K): its map comes from there"
        );
    }
}
