//! The daemon: wires source, engine, sink, monitor and socket together and runs them until
//! told to stop.
//!
//! [`run`] checks everything that can be checked before the first frame (config, model,
//! output pipeline, socket), then starts the frame thread ([`frame_loop`]) and the monitor
//! thread ([`monitor_thread`]), and serves the status socket and signals on a small tokio
//! runtime on the calling thread. One stop flag fans out to all of them; `run` returns only
//! after each has finished, with a [`RunReport`].
//!
//! # Layout
//! - [`frame_loop`]: the frame loop (pull, stylize, push, reconnect, control requests).
//! - [`monitor_thread`]: the monitor thread (latency, power, system, budget -> status
//!   document).
//! - [`style_swap`]: arbitrary-style engines built off the frame thread and swapped in.
//! - [`preflight`]: every check of a config before anything starts (`check-config`).
//! - [`reload`]: the config file behind a run, and what a reload (SIGHUP) changes.

pub mod frame_loop;
pub mod monitor_thread;
pub mod preflight;
pub mod reload;
pub mod style_swap;
pub mod tap;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use tokio::sync::watch;

use crate::config::Config;
use crate::control::server::{self, ControlRequest};
use crate::control::{self, RunState, Status};
use crate::engine;
use crate::media::sink::FrameSink;
use crate::monitor::latency::Percentiles;
use crate::notify::Notifier;

/// Limits for one run (tests and benchmarks stop by themselves).
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Stop after this many stylized frames.
    pub max_frames: Option<u64>,
    /// Set to stop the run from another thread.
    pub stop: Arc<AtomicBool>,
    /// Stop on SIGINT/SIGTERM (the CLI); tests stop through `stop`.
    pub handle_signals: bool,
    /// Serve the status socket (the CLI always does; in-process tests may not).
    pub serve_socket: bool,
    /// Serve the web dashboard and HTTP API on `http.listen` (the CLI does).
    pub serve_http: bool,
    /// Append the status document once a second to this file (JSON lines with `"t"`).
    pub timeline: Option<std::path::PathBuf>,
    /// The config file the run's config was read from (the status, `set-style --save`,
    /// and SIGHUP, which reloads it); `None` runs without one.
    pub config_file: Option<(reload::ConfigSource, reload::Loaded)>,
}

/// What a finished run did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RunReport {
    pub captured: u64,
    pub dropped: u64,
    pub processed: u64,
    pub encoded: u64,
    pub engine_errors: u64,
    pub reconnects: u64,
    pub seconds: f64,
    pub fps_out: f64,
    /// Since start.
    pub infer_ms: Option<Percentiles>,
    pub glass_to_glass_ms: Option<Percentiles>,
    pub file_pattern: Option<String>,
}

/// Counters the frame thread writes and the monitor reads.
#[derive(Debug, Default)]
pub struct Counters {
    pub captured: AtomicU64,
    pub dropped: AtomicU64,
    pub processed: AtomicU64,
    pub encoded: AtomicU64,
    pub engine_errors: AtomicU64,
    pub reconnects: AtomicU64,
}

impl Counters {
    fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::SeqCst)
    }
}

/// Slow-changing state the frame thread publishes for the status document.
#[derive(Clone, Debug, Default)]
pub struct LoopState {
    pub run: RunState,
    pub source_state: &'static str,
    pub last_error: Option<String>,
    pub style: String,
    pub recording_error: Option<String>,
    pub governor: Option<crate::governor::GovernorStatus>,
    pub mix: crate::mix::Mix,
    /// Style, strength or colour differ from the config file's.
    pub differs_from_file: bool,
    pub config: Option<control::ConfigStatus>,
    /// Frames done in this pass of a finite source, and its length when known.
    pub progress: Option<(u64, Option<u64>)>,
    /// Set by a reload that rebuilt the outputs or the source.
    pub outputs: Option<(Vec<String>, Option<String>)>,
    pub source_uri: Option<String>,
    pub styles_available: Option<usize>,
    /// Set by a reload that changed `[monitor]`.
    pub monitor: Option<crate::config::MonitorConfig>,
    /// Set when the engine was swapped (arbitrary style, or back).
    pub engine: Option<crate::engine::EngineInfo>,
    /// Latest board power and when it was read, for the governor (written by the monitor
    /// thread).
    pub power_w: Option<(f64, std::time::Instant)>,
}

