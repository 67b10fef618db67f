//! Daemon conventions on the real daemon: SIGHUP reloads the config file (style, size and
//! outputs applied without a restart; a broken file refused as a whole while streaming
//! goes on; a reload while the camera is away), `ctl set-style --save` writes the file
//! back keeping its comments, and `check-config` says what `run` would refuse.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

/// A daemon on a config file in its own folder (control allowed, no power sensor).
struct Daemon {
    proc: Proc,
    socket: PathBuf,
    config: PathBuf,
    dir: tempfile::TempDir,
}

/// The config file's text: `engine` and `output` lines given, the rest fixed.
fn config_text(dir: &Path, source: &str, engine: &str, outputs: &str) -> String {
    format!(
        "# stylerd test config: this comment must survive --save\n\
         [source]\nuri = \"{source}\"\n\n\
         [engine]\n{engine}\n\n\
         [output]\nuris = [{outputs}]\n\n\
         [control]\nallow-control = true  # keep\n\n\
         [monitor]\nsysfs-root = \"{}\"\n",
        dir.display()
    )
}

/// `{dir}` in `outputs` stands for the daemon's folder.
fn start(source: &str, engine: &str, outputs: &str) -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let outputs = &outputs.replace("{dir}", &dir.path().display().to_string());
    let config = dir.path().join("stylerd.toml");
    std::fs::write(&config, config_text(dir.path(), source, engine, outputs)).unwrap();
    let socket = dir.path().join("s.sock");
    let proc = spawn_daemon(&["--config", config.to_str().unwrap()], &socket, &[]);
    Daemon {
        proc,
        socket,
        config,
        dir,
    }
}

impl Daemon {
    fn status(&self) -> Value {
        status(&self.socket)
    }

    /// Sends SIGHUP and waits until the status shows the reload done or refused.
    fn reload(&self) -> Value {
        let before = self.status()["config"].clone();
        self.proc.signal(libc::SIGHUP);
        let mut after = Value::Null;
        wait_for(
            || {
                after = self.status();
                let c = &after["config"];
                c["reloads"] != before["reloads"] || c["reload_error"] != before["reload_error"]
            },
            Duration::from_secs(30),
            "the reload to finish",
        );
        after
    }

    fn wait_processed(&self, more_than: u64) {
        wait_for(
            || processed(&self.socket) > more_than,
            Duration::from_secs(60),
            &format!("more than {more_than} processed frames"),
        );
    }

    fn file_output(&self, name: &str) -> String {
        format!("\"file://{}\"", self.dir.path().join(name).display())
    }
}

