//! Board power from whichever sensor the machine has, behind one trait.
//!
//! Owns the sysfs layouts of the power sensors: the INA3221 monitors of Jetson boards
//! (JetPack 5 hwmon, JetPack 4 iio; Xavier sums its rails, Orin reports its `VDD_IN` input
//! rail) and Intel RAPL energy counters on x86 hosts. The sysfs root is a parameter so tests
//! run on fixture trees in `tests/data/sysfs/`. It must never invent a number: no sensor means
//! [`detect`] returns `None` ("none" in the status), and an unreadable or garbled file is a
//! [`PowerError`] naming the file, never a panic. It does not decide the budget.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// Rails that measure the whole module's input: where one exists it is the total, and the
/// other rails are parts of it (Orin NX/Nano `VDD_IN`, Nano/TX1 `POM_5V_IN`).
const INPUT_RAILS: [&str; 2] = ["VDD_IN", "POM_5V_IN"];

/// Label the Jetson device trees give an unconnected INA3221 channel.
const UNCONNECTED: &str = "NC";

/// Why a power reading failed.
#[derive(Debug, thiserror::Error)]
pub enum PowerError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path} holds {text:?}, expected a non-negative integer")]
    Garbage { path: PathBuf, text: String },
    #[error("{kind} measures energy: watts need a second sample")]
    NeedsSecondSample { kind: &'static str },
}

/// One power reading: the total and each rail, in watts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PowerSample {
    pub total_w: f64,
    pub rails: BTreeMap<String, f64>,
}

/// A power sensor.
pub trait PowerSource {
    /// The sensor's name in the status document: `ina3221-hwmon`, `ina3221-iio` or `rapl`.
    fn kind(&self) -> &'static str;
    /// Reads the sensor now.
    fn sample(&mut self) -> Result<PowerSample, PowerError>;
}

/// The power part of the status document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PowerStatus {
    /// Sensor kind, or `"none"`.
    pub source: Cow<'static, str>,
    /// `None` when there is no sensor or no reading yet.
    pub total_w: Option<f64>,
    pub rails: BTreeMap<String, f64>,
    /// Why the last reading failed, if it did.
    pub error: Option<String>,
}

impl PowerStatus {
    /// No sensor on this machine.
    pub fn none() -> Self {
        Self {
            source: "none".into(),
            total_w: None,
            rails: BTreeMap::new(),
            error: None,
        }
    }

    /// The status after one reading of a `kind` sensor.
    pub fn from_reading(kind: &'static str, reading: &Result<PowerSample, PowerError>) -> Self {
        match reading {
            Ok(sample) => Self {
                source: kind.into(),
                total_w: Some(sample.total_w),
                rails: sample.rails.clone(),
                error: None,
            },
            Err(error) => Self {
                source: kind.into(),
                total_w: None,
                rails: BTreeMap::new(),
                error: Some(error.to_string()),
            },
        }
    }
}

/// The first power sensor under `sysfs_root` (normally `/sys`) that gives a reading, trying
/// JetPack 5 hwmon INA3221 (Xavier, Orin), JetPack 4 iio INA3221, then RAPL.
///
/// A sensor that exists but cannot be read (RAPL's `energy_uj` is root-only since Linux 5.10)
/// is logged and skipped.
pub fn detect(sysfs_root: &Path) -> Option<Box<dyn PowerSource + Send>> {
    let candidates: [Option<Box<dyn PowerSource + Send>>; 3] = [
        Ina3221::hwmon(sysfs_root).map(|s| Box::new(s) as _),
        Ina3221::iio(sysfs_root).map(|s| Box::new(s) as _),
        Rapl::find(sysfs_root).map(|s| Box::new(s) as _),
    ];
    for mut source in candidates.into_iter().flatten() {
        match source.sample() {
            Ok(_) | Err(PowerError::NeedsSecondSample { .. }) => {
                tracing::info!(kind = source.kind(), "power sensor found");
                return Some(source);
            }
            Err(error) => {
                tracing::warn!(kind = source.kind(), %error, "power sensor present but unreadable");
            }
        }
    }
    tracing::info!(root = %sysfs_root.display(), "no power sensor, power reported as none");
    None
}

fn read_text(path: &Path) -> Result<String, PowerError> {
    fs::read_to_string(path)
        .map(|text| text.trim().to_owned())
        .map_err(|source| PowerError::Read {
            path: path.to_owned(),
            source,
        })
}

