//! The spine end to end with real parts: an RTSP camera on 127.0.0.1, the real GStreamer
//! pipelines, ONNX Runtime with multistyle26, Matroska files decoded back, and an RTSP
//! client reading the stylized stream.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use stylerd::config::{Config, Size};
use stylerd::daemon::{self, RunOptions};
use stylerd::media::rtsp::{CameraSpec, TestCamera};
use stylerd::quality::psnr;

const SIZE: Size = Size {
    width: 320,
    height: 180,
};

fn config(source: &str, outputs: Vec<String>) -> Config {
    let mut c = Config::default();
    c.source.uri = source.parse().unwrap();
    c.output.uris = outputs.iter().map(|o| o.parse().unwrap()).collect();
    c.engine = engine_config(SIZE);
    c
}

#[test]
fn rtsp_camera_to_file_is_stylized_and_matches_the_engine() {
    // smpte is a static pattern, so every camera frame shows the same picture.
    let spec = CameraSpec {
        width: 320,
        height: 180,
        fps: 30,
        pattern: "smpte".into(),
        video: None,
    };
    let camera = TestCamera::start("127.0.0.1", 0, "/camera", &spec).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rec.mkv");
    let c = config(&camera.url(), vec![format!("file://{}", file.display())]);
    let report = daemon::run(
        &c,
        RunOptions {
            max_frames: Some(24),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(report.processed, 24);
    assert_eq!(
        report.encoded, 24,
        "every stylized frame reached the encoder"
    );
    assert!(report.captured >= 24);
    assert_eq!(report.engine_errors, 0);

    let pattern = std::path::PathBuf::from(report.file_pattern.unwrap());
    let files = segments(&pattern);
    assert_eq!(files.len(), 1, "one segment: {files:?}");
    let frames = decode_mkv(&files[0]);
    assert_eq!(frames.len(), 24, "decoded frame count");
    assert!(frames.iter().all(|f| (f.width, f.height) == (320, 180)));

    let input = pattern_frame("smpte", SIZE);
    let expected = stylize_direct(&input, "0");
    let last = frames.last().unwrap();
    let vs_input = mean_abs_diff(last, &input);
    let vs_engine = psnr(last, &expected);
    eprintln!("recorded vs direct engine: PSNR {vs_engine:.1} dB, vs input {vs_input:.1}");
    // Stylized: far from the camera picture, and the same picture as the engine's own
    // output up to two H.264 round trips (camera and recording), which the style network
    // amplifies; exactness is checked without the camera below.
    assert!(
        vs_input > 40.0,
        "output too close to the input: mean abs diff {vs_input:.1}"
    );
    // Two H.264 round trips (camera and recording), which the network amplifies: 16.9 to
    // 19.4 dB measured over runs, so 16 dB is the floor. What the check must tell apart is
    // this style from another one, checked directly: the engine's style 1 on the same input
    // measures 10.8 dB, so the right style must win by 4 dB (it wins by 6 to 8.6).
    let vs_other = psnr(last, &stylize_direct(&input, "1"));
    eprintln!("recorded vs direct engine with style 1: PSNR {vs_other:.1} dB");
    assert!(
        vs_engine > 16.0 && vs_engine > vs_other + 4.0,
        "output differs from the direct engine run: PSNR {vs_engine:.1} dB (other style {vs_other:.1})"
    );
}

#[test]
fn output_equals_the_engine_run_directly_on_the_same_input() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(
        "test://?pattern=smpte&num-buffers=12",
        vec![format!("file://{}", dir.path().join("x.mkv").display())],
    );
    c.source.mode = Some(stylerd::config::SourceMode::EveryFrame);
    c.output.snapshot_dir = Some(dir.path().join("snaps"));
    c.output.snapshot_every_s = 1000.0;
    let report = daemon::run(&c, RunOptions::default()).unwrap();
    assert_eq!(report.processed, 12);
    let expected = stylize_direct(&pattern_frame("smpte", SIZE), "0");
    // The snapshot is the engine's RGB output before encoding: exact.
    let snap = std::fs::read_dir(dir.path().join("snaps"))
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    let snap = image::open(&snap).unwrap().to_rgb8();
    let snap = stylerd::frame::RgbImage::new(snap.width(), snap.height(), snap.into_raw()).unwrap();
    let worst = snap
        .data
        .iter()
        .zip(&expected.data)
        .map(|(a, b)| a.abs_diff(*b))
        .max()
        .unwrap();
    assert!(
        worst <= 1,
        "snapshot differs from the direct engine run by up to {worst}/255"
    );
    // The recording is the same picture through one H.264 encode.
    let files = segments(std::path::Path::new(
        report.file_pattern.as_deref().unwrap(),
    ));
    let frames = decode_mkv(&files[0]);
    assert_eq!(frames.len(), 12);
    let q = psnr(frames.last().unwrap(), &expected);
    // x264 ultrafast on a heavily textured picture: ~25 dB measured at 2000 kbit/s.
    assert!(
        q > 22.0,
        "recorded frame vs direct engine run: PSNR {q:.1} dB"
    );
}

#[test]
fn test_source_every_frame_to_file_keeps_every_frame() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("all.mkv");
    let mut c = config(
        "test://?pattern=ball&num-buffers=30",
        vec![format!("file://{}", file.display())],
    );
    c.source.mode = Some(stylerd::config::SourceMode::EveryFrame);
    let report = daemon::run(&c, RunOptions::default()).unwrap();
    assert_eq!(
        (report.captured, report.processed, report.dropped),
        (30, 30, 0)
    );
    let files = segments(std::path::Path::new(
        report.file_pattern.as_deref().unwrap(),
    ));
    assert_eq!(decode_mkv(&files[0]).len(), 30);
}

