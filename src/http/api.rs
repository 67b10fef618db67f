//! `/api/v1/...`: the status, control commands (the socket's typed protocol), snapshots,
//! styles with their gallery thumbnails, models, and style-picture uploads.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value};

use super::images::{self, Format};
use super::{Refused, error};
use crate::control::server::deliver;
use crate::control::{Control, Done, Reply, Request};
use crate::frame::resize_bilinear;
use crate::model::Manifest;
use crate::style::StyleSpec;

/// Gallery thumbnails are this wide (height from the frame's aspect).
pub const THUMB_WIDTH: u32 = 192;
/// A thumbnail is rendered again from a newer frame after this long.
pub const THUMB_FRESH: Duration = Duration::from_secs(60);
/// Uploaded style pictures kept at most.
const MAX_UPLOADS: usize = 8;

/// `GET /api/v1/status`: the same document as the socket's `{"cmd":"status"}`.
pub async fn status(State(state): State<super::State>) -> Response {
    Json(state.status.borrow().clone()).into_response()
}

/// The answer for a command the frame thread took.
fn answer(reply: Result<Reply, &'static str>) -> Response {
    match reply {
        Ok(Reply::Done(done)) => Json(done).into_response(),
        // The frame thread refused it (a style the model lacks, no frame yet...).
        Ok(Reply::Error { error: e }) => error(StatusCode::BAD_REQUEST, e),
        Ok(Reply::Status(s)) => Json(s).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

/// Parses a POST body as the socket request `cmd` (the body is the socket's request
/// without `cmd`), checks it, and hands it to the frame thread.
async fn command(
    state: &super::State,
    cmd: &str,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Result<Reply, &'static str>, Refused> {
    let Json(body) = body.map_err(|e| Refused::new(e.status(), e.body_text()))?;
    let Value::Object(mut fields) = body else {
        return Err(Refused::new(
            StatusCode::BAD_REQUEST,
            "the body must be a JSON object, e.g. {}",
        ));
    };
    if fields.contains_key("cmd") {
        return Err(Refused::new(
            StatusCode::BAD_REQUEST,
            "the command is the URL; leave \"cmd\" out of the body",
        ));
    }
    fields.insert("cmd".into(), Value::String(cmd.into()));
    let line = serde_json::to_vec(&Value::Object(fields))
        .map_err(|e| Refused::new(StatusCode::BAD_REQUEST, e))?;
    let control = match Request::parse(&line).and_then(Request::into_control) {
        Ok(Some(c)) => c,
        Ok(None) => {
            return Err(Refused::new(
                StatusCode::BAD_REQUEST,
                "the status is GET /api/v1/status",
            ));
        }
        Err(e) => return Err(Refused::new(StatusCode::BAD_REQUEST, e)),
    };
    run(state, control).await
}

async fn run(
    state: &super::State,
    control: Control,
) -> Result<Result<Reply, &'static str>, Refused> {
    let Some(tx) = state.control.as_ref() else {
        return Err(Refused::new(
            StatusCode::FORBIDDEN,
            "the API is read-only; set control.allow-control = true to allow control commands",
        ));
    };
    Ok(deliver(tx, control).await)
}

/// `POST /api/v1/set-style {"style": "3:0.5,12:0.5"}` (or `{"image": PATH, ...}`).
pub async fn set_style(
    State(state): State<super::State>,
    body: Result<Json<Value>, JsonRejection>,
) -> Response {
    match command(&state, "set-style", body).await {
        Ok(reply) => answer(reply),
        Err(r) => r.into_response(),
    }
}

/// `POST /api/v1/pause {}`.
pub async fn pause(
    State(state): State<super::State>,
    body: Result<Json<Value>, JsonRejection>,
) -> Response {
    match command(&state, "pause", body).await {
        Ok(reply) => answer(reply),
        Err(r) => r.into_response(),
    }
}

/// `POST /api/v1/resume {}`.
pub async fn resume(
    State(state): State<super::State>,
    body: Result<Json<Value>, JsonRejection>,
) -> Response {
    match command(&state, "resume", body).await {
        Ok(reply) => answer(reply),
        Err(r) => r.into_response(),
    }
}

/// `POST /api/v1/snapshot {}`: writes a snapshot as the socket's command does and answers
/// with the PNG itself (its path in `X-Snapshot-Path`).
pub async fn snapshot(
    State(state): State<super::State>,
    body: Result<Json<Value>, JsonRejection>,
) -> Response {
    let reply = match command(&state, "snapshot", body).await {
        Ok(reply) => reply,
        Err(r) => return r.into_response(),
    };
    let path = match reply {
        Ok(Reply::Done(Done {
            path: Some(path), ..
        })) => path,
        other => return answer(other),
    };
    let read = {
        let path = path.clone();
        tokio::task::spawn_blocking(move || std::fs::read(path)).await
    };
    match read.unwrap_or_else(|e| Err(std::io::Error::other(e))) {
        Ok(png) => {
            let mut r = ([(header::CONTENT_TYPE, "image/png")], png).into_response();
            if let Ok(v) = HeaderValue::from_str(&path) {
                r.headers_mut().insert("x-snapshot-path", v);
            }
            r
        }
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the snapshot {path} was written but cannot be read back: {e}"),
        ),
    }
}

