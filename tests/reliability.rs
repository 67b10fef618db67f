//! Camera faults against the real daemon: an RTSP camera in a separate process that is
//! killed (SIGKILL), frozen (SIGSTOP) and replaced, and a daemon started before its camera
//! exists. Each time the daemon must stream again within 3 s of the camera being back, and
//! never exit.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

/// Longest allowed gap between the camera being back and stylized frames flowing again.
const RECOVERY: Duration = Duration::from_secs(3);

/// Time from now until at least 3 new stylized frames arrived (panics after 15 s).
fn time_to_frames(socket: &Path) -> Duration {
    let start = Instant::now();
    let before = processed(socket);
    while processed(socket) < before + 3 {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "frames never resumed: {}",
            status(socket)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    start.elapsed()
}

/// Waits until the daemon reports the camera lost.
fn wait_lost(socket: &Path) {
    wait_for(
        || status(socket)["state"] == "reconnecting",
        Duration::from_secs(10),
        "reconnecting state",
    );
}

#[test]
fn camera_killed_and_restarted_five_times_and_started_late() {
    let port = free_port();
    // The daemon starts before its camera exists.
    let d = camera_daemon(port, "rec.mkv");
    wait_for(
        || {
            let s = status(&d.socket);
            s["state"] == "reconnecting" && s["source"]["last_error"].is_string()
        },
        Duration::from_secs(10),
        "the daemon reporting its missing camera",
    );
    let mut cam = Some(camera(port, "smpte"));
    let mut worst = time_to_frames(&d.socket);
    for cycle in 0..5 {
        drop(cam.take()); // SIGKILL
        wait_lost(&d.socket);
        std::thread::sleep(Duration::from_millis(700));
        cam = Some(camera(port, "smpte"));
        let took = time_to_frames(&d.socket);
        eprintln!(
            "cycle {cycle}: frames again {:.2} s after the camera restarted",
            took.as_secs_f64()
        );
        worst = worst.max(took);
    }
    let s = status(&d.socket);
    assert!(s["source"]["reconnects"].as_u64().unwrap() >= 5, "{s}");
    assert_eq!(s["state"], "running");
    assert!(
        worst <= RECOVERY,
        "slowest recovery {:.2} s",
        worst.as_secs_f64()
    );
    // The recording went on through the outages: it holds stylized and no-signal frames.
    let recorded: u64 = std::fs::read_dir(d.dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "mkv"))
        .map(|e| e.metadata().unwrap().len())
        .sum();
    assert!(
        recorded > 10_000,
        "recording did not grow: {recorded} bytes"
    );
}

#[test]
fn frozen_camera_is_detected_and_recovered_after_resume_or_replacement() {
    let port = free_port();
    let cam = camera(port, "smpte");
    let d = camera_daemon(port, "rec.mkv");
    time_to_frames(&d.socket);
    // Freeze: no EOS, no error, just silence; the daemon notices within its 3 s timeout.
    cam.signal(libc::SIGSTOP);
    let frozen = Instant::now();
    wait_lost(&d.socket);
    assert!(
        frozen.elapsed() < Duration::from_secs(6),
        "silence noticed after {:?}",
        frozen.elapsed()
    );
    assert!(
        status(&d.socket)["source"]["last_error"]
            .as_str()
            .unwrap()
            .contains("no frame for")
    );
    cam.signal(libc::SIGCONT);
    let took = time_to_frames(&d.socket);
    eprintln!(
        "resumed camera: frames again after {:.2} s",
        took.as_secs_f64()
    );
    assert!(
        took <= RECOVERY,
        "after SIGCONT: {:.2} s",
        took.as_secs_f64()
    );

    // Freeze again, then replace the frozen camera with a new one on the same port.
    cam.signal(libc::SIGSTOP);
    wait_lost(&d.socket);
    drop(cam);
    let _new = camera(port, "smpte");
    let took = time_to_frames(&d.socket);
    eprintln!(
        "replaced camera: frames again after {:.2} s",
        took.as_secs_f64()
    );
    assert!(
        took <= RECOVERY,
        "after replacement: {:.2} s",
        took.as_secs_f64()
    );
}

