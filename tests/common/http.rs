//! A small blocking HTTP/1.1 client over std's TcpStream, for the dashboard and API tests:
//! it sends exactly the bytes asked (so tests can send malformed requests too) and reads the
//! status, headers and body.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

#[derive(Debug)]
pub struct Answer {
    pub code: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{} answered non-JSON ({e}): {}",
                self.code,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The `{"error": ...}` sentence.
    pub fn error(&self) -> String {
        self.json()["error"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// `host:port` of a URL like `http://127.0.0.1:8080/`.
pub fn authority(url: &str) -> String {
    url.trim_start_matches("http://")
        .split(['/', ' '])
        .next()
        .unwrap()
        .to_string()
}

/// Sends one request (`Connection: close`) and reads the whole answer.
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Answer {
    let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        raw.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        raw.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    raw.push_str("\r\n");
    let mut bytes = raw.into_bytes();
    bytes.extend_from_slice(body);
    send_raw(addr, &bytes, Duration::from_secs(60)).expect("an HTTP answer")
}

pub fn get(addr: &str, path: &str) -> Answer {
    request(addr, "GET", path, &[], b"")
}

pub fn post_json(addr: &str, path: &str, json: &str) -> Answer {
    request(
        addr,
        "POST",
        path,
        &[("Content-Type", "application/json")],
        json.as_bytes(),
    )
}

/// Sends raw bytes and parses the answer; `None` when the server closed without one or
/// gave none within `timeout` (e.g. it still waits for a body the request announced).
pub fn send_raw(addr: &str, bytes: &[u8], timeout: Duration) -> Option<Answer> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(timeout)).unwrap();
    // The server may answer (413, 400) and close before reading everything. No half-close:
    // hyper takes the end of the request stream as the client going away.
    let _ = s.write_all(bytes);
    let mut reader = BufReader::new(s);
    let (code, headers) = read_head(&mut reader)?;
    let mut body = Vec::new();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).ok()?;
            let n = usize::from_str_radix(line.trim(), 16).ok()?;
            if n == 0 {
                break;
            }
            let mut chunk = vec![0; n + 2];
            reader.read_exact(&mut chunk).ok()?;
            body.extend_from_slice(&chunk[..n]);
        }
    } else {
        let _ = reader.read_to_end(&mut body);
    }
    Some(Answer {
        code,
        headers,
        body,
    })
}

fn read_head(reader: &mut impl BufRead) -> Option<(u16, Vec<(String, String)>)> {
    let mut status = String::new();
    reader.read_line(&mut status).ok()?;
    let code = status.split_whitespace().nth(1)?.parse().ok()?;
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (k, v) = line.split_once(':')?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    Some((code, headers))
}

/// An open streaming answer (MJPEG, server-sent events), read bit by bit.
pub struct Stream {
    pub code: u16,
    pub headers: Vec<(String, String)>,
    reader: BufReader<TcpStream>,
}

impl Stream {
    pub fn open(addr: &str, path: &str, headers: &[(&str, &str)]) -> Self {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut raw = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n");
        for (k, v) in headers {
            raw.push_str(&format!("{k}: {v}\r\n"));
        }
        raw.push_str("\r\n");
        s.write_all(raw.as_bytes()).unwrap();
        let mut reader = BufReader::new(s);
        let (code, headers) = read_head(&mut reader).expect("a streaming answer");
        Self {
            code,
            headers,
            reader,
        }
    }

    /// The next chunk of a chunked body.
    fn chunk(&mut self) -> Vec<u8> {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        let n = usize::from_str_radix(line.trim(), 16).unwrap();
        let mut chunk = vec![0; n + 2];
        self.reader.read_exact(&mut chunk).unwrap();
        chunk.truncate(n);
        chunk
    }

    /// Reads until `buf` holds `marker`, returning all read so far.
    pub fn read_until(&mut self, buf: &mut Vec<u8>, marker: &[u8]) {
        while !buf.windows(marker.len()).any(|w| w == marker) {
            let c = self.chunk();
            assert!(!c.is_empty(), "the stream ended");
            buf.extend_from_slice(&c);
        }
    }

    /// The next MJPEG part's JPEG bytes (`--frame`, headers with Content-Length, data).
    pub fn next_jpeg(&mut self, buf: &mut Vec<u8>) -> Vec<u8> {
        self.read_until(buf, b"\r\n\r\n");
        let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        assert!(head.contains("--frame"), "{head}");
        assert!(head.contains("Content-Type: image/jpeg"), "{head}");
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        while buf.len() < head_end + len + 2 {
            let c = self.chunk();
            buf.extend_from_slice(&c);
        }
        let jpeg = buf[head_end..head_end + len].to_vec();
        buf.drain(..head_end + len + 2);
        jpeg
    }

    /// The next server-sent event's `(event, data)`.
    pub fn next_event(&mut self, buf: &mut Vec<u8>) -> (String, String) {
        loop {
            self.read_until(buf, b"\n\n");
            let end = buf.windows(2).position(|w| w == b"\n\n").unwrap() + 2;
            let text = String::from_utf8_lossy(&buf[..end]).to_string();
            buf.drain(..end);
            let mut event = String::new();
            let mut data = String::new();
            for line in text.lines() {
                if let Some(e) = line.strip_prefix("event:") {
                    event = e.trim().to_string();
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push_str(d.trim_start());
                }
            }
            // Keep-alive comments carry neither.
            if !event.is_empty() || !data.is_empty() {
                return (event, data);
            }
        }
    }
}
