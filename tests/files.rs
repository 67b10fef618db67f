//! A file source is read whole: the real daemon on a real H.264 clip, with the config's
//! defaults (no `mode`, no `[governor] enabled`), writes every frame at the configured
//! size, with `on-eos = "stop"` and with `"loop"`, and shows its progress.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::Value;
use stylerd::config::Size;

/// Frames in the test clip.
const CLIP_FRAMES: u32 = 30;

/// A 320x180 clip of `CLIP_FRAMES` frames and a config reading it at 160x96 into
/// `<dir>/out.mkv`, with a latency budget no machine meets (1 ms), so a governor that
/// were on would step down.
fn setup(dir: &Path, on_eos: &str) -> std::path::PathBuf {
    let clip = dir.join("clip.mp4");
    let size = Size {
        width: 320,
        height: 180,
    };
    write_clip(&clip, "ball", CLIP_FRAMES, size, 30);
    let config = dir.join("c.toml");
    std::fs::write(
        &config,
        format!(
            "[source]\nuri = \"file://{}\"\non-eos = \"{on_eos}\"\n\
             [engine]\nsize = \"160x96\"\n\
             [output]\nuris = [\"file://{}\"]\n\
             [monitor]\nbudget-latency-ms = 1.0\nsysfs-root = \"{}\"\n",
            clip.display(),
            dir.join("out.mkv").display(),
            dir.display(),
        ),
    )
    .unwrap();
    config
}

fn recorded(dir: &Path) -> Vec<stylerd::frame::RgbImage> {
    let files = segments(&dir.join("out-%05d.mkv"));
    assert!(!files.is_empty(), "no recording in {}", dir.display());
    files.iter().flat_map(|f| decode_mkv(f)).collect()
}

#[test]
fn every_frame_of_a_file_comes_out_at_the_configured_size_then_it_stops() {
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path(), "stop");
    let socket = dir.path().join("s.sock");
    let (code, out, err) = stylerd(
        &[
            "run",
            "--http",
            "off",
            "--config",
            config.to_str().unwrap(),
            "--socket",
            socket.to_str().unwrap(),
            "--report",
        ],
        &root(),
    );
    assert_eq!(code, 0, "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (
            &report["captured"],
            &report["processed"],
            &report["dropped"]
        ),
        (
            &Value::from(CLIP_FRAMES),
            &Value::from(CLIP_FRAMES),
            &Value::from(0)
        ),
        "{report}"
    );
    let frames = recorded(dir.path());
    assert_eq!(
        frames.len(),
        CLIP_FRAMES as usize,
        "every frame is recorded"
    );
    assert!(frames.iter().all(|f| (f.width, f.height) == (160, 96)));
}

#[test]
fn a_looping_file_keeps_every_frame_of_every_pass_at_full_size_with_progress() {
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path(), "loop");
    let socket = dir.path().join("s.sock");
    // Three passes and a half, then stop.
    let frames = CLIP_FRAMES as u64 * 7 / 2;
    let child = Command::new(bin())
        .args(["run", "--http", "off", "--config", config.to_str().unwrap()])
        .args(["--socket", socket.to_str().unwrap()])
        .args(["--frames", &frames.to_string(), "--report"])
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut daemon = Proc(child);
    wait_for(
        || std::os::unix::net::UnixStream::connect(&socket).is_ok(),
        Duration::from_secs(20),
        "daemon socket",
    );
    // While it runs: progress through the pass, and a governor that does not step.
    let mut seen = None;
    wait_for(
        || {
            if std::os::unix::net::UnixStream::connect(&socket).is_err() {
                return true; // finished already
            }
            let s = status(&socket);
            if s["progress"]["frames_total"].is_u64() {
                seen = Some(s);
                return true;
            }
            false
        },
        Duration::from_secs(60),
        "a status with progress",
    );
    let status = seen.expect("the run ended before a status showed its progress");
    let p = &status["progress"];
    assert_eq!(p["frames_total"], CLIP_FRAMES, "{p}");
    assert!(
        p["frames_done"].as_u64().unwrap() <= CLIP_FRAMES as u64,
        "{p}"
    );
    let g = &status["governor"];
    assert_eq!(
        (&g["level"], &g["pinned"]),
        (&Value::from(0), &Value::from(true)),
        "{g}"
    );
    let out = daemon.0.wait_with_output_ref();
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["processed"], frames, "{report}");
    assert_eq!(report["dropped"], 0, "{report}");
    let recorded = recorded(dir.path());
    assert_eq!(recorded.len() as u64, frames, "every frame of every pass");
    assert!(recorded.iter().all(|f| (f.width, f.height) == (160, 96)));
    drop(daemon);
}

/// Waits for a child whose stdout is piped and returns that output.
trait WaitOutput {
    fn wait_with_output_ref(&mut self) -> String;
}

impl WaitOutput for std::process::Child {
    fn wait_with_output_ref(&mut self) -> String {
        use std::io::Read;
        let mut text = String::new();
        self.stdout
            .take()
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        let status = self.wait().unwrap();
        assert!(status.success(), "the daemon failed: {status}");
        text
    }
}
