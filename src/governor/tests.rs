//! The governor's unit tests: ladders, stepping down and up on latency and power, model
//! rungs, no oscillation (a simulated machine, the clock passed in).

use super::*;
use crate::frame::Size;

fn ladder() -> Vec<Rung> {
    default_ladder(Size {
        width: 640,
        height: 360,
    })
}

#[test]
fn default_ladder_steps_down_then_skips() {
    let sizes: Vec<_> = ladder().iter().map(|r| (r.size, r.every)).collect();
    assert_eq!(
        sizes,
        vec![
            ([640, 360], 1),
            ([512, 288], 1),
            ([384, 216], 1),
            ([384, 216], 2)
        ]
    );
}

/// Simulates a machine whose latency is proportional to pixels: `ms_per_mpix` per
/// megapixel. Returns (final level, steps taken).
fn simulate(ms_per_mpix: f64, budget: f64, seconds: u64) -> (usize, u64) {
    let t0 = Instant::now();
    let mut g = Governor::new(ladder(), budget, 15.0, None, t0);
    for frame in 0..seconds * 10 {
        let now = t0 + Duration::from_millis(frame * 100);
        let r = g.rung();
        let ms = ms_per_mpix * r.size[0] as f64 * r.size[1] as f64 / 1e6
            * (1.0 + (frame % 7) as f64 * 0.01);
        g.record_latency(ms, now);
        g.decide(now);
    }
    (g.level, g.steps)
}

#[test]
fn latency_alone_never_steps_onto_the_skip_rung() {
    // Even 20 ms per frame at the smallest size is over a 10 ms budget.
    let (level, _) = simulate(1000.0, 10.0, 30);
    assert_eq!(level, 2, "the smallest size, not frame skipping");
}

#[test]
fn steps_down_until_under_budget_and_stays_there() {
    // 640x360 = 0.23 Mpix -> 115 ms; 512x288 -> 74 ms; 384x216 -> 41 ms.
    let (level, steps) = simulate(500.0, 60.0, 60);
    assert_eq!(level, 2, "384x216 is the first rung under 60 ms");
    assert_eq!(steps, 2, "no oscillation");
}

#[test]
fn warm_up_frames_do_not_step_down() {
    // Slow first frames (a new ONNX Runtime session), then well within the budget.
    let t0 = Instant::now();
    let mut g = Governor::new(ladder(), 30.0, 15.0, None, t0);
    for frame in 0..30 * 60u64 {
        let now = t0 + Duration::from_millis(frame * 33);
        let ms = if frame < 45 { 45.0 } else { 20.0 };
        g.record_latency(ms, now);
        assert_eq!(g.decide(now), None, "stepped at frame {frame}");
    }
    assert_eq!(g.level, 0);
    // The same slow frames after the warm-up are acted on.
    let mut g = Governor::new(ladder(), 30.0, 15.0, None, t0);
    let late = t0 + WARMUP;
    let stepped = (0..200u64).any(|frame| {
        let now = late + Duration::from_millis(frame * 33);
        g.record_latency(45.0, now);
        g.decide(now).is_some()
    });
    assert!(stepped, "slow frames after the warm-up must step down");
}

#[test]
fn comes_back_up_when_there_is_headroom() {
    let t0 = Instant::now();
    let mut g = Governor::new(ladder(), 50.0, 15.0, None, t0);
    let mut now = t0;
    for _ in 0..30 {
        now += Duration::from_millis(100);
        g.record_latency(90.0, now);
        g.decide(now);
    }
    assert!(g.level >= 1);
    let low = g.level;
    // The load goes away: 10 ms at any size.
    for _ in 0..400 {
        now += Duration::from_millis(100);
        g.record_latency(10.0, now);
        g.decide(now);
    }
    assert_eq!(g.level, 0, "back to full size from level {low}");
}

/// A board whose power is `idle` plus `w_per_work` times the stylizing work of the
/// current rung (megapixels per frame / every), with 20 ms latency everywhere (so only
/// power drives). `idle` may change at `change_at` seconds. Returns the level each
/// second.
fn simulate_power(
    idle: f64,
    w_per_work: f64,
    change_at: Option<(u64, f64)>,
    seconds: u64,
) -> Vec<usize> {
    let t0 = Instant::now();
    let mut g = Governor::new(ladder(), 1000.0, 15.0, None, t0);
    let mut levels = Vec::new();
    for tick in 0..seconds * 10 {
        let now = t0 + Duration::from_millis(tick * 100);
        let idle = match change_at {
            Some((at, new)) if tick >= at * 10 => new,
            _ => idle,
        };
        let r = g.rung();
        let work = r.pixels() / 1e6 / r.every as f64;
        g.record_latency(20.0, now);
        g.record_power(idle + w_per_work * work, now);
        g.decide(now);
        if tick % 10 == 0 {
            levels.push(g.level);
        }
    }
    levels
}

