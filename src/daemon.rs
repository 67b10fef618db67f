//! The daemon: source -> engine -> sink on a dedicated frame thread, until told to stop.
//!
//! [`run`] checks everything that can be checked before the first frame (config, model,
//! output pipeline), then runs the frame loop on its own thread while the calling thread
//! waits for Ctrl-C/SIGTERM. The loop pulls the newest frame, stylizes it, pushes it to
//! the encoder, takes snapshots, and prints a progress line. A camera that errors, ends or
//! goes silent is rebuilt with backoff; the output keeps running meanwhile. Nothing in the
//! loop panics on bad input: errors are logged and counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use serde::Serialize;

use crate::config::{Config, OnEos, SourceUri};
use crate::engine::{self, Engine, StageTimes};
use crate::frame::Frame;
use crate::sink::{FrameSink, Snapshotter};
use crate::source::{FrameSource, Pulled, SourceCounts};

/// How long the frame loop waits for a frame before checking for stop requests.
const PULL_SLICE: Duration = Duration::from_millis(100);
/// Reconnect backoff: first wait, and the cap it doubles up to.
const BACKOFF_START: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Limits for one run (tests and benchmarks stop by themselves).
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Stop after this many stylized frames.
    pub max_frames: Option<u64>,
    /// Set to stop the run from another thread.
    pub stop: Arc<AtomicBool>,
    /// Wait for Ctrl-C/SIGTERM (false in tests, which stop through `stop`).
    pub handle_signals: bool,
}

/// Latency percentiles in milliseconds.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    fn of(h: &Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        if h.is_empty() {
            return Self::default();
        }
        Self {
            p50: ms(h.value_at_quantile(0.50)),
            p95: ms(h.value_at_quantile(0.95)),
            p99: ms(h.value_at_quantile(0.99)),
            max: ms(h.max()),
        }
    }
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
    pub infer_ms: Percentiles,
    pub glass_to_glass_ms: Percentiles,
    pub file_pattern: Option<String>,
}

/// Runs the daemon until stopped, the source ends, or `max_frames` frames are done.
pub fn run(config: &Config, options: RunOptions) -> anyhow::Result<RunReport> {
    config.check()?;
    let uri = config.source_uri()?;
    let outputs = config.output_uris()?;
    let engine = engine::open(&config.engine, &config.style_spec()?)
        .with_context(|| format!("cannot start engine for model {}", config.engine.model))?;
    let sink = FrameSink::open(&outputs, &config.output, config.engine.size)?;
    tracing::info!(
        source = %config.source.uri,
        model = %engine.info().model,
        size = %config.engine.size,
        style = %config.engine.style,
        file = ?sink.file_pattern(),
        "stylerd running"
    );
    let stop = options.stop.clone();
    let options_handle_signals = options.handle_signals;
    let loop_config = config.clone();
    let frame_thread = thread::Builder::new()
        .name("frames".into())
        .spawn(move || FrameLoop::new(loop_config, uri, engine, sink, options).run())
        .context("cannot start the frame thread")?;
    if options_handle_signals && stop_on_signal_until(&stop, &frame_thread) {
        tracing::info!("stopping");
    }
    frame_thread
        .join()
        .map_err(|_| anyhow::anyhow!("the frame thread panicked"))?
}

/// Blocks until SIGINT/SIGTERM (then sets `stop`) or until the frame thread ends.
fn stop_on_signal_until<T>(stop: &Arc<AtomicBool>, frames: &thread::JoinHandle<T>) -> bool {
    let mut signals = match signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ]) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot handle signals; stop with SIGKILL only");
            return false;
        }
    };
    while !frames.is_finished() {
        if signals.pending().next().is_some() {
            stop.store(true, Ordering::SeqCst);
            return true;
        }
        thread::sleep(Duration::from_millis(50));
    }
    false
}

struct FrameLoop {
    config: Config,
    uri: SourceUri,
    engine: Box<dyn Engine>,
    sink: FrameSink,
    options: RunOptions,
    snapshots: Option<Snapshotter>,
    report: RunReport,
    infer: Histogram<u64>,
    g2g: Histogram<u64>,
    /// Counts of source instances already closed (each reconnect starts at zero).
    closed_counts: SourceCounts,
}

impl FrameLoop {
    fn new(
        config: Config,
        uri: SourceUri,
        engine: Box<dyn Engine>,
        sink: FrameSink,
        options: RunOptions,
    ) -> Self {
        let snapshots = config
            .output
            .snapshot_dir
            .clone()
            .map(|dir| Snapshotter::new(dir, config.output.snapshot_every_s));
        // 1 µs to 60 s at 3 significant digits.
        let hist = || Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds");
        Self {
            config,
            uri,
            engine,
            sink,
            options,
            snapshots,
            report: RunReport::default(),
            infer: hist(),
            g2g: hist(),
            closed_counts: SourceCounts::default(),
        }
    }

    fn stopping(&self) -> bool {
        self.options.stop.load(Ordering::SeqCst)
            || self
                .options
                .max_frames
                .is_some_and(|n| self.report.processed >= n)
    }

