//! `stylerd stylize clip.mp4 out.mkv`: every frame of a video file through one engine into
//! a new H.264 file (Matroska, or MP4 for `.mp4`/`.mov`), with a progress line (frames
//! done / total, ETA). Frames come from the daemon's own capture pipeline in every-frame
//! mode, so none is dropped; output timestamps are frame number / the input's frame rate.
//! Audio is not copied.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use crate::config::{OnEos, Size, SourceConfig, SourceMode, SourceUri};
use crate::engine::{Engine, StageTimes};
use crate::frame::resize_bilinear;
use crate::media::bus::BusError;
use crate::media::source::{FrameSource, Pulled};
use crate::mix::Mix;

/// A source that delivers nothing for this long is taken as stuck.
const STALL: Duration = Duration::from_secs(30);
/// Seconds between progress lines.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// Stylizes `input` into `output` at `size` (default: the video's own, rounded down to
/// even sides); `open` builds the engine for a size.
pub fn stylize_file(
    input: &Path,
    output: &Path,
    size: Option<Size>,
    mix: Mix,
    open: &dyn Fn(Size) -> anyhow::Result<Box<dyn Engine>>,
) -> anyhow::Result<()> {
    gst::init().context("GStreamer is not usable")?;
    let mux = match output.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("mkv") => "matroskamux",
        Some(e) if e.eq_ignore_ascii_case("mp4") || e.eq_ignore_ascii_case("mov") => {
            "mp4mux faststart=true"
        }
        _ => bail!("video output {} must end in .mkv or .mp4", output.display()),
    };
    let (own, rate) = probe(input)?;
    let size = size.unwrap_or(own);
    let mut engine = open(size)?;
    let source_cfg = SourceConfig {
        uri: SourceUri::File(input.to_path_buf()),
        mode: Some(SourceMode::EveryFrame),
        on_eos: OnEos::Stop,
        ..Default::default()
    };
    let mut source = FrameSource::open(&source_cfg, size)?;
    let (num, den) = rate;
    let location = output.to_string_lossy();
    if location.contains(['"', '\\']) {
        bail!("output path {location:?} contains a quote or backslash");
    }
    let pipeline = gst::parse::launch(&format!(
        "appsrc name=src format=time is-live=false block=true max-bytes=0 \
         caps=video/x-raw,format=RGB,width={w},height={h},framerate={num}/{den} ! \
         videoconvert ! x264enc speed-preset=veryfast ! h264parse ! {mux} ! \
         filesink location=\"{location}\"",
        w = size.width,
        h = size.height,
    ))
    .context("cannot build the video output pipeline")?
    .downcast::<gst::Pipeline>()
    .map_err(|_| anyhow::anyhow!("the video output is not a pipeline"))?;
    let appsrc = pipeline
        .by_name("src")
        .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
        .context("the video output has no appsrc")?;
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|_| anyhow::anyhow!("cannot write {}", output.display()))?;
    let frame_ns = 1_000_000_000u64 * den as u64 / num.max(1) as u64;
    let started = Instant::now();
    let mut last_progress = Instant::now();
    let mut last_frame = Instant::now();
    let mut done = 0u64;
    let mut total = None;
    let result = loop {
        if let Some(e) = BusError::pending(&pipeline) {
            break Err(anyhow::anyhow!("cannot write {}: {e}", output.display()));
        }
        match source.pull(Duration::from_millis(200))? {
            Pulled::Frame(frame) => {
                last_frame = Instant::now();
                total = total.or_else(|| source.total_frames());
                let image = frame.image;
                let mut out = stylize_any_size(engine.as_mut(), &image)?;
                mix.apply(&image, &mut out);
                let mut buffer = gst::Buffer::from_mut_slice(out.data);
                {
                    let b = buffer.get_mut().context("buffer not writable")?;
                    b.set_pts(gst::ClockTime::from_nseconds(done * frame_ns));
                    b.set_duration(gst::ClockTime::from_nseconds(frame_ns));
                }
                appsrc
                    .push_buffer(buffer)
                    .map_err(|e| anyhow::anyhow!("cannot write {}: {e:?}", output.display()))?;
                done += 1;
                if last_progress.elapsed() >= PROGRESS_EVERY {
                    last_progress = Instant::now();
                    progress(done, total, started);
                }
            }
            Pulled::Timeout if last_frame.elapsed() > STALL => {
                break Err(anyhow::anyhow!(
                    "{} delivered no frame for {} s",
                    input.display(),
                    STALL.as_secs()
                ));
            }
            Pulled::Timeout => {}
            Pulled::Eos => break Ok(()),
        }
    };
    drop(source);
    let _ = appsrc.end_of_stream();
    let finished = BusError::wait_eos(&pipeline, Duration::from_secs(60));
    let _ = pipeline.set_state(gst::State::Null);
    result?;
    match finished {
        Ok(true) => {}
        Ok(false) => bail!("{} was not finished within 60 s", output.display()),
        Err(e) => bail!("cannot write {}: {e}", output.display()),
    }
    if done == 0 {
        bail!("{} holds no video frames", input.display());
    }
    progress(done, total, started);
    Ok(())
}

