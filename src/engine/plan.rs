//! What a TensorRT plan was built for, and whether it may run here.
//!
//! Plans only run on the TensorRT version and GPU that built them. `engines/build-trt.sh`
//! puts both in the file name (`<model>.<WxH|dynamic>[.dlaN].<precision>.trt<version>.
//! <device>.plan`) and in a side-car `<plan>.toml`; the TensorRT engine reads them back here
//! and refuses a plan from elsewhere with one sentence naming both sides. This module needs
//! neither CUDA nor TensorRT, so it is compiled (and tested against the script's output, in
//! tests/build_trt.rs) without the `tensorrt` feature.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

/// A TensorRT version as `getInferLibVersion` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrtVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl TrtVersion {
    /// From `getInferLibVersion()`: `major * 1000 + minor * 100 + patch` up to TensorRT 9
    /// (8.5.2 is 8502), `major * 10000 + minor * 100 + patch` from TensorRT 10 on (10.3.0
    /// is 100300), as each release's `NvInferVersion.h` defines `NV_TENSORRT_VERSION`.
    pub fn from_code(code: i32) -> Self {
        let code = code.max(0) as u32;
        let (major, minors) = if code >= 100_000 {
            (code / 10_000, 100)
        } else {
            (code / 1000, 10)
        };
        Self {
            major,
            minor: code / 100 % minors,
            patch: code % 100,
        }
    }

    /// From text such as `8.5.2` or `8.5.2.2` (the fourth, build, number is ignored).
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split('.').map(|p| p.parse::<u32>().ok());
        Some(Self {
            major: parts.next()??,
            minor: parts.next()??,
            patch: parts.next().unwrap_or(Some(0))?,
        })
    }
}

impl fmt::Display for TrtVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// A plan built for another TensorRT version or GPU than this machine's.
#[derive(Debug, Error)]
#[error(
    "TensorRT plan {path} was built for TensorRT {plan_version} on {plan_device}, but this \
     machine has TensorRT {ours} on {our_device}; plans only run where they were built: \
     rebuild it here with `make engines`"
)]
pub struct PlanMismatch {
    pub path: PathBuf,
    pub plan_version: String,
    pub plan_device: String,
    pub ours: String,
    pub our_device: String,
}

/// A device name as plan file names carry it: `Xavier` -> `xavier`,
/// `NVIDIA H100 80GB HBM3` -> `h100-80gb-hbm3`.
pub fn device_slug(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    let trimmed = lower.strip_prefix("nvidia ").unwrap_or(&lower);
    let mut slug = String::new();
    for c in trimmed.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    slug.trim_end_matches('-').to_string()
}

/// What `engines/build-trt.sh` writes beside each plan (`<plan>.toml`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PlanInfo {
    #[serde(default)]
    pub tensorrt: Option<String>,
    #[serde(default)]
    pub device: Option<String>,
    /// `"7.2"` for Xavier.
    #[serde(default)]
    pub compute_capability: Option<String>,
    #[serde(default)]
    pub precision: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
}

impl PlanInfo {
    /// Reads the side-car `<plan>.toml`, else decodes the file name
    /// (`<model>.<WxH|dynamic>.<precision>.trt<version>.<device>.plan`).
    pub fn for_plan(path: &Path) -> Self {
        let mut sidecar = path.as_os_str().to_owned();
        sidecar.push(".toml");
        if let Ok(text) = fs::read_to_string(&sidecar)
            && let Ok(info) = toml::from_str::<PlanInfo>(&text)
        {
            return info;
        }
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        Self::from_file_name(name)
    }

    pub fn from_file_name(name: &str) -> Self {
        let stem = name.strip_suffix(".plan").unwrap_or(name);
        let mut info = PlanInfo::default();
        // The version has dots of its own: find the `trt<digit>` part and read on from it.
        let parts: Vec<&str> = stem.split('.').collect();
        let Some(at) = parts
            .iter()
            .position(|p| p.len() > 3 && p.starts_with("trt") && p.as_bytes()[3].is_ascii_digit())
        else {
            return info;
        };
        let mut version = vec![&parts[at][3..]];
        let mut rest = parts[at + 1..].iter();
        for p in rest.by_ref() {
            if p.chars().all(|c| c.is_ascii_digit()) {
                version.push(p);
            } else {
                info.device = Some((*p).to_string());
                break;
            }
        }
        info.tensorrt = Some(version.join("."));
        if at >= 1 {
            info.precision = Some(parts[at - 1].to_string());
        }
        info.model = parts.first().map(|m| (*m).to_string());
        info
    }

