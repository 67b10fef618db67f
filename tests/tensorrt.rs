//! The TensorRT backend's CUDA pre/post kernels against the CPU reference in `frame.rs`
//! (bit-exact for u8 -> f32, within 1e-3 for f16), its frame buffers (staged and zero-copy),
//! and its refusals without TensorRT.
//!
//! Needs `--features tensorrt`; `make test` runs it that way. The two tests that need no
//! GPU (the refusal without TensorRT, the plan version check) run everywhere; the two that
//! need a CUDA device are skipped visibly (the skip ledger, `make test`'s summary) where none
//! exists, as on CI and this project's build machines: CI never depends on a GPU.
#![cfg(feature = "tensorrt")]

use std::sync::Arc;

use cudarc::driver::CudaContext;
use stylerd::config::{Backend, EngineConfig, Size};
use stylerd::engine::tensorrt::kernels::{DeviceTensor, Geometry, Kernels};
use stylerd::engine::tensorrt::staging::FrameIo;
use stylerd::engine::tensorrt::{self, cuda_context};
use stylerd::frame::{self, ImageTensor, Layout, RgbImage, ValueRange};
use stylerd::style::StyleSpec;

/// A deterministic generator so failures reproduce (no `rand` dependency).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as u32
    }
}

fn picture(w: u32, h: u32, seed: u64) -> RgbImage {
    let mut g = Lcg(seed);
    let data = (0..w * h * 3).map(|_| g.next() as u8).collect();
    RgbImage::new(w, h, data).unwrap()
}

/// Network-like outputs: mostly in range, some outside it, a few NaN and exact halves.
fn output_tensor(g: &Geometry, range: ValueRange, seed: u64) -> ImageTensor {
    let mut r = Lcg(seed);
    let span = range.hi - range.lo;
    let data = (0..g.tensor_len())
        .map(|i| match i % 97 {
            0 => f32::NAN,
            1 => range.lo + span * (r.next() % 256) as f32 / 255.0,
            2 => range.lo + span * ((r.next() % 255) as f32 + 0.5) / 255.0,
            _ => range.lo + span * ((r.next() % 12000) as f32 / 10000.0 - 0.1),
        })
        .collect();
    ImageTensor {
        layout: g.layout,
        width: g.tensor_width,
        height: g.tensor_height,
        data,
    }
}

/// CUDA device 0, or `None` after recording why the test is skipped.
fn cuda_or_skip() -> Option<Arc<CudaContext>> {
    match cuda_context() {
        Ok(c) => Some(c),
        Err(e) => {
            // `e` reads "no CUDA device: <why>".
            stylerd_testkit::skip(stylerd_testkit::Kind::Gpu, &e.to_string());
            None
        }
    }
}

#[test]
fn cuda_kernels_match_the_cpu_reference() {
    let Some(ctx) = cuda_or_skip() else {
        return;
    };
    println!(
        "CUDA device: {} (compute {:?})",
        ctx.name().unwrap_or_default(),
        ctx.compute_capability().unwrap_or_default()
    );
    let stream = ctx.new_stream().unwrap();
    let kernels = Kernels::compile(&ctx).unwrap();
    let ranges = [
        ValueRange::UNIT,
        ValueRange { lo: -1.0, hi: 1.0 },
        ValueRange { lo: 0.0, hi: 255.0 },
    ];
    let cases = [
        (5, 3, 4),
        (640, 360, 4),
        (37, 23, 8),
        (256, 256, 1),
        (33, 17, 1),
    ];
    let mut checked = 0usize;
    let mut worst_f16 = 0f32;
    for (n, &(w, h, pad)) in cases.iter().enumerate() {
        for layout in [Layout::Nchw, Layout::Nhwc] {
            for range in ranges {
                let img = picture(w, h, n as u64 + 1);
                let g = Geometry::new(w, h, pad, layout, range, range).unwrap();
                let cpu = frame::to_tensor(&img, layout, range, pad).unwrap();

                let gpu = kernels.to_tensor_host(&stream, &img, &g, false).unwrap();
                assert_eq!((gpu.width, gpu.height), (cpu.width, cpu.height));
                let diff = cpu
                    .data
                    .iter()
                    .zip(&gpu.data)
                    .position(|(a, b)| a.to_bits() != b.to_bits());
                assert_eq!(
                    diff, None,
                    "f32 pre differs for {w}x{h} {layout:?} {range:?}"
                );

                let gpu16 = kernels.to_tensor_host(&stream, &img, &g, true).unwrap();
                let tol = 1e-3 * (range.hi - range.lo).abs().max(1.0);
                for (a, b) in cpu.data.iter().zip(&gpu16.data) {
                    let d = (a - b).abs() / (range.hi - range.lo).abs().max(1.0);
                    worst_f16 = worst_f16.max(d);
                    assert!(
                        (a - b).abs() <= tol,
                        "f16 pre {a} vs {b} ({w}x{h} {layout:?})"
                    );
                }

                let out = output_tensor(&g, range, n as u64 + 7);
                let cpu_img = frame::from_tensor(&out, range, w, h).unwrap();
                let gpu_img = kernels.from_tensor_host(&stream, &out, &g, false).unwrap();
                assert_eq!(
                    cpu_img, gpu_img,
                    "f32 post differs for {w}x{h} {layout:?} {range:?}"
                );

                // f16: TensorRT hands over half values; the CPU path sees the same values.
                let rounded = ImageTensor {
                    data: out
                        .data
                        .iter()
                        .map(|&v| half::f16::from_f32(v).to_f32())
                        .collect(),
                    ..out.clone()
                };
                let cpu16 = frame::from_tensor(&rounded, range, w, h).unwrap();
                let gpu16_img = kernels.from_tensor_host(&stream, &out, &g, true).unwrap();
                assert_eq!(cpu16, gpu16_img, "f16 post differs for {w}x{h} {layout:?}");
                checked += cpu.data.len();
            }
        }
    }
    println!(
        "kernels match: {checked} tensor values bit-exact (f32), f16 worst relative error \
         {worst_f16:.2e}"
    );
}

