//! The budget governor: when glass-to-glass latency or power goes over budget, run a
//! cheaper network or the network smaller, then stylize only every other frame; come back
//! up with hysteresis.
//!
//! A ladder of rungs, each a (model, size, every) from the configured model at its size down
//! (e.g. multistyle26@640x360 -> live-style19@640x360 -> live-style19@512x288 -> ..., the
//! last stylizing every 2nd frame): a user keeps full resolution as long as a cheaper model
//! holds the budget. Decisions use only samples taken since the last step (so a step is
//! judged on its own effect), wait `settle` between steps, and go up only when the rung
//! above is *predicted* to stay under 85 % of the budget for `hold` seconds — which keeps
//! it from oscillating. A rung's work is its pixels times its model's cost per pixel
//! (measured by the frame loop, relative to the configured model); latency is predicted by
//! scaling with work; power as the power now plus what the rung above cost over this one
//! when the governor last stepped down from it, or by scaling with work when it never did.
//!
//! Scaling the whole glass-to-glass time by work is pessimistic (capture, colour
//! conversion and encoding do not shrink with the rung), so a rung that held the budget
//! with little headroom would never be predicted safe again once one burst of load stepped
//! it down. The governor therefore also remembers what each rung measured before the window
//! that stepped it down: a rung that held under 95 % of the budget for at least
//! [`HELD_MIN`] is tried again, and so is any rung of no more work below it. A rung left
//! again soon after being entered waits twice as long before the next try (up to
//! [`HOLD_MAX`]), so a load that stays costs a few seconds over budget per try, ever more
//! rarely.
//! Pure logic with the clock passed in; the frame loop applies the rung.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

mod ladder;

pub use ladder::{LadderEntry, LadderModel, LadderSpec, Rung, default_ladder, student_ladder};

/// How long after a step the governor waits before judging again (new samples only).
const SETTLE: Duration = Duration::from_secs(2);
/// How long the rung above must look safe before stepping up.
const HOLD: Duration = Duration::from_secs(5);
/// The longest a rung waits before it is tried again (see [`HOLD`], doubled after each
/// try that did not last).
const HOLD_MAX: Duration = Duration::from_secs(320);
/// A stay on a rung shorter than this that ends in a step down is a failed try: the next
/// try of that rung waits twice as long. A longer stay resets the wait to [`HOLD`].
const TRY_LASTS: Duration = Duration::from_secs(30);
/// The least measured time on a rung (before the window that stepped it down) that counts
/// as evidence the rung holds the budget.
const HELD_MIN: Duration = Duration::from_secs(5);
/// Latency samples of the current rung kept for its measured p95 (decisions use the last
/// `SETTLE * 2` of them).
const STAY_WINDOW: Duration = Duration::from_secs(60);
/// A rung whose measured p95 was under this share of the budget is tried again.
const HELD_MARGIN: f64 = 0.95;
/// Latency samples from the first this-long of a governor's life are ignored: ONNX
/// Runtime's first runs of a session (arena growth, kernel selection) and a capture
/// pipeline's first frames are slower than what follows, and acting on them stepped a live
/// student that holds the budget down for good (its p95 at the smaller rung, scaled back up
/// by pixels, never looked safe enough to return).
const WARMUP: Duration = Duration::from_secs(2);
/// Latency samples this soon after a step are ignored: a rung's first frames are slower
/// than its steady state (measured: the first 2 s after multistyle26 handed 640x360 over to
/// its live student had a p95 of 47 ms, the student's steady state 27 ms), and judging on
/// them stepped a rung that holds the budget down.
const LATENCY_LAG: Duration = Duration::from_secs(1);
/// Fewest samples a decision needs.
const MIN_SAMPLES: usize = 8;
/// Stepping up must be predicted to land under this share of the budget.
const UP_MARGIN: f64 = 0.85;
/// Power readings this soon after a step still show the rung that was left: a Jetson's
/// INA3221 averages over its conversion time (`update_interval`, 1100 ms on JetPack 5).
const POWER_LAG: Duration = Duration::from_millis(1500);

