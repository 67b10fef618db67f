//! A real daemon process on a static test pattern (SMPTE bars at 160x96) with control allowed
//! on its status socket, for tests/socket.rs and tests/systemd.rs.

use std::path::PathBuf;

use super::{Proc, spawn_daemon, write_test_config};

/// A daemon on a static test pattern with control allowed, and its scratch folder.
pub struct Daemon {
    pub proc: Proc,
    pub socket: PathBuf,
    pub dir: tempfile::TempDir,
}

pub fn start(extra_env: &[(&str, &str)]) -> Daemon {
    start_with(extra_env, "")
}

pub fn start_with(extra_env: &[(&str, &str)], extra_control: &str) -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("stylerd.sock");
    let config = write_test_config(
        dir.path(),
        &format!("allow-control = true\n{extra_control}"),
        "",
    );
    let args = [
        "--config",
        config.to_str().unwrap(),
        "--source",
        "test://?pattern=smpte",
        "--size",
        "160x96",
    ];
    let proc = spawn_daemon(&args, &socket, extra_env);
    Daemon { proc, socket, dir }
}
