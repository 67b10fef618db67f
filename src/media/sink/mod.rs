//! The output pipeline: stylized RGB frames in; a crash-safe file, an RTSP stream and PNG
//! snapshots out.
//!
//! `appsrc (RGB) -> videoconvert (I420) -> encoder -> h264parse -> appsink`: the stream
//! is encoded once whatever the number of outputs, and each access unit is handed to the
//! [`record::Recorder`] (Matroska segments, its own pipeline so a full disk stops only the
//! recording) and to the RTSP server. Snapshots ([`snapshot`]) are written from the RGB
//! frame, not from the encoder. Pipelines go to `Null` on every exit path.
//!
//! # Layout
//! - [`record`]: Matroska segments, rotation and the disk budget.
//! - [`snapshot`]: PNG snapshots.

pub mod record;
pub mod snapshot;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use thiserror::Error;

pub use self::record::{Recorder, segment_pattern};
pub use self::snapshot::{Snapshotter, write_png};
use crate::config::{Encoder, OutputConfig, OutputUri, Size};
use crate::frame::RgbImage;
use crate::media::bus::BusError;
use crate::media::rtsp::{RtspError, RtspOutput};

#[derive(Debug, Error)]
pub enum SinkError {
    #[error("GStreamer is not usable: {0}")]
    Init(String),
    #[error("cannot build the output pipeline: {0}")]
    Build(String),
    #[error("cannot create output folder {path}: {source}")]
    Folder {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Rtsp(#[from] RtspError),
    #[error("output pipeline error from {0}")]
    Bus(#[from] BusError),
    #[error("output pipeline refused a frame: {0}")]
    Push(String),
    #[error("cannot write PNG {path}: {message}")]
    Snapshot { path: PathBuf, message: String },
}

fn encoder_description(encoder: Encoder, cfg: &OutputConfig) -> String {
    let keyint = cfg.fps * 2;
    match encoder {
        Encoder::X264 => format!(
            "videoconvert ! video/x-raw,format=I420 ! x264enc tune=zerolatency \
             speed-preset=ultrafast bitrate={} key-int-max={keyint}",
            cfg.bitrate_kbps
        ),
        // Jetson: NVMM buffers from nvvidconv into the hardware encoder.
        Encoder::Nvv4l2h264 => format!(
            "videoconvert ! video/x-raw,format=I420 ! nvvidconv ! \
             video/x-raw(memory:NVMM),format=I420 ! nvv4l2h264enc bitrate={} \
             iframeinterval={keyint} insert-sps-pps=true maxperf-enable=true",
            cfg.bitrate_kbps * 1000
        ),
    }
}

pub struct FrameSink {
    pipeline: gst::Pipeline,
    appsrc: gst_app::AppSrc,
    rtsp: Option<Arc<RtspOutput>>,
    recorder: Option<Arc<Recorder>>,
    encoded: Arc<AtomicU64>,
    started: Option<Instant>,
    size: Size,
}

impl FrameSink {
    pub fn open(cfg: &OutputConfig, size: Size) -> Result<Self, SinkError> {
        gst::init().map_err(|e| SinkError::Init(e.to_string()))?;
        let outputs = &cfg.uris;
        let file = outputs.iter().find_map(|o| match o {
            OutputUri::File(p) => Some(p.clone()),
            _ => None,
        });
        let rtsp = outputs.iter().find_map(|o| match o {
            OutputUri::Rtsp { host, port, mount } => Some((host.clone(), *port, mount.clone())),
            _ => None,
        });
        let caps = format!(
            "video/x-raw,format=RGB,width={},height={},framerate={}/1,pixel-aspect-ratio=1/1",
            size.width, size.height, cfg.fps
        );
        let head = format!(
            "appsrc name=frames is-live=true format=time do-timestamp=false caps=\"{caps}\""
        );
        let encode = file.is_some() || rtsp.is_some();
        let description = if encode {
            // byte-stream with SPS/PPS before every keyframe: what RTSP clients joining late
            // and the recorder's h264parse both take.
            format!(
                "{head} ! {} ! h264parse config-interval=-1 ! \
                 video/x-h264,stream-format=byte-stream,alignment=au ! \
                 appsink name=h264 sync=false max-buffers=64 drop=false enable-last-sample=false",
                encoder_description(cfg.encoder, cfg)
            )
        } else {
            format!("{head} ! fakesink sync=false name=null")
        };
        let build = SinkError::Build;
        let pipeline = gst::parse::launch(&description)
            .map_err(|e| build(format!("{e} (is the encoder's plugin installed?)")))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| build("not a pipeline".into()))?;
        let appsrc = pipeline
            .by_name("frames")
            .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
            .ok_or_else(|| build("no appsrc".into()))?;
        appsrc.set_max_bytes(size.width as u64 * size.height as u64 * 3 * 4);
        appsrc.set_property("block", false);

        let encoded = Arc::new(AtomicU64::new(0));
        let recorder = file
            .as_deref()
            .map(|p| Recorder::start(p, cfg))
            .transpose()?
            .map(Arc::new);
        let rtsp = match rtsp {
            Some((host, port, mount)) => {
                let server = Arc::new(RtspOutput::start(
                    &host,
                    port,
                    &mount,
                    cfg.rtsp_max_clients,
                )?);
                tracing::info!(url = %server.url(), "RTSP output ready");
                Some(server)
            }
            None => None,
        };
        if encode {
            let appsink = pipeline
                .by_name("h264")
                .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
                .ok_or_else(|| build("no h264 appsink".into()))?;
            let (counter, rec, out) = (encoded.clone(), recorder.clone(), rtsp.clone());
            appsink.set_callbacks(
                gst_app::AppSinkCallbacks::builder()
                    .new_sample(move |sink| {
                        let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                        if let Some(buffer) = sample.buffer_owned() {
                            counter.fetch_add(1, Ordering::Relaxed);
                            if let Some(out) = &out {
                                out.push(&buffer);
                            }
                            if let Some(rec) = &rec {
                                rec.push(buffer);
                            }
                        }
                        Ok(gst::FlowSuccess::Ok)
                    })
                    .build(),
            );
        } else {
            let counter = encoded.clone();
            let pad = appsrc
                .static_pad("src")
                .ok_or_else(|| build("appsrc without pad".into()))?;
            pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                counter.fetch_add(1, Ordering::Relaxed);
                gst::PadProbeReturn::Ok
            });
        }
        let this = Self {
            pipeline,
            appsrc,
            rtsp,
            recorder,
            encoded,
            started: None,
            size,
        };
        this.pipeline.set_state(gst::State::Playing).map_err(|_| {
            this.bus_error()
                .map_or_else(|| build("cannot start".into()), SinkError::Bus)
        })?;
        Ok(this)
    }

