//! Reading the config file, and the rules that span more than one value (outputs, ranges,
//! what a backend needs), checked once before anything starts.

use std::path::Path;

use super::{Backend, Config, ConfigError, OutputUri, bad};

impl Config {
    /// Reads a config file: every value parsed to its type (URIs, sizes, the style), with
    /// the file's errors. The rules across values are [`Config::check`]'s, run once by
    /// `daemon::run`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::load_with_digest(path).map(|(config, _)| config)
    }

    /// [`Config::load`], with the sha256 (hex) of the bytes it read.
    pub fn load_with_digest(path: &Path) -> Result<(Self, String), ConfigError> {
        use sha2::Digest;
        let bytes = std::fs::read(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        let digest = sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>();
        let text = String::from_utf8(bytes).map_err(|_| ConfigError::Parse {
            path: path.into(),
            message: "the file is not UTF-8 text".into(),
        })?;
        let config: Config = toml::from_str(&text).map_err(|e| {
            let line = e.span().map(|s| text[..s.start].matches('\n').count() + 1);
            ConfigError::Parse {
                path: path.into(),
                message: match line {
                    Some(n) => format!("line {n}: {}", e.message()),
                    None => e.message().to_string(),
                },
            }
        })?;
        Ok((config, digest))
    }

    /// Rejects impossible values; run before anything starts.
    pub fn check(&self) -> Result<(), ConfigError> {
        let outputs = &self.output.uris;
        if outputs.is_empty() {
            return Err(bad(
                "output.uris",
                "list at least one output (null:// for none)",
            ));
        }
        let rtsp = outputs
            .iter()
            .filter(|o| matches!(o, OutputUri::Rtsp { .. }))
            .count();
        if rtsp > 1 {
            return Err(bad(
                "output.uris",
                "at most one rtsp:// output is supported",
            ));
        }
        let s = &self.source;
        if !(0.1..=600.0).contains(&s.no_frame_timeout_s) {
            return Err(bad(
                "source.no-frame-timeout-s",
                "must be between 0.1 and 600 seconds",
            ));
        }
        if s.rtsp_latency_ms > 10_000 {
            return Err(bad("source.rtsp-latency-ms", "must be at most 10000"));
        }
        let e = &self.engine;
        if !(1..=64).contains(&e.threads) {
            return Err(bad(
                "engine.threads",
                format!("must be 1 to 64, got {}", e.threads),
            ));
        }
        if e.spin_us > 1_000_000 {
            return Err(bad(
                "engine.spin-us",
                format!("must be 0 to 1000000 microseconds, got {}", e.spin_us),
            ));
        }
        if e.model.is_empty() || e.model.contains(['/', '\\']) {
            return Err(bad(
                "engine.model",
                "must be a model name from engines/, not a path",
            ));
        }
        if !(0.0..=1.0).contains(&e.strength) {
            return Err(bad(
                "engine.strength",
                format!("must be from 0 to 1, got {}", e.strength),
            ));
        }
        if e.backend == Backend::Tensorrt && e.plan.is_none() {
            return Err(bad("engine.plan", "backend \"tensorrt\" needs a plan file"));
        }
        let o = &self.output;
        if !(1..=240).contains(&o.fps) {
            return Err(bad(
                "output.fps",
                format!("must be 1 to 240, got {}", o.fps),
            ));
        }
        if !(100..=100_000).contains(&o.bitrate_kbps) {
            return Err(bad("output.bitrate-kbps", "must be 100 to 100000"));
        }
        if o.segment_s < 1 {
            return Err(bad("output.segment-s", "must be at least 1 second"));
        }
        if !(1..=256).contains(&o.rtsp_max_clients) {
            return Err(bad("output.rtsp-max-clients", "must be 1 to 256"));
        }
        if !(0.0..=86_400.0).contains(&o.snapshot_every_s) {
            return Err(bad(
                "output.snapshot-every-s",
                "must be 0 (off) to 86400 seconds",
            ));
        }
        if o.snapshot_every_s > 0.0 && o.snapshot_dir.is_none() {
            return Err(bad(
                "output.snapshot-dir",
                "periodic snapshots need a snapshot-dir",
            ));
        }
        let m = &self.monitor;
        if !(0.1..=3600.0).contains(&m.progress_every_s) {
            return Err(bad(
                "monitor.progress-every-s",
                "must be between 0.1 and 3600",
            ));
        }
        if m.budget_latency_ms <= 0.0 || m.budget_power_w <= 0.0 {
            return Err(bad("monitor.budget-*", "budgets must be above 0"));
        }
        let st = &self.stabilizer;
        if !(0.0..=0.95).contains(&st.strength) {
            return Err(bad("stabilizer.strength", "must be 0 to 0.95"));
        }
        if !(1.0..=255.0).contains(&st.threshold) {
            return Err(bad("stabilizer.threshold", "must be 1 to 255"));
        }
        if let Some(ladder) = &self.governor.ladder
            && (ladder.is_empty() || ladder.len() > 8)
        {
            return Err(bad(
                "governor.ladder",
                "list 1 to 8 rungs (WxH or MODEL@WxH), most work first",
            ));
        }
        self.http.check()
    }
}