fn read_u64(path: &Path) -> Result<u64, PowerError> {
    let text = read_text(path)?;
    text.parse().map_err(|_| PowerError::Garbage {
        path: path.to_owned(),
        text,
    })
}

/// Sub-directories of `dir` whose names pass `keep`, sorted by name; none if unreadable.
fn subdirs(dir: &Path, keep: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(&keep))
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// How a channel's watts are read.
#[derive(Debug)]
enum Reading {
    /// hwmon: bus voltage in mV and current in mA.
    VoltsAmps { mv: PathBuf, ma: PathBuf },
    /// iio: power in mW.
    Milliwatts(PathBuf),
}

#[derive(Debug)]
struct Channel {
    rail: String,
    reading: Reading,
}

/// The INA3221 triple power monitors on Jetson boards, through hwmon or iio.
#[derive(Debug)]
pub struct Ina3221 {
    kind: &'static str,
    channels: Vec<Channel>,
}

impl Ina3221 {
    /// JetPack 5: `bus/i2c/drivers/ina3221/<bus-addr>/hwmon/hwmon*/in{1,2,3}_label`.
    fn hwmon(root: &Path) -> Option<Self> {
        let mut channels = Vec::new();
        for chip in subdirs(&root.join("bus/i2c/drivers/ina3221"), |_| true) {
            for dir in subdirs(&chip.join("hwmon"), |n| n.starts_with("hwmon")) {
                for i in 1..=3 {
                    let Some(rail) = rail_label(&dir.join(format!("in{i}_label"))) else {
                        continue;
                    };
                    let mv = dir.join(format!("in{i}_input"));
                    let ma = dir.join(format!("curr{i}_input"));
                    let reading = Reading::VoltsAmps { mv, ma };
                    channels.push(Channel { rail, reading });
                }
            }
        }
        Self::with_channels("ina3221-hwmon", channels)
    }

    /// JetPack 4: `bus/i2c/drivers/ina3221x/<bus-addr>/iio:device*/rail_name_{0,1,2}`.
    fn iio(root: &Path) -> Option<Self> {
        let mut channels = Vec::new();
        for chip in subdirs(&root.join("bus/i2c/drivers/ina3221x"), |_| true) {
            for dir in subdirs(&chip, |n| n.starts_with("iio:device")) {
                for i in 0..=2 {
                    let Some(rail) = rail_label(&dir.join(format!("rail_name_{i}"))) else {
                        continue;
                    };
                    let reading = Reading::Milliwatts(dir.join(format!("in_power{i}_input")));
                    channels.push(Channel { rail, reading });
                }
            }
        }
        Self::with_channels("ina3221-iio", channels)
    }

    fn with_channels(kind: &'static str, channels: Vec<Channel>) -> Option<Self> {
        (!channels.is_empty()).then_some(Self { kind, channels })
    }
}

/// The rail name in a label file; `None` for a missing file or an unconnected channel.
fn rail_label(path: &Path) -> Option<String> {
    let label = fs::read_to_string(path).ok()?.trim().to_owned();
    (!label.is_empty() && label != UNCONNECTED).then_some(label)
}

impl PowerSource for Ina3221 {
    fn kind(&self) -> &'static str {
        self.kind
    }

    fn sample(&mut self) -> Result<PowerSample, PowerError> {
        let mut rails = BTreeMap::new();
        for channel in &self.channels {
            let watts = match &channel.reading {
                Reading::VoltsAmps { mv, ma } => {
                    read_u64(mv)? as f64 * read_u64(ma)? as f64 / 1_000_000.0
                }
                Reading::Milliwatts(mw) => read_u64(mw)? as f64 / 1000.0,
            };
            rails.insert(channel.rail.clone(), watts);
        }
        // Xavier has no input rail (docs/design.md): its total is the sum of its rails.
        let total_w = INPUT_RAILS
            .iter()
            .find_map(|name| rails.get(*name).copied())
            .unwrap_or_else(|| rails.values().sum());
        Ok(PowerSample { total_w, rails })
    }
}

#[derive(Debug)]
struct Zone {
    name: String,
    energy: PathBuf,
    /// The counter wraps to 0 after this many µJ.
    max_range_uj: u64,
}

/// Intel RAPL energy counters (`class/powercap/intel-rapl:N`), top-level zones only: the
/// sub-zones (`intel-rapl:N:M`, core/uncore/dram) are parts of their package.
#[derive(Debug)]
pub struct Rapl {
    zones: Vec<Zone>,
    last: Option<(Instant, Vec<u64>)>,
}