    /// Refuses a plan built for another TensorRT version or GPU. Unknown facts pass: an
    /// unlabelled plan still gets TensorRT's own check when it is deserialized.
    pub fn check(
        &self,
        path: &Path,
        ours: TrtVersion,
        device: &str,
        capability: (i32, i32),
    ) -> Result<(), PlanMismatch> {
        let our_cc = format!("{}.{}", capability.0, capability.1);
        let version_ok = match self.tensorrt.as_deref().and_then(TrtVersion::parse) {
            Some(v) => v == ours,
            None => true,
        };
        let device_ok = match (&self.compute_capability, &self.device) {
            (Some(cc), _) => *cc == our_cc,
            (None, Some(d)) => device_slug(d) == device_slug(device),
            (None, None) => true,
        };
        if version_ok && device_ok {
            return Ok(());
        }
        let plan_device = match (&self.device, &self.compute_capability) {
            (Some(d), Some(cc)) => format!("{d} (compute {cc})"),
            (Some(d), None) => d.clone(),
            (None, Some(cc)) => format!("compute {cc}"),
            (None, None) => "an unknown GPU".into(),
        };
        Err(PlanMismatch {
            path: path.into(),
            plan_version: self
                .tensorrt
                .clone()
                .unwrap_or_else(|| "an unknown version".into()),
            plan_device,
            ours: ours.to_string(),
            our_device: format!("{} (compute {our_cc})", device_slug(device)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_decode_and_parse() {
        assert_eq!(TrtVersion::from_code(8502).to_string(), "8.5.2");
        assert_eq!(TrtVersion::from_code(8601).to_string(), "8.6.1");
        assert_eq!(TrtVersion::from_code(9311).to_string(), "9.3.11");
        assert_eq!(TrtVersion::from_code(100300).to_string(), "10.3.0");
        assert_eq!(TrtVersion::from_code(101301).to_string(), "10.13.1");
        assert_eq!(
            TrtVersion::parse("8.5.2.2"),
            Some(TrtVersion::from_code(8502))
        );
        assert_eq!(TrtVersion::parse("8.6"), Some(TrtVersion::from_code(8600)));
        assert_eq!(TrtVersion::parse("x.5"), None);
    }

    #[test]
    fn plan_names_decode() {
        let i = PlanInfo::from_file_name("multistyle26.640x360.fp16.trt8.5.2.xavier.plan");
        assert_eq!(i.tensorrt.as_deref(), Some("8.5.2"));
        assert_eq!(i.device.as_deref(), Some("xavier"));
        assert_eq!(i.precision.as_deref(), Some("fp16"));
        assert_eq!(i.model.as_deref(), Some("multistyle26"));
        let none = PlanInfo::from_file_name("multistyle26.fp16.plan");
        assert!(none.tensorrt.is_none() && none.device.is_none());
    }

    #[test]
    fn other_versions_and_devices_are_refused_naming_both() {
        let ours = TrtVersion::from_code(8502);
        let p = Path::new("m.640x360.fp16.trt8.6.1.orin.plan");
        let e = PlanInfo::from_file_name("m.640x360.fp16.trt8.6.1.orin.plan")
            .check(p, ours, "Xavier", (7, 2))
            .unwrap_err()
            .to_string();
        assert!(e.contains("TensorRT 8.6.1 on orin"), "{e}");
        assert!(e.contains("TensorRT 8.5.2 on xavier (compute 7.2)"), "{e}");
        let ok = PlanInfo::from_file_name("m.640x360.fp16.trt8.5.2.xavier.plan");
        assert!(ok.check(p, ours, "Xavier", (7, 2)).is_ok());
        let cc = PlanInfo {
            compute_capability: Some("8.7".into()),
            ..ok
        };
        assert!(cc.check(p, ours, "Xavier", (7, 2)).is_err());
    }

    #[test]
    fn device_names_slug() {
        assert_eq!(device_slug("Xavier"), "xavier");
        assert_eq!(device_slug("NVIDIA H100 80GB HBM3"), "h100-80gb-hbm3");
        assert_eq!(device_slug("NVIDIA H200"), "h200");
    }
}
