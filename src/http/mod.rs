//! The web dashboard and HTTP API (issue 14), served by axum on the daemon's tokio runtime.
//!
//! One page at `/` (embedded, no build step), the versioned JSON API under `/api/v1/`,
//! Prometheus text at `/metrics`, and `/healthz` / `/readyz`. The API speaks the same typed
//! protocol as the Unix socket ([`crate::control::Request`], [`crate::control::Reply`],
//! [`crate::control::Status`]) and hands commands to the frame thread through the same
//! channel; frames for the live preview come from the frame loop's [`FrameTap`].
//!
//! Security: on a loopback address no token is needed; on any other address the config
//! check refuses to start without `http.token-file`. With a token every request but `/`,
//! `/healthz`, `/readyz` and the sign-in needs `Authorization: Bearer TOKEN` or the session
//! cookie the sign-in sets (compared in constant time). State changes are POSTs with a JSON
//! body; cross-origin POSTs are refused; bodies are size-limited; uploads are decoded and
//! checked before use; everything is read-only unless `control.allow-control` is set.
//!
//! # Layout
//! - [`auth`]: token, sessions, the cross-origin rule.
//! - [`api`]: status, control, snapshot, styles, models, uploads.
//! - [`live`]: MJPEG preview, server-sent events, health.
//! - [`stylize`]: `POST /api/v1/stylize`: a bounded queue in front of a pool of engines.
//! - [`images`]: decoding and encoding uploads and answers.

pub mod api;
pub mod auth;
pub mod images;
mod limit;
pub mod live;
pub mod stylize;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::watch;

use crate::config::Config;
use crate::control::Status;
use crate::control::server::ControlRequest;
use crate::daemon::tap::FrameTap;

/// The dashboard, embedded in the binary.
const DASHBOARD: &str = include_str!("dashboard.html");

/// What every handler shares.
pub struct AppState {
    pub config: Config,
    pub status: watch::Receiver<Status>,
    /// `None` in read-only mode (`control.allow-control = false`).
    pub control: Option<crossbeam_channel::Sender<ControlRequest>>,
    pub tap: Arc<FrameTap>,
    pub auth: auth::Auth,
    pub stylize: stylize::Pool,
    pub gallery: api::Gallery,
    /// Uploaded style pictures are kept here (checked and re-encoded as PNG).
    pub uploads: PathBuf,
    pub shutdown: watch::Receiver<bool>,
}

pub type State = Arc<AppState>;

/// A bound listener and the URL people open.
pub struct Bound {
    pub listener: std::net::TcpListener,
    pub url: String,
}

/// Binds `http.listen` (before the daemon starts, so a taken port is one clear sentence).
pub fn bind(config: &Config) -> anyhow::Result<Option<Bound>> {
    let Some(addr) = config.http.address()? else {
        return Ok(None);
    };
    let listener = std::net::TcpListener::bind(addr).with_context(|| {
        format!(
            "cannot serve the dashboard on {addr}; set http.listen to another HOST:PORT, or \"off\""
        )
    })?;
    listener.set_nonblocking(true)?;
    let local = listener.local_addr()?;
    Ok(Some(Bound {
        listener,
        url: url_of(local),
    }))
}

fn url_of(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) if a.ip().is_unspecified() => {
            format!("http://127.0.0.1:{}/ (all interfaces)", a.port())
        }
        SocketAddr::V6(a) => format!("http://[{}]:{}/", a.ip(), a.port()),
        a => format!("http://{a}/"),
    }
}

/// Most connections served at once (each MJPEG viewer or event stream holds one); past it,
/// new connections wait in the kernel's accept queue until one closes.
pub const MAX_CONNECTIONS: usize = 64;

/// A connection that has not sent a whole request head this long after it opened (or after
/// its last answer, when kept alive) is closed, so idle or slow clients cannot hold the
/// places above.
pub const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves until `shutdown` turns true; connections still open then get 2 s to finish.
pub async fn serve(listener: std::net::TcpListener, state: State) -> anyhow::Result<()> {
    let mut listener = limit::Limited::new(
        tokio::net::TcpListener::from_std(listener)?,
        MAX_CONNECTIONS,
    );
    let mut shutdown = state.shutdown.clone();
    let app = router(state);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let conn = tokio::select! {
            conn = listener.accept() => conn,
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let connection =
            graceful.watch(http.serve_connection(hyper_util::rt::TokioIo::new(conn), service));
        tokio::spawn(async move {
            // A client that goes away or times out ends its connection; nothing to report.
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "HTTP connection ended");
            }
        });
    }
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), graceful.shutdown()).await;
    Ok(())
}

pub fn router(state: State) -> Router {
    let limit = state.config.http.max_body_bytes;
    Router::new()
        .route("/", get(dashboard))
        .route("/healthz", get(live::healthz))
        .route("/readyz", get(live::readyz))
        .route("/metrics", get(live::metrics))
        .route("/api/v1/session", post(auth::sign_in))
        .route("/api/v1/status", get(api::status))
        .route("/api/v1/events", get(live::events))
        .route("/api/v1/stream.mjpeg", get(live::mjpeg))
        .route("/api/v1/frame.jpg", get(live::frame_jpeg))
        .route("/api/v1/styles", get(api::styles))
        .route("/api/v1/styles/{index}/thumbnail.jpg", get(api::thumbnail))
        .route("/api/v1/models", get(api::models))
        .route("/api/v1/set-style", post(api::set_style))
        .route("/api/v1/pause", post(api::pause))
        .route("/api/v1/resume", post(api::resume))
        .route("/api/v1/snapshot", post(api::snapshot))
        .route("/api/v1/style-image", post(api::style_image))
        .route("/api/v1/stylize", post(stylize::handle))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::guard,
        ))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

async fn dashboard() -> Response {
    let mut r = DASHBOARD.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    // The page loads nothing from elsewhere and may not be framed by another site.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' blob: data:; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    r
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "no such page; the API is under /api/v1/",
    )
}

/// A request refused before it reached the frame thread: the code and the sentence.
#[derive(Debug)]
pub struct Refused(pub StatusCode, pub String);

impl Refused {
    pub fn new(code: StatusCode, sentence: impl std::fmt::Display) -> Self {
        Self(code, sentence.to_string())
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        error(self.0, self.1)
    }
}

/// `{"error": "..."}` with a status code: every failure is one sentence.
pub fn error(code: StatusCode, sentence: impl std::fmt::Display) -> Response {
    let body = crate::control::Reply::error(sentence);
    (code, axum::Json(body)).into_response()
}
