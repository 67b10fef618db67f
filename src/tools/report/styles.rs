//! The style gallery: every style of a model on one test picture, and SSIM of each output
//! against the content picture.
//!
//! Owns the generated test picture (used when no `--image` is given) and running the
//! engine once per style through the same [`crate::engine::open`] API `stylerd stylize`
//! uses. Drawing the grid is [`super::plot::grid`]'s job.

use std::path::Path;

use crate::config::{EngineConfig, Size};
use crate::engine::{self, StageTimes};
use crate::frame::RgbImage;
use crate::quality::ssim;
use crate::style::StyleSpec;

use super::ReportError;

/// Side of the square the styles run at: the size the papers and our bench use.
pub const SIDE: u32 = 256;

/// One style's output.
pub struct Styled {
    pub name: String,
    pub image: RgbImage,
    pub ssim: f64,
    pub ms: f64,
}

/// A deterministic 256x256 scene with what style transfer shows best: smooth sky, a hard
/// edged disc, stripes and a checkerboard (fine texture), and a dark foreground.
pub fn test_picture(side: u32) -> RgbImage {
    let s = side as f64;
    let mut data = Vec::with_capacity((side * side * 3) as usize);
    for y in 0..side {
        for x in 0..side {
            let (fx, fy) = (x as f64 / s, y as f64 / s);
            let sky = [
                (90.0 + 120.0 * fy) as u8,
                (150.0 + 80.0 * fy) as u8,
                (235.0 - 20.0 * fy) as u8,
            ];
            let (dx, dy) = (fx - 0.72, fy - 0.28);
            let px = if dx * dx + dy * dy < 0.018 {
                [250, 200, 60]
            } else if fy > 0.62 + 0.08 * (fx * 9.0).sin() {
                if (x / 16 + y / 16) % 2 == 0 {
                    [40, 110, 50]
                } else {
                    [70, 150, 60]
                }
            } else if fx < 0.35 && fy > 0.3 {
                let stripe = ((x + y) / 6) % 2 == 0;
                if stripe {
                    [180, 60, 50]
                } else {
                    [235, 225, 210]
                }
            } else {
                sky
            };
            data.extend(px);
        }
    }
    RgbImage {
        width: side,
        height: side,
        data,
    }
}

/// Loads `--image` scaled to `side` x `side`, or the generated picture.
pub fn content(image: Option<&Path>, side: u32) -> Result<RgbImage, ReportError> {
    let Some(path) = image else {
        return Ok(test_picture(side));
    };
    let img = image::open(path)
        .map_err(|e| ReportError::Input {
            path: path.into(),
            message: e.to_string(),
        })?
        .resize_exact(side, side, image::imageops::FilterType::Triangle)
        .to_rgb8();
    Ok(RgbImage {
        width: side,
        height: side,
        data: img.into_raw(),
    })
}

/// Runs `model` from `models_dir` on `content` once per style.
pub fn run_all(
    models_dir: &Path,
    model: &str,
    content: &RgbImage,
) -> Result<Vec<Styled>, ReportError> {
    let config = EngineConfig {
        models_dir: models_dir.into(),
        model: model.into(),
        size: Size {
            width: content.width,
            height: content.height,
        },
        ..EngineConfig::default()
    };
    let first = StyleSpec::parse("0").map_err(engine::EngineError::from)?;
    let mut engine = engine::open(&config, &first)?;
    let names = engine.styles().to_vec();
    if names.is_empty() {
        return Err(ReportError::NoStyles(model.into()));
    }
    let mut out = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let spec = StyleSpec::parse(&i.to_string()).map_err(engine::EngineError::from)?;
        engine.set_style(&spec)?;
        let started = std::time::Instant::now();
        let image = engine.stylize(content, &mut StageTimes::default())?;
        let ms = started.elapsed().as_secs_f64() * 1e3;
        if (image.width, image.height) != (content.width, content.height) {
            return Err(ReportError::OutputSize {
                model: model.into(),
                got: format!("{}x{}", image.width, image.height),
                want: format!("{}x{}", content.width, content.height),
            });
        }
        let ssim = ssim(&image, content);
        out.push(Styled {
            // multistyle26 names its styles `style-N`; only real names get the index added.
            name: if *name == format!("style-{i}") {
                name.clone()
            } else {
                format!("{i}: {name}")
            },
            image,
            ssim,
            ms,
        });
    }
    Ok(out)
}

/// Shrinks a picture by an integer factor (box filter) for the grid tiles.
pub fn shrink(img: &RgbImage, factor: u32) -> RgbImage {
    let f = factor.max(1);
    let (w, h) = (img.width / f, img.height / f);
    let mut data = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            let mut acc = [0u32; 3];
            for dy in 0..f {
                for dx in 0..f {
                    let p = img.pixel(x * f + dx, y * f + dy);
                    (0..3).for_each(|c| acc[c] += u32::from(p[c]));
                }
            }
            data.extend(acc.map(|a| (a / (f * f)) as u8));
        }
    }
    RgbImage {
        width: w,
        height: h,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_picture_is_deterministic_and_varied() {
        let a = test_picture(64);
        assert_eq!(a, test_picture(64));
        assert_eq!(a.data.len(), 64 * 64 * 3);
        let distinct: std::collections::HashSet<_> = a.data.chunks(3).collect();
        assert!(distinct.len() > 20);
    }

    #[test]
    fn shrink_averages_blocks() {
        let img = RgbImage {
            width: 2,
            height: 2,
            data: vec![0, 0, 0, 100, 100, 100, 200, 200, 200, 100, 100, 100],
        };
        assert_eq!(shrink(&img, 2).data, vec![100, 100, 100]);
    }
}
