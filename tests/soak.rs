//! Soak: the daemon against a camera killed and restarted over and over, sampling resident
//! memory and open file descriptors at the same point of every cycle (streaming again, 2 s
//! after recovery). `make test` runs 20 restarts; `make soak` runs 100 (SOAK_RESTARTS).
//! Bounds, per reconnect after a warm-up of 3 restarts: no descriptor growth at all (the
//! median of the last 5 samples is not above that of the first 5), and a least-squares RSS
//! slope under 0.5 MB per reconnect. Frames flow again after every restart, and the daemon
//! never exits.

mod common;

use std::time::{Duration, Instant};

use common::*;

/// Restarts whose samples are not judged: caches, thread pools and the allocator settle.
const WARM_UP: usize = 3;
/// Least-squares RSS growth allowed per reconnect. A leaked source pipeline holds its
/// decoder, scaler and buffer pool, several MB at 160x96; allocator noise stays well under.
const RSS_SLOPE_MB: f64 = 0.5;

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

/// Least-squares slope of `ys` against their index.
fn slope(ys: &[f64]) -> f64 {
    let n = ys.len() as f64;
    let mx = (n - 1.0) / 2.0;
    let my = ys.iter().sum::<f64>() / n;
    let (mut num, mut den) = (0.0, 0.0);
    for (i, y) in ys.iter().enumerate() {
        num += (i as f64 - mx) * (y - my);
        den += (i as f64 - mx).powi(2);
    }
    num / den
}

fn median(xs: &[i64]) -> i64 {
    let mut v = xs.to_vec();
    v.sort();
    v[v.len() / 2]
}

/// Waits (up to 15 s) until at least 3 new stylized frames arrived.
fn wait_frames(socket: &std::path::Path, cycle: usize) {
    let before = processed(socket);
    wait_for(
        || processed(socket) >= before + 3,
        Duration::from_secs(15),
        &format!("frames after camera restart {cycle}"),
    );
}

#[test]
fn soak_camera_restarts_without_leaks() {
    let restarts: usize = std::env::var("SOAK_RESTARTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    assert!(restarts >= WARM_UP + 10, "too few restarts to fit a slope");
    let started = Instant::now();
    let port = free_port();
    let mut cam = camera(port, "ball");
    let mut daemon = camera_daemon(port, "soak.mkv");
    let socket = daemon.socket.clone();
    let pid = daemon.proc.0.id();
    wait_frames(&socket, 0);
    let (mut rss, mut fd) = (Vec::new(), Vec::new());
    for cycle in 1..=restarts {
        // Kill the camera, wait until the daemon notices, leave it down briefly, restart.
        drop(cam);
        wait_for(
            || status(&socket)["state"] == "reconnecting",
            Duration::from_secs(10),
            "the daemon noticing the camera is gone",
        );
        std::thread::sleep(Duration::from_millis(300));
        cam = camera(port, "ball");
        wait_frames(&socket, cycle);
        std::thread::sleep(Duration::from_secs(2));
        rss.push(rss_mb(pid));
        fd.push(fds(pid));
        assert!(
            daemon.proc.0.try_wait().unwrap().is_none(),
            "the daemon exited"
        );
    }
    let reconnects = status(&socket)["source"]["reconnects"].as_u64().unwrap();
    eprintln!(
        "soak: {restarts} camera restarts, {reconnects} reconnects in {:.0} s\n  RSS MB per restart: {}\n  fds per restart: {fd:?}",
        started.elapsed().as_secs_f64(),
        rss.iter()
            .map(|r| format!("{r:.1}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    drop(cam);
    drop(daemon);
    assert!(
        reconnects >= restarts as u64,
        "{reconnects} reconnects for {restarts} restarts"
    );
    let (rss, fd) = (&rss[WARM_UP..], &fd[WARM_UP..]);
    let rss_slope = slope(rss);
    let (fd_first, fd_last) = (median(&fd[..5]), median(&fd[fd.len() - 5..]));
    eprintln!(
        "  after warm-up: RSS slope {rss_slope:.3} MB/reconnect, fds {fd_first} -> {fd_last}"
    );
    assert!(
        rss_slope < RSS_SLOPE_MB,
        "RSS grows {rss_slope:.2} MB per reconnect: {rss:?}"
    );
    assert!(
        fd_last <= fd_first,
        "file descriptors grow across reconnects: {fd:?}"
    );
}