/// `POST /api/v1/style-image` with a PNG or JPEG body: arbitrary style from that picture
/// (checked, re-encoded as PNG into the uploads folder, then the socket's
/// `{"cmd":"set-style","image":PATH}`).
pub async fn style_image(State(state): State<super::State>, body: Bytes) -> Response {
    if state.control.is_none() {
        return error(
            StatusCode::FORBIDDEN,
            "the API is read-only; set control.allow-control = true to allow control commands",
        );
    }
    let max_side = state.config.http.max_image_side;
    let dir = state.uploads.clone();
    let saved = tokio::task::spawn_blocking(move || -> Result<PathBuf, (StatusCode, String)> {
        let image = images::decode(&body, max_side).map_err(|e| (StatusCode::BAD_REQUEST, e))?;
        let png = images::encode(&image, Format::Png)
            .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e))?;
        let name = format!("style-{}.png", &crate::model::sha256_hex(&png)[..16]);
        save_upload(&dir, &name, &png).map_err(|e| {
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot keep the upload in {}: {e}", dir.display()),
            )
        })
    })
    .await;
    let path = match saved {
        Ok(Ok(p)) => p,
        Ok(Err((code, e))) => return error(code, e),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e),
    };
    match run(
        &state,
        Control::SetStyleImage {
            image: path,
            and: None,
            strength: None,
            preserve_color: None,
        },
    )
    .await
    {
        Ok(reply) => answer(reply),
        Err(r) => r.into_response(),
    }
}

/// Writes `bytes` as `dir/name` (write + rename), keeping the newest [`MAX_UPLOADS`].
fn save_upload(dir: &std::path::Path, name: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, &path)?;
    let mut kept: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(dir)?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("style-"))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    kept.sort();
    let excess = kept.len().saturating_sub(MAX_UPLOADS);
    for (_, old) in kept.into_iter().take(excess) {
        if old != path {
            let _ = std::fs::remove_file(old);
        }
    }
    Ok(path)
}

#[derive(Debug, Serialize)]
struct StyleEntry {
    index: usize,
    name: String,
    thumbnail: String,
}

/// `GET /api/v1/styles`: the configured model's styles, the one in force, and whether
/// control commands are allowed (the dashboard hides its buttons when not).
pub async fn styles(State(state): State<super::State>) -> Response {
    let e = &state.config.engine;
    let manifest = match Manifest::find(&e.models_dir, &e.model) {
        Ok(m) => m,
        Err(err) => return error(StatusCode::INTERNAL_SERVER_ERROR, err),
    };
    let styles: Vec<StyleEntry> = manifest
        .style_names()
        .into_iter()
        .enumerate()
        .map(|(index, name)| StyleEntry {
            index,
            name,
            thumbnail: format!("/api/v1/styles/{index}/thumbnail.jpg"),
        })
        .collect();
    let current = state.status.borrow().style.spec.clone();
    Json(serde_json::json!({
        "model": manifest.name,
        "styles": styles,
        "current": current,
        "control": state.control.is_some(),
        "token_required": state.auth.required(),
        "preview_fps": state.config.http.preview_fps,
        "budget": {
            "latency_ms": state.config.monitor.budget_latency_ms,
            "power_w": state.config.monitor.budget_power_w,
        },
    }))
    .into_response()
}

