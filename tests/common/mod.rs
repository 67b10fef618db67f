//! Shared helpers for the integration tests: paths, real decoding of recorded files, a
//! reference frame from a real `videotestsrc`, and picture comparisons.
#![allow(dead_code)]

pub mod daemon;
pub mod http;
pub mod photos;
pub mod socket;
pub mod web;

// Not every test binary uses all three.
#[allow(unused_imports)]
pub use socket::{Client, processed, status};

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use stylerd::config::{EngineConfig, Size};
use stylerd::engine::{self, StageTimes};
use stylerd::frame::RgbImage;
use stylerd::style::StyleSpec;

/// Writes `dir/c.toml` for a daemon under test: `[control]` with `control`, a null output
/// with snapshots in `dir/snaps`, an empty sysfs tree (no power sensor, whatever this host
/// exposes: RAPL...), then `tables` (whole TOML tables, e.g. `[http]`).
pub fn write_test_config(dir: &Path, control: &str, tables: &str) -> PathBuf {
    let config = dir.join("c.toml");
    let sys = dir.join("sys");
    std::fs::create_dir(&sys).unwrap();
    std::fs::write(
        &config,
        format!(
            "[control]\n{control}\n[output]\nuris = [\"null://\"]\nsnapshot-dir = \"{}\"\n\
             [monitor]\nsysfs-root = \"{}\"\n{tables}",
            dir.join("snaps").display(),
            sys.display()
        ),
    )
    .unwrap();
    config
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_stylerd"))
}

/// The real engine configuration used by tests (`make models` must have run).
pub fn engine_config(size: Size) -> EngineConfig {
    let c = EngineConfig {
        models_dir: root().join("engines"),
        size,
        threads: 2,
        ..Default::default()
    };
    assert!(
        c.models_dir.join("multistyle26.onnx").is_file(),
        "engines/multistyle26.onnx is missing: run `make models` (make test does)"
    );
    c
}

/// A free TCP port on 127.0.0.1 (bound then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs a `gst-launch` style description ending in `appsink name=out` (RGB) and returns
/// every frame it produces, or fails after `timeout`.
pub fn collect_frames(description: &str, max: usize, timeout: Duration) -> Vec<RgbImage> {
    collect_timed_frames(description, max, timeout)
        .into_iter()
        .map(|(_, image)| image)
        .collect()
}

