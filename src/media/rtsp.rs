//! RTSP servers: the stylized output stream and the built-in test camera.
//!
//! Both run gst-rtsp-server on their own GLib main loop thread, bound to an address from
//! the config (127.0.0.1 by default; port 0 picks a free port, for tests). The output
//! server does not encode: the sink encodes once and hands H.264 access units to
//! [`RtspOutput::push`], which feeds every connected client's `appsrc`. It serves at most
//! `max_clients` connections at once: a DESCRIBE beyond that is answered "503 Service
//! Unavailable", so a crowd of viewers cannot take an edge box's bandwidth and sockets. The
//! test camera is a self-contained live pipeline (moving pattern, H.264). This module knows
//! nothing about engines or frames.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_rtsp_server as rtsp;
use gstreamer_rtsp_server::gst_rtsp::RTSPStatusCode;
use gstreamer_rtsp_server::prelude::*;
use thiserror::Error;

use super::bus::BusError;

#[derive(Debug, Error)]
pub enum RtspError {
    #[error("cannot start the RTSP server on {address}:{port}: {message} (is the port in use?)")]
    Bind {
        address: String,
        port: u16,
        message: String,
    },
    #[error("GStreamer is not usable: {0}")]
    Init(String),
    #[error("the test camera cannot show {path}: {message}")]
    Video { path: PathBuf, message: String },
}

/// A gst-rtsp-server instance running on its own main loop thread; stops on drop.
struct ServerThread {
    main_loop: glib::MainLoop,
    thread: Option<JoinHandle<()>>,
    port: u16,
    address: String,
    mount: String,
}

impl ServerThread {
    fn start(
        address: &str,
        port: u16,
        mount: &str,
        factory: rtsp::RTSPMediaFactory,
        max_clients: Option<u32>,
    ) -> Result<Self, RtspError> {
        gst::init().map_err(|e| RtspError::Init(e.to_string()))?;
        let server = rtsp::RTSPServer::new();
        server.set_address(address);
        server.set_service(&port.to_string());
        if let Some(max) = max_clients {
            limit_clients(&server, max);
        }
        let bind = |message: String| RtspError::Bind {
            address: address.into(),
            port,
            message,
        };
        let mounts = server
            .mount_points()
            .ok_or_else(|| bind("no mount points".into()))?;
        mounts.add_factory(mount, factory);
        let context = glib::MainContext::new();
        let source = server
            .attach(Some(&context))
            .map_err(|e| bind(e.to_string()))?;
        let bound = server.bound_port();
        if bound <= 0 {
            if let Some(s) = context.find_source_by_id(&source) {
                s.destroy();
            }
            return Err(bind("no port bound".into()));
        }
        let main_loop = glib::MainLoop::new(Some(&context), false);
        let thread_loop = main_loop.clone();
        let thread = std::thread::Builder::new()
            .name("rtsp-server".into())
            .spawn(move || {
                thread_loop.run();
                // Destroying the attach source closes the listening socket (`SourceId::remove`
                // would look in the default context, not ours).
                if let Some(s) = context.find_source_by_id(&source) {
                    s.destroy();
                }
                drop(server);
            })
            .map_err(|e| bind(e.to_string()))?;
        Ok(Self {
            main_loop,
            thread: Some(thread),
            port: bound as u16,
            address: address.into(),
            mount: mount.into(),
        })
    }
}

/// Counts open client connections and answers a DESCRIBE with 503 while more than `max`
/// are open (the asking client included). Refused clients close their connection, which
/// frees their place.
fn limit_clients(server: &rtsp::RTSPServer, max: u32) {
    let open = Arc::new(AtomicU32::new(0));
    server.connect_client_connected(move |_, client| {
        open.fetch_add(1, Ordering::SeqCst);
        let closing = open.clone();
        client.connect_closed(move |_| {
            closing.fetch_sub(1, Ordering::SeqCst);
        });
        let counting = open.clone();
        client.connect_pre_describe_request(move |_, _| {
            let now = counting.load(Ordering::SeqCst);
            if now > max {
                tracing::warn!(open = now, max, "RTSP client refused: too many clients");
                RTSPStatusCode::ServiceUnavailable
            } else {
                RTSPStatusCode::Ok
            }
        });
    });
}

impl ServerThread {
    /// `rtsp://host:port/mount`, with IPv6 hosts in brackets.
    fn url(&self) -> String {
        let host = if self.address.contains(':') {
            format!("[{}]", self.address)
        } else {
            self.address.clone()
        };
        format!("rtsp://{host}:{}{}", self.port, self.mount)
    }
}

