//! The dashboard in a real browser: Debian's headless Chromium, driven over the DevTools
//! protocol (a WebSocket, JSON messages) against a real daemon on a test source. The page
//! loads with no console errors, the live picture changes between two screenshots, a click
//! on a style thumbnail changes the daemon's style, the plots receive events, and nothing
//! overflows a phone-sized screen. A full-page screenshot is left in
//! `target/dashboard.png` (the README's picture is one of these).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};
use stylerd_testkit::{Kind, skip};

const CHROMIUM: &str = "/usr/bin/chromium";

/// A DevTools session on one page.
struct Cdp {
    ws: tungstenite::WebSocket<TcpStream>,
    next_id: u64,
    /// Console errors, uncaught exceptions and failed loads seen so far.
    errors: Vec<String>,
}

impl Cdp {
    fn connect(ws_url: &str) -> Self {
        let rest = ws_url.strip_prefix("ws://").unwrap();
        let host = rest.split('/').next().unwrap();
        let stream = TcpStream::connect(host).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let (ws, _) = tungstenite::client(ws_url, stream).unwrap();
        Self {
            ws,
            next_id: 0,
            errors: Vec::new(),
        }
    }

    fn note(&mut self, event: &Value) {
        let p = &event["params"];
        match event["method"].as_str() {
            Some("Runtime.exceptionThrown") => {
                self.errors
                    .push(format!("exception: {}", p["exceptionDetails"]));
            }
            Some("Runtime.consoleAPICalled") if p["type"] == "error" => {
                self.errors.push(format!("console.error: {}", p["args"]));
            }
            Some("Log.entryAdded") if p["entry"]["level"] == "error" => {
                self.errors
                    .push(format!("log: {} {}", p["entry"]["text"], p["entry"]["url"]));
            }
            _ => {}
        }
    }

    /// Sends a command and returns its result, noting the events that arrive meanwhile.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let msg = json!({"id": id, "method": method, "params": params});
        self.ws
            .send(tungstenite::Message::text(msg.to_string()))
            .unwrap();
        loop {
            let m = self.ws.read().unwrap();
            let Ok(text) = m.to_text() else { continue };
            let v: Value = serde_json::from_str(text).unwrap();
            if v["id"] == id {
                assert!(v.get("error").is_none(), "{method}: {}", v["error"]);
                return v["result"].clone();
            }
            self.note(&v);
        }
    }

    /// Evaluates a JavaScript expression (awaiting promises) and returns its value.
    fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
        );
        assert!(
            r.get("exceptionDetails").is_none(),
            "{expr}: {}",
            r["exceptionDetails"]
        );
        r["result"]["value"].clone()
    }

    fn wait_js(&mut self, expr: &str, limit: Duration) {
        eprintln!("waiting for {expr}");
        let started = Instant::now();
        while self.eval(expr) != json!(true) {
            assert!(started.elapsed() < limit, "timed out waiting for {expr}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A PNG screenshot, of the whole page or of a CSS-pixel rectangle.
    fn screenshot(&mut self, clip: Option<[f64; 4]>) -> Vec<u8> {
        let mut params = json!({"format": "png", "captureBeyondViewport": true});
        if let Some([x, y, w, h]) = clip {
            params["clip"] = json!({"x": x, "y": y, "width": w, "height": h, "scale": 1});
        }
        let r = self.call("Page.captureScreenshot", params);
        base64_decode(r["data"].as_str().unwrap())
    }

    /// The page rectangle of the first element matching `selector`, scrolled into view.
    fn rect(&mut self, selector: &str) -> [f64; 4] {
        let sel = Value::from(selector);
        let v = self.eval(&format!(
            "(() => {{ const e = document.querySelector({sel}); e.scrollIntoView({{block: 'center'}}); \
             const r = e.getBoundingClientRect(); return [r.x + scrollX, r.y + scrollY, r.width, r.height]; }})()"
        ));
        let a: Vec<f64> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        [a[0], a[1], a[2], a[3]]
    }

    /// A real mouse click (press and release) at the centre of an element.
    fn click(&mut self, selector: &str) {
        let sel = Value::from(selector);
        let v = self.eval(&format!(
            "(() => {{ const e = document.querySelector({sel}); e.scrollIntoView({{block: 'center'}}); \
             const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})()"
        ));
        let (x, y) = (v[0].as_f64().unwrap(), v[1].as_f64().unwrap());
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}),
            );
        }
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let clean: Vec<u8> = s.bytes().filter(|&c| c != b'=' && c != b'\n').collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let v: Vec<u32> = chunk.iter().map(|&c| val(c) as u32).collect();
        let n = v.iter().fold(0u32, |a, &x| (a << 6) | x) << (6 * (4 - v.len()));
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..v.len() - 1]);
    }
    out
}

/// Headless Chromium with remote debugging on a free loopback port; killed on drop.
struct Browser {
    _proc: Proc,
    _profile: tempfile::TempDir,
    port: u16,
}

fn launch() -> Browser {
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--disable-background-networking",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            "--window-size=1280,1000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("about:blank")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let proc = Proc(child);
    // "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/..."
    let mut port = None;
    let mut lines = BufReader::new(stderr).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.split("ws://127.0.0.1:").nth(1) {
            port = rest.split('/').next().and_then(|p| p.parse().ok());
            break;
        }
    }
    // Keep draining its log (dbus complaints and the like), so it never writes to a closed pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Browser {
        _proc: proc,
        _profile: profile,
        port: port.expect("chromium printed its DevTools address"),
    }
}

