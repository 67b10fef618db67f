//! Model rungs (issue 13): the students of the running style that the governor may run in
//! place of the configured model (manifests saying `student-of` it and `student-style` the
//! style now running, not a blend, or `all`: a conditional student fed the running style
//! vector, for any style or blend), their engines, and what each costs per pixel, timed here
//! on the configured size so the governor can compare rungs of different models; and
//! `stylize`, which runs a frame on the rung's engine.

use std::collections::HashMap;
use std::time::Instant;

use super::FrameLoop;
use crate::engine::{self, Engine, StageTimes};
use crate::frame::{RgbImage, resize_bilinear};
use crate::governor::{Governor, LadderModel, LadderSpec, Rung};
use crate::model::Manifest;
use crate::style::StyleSpec;
use stylerd_manifest::ALL_STYLES;

/// Students' engines, opened once, and each model's time per frame at the configured size.
#[derive(Default)]
pub struct Students {
    engines: HashMap<String, Box<dyn Engine>>,
    ms: HashMap<(String, [u32; 2]), f64>,
}

impl Students {
    pub fn engine(&mut self, name: &str) -> Option<&mut Box<dyn Engine>> {
        self.engines.get_mut(name)
    }
}

/// The running style as one of `names` when it is exactly one style (no blend).
pub fn single_style(spec: &StyleSpec, names: &[String]) -> Option<String> {
    let w = spec.weights(names).ok()?;
    let k = w.iter().position(|v| *v > 0.999)?;
    Some(names[k].clone())
}

/// `engine` on a grey `w`x`h` frame: the faster of 2 timed runs after a warm-up, in ms.
fn time_engine(engine: &mut dyn Engine, [w, h]: [u32; 2]) -> Option<f64> {
    let frame = RgbImage {
        width: w,
        height: h,
        data: vec![128; (w * h * 3) as usize],
    };
    let mut times = StageTimes::default();
    engine.stylize(&frame, &mut times).ok()?;
    let mut best = f64::INFINITY;
    for _ in 0..2 {
        let t = Instant::now();
        engine.stylize(&frame, &mut times).ok()?;
        best = best.min(t.elapsed().as_secs_f64() * 1000.0);
    }
    Some(best)
}

impl FrameLoop {
    /// The governor for this run, engine and running style (see [`Governor::for_run`]),
    /// opening and timing the students its rungs run.
    pub(super) fn build_governor(&mut self) -> Governor {
        let students = self.ladder_students();
        self.governor_with(&students)
    }

    /// The governor for this run with `students` (from [`Self::ladder_students`]).
    fn governor_with(&self, students: &[LadderModel]) -> Governor {
        let config = &self.cx.config;
        let info = self.cx.engine.info();
        if let Some(entries) = &config.governor.ladder {
            for e in entries {
                if let Some(m) = &e.model
                    && *m != info.model
                    && !students.iter().any(|s| s.name == *m)
                {
                    tracing::warn!(
                        rung = %e,
                        "governor rung left out: {m} is not a student of {} for the running style",
                        info.model
                    );
                }
            }
        }
        let spec = LadderSpec {
            full: config.engine.size,
            ladder: config.governor.ladder.as_deref(),
            model: &info.model,
            students,
            fixed_input: (!self.cx.engine.any_size()).then_some(info.input),
            enabled: config.governor_enabled(),
            pin: config.governor.pin,
        };
        let m = &config.monitor;
        let g = Governor::for_run(&spec, m.budget_latency_ms, m.budget_power_w, Instant::now());
        if g.models().len() > 1 {
            let rungs: Vec<String> = g
                .rungs()
                .iter()
                .map(|r| {
                    let every = if r.every > 1 {
                        format!(" every {}", r.every)
                    } else {
                        String::new()
                    };
                    format!(
                        "{}@{}x{}{every}",
                        g.models()[r.model].name,
                        r.size[0],
                        r.size[1]
                    )
                })
                .collect();
            tracing::info!(ladder = %rungs.join(" -> "), "governor ladder with model rungs");
        }
        g
    }

