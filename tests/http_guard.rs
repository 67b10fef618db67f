//! The HTTP server's guards against a real daemon process over real loopback TCP (issue 14):
//! the token rules off loopback, the cross-origin rule, read-only mode, readiness while the
//! camera reconnects, a thousand malformed requests, the connection limit, and idle or slow
//! clients. The endpoints themselves are in tests/http.rs.

mod common;

use std::time::Duration;

use common::http::{self, Stream, get, post_json, request};
use common::web::*;
use common::*;

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
