//! Recordings: rotation, the disk budget, never overwriting, and a full disk that stops
//! only the recording while streaming goes on.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::json;
use stylerd::config::{Config, OutputUri, Size};
use stylerd::daemon::{self, RunOptions};

fn mkv_files(dir: &Path, prefix: &str) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().len(),
            )
        })
        .filter(|(n, _)| n.starts_with(prefix) && n.ends_with(".mkv"))
        .collect();
    v.sort();
    v
}

#[test]
fn segments_rotate_and_the_oldest_go_past_the_disk_budget() {
    let dir = tempfile::tempdir().unwrap();
    // A recording from an earlier run, and someone else's file.
    std::fs::write(
        dir.path().join("rec-20200101-000000-00000.mkv"),
        vec![0u8; 700_000],
    )
    .unwrap();
    std::fs::write(
        dir.path().join("other-20200101-000000-00000.mkv"),
        vec![0u8; 700_000],
    )
    .unwrap();
    let mut c = Config::default();
    c.source.uri = "test://?pattern=snow".parse().unwrap(); // noise: ~250 kB/s at 2 Mbit/s
    c.output.uris = vec![OutputUri::File(dir.path().join("rec.mkv"))];
    c.output.segment_s = 1;
    c.output.max_disk_mb = 1;
    c.engine = engine_config(Size {
        width: 160,
        height: 96,
    });
    let report = daemon::run(
        &c,
        RunOptions {
            max_frames: Some(180),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(report.processed, 180);
    let files = mkv_files(dir.path(), "rec-");
    assert!(
        !files.iter().any(|(n, _)| n.starts_with("rec-2020")),
        "the oldest recording was deleted first: {files:?}"
    );
    assert!(files.len() >= 2, "segments rotate every second: {files:?}");
    let total: u64 = files.iter().map(|(_, n)| n).sum();
    let largest = files.iter().map(|(_, n)| *n).max().unwrap();
    assert!(
        total <= 1024 * 1024 + largest,
        "over the budget: {total} bytes in {files:?}"
    );
    assert!(
        dir.path().join("other-20200101-000000-00000.mkv").exists(),
        "other names are never touched"
    );
    // Every segment left decodes.
    for (name, _) in &files {
        assert!(
            !decode_mkv(&dir.path().join(name)).is_empty(),
            "{name} does not decode"
        );
    }
}

#[test]
fn a_second_run_never_overwrites_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Config::default();
    c.source.uri = "test://?pattern=smpte&num-buffers=5".parse().unwrap();
    c.source.mode = Some(stylerd::config::SourceMode::EveryFrame);
    c.output.uris = vec![OutputUri::File(dir.path().join("rec.mkv"))];
    c.engine = engine_config(Size {
        width: 160,
        height: 96,
    });
    let a = daemon::run(&c, RunOptions::default())
        .unwrap()
        .file_pattern
        .unwrap();
    let b = daemon::run(&c, RunOptions::default())
        .unwrap()
        .file_pattern
        .unwrap();
    assert_ne!(a, b);
    let files = mkv_files(dir.path(), "rec-");
    assert_eq!(files.len(), 2, "{files:?}");
    for (name, _) in files {
        assert_eq!(decode_mkv(&dir.path().join(name)).len(), 5);
    }
}

/// Mounts a tiny tmpfs (root only); None where this machine does not allow it.
fn tiny_disk() -> Option<(tempfile::TempDir, impl Drop)> {
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
        .arg(dir.path())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let guard = Unmount(dir.path().into());
    ok.then_some((dir, guard))
}

#[test]
fn a_full_disk_stops_recording_but_not_streaming() {
    let Some((disk, _unmount)) = tiny_disk() else {
        stylerd_testkit::skip(
            stylerd_testkit::Kind::Privilege,
            "cannot mount a tmpfs here (needs root); full-disk behaviour not exercised",
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("s.sock");
    let port = free_port();
    let url = format!("rtsp://127.0.0.1:{port}/stylized");
    let output = format!("file://{}", disk.path().join("rec.mkv").display());
    let args = [
        "--config",
        "/dev/null",
        "--source",
        "test://?pattern=snow",
        "--size",
        "160x96",
        "--output",
        &output,
        "--output",
        &url,
    ];
    let mut daemon = spawn_daemon(&args, &socket, &[]);
    wait_port(port);
    let viewer = Viewer::connect(&url);
    assert_eq!(viewer.outcome(Duration::from_secs(20)), Ok(()));
    let status = || Client::connect(&socket).ask(json!({"cmd": "status"}));
    wait_for(
        || status()["recording"]["error"].is_string(),
        Duration::from_secs(30),
        "recording error",
    );
    let s = status();
    // Written only when the file sink's error is GST_RESOURCE_ERROR_NO_SPACE_LEFT (ENOSPC).
    assert!(
        s["recording"]["error"]
            .as_str()
            .unwrap()
            .contains("disk full (ENOSPC)"),
        "{s}"
    );
    let (before, seen) = (s["frames"]["processed"].as_u64().unwrap(), viewer.frames());
    std::thread::sleep(Duration::from_secs(2));
    let after = status();
    assert_eq!(after["state"], "running", "{after}");
    // The test pattern runs at 30 fps: 2 s bring ~60 frames; 10 leaves room for a slow CI.
    assert!(
        after["frames"]["processed"].as_u64().unwrap() > before + 10,
        "frames stopped: {after}"
    );
    assert!(
        after["frames"]["encoded"].as_u64().unwrap() > before,
        "encoding stopped: {after}"
    );
    assert!(
        viewer.frames() > seen + 10,
        "the RTSP viewer got {} frames in 2 s after the disk filled",
        viewer.frames() - seen
    );
    assert!(daemon.0.try_wait().unwrap().is_none(), "the daemon exited");
}
