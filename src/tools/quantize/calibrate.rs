//! Activation ranges from calibration runs: one histogram of |x| per tensor, and the
//! range (amax) a symmetric int8 scale is derived from, by percentile or by entropy.
//!
//! The histogram keeps a fixed number of bins over `[0, top]` and doubles `top` (merging
//! bin pairs) when a larger value arrives, so it needs one pass and bounded memory whatever
//! the number of frames. Entropy calibration is TensorRT's KL-divergence search over
//! candidate clipping points (NVIDIA, "8-bit Inference with TensorRT", GTC 2017). Pure: no
//! ONNX Runtime, no I/O.

use serde::Serialize;

/// Bins per histogram: TensorRT's entropy calibrator uses 2048 (GTC 2017 slides).
pub const BINS: usize = 2048;
/// Quantized levels on one side of zero for symmetric int8.
const LEVELS: usize = 128;

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// The given percentile of |x| (99.99 by default).
    Percentile(f64),
    /// Minimum KL divergence between the clipped and quantized distributions.
    Entropy,
    /// The largest |x| seen.
    Max,
}

/// A streaming histogram of absolute values.
#[derive(Clone, Debug)]
pub struct Histogram {
    counts: Vec<u64>,
    /// Upper edge of the last bin; 0 until the first non-zero value.
    top: f32,
    max: f32,
    total: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: vec![0; BINS],
            top: 0.0,
            max: 0.0,
            total: 0,
        }
    }
}

impl Histogram {
    pub fn add(&mut self, values: &[f32]) {
        let batch_max = values
            .iter()
            .filter(|v| v.is_finite())
            .fold(0f32, |m, v| m.max(v.abs()));
        if batch_max > self.top {
            self.grow(batch_max);
        }
        self.max = self.max.max(batch_max);
        if self.top == 0.0 {
            self.counts[0] += values.len() as u64;
            self.total += values.len() as u64;
            return;
        }
        let per_bin = BINS as f32 / self.top;
        for v in values.iter().filter(|v| v.is_finite()) {
            let i = ((v.abs() * per_bin) as usize).min(BINS - 1);
            self.counts[i] += 1;
            self.total += 1;
        }
    }

    fn grow(&mut self, need: f32) {
        if self.top == 0.0 {
            self.top = need;
            return;
        }
        while self.top < need {
            for i in 0..BINS / 2 {
                self.counts[i] = self.counts[2 * i] + self.counts[2 * i + 1];
            }
            for c in &mut self.counts[BINS / 2..] {
                *c = 0;
            }
            self.top *= 2.0;
        }
    }

    pub fn max(&self) -> f32 {
        self.max
    }

    /// The clipping range for `method`; never 0 (an all-zero tensor gets 1e-6).
    pub fn amax(&self, method: Method) -> f32 {
        let amax = match method {
            Method::Max => self.max,
            Method::Percentile(p) => self.percentile(p),
            Method::Entropy => self.entropy(),
        };
        amax.max(1e-6)
    }

    fn bin_width(&self) -> f32 {
        self.top / BINS as f32
    }

    fn percentile(&self, p: f64) -> f32 {
        if self.total == 0 {
            return 0.0;
        }
        let want = (self.total as f64 * p / 100.0).ceil() as u64;
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= want {
                return ((i + 1) as f32 * self.bin_width()).min(self.max);
            }
        }
        self.max
    }

    fn entropy(&self) -> f32 {
        // Only the bins up to the last non-empty one matter.
        let used = self
            .counts
            .iter()
            .rposition(|&c| c > 0)
            .map_or(0, |i| i + 1);
        if used <= LEVELS {
            return self.max;
        }
        let mut best = (f64::INFINITY, used);
        for clip in (LEVELS..=used).step_by(8) {
            let kl = kl_divergence(&self.counts[..used], clip);
            if kl < best.0 {
                best = (kl, clip);
            }
        }
        (best.1 as f32 * self.bin_width()).min(self.max)
    }
}

/// KL(P || Q) where P is the histogram clipped at `clip` bins (outliers folded into the last
/// bin) and Q is P quantized to 128 levels and expanded back over the non-empty bins.
fn kl_divergence(counts: &[u64], clip: usize) -> f64 {
    let mut p: Vec<f64> = counts[..clip].iter().map(|&c| c as f64).collect();
    let outliers: f64 = counts[clip..].iter().map(|&c| c as f64).sum();
    p[clip - 1] += outliers;
    let mut q = vec![0f64; clip];
    for level in 0..LEVELS {
        let start = level * clip / LEVELS;
        let end = ((level + 1) * clip / LEVELS).max(start + 1);
        let chunk = &counts[start..end];
        let sum: f64 = chunk.iter().map(|&c| c as f64).sum();
        let nonzero = chunk.iter().filter(|&&c| c > 0).count();
        if nonzero == 0 {
            continue;
        }
        for (k, &c) in chunk.iter().enumerate() {
            if c > 0 {
                q[start + k] = sum / nonzero as f64;
            }
        }
    }
    let (ps, qs): (f64, f64) = (p.iter().sum(), q.iter().sum());
    if ps == 0.0 || qs == 0.0 {
        return f64::INFINITY;
    }
    p.iter()
        .zip(&q)
        .filter(|&(&pi, _)| pi > 0.0)
        .map(|(&pi, &qi)| {
            let (pi, qi) = (pi / ps, (qi / qs).max(1e-12));
            pi * (pi / qi).ln()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_and_max_follow_the_data() {
        let mut h = Histogram::default();
        let values: Vec<f32> = (0..10_000).map(|i| i as f32 / 10_000.0).collect();
        h.add(&values);
        h.add(&[-100.0]);
        assert_eq!(h.amax(Method::Max), 100.0);
        let p = h.amax(Method::Percentile(99.0));
        assert!((0.9..1.2).contains(&p), "{p}");
    }

    #[test]
    fn growing_keeps_counts() {
        let mut h = Histogram::default();
        h.add(&[0.5; 100]);
        h.add(&[8.0]);
        assert_eq!(h.counts.iter().sum::<u64>(), 101);
        assert!(h.top >= 8.0);
        let p = h.amax(Method::Percentile(50.0));
        assert!((0.5..0.6).contains(&p), "{p}");
    }

    #[test]
    fn entropy_clips_the_outlier_and_keeps_the_bulk() {
        // Exponentially distributed activations (the shape of post-ReLU features), exact
        // quantiles so the test is deterministic, plus one far outlier.
        let n = 100_000;
        let mut v: Vec<f32> = (0..n)
            .map(|i| -(1.0 - (i as f64 + 0.5) / n as f64).ln() as f32)
            .collect();
        let data_max = v.iter().cloned().fold(0.0, f32::max); // 12.2
        v.push(50.0);
        let mut h = Histogram::default();
        h.add(&v);
        let a = h.amax(Method::Entropy);
        // KL clipping never cuts into the top 1 % (4.6 = its 99th percentile: folding more
        // than 1 % of the mass into the last bin costs more than rounding), and it drops an
        // outlier four times past the rest of the data.
        assert!((4.6..=data_max).contains(&a), "{a} (data max {data_max})");
        assert_eq!(Histogram::default().amax(Method::Entropy), 1e-6);
    }
}
