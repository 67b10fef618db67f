//! `stylerd status` and `stylerd ctl`: the socket's command-line client.
//!
//! Sends one request line and prints the answer, as a compact table for people or as raw
//! JSON (`--json`). Blocking std I/O: this runs in the CLI, never inside the daemon.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;

/// Sends one request and returns the answer line as JSON.
pub fn request(socket: &Path, line: &Value) -> anyhow::Result<Value> {
    let stream = UnixStream::connect(socket).with_context(|| {
        format!(
            "cannot connect to {} (is stylerd running? see control.socket)",
            socket.display()
        )
    })?;
    stream.set_read_timeout(Some(Duration::from_secs(15)))?;
    let mut writer = stream.try_clone()?;
    writer.write_all(format!("{line}\n").as_bytes())?;
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer)?;
    if answer.is_empty() {
        bail!("stylerd closed the connection without answering");
    }
    Ok(serde_json::from_str(&answer)?)
}

fn ms(v: &Value) -> String {
    v.as_f64().map_or("-".into(), |x| format!("{x:.1}"))
}

/// A few lines a person can read at a glance.
pub fn render(s: &Value) -> String {
    let lat = |k: &str| {
        let p = &s["latency_ms"][k];
        format!(
            "p50 {} p95 {} p99 {} max {} ms",
            ms(&p["p50"]),
            ms(&p["p95"]),
            ms(&p["p99"]),
            ms(&p["max"])
        )
    };
    let f = &s["frames"];
    let rails = s["power"]["rails"]
        .as_object()
        .map(|r| {
            r.iter()
                .map(|(k, v)| format!("{k} {}", ms(v)))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let within = match s["budget"]["within"].as_bool() {
        Some(true) => "within budget",
        Some(false) => "OVER budget",
        None => "no verdict yet",
    };
    [
        format!(
            "state     {}  uptime {:.0} s  source {} ({}, {} reconnects)",
            s["state"].as_str().unwrap_or("?"),
            s["uptime_s"].as_f64().unwrap_or(0.0),
            s["source"]["uri"].as_str().unwrap_or("?"),
            s["source"]["state"].as_str().unwrap_or("?"),
            s["source"]["reconnects"]
        ),
        format!(
            "engine    {} {} {} {}  style {}",
            s["engine"]["backend"].as_str().unwrap_or("?"),
            s["engine"]["model"].as_str().unwrap_or("?"),
            s["engine"]["precision"].as_str().unwrap_or("?"),
            s["engine"]["input"]
                .as_array()
                .map(|a| a
                    .iter()
                    .map(|v| v.to_string())
                    .collect::<Vec<_>>()
                    .join("x"))
                .unwrap_or_default(),
            s["style"]["spec"].as_str().unwrap_or("?")
        ),
        format!(
            "frames    captured {} processed {} dropped {} encoded {}   fps in {} out {}",
            f["captured"],
            f["processed"],
            f["dropped"],
            f["encoded"],
            ms(&s["fps"]["in"]),
            ms(&s["fps"]["out"])
        ),
        format!("infer     {}", lat("infer")),
        format!("g2g       {}", lat("glass_to_glass")),
        format!(
            "power     {} {} W  [{rails}]   cpu {}%  mem {} MB  gpu {}%",
            s["power"]["source"].as_str().unwrap_or("none"),
            ms(&s["power"]["total_w"]),
            ms(&s["system"]["cpu_pct"]),
            ms(&s["system"]["mem_mb"]),
            ms(&s["system"]["gpu_load_pct"])
        ),
        format!(
            "budget    {within}: {} ms p95 / {} W  ({})",
            ms(&s["budget"]["latency_ms"]),
            ms(&s["budget"]["power_w"]),
            s["budget"]["reason"].as_str().unwrap_or("")
        ),
    ]
    .join("\n")
}