impl Rapl {
    fn find(root: &Path) -> Option<Self> {
        let top_level = |name: &str| {
            name.strip_prefix("intel-rapl:")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        };
        let zones: Vec<Zone> = subdirs(&root.join("class/powercap"), top_level)
            .into_iter()
            .filter_map(|dir| {
                Some(Zone {
                    name: read_text(&dir.join("name")).ok()?,
                    max_range_uj: read_u64(&dir.join("max_energy_range_uj")).ok()?,
                    energy: dir.join("energy_uj"),
                })
            })
            .collect();
        (!zones.is_empty()).then_some(Self { zones, last: None })
    }

    /// Reads the counters at `now`; watts are the energy since the previous call over the
    /// time since it, so the first call only sets the baseline.
    pub fn sample_at(&mut self, now: Instant) -> Result<PowerSample, PowerError> {
        let energies = self
            .zones
            .iter()
            .map(|zone| read_u64(&zone.energy))
            .collect::<Result<Vec<_>, _>>()?;
        let Some((then, previous)) = self.last.take() else {
            self.last = Some((now, energies));
            return Err(PowerError::NeedsSecondSample { kind: "rapl" });
        };
        let seconds = now.saturating_duration_since(then).as_secs_f64();
        if seconds <= 0.0 {
            self.last = Some((then, previous));
            return Err(PowerError::NeedsSecondSample { kind: "rapl" });
        }
        let mut rails = BTreeMap::new();
        for ((zone, &before), &after) in self.zones.iter().zip(&previous).zip(&energies) {
            let delta_uj = if after >= before {
                after - before
            } else {
                // The counter wrapped at max_energy_range_uj.
                zone.max_range_uj.saturating_sub(before) + after
            };
            rails.insert(zone.name.clone(), delta_uj as f64 / 1e6 / seconds);
        }
        self.last = Some((now, energies));
        // `psys` (platform) already contains the packages; without it, sum the packages.
        let total_w = rails
            .get("psys")
            .copied()
            .unwrap_or_else(|| rails.values().sum());
        Ok(PowerSample { total_w, rails })
    }
}

