//! CPU, memory and GPU load of this process and this machine.
//!
//! Owns the sysinfo handle and the Jetson GPU load file (`devices/gpu.0/load`, per mille,
//! under a configurable sysfs root so tests use fixture trees). It must not invent numbers:
//! CPU % needs two refreshes, so the first sample has none, and a machine without the GPU
//! load file (any x86 host) reports `None`. It does not judge the numbers.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

/// Where Jetson kernels put the GPU load, relative to the sysfs root, in the order tried:
/// Xavier (JetPack 4 and 5), then platforms that register the GPU as a platform device.
const GPU_LOAD_FILES: [&str; 2] = ["devices/gpu.0/load", "devices/platform/gpu.0/load"];

/// Why a reading failed.
#[derive(Debug, thiserror::Error)]
pub enum SystemError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path} holds {text:?}, expected a load in per mille (0..=1000)")]
    Garbage { path: PathBuf, text: String },
}

/// The `system` part of the status document.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SystemSnapshot {
    /// This process, in percent of one core (as `top` shows it: 4 busy cores read 400).
    /// `None` on the first sample.
    pub cpu_pct: Option<f64>,
    /// The whole machine, in percent of all cores. `None` on the first sample.
    pub system_cpu_pct: Option<f64>,
    /// Resident memory of this process in MiB.
    pub mem_mb: f64,
    /// GPU load in percent; `None` where the board has no GPU load file.
    pub gpu_load_pct: Option<f64>,
}

/// Samples CPU, memory and GPU load; keep one and call [`SystemSampler::sample`] periodically
/// (at least `sysinfo::MINIMUM_CPU_UPDATE_INTERVAL` apart for meaningful CPU %).
pub struct SystemSampler {
    system: System,
    pid: Option<Pid>,
    gpu_load: Option<PathBuf>,
    primed: bool,
}

impl SystemSampler {
    /// A sampler for this process; the GPU load file is looked up under `sysfs_root`.
    pub fn new(sysfs_root: &Path) -> Self {
        let gpu_load = GPU_LOAD_FILES
            .iter()
            .map(|file| sysfs_root.join(file))
            .find(|path| path.is_file());
        let pid = sysinfo::get_current_pid()
            .inspect_err(|error| tracing::warn!(%error, "no pid, process CPU and memory unknown"))
            .ok();
        Self {
            system: System::new(),
            pid,
            gpu_load,
            primed: false,
        }
    }

    /// Whether this board has a GPU load file.
    pub fn has_gpu_load(&self) -> bool {
        self.gpu_load.is_some()
    }

    /// Reads everything now.
    pub fn sample(&mut self) -> SystemSnapshot {
        self.system.refresh_cpu_usage();
        let mut cpu_pct = None;
        let mut mem_mb = 0.0;
        if let Some(pid) = self.pid {
            let kind = ProcessRefreshKind::nothing().with_cpu().with_memory();
            self.system
                .refresh_processes_specifics(ProcessesToUpdate::Some(&[pid]), true, kind);
            if let Some(process) = self.system.process(pid) {
                cpu_pct = Some(f64::from(process.cpu_usage()));
                mem_mb = process.memory() as f64 / (1024.0 * 1024.0);
            }
        }
        let system_cpu_pct = Some(f64::from(self.system.global_cpu_usage()));
        let primed = std::mem::replace(&mut self.primed, true);
        let gpu_load_pct = self.gpu_load.as_deref().and_then(|path| {
            read_gpu_load(path)
                .inspect_err(|error| tracing::warn!(%error, "GPU load unreadable"))
                .ok()
        });
        SystemSnapshot {
            cpu_pct: cpu_pct.filter(|_| primed),
            system_cpu_pct: system_cpu_pct.filter(|_| primed),
            mem_mb,
            gpu_load_pct,
        }
    }
}

/// GPU load in percent from a per-mille load file.
pub fn read_gpu_load(path: &Path) -> Result<f64, SystemError> {
    let text = fs::read_to_string(path).map_err(|source| SystemError::Read {
        path: path.to_owned(),
        source,
    })?;
    let text = text.trim();
    match text.parse::<u32>() {
        Ok(per_mille) if per_mille <= 1000 => Ok(f64::from(per_mille) / 10.0),
        _ => Err(SystemError::Garbage {
            path: path.to_owned(),
            text: text.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture_root(name: &str) -> PathBuf {
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/sysfs")).join(name)
    }

    #[test]
    fn gpu_load_from_xavier_and_platform_paths() {
        let xavier = SystemSampler::new(&fixture_root("jetpack5-xavier"));
        assert!(xavier.has_gpu_load());
        let mut xavier = xavier;
        assert_eq!(xavier.sample().gpu_load_pct, Some(45.8));
        let mut orin = SystemSampler::new(&fixture_root("orin"));
        assert_eq!(orin.sample().gpu_load_pct, Some(12.3));
        let mut x86 = SystemSampler::new(&fixture_root("rapl"));
        assert!(!x86.has_gpu_load());
        assert_eq!(x86.sample().gpu_load_pct, None);
    }

    #[test]
    fn garbage_gpu_load_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("load");
        for bad in ["", "busy\n", "1001\n", "-5\n"] {
            fs::write(&path, bad).unwrap();
            let error = read_gpu_load(&path).unwrap_err().to_string();
            assert!(error.contains("load"), "{error}");
        }
        fs::write(&path, "1000\n").unwrap();
        assert_eq!(read_gpu_load(&path).unwrap(), 100.0);
        assert!(read_gpu_load(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn cpu_is_unknown_until_the_second_sample_and_memory_is_real() {
        let mut sampler = SystemSampler::new(Path::new("/nonexistent"));
        let first = sampler.sample();
        assert_eq!(first.cpu_pct, None);
        assert_eq!(first.system_cpu_pct, None);
        assert!(first.mem_mb > 1.0, "{first:?}");
        std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
        let second = sampler.sample();
        let cpu = second.cpu_pct.unwrap();
        assert!(cpu >= 0.0, "{second:?}");
        let system = second.system_cpu_pct.unwrap();
        assert!((0.0..=100.0).contains(&system), "{second:?}");
        let json = serde_json::to_value(second).unwrap();
        assert!(json["mem_mb"].is_number() && json["gpu_load_pct"].is_null());
    }
}
