//! The HTTP API and dashboard server (issue 14) against a real daemon process on a test
//! source, over real loopback TCP: every endpoint, every error code, the token rules, the
//! cross-origin rule, read-only mode, the stylize queue, and malformed requests.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::http::{self, Stream, get, post_json, request};
use common::*;

/// A daemon with its dashboard on a free loopback port.
struct Web {
    _proc: Proc,
    socket: PathBuf,
    addr: String,
    dir: tempfile::TempDir,
}

/// Starts a daemon on `source` at 160x96 with `[control]` and `[http]` extras.
fn start(source: &str, control: &str, http_extra: &str) -> Web {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("s.sock");
    let config = dir.path().join("c.toml");
    let sys = dir.path().join("sys");
    std::fs::create_dir(&sys).unwrap();
    std::fs::write(
        &config,
        format!(
            "[control]\n{control}\n[output]\nuris = [\"null://\"]\nsnapshot-dir = \"{}\"\n\
             [monitor]\nsysfs-root = \"{}\"\n[http]\nlisten = \"127.0.0.1:0\"\n{http_extra}\n",
            dir.path().join("snaps").display(),
            sys.display()
        ),
    )
    .unwrap();
    let args = [
        "--config",
        config.to_str().unwrap(),
        "--source",
        source,
        "--size",
        "160x96",
        "--http",
        "127.0.0.1:0",
    ];
    let proc = spawn_daemon(&args, &socket, &[]);
    let url = status(&socket)["http"].as_str().unwrap().to_string();
    Web {
        _proc: proc,
        socket,
        addr: http::authority(&url),
        dir,
    }
}

fn start_control(http_extra: &str) -> Web {
    start("test://?pattern=ball", "allow-control = true", http_extra)
}

fn wait_running(w: &Web) {
    wait_for(
        || get(&w.addr, "/readyz").code == 200,
        Duration::from_secs(30),
        "readyz 200",
    );
}

