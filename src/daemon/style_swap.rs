//! Arbitrary-style engines: built on their own thread from a picture, swapped in between
//! frames, and the configured model's engine parked meanwhile so a named style can bring it
//! back. The frame loop asks and applies; this module owns the parked engine and the
//! channel the builder threads answer on. It never touches frames or the sink.

use std::path::PathBuf;
use std::thread;

use crossbeam_channel::{Receiver, Sender};
use tokio::sync::oneshot;

use crate::config::EngineConfig;
use crate::control::Reply;
use crate::engine::{Engine, EngineError};

/// A new engine (or the reason there is none) and who asked for it.
pub struct Swap {
    pub engine: Result<Box<dyn Engine>, EngineError>,
    /// What the status shows as the style (`image:/a.jpg`, `image:/a.jpg+/b.jpg:0.3`).
    pub label: String,
    pub reply: oneshot::Sender<Reply>,
}

pub struct StyleSwaps {
    /// The configured model's engine while an arbitrary-style engine is swapped in.
    parked: Option<Box<dyn Engine>>,
    ready: (Sender<Swap>, Receiver<Swap>),
}

impl Default for StyleSwaps {
    fn default() -> Self {
        Self {
            parked: None,
            ready: crossbeam_channel::unbounded(),
        }
    }
}

impl StyleSwaps {
    /// Builds an arbitrary-style engine for `image` (optionally interpolated with a second
    /// picture) on its own thread; it arrives through [`StyleSwaps::next_ready`].
    pub fn build(
        &self,
        base: &EngineConfig,
        image: PathBuf,
        and: Option<(PathBuf, f32)>,
        reply: oneshot::Sender<Reply>,
    ) {
        let base = base.clone();
        let tx = self.ready.0.clone();
        let label = match &and {
            Some((b, w)) => format!("image:{}+{}:{w}", image.display(), b.display()),
            None => format!("image:{}", image.display()),
        };
        let spawned = thread::Builder::new()
            .name("style-builder".into())
            .spawn(move || {
                let engine = crate::engine::arbitrary::engine_for(
                    &base,
                    &image,
                    and.as_ref().map(|(p, w)| (p.as_path(), *w)),
                );
                let _ = tx.send(Swap {
                    engine,
                    label,
                    reply,
                });
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the style builder");
        }
    }

    /// A finished build, if one is waiting.
    pub fn next_ready(&self) -> Option<Swap> {
        self.ready.1.try_recv().ok()
    }

    /// Puts `new` in place of `current`, parking the configured engine (once).
    pub fn swap_in(&mut self, current: &mut Box<dyn Engine>, new: Box<dyn Engine>) {
        let old = std::mem::replace(current, new);
        if self.parked.is_none() {
            self.parked = Some(old);
        }
    }

    /// Whether a picture's style (an arbitrary-style engine) is running now.
    pub fn picture_style_running(&self) -> bool {
        self.parked.is_some()
    }

    /// The engine a named style applies to: the parked configured engine if an arbitrary
    /// one is in use, else `current`.
    pub fn named_target<'a>(
        &'a mut self,
        current: &'a mut Box<dyn Engine>,
    ) -> &'a mut Box<dyn Engine> {
        self.parked.as_mut().unwrap_or(current)
    }

    /// After a named style was applied: brings the parked configured engine back. True when
    /// the engine changed.
    pub fn restore(&mut self, current: &mut Box<dyn Engine>) -> bool {
        match self.parked.take() {
            Some(original) => {
                *current = original;
                true
            }
            None => false,
        }
    }
}
