//! The daemon's control socket from a test: a line-per-request JSON client, and the status
//! document read through it.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

/// One connection to the control socket.
pub struct Client {
    pub reader: BufReader<UnixStream>,
    pub writer: UnixStream,
}

impl Client {
    pub fn connect(path: &Path) -> Self {
        let s = UnixStream::connect(path).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        Self {
            writer: s.try_clone().unwrap(),
            reader: BufReader::new(s),
        }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) -> Option<String> {
        let mut request = bytes.to_vec();
        request.push(b'\n');
        // The daemon may answer and close before it has read all of a request it refuses
        // (an over-long line), so the rest of the write can fail (EPIPE); its answer is
        // there to read either way, and a closed connection with no answer reads as None.
        let _ = self.writer.write_all(&request);
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line),
        }
    }

    pub fn ask(&mut self, v: Value) -> Value {
        serde_json::from_str(&self.send_raw(v.to_string().as_bytes()).unwrap()).unwrap()
    }

    /// `set-style` to `spec`, which must be accepted.
    pub fn set_style(&mut self, spec: &str) {
        let r = self.ask(serde_json::json!({"cmd": "set-style", "style": spec}));
        assert_eq!(r["ok"], true, "set-style {spec}: {r}");
    }

    /// The status, asked every 100 ms up to `tries` times until `done` says yes; the last
    /// one asked either way.
    pub fn status_when(&mut self, tries: usize, done: impl Fn(&Value) -> bool) -> Value {
        let mut last = Value::Null;
        for _ in 0..tries {
            last = self.ask(serde_json::json!({"cmd": "status"}));
            if done(&last) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        last
    }
}

/// The daemon's status document, on a fresh connection.
pub fn status(socket: &Path) -> Value {
    Client::connect(socket).ask(serde_json::json!({"cmd": "status"}))
}

/// Stylized frames processed so far.
pub fn processed(socket: &Path) -> u64 {
    status(socket)["frames"]["processed"].as_u64().unwrap()
}
