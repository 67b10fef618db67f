//! Calibration and held-out frames for `stylerd quantize`: crops of the pictures in a
//! folder (with a check that held-out pictures are not calibration pictures), or frames of
//! any source URI.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::QuantizeError;
use crate::config::{Size, SourceConfig, SourceMode, SourceUri};
use crate::frame::RgbImage;
use crate::media::source::{FrameSource, Pulled};

/// `count` crops of the pictures in `dir` at `size`, one per picture in name order (the
/// largest centred-aspect crop) while `count` does not exceed them; past that, further
/// rounds take smaller crops at other offsets.
pub fn frames_from_dir(
    dir: &Path,
    size: Size,
    skip: usize,
    count: usize,
) -> Result<Vec<RgbImage>, QuantizeError> {
    let paths = picture_paths(dir)?;
    if paths.is_empty() {
        return Err(QuantizeError::Frames(format!(
            "{} holds no PNG or JPEG picture",
            dir.display()
        )));
    }
    // Only the pictures used are decoded, each once.
    let mut decoded: std::collections::HashMap<usize, image::RgbImage> = Default::default();
    let scales = [1.0, 0.75, 0.6, 0.9, 0.5];
    let mut out = Vec::with_capacity(count);
    for k in skip..skip + count {
        let index = k % paths.len();
        let pic = match decoded.entry(index) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let pic = image::open(&paths[index]).map_err(|e| QuantizeError::Read {
                    path: paths[index].clone(),
                    message: e.to_string(),
                })?;
                e.insert(pic.to_rgb8())
            }
        };
        let round = k / paths.len();
        let (pw, ph) = (pic.width() as f64, pic.height() as f64);
        let aspect = size.width as f64 / size.height as f64;
        let (mut cw, mut ch) = if pw / ph > aspect {
            (ph * aspect, ph)
        } else {
            (pw, pw / aspect)
        };
        let s = scales[round % scales.len()];
        cw *= s;
        ch *= s;
        let f = ((round * 37) % 100) as f64 / 100.0;
        let (x, y) = ((pw - cw) * f, (ph - ch) * (1.0 - f));
        let crop = image::imageops::crop_imm(
            pic,
            x as u32,
            y as u32,
            cw.max(1.0) as u32,
            ch.max(1.0) as u32,
        )
        .to_image();
        let resized = image::imageops::resize(
            &crop,
            size.width,
            size.height,
            image::imageops::FilterType::Triangle,
        );
        out.push(
            RgbImage::new(size.width, size.height, resized.into_raw())
                .map_err(|e| QuantizeError::Frames(e.to_string()))?,
        );
    }
    Ok(out)
}

/// The pictures (PNG/JPEG) of `dir`, sorted by name.
fn picture_paths(dir: &Path) -> Result<Vec<PathBuf>, QuantizeError> {
    let mut paths: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|e| QuantizeError::Read {
            path: dir.into(),
            message: e.to_string(),
        })?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
        })
        .collect();
    paths.sort();
    Ok(paths)
}

/// Refuses held-out pictures that are also calibration pictures (same bytes).
pub fn check_disjoint(calib: &Path, eval: &Path) -> Result<(), QuantizeError> {
    let hashes = |dir: &Path| -> Result<Vec<(String, PathBuf)>, QuantizeError> {
        picture_paths(dir)?
            .into_iter()
            .map(|p| {
                let bytes = fs::read(&p).map_err(|e| QuantizeError::Read {
                    path: p.clone(),
                    message: e.to_string(),
                })?;
                Ok((crate::model::sha256_hex(&bytes), p))
            })
            .collect()
    };
    let known: std::collections::HashMap<String, PathBuf> = hashes(calib)?.into_iter().collect();
    for (hash, path) in hashes(eval)? {
        if let Some(same) = known.get(&hash) {
            return Err(QuantizeError::Frames(format!(
                "held-out picture {} is also a calibration picture ({}): evaluation must use other pictures",
                path.display(),
                same.display()
            )));
        }
    }
    Ok(())
}

/// `count` frames of a source, every `stride`-th one, after skipping `skip` of those.
pub fn frames_from_source(
    uri: &SourceUri,
    size: Size,
    skip: usize,
    count: usize,
) -> Result<Vec<RgbImage>, QuantizeError> {
    let cfg = SourceConfig {
        uri: uri.clone(),
        mode: Some(SourceMode::EveryFrame),
        ..Default::default()
    };
    let mut source =
        FrameSource::open(&cfg, size).map_err(|e| QuantizeError::Frames(e.to_string()))?;
    // Neighbouring frames of a live source are nearly identical; spread the picks out.
    let stride = 5;
    let mut out = Vec::with_capacity(count);
    let mut seen = 0usize;
    while out.len() < count {
        match source
            .pull(Duration::from_secs(10))
            .map_err(|e| QuantizeError::Frames(e.to_string()))?
        {
            Pulled::Frame(f) => {
                if seen.is_multiple_of(stride) && seen / stride >= skip {
                    out.push(f.image);
                }
                seen += 1;
            }
            Pulled::Timeout => {
                return Err(QuantizeError::Frames(format!(
                    "{uri} sent no frame for 10 s"
                )));
            }
            Pulled::Eos => break,
        }
    }
    if out.is_empty() {
        return Err(QuantizeError::Frames(format!(
            "{uri} ended before the first frame"
        )));
    }
    Ok(out)
}
