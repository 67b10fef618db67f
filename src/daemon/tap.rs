//! A window onto the frame loop for the web dashboard: the latest stylized frame and its
//! original, copied at a capped rate and only while someone watches, so a browser never
//! slows the loop; and the loop's heartbeat for `/healthz`.
//!
//! The frame loop calls [`FrameTap::offer`] after each pushed frame; the copy (two RGB
//! buffers of the frame's size) happens at most `preview-fps` times a second while a
//! viewer is subscribed, and every [`IDLE_EVERY`] otherwise (the style gallery renders its
//! thumbnails from that recent original). JPEG encoding happens on the HTTP side, once per
//! frame however many viewers there are.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::frame::RgbImage;

/// With nobody watching, a frame is still kept this often for the style gallery.
pub const IDLE_EVERY: Duration = Duration::from_secs(2);

/// One captured pair, shared by every viewer.
#[derive(Debug)]
pub struct TapFrame {
    pub seq: u64,
    pub at: Instant,
    pub stylized: RgbImage,
    pub original: RgbImage,
    /// JPEG encodings, made by the first viewer that needs them.
    pub stylized_jpeg: OnceLock<Vec<u8>>,
    pub original_jpeg: OnceLock<Vec<u8>>,
}

#[derive(Debug)]
pub struct FrameTap {
    every: Duration,
    viewers: AtomicUsize,
    latest: Mutex<Option<Arc<TapFrame>>>,
    seq: watch::Sender<u64>,
    started: Instant,
    /// Milliseconds since `started` at the loop's last turn (it turns at least every 100 ms).
    heartbeat_ms: AtomicU64,
    /// Milliseconds since `started` at the last stylized frame (0: none yet).
    last_frame_ms: AtomicU64,
}

impl Default for FrameTap {
    fn default() -> Self {
        Self::new(10.0)
    }
}

impl FrameTap {
    pub fn new(preview_fps: f64) -> Self {
        Self {
            every: Duration::from_secs_f64(1.0 / preview_fps.max(0.01)),
            viewers: AtomicUsize::new(0),
            latest: Mutex::new(None),
            seq: watch::channel(0).0,
            started: Instant::now(),
            heartbeat_ms: AtomicU64::new(0),
            last_frame_ms: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Called by the frame loop at every turn.
    pub fn beat(&self) {
        self.heartbeat_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    /// Time since the loop last turned.
    pub fn since_beat(&self) -> Duration {
        let ms = self.now_ms() - self.heartbeat_ms.load(Ordering::Relaxed).min(self.now_ms());
        Duration::from_millis(ms)
    }

    /// Time since the last stylized frame; `None` before the first.
    pub fn since_frame(&self) -> Option<Duration> {
        match self.last_frame_ms.load(Ordering::Relaxed) {
            0 => None,
            t => Some(Duration::from_millis(self.now_ms().saturating_sub(t))),
        }
    }

    /// Called by the frame loop after a stylized frame was pushed: keeps a copy when one is
    /// due. Never blocks on a viewer (the lock is only held to swap an `Arc`).
    pub fn offer(&self, original: &RgbImage, stylized: &RgbImage, now: Instant) {
        self.last_frame_ms
            .store(self.now_ms().max(1), Ordering::Relaxed);
        let every = if self.viewers.load(Ordering::Relaxed) > 0 {
            self.every
        } else {
            IDLE_EVERY
        };
        let due = match self.latest.lock() {
            Ok(latest) => latest
                .as_ref()
                .is_none_or(|f| now.saturating_duration_since(f.at) >= every),
            Err(_) => false,
        };
        if !due {
            return;
        }
        let seq = *self.seq.borrow() + 1;
        let frame = Arc::new(TapFrame {
            seq,
            at: now,
            stylized: stylized.clone(),
            original: original.clone(),
            stylized_jpeg: OnceLock::new(),
            original_jpeg: OnceLock::new(),
        });
        if let Ok(mut latest) = self.latest.lock() {
            *latest = Some(frame);
        }
        self.seq.send_replace(seq);
    }

    /// The latest captured pair, if any.
    pub fn latest(&self) -> Option<Arc<TapFrame>> {
        self.latest.lock().ok().and_then(|l| l.clone())
    }

    /// Subscribes a viewer: frames are kept at the preview rate until the guard is dropped.
    pub fn watch(self: &Arc<Self>) -> (Viewer, watch::Receiver<u64>) {
        self.viewers.fetch_add(1, Ordering::Relaxed);
        (Viewer(self.clone()), self.seq.subscribe())
    }

    pub fn viewers(&self) -> usize {
        self.viewers.load(Ordering::Relaxed)
    }
}

/// Keeps the preview rate up while alive.
#[derive(Debug)]
pub struct Viewer(Arc<FrameTap>);

impl Drop for Viewer {
    fn drop(&mut self) {
        self.0.viewers.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(v: u8) -> RgbImage {
        RgbImage::new(4, 2, vec![v; 24]).unwrap()
    }

    #[test]
    fn copies_at_the_preview_rate_only_while_watched() {
        let tap = Arc::new(FrameTap::new(10.0));
        let t0 = Instant::now();
        tap.offer(&image(1), &image(2), t0);
        assert_eq!(
            tap.latest().unwrap().seq,
            1,
            "the first frame is always kept"
        );
        // Unwatched: nothing new before IDLE_EVERY.
        tap.offer(&image(3), &image(4), t0 + Duration::from_millis(500));
        assert_eq!(tap.latest().unwrap().seq, 1);
        let (viewer, mut rx) = tap.watch();
        assert_eq!(tap.viewers(), 1);
        // Watched at 10 fps: a frame 100 ms later is kept, one 50 ms after that is not.
        tap.offer(&image(5), &image(6), t0 + Duration::from_millis(600));
        assert!(rx.has_changed().unwrap());
        assert_eq!(*rx.borrow_and_update(), 2);
        tap.offer(&image(7), &image(8), t0 + Duration::from_millis(650));
        assert!(!rx.has_changed().unwrap());
        let f = tap.latest().unwrap();
        assert_eq!((f.original.data[0], f.stylized.data[0]), (5, 6));
        drop(viewer);
        assert_eq!(tap.viewers(), 0);
        tap.offer(&image(9), &image(9), t0 + Duration::from_millis(800));
        assert_eq!(
            tap.latest().unwrap().seq,
            2,
            "unwatched again: back to IDLE_EVERY"
        );
    }

    #[test]
    fn heartbeat_and_last_frame() {
        let tap = FrameTap::new(10.0);
        assert_eq!(tap.since_frame(), None);
        tap.beat();
        assert!(tap.since_beat() < Duration::from_secs(1));
        tap.offer(&image(1), &image(1), Instant::now());
        assert!(tap.since_frame().unwrap() < Duration::from_secs(1));
    }
}
