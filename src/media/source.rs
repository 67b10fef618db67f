//! The capture pipeline: a source URI in, RGB frames of the inference size out.
//!
//! `source -> decodebin -> videoconvert -> videoscale -> appsink (RGB, WxH)`. The appsink
//! callback moves each sample into a one-slot mailbox: in live mode a newer frame replaces
//! an unread one and the replaced frame is counted as dropped, so latency never queues up;
//! in every-frame mode the callback waits for the slot (files, tests, benchmarks). Bus
//! errors become [`BusError`] values, never panics. The pipeline goes to `Null` on drop.
//! This module does not decide what happens on errors (the daemon reconnects).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;
use thiserror::Error;

use super::bus::BusError;
use crate::config::{Size, SourceConfig, SourceMode, SourceUri};
use crate::frame::{Frame, RgbImage};

#[derive(Debug, Error)]
pub enum SourceError {
    #[error("GStreamer is not usable: {0}")]
    Init(String),
    #[error("cannot build the capture pipeline for {uri}: {message}")]
    Build { uri: String, message: String },
    #[error("cannot start the capture pipeline for {uri}: {message}")]
    Start { uri: String, message: String },
    #[error("camera error from {0}")]
    Bus(#[from] BusError),
    #[error("frame from the source has an unexpected format: {0}")]
    Format(String),
}

/// What one `pull` got.
#[derive(Debug)]
pub enum Pulled {
    Frame(Frame),
    /// No frame within the timeout; the source may still be alive.
    Timeout,
    /// The source ended (end of file, or a live source that hung up).
    Eos,
}

#[derive(Default)]
struct Slot {
    sample: Option<(gst::Sample, Instant)>,
    eos: bool,
}

/// Shared between the appsink's streaming thread and the puller.
#[derive(Default)]
struct Mailbox {
    slot: Mutex<Slot>,
    changed: Condvar,
    closed: AtomicBool,
    captured: AtomicU64,
    dropped: AtomicU64,
}

impl Mailbox {
    fn lock(&self) -> std::sync::MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Counters a source keeps across its lifetime.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SourceCounts {
    /// Frames that reached the end of the capture pipeline.
    pub captured: u64,
    /// Frames replaced by a newer one before the engine took them (live mode).
    pub dropped: u64,
}

pub struct FrameSource {
    pipeline: gst::Pipeline,
    mailbox: Arc<Mailbox>,
    size: Size,
    seq: u64,
    uri: String,
}

/// The `gst-launch` description of the head of the pipeline, up to raw video.
fn head(uri: &SourceUri, cfg: &SourceConfig) -> Result<String, String> {
    let quoted = |s: &str| {
        if s.contains(['"', '\\']) {
            Err(format!("{s:?} contains a quote or backslash"))
        } else {
            Ok(format!("\"{s}\""))
        }
    };
    Ok(match uri {
        SourceUri::Rtsp(u) => format!(
            "rtspsrc location={} latency={} ! decodebin",
            quoted(u)?,
            cfg.rtsp_latency_ms
        ),
        SourceUri::File(p) => {
            if !p.is_file() {
                return Err(format!("file {} does not exist", p.display()));
            }
            format!(
                "filesrc location={} ! decodebin",
                quoted(&p.to_string_lossy())?
            )
        }
        SourceUri::V4l2(dev) => {
            if !dev.exists() {
                return Err(format!("video device {} does not exist", dev.display()));
            }
            format!(
                "v4l2src device={} ! decodebin",
                quoted(&dev.to_string_lossy())?
            )
        }
        SourceUri::Test {
            pattern,
            num_buffers,
            fps,
        } => format!(
            "videotestsrc is-live=true pattern={pattern} num-buffers={} ! video/x-raw,framerate={fps}/1",
            num_buffers.map_or(-1, i64::from)
        ),
    })
}

impl FrameSource {
    pub fn open(cfg: &SourceConfig, size: Size) -> Result<Self, SourceError> {
        gst::init().map_err(|e| SourceError::Init(e.to_string()))?;
        let uri = &cfg.uri;
        let live = cfg.mode() == SourceMode::Live;
        let uri_text = uri.to_string();
        let build = |message: String| SourceError::Build {
            uri: uri_text.clone(),
            message,
        };
        // A file played "live" is paced at its own frame rate like a camera.
        let sync = live && matches!(uri, SourceUri::File(_));
        let description = format!(
            "{} ! videoconvert ! videoscale ! \
             video/x-raw,format=RGB,width={},height={},pixel-aspect-ratio=1/1 ! \
             appsink name=frames max-buffers=1 drop=false sync={sync} enable-last-sample=false",
            head(uri, cfg).map_err(build)?,
            size.width,
            size.height,
        );
        let pipeline = gst::parse::launch(&description)
            .map_err(|e| build(e.to_string()))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| build("not a pipeline".into()))?;
        let appsink = pipeline
            .by_name("frames")
            .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
            .ok_or_else(|| build("no appsink".into()))?;
        let mailbox = Arc::new(Mailbox::default());
        let (mb_sample, mb_eos) = (mailbox.clone(), mailbox.clone());
        appsink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    let captured = capture_instant(sink, &sample);
                    mb_sample.captured.fetch_add(1, Ordering::Relaxed);
                    let mut slot = mb_sample.lock();
                    if !live {
                        while slot.sample.is_some() && !mb_sample.closed.load(Ordering::Relaxed) {
                            slot = mb_sample
                                .changed
                                .wait(slot)
                                .unwrap_or_else(|p| p.into_inner());
                        }
                    }
                    if mb_sample.closed.load(Ordering::Relaxed) {
                        return Err(gst::FlowError::Flushing);
                    }
                    if slot.sample.replace((sample, captured)).is_some() {
                        mb_sample.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    mb_sample.changed.notify_all();
                    Ok(gst::FlowSuccess::Ok)
                })
                .eos(move |_| {
                    mb_eos.lock().eos = true;
                    mb_eos.changed.notify_all();
                })
                .build(),
        );
        let this = Self {
            pipeline,
            mailbox,
            size,
            seq: 0,
            uri: uri_text.clone(),
        };
        this.pipeline
            .set_state(gst::State::Playing)
            .map_err(|_| SourceError::Start {
                uri: uri_text.clone(),
                message: this
                    .bus_error()
                    .map_or_else(|| "state change failed".into(), |e| e.to_string()),
            })?;
        Ok(this)
    }

    fn bus_error(&self) -> Option<BusError> {
        BusError::pending(&self.pipeline)
    }

    /// Waits up to `timeout` for the next frame.
    pub fn pull(&mut self, timeout: Duration) -> Result<Pulled, SourceError> {
        if let Some(err) = self.bus_error() {
            return Err(err.into());
        }
        let deadline = Instant::now() + timeout;
        let mut slot = self.mailbox.lock();
        loop {
            if let Some((sample, captured)) = slot.sample.take() {
                self.mailbox.changed.notify_all();
                drop(slot);
                let image = self.to_image(&sample)?;
                let frame = Frame {
                    seq: self.seq,
                    image,
                    captured,
                };
                self.seq += 1;
                return Ok(Pulled::Frame(frame));
            }
            if slot.eos {
                return Ok(Pulled::Eos);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(Pulled::Timeout);
            }
            slot = self
                .mailbox
                .changed
                .wait_timeout(slot, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    fn to_image(&self, sample: &gst::Sample) -> Result<RgbImage, SourceError> {
        let caps = sample
            .caps()
            .ok_or_else(|| SourceError::Format("sample without caps".into()))?;
        let info = gst_video::VideoInfo::from_caps(caps)
            .map_err(|e| SourceError::Format(e.to_string()))?;
        if (info.width(), info.height()) != (self.size.width, self.size.height) {
            return Err(SourceError::Format(format!(
                "got {}x{}, asked for {}",
                info.width(),
                info.height(),
                self.size
            )));
        }
        let buffer = sample
            .buffer()
            .ok_or_else(|| SourceError::Format("sample without buffer".into()))?;
        let map = buffer
            .map_readable()
            .map_err(|e| SourceError::Format(e.to_string()))?;
        let stride = info.stride()[0] as usize;
        RgbImage::from_strided(info.width(), info.height(), stride, &map)
            .map_err(|e| SourceError::Format(e.to_string()))
    }

    pub fn counts(&self) -> SourceCounts {
        SourceCounts {
            captured: self.mailbox.captured.load(Ordering::Relaxed),
            dropped: self.mailbox.dropped.load(Ordering::Relaxed),
        }
    }

    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// Frames in a finite source (its duration times its frame rate), once it plays and
    /// when the container says; `None` for live sources and unknown lengths.
    pub fn total_frames(&self) -> Option<u64> {
        let duration = self.pipeline.query_duration::<gst::ClockTime>()?;
        let caps = self
            .pipeline
            .by_name("frames")?
            .static_pad("sink")?
            .current_caps()?;
        let rate = caps.structure(0)?.get::<gst::Fraction>("framerate").ok()?;
        if rate.numer() <= 0 || rate.denom() <= 0 {
            return None;
        }
        let frames = duration.nseconds() as f64 / 1e9 * rate.numer() as f64 / rate.denom() as f64;
        Some(frames.round() as u64)
    }
}

/// When a sample was captured: its running time on the pipeline clock for live sources,
/// else (or when that is implausible) the moment it arrived here.
fn capture_instant(sink: &gst_app::AppSink, sample: &gst::Sample) -> Instant {
    let now = Instant::now();
    let age = (|| {
        let pts = sample.buffer()?.pts()?;
        let segment = sample.segment()?.downcast_ref::<gst::ClockTime>()?;
        let running = segment.to_running_time(pts)?;
        let clock = sink.clock()?;
        let elapsed = clock.time().checked_sub(sink.base_time()?)?;
        let age = elapsed.checked_sub(running)?;
        // Older than this means the timestamps are not capture times.
        (age < gst::ClockTime::from_seconds(5)).then(|| Duration::from_nanos(age.nseconds()))
    })();
    age.and_then(|a| now.checked_sub(a)).unwrap_or(now)
}

impl Drop for FrameSource {
    fn drop(&mut self) {
        // Release a streaming thread waiting for the slot before stopping the pipeline.
        self.mailbox.closed.store(true, Ordering::Relaxed);
        self.mailbox.changed.notify_all();
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}