/// "The output never stalls": while the camera is away the daemon sends one "no signal"
/// frame (the last stylized frame, dimmed to a quarter) per second to every output. An RTSP
/// viewer keeps receiving them through a 5 s outage, and the recording, decoded after a
/// clean stop, holds them at about 1 per second between the stylized frames.
#[test]
fn outage_keeps_every_output_going_with_no_signal_frames() {
    let port = free_port();
    let out_port = free_port();
    let url = format!("rtsp://127.0.0.1:{out_port}/stylized");
    let mut cam = Some(camera(port, "smpte"));
    let CameraDaemon {
        proc: mut daemon,
        socket,
        dir,
    } = camera_daemon_with_outputs(port, "rec.mkv", &[&url]);
    wait_port(out_port);
    let viewer = Viewer::connect(&url);
    assert_eq!(viewer.outcome(Duration::from_secs(20)), Ok(()));
    time_to_frames(&socket);

    drop(cam.take()); // SIGKILL
    wait_lost(&socket);
    let seen = viewer.frames();
    let down = Instant::now();
    std::thread::sleep(Duration::from_secs(5));
    let during = viewer.frames() - seen;
    eprintln!(
        "RTSP viewer: {during} frames in {:.1} s of outage",
        down.elapsed().as_secs_f64()
    );
    // 1 per second for 5 s; one may straddle either end.
    assert!(
        (4..=6).contains(&during),
        "{during} frames reached the viewer in 5 s of outage"
    );
    cam = Some(camera(port, "smpte"));
    time_to_frames(&socket);
    std::thread::sleep(Duration::from_secs(1));
    drop(viewer);

    // A clean stop (SIGTERM) finishes the recording.
    daemon.signal(libc::SIGTERM);
    let stopped = Instant::now();
    while daemon.0.try_wait().unwrap().is_none() {
        assert!(stopped.elapsed() < Duration::from_secs(15), "no clean stop");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(cam);
    let files = segments(&dir.path().join("rec%05d.mkv"));
    let decoded: Vec<Vec<(f64, stylerd::frame::RgbImage)>> =
        files.iter().map(|f| decode_mkv_timed(f)).collect();
    let mean = |img: &stylerd::frame::RgbImage| {
        img.data.iter().map(|&v| v as f64).sum::<f64>() / img.data.len() as f64
    };
    let mut means: Vec<f64> = decoded.iter().flatten().map(|(_, i)| mean(i)).collect();
    means.sort_by(f64::total_cmp);
    let typical = means[means.len() / 2];
    // Dimmed to a quarter: well under half of a typical stylized frame's brightness.
    // Timestamps compare within one segment file only.
    let (mut dim, mut gaps) = (Vec::new(), Vec::new());
    for file in &decoded {
        let times: Vec<f64> = file
            .iter()
            .filter(|(_, i)| mean(i) < typical / 2.0)
            .map(|(t, _)| *t)
            .collect();
        gaps.extend(times.windows(2).map(|w| w[1] - w[0]));
        dim.extend(times);
    }
    let frames: Vec<_> = decoded.iter().flatten().collect();
    eprintln!(
        "recording: {} frames, {} dimmed no-signal frames at {dim:.2?} s (gaps {gaps:.2?})",
        frames.len(),
        dim.len()
    );
    assert!(
        (5..=8).contains(&dim.len()),
        "{} no-signal frames for an outage of ~5-6 s",
        dim.len()
    );
    // One a second: the frame loop pushes them from its 100 ms pull slices.
    assert!(
        gaps.iter().all(|g| (0.9..=1.25).contains(g)),
        "no-signal frames not ~1 s apart: {gaps:.2?}"
    );
}
