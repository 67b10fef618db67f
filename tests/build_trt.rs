//! `engines/build-trt.sh` against a stand-in `trtexec` (tests/data/trtexec/trtexec) that
//! prints TensorRT 8.5.2's log lines: TensorRT itself cannot run here. What is checked is the
//! script's own work: the trtexec arguments (precision, shapes, DLA), the plan's file name
//! and side-car, the timing cache, its refusals — and that the daemon's plan check
//! (`engine::plan`) accepts what the script wrote on the same machine and refuses it on
//! another.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use stylerd::engine::plan::{PlanInfo, TrtVersion};
use stylerd::model::sha256_hex;

struct Build {
    code: i32,
    stdout: String,
    stderr: String,
    /// Each trtexec call's arguments (the `--help` probe first).
    calls: Vec<Vec<String>>,
}

impl Build {
    /// The arguments of the build call (the last one).
    fn args(&self) -> &[String] {
        self.calls.last().map(Vec::as_slice).unwrap_or_default()
    }

    fn has(&self, arg: &str) -> bool {
        self.args().iter().any(|a| a == arg)
    }

    fn plan(&self) -> PathBuf {
        PathBuf::from(self.stdout.lines().last().unwrap_or_default())
    }
}

fn build_trt(out: &Path, args: &[&str], env: &[(&str, &str)]) -> Build {
    let log = out.join(format!("args-{}.txt", fs::read_dir(out).unwrap().count()));
    let root = common::root();
    let mut cmd = Command::new("bash");
    cmd.arg(root.join("engines/build-trt.sh"))
        .arg("--trtexec")
        .arg(root.join("tests/data/trtexec/trtexec"))
        .arg("--out-dir")
        .arg(out)
        .args(args)
        .current_dir(&root)
        .env("TRTEXEC_ARGS_LOG", &log);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let o = cmd.output().expect("bash runs");
    let calls = fs::read_to_string(&log)
        .unwrap_or_default()
        .split("\n\n")
        .filter(|c| !c.trim().is_empty())
        .map(|c| c.lines().map(str::to_string).collect())
        .collect();
    Build {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).trim().to_string(),
        stderr: String::from_utf8_lossy(&o.stderr).trim().to_string(),
        calls,
    }
}

#[test]
fn fp16_plan_is_named_and_labelled_for_this_tensorrt_and_gpu() {
    let out = tempfile::tempdir().unwrap();
    let b = build_trt(out.path(), &["--size", "640x360"], &[]);
    assert_eq!(b.code, 0, "{}\n{}", b.stdout, b.stderr);
    let plan = b.plan();
    assert_eq!(
        plan.file_name().unwrap(),
        "multistyle26.640x360.fp16.trt8.5.2.xavier.plan"
    );
    assert!(
        fs::read_to_string(&plan)
            .unwrap()
            .contains("multistyle26.onnx")
    );
    for arg in [
        "--fp16",
        "--shapes=image:1x3x360x640",
        "--skipInference",
        "--onnx=engines/multistyle26.onnx",
    ] {
        assert!(b.has(arg), "{arg} missing from {:?}", b.args());
    }
    assert!(!b.args().iter().any(|a| a.starts_with("--int8")));

    let info = PlanInfo::for_plan(&plan);
    assert_eq!(info.tensorrt.as_deref(), Some("8.5.2"));
    assert_eq!(info.device.as_deref(), Some("Xavier"));
    assert_eq!(info.compute_capability.as_deref(), Some("7.2"));
    assert_eq!(info.precision.as_deref(), Some("fp16"));
    let sidecar = fs::read_to_string(plan.with_extension("plan.toml")).unwrap();
    let onnx = fs::read(common::root().join("engines/multistyle26.onnx")).unwrap();
    let onnx_sha = sha256_hex(&onnx);
    assert!(
        sidecar.contains(&format!("onnx-sha256 = \"{onnx_sha}\"")),
        "{sidecar}"
    );

    // The daemon's check: fine on the Xavier with 8.5.2, refused on an Orin or with 8.6.
    let xavier = TrtVersion::from_code(8502);
    info.check(&plan, xavier, "Xavier", (7, 2)).unwrap();
    let e = info
        .check(&plan, xavier, "Orin", (8, 7))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("Xavier (compute 7.2)") && e.contains("orin"),
        "{e}"
    );
    let e = info
        .check(&plan, TrtVersion::from_code(8601), "Xavier", (7, 2))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("TensorRT 8.5.2") && e.contains("TensorRT 8.6.1"),
        "{e}"
    );
}

