//! Errors from a GStreamer pipeline's bus, as data: the source, the output and the recorder
//! all read their bus through this, so none of them imports another.

use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use thiserror::Error;

/// An error message from a pipeline's bus, as data.
#[derive(Clone, Debug, Error)]
#[error("{element}: {message}")]
pub struct BusError {
    pub element: String,
    pub message: String,
    pub debug: Option<String>,
    /// The element ran out of space (`GST_RESOURCE_ERROR_NO_SPACE_LEFT`, from ENOSPC).
    pub no_space: bool,
}

impl BusError {
    /// The first error waiting on a pipeline's bus, if any (non-blocking).
    pub fn pending(pipeline: &gst::Pipeline) -> Option<Self> {
        let bus = pipeline.bus()?;
        while let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error]) {
            if let gst::MessageView::Error(err) = msg.view() {
                return Some(Self::from_message(err));
            }
        }
        None
    }

    /// Waits up to `timeout` for end-of-stream on a pipeline's bus: `Ok(true)` at EOS,
    /// `Ok(false)` on timeout, the error if one comes first.
    pub fn wait_eos(pipeline: &gst::Pipeline, timeout: Duration) -> Result<bool, Self> {
        let Some(bus) = pipeline.bus() else {
            return Ok(false);
        };
        let wanted = [gst::MessageType::Eos, gst::MessageType::Error];
        match bus.timed_pop_filtered(
            gst::ClockTime::from_nseconds(timeout.as_nanos() as u64),
            &wanted,
        ) {
            Some(msg) => match msg.view() {
                gst::MessageView::Error(err) => Err(Self::from_message(err)),
                _ => Ok(true),
            },
            None => Ok(false),
        }
    }

    pub fn from_message(err: &gst::message::Error) -> Self {
        Self {
            element: err
                .src()
                .map(|s| s.path_string().to_string())
                .unwrap_or_else(|| "pipeline".into()),
            message: err.error().to_string(),
            debug: err.debug().map(|d| d.to_string()),
            no_space: err.error().matches(gst::ResourceError::NoSpaceLeft),
        }
    }
}
