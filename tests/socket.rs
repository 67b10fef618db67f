//! The status socket and the metrics port, against a real daemon process on a test source
//! (sd_notify and the systemd unit: tests/systemd.rs).

mod common;

use std::io::{BufRead, Read};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::daemon::{start, start_with};
use common::*;
use serde_json::{Value, json};

fn snapshot_pixels(c: &mut Client) -> Vec<u8> {
    let answer = c.ask(json!({"cmd": "snapshot"}));
    let path = answer["path"]
        .as_str()
        .unwrap_or_else(|| panic!("snapshot failed: {answer}"));
    image::open(path).unwrap().to_rgb8().into_raw()
}

#[test]
fn status_is_sane_and_control_changes_the_output() {
    let d = start(&[]);
    let mode = std::fs::metadata(&d.socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660, "socket mode");
    let mut c = Client::connect(&d.socket);
    wait_for(
        || c.ask(json!({"cmd": "status"}))["frames"]["processed"].as_u64() >= Some(3),
        Duration::from_secs(20),
        "frames",
    );
    let a = c.ask(json!({"cmd": "status"}));
    wait_for(
        || {
            c.ask(json!({"cmd": "status"}))["frames"]["processed"].as_u64()
                > a["frames"]["processed"].as_u64()
        },
        Duration::from_secs(10),
        "more frames",
    );
    let b = c.ask(json!({"cmd": "status"}));
    assert_eq!(b["version"], 1);
    assert_eq!(b["state"], "running");
    assert_eq!(b["engine"]["model"], "multistyle26");
    assert_eq!(b["engine"]["input"], json!([160, 96]));
    assert_eq!(b["source"]["state"], "streaming");
    assert!(
        b["frames"]["processed"].as_u64() > a["frames"]["processed"].as_u64(),
        "frames grow: {a} -> {b}"
    );
    assert!(b["frames"]["captured"].as_u64() >= b["frames"]["processed"].as_u64());
    assert!(b["latency_ms"]["infer"]["p50"].as_f64().unwrap() > 0.0);
    let g2g = &b["latency_ms"]["glass_to_glass"];
    assert!(g2g["p95"].as_f64().unwrap() >= b["latency_ms"]["infer"]["p50"].as_f64().unwrap());
    assert!(b["fps"]["out"].as_f64().unwrap() > 0.0);
    assert_eq!(
        b["power"]["source"], "none",
        "no power sensor on this machine, and no made-up number"
    );
    assert!(b["power"]["total_w"].is_null());
    assert!(b["system"]["mem_mb"].as_f64().unwrap() > 10.0);
    assert_eq!(b["budget"]["latency_ms"], 30.0);

    // set-style takes effect on the next frame: snapshots before and after differ.
    let before = snapshot_pixels(&mut c);
    assert_eq!(
        c.ask(json!({"cmd": "set-style", "style": "19"}))["ok"],
        true
    );
    let n = c.ask(json!({"cmd": "status"}))["frames"]["processed"]
        .as_u64()
        .unwrap();
    wait_for(
        || c.ask(json!({"cmd": "status"}))["frames"]["processed"].as_u64() > Some(n + 1),
        Duration::from_secs(10),
        "new frames",
    );
    let after = snapshot_pixels(&mut c);
    assert!(
        mean_abs_diff_bytes(&before, &after) >= 11.0,
        "style change did not change the output"
    );
    assert_eq!(c.ask(json!({"cmd": "status"}))["style"]["spec"], "19");
    let e = c.ask(json!({"cmd": "set-style", "style": "26"}));
    assert!(
        e["error"].as_str().unwrap().contains("styles 0 to 25"),
        "{e}"
    );

    // pause stops processing; resume starts it again.
    assert_eq!(c.ask(json!({"cmd": "pause"}))["state"], "paused");
    // The frame in flight when pause arrived may still land, and the status counters are
    // published twice a second: wait until the count holds across a publication.
    let mut last = u64::MAX;
    wait_for(
        || {
            std::thread::sleep(Duration::from_millis(600));
            let now = c.ask(json!({"cmd": "status"}))["frames"]["processed"]
                .as_u64()
                .unwrap();
            std::mem::replace(&mut last, now) == now
        },
        Duration::from_secs(10),
        "the frame loop to settle after pause",
    );
    let p1 = c.ask(json!({"cmd": "status"}));
    std::thread::sleep(Duration::from_millis(1200));
    let p2 = c.ask(json!({"cmd": "status"}));
    assert_eq!(p2["state"], "paused");
    assert_eq!(p1["frames"]["processed"], p2["frames"]["processed"]);
    c.ask(json!({"cmd": "resume"}));
    wait_for(
        || {
            c.ask(json!({"cmd": "status"}))["frames"]["processed"].as_u64()
                > p2["frames"]["processed"].as_u64()
        },
        Duration::from_secs(10),
        "resume",
    );

    // The CLI client reads the same socket.
    let (code, out, err) = stylerd(&["status", "--socket", d.socket.to_str().unwrap()], &root());
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("engine    onnx multistyle26 fp32 160x96"),
        "{out}"
    );
}