/// What the frame and monitor threads share.
#[derive(Debug, Default)]
pub struct Shared {
    pub counters: Counters,
    pub state: Mutex<LoopState>,
    /// Preview frames and the loop's heartbeat, for the HTTP side.
    pub tap: Arc<tap::FrameTap>,
}

impl Shared {
    pub fn update(&self, f: impl FnOnce(&mut LoopState)) {
        f(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()));
    }

    pub fn state(&self) -> LoopState {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Runs the daemon until stopped, the source ends, or `max_frames` frames are done.
pub fn run(config: &Config, options: RunOptions) -> anyhow::Result<RunReport> {
    if let Some(first) = preflight::problems(config).into_iter().next() {
        anyhow::bail!("{first}");
    }
    limit_malloc_arenas();
    let engine = engine::open(&config.engine, &config.engine.style)
        .with_context(|| format!("cannot start engine for model {}", config.engine.model))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("stylerd-io")
        .enable_all()
        .build()
        .context("cannot start the I/O runtime")?;
    let signals = {
        let _guard = runtime.enter();
        Signals::take(options.handle_signals)
    };
    let socket_path = control::default_socket_path(config.control.socket.as_deref());
    let listener = if options.serve_socket {
        // Binding needs the runtime's reactor.
        let _guard = runtime.enter();
        Some(server::bind(&socket_path)?)
    } else {
        None
    };
    let metrics = match config.control.metrics_port {
        Some(port) => {
            let _guard = runtime.enter();
            let std_listener = std::net::TcpListener::bind(("127.0.0.1", port))
                .with_context(|| format!("cannot serve metrics on 127.0.0.1:{port}"))?;
            std_listener.set_nonblocking(true)?;
            Some(tokio::net::TcpListener::from_std(std_listener)?)
        }
        None => None,
    };
    let http = if options.serve_http {
        crate::http::bind(config)?
    } else {
        None
    };
    let http_auth = crate::http::auth::Auth::load(config.http.token_file.as_deref())?;
    let stylize_pool = match &http {
        Some(_) => Some(
            crate::http::stylize::Pool::start(config)
                .context("cannot start the stylize engines")?,
        ),
        None => None,
    };
    let sink = FrameSink::open(&config.output, config.engine.size)?;
    tracing::info!(
        source = %config.source.uri,
        model = %engine.info().model,
        size = %config.engine.size,
        style = %config.engine.style,
        file = ?sink.file_pattern(),
        rtsp = ?sink.rtsp_url(),
        socket = %socket_path.display(),
        "stylerd running"
    );
    if let Some(h) = &http {
        tracing::info!(url = %h.url, "web dashboard");
    }

    let shared = Arc::new(Shared {
        tap: Arc::new(tap::FrameTap::new(config.http.preview_fps)),
        ..Shared::default()
    });
    shared.update(|s| {
        s.style = config.engine.style.to_string();
        s.mix = config.engine.mix();
        if let Some((source, loaded)) = &options.config_file {
            s.config = Some(loaded.status(source, 0));
            s.differs_from_file = reload::FileStyle::of(&config.engine) != loaded.file_style;
        }
    });
    let mut initial = Status {
        engine: Some(engine.info().clone()),
        outputs: config.output.uris.iter().map(|u| u.to_string()).collect(),
        ..Status::default()
    };
    initial.source.uri = config.source.uri.to_string();
    initial.style.available = engine.styles().len();
    initial.http = http.as_ref().map(|h| h.url.clone());
    {
        let state = shared.state();
        initial.style.spec = state.style;
        initial.style.strength = state.mix.strength;
        initial.style.preserve_color = state.mix.preserve_color;
        initial.style.differs_from_file = state.differs_from_file;
        initial.config = state.config;
    }
    initial.recording = sink.file_pattern().map(|p| control::RecordingStatus {
        pattern: p.display().to_string(),
        error: None,
    });
    let (status_tx, status_rx) = watch::channel(initial.clone());
    let (events_tx, events_rx) = crossbeam_channel::bounded(1024);
    let (control_tx, control_rx) = crossbeam_channel::bounded::<ControlRequest>(16);
    let (reload_tx, reload_rx) = crossbeam_channel::bounded::<reload::Loaded>(4);
    let notifier = Notifier::from_env().map(Arc::new);
    let started = Instant::now();

    let monitor = {
        let (config, shared, notifier) = (config.clone(), shared.clone(), notifier.clone());
        let timeline = match &options.timeline {
            Some(path) => Some(
                std::fs::File::create(path)
                    .with_context(|| format!("cannot write timeline {}", path.display()))?,
            ),
            None => None,
        };
        thread::Builder::new()
            .name("monitor".into())
            .spawn(move || {
                monitor_thread::Observer::new(&config, shared, initial, started)
                    .run(events_rx, status_tx, notifier, timeline)
            })
            .context("cannot start the monitor thread")?
    };
    let stop = options.stop.clone();
    let frames = {
        let ctx = frame_loop::Context {
            config: config.clone(),
            engine,
            sink,
            options: options.clone(),
            shared: shared.clone(),
            events: events_tx,
            control: control_rx,
            reloads: reload_rx,
            notifier,
        };
        thread::Builder::new()
            .name("frames".into())
            .spawn(move || frame_loop::FrameLoop::new(ctx).run())
            .context("cannot start the frame thread")?
    };

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let control_tx = config.control.allow_control.then_some(control_tx);
    let http_state = match (http, stylize_pool) {
        (Some(bound), Some(stylize)) => Some((
            bound.listener,
            Arc::new(crate::http::AppState {
                config: config.clone(),
                status: status_rx.clone(),
                control: control_tx.clone(),
                tap: shared.tap.clone(),
                auth: http_auth,
                stylize,
                gallery: Default::default(),
                uploads: uploads_dir(),
                shutdown: shutdown_rx.clone(),
            }),
        )),
        _ => None,
    };
    runtime.block_on(async {
        if let Some((listener, state)) = http_state {
            tokio::spawn(async move {
                if let Err(e) = crate::http::serve(listener, state).await {
                    tracing::error!(error = %format!("{e:#}"), "web dashboard stopped");
                }
            });
        }
        if let Some(listener) = metrics {
            tokio::spawn(crate::control::metrics::serve(
                listener,
                status_rx.clone(),
                shutdown_rx.clone(),
            ));
        }
        if let Some(listener) = listener {
            tokio::spawn(server::serve(
                listener,
                socket_path.clone(),
                status_rx,
                control_tx,
                shutdown_rx,
            ));
        }
        let reload = options.config_file.as_ref().map(|(source, _)| Reloader {
            source: source.clone(),
            to_frames: reload_tx,
            shared: shared.clone(),
        });
        wait_for_stop(&stop, &frames, signals, reload).await;
    });
    let report = frames
        .join()
        .map_err(|_| anyhow::anyhow!("the frame thread panicked"))?;
    let latency = monitor
        .join()
        .map_err(|_| anyhow::anyhow!("the monitor thread panicked"))?;
    let _ = shutdown_tx.send(true);
    runtime.shutdown_timeout(Duration::from_secs(2));
    if options.serve_socket {
        let _ = std::fs::remove_file(&socket_path);
    }
    let mut report = report?;
    report.infer_ms = latency.since_start.get("infer").copied();
    report.glass_to_glass_ms = latency.since_start.get("glass_to_glass").copied();
    Ok(report)
}

/// Where uploaded style pictures go: systemd's `RuntimeDirectory`, else the temp folder.
fn uploads_dir() -> std::path::PathBuf {
    let base = std::env::var_os("RUNTIME_DIRECTORY")
        .map(|d| {
            let d = d
                .to_string_lossy()
                .split(':')
                .next()
                .unwrap_or_default()
                .to_string();
            std::path::PathBuf::from(d)
        })
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or_else(std::env::temp_dir);
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    base.join(format!("stylerd-{uid}-uploads-{}", std::process::id()))
}

/// glibc gives every thread that allocates its own malloc arena (up to 8 per core); each
/// camera reconnect starts new GStreamer streaming threads, and their arenas kept memory
/// fragmented: the 10-minute soak grew RSS by 32 MB over 30 reconnects with the default,
/// 3.5 MB over 9 with two arenas. Called before any thread of ours starts.
fn limit_malloc_arenas() {
    // SAFETY: mallopt only changes allocator tuning; M_ARENA_MAX takes any positive value.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// SIGTERM, SIGINT and SIGHUP, taken over before the socket is bound (so no client sees
/// a daemon that a SIGHUP would still kill); all `None` when the run does not handle them.
struct Signals {
    term: Option<tokio::signal::unix::Signal>,
    int: Option<tokio::signal::unix::Signal>,
    hup: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    /// Needs the runtime entered.
    fn take(enabled: bool) -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        let on = |kind| enabled.then(|| signal(kind).ok()).flatten();
        Self {
            term: on(SignalKind::terminate()),
            int: on(SignalKind::interrupt()),
            hup: on(SignalKind::hangup()),
        }
    }
}

/// Reads the config file again on SIGHUP and hands a good one to the frame thread.
struct Reloader {
    source: reload::ConfigSource,
    to_frames: crossbeam_channel::Sender<reload::Loaded>,
    shared: Arc<Shared>,
}

impl Reloader {
    fn reload(&self) {
        let path = self.source.path.display().to_string();
        tracing::info!(config = %path, "reloading the config file (SIGHUP)");
        match reload::load(&self.source) {
            Ok(loaded) => {
                if self.to_frames.try_send(loaded).is_err() {
                    self.refuse("too many reloads at once; try again".into());
                }
            }
            Err(e) => self.refuse(e),
        }
    }

    fn refuse(&self, why: String) {
        tracing::error!("reload refused, the running config stays: {why}");
        self.shared.update(|s| {
            if let Some(c) = s.config.as_mut() {
                c.reload_error = Some(why);
            }
        });
    }
}

/// Returns when the frame thread has ended, setting `stop` first on SIGINT/SIGTERM; on
/// SIGHUP, reloads the config file when there is one.
async fn wait_for_stop<T>(
    stop: &Arc<AtomicBool>,
    frames: &thread::JoinHandle<T>,
    signals: Signals,
    reload: Option<Reloader>,
) {
    let Signals {
        mut term,
        mut int,
        mut hup,
    } = signals;
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    while !frames.is_finished() {
        tokio::select! {
            _ = tick.tick() => {}
            Some(_) = async { term.as_mut()?.recv().await } => stop_now(stop),
            Some(_) = async { int.as_mut()?.recv().await } => stop_now(stop),
            Some(_) = async { hup.as_mut()?.recv().await } => match &reload {
                // Blocks this (signal) thread only; the socket is served on the worker.
                Some(r) => r.reload(),
                None => tracing::warn!("SIGHUP ignored: this daemon runs without a config file"),
            },
        }
    }
}

fn stop_now(stop: &AtomicBool) {
    if !stop.swap(true, Ordering::SeqCst) {
        tracing::info!("stopping");
    }
}
