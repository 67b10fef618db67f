//! The frame loop: pull the newest frame, stylize it, push it to the encoder — on its own
//! thread, never on a tokio worker.
//!
//! It also reconnects a camera that errors, ends or goes silent (backoff 0.5 s doubling to
//! 2 s, reset once frames flow) while the output keeps running, answers control requests
//! between frames (a style change applies to the next frame, none is lost), takes
//! snapshots, and tells systemd `READY=1` after the first stylized frame and `WATCHDOG=1`
//! as it goes, so a hung engine or pipeline stops the pings. Nothing here panics on bad
//! input: errors are logged and counted.
//!
//! # Layout
//! - `control`: control requests between frames, and swapping in arbitrary-style engines
//!   (built by [`super::style_swap`]); style, strength and colour changes, saved on request.
//! - `reload`: a reloaded config applied between frames (SIGHUP).
//! - `students`: the governor's model rungs: students of the running style, their engines,
//!   costs, and running a frame on the rung's engine.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use crossbeam_channel::{Receiver, Sender};

mod control;
mod reload;
mod students;

use super::monitor_thread::FrameEvent;
use super::reload::{FileStyle, Loaded};
use super::style_swap::StyleSwaps;
use super::{Counters, RunOptions, RunReport, Shared};
use crate::config::{Config, OnEos};
use crate::control::RunState;
use crate::control::server::ControlRequest;
use crate::engine::{Engine, StageTimes};
use crate::frame::{Frame, RgbImage};
use crate::governor::Governor;
use crate::media::sink::{FrameSink, Snapshotter};
use crate::media::source::{FrameSource, Pulled, SourceCounts};
use crate::mix::Mix;
use crate::notify::{self, Notifier};
use crate::stabilize::Stabilizer;

/// How long the loop waits for a frame before checking stop, control and watchdog.
const PULL_SLICE: Duration = Duration::from_millis(100);
/// Reconnect backoff: first wait, and the cap it doubles up to.
const BACKOFF_START: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// Fault injection for the watchdog test: stall the loop after this many frames.
const STALL_ENV: &str = "STYLERD_FAULT_STALL_AFTER_FRAMES";
/// Rate of "no signal" frames while the camera is lost.
const NO_SIGNAL_EVERY: Duration = Duration::from_secs(1);

/// Everything the frame thread owns.
pub struct Context {
    pub config: Config,
    pub engine: Box<dyn Engine>,
    pub sink: FrameSink,
    pub options: RunOptions,
    pub shared: Arc<Shared>,
    pub events: Sender<FrameEvent>,
    pub control: Receiver<ControlRequest>,
    /// Good reloads of the config file, to apply between frames.
    pub reloads: Receiver<Loaded>,
    pub notifier: Option<Arc<Notifier>>,
}

pub struct FrameLoop {
    cx: Context,
    snapshots: Snapshotter,
    /// Counts of source instances already closed (each reconnect starts at zero).
    closed: SourceCounts,
    last_output: Option<RgbImage>,
    paused: bool,
    ready_sent: bool,
    /// The camera was lost since the last stylized frame: the next one reports `running`.
    recovering: bool,
    watchdog_every: Option<Duration>,
    last_watchdog: Instant,
    stall_after: Option<u64>,
    last_no_signal: Option<Instant>,
    governor: Governor,
    /// Engines of the students the governor's rungs run, and each model's cost.
    students: students::Students,
    stabilizer: Option<Stabilizer>,
    /// Frames taken from the source (stylized or reused), for frame skipping.
    taken: u64,
    /// Arbitrary-style engines being built, and the parked configured engine.
    swaps: StyleSwaps,
    /// Strength and colour of the running style.
    mix: Mix,
    /// The config file's style part (`None` without a file), to tell whether ours differs.
    file_style: Option<FileStyle>,
    /// A reload changed the source: close it before the next pull.
    reopen_source: bool,
    /// Frames encoded by output pipelines a reload has replaced.
    encoded_before: u64,
    /// Frames stylized in this pass of a finite source, and its length when known.
    pass_frames: u64,
    total_frames: Option<u64>,
}