#[test]
fn malformed_requests_never_crash_and_always_get_json() {
    let d = start(&[]);
    let mut c = Client::connect(&d.socket);
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let fixed: Vec<Vec<u8>> = vec![
        b"{".to_vec(),
        b"null".to_vec(),
        b"{\"cmd\":1}".to_vec(),
        b"{\"cmd\":\"set-style\",\"style\":{\"a\":1}}".to_vec(),
        "[".repeat(50_000).into_bytes(),
        format!("{{\"cmd\":\"{}\"}}", "x".repeat(60_000)).into_bytes(),
    ];
    for i in 0..1000usize {
        let line: Vec<u8> = match i % 10 {
            0..=5 => fixed[i % fixed.len()].clone(),
            _ => (0..(next() % 300) as usize)
                .map(|_| (next() % 256) as u8)
                .filter(|b| *b != b'\n')
                .collect(),
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let reply = c
            .send_raw(&line)
            .unwrap_or_else(|| panic!("connection closed on request {i}"));
        let v: Value = serde_json::from_str(&reply)
            .unwrap_or_else(|_| panic!("reply {i} is not JSON: {reply}"));
        assert!(
            v.get("error").is_some() || v.get("version").is_some(),
            "reply {i}: {v}"
        );
    }
    // Still serving the same connection.
    assert_eq!(c.ask(json!({"cmd": "status"}))["version"], 1);

    // An over-long line gets one error and the connection is closed.
    let mut long = Client::connect(&d.socket);
    let reply = long.send_raw(&vec![b'a'; 70_000]).unwrap();
    assert!(reply.contains("longer than 65536 bytes"), "{reply}");
    let mut rest = String::new();
    assert_eq!(
        long.reader.read_to_string(&mut rest).unwrap_or(0),
        0,
        "connection should be closed"
    );

    // More than 8 clients: the 9th is refused with a JSON error, the others keep working.
    drop(c);
    drop(long);
    // The server frees the two places once it has seen those connections close: retried
    // until 8 clients are all served.
    let mut clients: Vec<Client> = Vec::new();
    wait_for(
        || {
            clients.clear();
            clients.extend((0..8).map(|_| Client::connect(&d.socket)));
            clients.iter_mut().all(|cl| {
                cl.send_raw(br#"{"cmd":"status"}"#)
                    .is_some_and(|l| l.contains("\"version\":1"))
            })
        },
        // Generous: on a loaded 2-core machine the server may take a while to see closes.
        Duration::from_secs(20),
        "8 served clients",
    );
    let mut ninth = Client::connect(&d.socket);
    let mut line = String::new();
    ninth.reader.read_line(&mut line).unwrap();
    assert!(line.contains("too many clients (limit 8)"), "{line}");
    assert_eq!(clients[0].ask(json!({"cmd": "status"}))["version"], 1);
}

#[test]
fn a_second_daemon_on_the_same_socket_refuses_and_a_stale_socket_is_replaced() {
    let d = start(&[]);
    let (code, _, err) = stylerd(
        &[
            "run",
            "--http",
            "off",
            "--config",
            "/dev/null",
            "--output",
            "null://",
            "--socket",
            d.socket.to_str().unwrap(),
        ],
        &root(),
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("another stylerd is already running on socket"),
        "{err}"
    );
    // The first daemon still answers.
    assert_eq!(
        Client::connect(&d.socket).ask(json!({"cmd": "status"}))["version"],
        1
    );

    // A socket file nobody listens on (a crashed daemon's) is replaced.
    let dir = tempfile::tempdir().unwrap();
    let stale = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    assert!(stale.exists());
    let (code, _, err) = stylerd(
        &[
            "run",
            "--http",
            "off",
            "--config",
            "/dev/null",
            "--source",
            "test://?num-buffers=3",
            "--output",
            "null://",
            "--socket",
            stale.to_str().unwrap(),
        ],
        &root(),
    );
    assert_eq!(code, 0, "{err}");
    // A regular file in the way is not deleted.
    let file = dir.path().join("file.sock");
    std::fs::write(&file, b"keep me").unwrap();
    let (code, _, err) = stylerd(
        &[
            "run",
            "--http",
            "off",
            "--config",
            "/dev/null",
            "--socket",
            file.to_str().unwrap(),
        ],
        &root(),
    );
    assert_eq!(code, 1);
    assert!(err.contains("is not a socket"), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
}

#[test]
fn any_picture_becomes_the_style_without_stalling_the_stream() {
    let d = start(&[]);
    let mut c = Client::connect(&d.socket);
    wait_for(
        || c.ask(json!({"cmd": "status"}))["frames"]["processed"].as_u64() >= Some(3),
        Duration::from_secs(20),
        "frames",
    );
    let dir = tempfile::tempdir().unwrap();
    let (stripes, dots) = (dir.path().join("stripes.png"), dir.path().join("dots.png"));
    image::RgbImage::from_fn(300, 200, |x, _| {
        if (x / 12) % 2 == 0 {
            image::Rgb([230, 40, 30])
        } else {
            image::Rgb([20, 30, 200])
        }
    })
    .save(&stripes)
    .unwrap();
    image::RgbImage::from_fn(200, 200, |x, y| {
        if (x % 20 < 8) && (y % 20 < 8) {
            image::Rgb([250, 250, 0])
        } else {
            image::Rgb([0, 90, 40])
        }
    })
    .save(&dots)
    .unwrap();
    let before = snapshot_pixels(&mut c);
    let processed_before = c.ask(json!({"cmd": "status"}))["frames"]["processed"]
        .as_u64()
        .unwrap();

    // Through the CLI, as a user would.
    let (code, out, err) = stylerd(
        &[
            "ctl",
            "--socket",
            d.socket.to_str().unwrap(),
            "set-style",
            "--image",
            stripes.to_str().unwrap(),
        ],
        &root(),
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"model\":\"arbitrary_transform\""), "{out}");
    let s = c.ask(json!({"cmd": "status"}));
    let n = s["frames"]["processed"].as_u64().unwrap();
    wait_for(
        || {
            let s = c.ask(json!({"cmd": "status"}));
            s["engine"]["model"] == "arbitrary_transform"
                && s["frames"]["processed"].as_u64() > Some(n + 1)
        },
        Duration::from_secs(20),
        "frames with the new engine",
    );
    let after = snapshot_pixels(&mut c);
    assert!(
        mean_abs_diff_bytes(&before, &after) >= 11.0,
        "the picture's style did not change the output"
    );
    // The engine was built off the frame thread: frames kept flowing and none waited for it.
    let s = c.ask(json!({"cmd": "status"}));
    assert!(s["frames"]["processed"].as_u64().unwrap() > processed_before + 2);
    let worst = s["latency_ms"]["glass_to_glass"]["max"].as_f64().unwrap();
    assert!(
        worst < 1000.0,
        "a frame waited {worst:.0} ms: the swap stalled the stream"
    );
    assert!(
        c.ask(json!({"cmd": "status"}))["style"]["spec"]
            .as_str()
            .unwrap()
            .starts_with("image:")
    );

    // Interpolating two pictures, and a picture that is not one.
    let mixed = c.ask(json!({"cmd": "set-style", "image": stripes, "and": dots, "weight": 0.5}));
    assert_eq!(mixed["ok"], true, "{mixed}");
    let bad = c.ask(json!({"cmd": "set-style", "image": "/nonexistent.jpg"}));
    assert!(
        bad["error"]
            .as_str()
            .unwrap()
            .contains("cannot read style image"),
        "{bad}"
    );

    // A named style brings the configured model back.
    assert_eq!(c.ask(json!({"cmd": "set-style", "style": "3"}))["ok"], true);
    wait_for(
        || c.ask(json!({"cmd": "status"}))["engine"]["model"] == "multistyle26",
        Duration::from_secs(10),
        "back to multistyle26",
    );
}

#[test]
fn prometheus_metrics_on_loopback_when_enabled() {
    let port = free_port();
    let d = start_with(&[], &format!("metrics-port = {port}"));
    let mut c = Client::connect(&d.socket);
    wait_for(
        || c.ask(json!({"cmd": "status"}))["frames"]["processed"].as_u64() >= Some(3),
        Duration::from_secs(20),
        "frames",
    );
    wait_port(port);
    let get = |path: &str| {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        std::io::Write::write_all(&mut s, format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
            .unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).unwrap();
        body
    };
    let text = get("/metrics");
    assert!(text.starts_with("HTTP/1.0 200 OK"), "{text}");
    let processed: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("stylerd_frames_total{kind=\"processed\"} "))
        .expect("processed counter")
        .parse()
        .unwrap();
    assert!(processed >= 3.0, "{text}");
    assert!(
        text.contains("stylerd_latency_ms{stage=\"glass_to_glass\",quantile=\"0.95\"}"),
        "{text}"
    );
    assert!(get("/other").starts_with("HTTP/1.0 404"));
}