#[test]
fn timing_cache_is_kept_and_reused_for_the_same_tensorrt() {
    let out = tempfile::tempdir().unwrap();
    let first = build_trt(out.path(), &[], &[]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let cache = out.path().join("timing.trt8.5.2.xavier.cache");
    assert!(cache.is_file(), "no timing cache beside the plan");
    let second = build_trt(out.path(), &["--size", "320x180"], &[]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    let want = format!("--timingCacheFile={}", cache.display());
    assert!(second.has(&want), "{want} not in {:?}", second.args());
    assert_eq!(fs::read_to_string(&cache).unwrap().lines().count(), 2);

    // Another TensorRT version starts its own cache instead of reading this one.
    let ten = build_trt(out.path(), &[], &[("TRTEXEC_CODE", "100300")]);
    assert_eq!(ten.code, 0, "{}", ten.stderr);
    assert!(!ten.has(&want), "{:?}", ten.args());
    assert!(out.path().join("timing.trt10.3.0.xavier.cache").is_file());
}

#[test]
fn tensorrt_10_banner_version_is_decoded_when_the_log_has_no_version_line() {
    let out = tempfile::tempdir().unwrap();
    let b = build_trt(
        out.path(),
        &[],
        &[
            ("TRTEXEC_CODE", "100300"),
            ("TRTEXEC_NO_VERSION_LINE", "1"),
            ("TRTEXEC_DEVICE", "Orin"),
            ("TRTEXEC_CC", "8.7"),
        ],
    );
    assert_eq!(b.code, 0, "{}", b.stderr);
    assert_eq!(
        b.plan().file_name().unwrap(),
        "multistyle26.640x360.fp16.trt10.3.0.orin.plan"
    );
    let info = PlanInfo::for_plan(&b.plan());
    info.check(&b.plan(), TrtVersion::from_code(100300), "Orin", (8, 7))
        .unwrap();
}

#[test]
fn dynamic_profiles_are_padded_to_the_models_multiple_of_four() {
    let out = tempfile::tempdir().unwrap();
    let b = build_trt(out.path(), &["--dynamic", "318x178:640x360:1278x718"], &[]);
    assert_eq!(b.code, 0, "{}", b.stderr);
    for arg in [
        "--minShapes=image:1x3x180x320",
        "--optShapes=image:1x3x360x640",
        "--maxShapes=image:1x3x720x1280",
    ] {
        assert!(b.has(arg), "{arg} missing from {:?}", b.args());
    }
    assert_eq!(
        b.plan().file_name().unwrap(),
        "multistyle26.dynamic.fp16.trt8.5.2.xavier.plan"
    );
}

#[test]
fn dla_builds_fall_back_to_the_gpu_and_refuse_dynamic_shapes() {
    let out = tempfile::tempdir().unwrap();
    let b = build_trt(out.path(), &["--dla", "1"], &[]);
    assert_eq!(b.code, 0, "{}", b.stderr);
    assert!(b.has("--useDLACore=1") && b.has("--allowGPUFallback"));
    let plan = b.plan();
    assert_eq!(
        plan.file_name().unwrap(),
        "multistyle26.640x360.dla1.fp16.trt8.5.2.xavier.plan"
    );
    let named = PlanInfo::from_file_name(plan.file_name().unwrap().to_str().unwrap());
    assert_eq!(named.precision.as_deref(), Some("fp16"));
    assert_eq!(named.tensorrt.as_deref(), Some("8.5.2"));

    let b = build_trt(
        out.path(),
        &["--dla", "0", "--dynamic", "320x180:640x360:1280x720"],
        &[],
    );
    assert_eq!(b.code, 1);
    assert!(
        b.stderr.contains("DLA has no dynamic shapes"),
        "{}",
        b.stderr
    );
}

#[test]
fn int8_builds_from_the_qdq_model_and_say_how_to_make_it_when_missing() {
    let out = tempfile::tempdir().unwrap();
    let models = tempfile::tempdir().unwrap();
    let engines = common::root().join("engines");
    fs::copy(
        engines.join("multistyle26.toml"),
        models.path().join("multistyle26.toml"),
    )
    .unwrap();
    let models_dir = models.path().to_str().unwrap();

    let b = build_trt(
        out.path(),
        &["--precision", "int8", "--models-dir", models_dir],
        &[],
    );
    assert_eq!(b.code, 1);
    assert!(b.stderr.contains("stylerd quantize"), "{}", b.stderr);
    assert!(b.calls.len() <= 1, "trtexec ran a build: {:?}", b.calls);

    // The stand-in does not parse the model: any file named <model>-int8.onnx will do.
    fs::copy(
        engines.join("multistyle26.onnx"),
        models.path().join("multistyle26-int8.onnx"),
    )
    .unwrap();
    let b = build_trt(
        out.path(),
        &["--precision", "int8", "--models-dir", models_dir],
        &[],
    );
    assert_eq!(b.code, 0, "{}", b.stderr);
    assert!(b.has("--int8") && b.has("--fp16"), "{:?}", b.args());
    let want = format!(
        "--onnx={}",
        models.path().join("multistyle26-int8.onnx").display()
    );
    assert!(b.has(&want), "{:?}", b.args());
    assert_eq!(
        b.plan().file_name().unwrap(),
        "multistyle26.640x360.int8.trt8.5.2.xavier.plan"
    );
}

#[test]
fn bad_arguments_and_failed_builds_are_one_sentence_and_leave_no_plan() {
    let out = tempfile::tempdir().unwrap();
    let b = build_trt(out.path(), &["--precision", "fp8"], &[]);
    assert_eq!(b.code, 1);
    assert!(b.stderr.contains("fp16, int8 or fp32"), "{}", b.stderr);

    let b = build_trt(out.path(), &["--model", "nosuchmodel"], &[]);
    assert_eq!(b.code, 1);
    assert!(
        b.stderr.contains("engines/nosuchmodel.onnx missing"),
        "{}",
        b.stderr
    );

    let b = build_trt(out.path(), &["--frobnicate"], &[]);
    assert_eq!(b.code, 2);
    assert!(
        b.stderr.contains("unknown argument --frobnicate"),
        "{}",
        b.stderr
    );

    let plans: Vec<_> = fs::read_dir(out.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "plan"))
        .collect();
    assert!(plans.is_empty(), "{plans:?}");
}

#[test]
fn model_and_size_come_from_the_daemon_config_unless_given() {
    let out = tempfile::tempdir().unwrap();
    let config = out.path().join("stylerd.toml");
    // [source] has no `size`, but a key of that name elsewhere must not be read.
    fs::write(
        &config,
        "[source]\nuri = \"test://\"\n\n[engine]\nmodel = \"multistyle26\"  # note\n\
         size = \"480x272\"\nmodels-dir = \"engines\"\n\n[output]\nsize = \"1x1\"\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let b = build_trt(out.path(), &["--config", config], &[]);
    assert_eq!(b.code, 0, "{}", b.stderr);
    assert!(b.has("--shapes=image:1x3x272x480"), "{:?}", b.args());
    assert_eq!(
        b.plan().file_name().unwrap(),
        "multistyle26.480x272.fp16.trt8.5.2.xavier.plan"
    );
    let b = build_trt(out.path(), &["--config", config, "--size", "320x180"], &[]);
    assert_eq!(b.code, 0, "{}", b.stderr);
    assert!(b.has("--shapes=image:1x3x180x320"), "{:?}", b.args());

    // The shipped config builds what the shipped daemon runs.
    let shipped = common::root().join("systemd/stylerd.toml");
    let b = build_trt(out.path(), &["--config", shipped.to_str().unwrap()], &[]);
    assert_eq!(b.code, 0, "{}", b.stderr);
    assert!(b.has("--shapes=image:1x3x360x640"), "{:?}", b.args());

    let b = build_trt(out.path(), &["--config", "/nonexistent.toml"], &[]);
    assert_eq!(b.code, 1);
    assert!(
        b.stderr.contains("config /nonexistent.toml not found"),
        "{}",
        b.stderr
    );
    let b = build_trt(out.path(), &["--size", "640by360"], &[]);
    assert_eq!(b.code, 1);
    assert!(b.stderr.contains("WIDTHxHEIGHT"), "{}", b.stderr);
}
