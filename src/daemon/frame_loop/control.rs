//! Control requests inside the frame loop: each is carried out between two frames (a style
//! change applies to the next frame, none is lost), and arbitrary-style engines are swapped
//! in here when their builder thread has finished.

use std::time::Instant;

use super::FrameLoop;
use crate::config::edit::{StyleEdit, save_style};
use crate::control::server::ControlRequest;
use crate::control::{Control, Done, Reply, RunState, StyleChange};
use crate::daemon::reload::FileStyle;
use crate::daemon::style_swap::Swap;
use crate::style::StyleSpec;

impl FrameLoop {
    /// Answers pending control requests; each takes effect before the next frame.
    pub(super) fn serve_control(&mut self) {
        while let Ok(ControlRequest { control, reply }) = self.cx.control.try_recv() {
            if let Some(answer) = self.control(control, reply) {
                let (reply, answer) = answer;
                let _ = reply.send(answer);
            }
        }
        while let Some(swap) = self.swaps.next_ready() {
            self.swap_in(swap);
        }
        while let Ok(loaded) = self.cx.reloads.try_recv() {
            self.reload(loaded);
        }
    }

    /// Carries out one command; returns the answer to send now, or `None` when the reply
    /// goes out later (an arbitrary style, answered once its engine is built).
    fn control(
        &mut self,
        control: Control,
        reply: tokio::sync::oneshot::Sender<Reply>,
    ) -> Option<(tokio::sync::oneshot::Sender<Reply>, Reply)> {
        let answer = match control {
            Control::SetStyle(change) => self.change_style(change),
            Control::SetStyleImage {
                image,
                and,
                strength,
                preserve_color,
            } => {
                self.set_mix(strength, preserve_color);
                self.swaps.build(&self.cx.config.engine, image, and, reply);
                return None;
            }
            Control::Pause => {
                self.paused = true;
                self.set_state(RunState::Paused, "streaming", None);
                Reply::Done(Done {
                    state: Some(RunState::Paused),
                    ..Done::ok()
                })
            }
            Control::Resume => {
                self.paused = false;
                self.set_state(RunState::Running, "streaming", None);
                Reply::Done(Done {
                    state: Some(RunState::Running),
                    ..Done::ok()
                })
            }
            Control::Snapshot => match self.last_output.as_ref() {
                None => Reply::error("no stylized frame yet"),
                Some(img) => match self.snapshots.write(img, Instant::now()) {
                    Ok(path) => {
                        let path = std::path::absolute(&path).unwrap_or(path);
                        Reply::Done(Done {
                            path: Some(path.display().to_string()),
                            ..Done::ok()
                        })
                    }
                    Err(e) => Reply::error(e),
                },
            },
        };
        Some((reply, answer))
    }

    /// A named style and/or strength and colour; with `save`, written into the config file
    /// too (and undone when that fails, so the answer is all or nothing).
    fn change_style(&mut self, change: StyleChange) -> Reply {
        let before = (self.cx.shared.state().style, self.mix);
        if let Some(text) = &change.spec
            && let Err(e) = self.set_named_style(text)
        {
            return Reply::error(e);
        }
        self.set_mix(change.strength, change.preserve_color);
        if change.save
            && let Err(e) = self.save_style()
        {
            // Back to what ran before; the previous spec parsed when it was applied.
            if change.spec.is_some() {
                let _ = self.set_named_style(&before.0);
            }
            self.mix = before.1;
            self.publish_style();
            return Reply::error(e);
        }
        Reply::Done(Done {
            style: Some(self.cx.shared.state().style),
            strength: Some(self.mix.strength),
            preserve_color: Some(self.mix.preserve_color),
            saved: change.save.then_some(true),
            ..Done::ok()
        })
    }