/// Runs the engine on a picture of any size: directly when the network takes any size,
/// else scaled to its fixed input and back.
pub fn stylize_any_size(
    engine: &mut dyn Engine,
    image: &crate::frame::RgbImage,
) -> anyhow::Result<crate::frame::RgbImage> {
    let mut times = StageTimes::default();
    if engine.any_size() {
        return Ok(engine.stylize(image, &mut times)?);
    }
    let [w, h] = engine.info().input;
    let out = engine.stylize(&resize_bilinear(image, w, h), &mut times)?;
    Ok(resize_bilinear(&out, image.width, image.height))
}

fn progress(done: u64, total: Option<u64>, started: Instant) {
    let fps = done as f64 / started.elapsed().as_secs_f64().max(1e-9);
    let eta = total.map(|t| t.saturating_sub(done) as f64 / fps.max(1e-9));
    tracing::info!(
        frames = format_args!("{done}/{}", total.map_or("?".into(), |t| t.to_string())),
        fps = format_args!("{fps:.1}"),
        eta = %eta.map_or("?".into(), |e| format!("{e:.0} s")),
        "progress"
    );
}

/// The video's own size (rounded down to even sides, at least 16) and frame rate.
fn probe(input: &Path) -> anyhow::Result<(Size, (i32, i32))> {
    let location = input.to_string_lossy();
    if location.contains(['"', '\\']) {
        bail!("input path {location:?} contains a quote or backslash");
    }
    let pipeline = gst::parse::launch(&format!(
        "filesrc location=\"{location}\" ! decodebin ! videoconvert ! \
         video/x-raw,format=RGB ! appsink name=probe sync=false"
    ))
    .context("cannot build the probe pipeline")?
    .downcast::<gst::Pipeline>()
    .map_err(|_| anyhow::anyhow!("the probe is not a pipeline"))?;
    let sink = pipeline
        .by_name("probe")
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .context("the probe has no appsink")?;
    let _ = pipeline.set_state(gst::State::Paused);
    let sample = sink.try_pull_preroll(gst::ClockTime::from_seconds(20));
    let error = BusError::pending(&pipeline);
    let _ = pipeline.set_state(gst::State::Null);
    let sample = match (sample, error) {
        (Some(s), _) => s,
        (None, Some(e)) => bail!("cannot read video {}: {e}", input.display()),
        (None, None) => bail!("{} holds no video stream", input.display()),
    };
    let caps = sample.caps().context("the video has no caps")?;
    let s = caps.structure(0).context("the video has empty caps")?;
    let even = |v: i32| ((v.max(16) as u32) / 2 * 2).min(4096);
    let (w, h) = (
        s.get::<i32>("width").unwrap_or(0),
        s.get::<i32>("height").unwrap_or(0),
    );
    let rate = s
        .get::<gst::Fraction>("framerate")
        .ok()
        .filter(|r| r.numer() > 0 && r.denom() > 0)
        .map_or((30, 1), |r| (r.numer(), r.denom()));
    Ok((
        Size {
            width: even(w),
            height: even(h),
        },
        rate,
    ))
}
