//! The recorder: encoded H.264 in, crash-safe Matroska segments on disk out.
//!
//! A pipeline of its own (`appsrc -> h264parse -> splitmuxsink(matroskamux)`), fed by the
//! output pipeline, so that a failing disk stops only the recording: streaming goes on and
//! the error is reported. Matroska is written as it goes, so a file cut by `kill -9`
//! decodes up to its last cluster. Segments are named after the start time and index,
//! rotate by time and size, and the oldest recordings with the same name are deleted only
//! once the total passes the configured disk budget.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::SinkError;
use crate::config::OutputConfig;
use crate::media::bus::BusError;

/// `out/stylized.mkv` -> `out/stylized-20261128-101500-%05d.mkv`: every start writes new
/// segments, so nothing overwrites an earlier recording.
pub fn segment_pattern(path: &Path, started: SystemTime) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "stylized".into());
    let secs = started
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    let name = format!(
        "{stem}-{y:04}{m:02}{d:02}-{:02}{:02}{:02}-%05d.mkv",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    path.with_file_name(name)
}

/// A wall-clock time as UTC RFC 3339, to the second (`2026-12-01T10:40:00Z`).
pub fn utc_rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a (year, month, day) in UTC (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { 1 } else { 0 } + yoe + era * 400, m, d)
}

/// Deletes the oldest `<stem>-*.mkv` files in `dir` until their total is at most
/// `budget` bytes, never touching `keep`. Returns the deleted paths.
pub fn prune(dir: &Path, stem: &str, budget: u64, keep: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let prefix = format!("{stem}-");
    let mut files: Vec<(PathBuf, u64)> = entries
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with(&prefix) && name.ends_with(".mkv")
        })
        .filter_map(|e| Some((e.path(), e.metadata().ok()?.len())))
        .collect();
    // Names carry the start time and index, so name order is age order.
    files.sort();
    let mut total: u64 = files.iter().map(|(_, n)| n).sum();
    let mut deleted = Vec::new();
    for (path, size) in files {
        if total <= budget {
            break;
        }
        if path == keep {
            continue;
        }
        if std::fs::remove_file(&path).is_ok() {
            total -= size;
            deleted.push(path);
        }
    }
    deleted
}

pub struct Recorder {
    pipeline: gst::Pipeline,
    appsrc: gst_app::AppSrc,
    pattern: PathBuf,
    /// Set once the recording failed; streaming goes on without it.
    failed: Arc<Mutex<Option<String>>>,
}