    /// Applies a style spec to the configured model (bringing it back after an arbitrary
    /// style); the next frame shows it.
    pub(super) fn set_named_style(&mut self, text: &str) -> Result<(), String> {
        // A named style after an arbitrary one: back to the configured model.
        let target = self.swaps.named_target(&mut self.cx.engine);
        StyleSpec::parse(text)
            .map_err(|e| e.to_string())
            .and_then(|spec| target.set_style(&spec).map_err(|e| e.to_string()))?;
        let restored = self.swaps.restore(&mut self.cx.engine);
        let text = text.to_string();
        self.cx.shared.update(|s| s.style = text.clone());
        if restored {
            self.engine_changed();
        } else {
            // Another style may have another student (or none).
            self.students_follow_style();
        }
        tracing::info!(style = %text, "style changed");
        // The next frame shows the new style outright, not a blend with the old.
        if let Some(st) = self.stabilizer.as_mut() {
            st.reset();
        }
        self.publish_style();
        Ok(())
    }

    fn set_mix(&mut self, strength: Option<f32>, preserve_color: Option<bool>) {
        if let Some(s) = strength {
            self.mix.strength = s;
        }
        if let Some(p) = preserve_color {
            self.mix.preserve_color = p;
        }
        if strength.is_some() || preserve_color.is_some() {
            // Like a new style: the next frame shows the new mix outright.
            if let Some(st) = self.stabilizer.as_mut() {
                st.reset();
            }
            tracing::info!(
                strength = self.mix.strength,
                preserve_color = self.mix.preserve_color,
                "mix changed"
            );
        }
        self.publish_style();
    }

    /// Strength, colour, and whether they and the style differ from the config file's.
    pub(super) fn publish_style(&mut self) {
        let mix = self.mix;
        let file = self.file_style.clone();
        self.cx.shared.update(|s| {
            s.mix = mix;
            s.differs_from_file = file.is_some_and(|f| {
                f != FileStyle {
                    spec: s.style.clone(),
                    strength: mix.strength,
                    preserve_color: mix.preserve_color,
                }
            });
        });
    }

    /// Writes the running style, strength and colour into the config file (`set-style
    /// --save`), so the file then holds what is on screen, not only the keys this change
    /// named.
    fn save_style(&mut self) -> Result<(), String> {
        let Some((source, _)) = self.cx.options.config_file.as_ref() else {
            return Err("cannot save: this daemon runs without a config file".into());
        };
        if self.swaps.picture_style_running() {
            return Err("cannot save a picture's style to the config file; \
                        choose a style index, name or blend to save"
                .into());
        }
        let running = FileStyle {
            spec: self.cx.shared.state().style,
            strength: self.mix.strength,
            preserve_color: self.mix.preserve_color,
        };
        let edit = StyleEdit {
            style: Some(running.spec.clone()),
            strength: Some(running.strength),
            preserve_color: Some(running.preserve_color),
        };
        save_style(&source.path, &edit).map_err(|e| e.to_string())?;
        tracing::info!(config = %source.path.display(), "style saved to the config file");
        if let Some(file) = self.file_style.as_mut() {
            *file = running;
        }
        self.publish_style();
        Ok(())
    }

    pub(super) fn swap_in(&mut self, swap: Swap) {
        let answer = match swap.engine {
            Ok(engine) => {
                self.swaps.swap_in(&mut self.cx.engine, engine);
                let model = self.cx.engine.info().model.clone();
                tracing::info!(style = %swap.label, model = %model, "style changed (engine swapped)");
                self.cx.shared.update(|s| s.style = swap.label.clone());
                self.engine_changed();
                self.publish_style();
                Reply::Done(Done {
                    style: Some(swap.label),
                    model: Some(model),
                    ..Done::ok()
                })
            }
            Err(e) => Reply::error(e),
        };
        let _ = swap.reply.send(answer);
    }

    /// After a swap: a governor for the new network, no blending across, status updated.
    pub(super) fn engine_changed(&mut self) {
        self.governor = self.build_governor();
        if let Some(st) = self.stabilizer.as_mut() {
            st.reset();
        }
        let (status, info) = (self.governor.status(), self.cx.engine.info().clone());
        self.cx.shared.update(|s| {
            s.governor = Some(status);
            s.engine = Some(info);
        });
    }
}
