//! `POST /api/v1/stylize`: a picture in, the stylized picture out, for scripts and batch use.
//!
//! A bounded queue in front of a pool of engines: `http.stylize-workers` threads, each with
//! its own engine of the configured model (opened at its first job, at
//! `http.stylize-threads` ONNX Runtime threads), and at most `http.stylize-queue` requests
//! waiting; past that the answer is 503 with `Retry-After`. Decoding and encoding happen on
//! tokio's blocking pool, so an engine thread only runs the network. The engine threads run
//! at niceness `http.stylize-nice` (the ONNX Runtime threads they start inherit it): that is
//! how the CPU is shared with the live stream.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use super::error;
use super::images::{self, Format};
use crate::config::Config;
use crate::engine::{self, Engine, StageTimes};
use crate::frame::{RgbImage, resize_bilinear};
use crate::style::StyleSpec;

/// One picture to stylize.
pub struct Job {
    pub image: RgbImage,
    pub style: StyleSpec,
    /// Output size; the engine runs at it when the model takes any size.
    pub size: [u32; 2],
    pub reply: oneshot::Sender<Result<RgbImage, JobError>>,
}

/// Why a job failed: the request's fault (a style the model lacks) or the engine's.
#[derive(Debug)]
pub enum JobError {
    BadStyle(String),
    Engine(String),
}

/// The engines and the queue in front of them.
pub struct Pool {
    jobs: crossbeam_channel::Sender<Job>,
    /// Workers plus queue places: a permit is a place in the system.
    places: Arc<Semaphore>,
    workers: usize,
    /// Mean engine time of recent jobs in microseconds (for Retry-After).
    mean_us: Arc<AtomicU64>,
}

impl Pool {
    /// Starts the worker threads (their engines open at the first job).
    pub fn start(config: &Config) -> std::io::Result<Self> {
        let h = &config.http;
        let (jobs, rx) = crossbeam_channel::unbounded::<Job>();
        let mean_us = Arc::new(AtomicU64::new(0));
        for i in 0..h.stylize_workers {
            let (rx, mean_us) = (rx.clone(), mean_us.clone());
            let mut engine_config = config.engine.clone();
            if h.stylize_threads > 0 {
                engine_config.threads = h.stylize_threads;
            }
            let nice = h.stylize_nice;
            std::thread::Builder::new()
                .name(format!("stylize-{i}"))
                .spawn(move || worker(rx, engine_config, nice, mean_us))?;
        }
        Ok(Self {
            jobs,
            places: Arc::new(Semaphore::new(h.stylize_workers + h.stylize_queue)),
            workers: h.stylize_workers,
            mean_us,
        })
    }

    /// A place in the queue, or `None` when it is full.
    pub fn admit(&self) -> Option<OwnedSemaphorePermit> {
        self.places.clone().try_acquire_owned().ok()
    }

    /// Seconds a client should wait before trying again when the queue is full.
    pub fn retry_after_s(&self) -> u64 {
        let mean = Duration::from_micros(self.mean_us.load(Ordering::Relaxed));
        let queued = self.places.available_permits().max(1) as u32;
        let wait = mean * queued / self.workers.max(1) as u32;
        wait.as_secs().clamp(1, 60)
    }

    /// Runs one job on an engine (the caller holds a place from [`Pool::admit`]).
    pub async fn run(
        &self,
        image: RgbImage,
        style: StyleSpec,
        size: [u32; 2],
    ) -> Result<RgbImage, JobError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job {
                image,
                style,
                size,
                reply,
            })
            .map_err(|_| JobError::Engine("the stylize engines have stopped".into()))?;
        answer
            .await
            .map_err(|_| JobError::Engine("the stylize engine stopped before answering".into()))?
    }
}

/// Sets the calling thread's niceness (Linux: per thread; threads it starts inherit it).
fn set_nice(nice: i32) {
    // SAFETY: gettid and setpriority have no memory preconditions; errors are returned.
    let ok = unsafe {
        let tid = libc::gettid() as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, nice) == 0
    };
    if !ok {
        tracing::warn!(nice, "cannot lower the stylize engine's priority");
    }
}