#[test]
fn power_steps_down_to_the_first_rung_under_budget_and_stays() {
    // 8 W idle + 50 W/Mpix: 640x360 19.5 W, 512x288 15.4 W, 384x216 12.1 W, skip 10.1 W.
    let levels = simulate_power(8.0, 50.0, None, 120);
    let changes = levels.windows(2).filter(|w| w[0] != w[1]).count();
    assert_eq!(*levels.last().unwrap(), 2, "{levels:?}");
    assert_eq!(changes, 2, "oscillating: {levels:?}");
}

#[test]
fn power_headroom_later_brings_it_back_up_one_rung() {
    // After 60 s the board idles 3.5 W lower: 512x288 is then 11.9 W (< 85 % of 15 W),
    // 640x360 16.0 W (over): one step up, and no further.
    let levels = simulate_power(8.0, 50.0, Some((60, 4.5)), 180);
    assert_eq!(levels[55], 2, "{levels:?}");
    assert_eq!(*levels.last().unwrap(), 1, "{levels:?}");
    let changes = levels.windows(2).filter(|w| w[0] != w[1]).count();
    assert_eq!(changes, 3, "{levels:?}");
}

#[test]
fn power_over_budget_steps_down_and_pinning_holds() {
    let t0 = Instant::now();
    let mut g = Governor::new(ladder(), 1000.0, 15.0, None, t0);
    let mut now = t0;
    for _ in 0..30 {
        now += Duration::from_millis(100);
        g.record_latency(20.0, now);
        g.record_power(18.0, now);
        if let Some(step) = g.decide(now) {
            assert!(step.reason.contains("power 18.0 W > 15 W"), "{step:?}");
        }
    }
    assert!(g.level >= 1);
    let mut pinned = Governor::new(ladder(), 10.0, 15.0, Some(3), t0);
    for i in 0..50 {
        let now = t0 + Duration::from_millis(i * 100);
        pinned.record_latency(500.0, now);
        assert_eq!(pinned.decide(now), None);
    }
    assert_eq!(pinned.status().size, [384, 216]);
    assert_eq!(pinned.status().skip, 2);
}

fn full() -> Size {
    Size {
        width: 640,
        height: 360,
    }
}

fn spec<'a>(ladder: Option<&'a [LadderEntry]>, students: &'a [LadderModel]) -> LadderSpec<'a> {
    LadderSpec {
        full: full(),
        ladder,
        model: "multistyle26",
        students,
        fixed_input: None,
        enabled: true,
        pin: None,
    }
}

fn student(cost: f64) -> Vec<LadderModel> {
    vec![LadderModel {
        name: "live-style19".into(),
        cost,
    }]
}

/// Each rung as (model name, size, every).
fn described(g: &Governor) -> Vec<(&str, [u32; 2], u32)> {
    g.rungs()
        .iter()
        .map(|r| (g.models()[r.model].name.as_str(), r.size, r.every))
        .collect()
}

#[test]
fn a_student_of_the_style_keeps_full_size_below_its_teacher() {
    let students = student(0.25);
    let g = Governor::for_run(&spec(None, &students), 30.0, 15.0, Instant::now());
    let rungs = described(&g);
    assert_eq!(
        rungs,
        vec![
            ("multistyle26", [640, 360], 1),
            ("live-style19", [640, 360], 1),
            ("live-style19", [512, 288], 1),
            ("live-style19", [384, 216], 1),
            ("live-style19", [384, 216], 2),
        ]
    );
    assert_eq!(g.status().model, "multistyle26");
    assert_eq!(g.status().rungs, 5);
    // No student for the running style: the plain ladder of the configured model.
    let g = Governor::for_run(&spec(None, &[]), 30.0, 15.0, Instant::now());
    assert_eq!(g.rungs(), ladder().as_slice());
    // A fixed-size network keeps its one size, students or not.
    let mut fixed = spec(None, &students);
    fixed.fixed_input = Some([384, 384]);
    let g = Governor::for_run(&fixed, 30.0, 15.0, Instant::now());
    assert!(
        g.rungs()
            .iter()
            .all(|r| r.model == 0 && r.size == [384, 384])
    );
}

