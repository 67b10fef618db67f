//! The command line: `stylerd run | check-config | stylize | models | bench | camera |
//! report | quantize | status | ctl`.
//!
//! # Layout
//! - `stylize`: `stylerd stylize` (pictures, folders, video files).
//! - [`tools`]: the offline tools' arguments (bench, report, quantize).
//!
//! Parses arguments with clap, applies `run`'s overrides on top of the config file, and
//! calls into the library. Errors end here: printed once as `error: ...` with their causes
//! (`{:#}`), exit status 1 (clap's own usage errors exit 2).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};

use std::sync::Arc;

use crate::config::{Config, Size};
use crate::control::{Reply, Request, client};
use crate::daemon::reload::{self, ConfigSource, Loaded};
use crate::daemon::{self, RunOptions, preflight};
use crate::model::Manifest;
use crate::style::StyleSpec;

mod camera;
mod stylize;
mod tools;

/// The config `stylerd` reads when `--config` is not given.
pub const DEFAULT_CONFIG: &str = "systemd/stylerd.toml";

#[derive(Parser, Debug)]
#[command(
    name = "stylerd",
    version,
    about = "Real-time neural style transfer daemon for edge boxes"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the daemon: camera -> style network -> file / RTSP / snapshots.
    Run(RunArgs),
    /// Stylize pictures (files or a folder) or a video file, without a config.
    Stylize(stylize::StylizeArgs),
    /// Check a config file as `run` would (model, source, outputs, socket): prints "ok" or
    /// one sentence per problem; exit status 0 or 1.
    CheckConfig {
        /// The config file (default: the one `run` reads).
        file: Option<PathBuf>,
        /// Check absolute paths under this folder (a staged install, `make install
        /// DESTDIR=...`).
        #[arg(long)]
        root: Option<PathBuf>,
    },
    /// List the models and their styles.
    Models {
        #[arg(long, default_value = "engines")]
        models_dir: PathBuf,
    },
    /// Measure engine latency against Python ONNX Runtime, and the daemon end to end.
    Bench(tools::BenchArgs),
    /// Write the evaluation report (Markdown + PNG plots) from timelines, benches and models.
    Report(tools::ReportArgs),
    /// Serve the built-in test camera (a moving pattern) over RTSP.
    Camera(camera::CameraArgs),
    /// Write an INT8 QDQ ONNX model from calibration frames (and compare it with --bench).
    Quantize(tools::QuantizeArgs),
    /// Show the running daemon's status.
    Status {
        /// Refresh every second until Ctrl-C.
        #[arg(long)]
        watch: bool,
        /// Print the raw JSON document.
        #[arg(long)]
        json: bool,
        #[arg(long)]
        socket: Option<PathBuf>,
    },
    /// Send a control command: set-style SPEC | pause | resume | snapshot.
    Ctl {
        #[arg(long)]
        socket: Option<PathBuf>,
        #[command(subcommand)]
        command: CtlCommand,
    },
}

#[derive(Subcommand, Debug)]
enum CtlCommand {
    /// Switch style: an index, a name or a blend such as 3:0.5,12:0.5, or any picture
    /// with --image (interpolated with a second one through --and/--weight).
    SetStyle {
        style: Option<String>,
        #[arg(long, conflicts_with = "style")]
        image: Option<PathBuf>,
        #[arg(long, requires = "image")]
        and: Option<PathBuf>,
        #[arg(long, default_value_t = 0.5, requires = "and")]
        weight: f32,
        /// Mix of stylized and original, 0..1 (1 = fully stylized).
        #[arg(long)]
        strength: Option<f64>,
        /// Keep the original's colours (`--preserve-color=false` turns it off).
        #[arg(long, num_args = 0..=1, default_missing_value = "true")]
        preserve_color: Option<bool>,
        /// Also write the change into the daemon's config file (survives a restart).
        #[arg(long, conflicts_with = "image")]
        save: bool,
    },
    Pause,
    Resume,
    /// Write a PNG of the current output; prints its path.
    Snapshot,
}

