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
    std::thread::sleep(Duration::from_millis(1500));
    let s = status(&d.socket);
    assert_eq!(s["state"], "reconnecting", "{s}");
    assert!(s["source"]["last_error"].as_str().is_some(), "{s}");
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