/// The `governor` part of the status document.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GovernorStatus {
    pub level: usize,
    /// The model the rung runs (absent in documents from before model rungs).
    #[serde(default)]
    pub model: String,
    /// How many rungs the ladder has.
    #[serde(default)]
    pub rungs: usize,
    /// The models the ladder's rungs run: the configured one, then its students.
    #[serde(default)]
    pub models: Vec<String>,
    pub size: [u32; 2],
    pub skip: u32,
    pub pinned: bool,
    pub steps: u64,
    pub reason: String,
}

/// A change of rung, for the log.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub from: usize,
    pub to: usize,
    pub reason: String,
}

pub struct Governor {
    rungs: Vec<Rung>,
    models: Vec<LadderModel>,
    level: usize,
    pinned: bool,
    budget_ms: f64,
    budget_w: f64,
    /// The current rung's latency samples over its stay (the last [`STAY_WINDOW`]).
    latency: VecDeque<(Instant, f64)>,
    power: VecDeque<(Instant, f64)>,
    last_change: Instant,
    /// Latency samples before this are warm-up (see [`WARMUP`]).
    warm_until: Instant,
    safe_since: Option<Instant>,
    steps: u64,
    reason: String,
    /// For each rung: how many watts more the rung above drew, measured the last time the
    /// governor stepped down onto it (the rung above's power when leaving it, less this
    /// rung's at its first judgement).
    up_cost: Vec<Option<f64>>,
    /// After a step down: the power of the rung just left, until this rung is measured.
    left_power: Option<f64>,
    /// For each rung: the p95 latency it measured over its last stay of at least
    /// [`HELD_MIN`], before the window that stepped it down.
    held: Vec<Option<f64>>,
    /// For each rung: how long it must look safe before the governor steps up onto it.
    hold: Vec<Duration>,
    /// Whether the current rung was entered by stepping up onto it.
    entered_by_up: bool,
}

impl Governor {
    /// `pin` fixes the level (clamped to the ladder); the governor then never moves.
    pub fn new(
        rungs: Vec<Rung>,
        budget_ms: f64,
        budget_w: f64,
        pin: Option<usize>,
        now: Instant,
    ) -> Self {
        let rungs = if rungs.is_empty() {
            vec![Rung {
                size: [0, 0],
                every: 1,
                model: 0,
            }]
        } else {
            rungs
        };
        let level = pin.map_or(0, |p| p.min(rungs.len() - 1));
        let up_cost = vec![None; rungs.len()];
        let held = vec![None; rungs.len()];
        let hold = vec![HOLD; rungs.len()];
        let models = vec![LadderModel {
            name: String::new(),
            cost: 1.0,
        }];
        Self {
            rungs,
            models,
            up_cost,
            left_power: None,
            held,
            hold,
            entered_by_up: false,
            level,
            pinned: pin.is_some(),
            budget_ms,
            budget_w,
            latency: VecDeque::new(),
            power: VecDeque::new(),
            last_change: now,
            warm_until: now + WARMUP,
            safe_since: None,
            steps: 0,
            reason: if pin.is_some() {
                "pinned".into()
            } else {
                "start".into()
            },
        }
    }

    pub fn rung(&self) -> Rung {
        self.rungs[self.level]
    }

    /// After a style change hands the ladder from one student to another: start on the new
    /// ladder's student rung of the size `old` was running (the same size and frame skip),
    /// not back on the configured model, which the old ladder had already left. Nothing
    /// changes when `old` ran the configured model, when this governor is pinned, or when
    /// the new ladder has no such rung. Returns whether it moved.
    pub fn carry_rung_from(&mut self, old: &Governor, now: Instant) -> bool {
        let was = old.rung();
        if self.pinned || was.model == 0 {
            return false;
        }
        let Some(level) = self
            .rungs
            .iter()
            .position(|r| r.model > 0 && r.size == was.size && r.every == was.every)
        else {
            return false;
        };
        self.level = level;
        self.last_change = now;
        self.reason = format!("carried over from {}", old.models[was.model].name);
        true
    }