/// The engine's frame path without the plan: upload, pre-process, post-process straight
/// from the pre-processed tensor, download. Unit range in and out, so the picture must come
/// back unchanged — through staged copies and through mapped (zero-copy) host memory alike.
/// A discrete GPU maps host memory too (across the bus), so this runs on any CUDA device.
#[test]
fn frames_round_trip_staged_and_zero_copy() {
    let Some(ctx) = cuda_or_skip() else {
        return;
    };
    let stream = ctx.new_stream().unwrap();
    let kernels = Kernels::compile(&ctx).unwrap();
    println!(
        "integrated GPU (engine would use zero-copy): {}",
        FrameIo::zero_copy_possible(&ctx).unwrap()
    );
    for (w, h) in [(640, 360), (37, 23)] {
        let g = Geometry::new(w, h, 4, Layout::Nchw, ValueRange::UNIT, ValueRange::UNIT).unwrap();
        for half in [false, true] {
            for zero_copy in [false, true] {
                let mut frames = FrameIo::new(&ctx, &stream, g.image_len(), zero_copy).unwrap();
                assert_eq!(frames.is_zero_copy(), zero_copy);
                let mut tensor = DeviceTensor::alloc(&stream, g.tensor_len(), half).unwrap();
                for round in 0..2 {
                    // The second round checks the buffers are reused cleanly.
                    let img = picture(w, h, 99 + round);
                    frames.upload(&stream, &img.data).unwrap();
                    kernels
                        .pre(&stream, frames.input(), &mut tensor, &g)
                        .unwrap();
                    kernels.post(&stream, &tensor, frames.output(), &g).unwrap();
                    let back = frames.download(&stream).unwrap();
                    assert!(
                        back == img.data,
                        "{w}x{h} half={half} zero_copy={zero_copy} round {round}: picture changed"
                    );
                }
            }
        }
    }
    println!("frames round-trip unchanged, staged and zero-copy, f32 and f16");
}

#[test]
fn tensorrt_backend_refuses_with_a_sentence_when_it_cannot_run() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let config = EngineConfig {
        backend: Backend::Tensorrt,
        models_dir: root.join("engines"),
        size: Size {
            width: 64,
            height: 64,
        },
        plan: Some(root.join("engines/missing.64x64.fp16.trt8.5.2.xavier.plan")),
        ..Default::default()
    };
    let err = match stylerd::engine::open(&config, &StyleSpec::parse("0").unwrap()) {
        Ok(_) => panic!("a missing plan must not open"),
        Err(e) => e.to_string(),
    };
    println!("refusal: {err}");
    // Built without TensorRT's headers (CI, any machine without TensorRT) the engine refuses
    // before anything else; with them, a machine with no GPU refuses for want of CUDA, and
    // one with a GPU because the plan file is missing.
    let expected: &[&str] = if cfg!(stylerd_trt_shim) {
        &["no CUDA device", "cannot read TensorRT plan"]
    } else {
        &["without the TensorRT headers"]
    };
    assert!(expected.iter().any(|s| err.contains(s)), "{err}");
}

#[test]
fn plan_versions_are_named_in_refusals() {
    let ours = tensorrt::shim::TrtVersion::from_code(8502);
    let name = "multistyle26.640x360.fp16.trt8.6.1.orin.plan";
    let e = stylerd::engine::plan::PlanInfo::from_file_name(name)
        .check(std::path::Path::new(name), ours, "Xavier", (7, 2))
        .unwrap_err()
        .to_string();
    assert!(e.contains("8.6.1") && e.contains("8.5.2"), "{e}");
}