fn png_of(width: u32, height: u32) -> Vec<u8> {
    let data: Vec<u8> = (0..width * height * 3)
        .map(|i| ((i / 3) % 255) as u8 ^ ((i % 3) as u8 * 60))
        .collect();
    let img = image::RgbImage::from_raw(width, height, data).unwrap();
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

fn decode(bytes: &[u8]) -> image::RgbImage {
    image::load_from_memory(bytes)
        .unwrap_or_else(|e| panic!("not a picture ({e}): {} bytes", bytes.len()))
        .to_rgb8()
}

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
fn off_loopback_needs_a_token_and_every_request_carries_it() {
    let dir = tempfile::tempdir().unwrap();
    // No token on 0.0.0.0: refused before anything starts.
    let (code, _, err) = stylerd(
        &["run", "--config", "/dev/null", "--http", "0.0.0.0:0"],
        &root(),
    );
    assert_eq!(code, 1);
    assert!(err.contains("set http.token-file"), "{err}");
    let token = "s3cret-token-0123456789abcdef";
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let socket = dir.path().join("s.sock");
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        format!(
            "[control]\nallow-control = true\n[output]\nuris = [\"null://\"]\n[http]\ntoken-file = \"{}\"\n",
            token_file.display()
        ),
    )
    .unwrap();
    let args = [
        "--config",
        config.to_str().unwrap(),
        "--source",
        "test://",
        "--size",
        "160x96",
        "--http",
        "0.0.0.0:0",
    ];
    let _proc = spawn_daemon(&args, &socket, &[]);
    let url = status(&socket)["http"].as_str().unwrap().to_string();
    // Listening on all interfaces; the test connects through loopback only.
    let port = http::authority(&url)
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    let a = format!("127.0.0.1:{port}");
    let bearer = format!("Bearer {token}");
    let r = get(&a, "/api/v1/status");
    assert_eq!(r.code, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"stylerd\"")
    );
    for wrong in [
        "Bearer nope",
        "Bearer s3cret-token-0123456789abcdeF",
        "Basic x",
    ] {
        assert_eq!(
            request(
                &a,
                "GET",
                "/api/v1/status",
                &[("Authorization", wrong)],
                b""
            )
            .code,
            401,
            "{wrong}"
        );
    }
    assert_eq!(
        request(
            &a,
            "GET",
            "/api/v1/status",
            &[("Authorization", &bearer)],
            b""
        )
        .code,
        200
    );
    let pause = |auth: &[(&str, &str)]| {
        let mut h = vec![("Content-Type", "application/json")];
        h.extend_from_slice(auth);
        request(&a, "POST", "/api/v1/pause", &h, b"{}").code
    };
    assert_eq!(pause(&[]), 401);
    assert_eq!(pause(&[("Authorization", &bearer)]), 200);
    assert_eq!(get(&a, "/metrics").code, 401);
    assert_eq!(get(&a, "/api/v1/stream.mjpeg").code, 401);
    // Public: the page (it asks for the token) and the probes.
    assert_eq!(get(&a, "/").code, 200);
    assert_eq!(get(&a, "/healthz").code, 200);
    // Signing in sets a session cookie that then works alone.
    assert_eq!(
        post_json(&a, "/api/v1/session", r#"{"token":"wrong"}"#).code,
        401
    );
    let r = post_json(&a, "/api/v1/session", &format!(r#"{{"token":"{token}"}}"#));
    assert_eq!(r.code, 200);
    let cookie = r.header("set-cookie").unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap();
    assert_eq!(
        request(&a, "GET", "/api/v1/status", &[("Cookie", pair)], b"").code,
        200
    );
}

#[test]
fn cross_origin_posts_and_read_only_mode_are_refused() {
    let w = start_control("");
    wait_running(&w);
    let a = &w.addr;
    let evil = [
        ("Content-Type", "application/json"),
        ("Origin", "http://evil.example"),
    ];
    let r = request(a, "POST", "/api/v1/pause", &evil, b"{}");
    assert_eq!(r.code, 403);
    assert!(r.error().contains("cross-origin"), "{}", r.error());
    // The status is published once a second: after 1.5 s a pause would show.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(status(&w.socket)["state"], "running", "nothing changed");
    let same = format!("http://{a}");
    let ok = request(
        a,
        "POST",
        "/api/v1/pause",
        &[("Content-Type", "application/json"), ("Origin", &same)],
        b"{}",
    );
    assert_eq!(ok.code, 200, "the dashboard's own origin is fine");
    drop(w);

    let ro = start("test://", "allow-control = false", "");
    wait_running(&ro);
    let r = post_json(&ro.addr, "/api/v1/pause", "{}");
    assert_eq!(r.code, 403);
    assert!(r.error().contains("read-only"), "{}", r.error());
    let r = request(
        &ro.addr,
        "POST",
        "/api/v1/style-image",
        &[],
        &png_of(64, 64),
    );
    assert_eq!(r.code, 403);
    assert_eq!(get(&ro.addr, "/api/v1/styles").json()["control"], false);
    assert_eq!(get(&ro.addr, "/api/v1/status").code, 200);
}

#[test]
fn readyz_says_why_while_the_camera_reconnects() {
    let port = free_port();
    let cam = camera(port, "ball");
    let w = start(
        &format!("rtsp://127.0.0.1:{port}/camera"),
        "allow-control = true",
        "",
    );
    wait_running(&w);
    drop(cam);
    wait_for(
        || get(&w.addr, "/readyz").code == 503,
        Duration::from_secs(20),
        "readyz 503 after the camera went away",
    );
    let r = get(&w.addr, "/readyz");
    assert!(r.error().contains("reconnecting"), "{}", r.error());
    // The loop keeps turning while it waits: alive, not ready.
    assert_eq!(get(&w.addr, "/healthz").code, 200);
    let _cam = camera(port, "ball");
    wait_running(&w);
}

#[test]
fn a_thousand_malformed_requests_leave_the_daemon_serving() {
    let w = start_control("max-body-bytes = 65536");
    wait_running(&w);
    let a = &w.addr;
    let before = processed(&w.socket);
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let templates: [&[u8]; 10] = [
        b"GARBAGE\r\n\r\n",
        b"GET /api/v1/status HTTP/9.9\r\n\r\n",
        b"POST /api/v1/set-style HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n{",
        b"POST /api/v1/set-style HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\n{\"sty",
        b"GET /\x00\xff HTTP/1.1\r\n\r\n",
        b"POST /api/v1/stylize?width=-1 HTTP/1.1\r\nContent-Length: 4\r\n\r\n\x89PNG",
        b"GET /api/v1/styles/999999999999999999999/thumbnail.jpg HTTP/1.1\r\n\r\n",
        b"POST /api/v1/pause HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"GET /api/v1/stream.mjpeg?view=%%% HTTP/1.1\r\n\r\n",
        b"POST /api/v1/set-style HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 20\r\n\r\n{\"style\":[[[[[[[]]]]",
    ];
    let requests: Vec<Vec<u8>> = (0..1000)
        .map(|i| {
            let mut bytes = templates[i % templates.len()].to_vec();
            // Flip a few random bytes of every other request.
            if i % 2 == 1 {
                for _ in 0..3 {
                    let at = (next() as usize) % bytes.len();
                    bytes[at] = next() as u8;
                }
            }
            bytes
        })
        .collect();
    // Four clients at once; a request whose flipped Content-Length promises more body than
    // it sends gets no answer within the second we wait (the server is still reading).
    let answered: usize = std::thread::scope(|s| {
        let handles: Vec<_> = requests
            .chunks(250)
            .map(|part| {
                s.spawn(move || {
                    let mut answered = 0;
                    for bytes in part {
                        if let Some(r) = http::send_raw(a, bytes, Duration::from_secs(1)) {
                            answered += 1;
                            assert!(
                                (400..600).contains(&r.code) || r.code == 200,
                                "{:?}: {}",
                                String::from_utf8_lossy(bytes),
                                r.code
                            );
                        }
                    }
                    answered
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert!(
        answered > 500,
        "most malformed requests get an answer: {answered}"
    );
    assert_eq!(get(a, "/healthz").code, 200);
    assert_eq!(get(a, "/api/v1/status").json()["state"], "running");
    // The frame loop kept going the whole time.
    let after = processed(&w.socket);
    assert!(after > before, "frames {before} -> {after}");
    assert_eq!(status(&w.socket)["frames"]["engine_errors"], 0);
    let _ = &w.dir;
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

#[test]
fn connections_past_the_limit_wait_for_a_free_place() {
    let w = start_control("");
    wait_running(&w);
    // 64 clients that connect and say nothing hold every place (MAX_CONNECTIONS).
    let mut idle: Vec<std::net::TcpStream> = (0..64)
        .map(|_| std::net::TcpStream::connect(&w.addr).unwrap())
        .collect();
    let addr = w.addr.clone();
    let waiting = std::thread::spawn(move || get(&addr, "/healthz").code);
    // Not served while every place is taken (it cannot be: accepting waits for a place).
    std::thread::sleep(Duration::from_secs(1));
    assert!(!waiting.is_finished(), "the 65th connection was served");
    idle.pop();
    wait_for(
        || waiting.is_finished(),
        Duration::from_secs(10),
        "the 65th connection served once a place freed",
    );
    assert_eq!(waiting.join().unwrap(), 200);
    drop(idle);
    assert_eq!(get(&w.addr, "/healthz").code, 200);
}

#[test]
fn idle_and_slow_clients_are_closed_while_streams_go_on() {
    use std::io::{Read, Write};
    let w = start_control("");
    wait_running(&w);
    let mut events = Stream::open(&w.addr, "/api/v1/events", &[]);
    let mut buf = Vec::new();
    events.next_event(&mut buf);
    // One that says nothing, one that never finishes its request head.
    let idle = std::net::TcpStream::connect(&w.addr).unwrap();
    let mut slow = std::net::TcpStream::connect(&w.addr).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    // The header timer starts at accept; 5 s more for a loaded machine.
    let limit = stylerd::http::HEADER_READ_TIMEOUT + Duration::from_secs(5);
    for (mut s, what) in [(idle, "idle"), (slow, "slow")] {
        s.set_read_timeout(Some(limit)).unwrap();
        let mut b = [0u8; 64];
        match s.read(&mut b) {
            Ok(0) => {}
            Ok(n) => panic!("the {what} client got an answer: {:?}", &b[..n]),
            Err(e) => panic!("the {what} client was not closed within {limit:?}: {e}"),
        }
    }
    // The event stream, open for longer than that, still gets new documents.
    let now = get(&w.addr, "/api/v1/status").json()["uptime_s"]
        .as_f64()
        .unwrap();
    let newer = (0..60).any(|_| {
        let (_, data) = events.next_event(&mut buf);
        let doc: serde_json::Value = serde_json::from_str(&data).unwrap();
        doc["uptime_s"].as_f64().unwrap() > now
    });
    assert!(newer, "the event stream stopped");
}
