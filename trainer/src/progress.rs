//! Where a training run (`train`, `distill`) keeps its checkpoint, and how often it logs, saves
//! it and writes its preview: every N steps and at the last step.

use std::path::{Path, PathBuf};

/// A run's checkpoint, preview and log cadence.
#[derive(Debug, Clone)]
pub struct Progress {
    pub checkpoint: PathBuf,
    pub checkpoint_every: u64,
    /// Continue from `checkpoint` if it exists.
    pub resume: bool,
    pub preview: Option<PathBuf>,
    pub preview_every: u64,
    pub log_every: u64,
}

/// Whether `step` of `steps` is an `every`-th step (every 0 counts as 1) or the last.
fn due(every: u64, step: u64, steps: u64) -> bool {
    step.is_multiple_of(every.max(1)) || step == steps
}

impl Progress {
    /// Whether step `step` of `steps` logs its loss.
    pub fn log_at(&self, step: u64, steps: u64) -> bool {
        due(self.log_every, step, steps)
    }

    /// Whether step `step` of `steps` saves the checkpoint.
    pub fn checkpoint_at(&self, step: u64, steps: u64) -> bool {
        due(self.checkpoint_every, step, steps)
    }

    /// The preview's path when step `step` of `steps` writes one.
    pub fn preview_at(&self, step: u64, steps: u64) -> Option<&Path> {
        self.preview
            .as_deref()
            .filter(|_| due(self.preview_every, step, steps))
    }

    /// The checkpoint to continue from: `checkpoint` when resuming and it exists.
    pub fn resume_from(&self) -> Option<&Path> {
        (self.resume && self.checkpoint.exists()).then_some(self.checkpoint.as_path())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_nth_step_and_the_last() {
        let p = Progress {
            checkpoint: PathBuf::from("/nonexistent/ck.safetensors"),
            checkpoint_every: 50,
            resume: true,
            preview: Some(PathBuf::from("p.png")),
            preview_every: 0,
            log_every: 20,
        };
        let at = |f: &dyn Fn(u64) -> bool| (1..=70).filter(|&s| f(s)).collect::<Vec<_>>();
        assert_eq!(at(&|s| p.log_at(s, 70)), [20, 40, 60, 70]);
        assert_eq!(at(&|s| p.checkpoint_at(s, 70)), [50, 70]);
        assert_eq!(at(&|s| p.preview_at(s, 70).is_some()).len(), 70);
        let none = Progress {
            preview: None,
            ..p.clone()
        };
        assert_eq!(none.preview_at(70, 70), None);
        assert_eq!(p.resume_from(), None, "no checkpoint there");
    }
}
