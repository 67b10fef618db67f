//! A real daemon process with its dashboard on a free loopback port, for the HTTP tests
//! (tests/http.rs, tests/http_guard.rs), and the pictures they send and read back.

use std::path::PathBuf;
use std::time::Duration;

use super::http::{self, get};
use super::{Proc, spawn_daemon, status, wait_for, write_test_config};

/// A daemon with its dashboard on a free loopback port.
pub struct Web {
    pub daemon: Proc,
    pub socket: PathBuf,
    pub addr: String,
    pub dir: tempfile::TempDir,
}

/// Starts a daemon on `source` at 160x96 with `[control]` and `[http]` extras.
pub fn start(source: &str, control: &str, http_extra: &str) -> Web {
    start_with(source, &["--size", "160x96"], control, http_extra)
}

/// Starts a daemon on `source` with more command-line arguments (`--size 160x96` or
/// another size among them) and `[control]` and `[http]` extras.
pub fn start_with(source: &str, args: &[&str], control: &str, http_extra: &str) -> Web {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("s.sock");
    let config = write_test_config(
        dir.path(),
        control,
        &format!("[http]\nlisten = \"127.0.0.1:0\"\n{http_extra}\n"),
    );
    let mut all = vec![
        "--config",
        config.to_str().unwrap(),
        "--source",
        source,
        "--http",
        "127.0.0.1:0",
    ];
    all.extend_from_slice(args);
    let proc = spawn_daemon(&all, &socket, &[]);
    let url = status(&socket)["http"].as_str().unwrap().to_string();
    Web {
        daemon: proc,
        socket,
        addr: http::authority(&url),
        dir,
    }
}

pub fn start_control(http_extra: &str) -> Web {
    start("test://?pattern=ball", "allow-control = true", http_extra)
}

pub fn wait_running(w: &Web) {
    wait_for(
        || get(&w.addr, "/readyz").code == 200,
        Duration::from_secs(30),
        "readyz 200",
    );
}

pub fn png_of(width: u32, height: u32) -> Vec<u8> {
    let data: Vec<u8> = (0..width * height * 3)
        .map(|i| ((i / 3) % 255) as u8 ^ ((i % 3) as u8 * 60))
        .collect();
    let img = image::RgbImage::from_raw(width, height, data).unwrap();
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

pub fn decode(bytes: &[u8]) -> image::RgbImage {
    image::load_from_memory(bytes)
        .unwrap_or_else(|e| panic!("not a picture ({e}): {} bytes", bytes.len()))
        .to_rgb8()
}