/// The first page target's WebSocket URL, from the DevTools HTTP endpoint.
fn page_ws(port: u16) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET /json/list HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    // Chromium keeps the connection open: read the headers, then Content-Length bytes.
    let mut reader = BufReader::new(s);
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line.trim().is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let targets: Value = serde_json::from_slice(&body).unwrap();
    targets
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["type"] == "page")
        .unwrap()["webSocketDebuggerUrl"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn the_dashboard_works_in_a_real_browser() {
    if !std::path::Path::new(CHROMIUM).exists() {
        skip(
            Kind::Setup,
            "no /usr/bin/chromium: `make test` installs Debian's chromium package",
        );
        return;
    }
    let web = web::start_with(
        "test://?pattern=ball",
        &["--size", "320x180", "--style", "2"],
        "allow-control = true",
        "",
    );
    let socket = web.socket.clone();
    let url = status(&socket)["http"].as_str().unwrap().to_string();
    let config = web.dir.path().join("c.toml");
    web::wait_running(&web);

    let browser = launch();
    let mut cdp = Cdp::connect(&page_ws(browser.port));
    for domain in ["Page.enable", "Runtime.enable", "Log.enable"] {
        cdp.call(domain, json!({}));
    }
    cdp.call("Page.navigate", json!({"url": url}));
    cdp.wait_js(
        "document.readyState === 'complete' && document.querySelectorAll('.thumb').length === 26",
        Duration::from_secs(20),
    );
    // Every thumbnail arrives (rendered by the stylize engine from a recent frame).
    cdp.wait_js(
        "[...document.querySelectorAll('.thumb img')].every(i => i.complete && i.naturalWidth === 192)",
        Duration::from_secs(90),
    );
    // The plots get status events (one a second).
    cdp.wait_js("(window.stylerdEvents || 0) >= 3", Duration::from_secs(20));
    let painted = cdp.eval(
        "(() => { const c = document.getElementById('plotFps'); const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; \
         let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; })()",
    );
    assert!(painted.as_u64().unwrap() > 100, "the fps plot is blank");

    // The live picture changes between two screenshots (the ball moves).
    cdp.wait_js(
        "document.getElementById('live').naturalWidth === 320",
        Duration::from_secs(20),
    );
    let live = cdp.rect("#live");
    let a = image::load_from_memory(&cdp.screenshot(Some(live)))
        .unwrap()
        .to_rgb8();
    std::thread::sleep(Duration::from_millis(1500));
    let b = image::load_from_memory(&cdp.screenshot(Some(live)))
        .unwrap()
        .to_rgb8();
    assert_eq!(a.dimensions(), b.dimensions());
    let diff = mean_abs_diff_bytes(a.as_raw(), b.as_raw());
    assert!(diff > 0.5, "the live picture did not change: {diff}");

    // A click on a thumbnail switches the daemon's style.
    cdp.click(".thumb[data-style='9']");
    wait_for(
        || status(&socket)["style"]["spec"] == "9",
        Duration::from_secs(10),
        "style 9 after the click",
    );
    cdp.wait_js(
        "document.querySelector(\".thumb[data-style='9']\").classList.contains('current')",
        Duration::from_secs(10),
    );

    // The strength slider and the colour box steer the daemon; "Save to config" writes the
    // running style into the config file.
    cdp.eval(
        "(() => { const r = document.getElementById('strength'); r.value = 40; \
         r.dispatchEvent(new Event('change')); })()",
    );
    cdp.click("#keepColour");
    wait_for(
        || {
            let s = status(&socket);
            s["style"]["strength"] == 0.4 && s["style"]["preserve_color"] == true
        },
        Duration::from_secs(10),
        "strength 0.4 and kept colours after the controls",
    );
    cdp.click("#save");
    wait_for(
        || {
            std::fs::read_to_string(&config)
                .unwrap()
                .contains("strength = 0.4")
        },
        Duration::from_secs(10),
        "the style saved to the config file",
    );
    let saved: toml::Value = toml::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    assert_eq!(saved["engine"]["style"].as_str(), Some("9"), "{saved}");
    assert_eq!(
        saved["engine"]["preserve-color"].as_bool(),
        Some(true),
        "{saved}"
    );
    cdp.wait_js(
        "document.getElementById('now').textContent.includes('strength 0.40, colours kept') \
         && !document.getElementById('now').textContent.includes('not saved')",
        Duration::from_secs(10),
    );
    // Full strength and the style's colours again (saved, through the socket) for the
    // screenshot; the page follows the daemon.
    let r = Client::connect(&socket).ask(json!({
        "cmd": "set-style", "strength": 1.0, "preserve-color": false, "save": true
    }));
    assert_eq!(r["ok"], true, "{r}");
    cdp.wait_js(
        "document.getElementById('now').textContent.includes('9, strength 1.00') \
         && !document.getElementById('now').textContent.includes('colours kept') \
         && !document.getElementById('now').textContent.includes('not saved') \
         && !document.getElementById('keepColour').checked \
         && document.getElementById('strength').value === '100'",
        Duration::from_secs(10),
    );

    // The whole page, for the README.
    let shot = cdp.screenshot(None);
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("../dashboard.png");
    std::fs::write(&out, &shot).unwrap();

    // A phone-sized screen: nothing wider than the viewport.
    cdp.call(
        "Emulation.setDeviceMetricsOverride",
        json!({"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": true}),
    );
    cdp.wait_js(
        "document.documentElement.scrollWidth <= 390",
        Duration::from_secs(5),
    );
    let phone = cdp.screenshot(None);
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("../dashboard-phone.png");
    std::fs::write(&out, &phone).unwrap();

    // No console errors, exceptions or failed loads the whole time.
    cdp.eval("1");
    assert!(cdp.errors.is_empty(), "browser errors: {:#?}", cdp.errors);
}
