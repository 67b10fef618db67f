//! Training data: every image under a folder (recursively), decoded once and kept at a
//! bounded size, sampled as random square crops with random horizontal flips; image <->
//! tensor conversion (RGB 0..1, NCHW) and PNG preview grids. Owns no model code.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use image::{RgbImage, imageops::FilterType};
use rand::{Rng, SeedableRng, rngs::StdRng};

/// Why images could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read image {path}: {message}")]
    Read { path: String, message: String },
    #[error("cannot write image {path}: {message}")]
    Write { path: String, message: String },
    #[error("no .png/.jpg/.jpeg images under {0}")]
    Empty(String),
}

/// All image files under `root` as [`list_images`], or one sentence if there are none.
pub fn images(root: &Path) -> Result<Vec<PathBuf>, DataError> {
    let files = list_images(root);
    if files.is_empty() {
        return Err(DataError::Empty(root.display().to_string()));
    }
    Ok(files)
}

/// All image files under `root`, sorted so runs are reproducible.
fn list_images(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
            {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

pub fn read_rgb(path: &Path) -> Result<RgbImage, DataError> {
    image::open(path)
        .map(|i| i.to_rgb8())
        .map_err(|e| DataError::Read {
            path: path.display().to_string(),
            message: e.to_string(),
        })
}

/// Resizes so the shorter side is `side` (keeping the aspect ratio).
pub fn resize_shorter(img: &RgbImage, side: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    let s = side as f32 / w.min(h) as f32;
    let (nw, nh) = (
        ((w as f32 * s).round() as u32).max(side),
        ((h as f32 * s).round() as u32).max(side),
    );
    image::imageops::resize(img, nw, nh, FilterType::Triangle)
}

/// Converts images of equal size to a [n, 3, h, w] tensor in 0..1.
pub fn to_tensor(images: &[RgbImage], device: &Device) -> Tensor<4> {
    let (w, h) = images[0].dimensions();
    let (w, h) = (w as usize, h as usize);
    let mut data = Vec::with_capacity(images.len() * 3 * w * h);
    for img in images {
        for c in 0..3 {
            data.extend(img.pixels().map(|p| p[c] as f32 / 255.0));
        }
    }
    Tensor::from_data(TensorData::new(data, [images.len(), 3, h, w]), device)
}

/// The `index`-th image of a [n, 3, h, w] tensor, clamped to 0..1.
pub fn to_image(t: &Tensor<4>, index: usize) -> RgbImage {
    let [_, _, h, w] = t.dims();
    let v: Vec<f32> = t
        .clone()
        .inner()
        .slice([index..index + 1, 0..3, 0..h, 0..w])
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap_or_default();
    RgbImage::from_fn(w as u32, h as u32, |x, y| {
        let i = y as usize * w + x as usize;
        image::Rgb(std::array::from_fn(|c| {
            (v[c * w * h + i].clamp(0.0, 1.0) * 255.0).round() as u8
        }))
    })
}

pub fn save_png(img: &RgbImage, path: &Path) -> Result<(), DataError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = std::fs::create_dir_all(dir);
    }
    img.save(path).map_err(|e| DataError::Write {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

/// Tiles equally sized images into a grid of `columns` columns.
pub fn grid(images: &[RgbImage], columns: usize) -> RgbImage {
    let (w, h) = images[0].dimensions();
    let rows = images.len().div_ceil(columns);
    let mut out = RgbImage::new(w * columns as u32, h * rows as u32);
    for (i, img) in images.iter().enumerate() {
        let (x, y) = ((i % columns) as u32 * w, (i / columns) as u32 * h);
        image::imageops::replace(&mut out, img, x.into(), y.into());
    }
    out
}

/// Decoded training images and a seeded sampler of random crops.
pub struct CropSampler {
    images: Vec<RgbImage>,
    size: u32,
    rng: StdRng,
}

impl CropSampler {
    /// Decodes every image under `root`, each stored with its shorter side at most 2x `size`.
    pub fn open(root: &Path, size: u32, seed: u64) -> Result<Self, DataError> {
        let mut images = Vec::new();
        for p in self::images(root)? {
            let img = read_rgb(&p)?;
            let (w, h) = img.dimensions();
            let img = if w.min(h) > 2 * size || w.min(h) < size {
                resize_shorter(&img, 2 * size)
            } else {
                img
            };
            images.push(img);
        }
        Ok(Self::from_images(images, size, seed))
    }

    pub fn from_images(images: Vec<RgbImage>, size: u32, seed: u64) -> Self {
        CropSampler {
            images,
            size,
            rng: StdRng::seed_from_u64(seed),
        }
    }

    pub fn len(&self) -> usize {
        self.images.len()
    }

    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    /// One random crop: a random image, a random scale (shorter side between `size` and the
    /// stored size), a random position and a coin-flip horizontal mirror.
    pub fn crop(&mut self) -> RgbImage {
        let img = &self.images[self.rng.random_range(0..self.images.len())];
        let (w, h) = img.dimensions();
        let short = w.min(h);
        let target = self.rng.random_range(self.size..=short.max(self.size));
        let scaled = if target == short {
            img.clone()
        } else {
            resize_shorter(img, target)
        };
        let (w, h) = scaled.dimensions();
        let x = self.rng.random_range(0..=w - self.size);
        let y = self.rng.random_range(0..=h - self.size);
        let mut crop = image::imageops::crop_imm(&scaled, x, y, self.size, self.size).to_image();
        if self.rng.random_bool(0.5) {
            image::imageops::flip_horizontal_in_place(&mut crop);
        }
        crop
    }

    pub fn batch(&mut self, n: usize, device: &Device) -> (Vec<RgbImage>, Tensor<4>) {
        let crops: Vec<RgbImage> = (0..n).map(|_| self.crop()).collect();
        let t = to_tensor(&crops, device);
        (crops, t)
    }

    /// Generated images (gradients, stripes, discs) for tests and smoke runs.
    pub fn synthetic(count: usize, side: u32) -> Vec<RgbImage> {
        (0..count)
            .map(|k| {
                RgbImage::from_fn(side, side, |x, y| {
                    let (fx, fy) = (x as f32 / side as f32, y as f32 / side as f32);
                    let stripe = if ((x + y * k as u32) / 4).is_multiple_of(2) {
                        200
                    } else {
                        40
                    };
                    let d = ((fx - 0.5).powi(2) + (fy - 0.5).powi(2)).sqrt();
                    let disc = if d < 0.25 + 0.05 * k as f32 { 230 } else { 20 };
                    image::Rgb([(fx * 255.0) as u8, stripe, disc])
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crops_have_the_requested_size_and_round_trip_through_tensors() {
        let mut s = CropSampler::from_images(CropSampler::synthetic(2, 40), 16, 1);
        let (crops, t) = s.batch(3, &Device::flex());
        assert_eq!(t.dims(), [3, 3, 16, 16]);
        assert_eq!(to_image(&t, 1), crops[1]);
        assert_eq!(grid(&crops, 2).dimensions(), (32, 32));
    }
}
