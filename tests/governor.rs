//! The budget governor on the real daemon: on a source too heavy for this machine at full
//! size, it must bring glass-to-glass p95 under a budget set just above what a lower rung
//! achieves, within a bounded time, and then hold still (no oscillation).

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;
use stylerd::config::{Config, OutputUri, Size};
use stylerd::daemon::{self, RunOptions};

fn config(pin: Option<usize>, budget_ms: f64) -> Config {
    let mut c = Config::default();
    // 10 fps, slower than the full-size frame time here: glass-to-glass is the rung's own
    // frame time, not also a wait behind the frame before (at 30 fps a rung near 33 ms
    // measured anywhere from 35 to 70 ms from run to run).
    c.source.uri = "test://?pattern=ball&fps=10".parse().unwrap();
    c.output.uris = vec![OutputUri::Null];
    c.engine = engine_config(Size {
        width: 480,
        height: 272,
    });
    c.engine.threads = 1;
    c.governor.pin = pin;
    // The configured model's own size ladder: since live-all (a student of every style) is
    // shipped, any style would otherwise get model rungs. The model-rung tests turn it on.
    c.governor.students = false;
    c.monitor.budget_latency_ms = budget_ms;
    c.stabilizer.enabled = false;
    c
}

/// [`config`] for the model-rung tests: students on, `style` running, control allowed.
fn students_config(pin: Option<usize>, budget_ms: f64, style: &str) -> Config {
    let mut c = config(pin, budget_ms);
    c.governor.students = true;
    c.engine.style = stylerd::style::StyleSpec::parse(style).unwrap();
    c.control.allow_control = true;
    c
}

/// Glass-to-glass p95 with the governor pinned at `level`, in steady state: the monitor's
/// 10 s window at the end of a 13 s run, so the first 3 s (ONNX Runtime's first runs, the
/// pipeline filling) are left out, as the governor leaves them out of its own judgement.
fn p95_at(level: usize) -> f64 {
    let samples = Running::for_secs(config(Some(level), 1000.0), 13);
    samples.last().unwrap()["latency_ms"]["glass_to_glass"]["p95"]
        .as_f64()
        .unwrap()
}

/// The daemon's timeline: one status document per second.
fn read_timeline(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A daemon running in this process with `c`, writing its timeline and serving its status
/// socket (when asked) in a scratch folder until [`Running::finish`].
struct Running {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    run: std::thread::JoinHandle<anyhow::Result<daemon::RunReport>>,
    timeline: std::path::PathBuf,
    socket: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Running {
    fn start(mut c: Config, serve_socket: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let timeline = dir.path().join("t.jsonl");
        let socket = dir.path().join("s.sock");
        if serve_socket {
            c.control.socket = Some(socket.clone());
        }
        let options = RunOptions {
            max_frames: Some(100_000),
            timeline: Some(timeline.clone()),
            serve_socket,
            ..Default::default()
        };
        let stop = options.stop.clone();
        let run = std::thread::spawn(move || daemon::run(&c, options));
        if serve_socket {
            wait_for(
                || socket.exists(),
                Duration::from_secs(20),
                "the status socket",
            );
        }
        Self {
            stop,
            run,
            timeline,
            socket,
            _dir: dir,
        }
    }

    /// Runs `c` for `secs` seconds and returns the timeline.
    fn for_secs(c: Config, secs: u64) -> Vec<Value> {
        let running = Self::start(c, false);
        std::thread::sleep(Duration::from_secs(secs));
        running.finish()
    }

    /// Stops the daemon, checks that it ended without an error and returns the timeline.
    fn finish(self) -> Vec<Value> {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.run.join().unwrap().unwrap();
        read_timeline(&self.timeline)
    }
}

/// Every test here runs a daemon that loads both cores (the first two for 30-70 s); run
/// together, each would time the other's load. They take turns.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn governor_meets_the_budget_without_oscillating() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    // The budget comes from this machine's speed at calibration. When the machine itself
    // slows down during the 70 s (a busy neighbour: seen once in CI, 60 % rung 17.7 ms at
    // calibration, 26.2 ms at the end) the rung the governor rightly chose is over a budget
    // that no longer fits the machine; that run proves nothing either way and is repeated
    // once, in `make test`'s output (straight to fd 2: libtest captures only the print
    // macros). Everything the governor decides is asserted in every attempt.
    if let Err(drift) = budget_run() {
        let line = format!("REPEATED governor_meets_the_budget: {drift}; calibrating again\n");
        let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), line.as_bytes());
        if let Err(drift) = budget_run() {
            panic!("{drift}, twice: this machine's speed changed too much to test on");
        }
    }
}