    fn bus_error(&self) -> Option<BusError> {
        BusError::pending(&self.pipeline)
    }

    /// Pushes one stylized frame, stamped with its capture time relative to the first.
    pub fn push(&mut self, image: &RgbImage, captured: Instant) -> Result<(), SinkError> {
        if let Some(err) = self.bus_error() {
            return Err(err.into());
        }
        if (image.width, image.height) != (self.size.width, self.size.height) {
            return Err(SinkError::Push(format!(
                "frame is {}x{}, the output is {}",
                image.width, image.height, self.size
            )));
        }
        let start = *self.started.get_or_insert(captured);
        let pts = captured.saturating_duration_since(start);
        let mut buffer = gst::Buffer::from_slice(image.data.clone());
        if let Some(b) = buffer.get_mut() {
            b.set_pts(gst::ClockTime::from_nseconds(pts.as_nanos() as u64));
        }
        self.appsrc
            .push_buffer(buffer)
            .map_err(|e| SinkError::Push(format!("{e:?}")))?;
        Ok(())
    }

    /// Frames that came out of the encoder (or reached the null sink).
    pub fn encoded(&self) -> u64 {
        self.encoded.load(Ordering::Relaxed)
    }

    /// The file name pattern of this run's segments, if recording.
    pub fn file_pattern(&self) -> Option<&Path> {
        self.recorder.as_ref().map(|r| r.pattern())
    }

    /// Why the recording stopped, if it did (full disk, …); streaming goes on.
    pub fn recording_failure(&self) -> Option<String> {
        self.recorder.as_ref()?.failure()
    }

    pub fn rtsp_url(&self) -> Option<String> {
        self.rtsp.as_ref().map(|r| r.url())
    }

    /// Ends the stream: EOS through the encoder, then the recorder's segment is closed.
    pub fn finish(self, timeout: Duration) -> Result<(), SinkError> {
        let _ = self.appsrc.end_of_stream();
        let drained = match BusError::wait_eos(&self.pipeline, timeout) {
            Ok(true) => Ok(()),
            Ok(false) => Err(SinkError::Push(format!(
                "output did not finish within {timeout:?}"
            ))),
            Err(e) => Err(e.into()),
        };
        // Every encoded unit has reached the recorder once the encoder's EOS is out.
        let recorded = self.recorder.as_ref().map_or(Ok(()), |r| r.finish(timeout));
        drained.and(recorded)
    }
}

impl Drop for FrameSink {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}
