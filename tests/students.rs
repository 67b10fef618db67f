//! The shipped live students (`engines/live-style*.toml`, `student-of = "multistyle26"`) say
//! in their manifests how close they come to their teacher: "Below its quality target: SSIM /
//! PSNR 0.82 / 20.7 dB to the teacher on the 13 held-out photos (target 0.85 / 27 dB)."
//! (written by `make live-model-N` / `make live-int8-N` from trainer/eval_live.py). This test
//! measures that again through the daemon's own engine on the same held-out photos at
//! 640x360, so a retrained or replaced model cannot ship with a stale or flattering claim.
//! The student of all styles (`student-style = "all"`, live-all) is measured on every style
//! of its teacher, fed each as the daemon feeds it, and its sentence ends "Means over the 26
//! styles.".
//!
//! Also: between a live stream's frames the engine's worker threads sleep (`engine.spin-us`)
//! rather than spin through the wait, which held a whole core.
//!
//! Needs `make models`, `make deps` and `make trainer-photos`; recorded as skipped otherwise.

mod common;

use stylerd::config::{EngineConfig, Size};
use stylerd::engine::{self, StageTimes};
use stylerd::frame::RgbImage;
use stylerd::model::Manifest;
use stylerd::quality::{psnr, ssim};
use stylerd::style::StyleSpec;
use stylerd_manifest::ALL_STYLES;

use common::engine_config;
use common::photos::{models_or_skip, photo_dir};

const SIZE: Size = Size {
    width: 640,
    height: 360,
};

/// A held-out photo as trainer/eval_live.py frames it: resized to cover 640x360, centre crop.
fn frame(path: &std::path::Path) -> RgbImage {
    let pic = image::open(path).unwrap().to_rgb8();
    let (w, h) = (SIZE.width as f64, SIZE.height as f64);
    let s = (w / pic.width() as f64).max(h / pic.height() as f64);
    let nw = ((pic.width() as f64 * s).round() as u32).max(SIZE.width);
    let nh = ((pic.height() as f64 * s).round() as u32).max(SIZE.height);
    let resized = image::imageops::resize(&pic, nw, nh, image::imageops::FilterType::Triangle);
    let (left, top) = ((nw - SIZE.width) / 2, (nh - SIZE.height) / 2);
    let crop = image::imageops::crop_imm(&resized, left, top, SIZE.width, SIZE.height).to_image();
    RgbImage::new(SIZE.width, SIZE.height, crop.into_raw()).unwrap()
}

/// The manifest's claim: (meets the target, SSIM, PSNR dB, photos).
fn claim(description: &str) -> (bool, f64, f64, usize) {
    let meets = if description.starts_with("Meets its quality target: SSIM / PSNR ") {
        true
    } else if description.starts_with("Below its quality target: SSIM / PSNR ") {
        false
    } else {
        panic!("the description does not start with its measured quality: {description}");
    };
    let rest = &description[description.find("PSNR ").unwrap() + 5..];
    let words: Vec<&str> = rest.split_whitespace().collect();
    // "0.847 / 21.28 dB to the teacher on the 13 held-out photos (target 0.85 / 27 dB)."
    assert_eq!(
        words[3..9],
        ["dB", "to", "the", "teacher", "on", "the"],
        "{description}"
    );
    assert_eq!(words[10..12], ["held-out", "photos"], "{description}");
    assert!(
        description.contains("(target 0.85 / 27 dB)."),
        "{description}"
    );
    (
        meets,
        words[0].parse().unwrap(),
        words[2].parse().unwrap(),
        words[9].parse().unwrap(),
    )
}

