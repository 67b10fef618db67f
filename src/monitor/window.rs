//! [`WindowedHistogram`]: one latency histogram over a sliding window of whole seconds
//! plus one since start, for [`super::latency`] and the budget tracker.
//!
//! The window is a ring of one-second histograms. A running "window" histogram is kept next
//! to the ring: every sample is added to both, and a second that falls out of the window is
//! subtracted from it, so recording is O(1) and a read is one histogram scan. The clock is
//! passed in; nothing here reads it.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::latency::{Percentiles, Scope};

/// Largest latency the histograms resolve; longer samples are clamped to it. A frame that
/// took a minute is a hang, which the systemd watchdog handles, not a percentile.
const MAX_TRACKED_US: u64 = 60_000_000;

/// Significant digits kept by every histogram (relative error below 0.1 %).
const SIGFIG: u8 = 3;

/// Whole seconds since `start`; an instant before `start` counts as second 0.
pub(super) fn second_of(start: Instant, now: Instant) -> u64 {
    now.saturating_duration_since(start).as_secs()
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_TRACKED_US, SIGFIG)
        .expect("constant bounds 1..60e6 at 3 significant digits are valid")
}

/// One histogram over a sliding window of whole seconds plus one since start.
///
/// Used by [`LatencyStats`] for each stage and by the budget tracker for glass-to-glass.
#[derive(Debug)]
pub struct WindowedHistogram {
    start: Instant,
    /// `(second, histogram)`; slot `s % len` holds second `s`.
    slots: Vec<(u64, Histogram<u64>)>,
    window: Histogram<u64>,
    total: Histogram<u64>,
}

impl WindowedHistogram {
    /// A window of `window` (rounded down to whole seconds, at least one) starting at `start`.
    pub fn new(window: Duration, start: Instant) -> Self {
        let seconds = window.as_secs().max(1) as usize;
        Self {
            start,
            slots: (0..seconds).map(|_| (0, new_histogram())).collect(),
            window: new_histogram(),
            total: new_histogram(),
        }
    }

    /// Records one duration (microsecond resolution, clamped to 1 µs..60 s) at `now`.
    pub fn record(&mut self, value: Duration, now: Instant) {
        let us = u64::try_from(value.as_micros()).unwrap_or(u64::MAX).max(1);
        self.total.saturating_record(us);
        let second = second_of(self.start, now);
        self.advance(second);
        let len = self.slots.len() as u64;
        let (slot_second, hist) = &mut self.slots[(second % len) as usize];
        // A sample older than the slot it maps to belongs to a second that has already left
        // the window: it only counts since start.
        if *slot_second == second {
            hist.saturating_record(us);
            self.window.saturating_record(us);
        }
    }

    /// Percentiles over the window ending at `now`, or since start.
    pub fn percentiles(&mut self, scope: Scope, now: Instant) -> Option<Percentiles> {
        match scope {
            Scope::Window => {
                self.advance(second_of(self.start, now));
                Percentiles::of(&self.window)
            }
            Scope::SinceStart => Percentiles::of(&self.total),
        }
    }

    /// One quantile (0..=1) in ms over the window ending at `now`: a single histogram scan,
    /// cheap enough to call once per frame. `None` without samples in the window.
    pub fn window_quantile_ms(&mut self, quantile: f64, now: Instant) -> Option<f64> {
        self.advance(second_of(self.start, now));
        (!self.window.is_empty()).then(|| self.window.value_at_quantile(quantile) as f64 / 1000.0)
    }

    /// Drops every second that is no longer in the window ending in `second`, and claims the
    /// slot of `second` itself unless it holds a later second (a clock read out of order).
    fn advance(&mut self, second: u64) {
        let len = self.slots.len() as u64;
        let claimed = (second % len) as usize;
        for (i, (slot_second, hist)) in self.slots.iter_mut().enumerate() {
            let expired = *slot_second + len <= second;
            let reclaimed = i == claimed && *slot_second < second;
            if (expired || reclaimed) && !hist.is_empty() {
                // Same bounds on both sides and `hist` is part of `window`: cannot fail.
                if let Err(error) = self.window.subtract(&*hist) {
                    tracing::warn!(%error, "latency window out of step, rebuilding it");
                    self.window.reset();
                }
                hist.reset();
            }
            if reclaimed {
                *slot_second = second;
            }
        }
    }
}