/// A style change from one student to another keeps the rung's size on the new student;
/// from the teacher, to a ladder without students, or pinned, nothing moves.
#[test]
fn a_style_change_between_students_keeps_the_student_rung() {
    let now = Instant::now();
    let nineteen = student(0.25);
    let all = vec![LadderModel {
        name: "live-all".into(),
        cost: 0.3,
    }];
    let mut old = Governor::for_run(&spec(None, &nineteen), 30.0, 15.0, now);
    let mut new = Governor::for_run(&spec(None, &all), 30.0, 15.0, now);
    assert!(
        !new.carry_rung_from(&old, now),
        "the old one ran the teacher"
    );
    assert_eq!(new.status().level, 0);
    old.level = 2;
    assert!(new.carry_rung_from(&old, now));
    let s = new.status();
    assert_eq!(
        (s.level, s.model.as_str(), s.size),
        (2, "live-all", [512, 288])
    );
    assert_eq!(s.reason, "carried over from live-style19");
    let mut plain = Governor::for_run(&spec(None, &[]), 30.0, 15.0, now);
    assert!(
        !plain.carry_rung_from(&old, now),
        "no student rung to go to"
    );
    assert_eq!(plain.status().level, 0);
    let mut pinned_spec = spec(None, &all);
    pinned_spec.pin = Some(0);
    let mut pinned = Governor::for_run(&pinned_spec, 30.0, 15.0, now);
    assert!(!pinned.carry_rung_from(&old, now));
    assert_eq!(pinned.status().level, 0);
}

#[test]
fn configured_model_rungs_parse_and_skip_models_without_the_style() {
    let entries: Vec<LadderEntry> = [
        "640x360",
        "live-style19@640x360",
        "live-style23@640x360",
        "live-style19@512x288",
    ]
    .iter()
    .map(|t| t.parse().unwrap())
    .collect();
    assert_eq!(entries[1].to_string(), "live-style19@640x360");
    assert!(
        "@640x360"
            .parse::<LadderEntry>()
            .unwrap_err()
            .contains("no model")
    );
    assert!("live@64x".parse::<LadderEntry>().is_err());
    let students = student(0.3);
    let g = Governor::for_run(&spec(Some(&entries), &students), 30.0, 15.0, Instant::now());
    let rungs = described(&g);
    // live-style23 is not a student of the running style (19): skipped.
    assert_eq!(
        rungs,
        vec![
            ("multistyle26", [640, 360], 1),
            ("live-style19", [640, 360], 1),
            ("live-style19", [512, 288], 1),
            ("live-style19", [512, 288], 2),
        ]
    );
}

/// Latency proportional to work: `ms_per_mpix` per megapixel of the configured model, a
/// quarter of that for the student. Returns the governor after `seconds`.
fn simulate_models(ms_per_mpix: f64, budget: f64, seconds: u64) -> Governor {
    let t0 = Instant::now();
    let students = student(0.25);
    let mut g = Governor::for_run(&spec(None, &students), budget, 15.0, t0);
    for frame in 0..seconds * 10 {
        let now = t0 + Duration::from_millis(frame * 100);
        let r = g.rung();
        let cost = g.models()[r.model].cost;
        let ms = ms_per_mpix * cost * r.size[0] as f64 * r.size[1] as f64 / 1e6
            * (1.0 + (frame % 7) as f64 * 0.01);
        g.record_latency(ms, now);
        g.decide(now);
    }
    g
}

#[test]
fn steps_to_the_student_at_full_size_and_stays_there() {
    // Teacher 115 ms at 640x360, the student 29 ms: over a 40 ms budget only the teacher.
    let g = simulate_models(500.0, 40.0, 60);
    let s = g.status();
    assert_eq!(
        (s.level, s.model.as_str(), s.size),
        (1, "live-style19", [640, 360])
    );
    assert_eq!(
        s.steps, 1,
        "no oscillation: the teacher is predicted at 115 ms"
    );
    // A tighter budget: the student shrinks too (29 -> 18.5 ms at 512x288).
    let s = simulate_models(500.0, 20.0, 60).status();
    assert_eq!((s.model.as_str(), s.size), ("live-style19", [512, 288]));
    // A fast machine keeps the teacher: 23 ms at 100 ms per megapixel.
    let s = simulate_models(100.0, 30.0, 60).status();
    assert_eq!((s.level, s.steps), (0, 0));
}

