//! The monitor thread: turns per-frame timings, counters, power and system readings into
//! the status document, the budget verdict and the progress line.
//!
//! It owns the measuring state (`monitor::*`), fed by [`FrameEvent`]s from the frame
//! thread over a bounded channel (a full channel drops events rather than slowing frames),
//! and publishes a fresh [`Status`] into a `watch` channel twice a second. Budget changes
//! are logged once per change. It never touches frames, engines or sockets.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use tokio::sync::watch;

use super::{Counters, Shared};
use crate::config::{Config, MonitorConfig};
use crate::control::{
    FpsStatus, FrameCounts, LatencyStatus, ProgressStatus, RecordingStatus, Status,
};
use crate::engine::StageTimes;
use crate::monitor::budget::{Budget, BudgetTracker};
use crate::monitor::latency::{Flow, LatencySnapshot, LatencyStats, Stage};
use crate::monitor::power::{self, PowerSource, PowerStatus};
use crate::monitor::system::SystemSampler;
use crate::notify::Notifier;

/// How often the status document is rebuilt.
const PUBLISH_EVERY: Duration = Duration::from_millis(500);
/// How often power and CPU are sampled (INA3221 updates every ~140 ms; 1 s is plenty).
const SAMPLE_EVERY: Duration = Duration::from_secs(1);
/// How often systemd's `STATUS=` line is refreshed.
const NOTIFY_STATUS_EVERY: Duration = Duration::from_secs(2);
/// Interval of `--timeline` samples.
const TIMELINE_EVERY: Duration = Duration::from_secs(1);

/// One stylized frame's timings, sent by the frame thread.
#[derive(Clone, Copy, Debug)]
pub struct FrameEvent {
    /// Capture to the moment the frame thread took it.
    pub queue_wait: Duration,
    pub times: StageTimes,
    /// Time to hand the frame to the encoder.
    pub push: Duration,
    /// Capture to pushed into the encoder.
    pub glass_to_glass: Duration,
    pub at: Instant,
}

pub struct Observer {
    shared: Arc<Shared>,
    latency: LatencyStats,
    budget: BudgetTracker,
    power: Option<Box<dyn PowerSource + Send>>,
    system: SystemSampler,
    status: Status,
    started: Instant,
    progress_every: Duration,
    last_captured: u64,
    /// The `[monitor]` section in force (a reload may change it).
    monitor: MonitorConfig,
}

impl Observer {
    pub fn new(config: &Config, shared: Arc<Shared>, initial: Status, started: Instant) -> Self {
        let root = &config.monitor.sysfs_root;
        let power = power::detect(root);
        tracing::info!(power = power.as_ref().map_or("none", |p| p.kind()), sysfs = %root.display(), "monitor");
        let budget = Budget {
            latency_ms: config.monitor.budget_latency_ms,
            power_w: config.monitor.budget_power_w,
        };
        Self {
            shared,
            latency: LatencyStats::new(started),
            budget: BudgetTracker::new(budget, started),
            power,
            system: SystemSampler::new(root),
            status: initial,
            started,
            progress_every: Duration::from_secs_f64(config.monitor.progress_every_s),
            last_captured: 0,
            monitor: config.monitor.clone(),
        }
    }