impl FrameLoop {
    pub fn new(cx: Context) -> Self {
        let out = &cx.config.output;
        let dir = out
            .snapshot_dir
            .clone()
            .unwrap_or_else(|| "out/snapshots".into());
        let snapshots = Snapshotter::new(dir, out.snapshot_every_s);
        // Ping twice per watchdog period, as sd_watchdog_enabled(3) advises.
        let watchdog_every = notify::watchdog_interval().map(|d| d / 2);
        let stall_after = std::env::var(STALL_ENV).ok().and_then(|v| v.parse().ok());
        // A placeholder until the frame loop exists to open and time the students.
        let governor = Governor::new(Vec::new(), 1.0, 1.0, Some(0), Instant::now());
        let st = &cx.config.stabilizer;
        let stabilizer = (st.enabled && cx.config.source.uri.is_live())
            .then(|| Stabilizer::new(st.strength, st.threshold));
        Self {
            snapshots,
            closed: SourceCounts::default(),
            last_output: None,
            paused: false,
            ready_sent: false,
            recovering: false,
            watchdog_every,
            last_watchdog: Instant::now(),
            stall_after,
            last_no_signal: None,
            governor,
            stabilizer,
            taken: 0,
            swaps: StyleSwaps::default(),
            mix: cx.config.engine.mix(),
            file_style: cx
                .options
                .config_file
                .as_ref()
                .map(|(_, loaded)| loaded.file_style.clone()),
            reopen_source: false,
            encoded_before: 0,
            pass_frames: 0,
            total_frames: None,
            students: Default::default(),
            cx,
        }
        .with_governor()
    }

    fn with_governor(mut self) -> Self {
        self.governor = self.build_governor();
        let status = self.governor.status();
        self.cx.shared.update(|s| s.governor = Some(status));
        self
    }

    /// The run's counters: written here only, read by the monitor thread and the report.
    fn counters(&self) -> &Counters {
        &self.cx.shared.counters
    }

    fn processed(&self) -> u64 {
        self.counters().processed.load(Ordering::SeqCst)
    }

    fn stopping(&self) -> bool {
        self.cx.options.stop.load(Ordering::SeqCst)
            || self
                .cx
                .options
                .max_frames
                .is_some_and(|n| self.processed() >= n)
    }

    fn set_state(&self, run: RunState, source: &'static str, error: Option<String>) {
        self.cx.shared.update(|s| {
            s.run = run;
            s.source_state = source;
            if error.is_some() {
                s.last_error = error;
            }
        });
    }