#[derive(Args, Debug, Clone)]
struct RunArgs {
    /// Config file (TOML).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Source URI: rtsp://…, file://…, v4l2:///dev/videoN or test://.
    #[arg(long)]
    source: Option<String>,
    /// Output URI (file://PATH, rtsp://HOST:PORT/MOUNT, null://); repeat for several.
    #[arg(long = "output")]
    outputs: Vec<String>,
    /// Style index, name or blend such as 3:0.5,12:0.5.
    #[arg(long)]
    style: Option<String>,
    /// Inference size WIDTHxHEIGHT.
    #[arg(long)]
    size: Option<String>,
    /// Model name from the models folder.
    #[arg(long)]
    model: Option<String>,
    /// Mix of stylized and original, 0..1 (1 = fully stylized).
    #[arg(long)]
    strength: Option<f64>,
    /// Keep the original's colours, take the stylized luminance (`=false` turns it off).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    preserve_color: Option<bool>,
    /// Status/control socket path.
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Web dashboard and HTTP API address HOST:PORT (port 0: a free one), or `off`.
    #[arg(long)]
    http: Option<String>,
    /// Where the monitor reads /sys from.
    #[arg(long)]
    sysfs_root: Option<PathBuf>,
    /// Whether the governor may run a live student of the running style (or the student of
    /// all styles) in its teacher's place (`[governor] students`): on or off.
    #[arg(long, value_parser = ["on", "off"])]
    students: Option<String>,
    /// Process every frame instead of only the newest (files, tests).
    #[arg(long)]
    every_frame: bool,
    /// Stop after this many stylized frames.
    #[arg(long)]
    frames: Option<u64>,
    /// Print the run report as JSON on stdout at the end.
    #[arg(long)]
    report: bool,
    /// Write the status document once a second to FILE (JSON lines), for `stylerd report`.
    #[arg(long)]
    timeline: Option<PathBuf>,
}

/// Entry point used by `src/main.rs`.
pub fn main() -> ExitCode {
    crate::heap::keep_freed_memory();
    let cli = Cli::parse();
    init_logging();
    match dispatch(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: the journal, a pipe or a log file get plain lines.
    use std::io::IsTerminal;
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .try_init();
}

fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Run(args) => run(args),
        Command::Stylize(args) => stylize::run(args),
        Command::CheckConfig { file, root } => check_config(file, root.as_deref()),
        Command::Models { models_dir } => models(&models_dir),
        Command::Bench(args) => crate::tools::bench::run(args.into()),
        Command::Report(args) => crate::tools::report::run(args.into()),
        Command::Camera(args) => camera::run(args),
        Command::Quantize(args) => quantize(args),
        Command::Status {
            watch,
            json,
            socket,
        } => status(watch, json, socket),
        Command::Ctl { socket, command } => ctl(socket, command),
    }
}

/// Applies `run`'s flags over a config (at start and again on each reload).
fn apply_overrides(args: &RunArgs, config: &mut Config) -> anyhow::Result<()> {
    if let Some(s) = &args.source {
        config.source.uri = s.parse().map_err(anyhow::Error::msg).context("--source")?;
    }
    if !args.outputs.is_empty() {
        config.output.uris = args
            .outputs
            .iter()
            .map(|o| o.parse().map_err(anyhow::Error::msg))
            .collect::<anyhow::Result<_>>()
            .context("--output")?;
    }
    if let Some(s) = &args.style {
        config.engine.style = StyleSpec::parse(s).context("--style")?;
    }
    if let Some(s) = &args.size {
        config.engine.size = s
            .parse::<Size>()
            .map_err(anyhow::Error::msg)
            .context("--size")?;
    }
    if let Some(m) = &args.model {
        config.engine.model = m.clone();
    }
    if let Some(s) = args.strength {
        config.engine.strength = crate::mix::check_strength(s)
            .map_err(anyhow::Error::msg)
            .context("--strength")?;
    }
    if let Some(p) = args.preserve_color {
        config.engine.preserve_color = p;
    }
    if let Some(p) = &args.socket {
        config.control.socket = Some(p.clone());
    }
    if let Some(h) = &args.http {
        config.http.listen = h.clone();
    }
    if let Some(p) = &args.sysfs_root {
        config.monitor.sysfs_root = p.clone();
    }
    if let Some(s) = &args.students {
        config.governor.students = s == "on";
    }
    if args.every_frame {
        config.source.mode = Some(crate::config::SourceMode::EveryFrame);
    }
    Ok(())
}

/// The config file `run` reads: `--config`, else the default one if it exists.
fn config_path(explicit: Option<&Path>) -> Option<PathBuf> {
    explicit.map(Path::to_path_buf).or_else(|| {
        Path::new(DEFAULT_CONFIG)
            .is_file()
            .then(|| DEFAULT_CONFIG.into())
    })
}