/// One calibrated governed run. Panics on anything the governor got wrong; `Err` only when
/// the 60 % rung, pinned again after the run, no longer measures under the budget with the
/// margin calibration required (the machine changed speed, not the governor's choice).
fn budget_run() -> Result<(), String> {
    let p95: Vec<f64> = (0..3).map(p95_at).collect();
    eprintln!(
        "calibration p95: full {:.1} ms, 80 % {:.1} ms, 60 % {:.1} ms",
        p95[0], p95[1], p95[2]
    );
    // A budget halfway (geometrically) between the 80 % and 60 % rungs: the 60 % rung is
    // the first one under it.
    let budget = (p95[1] * p95[2]).sqrt();
    // The rungs must sit at least 10 % either side of it, or this machine cannot tell them
    // apart (pixels alone put them 1.78x apart, so 1.33x either side of the budget).
    assert!(
        p95[1] > 1.1 * budget && p95[2] < budget / 1.1,
        "rungs 1 and 2 too close to govern between ({:.1} vs {:.1} ms)",
        p95[1],
        p95[2]
    );
    let samples = Running::for_secs(config(None, budget), 30);
    let level = |v: &Value| v["governor"]["level"].as_u64().unwrap();
    let levels: Vec<u64> = samples.iter().map(level).collect();
    eprintln!("governor level each second: {levels:?}");
    let settled = samples
        .iter()
        .find(|v| level(v) == 2)
        .expect("the governor never reached the 60 % rung");
    let t_settled = settled["t"].as_f64().unwrap();
    let last = samples.last().unwrap();
    let steps = last["governor"]["steps"].as_u64().unwrap();
    let p95_end = last["latency_ms"]["glass_to_glass"]["p95"]
        .as_f64()
        .unwrap();
    eprintln!(
        "budget {budget:.1} ms: on the 60 % rung at {t_settled:.1} s, {steps} steps, \
         final 10 s window p95 {p95_end:.1} ms ({})",
        last["governor"]["reason"]
    );
    // README: settles on the first rung under budget within 15 s, in exactly 2 steps
    // (full -> 80 % -> 60 %), and holds it for the rest of the 30 s.
    assert!(
        t_settled < 15.0,
        "on the 60 % rung only at {t_settled:.1} s"
    );
    assert!(
        levels.windows(2).all(|w| w[0] <= w[1]),
        "stepped back up: {levels:?}"
    );
    let held = steps == 2 && levels.iter().all(|&l| l <= 2);
    if held && p95_end <= budget {
        return Ok(());
    }
    // Past the 60 % rung, or over budget on it at the end: the governor's fault only if
    // that rung, pinned again now, still measures under the budget.
    let again = p95_at(2);
    eprintln!("60 % rung pinned again after the run: p95 {again:.1} ms");
    // The same margin calibration demanded: a pinned rung this close to the budget is no
    // longer "the first rung under budget" on this machine as it is now.
    if again >= budget / 1.1 {
        return Err(format!(
            "the 60 % rung measured {:.1} ms pinned at calibration and {again:.1} ms pinned \
             after the governed run (budget {budget:.1} ms)",
            p95[2]
        ));
    }
    assert!(
        held,
        "{steps} steps, past the first rung under budget: {levels:?}"
    );
    panic!(
        "p95 {p95_end:.1} ms over the {budget:.1} ms budget at the end, while the same rung \
         pinned measures {again:.1} ms"
    );
}