impl PowerSource for Rapl {
    fn kind(&self) -> &'static str {
        "rapl"
    }

    fn sample(&mut self) -> Result<PowerSample, PowerError> {
        self.sample_at(Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn fixture_root(name: &str) -> PathBuf {
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/sysfs")).join(name)
    }

    fn assert_watts(sample: &PowerSample, total: f64, rails: &[(&str, f64)]) {
        assert!((sample.total_w - total).abs() < 1e-9, "total {sample:?}");
        let names: Vec<&str> = sample.rails.keys().map(String::as_str).collect();
        let mut expected: Vec<&str> = rails.iter().map(|(n, _)| *n).collect();
        expected.sort_unstable();
        assert_eq!(names, expected);
        for (name, watts) in rails {
            assert!(
                (sample.rails[*name] - watts).abs() < 1e-9,
                "{name}: {sample:?}"
            );
        }
    }

    #[test]
    fn jetpack5_xavier_sums_its_six_rails() {
        let mut source = detect(&fixture_root("jetpack5-xavier")).unwrap();
        assert_eq!(source.kind(), "ina3221-hwmon");
        let rails = [
            ("GPU", 19168.0 * 200.0 / 1e6),
            ("CPU", 19160.0 * 152.0 / 1e6),
            ("SOC", 19152.0 * 128.0 / 1e6),
            ("CV", 0.0),
            ("VDDRQ", 19160.0 * 48.0 / 1e6),
            ("SYS5V", 4984.0 * 400.0 / 1e6),
        ];
        assert_watts(&source.sample().unwrap(), 12.110656, &rails);
    }

    #[test]
    fn orin_total_is_vdd_in() {
        let mut source = detect(&fixture_root("orin")).unwrap();
        assert_eq!(source.kind(), "ina3221-hwmon");
        let rails = [
            ("VDD_IN", 6.993408),
            ("VDD_CPU_GPU_CV", 1.966272),
            ("VDD_SOC", 1.444608),
        ];
        assert_watts(&source.sample().unwrap(), 6.993408, &rails);
    }

    #[test]
    fn jetpack4_xavier_reads_iio_milliwatts() {
        let mut source = detect(&fixture_root("jetpack4-xavier")).unwrap();
        assert_eq!(source.kind(), "ina3221-iio");
        let rails = [
            ("GPU", 3.834),
            ("CPU", 2.912),
            ("SOC", 2.451),
            ("CV", 0.0),
            ("VDDRQ", 0.92),
            ("SYS5V", 1.994),
        ];
        assert_watts(&source.sample().unwrap(), 12.111, &rails);
    }

    fn copy_tree(from: &Path, to: &Path) {
        fs::create_dir_all(to).unwrap();
        for entry in fs::read_dir(from).unwrap().flatten() {
            let target = to.join(entry.file_name());
            if entry.path().is_dir() {
                copy_tree(&entry.path(), &target);
            } else {
                fs::copy(entry.path(), target).unwrap();
            }
        }
    }

    #[test]
    fn rapl_fixture_uses_psys_and_skips_sub_zones() {
        let dir = tempfile::tempdir().unwrap();
        copy_tree(&fixture_root("rapl"), dir.path());
        let mut rapl = Rapl::find(dir.path()).unwrap();
        let t0 = Instant::now();
        assert!(matches!(
            rapl.sample_at(t0),
            Err(PowerError::NeedsSecondSample { kind: "rapl" })
        ));
        let zones = dir.path().join("class/powercap");
        fs::write(zones.join("intel-rapl:0/energy_uj"), "72849512693\n").unwrap(); // +8 J
        fs::write(zones.join("intel-rapl:1/energy_uj"), "151451824567\n").unwrap(); // +12 J
        let sample = rapl.sample_at(t0 + Duration::from_secs(2)).unwrap();
        assert_watts(&sample, 6.0, &[("package-0", 4.0), ("psys", 6.0)]);
        // detect() finds it too and keeps its first reading as the baseline.
        assert_eq!(detect(dir.path()).unwrap().kind(), "rapl");
    }

    #[test]
    fn rapl_handles_wrap_around_and_sums_packages() {
        let dir = tempfile::tempdir().unwrap();
        let zones = dir.path().join("class/powercap");
        for (zone, name, energy) in [
            ("intel-rapl:0", "package-0", 262_143_000_000u64),
            ("intel-rapl:1", "package-1", 1_000_000),
            ("intel-rapl:0:0", "dram", 5),
        ] {
            fs::create_dir_all(zones.join(zone)).unwrap();
            fs::write(zones.join(zone).join("name"), format!("{name}\n")).unwrap();
            fs::write(zones.join(zone).join("energy_uj"), format!("{energy}\n")).unwrap();
            fs::write(
                zones.join(zone).join("max_energy_range_uj"),
                "262143328850\n",
            )
            .unwrap();
        }
        let mut rapl = Rapl::find(dir.path()).unwrap();
        let t0 = Instant::now();
        assert!(rapl.sample_at(t0).is_err());
        // package-0 wraps: 328_850 µJ to the top, then 9_671_150 µJ more: 10 J in 1 s.
        fs::write(zones.join("intel-rapl:0/energy_uj"), "9671150\n").unwrap();
        fs::write(zones.join("intel-rapl:1/energy_uj"), "6000000\n").unwrap();
        let sample = rapl.sample_at(t0 + Duration::from_secs(1)).unwrap();
        assert_watts(&sample, 15.0, &[("package-0", 10.0), ("package-1", 5.0)]);
    }

    #[test]
    fn garbage_or_missing_files_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        copy_tree(&fixture_root("jetpack5-xavier"), dir.path());
        let mut source = Ina3221::hwmon(dir.path()).unwrap();
        let chip = dir
            .path()
            .join("bus/i2c/drivers/ina3221/1-0041/hwmon/hwmon3");
        fs::write(chip.join("curr2_input"), "lots\n").unwrap();
        let error = source.sample().unwrap_err().to_string();
        assert!(
            error.contains("curr2_input") && error.contains("lots"),
            "{error}"
        );
        fs::remove_file(chip.join("curr2_input")).unwrap();
        let error = source.sample().unwrap_err().to_string();
        assert!(error.contains("curr2_input"), "{error}");
        // detect() skips a sensor it cannot read instead of reporting a number.
        assert!(detect(dir.path()).is_none());
        let status = PowerStatus::from_reading("ina3221-hwmon", &source.sample());
        assert_eq!(status.total_w, None);
        assert!(status.error.unwrap().contains("curr2_input"));
    }

    #[test]
    fn no_sensor_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert!(detect(dir.path()).is_none());
        assert!(detect(Path::new("/nonexistent/sysfs")).is_none());
        let json = serde_json::to_value(PowerStatus::none()).unwrap();
        assert_eq!(json["source"], "none");
        assert!(json["total_w"].is_null());
    }
}
