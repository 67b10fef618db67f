//! The analytic Jetson AGX Xavier (15 W mode) estimate: FLOPs per frame against the GPU's
//! throughput at the 15 W clocks. An estimate, not a measurement: nothing here has run on
//! a Jetson, and the Markdown it writes says so and lists every assumption.
//!
//! Owns the hardware constants and the arithmetic; the FLOPs come from [`super::flops`].

use std::fmt::Write as _;
use std::path::Path;

use crate::config::Size;
use crate::model::{Manifest, SizeSupport};

use super::flops::{self, FlopsError};

/// nvpmodel 15 W on AGX Xavier: GPU at 670 MHz with 4 of its TPCs (docs/design.md "Target facts").
pub const GPU_CLOCK_HZ: f64 = 670e6;
/// Volta: 2 SMs per TPC, 4 TPCs.
pub const SMS: f64 = 8.0;
/// FP32 CUDA cores per Volta SM.
pub const CORES_PER_SM: f64 = 64.0;
/// Tensor Cores per Volta SM, each 64 FP16 FMA per clock.
pub const TENSOR_CORES_PER_SM: f64 = 8.0;
pub const FMA_PER_TENSOR_CORE: f64 = 64.0;
/// EMC 1333 MHz (15 W mode), LPDDR4x on a 256-bit bus, double data rate.
pub const DRAM_BYTES_PER_S: f64 = 1333e6 * 2.0 * 256.0 / 8.0;
/// Share of peak that small-batch convolutions reach (TensorRT on Volta-class parts with
/// 3- to 32-channel layers): 25 % pessimistic, 35 % optimistic.
pub const EFFICIENCY: (f64, f64) = (0.25, 0.35);
/// Share of DRAM bandwidth actually sustained.
pub const DRAM_EFFICIENCY: f64 = 0.6;
/// The per-frame budget (docs/design.md "Target facts": 30 ms glass to glass).
pub const BUDGET_MS: f64 = 30.0;

/// The share of the budget inference may take: the other 10 ms are an assumed allowance for
/// capture, pre/post-processing, queueing and encoding on the Xavier, not a measurement.
pub const INFER_SHARE_MS: f64 = 20.0;

/// The sizes every model that accepts them is estimated at.
pub const SIZES: [(u32, u32); 4] = [(256, 256), (384, 216), (640, 360), (1280, 720)];

/// Peak throughputs in FLOP/s (or OP/s for INT8).
pub fn fp32_peak() -> f64 {
    SMS * CORES_PER_SM * 2.0 * GPU_CLOCK_HZ
}
pub fn fp16_cuda_peak() -> f64 {
    2.0 * fp32_peak()
}
pub fn fp16_tensor_peak() -> f64 {
    SMS * TENSOR_CORES_PER_SM * FMA_PER_TENSOR_CORE * 2.0 * GPU_CLOCK_HZ
}
pub fn int8_tensor_peak() -> f64 {
    2.0 * fp16_tensor_peak()
}

/// One model at one size.
#[derive(Clone, Debug)]
pub struct Row {
    pub model: String,
    pub size: Size,
    pub flops: u64,
    pub bytes: u64,
    pub unfused_bytes: u64,
}

impl Row {
    /// Milliseconds at `peak` FLOP/s, (optimistic, pessimistic), floored by the DRAM time.
    pub fn ms(&self, peak: f64) -> (f64, f64) {
        let mem = self.memory_ms();
        let at = |eff: f64| (self.flops as f64 / (peak * eff) * 1e3).max(mem);
        (at(EFFICIENCY.1), at(EFFICIENCY.0))
    }
    /// The time to move the conv tensors once through DRAM.
    pub fn memory_ms(&self) -> f64 {
        self.bytes as f64 / (DRAM_BYTES_PER_S * DRAM_EFFICIENCY) * 1e3
    }
    /// DRAM time if nothing but the convs is fused.
    pub fn unfused_ms(&self) -> f64 {
        self.unfused_bytes as f64 / (DRAM_BYTES_PER_S * DRAM_EFFICIENCY) * 1e3
    }
    /// Verdict on FP16 Tensor Cores, the precision the TensorRT plans are built in.
    pub fn verdict(&self) -> &'static str {
        let (fast, slow) = self.ms(fp16_tensor_peak());
        if slow <= INFER_SHARE_MS && self.unfused_ms() <= BUDGET_MS {
            "yes"
        } else if fast <= BUDGET_MS {
            "marginal"
        } else {
            "no"
        }
    }
}

/// Counts every model in `dir` at the sizes it accepts (a fixed-size model at its own size).
/// Models whose ONNX file is missing are listed in the second vector with the reason.
pub fn rows(dir: &Path) -> Result<(Vec<Row>, Vec<String>), FlopsError> {
    let manifests = Manifest::list(dir).map_err(|e| FlopsError::Read {
        path: dir.into(),
        message: e.to_string(),
    })?;
    let mut rows = Vec::new();
    let mut skipped = Vec::new();
    for m in manifests {
        let path = m.model_path();
        if !path.is_file() {
            skipped.push(format!(
                "{}: {} is missing (run `make models`)",
                m.name,
                path.display()
            ));
            continue;
        }
        let sizes: Vec<(u32, u32)> = match &m.size {
            SizeSupport::Fixed([w, h]) => vec![(*w, *h)],
            _ => SIZES
                .iter()
                .copied()
                .filter(|&(w, h)| m.accepts(w, h).is_ok())
                .collect(),
        };
        for (width, height) in sizes {
            let cost = flops::count(&path, &m.input, m.layout, width, height)?;
            rows.push(Row {
                model: m.name.clone(),
                size: Size { width, height },
                flops: cost.flops(),
                bytes: cost.bytes(),
                unfused_bytes: cost.unfused_bytes,
            });
        }
    }
    Ok((rows, skipped))
}

