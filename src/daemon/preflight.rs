//! Everything that can be checked about a config before anything starts, as one list of
//! sentences: `stylerd check-config` prints them, `run` refuses to start on the first, and
//! a reload (SIGHUP) is refused as a whole on any. Nothing here opens a pipeline, a
//! session or a socket: the model's file is read (its sha256), the rest is looked at.

use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use crate::config::{Backend, Config, OutputUri, SourceUri};
use crate::control;
use crate::engine::onnx;
use crate::model::Manifest;

/// The longest Unix socket path the kernel takes (`sun_path` is 108 bytes with its NUL).
const SOCKET_PATH_MAX: usize = 107;

/// One sentence per problem; empty when `run` would start.
pub fn problems(config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    if let Err(e) = config.check() {
        out.push(e.to_string());
    }
    model(config, &mut out);
    source(&config.source.uri, &mut out);
    outputs(config, &mut out);
    socket(
        &control::default_socket_path(config.control.socket.as_deref()),
        &mut out,
    );
    out
}

/// `config` with its absolute paths moved under `root`, to check a staged install
/// (`make install DESTDIR=...`) as the system will see it. Relative paths stay.
pub fn rebased(config: &Config, root: &Path) -> Config {
    let under = |p: &Path| match p.strip_prefix("/") {
        Ok(rel) => root.join(rel),
        Err(_) => p.to_path_buf(),
    };
    let mut c = config.clone();
    c.engine.models_dir = under(&c.engine.models_dir);
    c.engine.onnxruntime = c.engine.onnxruntime.as_deref().map(under);
    c.engine.plan = c.engine.plan.as_deref().map(under);
    c.source.uri = match &c.source.uri {
        SourceUri::File(p) => SourceUri::File(under(p)),
        SourceUri::V4l2(p) => SourceUri::V4l2(under(p)),
        other => other.clone(),
    };
    for uri in &mut c.output.uris {
        if let OutputUri::File(p) = uri {
            *p = under(p);
        }
    }
    c.output.snapshot_dir = c.output.snapshot_dir.as_deref().map(under);
    c.control.socket = c.control.socket.as_deref().map(under);
    c.monitor.sysfs_root = under(&c.monitor.sysfs_root);
    c
}

fn model(config: &Config, out: &mut Vec<String>) {
    let e = &config.engine;
    let manifest = match Manifest::find(&e.models_dir, &e.model) {
        Ok(m) => m,
        Err(err) => return out.push(err.to_string()),
    };
    if let Err(err) = manifest.verify_file() {
        out.push(err.to_string());
    }
    if let Err(err) = manifest.accepts(e.size.width, e.size.height) {
        out.push(format!("{err}; set engine.size to match"));
    }
    if let Err(err) = manifest.style_weights(&e.style) {
        out.push(format!("engine.style: {err}"));
    }
    match e.backend {
        Backend::Onnx => {
            if let Err(err) = onnx::locate_library(e.onnxruntime.as_deref()) {
                out.push(err.to_string());
            }
        }
        Backend::Tensorrt => {
            if let Some(plan) = e.plan.as_deref().filter(|p| !p.is_file()) {
                out.push(format!("engine.plan {} does not exist", plan.display()));
            }
        }
    }
}

fn source(uri: &SourceUri, out: &mut Vec<String>) {
    match uri {
        SourceUri::File(p) if !p.is_file() => {
            out.push(format!("source file {} does not exist", p.display()))
        }
        SourceUri::V4l2(dev) if !dev.exists() => {
            out.push(format!("video device {} does not exist", dev.display()))
        }
        _ => {}
    }
}

fn outputs(config: &Config, out: &mut Vec<String>) {
    for uri in &config.output.uris {
        if let OutputUri::File(path) = uri {
            folder_usable(path.parent(), "output", out);
        }
    }
    if let Some(dir) = &config.output.snapshot_dir {
        folder_usable(Some(dir), "output.snapshot-dir", out);
    }
}

/// A folder the daemon writes into: it exists as a folder, or its nearest existing
/// ancestor is a folder it can be created in (the daemon creates it).
fn folder_usable(dir: Option<&Path>, what: &str, out: &mut Vec<String>) {
    let dir = dir
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let existing = dir
        .ancestors()
        .find(|a| a.exists())
        .unwrap_or(Path::new("."));
    if !existing.is_dir() {
        out.push(format!(
            "{what} folder {} cannot be created: {} is not a folder",
            dir.display(),
            existing.display()
        ));
    }
}

fn socket(path: &Path, out: &mut Vec<String>) {
    if path.as_os_str().len() > SOCKET_PATH_MAX {
        out.push(format!(
            "control.socket {} is longer than the {SOCKET_PATH_MAX} bytes a Unix socket path may have",
            path.display()
        ));
        return;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_socket() => out.push(format!(
            "control.socket {} exists and is not a socket; it is never deleted",
            path.display()
        )),
        Ok(_) => {}
        Err(_) => folder_usable(path.parent(), "control.socket", out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_regular_file_in_the_socket_s_place_and_missing_files_are_problems() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("s.sock");
        std::fs::write(&blocker, "x").unwrap();
        let mut out = Vec::new();
        socket(&blocker, &mut out);
        source(&SourceUri::File(dir.path().join("none.mp4")), &mut out);
        folder_usable(Some(&blocker.join("sub")), "output", &mut out);
        socket(&Path::new("/tmp").join("x".repeat(120)), &mut out);
        assert_eq!(out.len(), 4, "{out:?}");
        assert!(out[0].contains("is not a socket"), "{out:?}");
        assert!(out[1].contains("none.mp4 does not exist"), "{out:?}");
        assert!(out[2].contains("is not a folder"), "{out:?}");
        assert!(out[3].contains("longer than the 107 bytes"), "{out:?}");
        let mut ok = Vec::new();
        socket(&dir.path().join("new/dir/s.sock"), &mut ok);
        assert!(ok.is_empty(), "{ok:?}");
    }
}