    fn run(mut self) -> anyhow::Result<RunReport> {
        let started = Instant::now();
        let mut source: Option<FrameSource> = None;
        let mut backoff = BACKOFF_START;
        let mut last_frame = Instant::now();
        let mut last_progress = Instant::now();
        let timeout = Duration::from_secs_f64(self.config.source.no_frame_timeout_s);
        let live = self.uri.is_live();
        let finite = self.uri.is_finite();
        let mut result = Ok(());
        while !self.stopping() {
            let Some(src) = source.as_mut() else {
                match FrameSource::open(&self.uri, &self.config.source, self.config.engine.size) {
                    Ok(s) => {
                        source = Some(s);
                        last_frame = Instant::now();
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "camera unavailable");
                        self.sleep(backoff);
                        backoff = (backoff * 2).min(BACKOFF_MAX);
                        self.report.reconnects += 1;
                    }
                }
                continue;
            };
            let lost = match src.pull(PULL_SLICE) {
                Ok(Pulled::Frame(frame)) => {
                    last_frame = Instant::now();
                    backoff = BACKOFF_START;
                    if let Err(e) = self.process(frame) {
                        result = Err(e);
                        break;
                    }
                    None
                }
                Ok(Pulled::Timeout) if live && last_frame.elapsed() >= timeout => {
                    Some(format!("no frame for {:.1} s", timeout.as_secs_f64()))
                }
                Ok(Pulled::Timeout) => None,
                Ok(Pulled::Eos) if finite && self.config.source.on_eos == OnEos::Stop => {
                    tracing::info!("source ended");
                    break;
                }
                Ok(Pulled::Eos) => Some("end of stream".into()),
                Err(e) => Some(e.to_string()),
            };
            if let Some(reason) = lost {
                if let Some(old) = source.take() {
                    self.close_source(old);
                }
                if !finite {
                    tracing::warn!(reason = %reason, retry_in_ms = backoff.as_millis() as u64, "camera lost");
                    self.sleep(backoff);
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
                self.report.reconnects += 1;
            }
            if last_progress.elapsed().as_secs_f64() >= self.config.monitor.progress_every_s {
                last_progress = Instant::now();
                self.progress(started, source.as_ref());
            }
        }
        if let Some(old) = source.take() {
            self.close_source(old);
        }
        self.report.seconds = started.elapsed().as_secs_f64();
        self.report.file_pattern = self.sink.file_pattern().map(|p| p.display().to_string());
        let FrameLoop {
            sink,
            mut report,
            infer,
            g2g,
            ..
        } = self;
        let finished = sink.encoded();
        report.encoded = finished;
        let closed = sink.finish(Duration::from_secs(10));
        if let Err(e) = &closed {
            tracing::error!(error = %e, "output did not close cleanly");
        }
        report.infer_ms = Percentiles::of(&infer);
        report.glass_to_glass_ms = Percentiles::of(&g2g);
        report.fps_out = report.processed as f64 / report.seconds.max(1e-9);
        result?;
        closed?;
        Ok(report)
    }

    /// Sleeps in slices so a stop request is honoured quickly.
    fn sleep(&self, total: Duration) {
        let until = Instant::now() + total;
        while !self.stopping() && Instant::now() < until {
            thread::sleep(PULL_SLICE.min(until - Instant::now()));
        }
    }

    fn close_source(&mut self, source: FrameSource) {
        let c = source.counts();
        self.closed_counts.captured += c.captured;
        self.closed_counts.dropped += c.dropped;
        drop(source);
        self.report.captured = self.closed_counts.captured;
        self.report.dropped = self.closed_counts.dropped;
    }

    fn process(&mut self, frame: Frame) -> anyhow::Result<()> {
        let mut times = StageTimes::default();
        let out = match self.engine.stylize(&frame.image, &mut times) {
            Ok(out) => out,
            Err(e) => {
                self.report.engine_errors += 1;
                if self.report.engine_errors.is_power_of_two() {
                    tracing::error!(error = %e, count = self.report.engine_errors, "engine failed on a frame");
                }
                return Ok(());
            }
        };
        self.sink
            .push(&out, frame.captured)
            .context("output failed")?;
        let g2g = frame.captured.elapsed();
        self.report.processed += 1;
        let _ = self.infer.record((times.infer.as_micros() as u64).max(1));
        let _ = self
            .g2g
            .record((g2g.as_micros() as u64).clamp(1, 60_000_000));
        let now = Instant::now();
        if let Some(snap) = self.snapshots.as_mut().filter(|s| s.due(now)) {
            match snap.write(&out, now) {
                Ok(path) => tracing::debug!(path = %path.display(), "snapshot"),
                Err(e) => tracing::warn!(error = %e, "snapshot failed"),
            }
        }
        Ok(())
    }

    fn progress(&mut self, started: Instant, source: Option<&FrameSource>) {
        let live = source.map(FrameSource::counts).unwrap_or_default();
        let dropped = self.closed_counts.dropped + live.dropped;
        let secs = started.elapsed().as_secs_f64();
        let infer = Percentiles::of(&self.infer);
        let g2g = Percentiles::of(&self.g2g);
        tracing::info!(
            frames = self.report.processed,
            fps = format_args!("{:.1}", self.report.processed as f64 / secs.max(1e-9)),
            dropped,
            infer_p50_ms = format_args!("{:.1}", infer.p50),
            g2g_p95_ms = format_args!("{:.1}", g2g.p95),
            encoded = self.sink.encoded(),
            "progress"
        );
    }
}