#[test]
fn frames_captured_before_a_step_do_not_judge_the_new_rung() {
    let t0 = Instant::now();
    let students = student(0.25);
    let mut g = Governor::for_run(&spec(None, &students), 30.0, 15.0, t0);
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    // The teacher: 90 ms frames, over budget; the governor steps to the student.
    for f in 0..40u64 {
        g.record_latency(90.0, at(2000 + f * 90));
    }
    let step = g.decide(at(5600)).expect("steps down");
    assert_eq!(step.to, 1);
    // The frames finished just after the step were captured under the teacher: 70-90 ms.
    for f in 0..5u64 {
        g.record_latency(90.0 - f as f64 * 5.0, at(5620 + f * 20));
    }
    // Then the student holds the budget: 20 ms.
    for f in 0..60u64 {
        g.record_latency(20.0, at(5800 + f * 33));
    }
    assert_eq!(
        g.decide(at(7800)),
        None,
        "judged by the teacher's leftovers"
    );
    assert_eq!(g.status().level, 1);
}

/// The student at full size holds a 30 ms budget at ~27 ms (90 %: the prediction from a
/// smaller rung, which scales all of it by pixels, never says safe), with bursts of load
/// that add `extra` ms from each burst's start for its length (seconds). Returns the level
/// each second and the governor.
fn simulate_bursts(extra: f64, bursts: &[(u64, u64)], seconds: u64) -> (Vec<usize>, Governor) {
    let t0 = Instant::now();
    let students = student(0.25);
    let mut g = Governor::for_run(&spec(None, &students), 30.0, 15.0, t0);
    let mut levels = Vec::new();
    for frame in 0..seconds * 30 {
        let now = t0 + Duration::from_millis(frame * 1000 / 30);
        let r = g.rung();
        let cost = g.models()[r.model].cost;
        // 10 ms that does not shrink with the rung, the rest stylizing: teacher 78 ms,
        // student 27 ms at 640x360, 21.2 ms at 512x288.
        let mut ms = 10.0 + 300.0 * cost * r.pixels() / 1e6 * (1.0 + (frame % 7) as f64 * 0.01);
        let s = frame / 30;
        if bursts.iter().any(|&(at, len)| (at..at + len).contains(&s)) {
            ms += extra;
        }
        g.record_latency(ms, now);
        g.decide(now);
        if frame % 30 == 0 {
            levels.push(g.level);
        }
    }
    (levels, g)
}

#[test]
fn a_burst_of_load_does_not_cost_the_full_size_for_good() {
    let (levels, g) = simulate_bursts(14.0, &[(20, 3)], 60);
    assert_eq!(levels[15], 1, "the student at full size: {levels:?}");
    // 35 ms at 512x288 in the burst too: two rungs down.
    assert_eq!(levels[25], 3, "the burst steps it down: {levels:?}");
    // The burst ends at 23 s; back up one rung per settle + hold (2 + 5 s), plus a second.
    assert!(levels[38..].iter().all(|&l| l == 1), "{levels:?}");
    assert!(
        g.status().reason.contains("held p95"),
        "{:?}",
        g.status().reason
    );
    assert_eq!(
        g.status().steps,
        5,
        "to the student, down twice, up twice: {levels:?}"
    );
}

#[test]
fn a_load_that_stays_is_tried_again_ever_more_rarely() {
    // From 20 s on, the full-size student is over budget for good (33 ms; 27.2 at 512x288).
    let (levels, _) = simulate_bursts(6.0, &[(20, 1000)], 300);
    let ups: Vec<usize> = (1..levels.len())
        .filter(|&s| levels[s] < levels[s - 1])
        .collect();
    // Tries after 5, 10, 20, 40, 80, 160 s of looking safe, each left within ~3 s.
    assert!(ups.len() <= 6, "tries at {ups:?}");
    assert!(
        ups.windows(3).all(|w| w[2] - w[1] > w[1] - w[0]),
        "tries at {ups:?}"
    );
    // Each try is judged after settle (2 s): about 2 s over budget per try.
    let over = levels[22..].iter().filter(|&&l| l == 1).count();
    assert!(
        over <= 2 * ups.len(),
        "{over} s on the over-budget rung: {levels:?}"
    );
}