/// Thumbnails rendered from a recent frame, by style index.
#[derive(Debug, Default)]
pub struct Gallery {
    cache: Mutex<HashMap<usize, (Instant, Vec<u8>)>>,
}

/// `GET /api/v1/styles/{index}/thumbnail.jpg`: that style applied to a recent frame, small
/// (rendered by the stylize engines, cached for [`THUMB_FRESH`]).
pub async fn thumbnail(
    State(state): State<super::State>,
    UrlPath(index): UrlPath<String>,
) -> Response {
    let Ok(index) = index.parse::<usize>() else {
        return error(StatusCode::BAD_REQUEST, "a style index is a number");
    };
    let cached = state.gallery.cache.lock().ok().and_then(|c| {
        c.get(&index)
            .filter(|(at, _)| at.elapsed() < THUMB_FRESH)
            .map(|(_, j)| j.clone())
    });
    if let Some(jpeg) = cached {
        return jpeg_response(jpeg);
    }
    let Some(frame) = state.tap.latest() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "no frame yet to render styles from",
        );
    };
    let Ok(spec) = StyleSpec::parse(&index.to_string()) else {
        return error(StatusCode::BAD_REQUEST, "a style index is a number");
    };
    let Some(_place) = state.stylize.admit() else {
        let mut r = error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the stylize engines are busy",
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return r;
    };
    let (w, h) = (frame.original.width, frame.original.height);
    let th = ((THUMB_WIDTH as u64 * h as u64 / w.max(1) as u64) as u32 / 4 * 4).max(16);
    let small =
        tokio::task::spawn_blocking(move || resize_bilinear(&frame.original, THUMB_WIDTH, th))
            .await;
    let Ok(small) = small else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "cannot scale the frame");
    };
    let out = match state.stylize.run(small, spec, [THUMB_WIDTH, th]).await {
        Ok(out) => out,
        Err(super::stylize::JobError::BadStyle(e)) => return error(StatusCode::NOT_FOUND, e),
        Err(super::stylize::JobError::Engine(e)) => {
            return error(StatusCode::INTERNAL_SERVER_ERROR, e);
        }
    };
    let jpeg =
        tokio::task::spawn_blocking(move || images::encode(&out, Format::Jpeg { quality: 80 }))
            .await;
    match jpeg {
        Ok(Ok(j)) => {
            if let Ok(mut c) = state.gallery.cache.lock() {
                c.insert(index, (Instant::now(), j.clone()));
            }
            jpeg_response(j)
        }
        _ => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot encode the thumbnail",
        ),
    }
}

fn jpeg_response(jpeg: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/jpeg"),
            (header::CACHE_CONTROL, "max-age=30"),
        ],
        jpeg,
    )
        .into_response()
}

/// `GET /api/v1/models`: every model in the models folder with its styles.
pub async fn models(State(state): State<super::State>) -> Response {
    let e = &state.config.engine;
    let list = match Manifest::list(&e.models_dir) {
        Ok(l) => l,
        Err(err) => return error(StatusCode::INTERNAL_SERVER_ERROR, err),
    };
    let models: Vec<Value> = list
        .iter()
        .map(|m| {
            let mut o = Map::new();
            o.insert("name".into(), m.name.clone().into());
            o.insert("description".into(), m.description.clone().into());
            o.insert("styles".into(), m.style_names().into());
            o.insert("installed".into(), m.model_path().exists().into());
            o.insert("active".into(), (m.name == e.model).into());
            Value::Object(o)
        })
        .collect();
    Json(serde_json::json!({ "models": models })).into_response()
}
