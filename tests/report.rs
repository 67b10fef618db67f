//! `stylerd report` end to end: the real binary on fixture inputs (a timeline in the shape
//! `stylerd run --timeline` writes, a small bench, INT8 and flicker JSON) and the real
//! models in `engines/`; plus the FLOPs count checked against a hand count of the graph.

use std::path::Path;
use std::process::{Command, Output};

use stylerd::frame::Layout;
use stylerd::tools::report::{SECTIONS, flops, styles};

const DATA: &str = "tests/data/report";

fn report(out: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stylerd"))
        .arg("report")
        .args(["--models-dir", "engines", "--out"])
        .arg(out)
        .args(extra)
        .output()
        .expect("run stylerd report")
}

fn png_size(path: &Path) -> (u32, u32) {
    let img =
        image::open(path).unwrap_or_else(|e| panic!("{} does not decode: {e}", path.display()));
    (img.width(), img.height())
}

#[test]
fn report_has_every_section_and_readable_plots() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    let arg = |name: &str| format!("{DATA}/{name}");
    let result = report(
        &out,
        &[
            "--timeline",
            &arg("timeline.jsonl"),
            "--bench",
            &arg("bench.json"),
            "--quantize",
            &arg("quantize.json"),
            "--flicker",
            &arg("flicker.json"),
        ],
    );
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    for heading in SECTIONS {
        assert!(md.contains(heading), "missing {heading}:\n{md}");
    }
    // Tables carry the inputs' numbers.
    assert!(md.contains("| 256x256 | 1 | 40.1 | 41.3 | 44.0 |"), "{md}");
    assert!(md.contains("| on.flicker | 1.7000 |"), "{md}");
    assert!(md.contains("| int8.median_ms | 30.5000 |"), "{md}");
    // The fixture's timeline predates model rungs: no model, shown as "-".
    assert!(
        md.contains("| 13.0 | 2 | - | 384x216 | 1 |"),
        "governor change row:\n{md}"
    );
    assert!(
        md.contains("not a measurement"),
        "the estimate must say it is one"
    );
    assert!(md.contains("| multistyle26 | 256x256 | 2.54 |"), "{md}");
    // SSIM of every style to the content.
    let ssim_rows: Vec<f64> = md
        .lines()
        .filter(|l| l.starts_with("| style-"))
        .map(|l| l.split('|').nth(2).unwrap().trim().parse().unwrap())
        .collect();
    assert_eq!(ssim_rows.len(), 26, "{md}");
    eprintln!("SSIM to the content per style: {ssim_rows:?}");
    // Every style keeps the content's structure and changes the picture: measured 0.16
    // (style 17) to 0.62 (style 14) on this report's content picture.
    assert!(
        ssim_rows.iter().all(|s| (0.1..0.75).contains(s)),
        "{ssim_rows:?}"
    );

    for chart in [
        "latency_histogram.png",
        "stages.png",
        "fps.png",
        "power.png",
        "governor.png",
    ] {
        assert!(md.contains(&format!("({chart})")), "{chart} not linked");
        assert_eq!(png_size(&out.join(chart)), (900, 480), "{chart}");
    }
    // 7 columns x 4 rows of 128-pixel tiles with labels.
    let (w, h) = png_size(&out.join("styles.png"));
    assert!(
        (900..1100).contains(&w) && (550..700).contains(&h),
        "{w}x{h}"
    );
}

#[test]
fn missing_inputs_say_what_to_run() {
    let dir = tempfile::tempdir().unwrap();
    let result = report(dir.path(), &[]);
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    for heading in SECTIONS {
        assert!(md.contains(heading), "missing {heading}");
    }
    assert!(md.contains("stylerd run --timeline"), "{md}");
    assert!(md.contains("stylerd bench > out/bench.json"), "{md}");
    assert!(!dir.path().join("power.png").exists());
}

#[test]
fn bad_inputs_get_one_sentence() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"t\":1}\nnot json\n").unwrap();
    let result = report(
        &dir.path().join("r"),
        &["--timeline", bad.to_str().unwrap()],
    );
    let err = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(1));
    assert!(
        err.starts_with("error: ") && err.contains("line 2"),
        "{err}"
    );

    let result = report(&dir.path().join("r"), &["--font", "/nonexistent/font.ttf"]);
    let err = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(1));
    assert!(err.contains("fonts-dejavu-core"), "{err}");
}

/// multistyle26 at 256x256, by hand from its conv shapes (reflection pads keep "same"
/// sizes; two stride-2 convs go down to 64x64, two nearest x2 resizes come back up):
///   contract.0  9x9  3->32 at 256^2: 32*3*81*65536   = 509_607_936 MACs
///   contract.1  3x3 32->32 at 128^2: 32*32*9*16384  = 150_994_944
///   contract.2  3x3 32->32 at  64^2: 32*32*9*4096   =  37_748_736
///   res x12     3x3 32->32 at  64^2: 12 * 37_748_736 = 452_984_832
///   expand.0    3x3 32->8  at 128^2: 8*32*9*16384   =  37_748_736
///   expand.1    3x3  8->4  at 256^2: 4*8*9*65536    =  18_874_368
///   expand.2    9x9  4->3  at 256^2: 3*4*81*65536   =  63_700_992
/// total 1_271_660_544 MACs = 2_543_321_088 FLOPs. ONNX Runtime agrees: running the graph
/// with every Conv output exposed (onnxruntime 1.31.1 in .deps/venv) gives these shapes and
/// the same sum.
#[test]
fn multistyle26_flops_match_the_hand_count() {
    let model = Path::new("engines/multistyle26.onnx");
    let at = |w, h| flops::count(model, "image", Layout::Nchw, w, h).unwrap();
    let small = at(256, 256);
    assert_eq!(small.layers.len(), 18);
    assert_eq!(small.flops(), 2_543_321_088);
    // Every layer scales with the pixel count at sizes divisible by 4.
    assert_eq!(at(640, 360).flops(), 2_543_321_088 / 65_536 * 230_400);
}

#[test]
fn ssim_of_a_picture_with_itself_is_one() {
    let img = styles::test_picture(64);
    assert_eq!(stylerd::quality::ssim(&img, &img), 1.0);
}
