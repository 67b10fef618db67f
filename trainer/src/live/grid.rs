//! The spatial context's map (`live_grid`): scales and shifts per 1/32-resolution cell,
//! upsampled bilinearly onto the 1/4-resolution features and cut to a crop's window.

use burn::nn::conv::Conv2d;
use burn::prelude::*;

/// The spatial context: per cell of the context's 1/32-resolution map, ReLU(1x1 conv of
/// the map + 1x1 conv of the global features after the context's fc, which hold a
/// conditional student's style) and a 1x1 conv to C2 scales and C2 shifts.
#[derive(Module, Debug)]
pub struct LiveGrid {
    pub local: Conv2d,
    pub global: Conv2d,
    pub out: Conv2d,
}

/// The spatial context's scales and shifts: [n, 2 * C2, h, w] at 1/32 resolution.
pub struct GridMap(Tensor<4>);

/// Upsampling factor from the context's map (1/32) to the features it modulates (1/4).
pub const GRID_UP: usize = 8;

impl GridMap {
    /// The map [n, 2 * C2, h, w]: C2 scales (less 1), then C2 shifts.
    pub fn new(map: Tensor<4>) -> Self {
        Self(map)
    }

    /// (1 + scale, shift), each [n, C2, h4, w4], for features of `h4`x`w4` whose top-left
    /// corner sits at `at[i]` (rows, columns, 1/4-resolution units) in the whole frame's
    /// features; `at` empty: every one at (0, 0), the whole frame. The map is upsampled
    /// x8 bilinearly (half-pixel centres, edges clamped: ONNX Resize `linear`,
    /// `half_pixel`) and cut there.
    pub fn at(&self, h4: usize, w4: usize, at: &[[usize; 2]]) -> (Tensor<4>, Tensor<4>) {
        let [n, c, h, w] = self.0.dims();
        let device = self.0.device();
        // Bilinear upsampling is linear in the map: each window is A_y . map . A_x^T, with
        // one batched matmul per axis (autodiff through `interpolate` for every crop cost
        // more than the rest of a training step).
        let corners: Vec<[usize; 2]> = if at.is_empty() {
            vec![[0, 0]; n]
        } else {
            at.to_vec()
        };
        let weights = |axis: usize, len: usize, size: usize| {
            let rows: Vec<f32> = corners
                .iter()
                .flat_map(|corner| {
                    let first = corner[axis].min((size * GRID_UP).saturating_sub(len));
                    lerp_rows(first, len, size)
                })
                .collect();
            Tensor::<1>::from_floats(rows.as_slice(), &device).reshape([n, 1, len, size])
        };
        let ay = weights(0, h4, h);
        let ax = weights(1, w4, w).swap_dims(2, 3);
        let map = ay.matmul(self.0.clone()).matmul(ax);
        let half = c / 2;
        (
            map.clone().slice([0..n, 0..half, 0..h4, 0..w4]) + 1.0,
            map.slice([0..n, half..c, 0..h4, 0..w4]),
        )
    }
}

/// Rows `first..first + len` of the x[`GRID_UP`] bilinear upsampling of `size` cells as a
/// `len` x `size` matrix (row-major): output `o` reads cell `i = (o + 0.5) / 8 - 0.5`,
/// clamped to the cells, weighting floor(i) by 1 - frac(i) and the next cell by frac(i)
/// (ONNX Resize `linear`, `half_pixel`; burn's `interpolate` without aligned corners).
fn lerp_rows(first: usize, len: usize, size: usize) -> Vec<f32> {
    let mut m = vec![0.0; len * size];
    for r in 0..len {
        let i = ((first + r) as f64 + 0.5) / GRID_UP as f64 - 0.5;
        let i = i.clamp(0.0, (size - 1) as f64);
        let lo = i.floor() as usize;
        let hi = (lo + 1).min(size - 1);
        let t = (i - lo as f64) as f32;
        m[r * size + lo] += 1.0 - t;
        m[r * size + hi] += t;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::module::interpolate;
    use burn::tensor::ops::{InterpolateMode, InterpolateOptions};

    #[test]
    fn a_crops_grid_is_the_whole_frames_grid_cut_at_the_crop() {
        let device = Device::flex();
        let map = GridMap(Tensor::random(
            [1, 4, 3, 5],
            burn::tensor::Distribution::Default,
            &device,
        ));
        // The whole frame's features: 20x36 (a map of 3x5 upsampled to 24x40), as burn's
        // own bilinear interpolation (the ONNX export's Resize) gives them.
        let (s, b) = map.at(20, 36, &[]);
        let up = interpolate(
            map.0.clone(),
            InterpolateOptions::new(InterpolateMode::Bilinear)
                .with_align_corners(false)
                .with_output_size([24, 40]),
        )
        .slice([0..1, 0..4, 0..20, 0..36]);
        let whole = Tensor::cat(vec![s.clone() - 1.0, b.clone()], 1);
        let d: f32 = (whole - up).abs().max().into_scalar();
        assert!(d < 1e-6, "upsampling differs from interpolate by {d}");
        // Every window position, the first and last rows and columns included.
        for [y, x] in (0..=8).flat_map(|y| (0..=24).map(move |x| [y, x])) {
            let (cs, cb) = map.at(12, 12, &[[y, x]]);
            let want = |t: &Tensor<4>| t.clone().slice([0..1, 0..2, y..y + 12, x..x + 12]);
            let d: f32 = (cs - want(&s)).abs().max().into_scalar();
            let e: f32 = (cb - want(&b)).abs().max().into_scalar();
            assert!(d < 1e-6 && e < 1e-6, "crop at {y},{x}: {d} {e}");
        }
        // Scales are 1 + the map's first half: a zero map is the identity.
        let zero = GridMap(Tensor::zeros([1, 4, 3, 5], &device));
        let (s, b) = zero.at(20, 36, &[]);
        let s: f32 = (s - 1.0).abs().max().into_scalar();
        let b: f32 = b.abs().max().into_scalar();
        assert_eq!((s, b), (0.0, 0.0));
    }
}
