//! Control requests inside the frame loop: each is carried out between two frames (a style
//! change applies to the next frame, none is lost), and arbitrary-style engines are swapped
//! in here when their builder thread has finished.

use std::time::Instant;

use super::{FrameLoop, governor_for};
use crate::control::server::ControlRequest;
use crate::control::{Control, Done, Reply, RunState};
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
    }

    /// Carries out one command; returns the answer to send now, or `None` when the reply
    /// goes out later (an arbitrary style, answered once its engine is built).
    fn control(
        &mut self,
        control: Control,
        reply: tokio::sync::oneshot::Sender<Reply>,
    ) -> Option<(tokio::sync::oneshot::Sender<Reply>, Reply)> {
        let answer = match control {
            Control::SetStyle(text) => {
                // A named style after an arbitrary one: back to the configured model.
                let target = self.swaps.named_target(&mut self.cx.engine);
                let applied = StyleSpec::parse(&text)
                    .map_err(|e| e.to_string())
                    .and_then(|spec| target.set_style(&spec).map_err(|e| e.to_string()));
                if applied.is_ok() && self.swaps.restore(&mut self.cx.engine) {
                    self.engine_changed();
                }
                match applied {
                    Ok(()) => {
                        tracing::info!(style = %text, "style changed");
                        // The next frame shows the new style outright, not a blend with the old.
                        if let Some(st) = self.stabilizer.as_mut() {
                            st.reset();
                        }
                        self.cx.shared.update(|s| s.style = text.clone());
                        Reply::Done(Done {
                            style: Some(text),
                            ..Done::ok()
                        })
                    }
                    Err(e) => Reply::error(e),
                }
            }
            Control::SetStyleImage { image, and } => {
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

    pub(super) fn swap_in(&mut self, swap: Swap) {
        let answer = match swap.engine {
            Ok(engine) => {
                self.swaps.swap_in(&mut self.cx.engine, engine);
                let model = self.cx.engine.info().model.clone();
                tracing::info!(style = %swap.label, model = %model, "style changed (engine swapped)");
                self.cx.shared.update(|s| s.style = swap.label.clone());
                self.engine_changed();
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
        self.governor = governor_for(&self.cx.config, self.cx.engine.as_ref());
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
