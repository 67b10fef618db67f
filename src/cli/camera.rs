//! `stylerd camera`: the built-in RTSP test camera (a pattern, or a video in a loop).

use std::path::PathBuf;

use clap::Args;

use crate::config::Size;
use crate::media::rtsp::{CameraSpec, TestCamera};

#[derive(Args, Debug)]
pub struct CameraArgs {
    /// Address to listen on (loopback by default).
    #[arg(long, default_value = "127.0.0.1")]
    address: String,
    /// Port; 0 picks a free one (printed on stdout).
    #[arg(long, default_value_t = 8555)]
    port: u16,
    #[arg(long, default_value = "/camera")]
    mount: String,
    #[arg(long, default_value = "640x360")]
    size: String,
    #[arg(long, default_value_t = 30)]
    fps: u32,
    /// videotestsrc pattern (ball, smpte, snow, pinwheel, …).
    #[arg(long, default_value = "ball")]
    pattern: String,
    /// A video file to show in a loop instead of the pattern (its first minute, at --size
    /// and --fps).
    #[arg(long, conflicts_with = "pattern")]
    video: Option<PathBuf>,
}

pub fn run(args: CameraArgs) -> anyhow::Result<()> {
    let size: Size = args.size.parse().map_err(anyhow::Error::msg)?;
    let spec = CameraSpec {
        width: size.width,
        height: size.height,
        fps: args.fps,
        pattern: args.pattern,
        video: args.video,
    };
    let cam = TestCamera::start(&args.address, args.port, &args.mount, &spec)?;
    // The URL on stdout lets scripts and tests find a port picked with --port 0.
    println!("{}", cam.url());
    tracing::info!(url = %cam.url(), "test camera serving; Ctrl-C to stop");
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])?;
    signals.forever().next();
    Ok(())
}
