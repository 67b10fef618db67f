//! The latency/power budget and the verdict on whether the frame path keeps to it.
//!
//! Owns the budget (docs/design.md: 30 ms glass-to-glass p95 and 15 W mean, the Jetson AGX
//! Xavier 15 W nvpmodel mode) and the tracker that judges per-frame latencies and power
//! samples against it. Time is passed in; nothing here reads the clock or the sensors. The
//! tracker reports a [`Change`] only when the verdict changes, so the caller logs once per
//! change and never once per frame.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::latency::WindowedHistogram;

/// Window the glass-to-glass p95 is taken over (the monitor's sliding window).
pub const LATENCY_WINDOW: Duration = Duration::from_secs(10);

/// Window the mean power is taken over: long enough to ride out a single slow frame's
/// spike, short enough to catch thermal throttling setting in (issue 3: "mean over 5 s").
pub const POWER_WINDOW: Duration = Duration::from_secs(5);

/// A budget that cannot be met or judged.
#[derive(Debug, thiserror::Error)]
pub enum BudgetError {
    #[error("budget {field} = {value} must be a positive number")]
    NotPositive { field: &'static str, value: f64 },
}

/// What one frame and the board may cost.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    /// Limit on the glass-to-glass p95 over [`LATENCY_WINDOW`], in ms.
    pub latency_ms: f64,
    /// Limit on the mean board power over [`POWER_WINDOW`], in W.
    pub power_w: f64,
}

impl Default for Budget {
    fn default() -> Self {
        Self {
            latency_ms: 30.0,
            power_w: 15.0,
        }
    }
}

impl Budget {
    /// Rejects limits that are zero, negative or not numbers.
    pub fn check(&self) -> Result<(), BudgetError> {
        for (field, value) in [("latency_ms", self.latency_ms), ("power_w", self.power_w)] {
            if !(value.is_finite() && value > 0.0) {
                return Err(BudgetError::NotPositive { field, value });
            }
        }
        Ok(())
    }
}

/// Running counts of how often the budget was broken.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Violations {
    /// Frames whose own glass-to-glass latency exceeded the latency budget.
    pub frames_over_latency: u64,
    /// Seconds during which the mean power exceeded the power budget.
    pub seconds_over_power: f64,
}

/// The `budget` part of the status document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    #[serde(flatten)]
    pub budget: Budget,
    pub within: bool,
    pub violations: Violations,
    /// Glass-to-glass p95 over the window; `None` without frames in it.
    pub latency_p95_ms: Option<f64>,
    /// Mean power over the power window; `None` without a power sensor or samples.
    pub mean_power_w: Option<f64>,
    /// One sentence: what is over, or that everything is within.
    pub reason: String,
}

/// A change of verdict, to be logged once.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub within: bool,
    pub over_latency: bool,
    pub over_power: bool,
    pub reason: String,
}

impl Change {
    /// Logs the change: a warning when the budget is broken, info when it is kept again.
    pub fn log(&self) {
        if self.within {
            tracing::info!(reason = %self.reason, "back within budget");
        } else {
            tracing::warn!(
                over_latency = self.over_latency,
                over_power = self.over_power,
                reason = %self.reason,
                "over budget"
            );
        }
    }
}

/// Judges glass-to-glass latencies and power samples against a [`Budget`].
#[derive(Debug)]
pub struct BudgetTracker {
    budget: Budget,
    latency: WindowedHistogram,
    power: VecDeque<(Instant, f64)>,
    last_power_at: Option<Instant>,
    violations: Violations,
    over_latency: bool,
    over_power: bool,
}

impl BudgetTracker {
    /// A tracker whose windows start at `start`.
    pub fn new(budget: Budget, start: Instant) -> Self {
        Self {
            budget,
            latency: WindowedHistogram::new(LATENCY_WINDOW, start),
            power: VecDeque::new(),
            last_power_at: None,
            violations: Violations::default(),
            over_latency: false,
            over_power: false,
        }
    }

    /// The budget being applied.
    pub fn budget(&self) -> Budget {
        self.budget
    }

    /// Feeds one frame's glass-to-glass latency, observed at `now`.
    pub fn record_latency(&mut self, glass_to_glass: Duration, now: Instant) -> Option<Change> {
        if glass_to_glass.as_secs_f64() * 1000.0 > self.budget.latency_ms {
            self.violations.frames_over_latency += 1;
        }
        self.latency.record(glass_to_glass, now);
        self.update(now)
    }