impl Recorder {
    pub fn start(path: &Path, cfg: &OutputConfig) -> Result<Self, SinkError> {
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|source| SinkError::Folder {
            path: dir.into(),
            source,
        })?;
        let mut pattern = segment_pattern(path, SystemTime::now());
        // Two starts within one second would share names: never overwrite a recording.
        let mut n = 1;
        while pattern
            .to_string_lossy()
            .replace("%05d", "00000")
            .parse::<PathBuf>()
            .is_ok_and(|p| p.exists())
        {
            n += 1;
            let base = segment_pattern(path, SystemTime::now());
            pattern = PathBuf::from(
                base.to_string_lossy()
                    .replace("-%05d", &format!("-{n}-%05d")),
            );
        }
        let build = |m: String| SinkError::Build(format!("recorder: {m}"));
        let pipeline = gst::parse::launch(
            "appsrc name=h264 format=time is-live=true \
               caps=video/x-h264,stream-format=byte-stream,alignment=au ! h264parse ! queue name=recq",
        )
        .map_err(|e| build(e.to_string()))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| build("not a pipeline".into()))?;
        let mux = gst::ElementFactory::make("matroskamux")
            .build()
            .map_err(|_| build("matroskamux missing".into()))?;
        let split = gst::ElementFactory::make("splitmuxsink")
            .name("recorder")
            .property("max-size-time", cfg.segment_s as u64 * 1_000_000_000)
            .property("max-size-bytes", cfg.segment_mb * 1024 * 1024)
            .property("send-keyframe-requests", cfg.segment_mb == 0)
            .property("muxer", &mux)
            .build()
            .map_err(|_| build("splitmuxsink missing".into()))?;
        let (name_pattern, stem) = (pattern.to_string_lossy().into_owned(), stem_of(path));
        let budget = cfg.max_disk_mb * 1024 * 1024;
        let dir_owned = dir.to_path_buf();
        split.connect("format-location", false, move |args| {
            let index = args.get(1).and_then(|v| v.get::<u32>().ok()).unwrap_or(0);
            let name = name_pattern.replace("%05d", &format!("{index:05}"));
            if budget > 0 {
                for old in prune(&dir_owned, &stem, budget, Path::new(&name)) {
                    tracing::info!(deleted = %old.display(), "recording over the disk budget; deleted the oldest segment");
                }
            }
            Some(name.to_value())
        });
        pipeline.add(&split).map_err(|e| build(e.to_string()))?;
        let queue = pipeline
            .by_name("recq")
            .ok_or_else(|| build("no queue".into()))?;
        queue.link(&split).map_err(|e| build(e.to_string()))?;
        let appsrc = pipeline
            .by_name("h264")
            .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
            .ok_or_else(|| build("no appsrc".into()))?;
        appsrc.set_property("block", false);
        appsrc.set_max_bytes(64 * 1024 * 1024);
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|_| build("cannot start".into()))?;
        Ok(Self {
            pipeline,
            appsrc,
            pattern,
            failed: Arc::default(),
        })
    }

    pub fn pattern(&self) -> &Path {
        &self.pattern
    }

    /// Why recording stopped, if it did.
    pub fn failure(&self) -> Option<String> {
        self.failed.lock().ok()?.clone()
    }

    /// Takes one encoded access unit; after a failure, drops it.
    pub fn push(&self, buffer: gst::Buffer) {
        if self.check().is_some() {
            return;
        }
        if let Err(e) = self.appsrc.push_buffer(buffer) {
            self.fail(format!("recorder refused data: {e:?}"));
        }
    }

    /// Checks the recorder's bus; a failure stops recording once and is remembered.
    fn check(&self) -> Option<String> {
        if let Some(f) = self.failure() {
            return Some(f);
        }
        let e = BusError::pending(&self.pipeline)?;
        self.fail(if e.no_space {
            format!("recording stopped: disk full (ENOSPC): {e}")
        } else {
            format!("recording stopped: {e}")
        });
        self.failure()
    }

    fn fail(&self, why: String) {
        let mut failed = self.failed.lock().unwrap_or_else(|p| p.into_inner());
        if failed.is_none() {
            tracing::error!(reason = %why, "recording stopped; streaming continues");
            *failed = Some(why);
            // Stop writing; the pipeline goes to Null on drop.
            let _ = self.pipeline.set_state(gst::State::Null);
        }
    }

    /// Closes the current segment cleanly (EOS), waiting at most `timeout`.
    pub fn finish(&self, timeout: Duration) -> Result<(), SinkError> {
        if self.failure().is_some() {
            return Ok(());
        }
        let _ = self.appsrc.end_of_stream();
        match BusError::wait_eos(&self.pipeline, timeout) {
            Ok(true) => Ok(()),
            Ok(false) => Err(SinkError::Push(format!(
                "recording did not close within {timeout:?}"
            ))),
            Err(e) => Err(e.into()),
        }
    }
}

fn stem_of(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "stylized".into())
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_carry_the_start_time() {
        // 2026-11-28 10:15:00 UTC
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_860_900);
        let p = segment_pattern(Path::new("out/stylized.mkv"), t);
        assert_eq!(p, Path::new("out/stylized-20261128-101500-%05d.mkv"));
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    }

    #[test]
    fn prune_deletes_oldest_first_and_only_past_the_budget() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for (name, len) in [
            ("cam-20261101-000000-00000.mkv", 100),
            ("cam-20261101-000000-00001.mkv", 100),
            ("cam-20261102-000000-00000.mkv", 100),
            ("other-20261101-000000-00000.mkv", 500),
            ("cam-notes.txt", 500),
        ] {
            std::fs::write(d.join(name), vec![0u8; len]).unwrap();
        }
        let keep = d.join("cam-20261102-000000-00000.mkv");
        assert!(
            prune(d, "cam", 300, &keep).is_empty(),
            "within budget: nothing deleted"
        );
        let deleted = prune(d, "cam", 150, &keep);
        let names: Vec<_> = deleted
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "cam-20261101-000000-00000.mkv",
                "cam-20261101-000000-00001.mkv"
            ]
        );
        assert!(keep.exists() && d.join("other-20261101-000000-00000.mkv").exists());
        // The segment being written is never deleted, even over budget.
        assert!(prune(d, "cam", 0, &keep).is_empty());
    }
}