    /// The students a ladder may run now, with their costs relative to the configured
    /// model: for the default ladder the fastest one (timed here), for a configured one
    /// those it names. A student of the running style (not a blend) comes first; a student of
    /// all styles (`student-style = "all"`, the teacher's style vector as input) stands in
    /// for any style or blend of the teacher, and is fed the running one. Empty when
    /// students are off, a picture's style runs, or the network is fixed-size.
    fn ladder_students(&mut self) -> Vec<LadderModel> {
        let config = &self.cx.config;
        if !config.governor.students
            || self.swaps.picture_style_running()
            || !self.cx.engine.any_size()
        {
            return Vec::new();
        }
        let teacher = self.cx.engine.info().model.clone();
        let Ok(spec) = StyleSpec::parse(&self.cx.shared.state().style) else {
            return Vec::new();
        };
        let styles = self.cx.engine.styles().to_vec();
        let style = single_style(&spec, &styles);
        let size = config.engine.size;
        let manifests: Vec<Manifest> = Manifest::list(&config.engine.models_dir)
            .unwrap_or_default()
            .into_iter()
            .filter(|m| {
                m.student_of.as_deref() == Some(teacher.as_str())
                    && m.accepts(size.width, size.height).is_ok()
            })
            .collect();
        let of_style = |m: &&Manifest| style.is_some() && m.student_style == style;
        let of_all = |m: &&Manifest| {
            m.student_style.as_deref() == Some(ALL_STYLES)
                && !styles.is_empty()
                && m.styles == styles
        };
        let names = |keep: &dyn Fn(&&Manifest) -> bool| -> Vec<(String, bool)> {
            manifests
                .iter()
                .filter(keep)
                .map(|m| (m.name.clone(), of_all(&m)))
                .collect()
        };
        let configured = config.governor.ladder.is_some();
        let wanted: Vec<(String, bool)> = match &config.governor.ladder {
            Some(entries) => names(&|m| of_style(m) || of_all(m))
                .into_iter()
                .filter(|(c, _)| entries.iter().any(|e| e.model.as_deref() == Some(c)))
                .collect(),
            // The default ladder prefers the running style's own students.
            None => match names(&of_style) {
                own if own.is_empty() => names(&of_all),
                own => own,
            },
        };
        if wanted.is_empty() {
            return Vec::new();
        }
        let full = [size.width, size.height];
        let Some(teacher_ms) = self.model_ms(&teacher, full) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (name, all_styles) in wanted {
            // A student of all styles runs the spec now running; one of a style, its only one.
            let fed = if all_styles {
                spec.clone()
            } else {
                StyleSpec::parse("0").unwrap_or_else(|_| spec.clone())
            };
            let ready = match self.students.engines.get_mut(&name) {
                Some(e) if all_styles => e.set_style(&fed).map_err(|e| e.to_string()),
                Some(_) => Ok(()),
                None => {
                    let mut ec = self.cx.config.engine.clone();
                    ec.model = name.clone();
                    ec.plan = None;
                    engine::open(&ec, &fed)
                        .map(|e| {
                            self.students.engines.insert(name.clone(), e);
                        })
                        .map_err(|e| e.to_string())
                }
            };
            if let Err(e) = ready {
                tracing::warn!(model = %name, error = %e, "student not opened; its rungs are left out");
                continue;
            }
            if let Some(ms) = self.model_ms(&name, full) {
                tracing::info!(
                    student = %name,
                    teacher = %teacher,
                    "{name} {ms:.1} ms, {teacher} {teacher_ms:.1} ms a frame at {}x{}",
                    full[0],
                    full[1]
                );
                out.push(LadderModel {
                    name,
                    cost: ms / teacher_ms.max(1e-3),
                });
            }
        }
        if !configured {
            // The default ladder runs the fastest student (e.g. the INT8 one).
            out.sort_by(|a, b| a.cost.total_cmp(&b.cost));
            out.truncate(1);
        }
        out
    }

    /// `name`'s time per frame at `size` (timed once, then remembered).
    fn model_ms(&mut self, name: &str, size: [u32; 2]) -> Option<f64> {
        let key = (name.to_string(), size);
        if let Some(ms) = self.students.ms.get(&key) {
            return Some(*ms);
        }
        let engine = if name == self.cx.engine.info().model {
            self.cx.engine.as_mut()
        } else {
            self.students.engines.get_mut(name)?.as_mut()
        };
        let ms = time_engine(engine, size)?;
        self.students.ms.insert(key, ms);
        Some(ms)
    }

    /// Runs the rung's engine (the configured one, or a student's) at the rung's size (or
    /// the engine's fixed size), scaling around it.
    pub(super) fn stylize(
        &mut self,
        image: &RgbImage,
        rung: Rung,
        times: &mut StageTimes,
    ) -> Result<RgbImage, crate::engine::EngineError> {
        let student = match self.governor.models().get(rung.model) {
            Some(m) if rung.model > 0 => self.students.engine(&m.name),
            _ => None,
        };
        let engine = match student {
            Some(e) => e.as_mut(),
            None => self.cx.engine.as_mut(),
        };
        let [w, h] = if engine.any_size() {
            rung.size
        } else {
            engine.info().input
        };
        if (w, h) == (image.width, image.height) {
            return engine.stylize(image, times);
        }
        let small = resize_bilinear(image, w, h);
        let out = engine.stylize(&small, times)?;
        Ok(resize_bilinear(&out, image.width, image.height))
    }

    /// After a style change: a new governor when the students for the new style differ.
    pub(super) fn students_follow_style(&mut self) {
        let students = self.ladder_students();
        let running = self.governor.models()[1..].iter().map(|m| &m.name);
        if !running.eq(students.iter().map(|m| &m.name)) {
            // The students just looked up (and timed): not a second pass over the manifests.
            let mut governor = self.governor_with(&students);
            // From one student to another: keep the rung's size on the new student rather
            // than run the teacher again (seconds of slow frames after every style change).
            if governor.carry_rung_from(&self.governor, Instant::now()) {
                let r = governor.rung();
                tracing::info!(
                    model = %governor.models()[r.model].name,
                    size = %format!("{}x{}", r.size[0], r.size[1]),
                    "governor rung carried over to the new style's student"
                );
            }
            self.governor = governor;
            let status = self.governor.status();
            self.cx.shared.update(|s| s.governor = Some(status));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_single_style_has_students() {
        let names: Vec<String> = (0..3).map(|i| format!("style-{i}")).collect();
        let single = |text: &str| single_style(&StyleSpec::parse(text).unwrap(), &names);
        assert_eq!(single("1").as_deref(), Some("style-1"));
        assert_eq!(single("style-2").as_deref(), Some("style-2"));
        assert_eq!(single("0:0.5,1:0.5"), None);
        assert_eq!(single("7"), None);
    }
}