#[test]
fn every_shipped_student_measures_what_its_manifest_says() {
    let Some(models) = models_or_skip() else {
        return;
    };
    let mut photos: Vec<_> = std::fs::read_dir(photo_dir("eval"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    photos.sort();
    let frames: Vec<RgbImage> = photos.iter().map(|p| frame(p)).collect();
    let students: Vec<Manifest> = Manifest::list(&models)
        .unwrap()
        .into_iter()
        .filter(|m| m.student_of.as_deref() == Some("multistyle26"))
        .collect();
    let names: Vec<&str> = students.iter().map(|m| m.name.as_str()).collect();
    for shipped in [
        "live-style19",
        "live-style19-int8",
        "live-style23",
        "live-style7",
        "live-style10",
        "live-all",
    ] {
        assert!(names.contains(&shipped), "{shipped} missing from {names:?}");
    }
    let config = |model: &str| EngineConfig {
        models_dir: models.clone(),
        model: model.into(),
        ..engine_config(SIZE)
    };
    let mut t = StageTimes::default();
    // The teacher's pictures, once per style.
    let mut teacher_out: std::collections::HashMap<String, Vec<RgbImage>> = Default::default();
    for m in &students {
        let (meets, want_ssim, want_psnr, count) = claim(&m.description);
        assert_eq!(count, frames.len(), "{}: photos", m.name);
        // A student of all styles (`student-style = "all"`) is measured on every style of
        // its teacher, fed the style as the daemon feeds it; a one-style student has no style
        // input (the daemon opens it with style 0, as here).
        let of_all = m.student_style.as_deref() == Some(ALL_STYLES);
        let styles: Vec<String> = if of_all {
            m.styles.clone()
        } else {
            vec![m.student_style.clone().unwrap()]
        };
        assert_eq!(
            of_all,
            m.description
                .contains(&format!("Means over the {} styles.", styles.len())),
            "{}: the description says what the means are over",
            m.name
        );
        let (mut s_sum, mut p_sum, mut n) = (0.0, 0.0, 0.0);
        let mut student: Option<Box<dyn engine::Engine>> = None;
        for style_name in &styles {
            let style = StyleSpec::parse(style_name.strip_prefix("style-").unwrap()).unwrap();
            let want = teacher_out.entry(style_name.clone()).or_insert_with(|| {
                let mut teacher = engine::open(&config("multistyle26"), &style).unwrap();
                frames
                    .iter()
                    .map(|f| teacher.stylize(f, &mut t).unwrap())
                    .collect()
            });
            let fed = if of_all {
                style.clone()
            } else {
                StyleSpec::parse("0").unwrap()
            };
            let e = match &mut student {
                Some(e) => {
                    e.set_style(&fed).unwrap();
                    e
                }
                None => student.insert(engine::open(&config(&m.name), &fed).unwrap()),
            };
            for (f, a) in frames.iter().zip(want.iter()) {
                let b = e.stylize(f, &mut t).unwrap();
                s_sum += ssim(a, &b);
                p_sum += psnr(a, &b);
                n += 1.0;
            }
        }
        let (got_ssim, got_psnr) = (s_sum / n, p_sum / n);
        println!(
            "{}: SSIM {got_ssim:.4} / PSNR {got_psnr:.2} dB to the teacher on {} held-out photos; manifest says {want_ssim} / {want_psnr} dB",
            m.name,
            frames.len()
        );
        // The manifest rounds to 0.001 and 0.01 dB (half of that either way); this engine and
        // trainer/eval_live.py agreed within 0.0002 SSIM and 0.01 dB here (the image crate's
        // triangle resize against PIL's bilinear, Rust's and Python's ONNX Runtime sessions);
        // 0.002 and 0.05 dB more cover other x86 CPUs' kernels.
        assert!(
            (got_ssim - want_ssim).abs() <= 0.003,
            "{}: SSIM {got_ssim:.4}, manifest {want_ssim}",
            m.name
        );
        assert!(
            (got_psnr - want_psnr).abs() <= 0.07,
            "{}: PSNR {got_psnr:.2} dB, manifest {want_psnr}",
            m.name
        );
        assert_eq!(
            meets,
            got_ssim >= 0.85 && got_psnr >= 27.0,
            "{}: the manifest's verdict",
            m.name
        );
    }
}

/// CPU seconds used so far by this thread and the threads it started (threads inherit their
/// creator's name: the test harness names this thread after the test, so ONNX Runtime's
/// workers for an engine opened here carry the same name, and other tests' do not).
fn cpu_of_this_tests_threads() -> f64 {
    let comm = std::fs::read_to_string("/proc/thread-self/comm").unwrap();
    let ticks = 100.0; // USER_HZ: 100 on every Linux architecture the daemon builds for
    let mut total = 0.0;
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let path = task.path();
        let (Ok(name), Ok(stat)) = (
            std::fs::read_to_string(path.join("comm")),
            std::fs::read_to_string(path.join("stat")),
        ) else {
            continue; // a thread that ended meanwhile
        };
        if name != comm {
            continue;
        }
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
        // utime and stime: fields 14 and 15 of stat, 12 and 13 after the name.
        total += (fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap()) / ticks;
    }
    total
}

/// Share of one core the live student's engine (2 threads) uses while stylizing a 256x144
/// frame and then waiting 100 ms, 30 times, with `spin_us` of spinning allowed to an idle
/// worker.
fn engine_cpu_share(models: &std::path::Path, spin_us: u64) -> f64 {
    let size = Size {
        width: 256,
        height: 144,
    };
    let config = EngineConfig {
        models_dir: models.to_path_buf(),
        model: "live-style19".into(),
        spin_us,
        ..engine_config(size)
    };
    let mut e = engine::open(&config, &StyleSpec::parse("0").unwrap()).unwrap();
    let frame = RgbImage::new(
        256,
        144,
        (0..256 * 144 * 3).map(|i| (i % 251) as u8).collect(),
    )
    .unwrap();
    let mut t = StageTimes::default();
    for _ in 0..3 {
        e.stylize(&frame, &mut t).unwrap();
    }
    let (cpu0, wall0) = (cpu_of_this_tests_threads(), std::time::Instant::now());
    for _ in 0..30 {
        e.stylize(&frame, &mut t).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    (cpu_of_this_tests_threads() - cpu0) / wall0.elapsed().as_secs_f64()
}

#[test]
fn the_engine_sleeps_between_live_frames() {
    let Some(models) = models_or_skip() else {
        return;
    };
    let sleeping = engine_cpu_share(&models, 1000);
    let spinning = engine_cpu_share(&models, 1_000_000);
    println!(
        "live-style19 at 256x144, 100 ms between frames: {:.0} % of a core with engine.spin-us = 1000, {:.0} % with 1 s of spinning",
        sleeping * 100.0,
        spinning * 100.0
    );
    // Measured 10-15 % here (both threads' work and the 1 ms of spinning after each frame);
    // a worker that spins through the waits is alone a whole core, measured 105-108 % alone
    // and 76 % beside this file's other test. The bounds leave 2x either side of those.
    assert!(
        sleeping < 0.35,
        "{sleeping:.2} of a core: the worker spins between frames"
    );
    // The same measurement sees spinning when it is allowed (so the bound above can fail).
    assert!(
        spinning > 0.38,
        "{spinning:.2} of a core with 1 s of spinning"
    );
}
