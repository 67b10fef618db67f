//! `stylerd status` and `stylerd ctl`: the socket's command-line client.
//!
//! Sends one request line and prints the answer, as a compact table for people or as raw
//! JSON (`--json`). Blocking std I/O: this runs in the CLI, never inside the daemon.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};

use super::{Reply, Request, Status};

/// Sends one request and returns the daemon's answer.
pub fn request(socket: &Path, request: &Request) -> anyhow::Result<Reply> {
    let stream = UnixStream::connect(socket).with_context(|| {
        format!(
            "cannot connect to {} (is stylerd running? see control.socket)",
            socket.display()
        )
    })?;
    stream.set_read_timeout(Some(Duration::from_secs(15)))?;
    let mut writer = stream.try_clone()?;
    let mut line = serde_json::to_string(request)?;
    line.push('\n');
    writer.write_all(line.as_bytes())?;
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer)?;
    if answer.is_empty() {
        bail!("stylerd closed the connection without answering");
    }
    serde_json::from_str(&answer)
        .with_context(|| format!("stylerd answered something unexpected: {}", answer.trim()))
}

fn ms(v: Option<f64>) -> String {
    v.map_or("-".into(), |x| format!("{x:.1}"))
}

/// A few lines a person can read at a glance.
pub fn render(s: &Status) -> String {
    let lat = |p: Option<&crate::monitor::latency::Percentiles>| {
        format!(
            "p50 {} p95 {} p99 {} max {} ms",
            ms(p.map(|p| p.p50)),
            ms(p.map(|p| p.p95)),
            ms(p.map(|p| p.p99)),
            ms(p.map(|p| p.max))
        )
    };
    let f = &s.frames;
    let rails = s
        .power
        .rails
        .iter()
        .map(|(k, v)| format!("{k} {}", ms(Some(*v))))
        .collect::<Vec<_>>()
        .join(", ");
    let within = match s.budget.as_ref().map(|b| b.within) {
        Some(true) => "within budget",
        Some(false) => "OVER budget",
        None => "no verdict yet",
    };
    let engine = s.engine.as_ref();
    let system = s.system.as_ref();
    let budget = s.budget.as_ref();
    [
        format!(
            "state     {}  uptime {:.0} s  source {} ({}, {} reconnects)",
            s.state.as_str(),
            s.uptime_s,
            s.source.uri,
            s.source.state,
            s.source.reconnects
        ),
        format!(
            "engine    {} {} {} {}  style {} strength {}{}{}",
            engine.map_or("?", |e| e.backend.as_ref()),
            engine.map_or("?", |e| e.model.as_str()),
            engine.map_or("?", |e| e.precision.as_str()),
            engine.map_or(String::new(), |e| format!("{}x{}", e.input[0], e.input[1])),
            s.style.spec,
            s.style.strength,
            if s.style.preserve_color {
                ", colours kept"
            } else {
                ""
            },
            if s.style.differs_from_file {
                " (not saved)"
            } else {
                ""
            },
        ),
        format!(
            "frames    captured {} processed {} dropped {} encoded {}   fps in {} out {}",
            f.captured,
            f.processed,
            f.dropped,
            f.encoded,
            ms(Some(s.fps.input)),
            ms(Some(s.fps.out))
        ),
        format!("infer     {}", lat(s.latency_ms.infer.as_ref())),
        format!("g2g       {}", lat(s.latency_ms.glass_to_glass.as_ref())),
        format!(
            "power     {} {} W  [{rails}]   cpu {}%  mem {} MB  gpu {}%",
            s.power.source,
            ms(s.power.total_w),
            ms(system.and_then(|s| s.cpu_pct)),
            ms(system.map(|s| s.mem_mb)),
            ms(system.and_then(|s| s.gpu_load_pct))
        ),
        format!(
            "budget    {within}: {} ms p95 / {} W  ({})",
            ms(budget.map(|b| b.budget.latency_ms)),
            ms(budget.map(|b| b.budget.power_w)),
            budget.map_or("", |b| b.reason.as_str())
        ),
    ]
    .into_iter()
    .chain(s.progress.map(|p| {
        format!(
            "progress  {}/{} frames, ETA {}",
            p.frames_done,
            p.frames_total.map_or("?".into(), |t| t.to_string()),
            p.eta_s.map_or("?".into(), |e| format!("{e:.0} s"))
        )
    }))
    .chain(s.config.as_ref().map(|c| {
        format!(
            "config    {} loaded {} ({} reloads){}",
            c.path,
            c.loaded_at,
            c.reloads,
            c.reload_error
                .as_ref()
                .map_or(String::new(), |e| format!("; last reload refused: {e}"))
        )
    }))
    .collect::<Vec<_>>()
    .join("\n")
}
