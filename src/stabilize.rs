//! Temporal stabilization: less flicker where the picture does not move, no ghosts where
//! it does.
//!
//! Per-frame stylization turns sensor noise and compression artefacts into shimmering
//! strokes. The stabilizer blends each stylized frame with the previous stabilized one,
//! pixel by pixel, weighted by how still the *input* is there: the luma difference between
//! consecutive input frames, box-averaged over 5x5 to ignore single-pixel noise, gates the
//! blend from `strength` (still) down to 0 (moving, at `threshold` levels of change or
//! more). Moving regions therefore take the new stylization as is. Pure logic; the frame
//! loop owns one per stream. Also the flicker metric used by the benchmark.

use crate::frame::RgbImage;
use crate::quality::luma;

/// Half-width of the box that smooths the motion map (5x5).
const BOX_RADIUS: usize = 2;

#[derive(Clone, Debug)]
pub struct Stabilizer {
    /// Blend weight of the previous output where the input is perfectly still (0..1).
    strength: f32,
    /// Luma change (0..255, box-averaged) at and above which no blending happens.
    threshold: f32,
    prev_input: Option<Vec<f32>>,
    prev_output: Option<RgbImage>,
}

impl Stabilizer {
    pub fn new(strength: f32, threshold: f32) -> Self {
        Self {
            strength: strength.clamp(0.0, 0.95),
            threshold: threshold.max(1.0),
            prev_input: None,
            prev_output: None,
        }
    }

    /// Forgets the history (after a reconnect or a size change).
    pub fn reset(&mut self) {
        self.prev_input = None;
        self.prev_output = None;
    }

    /// Stabilizes `output` (the stylization of `input`) in place.
    pub fn apply(&mut self, input: &RgbImage, output: &mut RgbImage) {
        let luma_now = luma(input);
        let same_size = |o: &RgbImage| (o.width, o.height) == (output.width, output.height);
        if let (Some(prev_in), Some(prev_out)) = (&self.prev_input, &mut self.prev_output)
            && prev_in.len() == luma_now.len()
            && same_size(prev_out)
            && (input.width, input.height) == (output.width, output.height)
        {
            let (w, h) = (input.width as usize, input.height as usize);
            let diff: Vec<f32> = luma_now
                .iter()
                .zip(prev_in)
                .map(|(a, b)| (a - b).abs())
                .collect();
            let motion = box_mean(&diff, w, h, BOX_RADIUS);
            // Each pixel's weight of the previous output, then one flat pass over the bytes
            // (a weight of 0 leaves the byte as it is: 1.0 * o + 0.5 truncates to o).
            let alpha: Vec<f32> = motion
                .iter()
                .flat_map(|m| {
                    let a = self.strength * (1.0 - m / self.threshold).clamp(0.0, 1.0);
                    [a; 3]
                })
                .collect();
            for ((o, &p), a) in output.data.iter_mut().zip(&prev_out.data).zip(&alpha) {
                *o = (a * p as f32 + (1.0 - a) * *o as f32 + 0.5) as u8;
            }
            // The previous output's buffer is reused: no allocation a frame.
            prev_out.data.copy_from_slice(&output.data);
        } else {
            self.prev_output = Some(output.clone());
        }
        self.prev_input = Some(luma_now);
    }
}

/// Mean over a (2r+1)^2 box around each pixel (clipped at the borders): a horizontal then a
/// vertical pass of window sums (shifted rows added whole, at most 2r+1 terms, so no running
/// drift), divided by the clipped box's area.
fn box_mean(values: &[f32], w: usize, h: usize, r: usize) -> Vec<f32> {
    if w == 0 || h == 0 {
        return Vec::new();
    }
    let span = |i: usize, n: usize| (i.saturating_sub(r), (i + r + 1).min(n));
    let mut rows = vec![0f32; w * h];
    for (src, dst) in values.chunks_exact(w).zip(rows.chunks_exact_mut(w)) {
        dst.copy_from_slice(src);
        for k in 1..=r.min(w) {
            for (d, s) in dst[..w - k].iter_mut().zip(&src[k..]) {
                *d += s;
            }
            for (d, s) in dst[k..].iter_mut().zip(&src[..w - k]) {
                *d += s;
            }
        }
    }
    let widths: Vec<f32> = (0..w)
        .map(|x| {
            let (x0, x1) = span(x, w);
            (x1 - x0) as f32
        })
        .collect();
    let mut out = vec![0f32; w * h];
    for (y, dst) in out.chunks_exact_mut(w).enumerate() {
        let (y0, y1) = span(y, h);
        for row in rows[y0 * w..y1 * w].chunks_exact(w) {
            for (d, s) in dst.iter_mut().zip(row) {
                *d += s;
            }
        }
        let height = (y1 - y0) as f32;
        for (d, width) in dst.iter_mut().zip(&widths) {
            *d /= height * width;
        }
    }
    out
}