/// The run's config and, when it comes from a regular file, that file (for the status,
/// `set-style --save` and reloads).
fn load_config(args: &RunArgs) -> anyhow::Result<(Config, Option<(ConfigSource, Loaded)>)> {
    let path = config_path(args.config.as_deref());
    if let Some(path) = path.as_deref().filter(|p| p.is_file()) {
        let captured = args.clone();
        let source = ConfigSource {
            path: std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
            overrides: Arc::new(move |c: &mut Config| apply_overrides(&captured, c)),
        };
        let loaded = reload::load(&source).map_err(anyhow::Error::msg)?;
        return Ok((loaded.config.clone(), Some((source, loaded))));
    }
    // No file, or not a regular one (`--config /dev/null`): nothing to reload or save.
    let mut config = match &path {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    apply_overrides(args, &mut config)?;
    Ok((config, None))
}

/// `stylerd check-config [FILE]`: the checks `run` makes before it starts.
fn check_config(file: Option<PathBuf>, root: Option<&Path>) -> anyhow::Result<()> {
    let Some(path) = config_path(file.as_deref()) else {
        bail!("no config file given and {DEFAULT_CONFIG} does not exist");
    };
    let problems = match Config::load(&path) {
        Ok(config) => match root {
            Some(root) => preflight::problems(&preflight::rebased(&config, root)),
            None => preflight::problems(&config),
        },
        Err(e) => vec![e.to_string()],
    };
    if problems.is_empty() {
        println!("ok");
        return Ok(());
    }
    for p in &problems {
        eprintln!("{}: {p}", path.display());
    }
    std::process::exit(1);
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    let (config, config_file) = load_config(&args)?;
    let options = RunOptions {
        max_frames: args.frames,
        handle_signals: true,
        serve_socket: true,
        serve_http: true,
        timeline: args.timeline.clone(),
        config_file,
        ..Default::default()
    };
    let report = daemon::run(&config, options)?;
    tracing::info!(
        frames = report.processed,
        captured = report.captured,
        dropped = report.dropped,
        encoded = report.encoded,
        fps = format_args!("{:.1}", report.fps_out),
        "stopped"
    );
    if args.report {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(())
}

fn models(dir: &Path) -> anyhow::Result<()> {
    let all = Manifest::list(dir)?;
    if all.is_empty() {
        bail!("no model manifests in {}; run `make models`", dir.display());
    }
    // A closed pipe (`stylerd models | head`) ends the listing quietly, not with a panic.
    let mut out = std::io::stdout().lock();
    for m in all {
        let present = if m.model_path().is_file() {
            ""
        } else {
            " (file missing: run `make models`)"
        };
        let mut line = format!("{}: {}{present}\n", m.name, m.description);
        if !m.styles.is_empty() {
            line += &format!(
                "  styles: {}\n",
                m.styles
                    .iter()
                    .enumerate()
                    .map(|(i, s)| format!("{i}={s}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
        if std::io::Write::write_all(&mut out, line.as_bytes()).is_err() {
            break;
        }
    }
    Ok(())
}

/// The socket a client talks to: `--socket`, else the default config's, else the default.
fn client_socket(explicit: Option<PathBuf>) -> PathBuf {
    let configured = explicit.or_else(|| {
        Path::new(DEFAULT_CONFIG)
            .is_file()
            .then(|| Config::load(Path::new(DEFAULT_CONFIG)).ok())
            .flatten()?
            .control
            .socket
    });
    crate::control::default_socket_path(configured.as_deref())
}

fn status(watch: bool, json: bool, socket: Option<PathBuf>) -> anyhow::Result<()> {
    let socket = client_socket(socket);
    loop {
        let doc = match client::request(&socket, &Request::Status {})? {
            Reply::Status(doc) => doc,
            Reply::Error { error } => bail!("stylerd answered: {error}"),
            Reply::Done(d) => bail!("stylerd answered a status request with {d:?}"),
        };
        if json {
            println!("{}", serde_json::to_string(&doc)?);
        } else {
            println!("{}\n", client::render(&doc));
        }
        if !watch {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

fn ctl(socket: Option<PathBuf>, command: CtlCommand) -> anyhow::Result<()> {
    let socket = client_socket(socket);
    let request = match command {
        CtlCommand::SetStyle {
            style: None,
            image: None,
            strength: None,
            preserve_color: None,
            save: false,
            ..
        } => bail!(
            "set-style needs a style (e.g. 7 or 3:0.5,12:0.5), --image PATH, --strength, \
             --preserve-color or --save (the running style)"
        ),
        CtlCommand::SetStyle {
            style,
            image,
            and,
            weight,
            strength,
            preserve_color,
            save,
        } => {
            // The daemon resolves paths from its own working directory: send absolute ones.
            let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
            let weight = and.is_some().then_some(weight as f64);
            Request::SetStyle {
                style: style.map(crate::control::StyleArg::Spec),
                image: image.map(|p| abs(&p)),
                and: and.map(|b| abs(&b)),
                weight,
                strength,
                preserve_color,
                save: save.then_some(true),
            }
        }
        CtlCommand::Pause => Request::Pause {},
        CtlCommand::Resume => Request::Resume {},
        CtlCommand::Snapshot => Request::Snapshot {},
    };
    let answer = client::request(&socket, &request)?;
    if let Reply::Error { error } = &answer {
        bail!("stylerd refused: {error}");
    }
    let answer = serde_json::to_string(&answer)?;
    println!("{answer}");
    Ok(())
}

fn quantize(args: tools::QuantizeArgs) -> anyhow::Result<()> {
    crate::tools::quantize::run(args.into())
}
