//! Soak: the daemon against a camera killed and restarted every 20 s, sampling resident
//! memory and open file descriptors. `make soak` runs it for 10 minutes (SOAK_SECS=600);
//! `make test` for 2. Bounds: no growth beyond a few MB / descriptors, frames flowing in
//! every camera-up window, the daemon never exits.

mod common;

use std::time::{Duration, Instant};

use common::*;

/// Growth allowed between the first sample (after warm-up) and the last.
const RSS_GROWTH_MB: f64 = 40.0;
const FD_GROWTH: i64 = 8;

fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb / 1024.0
}

fn fds(pid: u32) -> i64 {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count() as i64
}

#[test]
fn soak_camera_restarts_without_leaks() {
    let secs: u64 = std::env::var("SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(120);
    let port = free_port();
    let mut cam = camera(port, "ball");
    let mut daemon = camera_daemon(port, "soak.mkv");
    let socket = daemon.socket.clone();
    let pid = daemon.proc.0.id();
    std::thread::sleep(Duration::from_secs(8));
    let (rss0, fd0) = (rss_mb(pid), fds(pid));
    let started = Instant::now();
    let (mut windows, mut restarts) = (0, 0);
    let (mut rss_max, mut frames_total) = (rss0, 0);
    while started.elapsed() < Duration::from_secs(secs) {
        // Camera up for ~18 s: frames must flow in this window.
        let before = processed(&socket);
        let window = Instant::now();
        while window.elapsed() < Duration::from_secs(18)
            && started.elapsed() < Duration::from_secs(secs)
        {
            std::thread::sleep(Duration::from_secs(2));
            rss_max = rss_max.max(rss_mb(pid));
        }
        let got = processed(&socket) - before;
        assert!(
            got > 10,
            "window {windows}: only {got} frames while the camera was up"
        );
        windows += 1;
        frames_total += got;
        // Kill it, leave it down for 2 s, restart.
        drop(cam);
        std::thread::sleep(Duration::from_secs(2));
        cam = camera(port, "ball");
        restarts += 1;
        assert!(
            daemon.proc.0.try_wait().unwrap().is_none(),
            "the daemon exited"
        );
    }
    // Let the last reconnect settle before the final sample.
    std::thread::sleep(Duration::from_secs(4));
    let (rss1, fd1) = (rss_mb(pid), fds(pid));
    let reconnects = status(&socket)["source"]["reconnects"].clone();
    eprintln!(
        "soak {secs} s: {restarts} camera restarts, {reconnects} reconnects, {frames_total} frames in {windows} windows, \
         RSS {rss0:.1} -> {rss1:.1} MB (max {rss_max:.1}), fds {fd0} -> {fd1}"
    );
    drop(cam);
    drop(daemon);
    assert!(
        rss1 - rss0 < RSS_GROWTH_MB,
        "RSS grew {rss0:.1} -> {rss1:.1} MB"
    );
    assert!(
        fd1 - fd0 <= FD_GROWTH,
        "file descriptors grew {fd0} -> {fd1}"
    );
}