    /// A frame's glass-to-glass latency, recorded when it was pushed (`now`). Frames
    /// captured before the last step are ignored: they waited behind the rung that was
    /// left (the first frame after a step from a slow teacher to its student carries most
    /// of a teacher's frame time), which would judge the new rung by the old one; so are
    /// those of the first [`LATENCY_LAG`] after a step.
    pub fn record_latency(&mut self, glass_to_glass_ms: f64, now: Instant) {
        if now < self.warm_until {
            return;
        }
        let age = Duration::from_secs_f64(glass_to_glass_ms.max(0.0) / 1000.0);
        if now
            .checked_sub(age)
            .is_some_and(|captured| captured < self.last_change)
            || (self.steps > 0 && now < self.last_change + LATENCY_LAG)
        {
            return;
        }
        self.latency.push_back((now, glass_to_glass_ms));
        while self
            .latency
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > STAY_WINDOW)
        {
            self.latency.pop_front();
        }
    }

    /// A board power reading taken at `read_at`. Readings from before the last step, or
    /// within [`POWER_LAG`] of it, are ignored: they describe the rung that was left (the
    /// sensor averages over about a second, the monitor reads it once a second, and the
    /// same reading is offered with every frame until the next).
    pub fn record_power(&mut self, watts: f64, read_at: Instant) {
        if read_at < self.last_change + POWER_LAG {
            return;
        }
        self.power.push_back((read_at, watts));
        while self
            .power
            .front()
            .is_some_and(|(t, _)| read_at.duration_since(*t) > SETTLE * 2)
        {
            self.power.pop_front();
        }
    }

    /// The p95 of the judging window: the samples of the last `SETTLE * 2` before the
    /// newest.
    fn p95(&self) -> Option<f64> {
        let (newest, _) = *self.latency.back()?;
        p95(self
            .latency
            .iter()
            .rev()
            .take_while(|(t, _)| newest.duration_since(*t) <= SETTLE * 2)
            .map(|(_, l)| *l)
            .collect())
    }

    /// What the current rung measured before the window that judges it now: the p95 of
    /// its stay's samples older than that window, when they span at least [`HELD_MIN`].
    fn held_before_window(&self, now: Instant) -> Option<f64> {
        let window_start = now.checked_sub(SETTLE * 2)?;
        let before: Vec<(Instant, f64)> = self
            .latency
            .iter()
            .copied()
            .filter(|(t, _)| *t < window_start)
            .collect();
        let (first, last) = (before.first()?.0, before.last()?.0);
        if last.duration_since(first) < HELD_MIN {
            return None;
        }
        p95(before.into_iter().map(|(_, l)| l).collect())
    }

    fn mean_power(&self) -> Option<f64> {
        (!self.power.is_empty())
            .then(|| self.power.iter().map(|(_, w)| w).sum::<f64>() / self.power.len() as f64)
    }

    /// Moves at most one rung; returns the step taken, if any.
    pub fn decide(&mut self, now: Instant) -> Option<Step> {
        if self.pinned || now.duration_since(self.last_change) < SETTLE {
            return None;
        }
        let p95 = self.p95()?;
        let watts = self.mean_power();
        if let (Some(left), Some(w)) = (self.left_power, watts) {
            self.up_cost[self.level] = Some((left - w).max(0.0));
            self.left_power = None;
        }
        let over_latency = p95 > self.budget_ms;
        let over_power = watts.is_some_and(|w| w > self.budget_w);
        // Skipping frames saves power, not per-frame latency: latency alone never steps
        // onto a skip rung.
        let next_helps = self
            .rungs
            .get(self.level + 1)
            .is_some_and(|next| over_power || self.work(*next) < self.work(self.rungs[self.level]));
        if (over_latency || over_power) && next_helps {
            let why = if over_latency {
                format!("glass-to-glass p95 {p95:.1} ms > {:.0} ms", self.budget_ms)
            } else {
                format!(
                    "power {:.1} W > {:.0} W",
                    watts.unwrap_or_default(),
                    self.budget_w
                )
            };
            return Some(self.step(self.level + 1, format!("down: {why}"), now));
        }
        if self.level == 0 || over_latency || over_power {
            self.safe_since = None;
            return None;
        }
        let (here, above) = (self.rungs[self.level], self.rungs[self.level - 1]);
        let predicted = p95 * self.work(above) / self.work(here);
        // Measured evidence: the rung above, or one with at least its work, held the budget.
        let held = (0..self.level)
            .filter(|&k| self.work(self.rungs[k]) >= self.work(above))
            .filter_map(|k| self.held[k].map(|h| (k, h)))
            .min_by(|a, b| a.1.total_cmp(&b.1));
        // A larger rung draws more power as well: it needs headroom for that too.
        let power_ok = watts
            .is_none_or(|w| self.predicted_power_above(w, here, above) < self.budget_w * UP_MARGIN);
        let by_prediction = predicted < self.budget_ms * UP_MARGIN;
        let by_record = held.is_some_and(|(_, h)| h < self.budget_ms * HELD_MARGIN);
        if (by_prediction || by_record) && power_ok {
            let since = *self.safe_since.get_or_insert(now);
            if now.duration_since(since) >= self.hold[self.level - 1] {
                let place = self.place(above);
                let why = match held {
                    Some((k, h)) if !by_prediction && k == self.level - 1 => {
                        format!("up: {place} tried again, it held p95 {h:.1} ms before")
                    }
                    Some((k, h)) if !by_prediction => format!(
                        "up: {place} tried again, {} held p95 {h:.1} ms before",
                        self.place(self.rungs[k])
                    ),
                    _ => format!("up: predicted p95 {predicted:.1} ms at {place}"),
                };
                return Some(self.step(self.level - 1, why, now));
            }
        } else {
            self.safe_since = None;
        }
        None
    }

    /// The power the rung above would draw, from `w` drawn here now: `w` plus what the rung
    /// above cost over this one when last measured (so a board that idles lower since may
    /// go back up); never measured, all of `w` is taken as stylizing work and scaled by the
    /// rungs' work (pixels per frame / every).
    fn predicted_power_above(&self, w: f64, here: Rung, above: Rung) -> f64 {
        match self.up_cost[self.level] {
            Some(cost) => w + cost,
            None => {
                w * (self.work(above) * here.every as f64) / (self.work(here) * above.every as f64)
            }
        }
    }

    fn step(&mut self, to: usize, reason: String, now: Instant) -> Step {
        let from = self.level;
        self.left_power = if to > from { self.mean_power() } else { None };
        if to > from {
            if let Some(h) = self.held_before_window(now) {
                self.held[from] = Some(h);
            }
            // Stepped up onto this rung and soon left again: wait longer before the next
            // try; a stay that lasted resets the wait.
            self.hold[from] =
                if self.entered_by_up && now.duration_since(self.last_change) < TRY_LASTS {
                    (self.hold[from] * 2).min(HOLD_MAX)
                } else {
                    HOLD
                };
        }
        self.entered_by_up = to < from;
        self.level = to;
        self.steps += 1;
        self.last_change = now;
        self.safe_since = None;
        self.latency.clear();
        self.power.clear();
        self.reason = reason.clone();
        Step { from, to, reason }
    }

    /// "WxH", then " with MODEL" when the ladder holds more than one model.
    fn place(&self, r: Rung) -> String {
        format!("{}x{}{}", r.size[0], r.size[1], self.model_label(r))
    }

    /// " with MODEL" when the ladder holds more than one model, else "".
    fn model_label(&self, r: Rung) -> String {
        match self.models.get(r.model) {
            Some(m) if self.models.len() > 1 => format!(" with {}", m.name),
            _ => String::new(),
        }
    }

    pub fn status(&self) -> GovernorStatus {
        let r = self.rung();
        GovernorStatus {
            level: self.level,
            model: self
                .models
                .get(r.model)
                .map(|m| m.name.clone())
                .unwrap_or_default(),
            rungs: self.rungs.len(),
            models: self.models.iter().map(|m| m.name.clone()).collect(),
            size: r.size,
            skip: r.every,
            pinned: self.pinned,
            steps: self.steps,
            reason: self.reason.clone(),
        }
    }
}

/// The 95th percentile of `v`; None with fewer than [`MIN_SAMPLES`].
fn p95(mut v: Vec<f64>) -> Option<f64> {
    if v.len() < MIN_SAMPLES {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[((v.len() as f64 * 0.95) as usize).min(v.len() - 1)])
}

#[cfg(test)]
mod tests;