    /// Runs until the frame thread drops its sender; returns the final latency snapshot.
    pub fn run(
        mut self,
        events: Receiver<FrameEvent>,
        publish: watch::Sender<Status>,
        notifier: Option<Arc<Notifier>>,
        mut timeline: Option<std::fs::File>,
    ) -> LatencySnapshot {
        let mut last_timeline = Instant::now();
        let mut last_publish = Instant::now();
        let mut last_sample = Instant::now() - SAMPLE_EVERY;
        let mut last_progress = Instant::now();
        let mut last_notify = Instant::now();
        loop {
            match events.recv_timeout(PUBLISH_EVERY) {
                Ok(ev) => self.record(ev),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            let now = Instant::now();
            if now.duration_since(last_sample) >= SAMPLE_EVERY {
                last_sample = now;
                self.sample(now);
            }
            if now.duration_since(last_publish) >= PUBLISH_EVERY {
                last_publish = now;
                self.rebuild(now);
                publish.send_replace(self.status.clone());
            }
            if let Some(file) = timeline
                .as_mut()
                .filter(|_| now.duration_since(last_timeline) >= TIMELINE_EVERY)
            {
                last_timeline = now;
                if let Err(e) = self.append_timeline(file) {
                    tracing::warn!(error = %e, "timeline write failed; timeline stopped");
                    timeline = None;
                }
            }
            if now.duration_since(last_progress) >= self.progress_every {
                last_progress = now;
                self.progress();
            }
            if let Some(n) = notifier
                .as_ref()
                .filter(|_| now.duration_since(last_notify) >= NOTIFY_STATUS_EVERY)
            {
                last_notify = now;
                let _ = n.status(&self.one_line());
            }
        }
        let now = Instant::now();
        self.rebuild(now);
        publish.send_replace(self.status.clone());
        self.latency.snapshot(now)
    }

    fn record(&mut self, ev: FrameEvent) {
        let l = &mut self.latency;
        l.record(Stage::QueueWait, ev.queue_wait, ev.at);
        l.record(Stage::PreProcess, ev.times.pre, ev.at);
        l.record(Stage::Infer, ev.times.infer, ev.at);
        l.record(Stage::PostProcess, ev.times.post, ev.at);
        l.record(Stage::Push, ev.push, ev.at);
        l.record(Stage::GlassToGlass, ev.glass_to_glass, ev.at);
        l.count_frame(Flow::Out, ev.at);
        if let Some(change) = self.budget.record_latency(ev.glass_to_glass, ev.at) {
            change.log();
        }
    }

    fn sample(&mut self, now: Instant) {
        self.status.system = Some(self.system.sample());
        self.status.power = match self.power.as_mut() {
            Some(src) => {
                let reading = src.sample();
                if let Ok(s) = &reading
                    && let Some(change) = self.budget.record_power(s.total_w, now)
                {
                    change.log();
                }
                let watts = reading.as_ref().ok().map(|s| (s.total_w, now));
                self.shared.update(|s| s.power_w = watts);
                PowerStatus::from_reading(src.kind(), &reading)
            }
            None => PowerStatus::none(),
        };
    }

    fn rebuild(&mut self, now: Instant) {
        let shared = self.shared.clone();
        let c = &shared.counters;
        // Read processed before captured: the frame thread stores them in the other
        // order, so captured >= processed in every document.
        let processed = Counters::get(&c.processed);
        let captured = Counters::get(&c.captured);
        for _ in self.last_captured..captured {
            self.latency.count_frame(Flow::In, now);
        }
        self.last_captured = captured;
        let snap = self.latency.snapshot(now);
        let state = self.shared.state();
        if let Some(m) = state.monitor.clone().filter(|m| *m != self.monitor) {
            self.apply_monitor(m, now);
        }
        let s = &mut self.status;
        s.uptime_s = now.duration_since(self.started).as_secs_f64();
        s.state = state.run;
        s.source.state = state.source_state.into();
        s.source.last_error = state.last_error;
        s.source.reconnects = Counters::get(&c.reconnects);
        s.style.spec = state.style;
        s.style.strength = state.mix.strength;
        s.style.preserve_color = state.mix.preserve_color;
        s.style.differs_from_file = state.differs_from_file;
        if let Some(n) = state.styles_available {
            s.style.available = n;
        }
        if let Some(uri) = state.source_uri {
            s.source.uri = uri;
        }
        if let Some((uris, pattern)) = state.outputs {
            s.outputs = uris;
            s.recording = pattern.map(|pattern| RecordingStatus {
                pattern,
                error: None,
            });
        }
        s.config = state.config;
        s.progress = state.progress.map(|(done, total)| ProgressStatus {
            frames_done: done,
            frames_total: total,
            eta_s: total
                .filter(|_| snap.fps.out > 0.0)
                .map(|t| t.saturating_sub(done) as f64 / snap.fps.out),
        });
        s.governor = state.governor;
        if let Some(info) = state.engine {
            s.engine = Some(info);
        }
        if let Some(rec) = s.recording.as_mut() {
            rec.error = state.recording_error;
        }
        s.frames = FrameCounts {
            captured,
            processed,
            dropped: Counters::get(&c.dropped),
            encoded: Counters::get(&c.encoded),
            engine_errors: Counters::get(&c.engine_errors),
        };
        s.fps = FpsStatus {
            input: snap.fps.input,
            out: snap.fps.out,
        };
        let stages = snap
            .window
            .iter()
            .filter(|(k, _)| **k != "glass_to_glass")
            .map(|(k, v)| (std::borrow::Cow::Borrowed(*k), *v))
            .collect();
        s.latency_ms = LatencyStatus {
            infer: snap.window.get("infer").copied(),
            glass_to_glass: snap.window.get("glass_to_glass").copied(),
            stages,
            window_s: snap.window_s,
        };
        s.budget = Some(self.budget.verdict(now));
    }

    /// A reload changed `[monitor]`: new budget (its windows start over) and progress rate.
    fn apply_monitor(&mut self, m: MonitorConfig, now: Instant) {
        let budget = Budget {
            latency_ms: m.budget_latency_ms,
            power_w: m.budget_power_w,
        };
        if budget != self.budget.budget() {
            self.budget = BudgetTracker::new(budget, now);
        }
        self.progress_every = Duration::from_secs_f64(m.progress_every_s);
        self.monitor = m;
    }

    fn append_timeline(&self, file: &mut std::fs::File) -> std::io::Result<()> {
        use std::io::Write;
        let mut doc = serde_json::to_value(&self.status)?;
        doc["t"] = serde_json::json!(self.status.uptime_s);
        writeln!(file, "{doc}")
    }

    fn one_line(&self) -> String {
        let s = &self.status;
        let p95 = s
            .latency_ms
            .glass_to_glass
            .map_or("-".into(), |p| format!("{:.1} ms", p.p95));
        let power = s
            .power
            .total_w
            .map_or("power n/a".into(), |w| format!("{w:.1} W"));
        let within = s.budget.as_ref().map_or("", |b| {
            if b.within {
                "within budget"
            } else {
                "OVER budget"
            }
        });
        format!("{:.1} fps, g2g p95 {p95}, {power}, {within}", s.fps.out)
    }

    fn progress(&self) {
        let s = &self.status;
        if let Some(p) = &s.progress {
            let total = p.frames_total.map_or("?".into(), |t| t.to_string());
            let eta = p.eta_s.map_or("?".into(), |e| format!("{e:.0} s"));
            tracing::info!(
                frames = format_args!("{}/{total}", p.frames_done),
                fps = format_args!("{:.1}", s.fps.out),
                eta = %eta,
                "progress"
            );
            return;
        }
        tracing::info!(
            state = ?s.state,
            frames = s.frames.processed,
            fps = format_args!("{:.1}", s.fps.out),
            dropped = s.frames.dropped,
            infer_p50_ms = format_args!("{:.1}", s.latency_ms.infer.map_or(0.0, |p| p.p50)),
            g2g_p95_ms = format_args!("{:.1}", s.latency_ms.glass_to_glass.map_or(0.0, |p| p.p95)),
            power_w = ?s.power.total_w,
            encoded = s.frames.encoded,
            "progress"
        );
    }
}
