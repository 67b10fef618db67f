//! The governor's ladder: rungs (model, size, frame skipping), the default ladders, the
//! `[governor] ladder` entries (`WxH`, `MODEL@WxH`) and building a run's ladder from plain
//! values (`Governor::for_run`). The decisions on it are the parent module's.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::Governor;
use crate::frame::Size;

/// One rung: the model (an index into the governor's [`Governor::models`]; 0 is the
/// configured one), the inference size and how often a frame is stylized (1 = every frame).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Rung {
    pub size: [u32; 2],
    pub every: u32,
    pub model: usize,
}

impl Rung {
    pub(super) fn pixels(&self) -> f64 {
        self.size[0] as f64 * self.size[1] as f64
    }
}

/// A model a ladder may hold: its name and its cost per pixel relative to the configured
/// model's (1.0 for that one; e.g. 0.3 for a student three times as fast).
#[derive(Clone, Debug, PartialEq)]
pub struct LadderModel {
    pub name: String,
    pub cost: f64,
}

/// A `[governor] ladder` entry: a size, and the model to run there (`None`: the configured
/// one). Written `640x360` or `live-style19@640x360`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LadderEntry {
    pub model: Option<String>,
    pub size: Size,
}

impl std::str::FromStr for LadderEntry {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let (model, size) = match text.rsplit_once('@') {
            Some((m, s)) if !m.trim().is_empty() => (Some(m.trim().to_string()), s),
            Some(_) => return Err(format!("ladder entry {text:?} has no model before @")),
            None => (None, text),
        };
        let size = size
            .trim()
            .parse::<Size>()
            .map_err(|e| format!("ladder entry {text:?}: {e}"))?;
        Ok(Self { model, size })
    }
}

impl<'de> Deserialize<'de> for LadderEntry {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Display for LadderEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.model {
            Some(m) => write!(f, "{m}@{}x{}", self.size.width, self.size.height),
            None => write!(f, "{}x{}", self.size.width, self.size.height),
        }
    }
}

/// The ladder for a configured size: full, 80 %, 60 % (sides multiples of 8), then the
/// smallest size on every 2nd frame.
pub fn default_ladder(full: Size) -> Vec<Rung> {
    let scaled = |f: f64| {
        let side = |v: u32| (((v as f64 * f) / 8.0).round() as u32 * 8).max(16);
        [side(full.width), side(full.height)]
    };
    let mut rungs = vec![Rung {
        size: [full.width, full.height],
        every: 1,
        model: 0,
    }];
    for f in [0.8, 0.6] {
        let size = scaled(f);
        if rungs.last().is_some_and(|r| r.size != size) {
            rungs.push(Rung {
                size,
                every: 1,
                model: 0,
            });
        }
    }
    let smallest = rungs.last().map_or([full.width, full.height], |r| r.size);
    rungs.push(Rung {
        size: smallest,
        every: 2,
        model: 0,
    });
    rungs
}

/// The default ladder when a student of the running style is at hand (model 1): the
/// configured model at full size, then the student at full size and down the
/// [`default_ladder`] (a student at full size looks better than its teacher shrunk).
pub fn student_ladder(full: Size) -> Vec<Rung> {
    let mut rungs = vec![Rung {
        size: [full.width, full.height],
        every: 1,
        model: 0,
    }];
    rungs.extend(
        default_ladder(full)
            .into_iter()
            .map(|r| Rung { model: 1, ..r }),
    );
    rungs
}

/// What the ladder of one run is built from: plain values from the config and the engine.
#[derive(Clone, Debug)]
pub struct LadderSpec<'a> {
    /// The configured inference size (the top rung).
    pub full: Size,
    /// `[governor] ladder`, largest first; `None` for [`default_ladder`] (or
    /// [`student_ladder`] with a student).
    pub ladder: Option<&'a [LadderEntry]>,
    /// The configured model (its cost is 1.0 by definition).
    pub model: &'a str,
    /// Other models a rung may run now, with their costs: the students of the running
    /// style. Configured entries naming any other model are skipped; the first one is the
    /// student of the default ladder.
    pub students: &'a [LadderModel],
    /// A network that runs at one size only: its input (the ladder then only skips frames).
    pub fixed_input: Option<[u32; 2]>,
    /// `[governor] enabled`; when false the governor stays on the top rung.
    pub enabled: bool,
    /// `[governor] pin`.
    pub pin: Option<usize>,
}

impl Governor {
    /// The governor for a run: the configured or default ladder (a configured ladder gets a
    /// frame-skipping rung below its last size), pinned to the top when the governor is off,
    /// and one size with frame skipping for fixed-size networks.
    /// A configured ladder's entries naming a model that is not the configured one nor a
    /// student of the running style are left out (and listed in the log by the caller).
    pub fn for_run(spec: &LadderSpec, budget_ms: f64, budget_w: f64, now: Instant) -> Self {
        let mut models = vec![LadderModel {
            name: spec.model.to_string(),
            cost: 1.0,
        }];
        let students = if spec.fixed_input.is_some() {
            &[][..]
        } else {
            spec.students
        };
        models.extend(students.iter().cloned());
        let index = |name: &Option<String>| match name {
            None => Some(0),
            Some(n) => models.iter().position(|m| &m.name == n),
        };
        let mut rungs: Vec<Rung> = match spec.ladder {
            Some(entries) => entries
                .iter()
                .filter_map(|e| {
                    Some(Rung {
                        size: [e.size.width, e.size.height],
                        every: 1,
                        model: index(&e.model)?,
                    })
                })
                .collect(),
            None if models.len() > 1 => student_ladder(spec.full),
            None => default_ladder(spec.full),
        };
        if spec.ladder.is_some()
            && let Some(last) = rungs.last().copied()
        {
            rungs.push(Rung { every: 2, ..last });
        }
        if let Some(size) = spec.fixed_input {
            rungs = vec![
                Rung {
                    size,
                    every: 1,
                    model: 0,
                },
                Rung {
                    size,
                    every: 2,
                    model: 0,
                },
            ];
        }
        let pin = if spec.enabled { spec.pin } else { Some(0) };
        let mut g = Governor::new(rungs, budget_ms, budget_w, pin, now);
        g.models = models;
        g
    }

    /// The models the rungs index (0: the configured one).
    pub fn models(&self) -> &[LadderModel] {
        &self.models
    }

    /// The rungs, top first.
    pub fn rungs(&self) -> &[Rung] {
        &self.rungs
    }

    /// A rung's work per frame: pixels times its model's relative cost.
    pub(super) fn work(&self, r: Rung) -> f64 {
        let cost = self.models.get(r.model).map_or(1.0, |m| m.cost);
        r.pixels() * cost
    }
}