/// The Markdown section body: assumptions, then one table row per model and size.
pub fn markdown(rows: &[Row], skipped: &[String]) -> String {
    let mut s = String::new();
    let tf = |f: f64| f / 1e12;
    let _ = writeln!(
        s,
        "**This is an estimate, not a measurement** — nothing here ran on a Jetson. \
         Assumptions:\n\n\
         - nvpmodel 15 W: GPU at {:.0} MHz with 4 TPCs = {} Volta SMs x {} CUDA cores = {} \
         cores.\n\
         - Peaks: FP32 {:.2} TFLOPS, FP16 on CUDA cores {:.2} TFLOPS, FP16 Tensor Cores \
         ({} SMs x {} TC x {} FMA x 2 x clock) {:.2} TFLOPS dense, INT8 {:.1} TOPS.\n\
         - Small-batch convolutions with 3-32 channels reach {:.0}-{:.0} % of peak \
         (first and last layers have 3 channels and fit Tensor Cores badly); each cell shows \
         optimistic-pessimistic.\n\
         - FLOPs = 2 x multiply-accumulates of Conv/ConvTranspose/Gemm/MatMul counted from \
         the ONNX graph at that input size; normalisation, activations, pad and resize are \
         not counted (memory-bound).\n\
         - Memory floor: each conv reads its input and weights and writes its output once in \
         FP16 through {:.1} GB/s DRAM (EMC 1333 MHz, 256-bit) at {:.0} % sustained; a cell \
         never shows less than that.\n\
         - Unfused MB: every op that reads or writes a feature map (instance norm's mean, \
         variance and scale steps, ReLU, pad, resize) doing so separately in FP16; at \
         {:.0} % of DRAM that is the \"unfused ms\" column, the cost if TensorRT fuses nothing \
         beyond the convs.\n\
         - Fits 30 ms (glass to glass): FP16 Tensor Cores; \"yes\" when the pessimistic \
         inference time is at most {:.0} ms (the rest of the budget is capture, \
         pre/post-processing and encoding) and even the unfused traffic fits 30 ms, \"marginal\" when only the optimistic time fits \
         30 ms, else \"no\".\n",
        GPU_CLOCK_HZ / 1e6,
        SMS,
        CORES_PER_SM,
        SMS * CORES_PER_SM,
        tf(fp32_peak()),
        tf(fp16_cuda_peak()),
        SMS,
        TENSOR_CORES_PER_SM,
        FMA_PER_TENSOR_CORE,
        tf(fp16_tensor_peak()),
        tf(int8_tensor_peak()),
        EFFICIENCY.0 * 100.0,
        EFFICIENCY.1 * 100.0,
        DRAM_BYTES_PER_S / 1e9,
        DRAM_EFFICIENCY * 100.0,
        DRAM_EFFICIENCY * 100.0,
        INFER_SHARE_MS,
    );
    s.push_str(
        "| model | size | GFLOP/frame | conv MB (FP16) | unfused MB | FP32 ms | FP16 CUDA ms | \
         FP16 TC ms | INT8 TC ms | unfused ms | fits 30 ms (FP16 TC) |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    let range = |(a, b): (f64, f64)| format!("{a:.1}-{b:.1}");
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {:.2} | {:.1} | {:.1} | {} | {} | {} | {} | {:.1} | {} |",
            r.model,
            r.size,
            r.flops as f64 / 1e9,
            r.bytes as f64 / 1e6,
            r.unfused_bytes as f64 / 1e6,
            range(r.ms(fp32_peak())),
            range(r.ms(fp16_cuda_peak())),
            range(r.ms(fp16_tensor_peak())),
            range(r.ms(int8_tensor_peak())),
            r.unfused_ms(),
            r.verdict(),
        );
    }
    if rows.iter().any(|r| r.model == "arbitrary_predict") {
        s.push_str(
            "\n`arbitrary_predict` runs once per style change (not per frame); its row is \
             the cost of a switch.\n",
        );
    }
    for line in skipped {
        let _ = writeln!(s, "\nNot estimated: {line}.");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peaks_match_the_15w_clocks() {
        assert!((fp32_peak() / 1e12 - 0.686).abs() < 0.001);
        assert!((fp16_tensor_peak() / 1e12 - 5.49).abs() < 0.01);
        assert!((int8_tensor_peak() / 1e12 - 10.98).abs() < 0.02);
    }

    #[test]
    fn verdict_uses_the_pessimistic_end() {
        let row = |gflop: f64| Row {
            model: "m".into(),
            size: Size {
                width: 1,
                height: 1,
            },
            flops: (gflop * 1e9) as u64,
            bytes: 0,
            unfused_bytes: 0,
        };
        assert_eq!(row(1.0).verdict(), "yes");
        // 30 GFLOP at 25 % of 5.49 TFLOPS = 21.9 ms: over the 20 ms inference share.
        assert_eq!(row(30.0).verdict(), "marginal");
        // 50 GFLOP at 25 % = 36 ms; at 35 % = 26 ms.
        assert_eq!(row(50.0).verdict(), "marginal");
        assert_eq!(row(100.0).verdict(), "no");
    }
}