/// [`collect_frames`], each frame with its buffer timestamp in seconds (NaN without one).
pub fn collect_timed_frames(
    description: &str,
    max: usize,
    timeout: Duration,
) -> Vec<(f64, RgbImage)> {
    gst::init().unwrap();
    let pipeline = gst::parse::launch(description)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let sink = pipeline
        .by_name("out")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let deadline = Instant::now() + timeout;
    let mut frames = Vec::new();
    while frames.len() < max && Instant::now() < deadline {
        match sink.try_pull_sample(gst::ClockTime::from_mseconds(200)) {
            Some(sample) => {
                let info = gstreamer_video::VideoInfo::from_caps(sample.caps().unwrap()).unwrap();
                let buffer = sample.buffer().unwrap();
                let pts = buffer.pts().map_or(f64::NAN, |t| t.nseconds() as f64 / 1e9);
                let map = buffer.map_readable().unwrap();
                let image = RgbImage::from_strided(
                    info.width(),
                    info.height(),
                    info.stride()[0] as usize,
                    &map,
                )
                .unwrap();
                frames.push((pts, image));
            }
            None if sink.is_eos() => break,
            None => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    frames
}

/// The decoding pipeline for a recorded Matroska file.
fn mkv_decoder(path: &Path) -> String {
    format!(
        "filesrc location=\"{}\" ! matroskademux ! h264parse ! avdec_h264 ! videoconvert ! \
         video/x-raw,format=RGB ! appsink name=out sync=false",
        path.display()
    )
}

/// Decodes every frame of a recorded Matroska file.
pub fn decode_mkv(path: &Path) -> Vec<RgbImage> {
    collect_frames(&mkv_decoder(path), usize::MAX, Duration::from_secs(60))
}

/// One frame of a static `videotestsrc` pattern at `size`, through the same scaler path.
pub fn pattern_frame(pattern: &str, size: Size) -> RgbImage {
    collect_frames(
        &format!(
            "videotestsrc pattern={pattern} num-buffers=1 ! videoconvert ! videoscale ! \
             video/x-raw,format=RGB,width={},height={},pixel-aspect-ratio=1/1 ! appsink name=out sync=false",
            size.width, size.height
        ),
        1,
        Duration::from_secs(10),
    )
    .pop()
    .unwrap()
}

/// The engine run directly on a picture.
pub fn stylize_direct(image: &RgbImage, style: &str) -> RgbImage {
    let size = Size {
        width: image.width,
        height: image.height,
    };
    let mut engine = engine::open(&engine_config(size), &StyleSpec::parse(style).unwrap()).unwrap();
    engine.stylize(image, &mut StageTimes::default()).unwrap()
}

/// Mean absolute difference per channel value, 0..255.
pub fn mean_abs_diff(a: &RgbImage, b: &RgbImage) -> f64 {
    assert_eq!((a.width, a.height), (b.width, b.height));
    mean_abs_diff_bytes(&a.data, &b.data)
}

/// Segment files matching a recording's `%05d` pattern, in order.
pub fn segments(pattern: &Path) -> Vec<PathBuf> {
    let name = pattern
        .file_name()
        .unwrap()
        .to_string_lossy()
        .replace("%05d", "");
    let (prefix, suffix) = name
        .split_once('.')
        .map(|(p, s)| (p.to_string(), format!(".{s}")))
        .unwrap();
    let mut found: Vec<PathBuf> = std::fs::read_dir(pattern.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with(&prefix) && n.ends_with(&suffix)
        })
        .collect();
    found.sort();
    found
}

/// Runs the stylerd binary and returns (exit code, stdout, stderr).
pub fn stylerd(args: &[&str], cwd: &Path) -> (i32, String, String) {
    let out = Command::new(bin())
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn wait_for(mut ok: impl FnMut() -> bool, limit: Duration, what: &str) {
    let started = Instant::now();
    while !ok() {
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A child process killed and reaped on drop, whatever happens.
pub struct Proc(pub std::process::Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        unsafe { libc::kill(self.0.id() as i32, sig) };
    }
}

/// Starts `stylerd camera` (320x180, `pattern`) on `port` and waits until it accepts
/// connections.
pub fn camera(port: u16, pattern: &str) -> Proc {
    let child = Command::new(bin())
        .args([
            "camera",
            "--port",
            &port.to_string(),
            "--size",
            "320x180",
            "--pattern",
            pattern,
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let cam = Proc(child);
    wait_for(
        || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
        Duration::from_secs(10),
        "camera port",
    );
    cam
}

/// Starts `stylerd run --socket SOCKET ARGS...` from the repository root with `env` added,
/// and waits until its status socket answers. Killed and reaped on drop.
pub fn spawn_daemon(args: &[&str], socket: &Path, env: &[(&str, &str)]) -> Proc {
    let mut cmd = Command::new(bin());
    cmd.arg("run").arg("--socket").arg(socket).args(args);
    // Tests run side by side: no daemon takes the default dashboard port unless asked.
    if !args.contains(&"--http") {
        cmd.args(["--http", "off"]);
    }
    cmd.current_dir(root())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let daemon = Proc(cmd.spawn().unwrap());
    wait_for(
        || UnixStream::connect(socket).is_ok(),
        Duration::from_secs(20),
        "daemon socket",
    );
    daemon
}

/// A daemon (child process) reading `rtsp://127.0.0.1:PORT/camera` at 160x96 and recording
/// into its own temp folder, with a status socket there.
pub struct CameraDaemon {
    pub proc: Proc,
    pub socket: PathBuf,
    pub dir: tempfile::TempDir,
}

/// Starts a [`CameraDaemon`] recording to `<dir>/<recording>` (`rec.mkv`, ...).
pub fn camera_daemon(port: u16, recording: &str) -> CameraDaemon {
    camera_daemon_with_outputs(port, recording, &[])
}

/// [`camera_daemon`] with more `--output` URIs beside the recording (e.g. an RTSP output).
pub fn camera_daemon_with_outputs(port: u16, recording: &str, more: &[&str]) -> CameraDaemon {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("s.sock");
    let source = format!("rtsp://127.0.0.1:{port}/camera");
    let output = format!("file://{}", dir.path().join(recording).display());
    let mut args = vec![
        "--config",
        "/dev/null",
        "--size",
        "160x96",
        "--source",
        &source,
        "--output",
        &output,
    ];
    for uri in more {
        args.extend(["--output", uri]);
    }
    let proc = spawn_daemon(&args, &socket, &[]);
    CameraDaemon { proc, socket, dir }
}

/// Mean absolute difference of two equally long byte buffers, 0..255.
pub fn mean_abs_diff_bytes(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| x.abs_diff(*y) as u64)
        .sum::<u64>() as f64
        / a.len() as f64
}

/// Waits (up to 20 s) until something accepts TCP connections on 127.0.0.1:`port`.
pub fn wait_port(port: u16) {
    wait_for(
        || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
        Duration::from_secs(20),
        &format!("a server on port {port}"),
    );
}

/// A real RTSP client (rtspsrc ! decodebin) that keeps its connection until dropped and
/// counts the frames it decodes.
pub struct Viewer {
    pipeline: gst::Pipeline,
    frames: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Viewer {
    pub fn connect(url: &str) -> Self {
        gst::init().unwrap();
        let pipeline = gst::parse::launch(&format!(
            "rtspsrc location={url} latency=0 ! decodebin ! fakesink name=out sync=false signal-handoffs=true"
        ))
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
        let frames = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = frames.clone();
        pipeline
            .by_name("out")
            .unwrap()
            .connect("handoff", false, move |_| {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                None
            });
        pipeline.set_state(gst::State::Playing).unwrap();
        Self { pipeline, frames }
    }

    /// Frames decoded so far.
    pub fn frames(&self) -> u64 {
        self.frames.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Ok once a decoded frame reached the sink, or the error the client got.
    pub fn outcome(&self, timeout: Duration) -> Result<(), String> {
        let bus = self.pipeline.bus().unwrap();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(100))
                && let gst::MessageView::Error(e) = msg.view()
            {
                return Err(format!("{} ({:?})", e.error(), e.debug()));
            }
            if self.frames() > 0 {
                return Ok(());
            }
        }
        Err("no frame and no error before the timeout".into())
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// Every frame of a recorded Matroska file with its timestamp in seconds.
pub fn decode_mkv_timed(path: &Path) -> Vec<(f64, RgbImage)> {
    collect_timed_frames(&mkv_decoder(path), usize::MAX, Duration::from_secs(60))
}

/// Writes a real H.264 video file (`.mp4` or `.mkv` by extension) of `frames` frames of a
/// `videotestsrc` pattern at `size` and `fps`, and waits until it is finished.
pub fn write_clip(path: &Path, pattern: &str, frames: u32, size: Size, fps: u32) {
    gst::init().unwrap();
    let mux = if path.extension().is_some_and(|e| e == "mkv") {
        "matroskamux"
    } else {
        "mp4mux"
    };
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc pattern={pattern} num-buffers={frames} ! \
         video/x-raw,width={},height={},framerate={fps}/1 ! videoconvert ! \
         x264enc speed-preset=ultrafast ! h264parse ! {mux} ! filesink location=\"{}\"",
        size.width,
        size.height,
        path.display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(60),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .expect("the clip was not written within 60 s");
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(
        matches!(msg.view(), gst::MessageView::Eos(_)),
        "writing {}: {msg:?}",
        path.display()
    );
}

/// Every frame of a video file (any container decodebin reads), as RGB.
pub fn decode_video(path: &Path) -> Vec<RgbImage> {
    collect_frames(
        &format!(
            "filesrc location=\"{}\" ! decodebin ! videoconvert ! video/x-raw,format=RGB ! \
             appsink name=out sync=false",
            path.display()
        ),
        usize::MAX,
        Duration::from_secs(60),
    )
}

/// Reads a PNG/JPEG into an [`RgbImage`].
pub fn read_rgb(path: &Path) -> RgbImage {
    let img = image::open(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .to_rgb8();
    RgbImage::new(img.width(), img.height(), img.into_raw()).unwrap()
}
