//! `[http]`: the web dashboard and HTTP API (issue 14).

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use super::{ConfigError, bad};

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct HttpConfig {
    /// `HOST:PORT` to serve the dashboard and API on, or `"off"`. Port 0 takes a free port
    /// (the log and the status say which).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// A file holding the API token (first line). Required when `listen` is not a loopback
    /// address; when set, every request needs `Authorization: Bearer TOKEN` (or the session
    /// cookie the dashboard's sign-in sets), also on loopback.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// Live preview (MJPEG) frames per second at most; the frame loop copies a frame only
    /// this often, and only while someone watches.
    #[serde(default = "default_preview_fps")]
    pub preview_fps: f64,
    /// Engines serving `POST /api/v1/stylize` (each opened at first use).
    #[serde(default = "default_stylize_workers")]
    pub stylize_workers: usize,
    /// ONNX Runtime threads of each stylize engine; 0 = `engine.threads`.
    #[serde(default)]
    pub stylize_threads: usize,
    /// Requests allowed to wait for a stylize engine; more are answered 503 with Retry-After.
    #[serde(default = "default_stylize_queue")]
    pub stylize_queue: usize,
    /// Scheduling niceness (0-19) of the stylize engines' threads: how the CPU is shared with
    /// the live stream. 0 = equal share; the default 10 lets the live frame loop win the CPU
    /// when both want it (Linux gives a nice-0 thread about 10x the time of a nice-10 one).
    #[serde(default = "default_stylize_nice")]
    pub stylize_nice: i32,
    /// Largest request body in bytes (uploads for stylize and style pictures).
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// Largest width or height of an uploaded picture, in pixels.
    #[serde(default = "default_max_image_side")]
    pub max_image_side: u32,
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_preview_fps() -> f64 {
    10.0
}
fn default_stylize_workers() -> usize {
    1
}
fn default_stylize_queue() -> usize {
    16
}
fn default_stylize_nice() -> i32 {
    10
}
fn default_max_body_bytes() -> usize {
    16 << 20
}
fn default_max_image_side() -> u32 {
    4096
}

impl Default for HttpConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults parse")
    }
}

impl HttpConfig {
    /// The address to listen on; `None` when `listen = "off"`.
    pub fn address(&self) -> Result<Option<SocketAddr>, ConfigError> {
        if self.listen == "off" {
            return Ok(None);
        }
        self.listen.parse().map(Some).map_err(|_| {
            bad(
                "http.listen",
                format!(
                    "\"{}\" is not HOST:PORT with a numeric IP (e.g. 127.0.0.1:8080, 0.0.0.0:8080) or \"off\"",
                    self.listen
                ),
            )
        })
    }

    /// The rules across `[http]` values; reading the token file is left to the server.
    pub fn check(&self) -> Result<(), ConfigError> {
        if let Some(addr) = self.address()?
            && !addr.ip().is_loopback()
            && self.token_file.is_none()
        {
            return Err(bad(
                "http.listen",
                format!(
                    "{addr} is not a loopback address; set http.token-file so that only holders of the token can use the API"
                ),
            ));
        }
        if !(0.1..=30.0).contains(&self.preview_fps) {
            return Err(bad("http.preview-fps", "must be between 0.1 and 30"));
        }
        if !(1..=16).contains(&self.stylize_workers) {
            return Err(bad("http.stylize-workers", "must be 1 to 16"));
        }
        if self.stylize_threads > 64 {
            return Err(bad("http.stylize-threads", "must be 0 to 64"));
        }
        if !(1..=1024).contains(&self.stylize_queue) {
            return Err(bad("http.stylize-queue", "must be 1 to 1024"));
        }
        if !(0..=19).contains(&self.stylize_nice) {
            return Err(bad("http.stylize-nice", "must be 0 to 19"));
        }
        if !(1024..=(256 << 20)).contains(&self.max_body_bytes) {
            return Err(bad("http.max-body-bytes", "must be 1 KiB to 256 MiB"));
        }
        if !(16..=16384).contains(&self.max_image_side) {
            return Err(bad("http.max-image-side", "must be 16 to 16384"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<HttpConfig, String> {
        let c: HttpConfig = toml::from_str(text).map_err(|e| e.message().to_string())?;
        c.check().map_err(|e| e.to_string())?;
        Ok(c)
    }

    #[test]
    fn loopback_needs_no_token_and_other_addresses_do() {
        assert_eq!(
            check("").unwrap().address().unwrap(),
            Some("127.0.0.1:8080".parse().unwrap())
        );
        assert_eq!(check("listen = \"off\"").unwrap().address().unwrap(), None);
        assert!(check("listen = \"[::1]:0\"").is_ok());
        let e = check("listen = \"0.0.0.0:8080\"").unwrap_err();
        assert!(e.contains("http.token-file"), "{e}");
        assert!(check("listen = \"0.0.0.0:8080\"\ntoken-file = \"/etc/stylerd/token\"").is_ok());
        let e = check("listen = \"localhost:80\"").unwrap_err();
        assert!(e.contains("not HOST:PORT"), "{e}");
    }

    #[test]
    fn impossible_values_are_refused() {
        for (text, want) in [
            ("preview-fps = 0.0", "http.preview-fps"),
            ("stylize-workers = 0", "http.stylize-workers"),
            ("stylize-queue = 0", "http.stylize-queue"),
            ("stylize-nice = 20", "http.stylize-nice"),
            ("max-body-bytes = 10", "http.max-body-bytes"),
            ("max-image-side = 8", "http.max-image-side"),
        ] {
            let e = check(text).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
    }
}