    /// Feeds one board power reading (total watts) taken at `now`. Non-finite readings are
    /// ignored rather than trusted.
    pub fn record_power(&mut self, total_w: f64, now: Instant) -> Option<Change> {
        if !total_w.is_finite() {
            return None;
        }
        // The mean was over budget from the previous reading until this one.
        if let Some(then) = self.last_power_at
            && self.over_power
        {
            self.violations.seconds_over_power += now.saturating_duration_since(then).as_secs_f64();
        }
        self.last_power_at = Some(now);
        self.power.push_back((now, total_w));
        self.update(now)
    }

    /// The verdict at `now`.
    pub fn verdict(&mut self, now: Instant) -> Verdict {
        let p95 = self.latency_p95(now);
        let mean = self.mean_power(now);
        let (over_latency, over_power) = self.judge(p95, mean);
        Verdict {
            budget: self.budget,
            within: !(over_latency || over_power),
            violations: self.violations,
            latency_p95_ms: p95,
            mean_power_w: mean,
            reason: self.reason(p95, mean, over_latency, over_power),
        }
    }

    fn latency_p95(&mut self, now: Instant) -> Option<f64> {
        self.latency.window_quantile_ms(0.95, now)
    }

    fn mean_power(&mut self, now: Instant) -> Option<f64> {
        while let Some(&(at, _)) = self.power.front() {
            if now.saturating_duration_since(at) < POWER_WINDOW {
                break;
            }
            self.power.pop_front();
        }
        if self.power.is_empty() {
            return None;
        }
        Some(self.power.iter().map(|(_, w)| w).sum::<f64>() / self.power.len() as f64)
    }

    /// Whether latency and power are over; an unknown quantity is never over.
    fn judge(&self, p95: Option<f64>, mean: Option<f64>) -> (bool, bool) {
        (
            p95.is_some_and(|ms| ms > self.budget.latency_ms),
            mean.is_some_and(|w| w > self.budget.power_w),
        )
    }

    fn update(&mut self, now: Instant) -> Option<Change> {
        let p95 = self.latency_p95(now);
        let mean = self.mean_power(now);
        let (over_latency, over_power) = self.judge(p95, mean);
        if (over_latency, over_power) == (self.over_latency, self.over_power) {
            return None;
        }
        self.over_latency = over_latency;
        self.over_power = over_power;
        Some(Change {
            within: !(over_latency || over_power),
            over_latency,
            over_power,
            reason: self.reason(p95, mean, over_latency, over_power),
        })
    }

