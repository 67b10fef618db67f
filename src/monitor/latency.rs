//! Per-stage frame latency and frame rates, over a sliding window and since start.
//!
//! Owns the histograms (hdrhistogram, 3 significant digits) and the frame counters. The
//! clock is always passed in (`now: Instant`), so this module never reads the time itself
//! and tests are deterministic. It must not log, sample power or decide the budget: it only
//! answers "how long did each stage take and how many frames went by".
//!
//! The sliding window is a ring of one-second histograms ([`WindowedHistogram`], in
//! [`super::window`]).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

pub use super::window::WindowedHistogram;
use super::window::second_of;
use serde::{Deserialize, Serialize};

/// Default length of the sliding window (docs/design.md "Target facts": "the last 10 s").
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(10);

/// A stage of the frame path that gets its own histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    /// Time the frame waited in the appsink queue before the engine thread took it.
    QueueWait,
    /// u8 HWC -> f32 NCHW conversion.
    PreProcess,
    /// `Engine::run` only (the model's run time).
    Infer,
    /// f32 NCHW -> u8 HWC conversion.
    PostProcess,
    /// Pushing the stylized frame into the encoder's appsrc.
    Push,
    /// Capture timestamp to encoder push: what a viewer actually sees.
    GlassToGlass,
}

impl Stage {
    /// Every stage, in data-path order.
    pub const ALL: [Stage; 6] = [
        Stage::QueueWait,
        Stage::PreProcess,
        Stage::Infer,
        Stage::PostProcess,
        Stage::Push,
        Stage::GlassToGlass,
    ];

    /// The key used in the status document (`latency_ms.<name>`).
    pub fn name(self) -> &'static str {
        match self {
            Stage::QueueWait => "queue_wait",
            Stage::PreProcess => "pre_process",
            Stage::Infer => "infer",
            Stage::PostProcess => "post_process",
            Stage::Push => "push",
            Stage::GlassToGlass => "glass_to_glass",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Which frame counter a frame goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// A frame arrived from the source.
    In,
    /// A stylized frame was pushed to the encoder.
    Out,
}

/// Latency percentiles of one stage, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
    /// Number of samples these percentiles summarise.
    pub count: u64,
}

impl Percentiles {
    /// Percentiles of a histogram of microseconds; `None` when it holds no sample, so an
    /// idle stage never reports a made-up 0 ms.
    pub(super) fn of(hist: &Histogram<u64>) -> Option<Self> {
        if hist.is_empty() {
            return None;
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Some(Self {
            p50: ms(hist.value_at_quantile(0.50)),
            p95: ms(hist.value_at_quantile(0.95)),
            p99: ms(hist.value_at_quantile(0.99)),
            max: ms(hist.max()),
            count: hist.len(),
        })
    }
}

/// Frames per second in and out over the sliding window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Fps {
    #[serde(rename = "in")]
    pub input: f64,
    pub out: f64,
}

/// Everything [`LatencyStats`] knows at one instant, ready for the status document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatencySnapshot {
    /// Length of the sliding window in seconds.
    pub window_s: f64,
    /// Stage name -> percentiles over the window; stages without samples are left out.
    pub window: BTreeMap<&'static str, Percentiles>,
    /// Stage name -> percentiles since start.
    pub since_start: BTreeMap<&'static str, Percentiles>,
    pub fps: Fps,
}

/// Whether a read covers the sliding window or everything since start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Window,
    SinceStart,
}

/// Frames counted per second over the same sliding window as the histograms.
#[derive(Debug)]
struct FrameRate {
    start: Instant,
    /// `(second, frames)`; slot `s % len` holds second `s`.
    slots: Vec<(u64, u64)>,
}

impl FrameRate {
    fn new(window: Duration, start: Instant) -> Self {
        let seconds = window.as_secs().max(1) as usize;
        Self {
            start,
            slots: vec![(u64::MAX, 0); seconds],
        }
    }

    fn count(&mut self, now: Instant) {
        let second = second_of(self.start, now);
        let len = self.slots.len() as u64;
        let slot = &mut self.slots[(second % len) as usize];
        if slot.0 != second {
            *slot = (second, 0);
        }
        slot.1 += 1;
    }

    /// Frames per second over the part of the window that has elapsed: the slots cover from
    /// the start of the oldest second in the window up to `now`.
    fn fps(&self, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.start);
        let second = elapsed.as_secs();
        let len = self.slots.len() as u64;
        let oldest = (second + 1).saturating_sub(len);
        let span = elapsed.as_secs_f64() - oldest as f64;
        if span <= 0.0 {
            return 0.0;
        }
        let frames: u64 = self
            .slots
            .iter()
            .filter(|(s, _)| *s != u64::MAX && *s >= oldest && *s <= second)
            .map(|(_, n)| n)
            .sum();
        frames as f64 / span
    }
}