    pub fn run(mut self) -> anyhow::Result<RunReport> {
        let started = Instant::now();
        let mut source: Option<FrameSource> = None;
        let mut backoff = BACKOFF_START;
        let mut last_frame = Instant::now();
        let mut result = Ok(());
        self.set_state(RunState::Starting, "connecting", None);
        while !self.stopping() {
            self.watchdog();
            self.serve_control();
            if std::mem::take(&mut self.reopen_source) {
                self.close_source(source.take());
            }
            // A reload may change these.
            let timeout = Duration::from_secs_f64(self.cx.config.source.no_frame_timeout_s);
            let finite = self.cx.config.source.uri.is_finite();
            let Some(src) = source.as_mut() else {
                match FrameSource::open(&self.cx.config.source, self.cx.config.engine.size) {
                    Ok(s) => {
                        source = Some(s);
                        last_frame = Instant::now();
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "camera unavailable");
                        self.set_state(RunState::Reconnecting, "lost", Some(e.to_string()));
                        self.reconnect_wait(&mut backoff);
                    }
                }
                continue;
            };
            let lost = match src.pull(PULL_SLICE) {
                Ok(Pulled::Frame(frame)) => {
                    last_frame = Instant::now();
                    backoff = BACKOFF_START;
                    // Count the capture before the processing, so captured >= processed
                    // holds for any reader.
                    let counts = src.counts();
                    if finite && self.total_frames.is_none() {
                        self.total_frames = src.total_frames();
                    }
                    self.publish_totals(counts);
                    if let Err(e) = self.process(frame) {
                        result = Err(e);
                        break;
                    }
                    None
                }
                Ok(Pulled::Timeout) if !finite && last_frame.elapsed() >= timeout => {
                    Some(format!("no frame for {:.1} s", timeout.as_secs_f64()))
                }
                Ok(Pulled::Timeout) => None,
                Ok(Pulled::Eos) if finite && self.cx.config.source.on_eos == OnEos::Stop => {
                    tracing::info!("source ended");
                    self.set_state(RunState::Stopping, "ended", None);
                    break;
                }
                Ok(Pulled::Eos) if finite => {
                    tracing::info!("source ended; looping");
                    self.close_source(source.take());
                    self.pass_frames = 0;
                    continue;
                }
                Ok(Pulled::Eos) => Some("the camera ended the stream".into()),
                Err(e) => Some(e.to_string()),
            };
            self.publish_counts(source.as_ref());
            if let Some(reason) = lost {
                self.close_source(source.take());
                tracing::warn!(reason = %reason, retry_in_ms = backoff.as_millis() as u64, "camera lost");
                self.set_state(RunState::Reconnecting, "lost", Some(reason));
                self.reconnect_wait(&mut backoff);
            }
        }
        self.set_state(RunState::Stopping, "closed", None);
        if let Some(n) = &self.cx.notifier {
            let _ = n.stopping();
        }
        self.close_source(source.take());
        let encoded_before = self.encoded_before;
        let FrameLoop { cx, .. } = self;
        let c = &cx.shared.counters;
        c.encoded
            .store(encoded_before + cx.sink.encoded(), Ordering::Relaxed);
        let seconds = started.elapsed().as_secs_f64();
        let read = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::SeqCst);
        let report = RunReport {
            captured: read(&c.captured),
            dropped: read(&c.dropped),
            processed: read(&c.processed),
            encoded: read(&c.encoded),
            engine_errors: read(&c.engine_errors),
            reconnects: read(&c.reconnects),
            seconds,
            fps_out: read(&c.processed) as f64 / seconds.max(1e-9),
            file_pattern: cx.sink.file_pattern().map(|p| p.display().to_string()),
            ..Default::default()
        };
        let closed = cx.sink.finish(Duration::from_secs(10));
        if let Err(e) = &closed {
            tracing::error!(error = %e, "output did not close cleanly");
        }
        // Dropping `cx.events` here lets the monitor thread finish.
        result?;
        closed?;
        Ok(report)
    }

    /// Waits out the backoff in slices (so stop and control stay responsive), then doubles it.
    fn reconnect_wait(&mut self, backoff: &mut Duration) {
        self.recovering = true;
        self.counters().reconnects.fetch_add(1, Ordering::SeqCst);
        let until = Instant::now() + *backoff;
        while !self.stopping() && Instant::now() < until {
            self.watchdog();
            self.serve_control();
            self.push_no_signal();
            thread::sleep(PULL_SLICE.min(until.saturating_duration_since(Instant::now())));
        }
        *backoff = (*backoff * 2).min(BACKOFF_MAX);
    }

    /// While the camera is away the output keeps going at one "no signal" frame per second
    /// (the last stylized frame, dimmed), so recordings and RTSP clients never stall.
    fn push_no_signal(&mut self) {
        if self
            .last_no_signal
            .is_some_and(|t| t.elapsed() < NO_SIGNAL_EVERY)
        {
            return;
        }
        self.last_no_signal = Some(Instant::now());
        let size = self.cx.config.engine.size;
        let image = match &self.last_output {
            Some(last) => RgbImage {
                data: last.data.iter().map(|v| v / 4).collect(),
                ..last.clone()
            },
            None => RgbImage {
                width: size.width,
                height: size.height,
                data: vec![32; size.width as usize * size.height as usize * 3],
            },
        };
        if let Err(e) = self.cx.sink.push(&image, Instant::now()) {
            tracing::warn!(error = %e, "cannot push the no-signal frame");
        }
    }

    fn close_source(&mut self, source: Option<FrameSource>) {
        if let Some(source) = source {
            let c = source.counts();
            self.closed.captured += c.captured;
            self.closed.dropped += c.dropped;
            drop(source);
        }
        self.publish_counts(None);
    }

    fn publish_counts(&mut self, live: Option<&FrameSource>) {
        self.publish_totals(live.map(FrameSource::counts).unwrap_or_default());
    }

    fn publish_totals(&mut self, now: SourceCounts) {
        let c = &self.cx.shared.counters;
        c.captured
            .store(self.closed.captured + now.captured, Ordering::SeqCst);
        c.dropped
            .store(self.closed.dropped + now.dropped, Ordering::Relaxed);
        c.encoded.store(
            self.encoded_before + self.cx.sink.encoded(),
            Ordering::Relaxed,
        );
        if let Some(e) = self.cx.sink.recording_failure() {
            self.cx.shared.update(|s| s.recording_error = Some(e));
        }
    }

    fn watchdog(&mut self) {
        self.cx.shared.tap.beat();
        let (Some(n), Some(every)) = (&self.cx.notifier, self.watchdog_every) else {
            return;
        };
        if self.last_watchdog.elapsed() >= every {
            self.last_watchdog = Instant::now();
            let _ = n.watchdog();
        }
    }

    fn process(&mut self, frame: Frame) -> anyhow::Result<()> {
        let taken = Instant::now();
        if self.paused {
            self.set_state(RunState::Paused, "streaming", None);
            return Ok(());
        }
        if self.stall_after.is_some_and(|n| self.processed() >= n) {
            tracing::warn!("fault injection: frame loop stalled on purpose ({STALL_ENV})");
            loop {
                thread::sleep(Duration::from_secs(3600));
            }
        }
        let rung = self.governor.rung();
        self.taken += 1;
        if rung.every > 1
            && !self.taken.is_multiple_of(rung.every as u64)
            && let Some(last) = self.last_output.as_ref()
        {
            // Skip rung: show the last stylization again; no new content, no latency sample.
            self.cx
                .sink
                .push(last, frame.captured)
                .context("output failed")?;
            return Ok(());
        }
        let mut times = StageTimes::default();
        let mut out = match self.stylize(&frame.image, rung, &mut times) {
            Ok(out) => out,
            Err(e) => {
                let errors = self.counters().engine_errors.fetch_add(1, Ordering::SeqCst) + 1;
                if errors.is_power_of_two() {
                    tracing::error!(error = %e, count = errors, "engine failed on a frame");
                }
                return Ok(());
            }
        };
        self.mix.apply(&frame.image, &mut out);
        if let Some(st) = self.stabilizer.as_mut() {
            st.apply(&frame.image, &mut out);
        }
        let push_start = Instant::now();
        self.cx
            .sink
            .push(&out, frame.captured)
            .context("output failed")?;
        let done = Instant::now();
        self.cx.shared.tap.offer(&frame.image, &out, done);
        let processed = self.counters().processed.fetch_add(1, Ordering::SeqCst) + 1;
        let event = FrameEvent {
            queue_wait: taken.saturating_duration_since(frame.captured),
            times,
            push: done - push_start,
            glass_to_glass: done.saturating_duration_since(frame.captured),
            at: done,
        };
        // A full channel means the monitor is behind: drop the sample, never the frame.
        let _ = self.cx.events.try_send(event);
        if self.cx.config.source.uri.is_finite() {
            self.pass_frames += 1;
            let progress = (self.pass_frames, self.total_frames);
            self.cx.shared.update(|s| s.progress = Some(progress));
        }
        self.govern(event.glass_to_glass, done);
        if !self.ready_sent {
            self.ready_sent = true;
            self.recovering = false;
            self.set_state(RunState::Running, "streaming", None);
            if let Some(n) = &self.cx.notifier {
                let _ = n.ready();
            }
            tracing::info!("first stylized frame pushed");
        } else if self.recovering || processed.is_multiple_of(30) {
            // Back from a reconnect at once, not at the next 30th frame.
            self.recovering = false;
            self.set_state(RunState::Running, "streaming", None);
        }
        if self.snapshots.due(done)
            && let Err(e) = self.snapshots.write(&out, done)
        {
            tracing::warn!(error = %e, "snapshot failed");
        }
        self.last_output = Some(out);
        Ok(())
    }

    fn govern(&mut self, glass_to_glass: Duration, now: Instant) {
        self.governor
            .record_latency(glass_to_glass.as_secs_f64() * 1000.0, now);
        if let Some((w, read_at)) = self.cx.shared.state().power_w {
            self.governor.record_power(w, read_at);
        }
        if let Some(step) = self.governor.decide(now) {
            let r = self.governor.rung();
            let model = &self.governor.models()[r.model].name;
            tracing::warn!(from = step.from, to = step.to, model = %model, size = format_args!("{}x{}", r.size[0], r.size[1]), every = r.every, reason = %step.reason, "governor");
            if let Some(st) = self.stabilizer.as_mut() {
                // A new scale changes the strokes: do not blend across it.
                st.reset();
            }
            let status = self.governor.status();
            self.cx.shared.update(|s| s.governor = Some(status));
        }
    }
}
