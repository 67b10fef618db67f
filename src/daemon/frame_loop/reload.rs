//! A reloaded config (SIGHUP), applied between two frames. What can fail is built first
//! (a new engine, a new output pipeline); if it does, the old parts stay and the reload is
//! refused as a whole. Style, strength, colour, governor, stabilizer, snapshots and the
//! budget then change in place; a new source is opened before the next frame.

use std::time::Duration;

use super::FrameLoop;
use crate::config::{Config, OutputConfig, OutputUri};
use crate::daemon::reload::{Changes, Loaded};
use crate::engine;
use crate::media::sink::{FrameSink, Snapshotter};
use crate::stabilize::Stabilizer;

/// How long a replaced output pipeline gets to close its recording.
const FINISH_TIMEOUT: Duration = Duration::from_secs(5);

impl FrameLoop {
    pub(super) fn reload(&mut self, loaded: Loaded) {
        let reloads = self.cx.shared.state().config.map_or(0, |c| c.reloads) + 1;
        match self.apply(&loaded.config) {
            Ok(changes) => {
                tracing::info!(changed = %changes.summary(), "config reloaded");
                if !changes.need_restart.is_empty() {
                    tracing::warn!(
                        keys = %changes.need_restart.join(", "),
                        "these settings take effect at the next start"
                    );
                }
                self.file_style = Some(loaded.file_style.clone());
                if let Some((source, _)) = self.cx.options.config_file.as_ref() {
                    let status = loaded.status(source, reloads);
                    self.cx.shared.update(|s| s.config = Some(status));
                }
                self.publish_style();
            }
            Err(e) => {
                tracing::error!("reload refused, the running config stays: {e}");
                self.cx.shared.update(|s| {
                    if let Some(c) = s.config.as_mut() {
                        c.reload_error = Some(e);
                    }
                });
            }
        }
    }

    /// Applies `new` over the running config; on an error nothing has changed.
    fn apply(&mut self, new: &Config) -> Result<Changes, String> {
        let changes = Changes::between(&self.cx.config, new);
        // 1. What can fail, before anything changes.
        let engine = if changes.engine {
            Some(
                engine::open(&new.engine, &new.engine.style)
                    .map_err(|e| format!("cannot start the new engine: {e}"))?,
            )
        } else {
            None
        };
        if changes.outputs {
            self.replace_sink(&new.output, new.engine.size)?;
        }
        // 2. Nothing below fails.
        let old = std::mem::replace(&mut self.cx.config, new.clone());
        if let Some(engine) = engine {
            // Arbitrary-style engines belong to the old model: dropped with it.
            self.swaps = Default::default();
            // Students (and timings) of the old model or size go with it.
            self.students = Default::default();
            self.cx.engine = engine;
            self.engine_changed();
            let (spec, available) = (new.engine.style.to_string(), self.cx.engine.styles().len());
            self.cx.shared.update(|s| {
                s.style = spec;
                s.styles_available = Some(available);
            });
        } else if changes.style && old.engine.style != new.engine.style {
            self.set_named_style(&new.engine.style.to_string())?;
        }
        if self.mix != new.engine.mix() {
            self.mix = new.engine.mix();
            if let Some(st) = self.stabilizer.as_mut() {
                st.reset();
            }
        }
        if changes.source {
            self.reopen_source = true;
            self.total_frames = None;
            self.pass_frames = 0;
            let uri = new.source.uri.to_string();
            self.cx.shared.update(|s| {
                s.source_uri = Some(uri);
                s.progress = None;
            });
        }
        if changes.governor || changes.monitor || changes.engine || changes.source {
            self.governor = self.build_governor();
            let status = self.governor.status();
            self.cx.shared.update(|s| s.governor = Some(status));
        }
        if changes.stabilizer {
            let st = &new.stabilizer;
            self.stabilizer = (st.enabled && new.source.uri.is_live())
                .then(|| Stabilizer::new(st.strength, st.threshold));
        }
        if changes.snapshots {
            let out = &new.output;
            let dir = out
                .snapshot_dir
                .clone()
                .unwrap_or_else(|| "out/snapshots".into());
            self.snapshots = Snapshotter::new(dir, out.snapshot_every_s);
        }
        if changes.monitor {
            let monitor = new.monitor.clone();
            self.cx.shared.update(|s| s.monitor = Some(monitor));
        }
        Ok(changes)
    }

    /// Closes the output pipeline and opens the new one (an RTSP port can only be bound
    /// once). If the new one cannot open, the old config's is opened again.
    fn replace_sink(
        &mut self,
        output: &OutputConfig,
        size: crate::config::Size,
    ) -> Result<(), String> {
        let null = OutputConfig {
            uris: vec![OutputUri::Null],
            ..output.clone()
        };
        let placeholder = FrameSink::open(&null, size).map_err(|e| e.to_string())?;
        let old = std::mem::replace(&mut self.cx.sink, placeholder);
        self.encoded_before += old.encoded();
        if let Err(e) = old.finish(FINISH_TIMEOUT) {
            tracing::warn!(error = %e, "the replaced output did not close cleanly");
        }
        match FrameSink::open(output, size) {
            Ok(sink) => {
                self.install_sink(sink, output);
                Ok(())
            }
            Err(e) => {
                let previous = self.cx.config.output.clone();
                match FrameSink::open(&previous, self.cx.config.engine.size) {
                    Ok(sink) => self.install_sink(sink, &previous),
                    Err(again) => {
                        tracing::error!(error = %again, "cannot reopen the previous outputs; output goes nowhere")
                    }
                }
                Err(format!("cannot open the new outputs: {e}"))
            }
        }
    }

    fn install_sink(&mut self, sink: FrameSink, output: &OutputConfig) {
        let uris = output.uris.iter().map(|u| u.to_string()).collect();
        let pattern = sink.file_pattern().map(|p| p.display().to_string());
        tracing::info!(file = ?pattern, rtsp = ?sink.rtsp_url(), "outputs reopened");
        self.cx.sink = sink;
        self.last_no_signal = None;
        self.last_output = None;
        self.cx.shared.update(|s| {
            s.outputs = Some((uris, pattern));
            s.recording_error = None;
        });
    }
}