/// Latency histograms for every [`Stage`] and the in/out frame rates.
#[derive(Debug)]
pub struct LatencyStats {
    window: Duration,
    stages: Vec<WindowedHistogram>,
    fps_in: FrameRate,
    fps_out: FrameRate,
}

impl LatencyStats {
    /// Statistics over the [`DEFAULT_WINDOW`] starting at `start`.
    pub fn new(start: Instant) -> Self {
        Self::with_window(DEFAULT_WINDOW, start)
    }

    /// Statistics over a window of `window` (whole seconds, at least one).
    pub fn with_window(window: Duration, start: Instant) -> Self {
        let window = Duration::from_secs(window.as_secs().max(1));
        Self {
            window,
            stages: Stage::ALL
                .iter()
                .map(|_| WindowedHistogram::new(window, start))
                .collect(),
            fps_in: FrameRate::new(window, start),
            fps_out: FrameRate::new(window, start),
        }
    }

    /// Records how long `stage` took for one frame, observed at `now`.
    pub fn record(&mut self, stage: Stage, duration: Duration, now: Instant) {
        self.stages[stage.index()].record(duration, now);
    }

    /// Counts one frame in or out at `now`.
    pub fn count_frame(&mut self, flow: Flow, now: Instant) {
        match flow {
            Flow::In => self.fps_in.count(now),
            Flow::Out => self.fps_out.count(now),
        }
    }

    /// Percentiles of one stage; `None` when it has no sample in that scope.
    pub fn percentiles(&mut self, stage: Stage, scope: Scope, now: Instant) -> Option<Percentiles> {
        self.stages[stage.index()].percentiles(scope, now)
    }

