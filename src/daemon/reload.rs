//! The config file behind a run: reading it (with the command line's overrides on top),
//! what the status says about it, and what a reload (SIGHUP) changes.
//!
//! A reload reads the file again, applies the same overrides, and runs the same checks as
//! `run` and `stylerd check-config` ([`super::preflight`]); any problem refuses it as a
//! whole. A good one goes to the frame thread, which applies it between two frames:
//! [`Changes`] says which parts are rebuilt (source, engine, outputs) and which apply in
//! place (style, strength, colour, governor, stabilizer, budget, snapshots).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use crate::config::{Config, EngineConfig};
use crate::control::ConfigStatus;
use crate::media::sink::record::utc_rfc3339;

/// Applied to the file's config on every load: the command line's overrides.
pub type Overrides = Arc<dyn Fn(&mut Config) -> anyhow::Result<()> + Send + Sync>;

/// Where a run's config comes from.
#[derive(Clone)]
pub struct ConfigSource {
    pub path: PathBuf,
    pub overrides: Overrides,
}

impl std::fmt::Debug for ConfigSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigSource")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// The style part of the file's `[engine]`, to tell whether the running style differs.
#[derive(Clone, Debug, PartialEq)]
pub struct FileStyle {
    pub spec: String,
    pub strength: f32,
    pub preserve_color: bool,
}

impl FileStyle {
    pub fn of(engine: &EngineConfig) -> Self {
        Self {
            spec: engine.style.to_string(),
            strength: engine.strength,
            preserve_color: engine.preserve_color,
        }
    }
}

/// A config read from its file, overrides applied, every check passed.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub config: Config,
    pub file_style: FileStyle,
    pub sha256: String,
    pub read_at: SystemTime,
}

impl Loaded {
    /// What the status shows for it.
    pub fn status(&self, source: &ConfigSource, reloads: u64) -> ConfigStatus {
        ConfigStatus {
            path: source.path.display().to_string(),
            loaded_at: utc_rfc3339(self.read_at),
            sha256: self.sha256.clone(),
            reload_error: None,
            reloads,
        }
    }
}

/// Reads and checks the file; the error is one sentence per problem, joined.
pub fn load(source: &ConfigSource) -> Result<Loaded, String> {
    let read_at = SystemTime::now();
    let (file, sha256) = Config::load_with_digest(&source.path).map_err(|e| e.to_string())?;
    let file_style = FileStyle::of(&file.engine);
    let mut config = file;
    (source.overrides)(&mut config).map_err(|e| format!("{e:#}"))?;
    let problems = super::preflight::problems(&config);
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    Ok(Loaded {
        config,
        file_style,
        sha256,
        read_at,
    })
}

/// What a reload changes, part by part.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Changes {
    /// The capture pipeline is rebuilt (source section, or the frame size).
    pub source: bool,
    /// The engine is rebuilt (anything in `[engine]` but style, strength and colour).
    pub engine: bool,
    /// The output pipeline is rebuilt (outputs, encoder, segments, or the frame size).
    pub outputs: bool,
    /// Applied in place.
    pub style: bool,
    pub governor: bool,
    pub stabilizer: bool,
    pub snapshots: bool,
    pub monitor: bool,
    /// Keys that only take effect at the next start (`[control]`, `[http]`, `sysfs-root`).
    pub need_restart: Vec<&'static str>,
}

impl Changes {
    pub fn between(old: &Config, new: &Config) -> Self {
        let (oe, ne) = (&old.engine, &new.engine);
        let engine_part = |e: &EngineConfig| {
            let e = e.clone();
            (
                e.backend,
                e.models_dir,
                e.model,
                e.size,
                e.threads,
                e.onnxruntime,
                e.plan,
            )
        };
        let sink_part = |c: &Config| {
            let mut o = c.output.clone();
            o.snapshot_dir = None;
            o.snapshot_every_s = 0.0;
            o
        };
        let mut need_restart = Vec::new();
        if old.control != new.control {
            need_restart.push("[control]");
        }
        if old.http != new.http {
            need_restart.push("[http]");
        }
        if old.monitor.sysfs_root != new.monitor.sysfs_root {
            need_restart.push("monitor.sysfs-root");
        }
        let mut monitor = new.monitor.clone();
        monitor.sysfs_root = old.monitor.sysfs_root.clone();
        let size = oe.size != ne.size;
        Self {
            source: old.source != new.source || size,
            engine: engine_part(oe) != engine_part(ne),
            outputs: sink_part(old) != sink_part(new) || size,
            style: FileStyle::of(oe) != FileStyle::of(ne),
            governor: old.governor != new.governor
                || old.governor_enabled() != new.governor_enabled(),
            stabilizer: old.stabilizer != new.stabilizer || old.source != new.source,
            snapshots: (&old.output.snapshot_dir, old.output.snapshot_every_s)
                != (&new.output.snapshot_dir, new.output.snapshot_every_s),
            monitor: old.monitor != monitor,
            need_restart,
        }
    }

    /// The parts, for the log line.
    pub fn summary(&self) -> String {
        let parts = [
            (self.source, "source"),
            (self.engine, "engine"),
            (self.outputs, "outputs"),
            (self.style, "style"),
            (self.governor, "governor"),
            (self.stabilizer, "stabilizer"),
            (self.snapshots, "snapshots"),
            (self.monitor, "monitor"),
        ];
        let changed: Vec<&str> = parts.iter().filter(|(c, _)| *c).map(|(_, n)| *n).collect();
        if changed.is_empty() {
            "nothing".into()
        } else {
            changed.join(", ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn changes_name_only_the_parts_that_differ() {
        let base = config("[engine]\nstyle = \"0\"\nsize = \"320x180\"\n");
        assert_eq!(Changes::between(&base, &base), Changes::default());
        let style = config("[engine]\nstyle = \"3\"\nstrength = 0.5\nsize = \"320x180\"\n");
        let c = Changes::between(&base, &style);
        assert!(c.style && !c.engine && !c.source && !c.outputs, "{c:?}");
        let size = config("[engine]\nstyle = \"0\"\nsize = \"256x144\"\n");
        let c = Changes::between(&base, &size);
        assert!(c.source && c.outputs && c.engine && !c.style, "{c:?}");
        let out =
            config("[engine]\nsize = \"320x180\"\n[output]\nuris = [\"file:///tmp/x.mkv\"]\n");
        let c = Changes::between(&base, &out);
        assert!(c.outputs && !c.source && !c.engine, "{c:?}");
        let sock = config("[engine]\nsize = \"320x180\"\n[control]\nsocket = \"/tmp/y.sock\"\n");
        assert_eq!(
            Changes::between(&base, &sock).need_restart,
            vec!["[control]"]
        );
        let web = config("[engine]\nsize = \"320x180\"\n[http]\nlisten = \"off\"\n");
        assert_eq!(Changes::between(&base, &web).need_restart, vec!["[http]"]);
        let budget = config("[engine]\nsize = \"320x180\"\n[monitor]\nbudget-latency-ms = 50.0\n");
        let c = Changes::between(&base, &budget);
        assert!(c.monitor && !c.governor, "{c:?}");
    }
}