/// The power path end to end: the daemon reads a JetPack 5 Xavier INA3221 hwmon tree
/// (tests/data/sysfs/jetpack5-xavier, copied) whose GPU rail a "board" thread rewrites from
/// the governor level the daemon reports, like a real board drawing less at smaller sizes:
/// 19.5 W at full size, 15.4 W at 80 %, 12.1 W at 60 %, 10.1 W when skipping frames. With a
/// 15 W budget the governor must settle on the 60 % rung and stay there: a step up would be
/// predicted (from what 80 % cost before) at 15.4 W, over 85 % of the budget.
#[test]
fn governor_follows_board_power_read_from_sysfs() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let sysfs = tempfile::tempdir().unwrap();
    let copied = std::process::Command::new("cp")
        .arg("-r")
        .arg(root().join("tests/data/sysfs/jetpack5-xavier/."))
        .arg(sysfs.path())
        .status()
        .unwrap();
    assert!(copied.success());
    let chip = sysfs
        .path()
        .join("bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon2");
    let gpu_mv: f64 = 19168.0;
    // CPU, SOC, CV, VDDRQ and SYS5V as the fixture has them: 8.277 W.
    let others: f64 = 19.160 * 0.152 + 19.152 * 0.128 + 19.160 * 0.048 + 4.984 * 0.400;
    let board_w: [f64; 4] = [19.5, 15.4, 12.1, 10.1];
    let set_level = |level: usize| {
        let gpu_w = board_w[level.min(3)] - others;
        let ma = (gpu_w * 1e6 / gpu_mv).round() as u64;
        std::fs::write(chip.join("curr1_input"), format!("{ma}\n")).unwrap();
    };
    set_level(0);

    let mut c = config(None, 10_000.0);
    c.engine = engine_config(Size {
        width: 320,
        height: 180,
    });
    c.monitor.sysfs_root = sysfs.path().into();
    c.monitor.budget_power_w = 15.0;
    let running = Running::start(c, true);
    let socket = running.socket.clone();

    // The board: follows the level the status socket reports (published twice a second),
    // five times a second.
    let mut client = Client::connect(&socket);
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(45) {
        std::thread::sleep(Duration::from_millis(200));
        let status = client.ask(serde_json::json!({"cmd": "status"}));
        if let Some(level) = status["governor"]["level"].as_u64() {
            set_level(level as usize);
        }
    }
    drop(client);
    let samples = running.finish();
    let levels: Vec<u64> = samples
        .iter()
        .filter_map(|v| v["governor"]["level"].as_u64())
        .collect();
    let last = samples.last().unwrap();
    eprintln!(
        "governor level each second: {levels:?}; final power {} W, reason {}",
        last["power"]["total_w"], last["governor"]["reason"]
    );
    assert_eq!(last["power"]["source"], "ina3221-hwmon");
    assert_eq!(last["governor"]["level"], 2, "{levels:?}");
    assert_eq!(last["governor"]["steps"], 2, "oscillating: {levels:?}");
    assert!(
        last["governor"]["reason"]
            .as_str()
            .unwrap()
            .contains("W > 15 W"),
        "{}",
        last["governor"]["reason"]
    );
}

/// Model rungs (issue 13): with style 19 running and its live students shipped
/// (engines/live-style19.toml and live-style19-int8.toml say `student-of = "multistyle26"`,
/// `student-style = "style-19"`), the default ladder is multistyle26 at full size, then the
/// fastest student at full size, 80 % and 60 %. Over a budget nothing holds, the first step goes to the student at
/// full size, and only then does the picture shrink.
#[test]
fn a_student_runs_at_full_size_before_the_picture_shrinks() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let c = students_config(None, 1.0, "19");
    // Warm-up 2 s, then a step at most every 2 s (and a second of timeline between):
    // levels 1 to 3 within 12 s on any machine, 16 s leaves room.
    let samples = Running::for_secs(c, 16);
    // Samples taken before the frame loop published its governor (it first opens and
    // times the student) have none.
    let samples: Vec<&Value> = samples
        .iter()
        .filter(|v| v["governor"].is_object())
        .collect();
    let rung = |v: &&Value| {
        let g = &v["governor"];
        (
            g["level"].as_u64().unwrap(),
            g["model"].as_str().unwrap().to_string(),
            [
                g["size"][0].as_u64().unwrap(),
                g["size"][1].as_u64().unwrap(),
            ],
        )
    };
    let seen: Vec<_> = samples.iter().map(rung).collect();
    eprintln!("governor each second: {seen:?}");
    assert!(
        samples.len() >= 10,
        "{} samples with a governor",
        samples.len()
    );
    assert!(
        samples.iter().all(|v| v["governor"]["rungs"] == 5),
        "{seen:?}"
    );
    assert_eq!(seen[0], (0, "multistyle26".into(), [480, 272]));
    let mut distinct = seen.clone();
    distinct.dedup();
    // The default ladder runs the fastest of style 19's students, as timed at start:
    // live-style19 or its INT8 form live-style19-int8 (the faster one on x86 here).
    let student = distinct.get(1).map(|r| r.1.clone()).unwrap_or_default();
    assert!(
        ["live-style19", "live-style19-int8"].contains(&student.as_str()),
        "{seen:?}"
    );
    assert_eq!(
        distinct,
        vec![
            (0, "multistyle26".into(), [480, 272]),
            (1, student.clone(), [480, 272]),
            (2, student.clone(), [384, 216]),
            (3, student, [288, 160]),
        ],
        "full size with the student first, then smaller; never the skip rung on latency"
    );
}