impl Drop for ServerThread {
    fn drop(&mut self) {
        self.main_loop.quit();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The stylized output: an RTSP mount fed with already-encoded H.264.
pub struct RtspOutput {
    server: ServerThread,
    clients: Arc<Mutex<Vec<gst_app::AppSrc>>>,
}

impl RtspOutput {
    /// Serves `mount` on `address:port` to at most `max_clients` connections at once.
    pub fn start(
        address: &str,
        port: u16,
        mount: &str,
        max_clients: u32,
    ) -> Result<Self, RtspError> {
        gst::init().map_err(|e| RtspError::Init(e.to_string()))?;
        let factory = rtsp::RTSPMediaFactory::new();
        // One pipeline per client would re-encode nothing anyway; shared keeps it to one
        // appsrc per connected session.
        factory.set_shared(true);
        factory.set_launch(
            "( appsrc name=src is-live=true format=time do-timestamp=true min-latency=0 \
               caps=video/x-h264,stream-format=byte-stream,alignment=au \
             ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=1 )",
        );
        let clients: Arc<Mutex<Vec<gst_app::AppSrc>>> = Arc::default();
        let list = clients.clone();
        factory.connect_media_configure(move |_, media| {
            let bin = media.element().downcast::<gst::Bin>().ok();
            let appsrc = bin
                .and_then(|b| b.by_name("src"))
                .and_then(|e| e.downcast::<gst_app::AppSrc>().ok());
            if let Some(src) = appsrc {
                list.lock().unwrap_or_else(|p| p.into_inner()).push(src);
            }
        });
        let server = ServerThread::start(address, port, mount, factory, Some(max_clients))?;
        Ok(Self { server, clients })
    }

    pub fn port(&self) -> u16 {
        self.server.port
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Number of client pipelines currently fed.
    pub fn clients(&self) -> usize {
        self.clients.lock().map(|c| c.len()).unwrap_or(0)
    }

    /// Hands one encoded access unit to every client; clients that went away are dropped.
    pub fn push(&self, buffer: &gst::Buffer) {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if clients.is_empty() {
            return;
        }
        let mut copy = buffer.copy();
        {
            let b = copy.make_mut();
            // Each client's appsrc stamps its own running time (do-timestamp).
            b.set_pts(gst::ClockTime::NONE);
            b.set_dts(gst::ClockTime::NONE);
        }
        clients.retain(|src| src.push_buffer(copy.clone()).is_ok());
    }
}

/// The built-in test camera: a moving test pattern, or a video file played in a loop,
/// served as H.264 over RTSP.
pub struct TestCamera {
    server: ServerThread,
    /// The video's frames, decoded once at start (removed on drop).
    _frames: Option<FrameFolder>,
}

/// What the test camera shows.
#[derive(Clone, Debug)]
pub struct CameraSpec {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// A `videotestsrc` pattern name (ball, smpte, snow, …), when `video` is unset.
    pub pattern: String,
    /// A video file (anything decodebin reads) to show in a loop instead of the pattern.
    pub video: Option<PathBuf>,
}

/// At most this many frames of a video are kept (a minute at 30 fps): the camera is for
/// trying the daemon on a real scene, not for serving films.
pub const CAMERA_MAX_FRAMES: u32 = 1800;

impl TestCamera {
    pub fn start(
        address: &str,
        port: u16,
        mount: &str,
        spec: &CameraSpec,
    ) -> Result<Self, RtspError> {
        gst::init().map_err(|e| RtspError::Init(e.to_string()))?;
        let factory = rtsp::RTSPMediaFactory::new();
        factory.set_shared(true);
        // A keyframe every half second: a reconnecting client gets a picture quickly.
        let encode = format!(
            "videoconvert ! video/x-raw,format=I420 \
             ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={keyint} bitrate=2000 \
             ! rtph264pay name=pay0 pt=96 config-interval=1",
            keyint = (spec.fps / 2).max(1),
        );
        let frames = match &spec.video {
            None => {
                let pattern: String = spec
                    .pattern
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                    .collect();
                // The ball moves over a coloured background so stylized output shows
                // texture, and the clock overlay-free pattern keeps it to base plugins only.
                factory.set_launch(&format!(
                    "( videotestsrc is-live=true pattern={pattern} \
                       ! video/x-raw,width={w},height={h},framerate={fps}/1 ! {encode} )",
                    w = spec.width,
                    h = spec.height,
                    fps = spec.fps,
                ));
                None
            }
            Some(video) => {
                // Decoded once into numbered JPEGs that multifilesrc replays forever, its
                // timestamps going on across the loop (a decoder seeking back to the start
                // would restart them, which a live client cannot follow).
                let folder = FrameFolder::decode(video, spec)?;
                factory.set_launch(&format!(
                    "( multifilesrc location=\"{}\" loop=true \
                       caps=image/jpeg,framerate={fps}/1 ! jpegdec ! {encode} )",
                    folder.pattern(),
                    fps = spec.fps,
                ));
                Some(folder)
            }
        };
        let server = ServerThread::start(address, port, mount, factory, None)?;
        Ok(Self {
            server,
            _frames: frames,
        })
    }

    pub fn port(&self) -> u16 {
        self.server.port
    }

    pub fn url(&self) -> String {
        self.server.url()
    }
}

/// A temporary folder of a video's frames as `00000.jpg`, `00001.jpg`, … at the camera's
/// size and rate; removed on drop.
struct FrameFolder {
    dir: PathBuf,
    count: u32,
}

impl FrameFolder {
    fn decode(video: &Path, spec: &CameraSpec) -> Result<Self, RtspError> {
        let fail = |why: String| RtspError::Video {
            path: video.to_path_buf(),
            message: why,
        };
        if !video.is_file() {
            return Err(fail("no such file".into()));
        }
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "stylerd-camera-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)
            .map_err(|e| fail(format!("cannot create {}: {e}", dir.display())))?;
        let mut folder = Self { dir, count: 0 };
        // RGB into jpegenc: handed the decoder's limited-range YUV it would label it full
        // range (JPEG's), and the camera would show grey blacks.
        let pipeline = gst::parse::launch(&format!(
            "filesrc name=src ! decodebin ! videoconvert ! videoscale ! videorate \
             ! video/x-raw,width={w},height={h},framerate={fps}/1,pixel-aspect-ratio=1/1 \
             ! videoconvert ! video/x-raw,format=RGB \
             ! jpegenc quality=90 name=enc ! multifilesink name=sink",
            w = spec.width,
            h = spec.height,
            fps = spec.fps,
        ))
        .map_err(|e| fail(e.to_string()))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| fail("not a pipeline".into()))?;
        let by_name = |name: &str| {
            pipeline
                .by_name(name)
                .ok_or_else(|| fail(format!("no element {name}")))
        };
        by_name("src")?.set_property("location", video.to_string_lossy().to_string());
        by_name("sink")?.set_property("location", folder.pattern());
        // Count the frames written; past the cap, drop the rest and stop.
        let written = Arc::new(AtomicU32::new(0));
        let counter = written.clone();
        by_name("enc")?
            .static_pad("src")
            .ok_or_else(|| fail("jpegenc has no src pad".into()))?
            .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                if counter.fetch_add(1, Ordering::Relaxed) >= CAMERA_MAX_FRAMES {
                    gst::PadProbeReturn::Drop
                } else {
                    gst::PadProbeReturn::Ok
                }
            });
        let outcome = run_to_end(&pipeline, &written);
        let _ = pipeline.set_state(gst::State::Null);
        outcome.map_err(fail)?;
        folder.count = written.load(Ordering::Relaxed).min(CAMERA_MAX_FRAMES);
        if folder.count == 0 {
            return Err(fail("it has no video frames".into()));
        }
        tracing::info!(video = %video.display(), frames = folder.count, "test camera frames decoded");
        Ok(folder)
    }

    /// The multifilesrc/multifilesink location pattern.
    fn pattern(&self) -> String {
        self.dir.join("%05d.jpg").to_string_lossy().into_owned()
    }
}

/// Plays `pipeline` until end of stream, an error, or `CAMERA_MAX_FRAMES` frames.
fn run_to_end(pipeline: &gst::Pipeline, written: &AtomicU32) -> Result<(), String> {
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|_| "GStreamer cannot play it".to_string())?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    while written.load(Ordering::Relaxed) < CAMERA_MAX_FRAMES {
        if std::time::Instant::now() > deadline {
            return Err("decoding it took more than 5 minutes".into());
        }
        if BusError::wait_eos(pipeline, std::time::Duration::from_millis(100))
            .map_err(|e| e.message)?
        {
            break;
        }
    }
    Ok(())
}

impl Drop for FrameFolder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