#[test]
fn a_reload_applies_style_size_and_outputs_without_a_restart() {
    let d = start(
        "test://?pattern=smpte",
        "style = \"0\"\nsize = \"160x96\"",
        "\"file://{dir}/a.mkv\"",
    );
    d.wait_processed(5);
    let before = d.status();
    assert_eq!(before["config"]["reloads"], 0);
    assert_eq!(before["config"]["reload_error"], Value::Null);
    assert!(
        before["config"]["loaded_at"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    let sha = before["config"]["sha256"].as_str().unwrap().to_string();
    assert_eq!(sha.len(), 64);
    let pid = d.proc.0.id();

    let second = d.file_output("b.mkv");
    std::fs::write(
        &d.config,
        config_text(
            d.dir.path(),
            "test://?pattern=smpte",
            "style = \"5\"\nstrength = 0.5\npreserve-color = true\nsize = \"128x72\"",
            &second,
        ),
    )
    .unwrap();
    let s = d.reload();
    let c = &s["config"];
    assert_eq!(
        (&c["reload_error"], &c["reloads"]),
        (&Value::Null, &json!(1)),
        "{c}"
    );
    assert_ne!(c["sha256"], sha.as_str());
    assert_eq!(s["style"]["spec"], "5");
    assert_eq!(s["style"]["strength"], 0.5);
    assert_eq!(s["style"]["preserve_color"], true);
    assert_eq!(s["style"]["differs_from_file"], false);
    assert_eq!(s["engine"]["input"], json!([128, 72]));
    assert_eq!(s["outputs"], json!([second.trim_matches('"')]));
    // Same process, still streaming, at the new size.
    assert_eq!(d.proc.0.id(), pid);
    let n = processed(&d.socket);
    d.wait_processed(n + 10);
    d.proc.signal(libc::SIGTERM);
    let mut proc = d.proc;
    let _ = proc.0.wait();
    let a = segments(&d.dir.path().join("a-%05d.mkv"));
    let b = segments(&d.dir.path().join("b-%05d.mkv"));
    let (a, b): (Vec<_>, Vec<_>) = (
        a.iter().flat_map(|f| decode_mkv(f)).collect(),
        b.iter().flat_map(|f| decode_mkv(f)).collect(),
    );
    assert!(
        a.len() >= 5 && b.len() >= 10,
        "{} and {} frames",
        a.len(),
        b.len()
    );
    assert!(a.iter().all(|f| (f.width, f.height) == (160, 96)));
    assert!(b.iter().all(|f| (f.width, f.height) == (128, 72)));
}

#[test]
fn a_broken_config_is_refused_as_a_whole_and_streaming_goes_on() {
    let d = start(
        "test://?pattern=smpte",
        "style = \"0\"\nsize = \"160x96\"",
        "\"null://\"",
    );
    d.wait_processed(3);
    let before = d.status();
    let good = std::fs::read_to_string(&d.config).unwrap();
    for (broken, why) in [
        // A style the model does not have, beside a change that alone would be fine.
        (
            good.replace("style = \"0\"", "style = \"99\"\nstrength = 0.3"),
            "out of range",
        ),
        (good.replace("[engine]", "[engine\n"), "line"),
        (
            good.replace("size = \"160x96\"", "size = \"160x96\"\nmodel = \"nosuch\""),
            "not found",
        ),
    ] {
        let reloads = d.status()["config"]["reloads"].clone();
        std::fs::write(&d.config, &broken).unwrap();
        let s = d.reload();
        let error = s["config"]["reload_error"].as_str().unwrap_or_default();
        assert!(error.contains(why), "{why:?} not in {error:?}");
        // Nothing changed: same file digest, no reload counted, same style and strength.
        assert_eq!(s["config"]["sha256"], before["config"]["sha256"]);
        assert_eq!(s["config"]["reloads"], reloads);
        assert_eq!(
            (&s["style"]["spec"], &s["style"]["strength"]),
            (&json!("0"), &json!(1.0))
        );
        // The daemon keeps streaming.
        let n = processed(&d.socket);
        d.wait_processed(n + 3);
        // The good file back: the next reload clears the error.
        std::fs::write(&d.config, &good).unwrap();
        let s = d.reload();
        assert_eq!(s["config"]["reload_error"], Value::Null);
        assert_eq!(s["config"]["sha256"], before["config"]["sha256"]);
    }
}

#[test]
fn a_reload_while_the_camera_is_reconnecting_applies_and_streaming_resumes() {
    let port = free_port();
    let source = format!("rtsp://127.0.0.1:{port}/camera");
    let cam = camera(port, "smpte");
    let d = start(&source, "style = \"0\"\nsize = \"160x96\"", "\"null://\"");
    d.wait_processed(3);
    drop(cam);
    wait_for(
        || d.status()["state"] == "reconnecting",
        Duration::from_secs(30),
        "the daemon to notice the camera is gone",
    );
    let text = std::fs::read_to_string(&d.config).unwrap();
    std::fs::write(&d.config, text.replace("style = \"0\"", "style = \"3\"")).unwrap();
    let s = d.reload();
    assert_eq!(s["config"]["reload_error"], Value::Null, "{}", s["config"]);
    assert_eq!(s["style"]["spec"], "3");
    assert_eq!(s["state"], "reconnecting");
    let n = processed(&d.socket);
    let _cam = camera(port, "smpte");
    d.wait_processed(n + 3);
    let s = d.status();
    assert_eq!(
        (&s["state"], &s["style"]["spec"]),
        (&json!("running"), &json!("3"))
    );
}

#[test]
fn set_style_save_writes_the_file_keeping_comments_and_survives_a_restart() {
    let d = start(
        "test://?pattern=smpte",
        "# the style\nstyle = \"0\"  # index\nsize = \"160x96\"",
        "\"null://\"",
    );
    d.wait_processed(1);
    let sock = d.socket.to_str().unwrap();
    let ctl = |args: &[&str]| {
        let mut all = vec!["ctl", "--socket", sock, "set-style"];
        all.extend(args);
        stylerd(&all, &root())
    };
    let (code, out, err) = ctl(&["7", "--strength", "0.5", "--save"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"saved\":true"), "{out}");
    let text = std::fs::read_to_string(&d.config).unwrap();
    assert!(
        text.starts_with("# stylerd test config: this comment must survive --save\n"),
        "{text}"
    );
    assert!(
        text.contains("# the style\nstyle = \"7\"  # index\n"),
        "{text}"
    );
    assert!(
        text.contains("strength = 0.5\n") && text.contains("allow-control = true  # keep"),
        "{text}"
    );
    // The status document is rebuilt twice a second.
    wait_for(
        || d.status()["style"]["spec"] == "7",
        Duration::from_secs(5),
        "the status to show style 7",
    );
    let s = d.status();
    assert_eq!(
        (&s["style"]["strength"], &s["style"]["differs_from_file"]),
        (&json!(0.5), &json!(false))
    );
    // Without --save the file stays and the status says the running style differs.
    let (code, _, err) = ctl(&["3"]);
    assert_eq!(code, 0, "{err}");
    wait_for(
        || d.status()["style"]["spec"] == "3",
        Duration::from_secs(5),
        "the status to show style 3",
    );
    assert_eq!(d.status()["style"]["differs_from_file"], true);
    assert!(
        std::fs::read_to_string(&d.config)
            .unwrap()
            .contains("style = \"7\"")
    );
    // A bad strength is refused with one sentence and changes nothing.
    let (code, _, err) = ctl(&["--strength", "1.5", "--save"]);
    assert_eq!(code, 1);
    assert!(err.contains("strength must be from 0 to 1"), "{err}");
    assert!(
        std::fs::read_to_string(&d.config)
            .unwrap()
            .contains("strength = 0.5\n")
    );
    // After a restart the saved style is back.
    let Daemon {
        proc,
        socket,
        config,
        dir,
    } = d;
    drop(proc);
    let _ = std::fs::remove_file(&socket);
    let _again = spawn_daemon(&["--config", config.to_str().unwrap()], &socket, &[]);
    let s = status(&socket);
    assert_eq!(
        (&s["style"]["spec"], &s["style"]["strength"]),
        (&json!("7"), &json!(0.5))
    );
    assert_eq!(s["style"]["differs_from_file"], false);
    drop(dir);
}

#[test]
fn check_config_says_ok_or_one_sentence_per_problem() {
    let (code, out, err) = stylerd(&["check-config", "systemd/stylerd.toml"], &root());
    assert_eq!((code, out.trim()), (0, "ok"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("blocker");
    std::fs::write(&blocker, "a regular file").unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        format!(
            "[source]\nuri = \"file:///no/such/clip.mp4\"\n[engine]\nstyle = \"40\"\n\
             [control]\nsocket = \"{}\"\n[output]\nuris = [\"file://{}/sub/x.mkv\"]\n",
            blocker.display(),
            blocker.display()
        ),
    )
    .unwrap();
    let (code, out, err) = stylerd(&["check-config", bad.to_str().unwrap()], &root());
    assert_eq!(code, 1, "{out}{err}");
    assert!(!err.contains("panicked"));
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 4, "{err}");
    for want in [
        "style index 40 is out of range",
        "source file /no/such/clip.mp4 does not exist",
        "is not a socket",
        "cannot be created",
    ] {
        assert!(
            lines.iter().any(|l| l.contains(want)),
            "{want:?} missing: {err}"
        );
    }
    // A file that does not parse is one sentence too.
    std::fs::write(&bad, "[engine\n").unwrap();
    let (code, _, err) = stylerd(&["check-config", bad.to_str().unwrap()], &root());
    assert_eq!((code, err.lines().count()), (1, 1), "{err}");
}

#[test]
fn strength_and_preserve_color_on_the_socket_change_the_running_output() {
    // A static pattern without smpte's noise block, so every frame equals the reference.
    let d = start(
        "test://?pattern=colors",
        "style = \"0\"\nsize = \"160x96\"",
        "\"null://\"",
    );
    d.wait_processed(1);
    let input = pattern_frame(
        "colors",
        stylerd::config::Size {
            width: 160,
            height: 96,
        },
    );
    let mut c = Client::connect(&d.socket);
    let snapshot = |c: &mut Client| {
        let n = processed(&d.socket);
        // Two frames after the change, so the snapshot is one made with it.
        d.wait_processed(n + 2);
        let a = c.ask(json!({"cmd": "snapshot"}));
        read_rgb(Path::new(
            a["path"].as_str().unwrap_or_else(|| panic!("{a}")),
        ))
    };
    let a = c.ask(json!({"cmd": "set-style", "strength": 0}));
    assert_eq!(
        (&a["ok"], &a["strength"]),
        (&json!(true), &json!(0.0)),
        "{a}"
    );
    let shown = snapshot(&mut c);
    let worst = shown
        .data
        .iter()
        .zip(&input.data)
        .map(|(a, b)| a.abs_diff(*b))
        .max();
    // Strength 0 shows the camera frame itself (the snapshot is the RGB before encoding).
    assert!(
        worst <= Some(1),
        "strength 0 differs from the camera by {worst:?}"
    );
    let a = c.ask(json!({"cmd": "set-style", "strength": 1, "preserve-color": true}));
    assert_eq!(a["preserve_color"], true, "{a}");
    let kept = snapshot(&mut c);
    let mut worst = 0f64;
    for (o, k) in input.data.chunks_exact(3).zip(kept.data.chunks_exact(3)) {
        if k.iter().any(|v| *v == 0 || *v == 255) {
            continue; // clipped: the chroma bends there (see tests/stylize.rs)
        }
        let (co, ck) = (
            stylerd::mix::chroma([o[0], o[1], o[2]]),
            stylerd::mix::chroma([k[0], k[1], k[2]]),
        );
        worst = worst.max((co.0 - ck.0).abs().max((co.1 - ck.1).abs()));
    }
    // Equal shifts of R, G and B keep BT.601 Cb/Cr: float rounding only.
    assert!(worst < 0.01, "chroma moved by {worst}");
    assert!(
        mean_abs_diff(&input, &kept) > 5.0,
        "preserve-color showed the input"
    );
    wait_for(
        || d.status()["style"]["preserve_color"] == true,
        Duration::from_secs(5),
        "the status to show preserve_color",
    );
    assert_eq!(d.status()["style"]["differs_from_file"], true);
}
