//! sd_notify (READY, WATCHDOG, STATUS) from a real daemon process, and the shipped systemd
//! unit checked by systemd-analyze.

mod common;

use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::{Duration, Instant};

use common::daemon::start;
use common::*;

#[test]
fn notify_ready_once_after_the_first_frame_then_watchdog_until_the_loop_stalls() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let listener = UnixDatagram::bind(&path).unwrap();
    listener
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let d = start(&[
        ("NOTIFY_SOCKET", path.to_str().unwrap()),
        ("WATCHDOG_USEC", "600000"),
        ("STYLERD_FAULT_STALL_AFTER_FRAMES", "120"),
    ]);
    let mut log: Vec<(Instant, String)> = Vec::new();
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    while started.elapsed() < Duration::from_secs(25) {
        if let Ok(n) = listener.recv(&mut buf) {
            log.push((
                Instant::now(),
                String::from_utf8_lossy(&buf[..n]).into_owned(),
            ));
        }
        let last_ping = log
            .iter()
            .rev()
            .find(|(_, m)| m.contains("WATCHDOG=1"))
            .map(|(t, _)| *t);
        if last_ping.is_some_and(|t| t.elapsed() > Duration::from_secs(3)) {
            break;
        }
    }
    drop(d);
    let ready: Vec<_> = log.iter().filter(|(_, m)| m.contains("READY=1")).collect();
    assert_eq!(ready.len(), 1, "READY=1 exactly once: {log:?}");
    let pings: Vec<Instant> = log
        .iter()
        .filter(|(_, m)| m.contains("WATCHDOG=1"))
        .map(|(t, _)| *t)
        .collect();
    assert!(pings.len() >= 3, "periodic WATCHDOG=1 expected: {log:?}");
    let ready_at = ready[0].0;
    assert!(
        pings.iter().filter(|t| **t > ready_at).count() >= 1,
        "watchdog pings continue after READY"
    );
    let last = *pings.last().unwrap();
    assert!(
        last.elapsed() > Duration::from_secs(2),
        "pings must stop once the frame loop is stalled"
    );
    assert!(
        log.iter().any(|(_, m)| m.starts_with("STATUS=")),
        "STATUS= lines carry fps/latency"
    );
}

#[test]
fn the_systemd_unit_verifies() {
    let Ok(out) = Command::new("systemd-analyze").arg("--version").output() else {
        panic!("systemd-analyze is missing: `make deps` installs the systemd package");
    };
    assert!(out.status.success());
    let dir = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string(root().join("systemd/stylerd.service")).unwrap();
    // verify checks that ExecStart exists: point it at the binary under test.
    let unit = unit.replace("/usr/local/bin/stylerd", bin().to_str().unwrap());
    let path = dir.path().join("stylerd.service");
    std::fs::write(&path, unit).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", path.to_str().unwrap()])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "systemd-analyze verify failed: {text}"
    );
    let complaints: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("stylerd.service"))
        .collect();
    assert!(complaints.is_empty(), "{complaints:?}");
}
