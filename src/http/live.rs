//! What changes as the daemon runs: the MJPEG preview, server-sent status events, health,
//! readiness and Prometheus metrics.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use serde::Deserialize;

use super::error;
use super::images::{self, Format};
use crate::control::RunState;
use crate::daemon::tap::TapFrame;

/// `/healthz` fails when the frame loop has not turned for this long (it turns at least
/// every 100 ms, also while the camera is away).
pub const STALLED_AFTER: Duration = Duration::from_secs(5);
/// `/readyz` fails when no stylized frame came for this long while running.
pub const NO_FRAMES_AFTER: Duration = Duration::from_secs(5);
/// Most simultaneous MJPEG viewers.
pub const MAX_VIEWERS: usize = 8;
/// JPEG quality of the preview.
const PREVIEW_QUALITY: u8 = 75;

/// `GET /healthz`: the frame loop is alive.
pub async fn healthz(State(state): State<super::State>) -> Response {
    let since = state.tap.since_beat();
    if since > STALLED_AFTER {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the frame loop has not run for {:.0} s",
                since.as_secs_f64()
            ),
        );
    }
    axum::Json(serde_json::json!({"ok": true})).into_response()
}

/// `GET /readyz`: stylized frames are flowing (503 with the reason while starting or
/// reconnecting). Paused counts as ready: the daemon is up and answering.
pub async fn readyz(State(state): State<super::State>) -> Response {
    let status = state.status.borrow().clone();
    let reason = match status.state {
        RunState::Running | RunState::Paused => match state.tap.since_frame() {
            Some(t) if t > NO_FRAMES_AFTER && status.state == RunState::Running => {
                Some(format!("no stylized frame for {:.0} s", t.as_secs_f64()))
            }
            None if status.state == RunState::Running => Some("no stylized frame yet".into()),
            _ => None,
        },
        RunState::Starting => Some("starting: no stylized frame yet".into()),
        RunState::Reconnecting => Some(format!(
            "reconnecting to the source ({} reconnects so far)",
            status.source.reconnects
        )),
        RunState::Stopping => Some("stopping".into()),
    };
    match reason {
        Some(r) => error(StatusCode::SERVICE_UNAVAILABLE, r),
        None => axum::Json(serde_json::json!({"ok": true, "state": status.state})).into_response(),
    }
}

/// `GET /metrics`: the status in the Prometheus text format.
pub async fn metrics(State(state): State<super::State>) -> Response {
    let text = crate::control::metrics::render(&state.status.borrow());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// `GET /api/v1/events`: the status document as an `event: status` once a second (each
/// time the monitor publishes it), for the dashboard's plots and for scripts.
pub async fn events(State(state): State<super::State>) -> impl IntoResponse {
    let mut status = state.status.clone();
    status.mark_changed();
    let stream = futures_util::stream::unfold(
        (status, state.shutdown.clone()),
        move |(mut status, mut stop)| async move {
            tokio::select! {
                changed = status.changed() => changed.ok()?,
                _ = stop.wait_for(|s| *s) => return None,
            }
            let doc = status.borrow_and_update().clone();
            let event = Event::default()
                .event("status")
                .json_data(&doc)
                .unwrap_or_else(|_| Event::default().comment("unencodable status"));
            Some((Ok::<_, Infallible>(event), (status, stop)))
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ViewParams {
    /// `stylized` (default) or `original`.
    view: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum View {
    Stylized,
    Original,
}

fn view_of(
    p: &Result<Query<ViewParams>, axum::extract::rejection::QueryRejection>,
) -> Result<View, super::Refused> {
    let bad = |e: String| super::Refused(StatusCode::BAD_REQUEST, e);
    match p {
        Err(e) => Err(bad(e.body_text())),
        Ok(Query(p)) => match p.view.as_deref() {
            None | Some("stylized") => Ok(View::Stylized),
            Some("original") => Ok(View::Original),
            Some(other) => Err(bad(format!("view \"{other}\" is not stylized or original"))),
        },
    }
}

/// The frame's JPEG for a view, encoded once and shared by every viewer.
async fn jpeg_of(frame: Arc<TapFrame>, view: View) -> Option<Vec<u8>> {
    tokio::task::spawn_blocking(move || {
        let (cell, image) = match view {
            View::Stylized => (&frame.stylized_jpeg, &frame.stylized),
            View::Original => (&frame.original_jpeg, &frame.original),
        };
        if let Some(j) = cell.get() {
            return Some(j.clone());
        }
        let j = images::encode(
            image,
            Format::Jpeg {
                quality: PREVIEW_QUALITY,
            },
        )
        .ok()?;
        Some(cell.get_or_init(|| j).clone())
    })
    .await
    .ok()
    .flatten()
}

/// `GET /api/v1/frame.jpg?view=stylized|original`: the latest preview frame.
pub async fn frame_jpeg(
    State(state): State<super::State>,
    params: Result<Query<ViewParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let view = match view_of(&params) {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    let Some(frame) = state.tap.latest() else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "no stylized frame yet");
    };
    match jpeg_of(frame, view).await {
        Some(j) => (
            [
                (header::CONTENT_TYPE, "image/jpeg"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            j,
        )
            .into_response(),
        None => error(StatusCode::INTERNAL_SERVER_ERROR, "cannot encode the frame"),
    }
}

/// `GET /api/v1/stream.mjpeg?view=stylized|original`: the live picture as
/// `multipart/x-mixed-replace`, at most `http.preview-fps` frames a second.
pub async fn mjpeg(
    State(state): State<super::State>,
    params: Result<Query<ViewParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let view = match view_of(&params) {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    if state.tap.viewers() >= MAX_VIEWERS {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{MAX_VIEWERS} live viewers already; close one first"),
        );
    }
    let (viewer, mut seq) = state.tap.watch();
    seq.mark_changed();
    let tap = state.tap.clone();
    let stop = state.shutdown.clone();
    let parts = mjpeg_parts(viewer, seq, tap, stop, view);
    let mut r = Response::new(Body::from_stream(parts));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("multipart/x-mixed-replace; boundary=frame"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn mjpeg_parts(
    viewer: crate::daemon::tap::Viewer,
    seq: tokio::sync::watch::Receiver<u64>,
    tap: Arc<crate::daemon::tap::FrameTap>,
    stop: tokio::sync::watch::Receiver<bool>,
    view: View,
) -> impl Stream<Item = Result<Bytes, Infallible>> {
    futures_util::stream::unfold(
        (viewer, seq, tap, stop),
        move |(viewer, mut seq, tap, mut stop)| async move {
            loop {
                tokio::select! {
                    changed = seq.changed() => changed.ok()?,
                    _ = stop.wait_for(|s| *s) => return None,
                }
                seq.borrow_and_update();
                let Some(frame) = tap.latest() else { continue };
                let Some(jpeg) = jpeg_of(frame, view).await else {
                    continue;
                };
                let mut part = format!(
                    "--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
                    jpeg.len()
                )
                .into_bytes();
                part.extend_from_slice(&jpeg);
                part.extend_from_slice(b"\r\n");
                return Some((Ok(Bytes::from(part)), (viewer, seq, tap, stop)));
            }
        },
    )
}
