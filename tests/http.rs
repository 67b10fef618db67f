//! The HTTP API and dashboard server (issue 14) against a real daemon process on a test
//! source, over real loopback TCP: every endpoint, the documented error codes, the stylize
//! queue, the live streams and an uploaded style. Access rules and abuse (tokens,
//! cross-origin, read-only, malformed requests, connection limits) are in tests/http_guard.rs.

mod common;

use std::time::{Duration, Instant};

use common::http::{self, Stream, get, post_json, request};
use common::web::*;
use common::*;

#[test]
fn every_endpoint_answers_as_documented() {
    let w = start_control("");
    wait_running(&w);
    // Status: the socket's document.
    let s = get(&w.addr, "/api/v1/status");
    assert_eq!(s.code, 200);
    assert_eq!(s.header("content-type"), Some("application/json"));
    let doc = s.json();
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["state"], "running");
    assert_eq!(doc["http"], status(&w.socket)["http"]);
    // Health, readiness, metrics.
    assert_eq!(get(&w.addr, "/healthz").json()["ok"], true);
    assert_eq!(get(&w.addr, "/readyz").json()["state"], "running");
    let m = get(&w.addr, "/metrics");
    assert!(m.header("content-type").unwrap().starts_with("text/plain"));
    let text = String::from_utf8(m.body).unwrap();
    assert!(
        text.contains("stylerd_frames_total{kind=\"processed\"}"),
        "{text}"
    );
    // The page itself.
    let page = get(&w.addr, "/");
    assert_eq!(page.code, 200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(String::from_utf8_lossy(&page.body).contains("/api/v1/stream.mjpeg"));
    // Styles and models.
    let styles = get(&w.addr, "/api/v1/styles").json();
    assert_eq!(styles["model"], "multistyle26");
    assert_eq!(styles["styles"].as_array().unwrap().len(), 26);
    assert_eq!(styles["control"], true);
    let models = get(&w.addr, "/api/v1/models").json();
    let names: Vec<&str> = models["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"multistyle26"), "{names:?}");
    // A thumbnail: a small JPEG at 192 px wide, the frame's 160x96 aspect (rounded to 4).
    let thumb = get(&w.addr, "/api/v1/styles/5/thumbnail.jpg");
    assert_eq!(thumb.code, 200, "{}", String::from_utf8_lossy(&thumb.body));
    assert_eq!(decode(&thumb.body).dimensions(), (192, 112));
    assert_eq!(get(&w.addr, "/api/v1/styles/99/thumbnail.jpg").code, 404);
    assert_eq!(get(&w.addr, "/api/v1/styles/x/thumbnail.jpg").code, 400);
    // Latest frame, both views, at the stream's size.
    for view in ["stylized", "original"] {
        let f = get(&w.addr, &format!("/api/v1/frame.jpg?view={view}"));
        assert_eq!(f.code, 200);
        assert_eq!(decode(&f.body).dimensions(), (160, 96));
    }
    assert_eq!(get(&w.addr, "/api/v1/frame.jpg?view=sideways").code, 400);

    // Control: set-style, pause, resume, snapshot.
    let r = post_json(&w.addr, "/api/v1/set-style", r#"{"style":"3:0.5,12:0.5"}"#);
    assert_eq!(r.code, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["style"], "3:0.5,12:0.5");
    // The socket sees what the API set (the status is published once a second).
    wait_for(
        || status(&w.socket)["style"]["spec"] == "3:0.5,12:0.5",
        Duration::from_secs(5),
        "the new style in the socket's status",
    );
    // Strength, colour and `save` take the socket's fields.
    let r = post_json(
        &w.addr,
        "/api/v1/set-style",
        r#"{"strength":0.5,"preserve-color":true}"#,
    );
    assert_eq!(r.code, 200, "{}", String::from_utf8_lossy(&r.body));
    wait_for(
        || {
            let s = status(&w.socket);
            s["style"]["strength"] == 0.5 && s["style"]["preserve_color"] == true
        },
        Duration::from_secs(5),
        "strength 0.5 and preserve-color in the status",
    );
    let r = post_json(&w.addr, "/api/v1/set-style", r#"{"style":3,"save":true}"#);
    assert_eq!(r.code, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["saved"], true);
    let file: toml::Value =
        toml::from_str(&std::fs::read_to_string(w.dir.path().join("c.toml")).unwrap()).unwrap();
    assert_eq!(file["engine"]["style"].as_str(), Some("3"), "{file}");
    assert_eq!(file["engine"]["strength"].as_float(), Some(0.5), "{file}");
    // `save` alone saves the running style.
    assert_eq!(
        post_json(&w.addr, "/api/v1/set-style", r#"{"strength":0.8}"#).code,
        200
    );
    let r = post_json(&w.addr, "/api/v1/set-style", r#"{"save":true}"#);
    assert_eq!(r.code, 200, "{}", String::from_utf8_lossy(&r.body));
    let file: toml::Value =
        toml::from_str(&std::fs::read_to_string(w.dir.path().join("c.toml")).unwrap()).unwrap();
    assert_eq!(file["engine"]["strength"].as_float(), Some(0.8), "{file}");
    assert_eq!(file["engine"]["style"].as_str(), Some("3"), "{file}");
    let r = post_json(&w.addr, "/api/v1/set-style", r#"{"style":"40"}"#);
    assert_eq!(r.code, 400);
    assert!(r.error().contains("40"), "{}", r.error());
    let r = post_json(&w.addr, "/api/v1/pause", "{}");
    assert_eq!(r.json()["state"], "paused");
    wait_for(
        || get(&w.addr, "/api/v1/status").json()["state"] == "paused",
        Duration::from_secs(5),
        "paused in the status",
    );
    assert_eq!(get(&w.addr, "/readyz").code, 200, "paused is still ready");
    assert_eq!(
        post_json(&w.addr, "/api/v1/resume", "{}").json()["state"],
        "running"
    );
    let snap = post_json(&w.addr, "/api/v1/snapshot", "{}");
    assert_eq!(snap.code, 200);
    assert_eq!(snap.header("content-type"), Some("image/png"));
    assert_eq!(decode(&snap.body).dimensions(), (160, 96));
    let path = snap.header("x-snapshot-path").unwrap();
    assert_eq!(
        std::fs::read(path).unwrap(),
        snap.body,
        "the PNG is the saved file"
    );
}

#[test]
fn bad_requests_get_the_documented_codes() {
    let w = start_control("max-body-bytes = 200000\nmax-image-side = 1000");
    wait_running(&w);
    let a = &w.addr;
    let cases: Vec<(http::Answer, u16, &str)> = vec![
        (get(a, "/nope"), 404, "no such page"),
        (get(a, "/api/v1/pause"), 405, ""),
        (post_json(a, "/api/v1/set-style", "{not json"), 400, ""),
        (post_json(a, "/api/v1/set-style", "[1]"), 400, "JSON object"),
        (
            post_json(a, "/api/v1/set-style", r#"{"cmd":"pause"}"#),
            400,
            "leave \"cmd\" out",
        ),
        (
            post_json(a, "/api/v1/set-style", r#"{"colour":1}"#),
            400,
            "unknown field",
        ),
        (
            post_json(a, "/api/v1/set-style", "{}"),
            400,
            "set-style needs",
        ),
        (
            request(
                a,
                "POST",
                "/api/v1/pause",
                &[("Content-Type", "text/plain")],
                b"{}",
            ),
            415,
            "",
        ),
        (
            post_json(a, "/api/v1/stylize", "{}"),
            400,
            "not a PNG or JPEG",
        ),
        (
            request(a, "POST", "/api/v1/stylize", &[], b"GIF89a\x01\x00\x01\x00"),
            400,
            "not a PNG or JPEG",
        ),
        (
            request(a, "POST", "/api/v1/stylize", &[], &png_of(1200, 20)),
            400,
            "at most 1000 pixels",
        ),
        (
            request(a, "POST", "/api/v1/stylize", &[], &vec![0u8; 300_000]),
            413,
            "",
        ),
        (
            request(a, "POST", "/api/v1/stylize?style=3:x", &[], &png_of(32, 32)),
            400,
            "bad style spec",
        ),
        (
            request(
                a,
                "POST",
                "/api/v1/stylize?format=gif",
                &[],
                &png_of(32, 32),
            ),
            400,
            "not png or jpeg",
        ),
        (
            request(
                a,
                "POST",
                "/api/v1/stylize?width=5000",
                &[],
                &png_of(32, 32),
            ),
            400,
            "width and height",
        ),
        (
            request(a, "POST", "/api/v1/stylize?style=40", &[], &png_of(32, 32)),
            400,
            "40",
        ),
        (
            request(a, "POST", "/api/v1/style-image", &[], b"not a picture"),
            400,
            "not a PNG or JPEG",
        ),
    ];
    for (i, (answer, code, sentence)) in cases.iter().enumerate() {
        assert_eq!(
            answer.code,
            *code,
            "case {i}: {}",
            String::from_utf8_lossy(&answer.body)
        );
        if !sentence.is_empty() {
            let body = answer.error();
            assert!(body.contains(sentence), "case {i}: {body}");
        }
    }
    // The daemon is unaffected.
    assert_eq!(get(a, "/healthz").code, 200);
    assert_eq!(status(&w.socket)["frames"]["engine_errors"], 0);
}

#[test]
fn stylize_returns_the_picture_at_the_asked_style_size_and_format() {
    let w = start_control("");
    let a = &w.addr;
    let input = png_of(96, 64);
    let r = request(a, "POST", "/api/v1/stylize?style=7", &[], &input);
    assert_eq!(r.code, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type"), Some("image/png"));
    let out = decode(&r.body);
    assert_eq!(out.dimensions(), (96, 64));
    // The engine's own output for the same picture and style, through the library.
    let direct = stylize_direct(
        &stylerd::frame::RgbImage::new(96, 64, decode(&input).into_raw()).unwrap(),
        "7",
    );
    // PNG is lossless: the API returns what the engine computes; 1/255 allows the one
    // rounding step two ONNX Runtime sessions may differ by.
    let worst = out
        .as_raw()
        .iter()
        .zip(&direct.data)
        .map(|(a, b)| a.abs_diff(*b))
        .max()
        .unwrap();
    assert!(
        worst <= 1,
        "API output differs from the engine's by {worst}/255"
    );
    let r = request(
        a,
        "POST",
        "/api/v1/stylize?style=12&width=128&height=72&format=jpeg&quality=80",
        &[],
        &input,
    );
    assert_eq!(r.header("content-type"), Some("image/jpeg"));
    assert_eq!(decode(&r.body).dimensions(), (128, 72));
}

#[test]
fn a_full_stylize_queue_answers_503_with_retry_after() {
    // One engine, one place in the queue: of 8 simultaneous large pictures at most 2 are
    // taken at a time, the rest are turned away at once.
    let w = start_control("stylize-workers = 1\nstylize-queue = 1");
    let input = png_of(640, 360);
    let answers: Vec<http::Answer> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| s.spawn(|| request(&w.addr, "POST", "/api/v1/stylize", &[], &input)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok = answers.iter().filter(|a| a.code == 200).count();
    let busy: Vec<_> = answers.iter().filter(|a| a.code == 503).collect();
    assert_eq!(ok + busy.len(), 8, "only 200 and 503");
    assert!(ok >= 1, "the first request is always taken");
    assert!(!busy.is_empty(), "8 at once cannot all fit in 2 places");
    for b in busy {
        let after: u64 = b.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=60).contains(&after));
        assert!(b.error().contains("queue is full"), "{}", b.error());
    }
}

#[test]
fn mjpeg_and_events_stream_live() {
    let w = start_control("preview-fps = 10");
    wait_running(&w);
    let mut mjpeg = Stream::open(&w.addr, "/api/v1/stream.mjpeg", &[]);
    assert_eq!(mjpeg.code, 200);
    let ct = mjpeg
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .unwrap()
        .1
        .clone();
    assert_eq!(ct, "multipart/x-mixed-replace; boundary=frame");
    let mut buf = Vec::new();
    let first = decode(&mjpeg.next_jpeg(&mut buf));
    assert_eq!(first.dimensions(), (160, 96));
    // The ball moves: a later frame differs.
    let started = Instant::now();
    let mut later = first.clone();
    for _ in 0..20 {
        later = decode(&mjpeg.next_jpeg(&mut buf));
        if mean_abs_diff_bytes(first.as_raw(), later.as_raw()) > 1.0 {
            break;
        }
    }
    assert!(
        mean_abs_diff_bytes(first.as_raw(), later.as_raw()) > 1.0,
        "the live picture did not change"
    );
    // 10 parts at preview-fps 10 take at least 0.9 s (the cap holds); the first may be
    // the frame kept before we connected.
    let t0 = Instant::now();
    for _ in 0..10 {
        mjpeg.next_jpeg(&mut buf);
    }
    assert!(
        t0.elapsed() >= Duration::from_millis(900),
        "preview faster than preview-fps: {:?}",
        t0.elapsed()
    );
    let _ = started;
    drop(mjpeg);

    let mut events = Stream::open(&w.addr, "/api/v1/events", &[]);
    assert_eq!(events.code, 200);
    let mut buf = Vec::new();
    let (e1, d1) = events.next_event(&mut buf);
    let (e2, d2) = events.next_event(&mut buf);
    assert_eq!((e1.as_str(), e2.as_str()), ("status", "status"));
    let (s1, s2): (serde_json::Value, serde_json::Value) = (
        serde_json::from_str(&d1).unwrap(),
        serde_json::from_str(&d2).unwrap(),
    );
    assert!(
        s2["uptime_s"].as_f64() > s1["uptime_s"].as_f64(),
        "a newer document each time"
    );
}

#[test]
fn an_uploaded_picture_becomes_the_style() {
    let w = start_control("");
    wait_running(&w);
    let photo = png_of(128, 96);
    let r = request(&w.addr, "POST", "/api/v1/style-image", &[], &photo);
    assert_eq!(r.code, 200, "{}", String::from_utf8_lossy(&r.body));
    let done = r.json();
    // The arbitrary-style pair takes over; the label names the kept upload.
    assert_eq!(done["model"], "arbitrary_transform", "{done}");
    let label = done["style"].as_str().unwrap().to_string();
    assert!(label.contains("style-"), "{label}");
    wait_for(
        || status(&w.socket)["engine"]["model"] == "arbitrary_transform",
        Duration::from_secs(10),
        "the arbitrary-style engine in the status",
    );
    // A picture's style is not a config value: saving it is refused, nothing changes.
    let r = post_json(
        &w.addr,
        "/api/v1/set-style",
        r#"{"strength":0.7,"save":true}"#,
    );
    assert_eq!(r.code, 400, "{}", String::from_utf8_lossy(&r.body));
    assert!(r.error().contains("picture's style"), "{}", r.error());
    assert!(
        !std::fs::read_to_string(w.dir.path().join("c.toml"))
            .unwrap()
            .contains("strength"),
        "the refused save wrote the file"
    );
    // Back to a named style of the configured model.
    let r = post_json(&w.addr, "/api/v1/set-style", r#"{"style":"4"}"#);
    assert_eq!(r.code, 200);
    wait_for(
        || status(&w.socket)["engine"]["model"] == "multistyle26",
        Duration::from_secs(10),
        "the configured model back",
    );
}
