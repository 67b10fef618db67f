//! Arbitrary style from any picture (Magenta, Ghiasi et al. 2017).
//!
//! A style image goes through `arbitrary_predict` (MobileNetV2, centre square resized to
//! 256x256) once, giving a 100-value style vector; `arbitrary_transform` then stylizes
//! frames with it at its fixed 384x384 (the frame loop resizes frames to it and back).
//! Two pictures can be interpolated by blending their vectors. This module builds the
//! engine; swapping it in between frames is the frame loop's job.

use std::path::Path;

use super::onnx::OnnxEngine;
use super::{Engine, EngineError};
use crate::config::{EngineConfig, Size};
use crate::frame::{self, RgbImage, resize_bilinear};
use crate::model::Manifest;

pub const PREDICTOR: &str = "arbitrary_predict";
pub const TRANSFORM: &str = "arbitrary_transform";
/// The predictor's fixed input side.
const STYLE_SIDE: u32 = 256;
/// The transform network's fixed input side.
const CONTENT_SIDE: u32 = 384;

/// Reads a picture and cuts its centre square (the predictor wants a square).
pub fn load_square(path: &Path) -> Result<RgbImage, EngineError> {
    let img = image::open(path)
        .map_err(|e| EngineError::StyleImage {
            path: path.into(),
            message: e.to_string(),
        })?
        .to_rgb8();
    let (w, h) = img.dimensions();
    let side = w.min(h);
    if side < 16 {
        return Err(EngineError::StyleImageTooSmall {
            path: path.into(),
            width: w,
            height: h,
        });
    }
    let cropped =
        image::imageops::crop_imm(&img, (w - side) / 2, (h - side) / 2, side, side).to_image();
    Ok(RgbImage::new(side, side, cropped.into_raw())?)
}

/// The 100-value style vector of a picture.
pub fn style_vector(base: &EngineConfig, style: &RgbImage) -> Result<Vec<f32>, EngineError> {
    let manifest = Manifest::find(&base.models_dir, PREDICTOR)?;
    let config = EngineConfig {
        model: PREDICTOR.into(),
        size: Size {
            width: STYLE_SIDE,
            height: STYLE_SIDE,
        },
        ..base.clone()
    };
    let mut predictor = OnnxEngine::open(&manifest, &config)?;
    let small = resize_bilinear(style, STYLE_SIDE, STYLE_SIDE);
    let input = frame::to_tensor(
        &small,
        manifest.layout,
        manifest.input_range,
        manifest.pad_multiple,
    )?;
    predictor.run_flat(&input)
}

/// `(1 - weight) * a + weight * b`, for interpolating two styles.
pub fn blend(a: &[f32], b: &[f32], weight: f32) -> Vec<f32> {
    a.iter()
        .zip(b)
        .map(|(x, y)| (1.0 - weight) * x + weight * y)
        .collect()
}

/// The transform network, ready to stylize with `vector`.
pub fn transform(base: &EngineConfig, vector: Vec<f32>) -> Result<Box<dyn Engine>, EngineError> {
    let manifest = Manifest::find(&base.models_dir, TRANSFORM)?;
    let config = EngineConfig {
        model: TRANSFORM.into(),
        size: Size {
            width: CONTENT_SIDE,
            height: CONTENT_SIDE,
        },
        ..base.clone()
    };
    let mut engine = OnnxEngine::open(&manifest, &config)?;
    engine.set_style_vector(vector)?;
    Ok(Box::new(engine))
}

/// Builds the engine for a style picture, optionally interpolated with a second one.
pub fn engine_for(
    base: &EngineConfig,
    image: &Path,
    and: Option<(&Path, f32)>,
) -> Result<Box<dyn Engine>, EngineError> {
    let mut vector = style_vector(base, &load_square(image)?)?;
    if let Some((other, weight)) = and {
        if !(0.0..=1.0).contains(&weight) {
            return Err(EngineError::Weight(weight));
        }
        let second = style_vector(base, &load_square(other)?)?;
        vector = blend(&vector, &second, weight);
    }
    transform(base, vector)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blending_interpolates_linearly() {
        assert_eq!(blend(&[0.0, 2.0], &[4.0, 2.0], 0.25), vec![1.0, 2.0]);
        assert_eq!(blend(&[1.0], &[3.0], 0.0), vec![1.0]);
    }

    #[test]
    fn unreadable_or_tiny_style_images_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("x.png");
        std::fs::write(&junk, b"nope").unwrap();
        assert!(
            load_square(&junk)
                .unwrap_err()
                .to_string()
                .contains("cannot read style image")
        );
        let tiny = dir.path().join("t.png");
        image::RgbImage::new(8, 40).save(&tiny).unwrap();
        assert!(
            load_square(&tiny)
                .unwrap_err()
                .to_string()
                .contains("at least 16 pixels")
        );
        let wide = dir.path().join("w.png");
        image::RgbImage::from_fn(60, 20, |x, _| image::Rgb([x as u8, 0, 0]))
            .save(&wide)
            .unwrap();
        let sq = load_square(&wide).unwrap();
        assert_eq!((sq.width, sq.height), (20, 20));
        assert_eq!(sq.pixel(0, 0)[0], 20, "the centre square starts at x = 20");
    }
}