    fn reason(
        &self,
        p95: Option<f64>,
        mean: Option<f64>,
        over_lat: bool,
        over_pow: bool,
    ) -> String {
        let b = self.budget;
        let latency = match p95 {
            Some(ms) if over_lat => format!("glass-to-glass p95 {ms:.1} ms > {} ms", b.latency_ms),
            Some(ms) => format!("glass-to-glass p95 {ms:.1} ms <= {} ms", b.latency_ms),
            None => "no frames in the latency window".to_owned(),
        };
        let power = match mean {
            Some(w) if over_pow => format!("mean power {w:.2} W > {} W", b.power_w),
            Some(w) => format!("mean power {w:.2} W <= {} W", b.power_w),
            None => "power not measured".to_owned(),
        };
        match (over_lat, over_pow) {
            (false, false) => format!("within budget: {latency}, {power}"),
            (true, false) => format!("over budget: {latency}"),
            (false, true) => format!("over budget: {power}"),
            (true, true) => format!("over budget: {latency}, {power}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn defaults_are_the_xavier_15w_budget_and_checked() {
        let budget = Budget::default();
        assert_eq!((budget.latency_ms, budget.power_w), (30.0, 15.0));
        assert!(budget.check().is_ok());
        let bad = Budget {
            latency_ms: 0.0,
            ..budget
        };
        assert!(bad.check().unwrap_err().to_string().contains("latency_ms"));
        let bad = Budget {
            power_w: f64::NAN,
            ..budget
        };
        assert!(bad.check().unwrap_err().to_string().contains("power_w"));
    }

    #[test]
    fn latency_verdict_follows_p95_and_changes_are_reported_once() {
        let start = Instant::now();
        let mut tracker = BudgetTracker::new(Budget::default(), start);
        // 100 fast frames: within, and no change reported (within is the initial verdict).
        for i in 0..100 {
            assert_eq!(tracker.record_latency(ms(20), start + ms(i * 33)), None);
        }
        // A few slow frames below 5 % do not move p95 but are counted.
        for i in 100..104 {
            assert_eq!(tracker.record_latency(ms(45), start + ms(i * 33)), None);
        }
        assert_eq!(
            tracker
                .verdict(start + ms(3500))
                .violations
                .frames_over_latency,
            4
        );
        // Sustained slow frames: one change, then silence.
        let mut changes = Vec::new();
        for i in 104..200 {
            changes.extend(tracker.record_latency(ms(45), start + ms(i * 33)));
        }
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert!(!changes[0].within && changes[0].over_latency && !changes[0].over_power);
        assert!(changes[0].reason.contains("p95"), "{}", changes[0].reason);
        let verdict = tracker.verdict(start + ms(6600));
        assert!(!verdict.within);
        assert_eq!(verdict.violations.frames_over_latency, 100);
        // Once the slow seconds leave the 10 s window, fast frames bring it back.
        let change = tracker.record_latency(ms(20), start + Duration::from_secs(17));
        assert!(change.unwrap().within);
    }

    #[test]
    fn power_verdict_uses_the_five_second_mean_and_counts_seconds_over() {
        let start = Instant::now();
        let mut tracker = BudgetTracker::new(Budget::default(), start);
        let at = |s: u64| start + Duration::from_secs(s);
        for s in 0..5 {
            assert_eq!(tracker.record_power(12.0, at(s)), None);
        }
        // One 20 W spike: the mean of the readings in (t-5 s, t] is (4 * 12 + 20) / 5 = 13.6 W.
        assert_eq!(tracker.record_power(20.0, at(5)), None);
        // Sustained 20 W: the mean crosses 15 W at t=6 ((3 * 12 + 2 * 20) / 5 = 15.2).
        let change = tracker.record_power(20.0, at(6)).unwrap();
        assert!(!change.within && change.over_power && !change.over_latency);
        for s in 7..=10 {
            assert_eq!(tracker.record_power(20.0, at(s)), None);
        }
        let verdict = tracker.verdict(at(10));
        assert_eq!(verdict.violations.seconds_over_power, 4.0);
        assert_eq!(verdict.mean_power_w, Some(20.0));
        // Back to 12 W: the mean stays over until t=14 (13.6 W), then one change.
        let mut changes = Vec::new();
        for s in 11..=20 {
            changes.extend(tracker.record_power(12.0, at(s)));
        }
        assert_eq!(changes.len(), 1);
        assert!(changes[0].within);
        let seconds = tracker.verdict(at(20)).violations.seconds_over_power;
        assert_eq!(seconds, 8.0); // over from t=6 to t=14
    }

    #[test]
    fn unknown_power_and_nan_are_never_over() {
        let start = Instant::now();
        let mut tracker = BudgetTracker::new(Budget::default(), start);
        assert_eq!(tracker.record_power(f64::NAN, start), None);
        let verdict = tracker.verdict(start);
        assert!(verdict.within);
        assert_eq!(verdict.mean_power_w, None);
        assert!(
            verdict.reason.contains("power not measured"),
            "{}",
            verdict.reason
        );
        let json = serde_json::to_value(&verdict).unwrap();
        assert_eq!(json["latency_ms"], 30.0);
        assert_eq!(json["power_w"], 15.0);
        assert_eq!(json["within"], true);
        assert_eq!(json["violations"]["frames_over_latency"], 0);
    }

    #[test]
    fn both_over_then_one_recovers_is_a_change() {
        let start = Instant::now();
        let mut tracker = BudgetTracker::new(Budget::default(), start);
        tracker.record_power(30.0, start);
        let change = tracker.record_latency(ms(50), start).unwrap();
        assert!(change.over_latency && change.over_power);
        assert!(change.reason.contains("p95") && change.reason.contains("W"));
        // Power drops out of its window while latency stays high: still over, but it changed.
        let change = tracker
            .record_latency(ms(50), start + Duration::from_secs(6))
            .unwrap();
        assert!(!change.within && change.over_latency && !change.over_power);
    }
}