/// Flicker of a stylized sequence: the mean absolute frame-to-frame change of the output
/// where the input's luma changed by less than `still` levels, divided by the input's own
/// change there. 1 means the output shimmers as much as the input; lower is steadier.
pub fn flicker(inputs: &[RgbImage], outputs: &[RgbImage], still: f32) -> f64 {
    let (mut out_sum, mut in_sum) = (0f64, 0f64);
    for t in 1..inputs.len().min(outputs.len()) {
        let (a, b) = (luma(&inputs[t]), luma(&inputs[t - 1]));
        let (oa, ob) = (luma(&outputs[t]), luma(&outputs[t - 1]));
        for i in 0..a.len() {
            let d = (a[i] - b[i]).abs();
            if d < still {
                in_sum += d as f64;
                out_sum += (oa[i] - ob[i]).abs() as f64;
            }
        }
    }
    if in_sum == 0.0 { 0.0 } else { out_sum / in_sum }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(w: u32, h: u32, v: u8) -> RgbImage {
        RgbImage::new(w, h, vec![v; (w * h * 3) as usize]).unwrap()
    }

    #[test]
    fn box_mean_matches_brute_force() {
        // Pictures narrower and shorter than the box, and wider ones: every border case.
        for (w, h) in [(7, 5), (1, 1), (1, 4), (2, 3), (4, 2), (12, 9)] {
            let v: Vec<f32> = (0..w * h).map(|i| ((i * 37) % 11) as f32).collect();
            let fast = box_mean(&v, w, h, 2);
            for y in 0..h {
                for x in 0..w {
                    let (mut s, mut n) = (0.0, 0);
                    for j in y.saturating_sub(2)..(y + 3).min(h) {
                        for i in x.saturating_sub(2)..(x + 3).min(w) {
                            s += v[j * w + i];
                            n += 1;
                        }
                    }
                    // f32 sums of at most 25 small integers, one division: rounding only
                    assert!((fast[y * w + x] - s / n as f32).abs() < 1e-4, "{w}x{h}");
                }
            }
        }
        assert!(box_mean(&[], 0, 3, 2).is_empty());
    }

    #[test]
    fn still_input_blends_and_moving_input_does_not() {
        let mut st = Stabilizer::new(0.5, 10.0);
        let input = flat(16, 16, 100);
        let mut first = flat(16, 16, 200);
        st.apply(&input, &mut first);
        assert_eq!(first.data[0], 200, "the first frame passes through");
        // Same input, new stylization: half of the previous output is kept.
        let mut second = flat(16, 16, 100);
        st.apply(&input, &mut second);
        assert_eq!(second.data[0], 150);
        // Input changed a lot everywhere: the new output is taken as is.
        let moved = flat(16, 16, 180);
        let mut third = flat(16, 16, 40);
        st.apply(&moved, &mut third);
        assert_eq!(third.data[0], 40);
        // After a reset the history is gone.
        st.reset();
        let mut fourth = flat(16, 16, 7);
        st.apply(&moved, &mut fourth);
        assert_eq!(fourth.data[0], 7);
    }

    #[test]
    fn flicker_is_relative_to_the_input() {
        let ins = vec![flat(4, 4, 100), flat(4, 4, 102), flat(4, 4, 100)];
        let steady = vec![flat(4, 4, 50); 3];
        let shimmer = vec![flat(4, 4, 50), flat(4, 4, 54), flat(4, 4, 50)];
        assert_eq!(flicker(&ins, &steady, 10.0), 0.0);
        assert!((flicker(&ins, &shimmer, 10.0) - 2.0).abs() < 1e-6);
        // Changes at or above the threshold are motion, not flicker.
        assert_eq!(flicker(&ins, &shimmer, 1.0), 0.0);
    }
}