fn worker(
    jobs: crossbeam_channel::Receiver<Job>,
    config: crate::config::EngineConfig,
    nice: i32,
    mean_us: Arc<AtomicU64>,
) {
    set_nice(nice);
    let mut engine: Option<Box<dyn Engine>> = None;
    while let Ok(job) = jobs.recv() {
        if job.reply.is_closed() {
            // The client went away while queued.
            continue;
        }
        let started = Instant::now();
        let result = (|| {
            let engine = match engine.as_mut() {
                Some(e) => e,
                None => engine.insert(engine::open(&config, &config.style).map_err(|e| {
                    JobError::Engine(format!("cannot open the stylize engine: {e}"))
                })?),
            };
            engine
                .set_style(&job.style)
                .map_err(|e| JobError::BadStyle(e.to_string()))?;
            stylize(engine.as_mut(), &job.image, job.size)
                .map_err(|e| JobError::Engine(e.to_string()))
        })();
        let us = started.elapsed().as_micros() as u64;
        let old = mean_us.load(Ordering::Relaxed);
        mean_us.store(
            if old == 0 { us } else { (old * 7 + us) / 8 },
            Ordering::Relaxed,
        );
        let _ = job.reply.send(result);
    }
}

/// Runs the network at `size` (or at its fixed input, scaling around it).
pub fn stylize(
    engine: &mut dyn Engine,
    image: &RgbImage,
    [w, h]: [u32; 2],
) -> Result<RgbImage, engine::EngineError> {
    let mut times = StageTimes::default();
    let [ew, eh] = if engine.any_size() {
        [w, h]
    } else {
        engine.info().input
    };
    let input = if (image.width, image.height) == (ew, eh) {
        None
    } else {
        Some(resize_bilinear(image, ew, eh))
    };
    let out = engine.stylize(input.as_ref().unwrap_or(image), &mut times)?;
    Ok(if (out.width, out.height) == (w, h) {
        out
    } else {
        resize_bilinear(&out, w, h)
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Style index, name or blend; default: the configured style.
    style: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    /// `png` (default) or `jpeg`.
    format: Option<String>,
    quality: Option<u8>,
}

/// The output size: as asked, else the picture's, each side rounded down to even.
fn output_size(p: &Params, image: &RgbImage, max: u32) -> Result<[u32; 2], String> {
    let w = p.width.unwrap_or(image.width);
    let h = p.height.unwrap_or(image.height);
    if !(16..=max).contains(&w) || !(16..=max).contains(&h) {
        return Err(format!(
            "width and height must be 16 to {max} (http.max-image-side), got {w}x{h}"
        ));
    }
    Ok([w & !1, h & !1])
}

pub async fn handle(
    State(state): State<super::State>,
    params: Result<Query<Params>, axum::extract::rejection::QueryRejection>,
    body: Bytes,
) -> Response {
    let Query(params) = match params {
        Ok(p) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let format = match Format::parse(params.format.as_deref(), params.quality) {
        Ok(f) => f,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let style = match params.style.as_deref() {
        None => state.config.engine.style.clone(),
        Some(s) => match StyleSpec::parse(s) {
            Ok(spec) => spec,
            Err(e) => return error(StatusCode::BAD_REQUEST, e),
        },
    };
    // Admission first: a full queue costs the client no upload decoding.
    let Some(_place) = state.stylize.admit() else {
        let mut r = error(
            StatusCode::SERVICE_UNAVAILABLE,
            "all stylize engines are busy and the queue is full; try again after Retry-After seconds",
        );
        if let Ok(v) = HeaderValue::from_str(&state.stylize.retry_after_s().to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return r;
    };
    let max_side = state.config.http.max_image_side;
    let decoded = tokio::task::spawn_blocking(move || images::decode(&body, max_side)).await;
    let image = match decoded {
        Ok(Ok(img)) => img,
        Ok(Err(e)) => return error(StatusCode::BAD_REQUEST, e),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e),
    };
    let size = match output_size(&params, &image, max_side) {
        Ok(s) => s,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let out = match state.stylize.run(image, style, size).await {
        Ok(out) => out,
        Err(JobError::BadStyle(e)) => return error(StatusCode::BAD_REQUEST, e),
        Err(JobError::Engine(e)) => return error(StatusCode::INTERNAL_SERVER_ERROR, e),
    };
    let encoded = tokio::task::spawn_blocking(move || images::encode(&out, format)).await;
    match encoded {
        Ok(Ok(bytes)) => (
            [(header::CONTENT_TYPE, format.content_type())],
            Bytes::from(bytes),
        )
            .into_response(),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}
