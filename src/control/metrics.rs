//! Optional Prometheus endpoint: the status document as text on 127.0.0.1:PORT/metrics.
//!
//! Off unless `control.metrics-port` is set; bound to loopback only (a scraper on the box,
//! or an SSH tunnel). A minimal HTTP/1.0 responder: one GET per connection, anything else
//! gets 404/405. The numbers are the same `watch` snapshot the socket serves.

use std::fmt::Write as _;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::Status;

/// Renders the status in the Prometheus text exposition format.
pub fn render(s: &Status) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, f64)]| {
        let _ = writeln!(
            out,
            "# HELP stylerd_{name} {help}\n# TYPE stylerd_{name} {kind}"
        );
        for (labels, v) in samples {
            if v.is_finite() {
                let _ = writeln!(out, "stylerd_{name}{labels} {v}");
            }
        }
    };
    let f = &s.frames;
    metric(
        "uptime_seconds",
        "gauge",
        "Seconds since the daemon started.",
        &[("", s.uptime_s)],
    );
    metric(
        "frames_total",
        "counter",
        "Frames by fate.",
        &[
            ("{kind=\"captured\"}", f.captured as f64),
            ("{kind=\"processed\"}", f.processed as f64),
            ("{kind=\"dropped\"}", f.dropped as f64),
            ("{kind=\"encoded\"}", f.encoded as f64),
            ("{kind=\"engine_error\"}", f.engine_errors as f64),
        ],
    );
    metric(
        "fps",
        "gauge",
        "Frames per second over the window.",
        &[("{dir=\"in\"}", s.fps.input), ("{dir=\"out\"}", s.fps.out)],
    );
    let mut latency = Vec::new();
    let named = [
        ("infer", s.latency_ms.infer),
        ("glass_to_glass", s.latency_ms.glass_to_glass),
    ];
    let labels: Vec<(String, f64)> = named
        .iter()
        .filter_map(|(stage, p)| p.map(|p| (stage, p)))
        .flat_map(|(stage, p)| {
            [
                ("0.5", p.p50),
                ("0.95", p.p95),
                ("0.99", p.p99),
                ("1", p.max),
            ]
            .map(|(q, v)| (format!("{{stage=\"{stage}\",quantile=\"{q}\"}}"), v))
        })
        .collect();
    latency.extend(labels.iter().map(|(l, v)| (l.as_str(), *v)));
    metric(
        "latency_ms",
        "gauge",
        "Latency percentiles over the sliding window.",
        &latency,
    );
    metric(
        "source_reconnects_total",
        "counter",
        "Camera reconnects.",
        &[("", s.source.reconnects as f64)],
    );
    if let Some(w) = s.power.total_w {
        metric(
            "power_watts",
            "gauge",
            "Board power (sum of rails, or the input rail).",
            &[("", w)],
        );
    }
    if let Some(b) = &s.budget {
        metric(
            "budget_within",
            "gauge",
            "1 when within the latency and power budget.",
            &[("", f64::from(u8::from(b.within)))],
        );
    }
    if let Some(g) = &s.governor {
        metric(
            "governor_level",
            "gauge",
            "Governor rung (0 = full size).",
            &[("", g.level as f64)],
        );
    }
    out
}

/// Serves until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    status: watch::Receiver<Status>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = shutdown.changed() => if *shutdown.borrow() { break },
            accepted = listener.accept() => {
                let Ok((mut stream, _)) = accepted else { continue };
                let status = status.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 2048];
                    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await;
                    let Ok(Ok(n)) = read else { return };
                    let request = String::from_utf8_lossy(&buf[..n]);
                    let line = request.lines().next().unwrap_or_default();
                    let (code, body) = match line.split_whitespace().collect::<Vec<_>>()[..] {
                        ["GET", "/metrics", ..] => ("200 OK", render(&status.borrow().clone())),
                        ["GET", ..] => ("404 Not Found", "only /metrics is served\n".to_string()),
                        _ => ("405 Method Not Allowed", "GET /metrics\n".to_string()),
                    };
                    let head = format!(
                        "HTTP/1.0 {code}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(head.as_bytes()).await;
                    let _ = stream.write_all(body.as_bytes()).await;
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_skips_unknown_values() {
        let mut s = Status::default();
        s.frames.processed = 42;
        s.uptime_s = 3.5;
        let text = render(&s);
        assert!(
            text.contains("stylerd_frames_total{kind=\"processed\"} 42\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE stylerd_frames_total counter"));
        assert!(text.contains("stylerd_uptime_seconds 3.5\n"));
        // No power sensor: no made-up power metric.
        assert!(!text.contains("stylerd_power_watts"));
    }
}
