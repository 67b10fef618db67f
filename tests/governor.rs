//! The budget governor on the real daemon: on a source too heavy for this machine at full
//! size, it must bring glass-to-glass p95 under a budget set just above what a lower rung
//! achieves, within a bounded time, and then hold still (no oscillation).

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;
use stylerd::config::{Config, Size};
use stylerd::daemon::{self, RunOptions};

fn config(pin: Option<usize>, budget_ms: f64) -> Config {
    let mut c = Config::default();
    c.source.uri = "test://?pattern=ball".into();
    c.output.uris = vec!["null://".into()];
    c.engine = engine_config(Size {
        width: 480,
        height: 272,
    });
    c.engine.threads = 1;
    c.governor.pin = pin;
    c.monitor.budget_latency_ms = budget_ms;
    c.stabilizer.enabled = false;
    c
}

/// Glass-to-glass p95 (since start) with the governor pinned at `level`.
fn p95_at(level: usize) -> f64 {
    let options = RunOptions {
        max_frames: Some(40),
        ..Default::default()
    };
    daemon::run(&config(Some(level), 1000.0), options)
        .unwrap()
        .glass_to_glass_ms
        .unwrap()
        .p95
}

#[test]
fn governor_meets_the_budget_without_oscillating() {
    let full = p95_at(0);
    let low = p95_at(2);
    eprintln!("calibration: full size p95 {full:.1} ms, rung 2 p95 {low:.1} ms");
    assert!(low < full, "a smaller rung must be faster");
    // Just above what rung 2 (60 % of each side) achieves, well under the full size.
    let budget = 1.5 * low;
    assert!(
        full > budget,
        "full size ({full:.1} ms) is already within {budget:.1} ms: nothing to govern"
    );
    let dir = tempfile::tempdir().unwrap();
    let timeline = dir.path().join("t.jsonl");
    let options = RunOptions {
        max_frames: Some(100_000),
        timeline: Some(timeline.clone()),
        ..Default::default()
    };
    let stop = options.stop.clone();
    let c = config(None, budget);
    let run = std::thread::spawn(move || daemon::run(&c, options));
    std::thread::sleep(Duration::from_secs(30));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    run.join().unwrap().unwrap();
    let samples: Vec<Value> = std::fs::read_to_string(&timeline)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let level = |v: &Value| v["governor"]["level"].as_u64().unwrap();
    let levels: Vec<u64> = samples.iter().map(level).collect();
    eprintln!("governor level each second: {levels:?}");
    let first_down = samples
        .iter()
        .find(|v| level(v) >= 1)
        .expect("the governor never stepped down");
    let t_down = first_down["t"].as_f64().unwrap();
    let last = samples.last().unwrap();
    let steps = last["governor"]["steps"].as_u64().unwrap();
    let p95 = last["latency_ms"]["glass_to_glass"]["p95"]
        .as_f64()
        .unwrap();
    eprintln!(
        "budget {budget:.1} ms: first step down at {t_down:.1} s, final level {}, {steps} steps, \
         final 10 s window p95 {p95:.1} ms ({})",
        level(last),
        last["governor"]["reason"]
    );
    assert!(t_down < 15.0, "first step down only at {t_down:.1} s");
    assert!(steps <= 3, "{steps} steps in 30 s: oscillating");
    assert!(level(last) >= 1);
    assert!(
        p95 <= budget,
        "p95 {p95:.1} ms over the {budget:.1} ms budget at the end"
    );
}