    /// Everything at `now`, for the status document.
    pub fn snapshot(&mut self, now: Instant) -> LatencySnapshot {
        let mut window = BTreeMap::new();
        let mut since_start = BTreeMap::new();
        for stage in Stage::ALL {
            if let Some(p) = self.percentiles(stage, Scope::Window, now) {
                window.insert(stage.name(), p);
            }
            if let Some(p) = self.percentiles(stage, Scope::SinceStart, now) {
                since_start.insert(stage.name(), p);
            }
        }
        LatencySnapshot {
            window_s: self.window.as_secs_f64(),
            window,
            since_start,
            fps: Fps {
                input: self.fps_in.fps(now),
                out: self.fps_out.fps(now),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// xorshift64*: enough randomness for test data without a dependency.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
    }

    /// Nearest-rank quantile, the definition hdrhistogram uses.
    fn brute_quantile(sorted: &[u64], q: f64) -> u64 {
        let rank = ((q * sorted.len() as f64).ceil() as usize).max(1);
        sorted[rank - 1]
    }

    fn assert_close_ms(got_ms: f64, exact_us: u64, what: &str) {
        let exact_ms = exact_us as f64 / 1000.0;
        // 3 significant digits: the histogram's bucket is at most 1/1024 of the value wide.
        let tolerance = exact_ms / 1000.0 + 0.001;
        assert!(
            (got_ms - exact_ms).abs() <= tolerance,
            "{what}: histogram {got_ms} ms vs exact {exact_ms} ms"
        );
    }

    #[test]
    fn percentiles_match_brute_force_on_random_data() {
        let start = Instant::now();
        let mut stats = LatencyStats::new(start);
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let mut samples = Vec::new();
        for i in 0..20_000u64 {
            // Mostly 5..45 ms with a long tail up to 2 s, like a real frame path.
            let r = rng.next();
            let us = if r.is_multiple_of(100) {
                1 + r % 2_000_000
            } else {
                5_000 + r % 40_000
            };
            samples.push(us);
            let now = start + Duration::from_micros(i * 400); // 8 s of frames
            stats.record(Stage::Infer, Duration::from_micros(us), now);
        }
        samples.sort_unstable();
        let now = start + Duration::from_secs(8);
        for scope in [Scope::Window, Scope::SinceStart] {
            let p = stats.percentiles(Stage::Infer, scope, now).unwrap();
            assert_eq!(p.count, samples.len() as u64);
            assert_close_ms(p.p50, brute_quantile(&samples, 0.50), "p50");
            assert_close_ms(p.p95, brute_quantile(&samples, 0.95), "p95");
            assert_close_ms(p.p99, brute_quantile(&samples, 0.99), "p99");
            assert_close_ms(p.max, *samples.last().unwrap(), "max");
        }
    }

    #[test]
    fn window_forgets_old_seconds_but_since_start_keeps_them() {
        let start = Instant::now();
        let mut stats = LatencyStats::with_window(Duration::from_secs(10), start);
        let at = |s: f64| start + Duration::from_secs_f64(s);
        // Slow frames in the first second, fast frames from second 5 on.
        for i in 0..10 {
            stats.record(
                Stage::GlassToGlass,
                Duration::from_millis(100),
                at(0.1 * i as f64),
            );
        }
        for i in 0..10 {
            let now = at(5.0 + 0.1 * i as f64);
            stats.record(Stage::GlassToGlass, Duration::from_millis(20), now);
        }
        let w = stats.percentiles(Stage::GlassToGlass, Scope::Window, at(9.9));
        assert_eq!(w.unwrap().count, 20);
        // Second 0 leaves a 10 s window at t = 10 s.
        let w = stats
            .percentiles(Stage::GlassToGlass, Scope::Window, at(10.0))
            .unwrap();
        assert_eq!(w.count, 10);
        assert_close_ms(w.max, 20_000, "max after expiry");
        let total = stats
            .percentiles(Stage::GlassToGlass, Scope::SinceStart, at(10.0))
            .unwrap();
        assert_eq!(total.count, 20);
        assert_close_ms(total.max, 100_000, "max since start");
        // Long silence: the window empties, after a jump of many windows too.
        assert!(
            stats
                .percentiles(Stage::GlassToGlass, Scope::Window, at(15.0))
                .is_none()
        );
        stats.record(Stage::GlassToGlass, Duration::from_millis(7), at(123.4));
        let w = stats
            .percentiles(Stage::GlassToGlass, Scope::Window, at(124.0))
            .unwrap();
        assert_eq!(w.count, 1);
        assert_close_ms(w.p50, 7_000, "p50 after jump");
    }

    #[test]
    fn fps_counts_frames_over_the_window() {
        let start = Instant::now();
        let mut stats = LatencyStats::with_window(Duration::from_secs(10), start);
        // 30 fps in, 25 fps out for 20 s.
        for i in 0..600u64 {
            stats.count_frame(Flow::In, start + Duration::from_micros(i * 33_333));
        }
        for i in 0..500u64 {
            stats.count_frame(Flow::Out, start + Duration::from_millis(i * 40));
        }
        let snap = stats.snapshot(start + Duration::from_secs(20));
        assert!((snap.fps.input - 30.0).abs() < 0.5, "{:?}", snap.fps);
        assert!((snap.fps.out - 25.0).abs() < 0.5, "{:?}", snap.fps);
        // After 2.5 s of a fresh start the rate is over 2.5 s, not over 10.
        let mut young = LatencyStats::new(start);
        for i in 0..75u64 {
            young.count_frame(Flow::In, start + Duration::from_micros(i * 33_333));
        }
        let fps = young.snapshot(start + Duration::from_millis(2500)).fps;
        assert!((fps.input - 30.0).abs() < 0.5, "{fps:?}");
        assert_eq!(fps.out, 0.0);
    }

    #[test]
    fn snapshot_serializes_with_status_document_names() {
        let start = Instant::now();
        let mut stats = LatencyStats::new(start);
        stats.record(Stage::Infer, Duration::from_millis(12), start);
        stats.record(Stage::GlassToGlass, Duration::from_millis(25), start);
        stats.count_frame(Flow::In, start);
        let json = serde_json::to_value(stats.snapshot(start + Duration::from_secs(1))).unwrap();
        let p50 = json["window"]["infer"]["p50"].as_f64().unwrap();
        assert!((p50 - 12.0).abs() < 0.013, "{p50}");
        assert!(json["window"]["glass_to_glass"]["p99"].is_number());
        assert!(json["window"].get("queue_wait").is_none());
        assert_eq!(json["fps"]["in"], 1.0);
        assert_eq!(json["window_s"], 10.0);
    }

    #[test]
    fn absurd_durations_are_clamped_not_panics() {
        let start = Instant::now();
        let mut stats = LatencyStats::new(start);
        stats.record(Stage::Push, Duration::ZERO, start);
        stats.record(Stage::Push, Duration::from_secs(3600), start);
        // An instant before start counts as second 0.
        stats.record(
            Stage::Push,
            Duration::from_millis(1),
            start - Duration::from_secs(1),
        );
        let p = stats
            .percentiles(Stage::Push, Scope::Window, start)
            .unwrap();
        assert_eq!(p.count, 3);
        assert!(p.max <= 60_100.0);
    }
}
