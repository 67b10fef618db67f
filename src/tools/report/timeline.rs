//! The `--timeline` file of `stylerd run`: one status document per line plus `"t"`.
//!
//! Owns reading it into [`Sample`]s with only the fields the report plots, tolerant of
//! fields that are absent or null (a daemon without a power sensor or without the governor
//! writes fewer), strict about lines that are not JSON objects. No plotting here.

use std::path::{Path, PathBuf};

use serde_json::Value;
use thiserror::Error;

/// The stages of the data path, in order, as the status document names them.
pub const STAGES: [&str; 5] = ["queue_wait", "pre_process", "infer", "post_process", "push"];

#[derive(Debug, Error)]
pub enum TimelineError {
    #[error("cannot read timeline {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error(
        "timeline {path} line {line} is not a status document (a JSON object per line, as \
         `stylerd run --timeline` writes): {message}"
    )]
    Line {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("timeline {0} has no samples; run the daemon longer than one second")]
    Empty(PathBuf),
}

/// The governor's state in one sample.
#[derive(Clone, Debug, PartialEq)]
pub struct GovernorSample {
    pub level: u64,
    /// The rung's model (absent from timelines written before model rungs).
    pub model: Option<String>,
    pub size: Option<[u64; 2]>,
    pub skip: Option<u64>,
    pub reason: String,
}

/// One line of the timeline, reduced to what the report uses.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub t: f64,
    pub fps_out: Option<f64>,
    pub g2g_p50: Option<f64>,
    pub g2g_p95: Option<f64>,
    /// p50 and p95 of each of [`STAGES`].
    pub stages: [(Option<f64>, Option<f64>); 5],
    pub power_w: Option<f64>,
    pub power_source: Option<String>,
    pub budget_power_w: Option<f64>,
    pub budget_latency_ms: Option<f64>,
    pub governor: Option<GovernorSample>,
}

fn num(doc: &Value, pointer: &str) -> Option<f64> {
    doc.pointer(pointer).and_then(Value::as_f64)
}

impl Sample {
    pub fn from_json(doc: &Value) -> Result<Self, String> {
        if !doc.is_object() {
            return Err("not a JSON object".into());
        }
        let t = num(doc, "/t")
            .or_else(|| num(doc, "/uptime_s"))
            .ok_or("no \"t\" (seconds since start)")?;
        let stage = |name: &str| {
            (
                num(doc, &format!("/latency_ms/stages/{name}/p50")),
                num(doc, &format!("/latency_ms/stages/{name}/p95")),
            )
        };
        let governor = doc.get("governor").filter(|g| g.is_object()).and_then(|g| {
            Some(GovernorSample {
                level: g.get("level")?.as_u64()?,
                model: g
                    .get("model")
                    .and_then(Value::as_str)
                    .filter(|m| !m.is_empty())
                    .map(str::to_string),
                size: g
                    .get("size")
                    .and_then(|s| Some([s.get(0)?.as_u64()?, s.get(1)?.as_u64()?])),
                skip: g.get("skip").and_then(Value::as_u64),
                reason: g
                    .get("reason")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            })
        });
        Ok(Sample {
            t,
            fps_out: num(doc, "/fps/out"),
            g2g_p50: num(doc, "/latency_ms/glass_to_glass/p50"),
            g2g_p95: num(doc, "/latency_ms/glass_to_glass/p95"),
            stages: STAGES.map(stage),
            power_w: num(doc, "/power/total_w"),
            power_source: doc
                .pointer("/power/source")
                .and_then(Value::as_str)
                .map(str::to_string),
            budget_power_w: num(doc, "/budget/power_w"),
            budget_latency_ms: num(doc, "/budget/latency_ms"),
            governor,
        })
    }
}

/// Reads every non-empty line of `path`.
pub fn read(path: &Path) -> Result<Vec<Sample>, TimelineError> {
    let text = std::fs::read_to_string(path).map_err(|e| TimelineError::Read {
        path: path.into(),
        message: e.to_string(),
    })?;
    parse(path, &text)
}

pub fn parse(path: &Path, text: &str) -> Result<Vec<Sample>, TimelineError> {
    let mut samples = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |message: String| TimelineError::Line {
            path: path.into(),
            line: i + 1,
            message,
        };
        let doc: Value = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
        samples.push(Sample::from_json(&doc).map_err(bad)?);
    }
    if samples.is_empty() {
        return Err(TimelineError::Empty(path.into()));
    }
    Ok(samples)
}

/// `(t, value)` points of one field, skipping samples where it is missing.
pub fn points(samples: &[Sample], field: impl Fn(&Sample) -> Option<f64>) -> Vec<(f64, f64)> {
    samples
        .iter()
        .filter_map(|s| Some((s.t, field(s)?)))
        .collect()
}

/// The governor's changes of level: the first sample, then every sample whose level,
/// model, size or skip differs from the one before.
pub fn governor_changes(samples: &[Sample]) -> Vec<(f64, &GovernorSample)> {
    let mut out: Vec<(f64, &GovernorSample)> = Vec::new();
    for s in samples {
        let Some(g) = &s.governor else { continue };
        let changed = out.last().is_none_or(|(_, prev)| {
            (prev.level, &prev.model, prev.size, prev.skip) != (g.level, &g.model, g.size, g.skip)
        });
        if changed {
            out.push((s.t, g));
        }
    }
    out
}

/// Mean of the present values; `None` when there are none.
pub fn mean(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let (sum, n) = values
        .flatten()
        .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_and_tolerates_missing_ones() {
        let text = r#"{"t":1.0,"fps":{"out":12.5},"latency_ms":{"glass_to_glass":{"p50":20,"p95":31.5},"stages":{"infer":{"p50":18.0,"p95":22.0}}},"power":{"source":"none","total_w":null},"budget":{"latency_ms":30,"power_w":15},"governor":{"level":1,"size":[512,288],"skip":1,"reason":"p95 over budget","steps":1}}

{"t":2.0,"fps":{"out":13.0}}"#;
        let s = parse(Path::new("x"), text).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].g2g_p95, Some(31.5));
        assert_eq!(s[0].stages[2], (Some(18.0), Some(22.0)));
        assert_eq!(s[0].power_w, None);
        assert_eq!(s[0].governor.as_ref().unwrap().size, Some([512, 288]));
        assert_eq!(s[0].governor.as_ref().unwrap().model, None);
        assert_eq!(s[1].governor, None);
        assert_eq!(governor_changes(&s).len(), 1);
    }

    #[test]
    fn a_change_of_model_at_the_same_size_is_a_governor_change() {
        let text = r#"{"t":1.0,"governor":{"level":0,"model":"multistyle26","size":[640,360],"skip":1,"reason":"start"}}
{"t":2.0,"governor":{"level":0,"model":"multistyle26","size":[640,360],"skip":1,"reason":"start"}}
{"t":3.0,"governor":{"level":1,"model":"live-style19-int8","size":[640,360],"skip":1,"reason":"down"}}"#;
        let s = parse(Path::new("x"), text).unwrap();
        let changes = governor_changes(&s);
        let models: Vec<_> = changes
            .iter()
            .map(|(t, g)| (*t, g.model.as_deref()))
            .collect();
        assert_eq!(
            models,
            vec![
                (1.0, Some("multistyle26")),
                (3.0, Some("live-style19-int8"))
            ]
        );
    }

    #[test]
    fn names_the_bad_line() {
        let e = parse(Path::new("tl.jsonl"), "{\"t\":1}\nnot json\n").unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
        assert!(matches!(
            parse(Path::new("tl"), "\n"),
            Err(TimelineError::Empty(_))
        ));
    }
}