/// The ladder follows the running style: a style with its own students gets the fastest of
/// them, a blend or a style without one gets the student of all styles (live-all,
/// `student-style = "all"`, fed the running style vector).
#[test]
fn model_rungs_follow_the_running_style() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let c = students_config(None, 10_000.0, "19");
    let running = Running::start(c, true);
    let socket = running.socket.clone();
    let mut client = Client::connect(&socket);
    let mut ladder_after = |style: Option<&str>| {
        if let Some(style) = style {
            client.set_style(style);
        }
        // The status is published between frames: wait for the new ladder to show.
        let last = client.status_when(50, |s| {
            s["style"]["spec"].as_str() == style.or(Some("19")) && s["governor"].is_object()
        });
        let g = &last["governor"];
        assert_eq!(g["model"], "multistyle26", "{g}");
        let models: Vec<String> = g["models"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|m| m.as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default();
        (g["rungs"].as_u64().unwrap_or(0), models)
    };
    let ladder = |student: &str| (5, vec!["multistyle26".to_string(), student.to_string()]);
    let (rungs, models) = ladder_after(None);
    assert_eq!(rungs, 5, "{models:?}");
    assert!(
        models == ladder("live-style19").1 || models == ladder("live-style19-int8").1,
        "style 19 runs its own student: {models:?}"
    );
    assert_eq!(
        ladder_after(Some("19:0.5,23:0.5")),
        ladder("live-all"),
        "a blend gets the student of all styles"
    );
    assert_eq!(
        ladder_after(Some("23")),
        ladder("live-style23"),
        "style 23 has its own"
    );
    assert_eq!(
        ladder_after(Some("0")),
        ladder("live-all"),
        "style 0 gets the student of all styles"
    );
    drop(client);
    running.finish();
}

/// The student of all styles runs the style now running: pinned on its rung, a style change
/// and a blend keep it there (a student it cannot feed would leave the ladder) and frames go
/// on.
#[test]
fn the_student_of_all_styles_follows_set_style() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let c = students_config(Some(1), 10_000.0, "3");
    let running = Running::start(c, true);
    let socket = running.socket.clone();
    let mut client = Client::connect(&socket);
    for style in [None, Some("5"), Some("0:0.3,12:0.7")] {
        if let Some(style) = style {
            client.set_style(style);
        }
        let before = processed(&socket);
        let last = client.status_when(100, |s| {
            s["style"]["spec"].as_str() == style.or(Some("3"))
                && s["frames"]["processed"].as_u64().unwrap_or(0) >= before + 5
        });
        let g = &last["governor"];
        assert_eq!(g["model"], "live-all", "{style:?}: {g}");
        assert_eq!(g["rungs"], 5, "{style:?}: {g}");
        assert!(
            last["frames"]["processed"].as_u64().unwrap_or(0) >= before + 5,
            "{style:?}: frames stopped: {last}"
        );
        assert_eq!(last["frames"]["engine_errors"], 0, "{style:?}: {last}");
    }
    drop(client);
    running.finish();
}

/// A style change from a style with its own student to one without keeps the picture on a
/// student: the new ladder starts on live-all at the size the old student ran, not on the
/// teacher again.
#[test]
fn a_style_change_between_students_stays_on_a_student() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let c = students_config(None, 1.0, "19");
    let running = Running::start(c, true);
    let socket = running.socket.clone();
    let mut client = Client::connect(&socket);
    // Over a 1 ms budget the first step (after the 2 s warm-up) goes to style 19's student.
    let nineteen = |s: &Value| {
        s["governor"]["model"]
            .as_str()
            .is_some_and(|m| m.starts_with("live-style19"))
    };
    let on_student = client.status_when(150, nineteen);
    assert!(
        nineteen(&on_student),
        "never left the teacher: {on_student}"
    );
    client.set_style("3");
    // Once the status shows style 3, every status shows live-all (the governor may step it
    // smaller over the 1 ms budget, never back to the teacher).
    let mut seen = 0;
    for _ in 0..50 {
        let s = client.ask(serde_json::json!({"cmd": "status"}));
        if s["style"]["spec"] == "3" {
            assert_eq!(s["governor"]["model"], "live-all", "{}", s["governor"]);
            seen += 1;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(seen >= 20, "style 3 showed in only {seen} of 50 statuses");
    drop(client);
    running.finish();
}
