//! PNG snapshots of the stylized output, periodic and on request.
//!
//! Written from the engine's RGB output (not from the encoder), so a snapshot is exactly
//! what the network produced. Owns file naming and the schedule; nothing else.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::frame::RgbImage;

use super::SinkError;

/// Writes PNG snapshots of the output, periodically and on request.
pub struct Snapshotter {
    dir: PathBuf,
    every: Option<Duration>,
    last: Option<Instant>,
    taken: u64,
}

impl Snapshotter {
    pub fn new(dir: PathBuf, every_s: f64) -> Self {
        let every = (every_s > 0.0).then(|| Duration::from_secs_f64(every_s));
        Self {
            dir,
            every,
            last: None,
            taken: 0,
        }
    }

    /// Whether a periodic snapshot is due now.
    pub fn due(&self, now: Instant) -> bool {
        match (self.every, self.last) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(every), Some(last)) => now.duration_since(last) >= every,
        }
    }

    /// Writes `image` as `snapshot-<n>-<unix ms>.png` and returns its path.
    pub fn write(&mut self, image: &RgbImage, now: Instant) -> Result<PathBuf, SinkError> {
        std::fs::create_dir_all(&self.dir).map_err(|source| SinkError::Folder {
            path: self.dir.clone(),
            source,
        })?;
        let ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let path = self
            .dir
            .join(format!("snapshot-{ms}-{:04}.png", self.taken));
        write_png(&path, image)?;
        self.last = Some(now);
        self.taken += 1;
        Ok(path)
    }
}

pub fn write_png(path: &Path, image: &RgbImage) -> Result<(), SinkError> {
    image::save_buffer(
        path,
        &image.data,
        image.width,
        image.height,
        image::ExtendedColorType::Rgb8,
    )
    .map_err(|e| SinkError::Snapshot {
        path: path.into(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_are_due_on_schedule() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Snapshotter::new(dir.path().join("snaps"), 2.0);
        let t0 = Instant::now();
        assert!(s.due(t0));
        let img = RgbImage::new(4, 2, vec![200; 24]).unwrap();
        let path = s.write(&img, t0).unwrap();
        assert!(!s.due(t0 + Duration::from_secs(1)));
        assert!(s.due(t0 + Duration::from_secs(2)));
        let back = image::open(&path).unwrap().to_rgb8();
        assert_eq!((back.width(), back.height()), (4, 2));
        assert_eq!(back.into_raw(), img.data);
        assert!(!Snapshotter::new(dir.path().into(), 0.0).due(t0));
    }
}
