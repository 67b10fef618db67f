//! The output pipeline: stylized RGB frames in; a crash-safe file, an RTSP stream and PNG
//! snapshots out.
//!
//! `appsrc (RGB) -> videoconvert (I420) -> encoder -> h264parse -> tee`, then per output:
//! `queue -> splitmuxsink (Matroska segments)` and `queue -> appsink -> RtspOutput`. The
//! stream is encoded once whatever the number of outputs. Matroska is written as it goes,
//! so a file cut by `kill -9` still decodes up to its last cluster; `finish` sends EOS so
//! a clean stop closes every segment properly. Snapshots are written from the RGB frame,
//! not from the encoder. The pipeline goes to `Null` on every exit path.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use thiserror::Error;

use crate::config::{Encoder, OutputConfig, OutputUri, Size};
use crate::frame::RgbImage;
use crate::rtsp::{RtspError, RtspOutput};
use crate::source::BusError;

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

/// `out/stylized.mkv` -> `out/stylized-20261128-101500-%05d.mkv`: every start writes new
/// segments, so nothing overwrites an earlier recording.
pub fn segment_pattern(path: &Path, started: SystemTime) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "stylized".into());
    let secs = started
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    let name = format!(
        "{stem}-{y:04}{m:02}{d:02}-{:02}{:02}{:02}-%05d.mkv",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    path.with_file_name(name)
}

/// Days since 1970-01-01 to a (year, month, day) in UTC (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { 1 } else { 0 } + yoe + era * 400, m, d)
}

pub struct FrameSink {
    pipeline: gst::Pipeline,
    appsrc: gst_app::AppSrc,
    rtsp: Option<Arc<RtspOutput>>,
    encoded: Arc<AtomicU64>,
    started: Option<Instant>,
    file_pattern: Option<PathBuf>,
    size: Size,
}

impl FrameSink {
    pub fn open(outputs: &[OutputUri], cfg: &OutputConfig, size: Size) -> Result<Self, SinkError> {
        gst::init().map_err(|e| SinkError::Init(e.to_string()))?;
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
        let description = if file.is_none() && rtsp.is_none() {
            format!("{head} ! fakesink sync=false name=null")
        } else {
            // One h264parse per branch: Matroska wants avc, RTSP byte-stream.
            let mut d = format!(
                "{head} ! {} ! tee name=encoded",
                encoder_description(cfg.encoder, cfg)
            );
            if file.is_some() {
                d.push_str(" encoded. ! queue ! h264parse name=fileq");
            }
            if rtsp.is_some() {
                d.push_str(
                    " encoded. ! queue leaky=downstream max-size-buffers=60 ! \
                     h264parse config-interval=-1 ! \
                     video/x-h264,stream-format=byte-stream,alignment=au ! \
                     appsink name=rtsp sync=false max-buffers=60 drop=true enable-last-sample=false",
                );
            }
            d
        };
        let build = |m: String| SinkError::Build(m);
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
        if let Some(tee) = pipeline.by_name("encoded") {
            let counter = encoded.clone();
            let pad = tee
                .static_pad("sink")
                .ok_or_else(|| build("tee without sink pad".into()))?;
            pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                counter.fetch_add(1, Ordering::Relaxed);
                gst::PadProbeReturn::Ok
            });
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

        let file_pattern = match &file {
            Some(path) => Some(add_file_branch(&pipeline, path, cfg)?),
            None => None,
        };
        let rtsp = match rtsp {
            Some((host, port, mount)) => {
                let server = Arc::new(RtspOutput::start(&host, port, &mount)?);
                let feed = server.clone();
                let appsink = pipeline
                    .by_name("rtsp")
                    .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
                    .ok_or_else(|| build("no rtsp appsink".into()))?;
                appsink.set_callbacks(
                    gst_app::AppSinkCallbacks::builder()
                        .new_sample(move |sink| {
                            let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                            if let Some(buffer) = sample.buffer_owned() {
                                feed.push(&buffer);
                            }
                            Ok(gst::FlowSuccess::Ok)
                        })
                        .build(),
                );
                tracing::info!(url = %server.url(), "RTSP output ready");
                Some(server)
            }
            None => None,
        };
        let this = Self {
            pipeline,
            appsrc,
            rtsp,
            encoded,
            started: None,
            file_pattern,
            size,
        };
        this.pipeline.set_state(gst::State::Playing).map_err(|_| {
            this.bus_error()
                .map_or_else(|| build("cannot start".into()), SinkError::Bus)
        })?;
        Ok(this)
    }

    fn bus_error(&self) -> Option<BusError> {
        let bus = self.pipeline.bus()?;
        while let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error]) {
            if let gst::MessageView::Error(err) = msg.view() {
                return Some(BusError::from_message(err));
            }
        }
        None
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
        buffer
            .get_mut()
            .expect("a new buffer is writable")
            .set_pts(gst::ClockTime::from_nseconds(pts.as_nanos() as u64));
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
        self.file_pattern.as_deref()
    }

    pub fn rtsp_url(&self) -> Option<String> {
        self.rtsp.as_ref().map(|r| r.url())
    }

    /// Ends the stream: EOS through every branch so files are closed, then `Null`.
    pub fn finish(self, timeout: Duration) -> Result<(), SinkError> {
        let _ = self.appsrc.end_of_stream();
        let bus = self
            .pipeline
            .bus()
            .ok_or_else(|| SinkError::Build("no bus".into()))?;
        let result = match bus.timed_pop_filtered(
            gst::ClockTime::from_nseconds(timeout.as_nanos() as u64),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        ) {
            Some(msg) => match msg.view() {
                gst::MessageView::Error(err) => Err(BusError::from_message(err).into()),
                _ => Ok(()),
            },
            None => Err(SinkError::Push(format!(
                "output did not finish within {timeout:?}"
            ))),
        };
        // Drop runs set_state(Null).
        result
    }
}

impl Drop for FrameSink {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

fn add_file_branch(
    pipeline: &gst::Pipeline,
    path: &Path,
    cfg: &OutputConfig,
) -> Result<PathBuf, SinkError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| SinkError::Folder {
            path: dir.into(),
            source,
        })?;
    }
    let pattern = segment_pattern(path, SystemTime::now());
    let build = |m: &str| SinkError::Build(format!("file output: {m}"));
    let mux = gst::ElementFactory::make("matroskamux")
        .build()
        .map_err(|_| build("matroskamux missing"))?;
    let split = gst::ElementFactory::make("splitmuxsink")
        .property("location", pattern.to_string_lossy().as_ref())
        .property("max-size-time", cfg.segment_s as u64 * 1_000_000_000)
        .property("send-keyframe-requests", true)
        .property("muxer", &mux)
        .build()
        .map_err(|_| build("splitmuxsink missing"))?;
    pipeline.add(&split).map_err(|e| build(&e.to_string()))?;
    let queue = pipeline.by_name("fileq").ok_or_else(|| build("no queue"))?;
    queue.link(&split).map_err(|e| build(&e.to_string()))?;
    Ok(pattern)
}

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
    fn segment_names_carry_the_start_time() {
        // 2026-11-28 10:15:00 UTC
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_860_900);
        let p = segment_pattern(Path::new("out/stylized.mkv"), t);
        assert_eq!(p, Path::new("out/stylized-20261128-101500-%05d.mkv"));
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    }

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