#[test]
fn rtsp_output_serves_stylized_frames() {
    let port = free_port();
    let c = config(
        "test://?pattern=smpte",
        vec![
            format!("rtsp://127.0.0.1:{port}/stylized"),
            "null://".into(),
        ],
    );
    let stop = RunOptions::default().stop;
    let options = RunOptions {
        stop: stop.clone(),
        max_frames: Some(2000),
        ..Default::default()
    };
    let runner = std::thread::spawn(move || daemon::run(&c, options));
    wait_port(port);
    let frames = collect_frames(
        &format!(
            "rtspsrc location=rtsp://127.0.0.1:{port}/stylized latency=0 ! decodebin ! videoconvert ! \
             video/x-raw,format=RGB ! appsink name=out sync=false"
        ),
        5,
        Duration::from_secs(20),
    );
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let report = runner.join().unwrap().unwrap();
    assert_eq!(frames.len(), 5, "frames received over RTSP");
    assert_eq!((frames[0].width, frames[0].height), (320, 180));
    let input = pattern_frame("smpte", SIZE);
    assert!(
        mean_abs_diff(&frames[4], &input) > 40.0,
        "RTSP output is not stylized"
    );
    assert!(report.processed >= 5);
}

#[test]
fn rtsp_output_refuses_viewers_beyond_its_limit_and_frees_places() {
    let port = free_port();
    let url = format!("rtsp://127.0.0.1:{port}/stylized");
    let mut c = config("test://?pattern=smpte", vec![url.clone(), "null://".into()]);
    c.output.rtsp_max_clients = 1;
    let stop = RunOptions::default().stop;
    let options = RunOptions {
        stop: stop.clone(),
        max_frames: Some(5000),
        ..Default::default()
    };
    let runner = std::thread::spawn(move || daemon::run(&c, options));

    // The first viewer: retried until the server listens (a refused TCP connection takes
    // no place).
    let deadline = Instant::now() + Duration::from_secs(20);
    let first = loop {
        let v = Viewer::connect(&url);
        match v.outcome(Duration::from_secs(20)) {
            Ok(()) => break v,
            Err(e) if Instant::now() < deadline && e.contains("Could not open resource") => {
                drop(v);
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("first viewer: {e}"),
        }
    };
    let second = Viewer::connect(&url);
    let refused = second.outcome(Duration::from_secs(10));
    println!("second viewer: {refused:?}");
    let text = refused.expect_err("a second viewer was served past rtsp-max-clients = 1");
    assert!(
        text.contains("503") || text.contains("Unavailable"),
        "{text}"
    );
    drop(second);

    // The first viewer leaves: its place is free again once the server has seen the
    // connection close (retried for up to 5 s).
    drop(first);
    let mut third = Err(String::new());
    for _ in 0..10 {
        std::thread::sleep(Duration::from_millis(500));
        third = Viewer::connect(&url).outcome(Duration::from_secs(20));
        if !matches!(&third, Err(e) if e.contains("503")) {
            break;
        }
    }
    assert_eq!(third, Ok(()));

    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    runner.join().unwrap().unwrap();
}

#[test]
fn kill_9_leaves_a_playable_recording() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(bin())
        .args([
            "run",
            "--http",
            "off",
            "--config",
            "/dev/null",
            "--source",
            "test://?pattern=ball",
            "--size",
            "320x180",
        ])
        .arg("--output")
        .arg(format!("file://{}", dir.path().join("crash.mkv").display()))
        .current_dir(root())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Let a few seconds of video reach the disk, then kill without warning.
    let started = Instant::now();
    let written = loop {
        let size: u64 = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.metadata().unwrap().len())
            .sum();
        if size > 200_000 || started.elapsed() > Duration::from_secs(30) {
            break size;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(written > 200_000, "recording did not grow: {written} bytes");
    let file = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    let frames = decode_mkv(&file);
    assert!(
        frames.len() >= 10,
        "only {} frames decode after kill -9",
        frames.len()
    );
}

/// The index of the clip frame nearest `frame` and its distance, with the second nearest's.
fn nearest(
    clip: &[stylerd::frame::RgbImage],
    frame: &stylerd::frame::RgbImage,
) -> (usize, f64, f64) {
    let mut d: Vec<(f64, usize)> = clip
        .iter()
        .enumerate()
        .map(|(i, c)| (mean_abs_diff(c, frame), i))
        .collect();
    d.sort_by(|a, b| a.0.total_cmp(&b.0));
    (d[0].1, d[0].0, d[1].0)
}

#[test]
fn the_test_camera_plays_a_video_file_in_a_loop() {
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("clip.mp4");
    let size = Size {
        width: 160,
        height: 96,
    };
    const CLIP: usize = 10;
    write_clip(&clip, "ball", CLIP as u32, size, 30);
    let source = decode_video(&clip);
    assert_eq!(source.len(), CLIP);
    let spec = CameraSpec {
        width: size.width,
        height: size.height,
        fps: 30,
        pattern: "ball".into(),
        video: Some(clip.clone()),
    };
    let camera = TestCamera::start("127.0.0.1", 0, "/camera", &spec).unwrap();
    // Four passes of the clip: it only gets there by looping.
    let frames = collect_frames(
        &format!(
            "rtspsrc location={} latency=100 ! decodebin ! videoconvert ! \
             video/x-raw,format=RGB ! appsink name=out",
            camera.url()
        ),
        4 * CLIP,
        Duration::from_secs(30),
    );
    assert_eq!(
        frames.len(),
        4 * CLIP,
        "the camera stopped instead of looping"
    );
    let index: Vec<usize> = frames
        .iter()
        .map(|f| {
            let (i, best, second) = nearest(&source, f);
            // Two lossy round trips (JPEG q90 in the camera's folder, H.264 at 2 Mbit/s):
            // measured 0.86-0.89 levels to the right clip frame, 3.6 to the next nearest.
            assert!(
                best < 2.0 && second > best + 1.5,
                "not a clip frame: {best:.2} / {second:.2}"
            );
            i
        })
        .collect();
    // In the clip's order, and round again: each step is the next clip frame (one lost UDP
    // packet on loopback could drop a frame, hence 36 of 39), and the 9 -> 0 wrap is there.
    let steps = index
        .windows(2)
        .filter(|w| w[1] == (w[0] + 1) % CLIP)
        .count();
    let wraps = index
        .windows(2)
        .filter(|w| w[0] == CLIP - 1 && w[1] == 0)
        .count();
    assert!(steps >= 36, "out of order: {index:?}");
    assert!(wraps >= 3, "did not loop: {index:?}");
    drop(camera);
    // A missing file and one that is no video are refused with one sentence.
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not a video").unwrap();
    for (video, why) in [
        (dir.path().join("absent.mp4"), "no such file"),
        (text, "cannot show"),
    ] {
        let spec = CameraSpec {
            video: Some(video.clone()),
            ..spec.clone()
        };
        let err = TestCamera::start("127.0.0.1", 0, "/camera", &spec)
            .err()
            .unwrap_or_else(|| panic!("{} was accepted", video.display()))
            .to_string();
        assert!(err.starts_with("the test camera cannot show "), "{err}");
        assert!(err.contains(why), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }
}
