//! The training loop: batches of random crops through the transformer net, the perceptual
//! loss against the content (or a teacher's output, in distillation), Adam, checkpoints and
//! resume, a progress line with the loss terms and images/s, and preview grids. Owns the
//! schedule; networks, losses and I/O live in their own modules.

use std::path::PathBuf;
use std::time::Instant;

use burn::prelude::*;

use crate::checkpoint::{self, Adam, CheckpointError, CheckpointMeta};
use crate::data::{self, CropSampler, DataError};
use crate::loss::{LossTerms, PerceptualLoss};
use crate::progress::Progress;
use crate::teacher::{OnnxImageModel, TeacherError};
use crate::transformer::{TransformerConfig, TransformerNet};

/// Why training stopped.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Teacher(#[from] TeacherError),
    #[error("checkpoint {path} holds network {found}, but this run asks for {wanted}")]
    Network {
        path: String,
        found: String,
        wanted: String,
    },
}

/// One network, its optimizer and its loss, advanced one batch at a time.
pub struct Trainer {
    pub net: TransformerNet,
    pub adam: Adam,
    pub loss: PerceptualLoss,
    pub config: TransformerConfig,
    /// The autodiff device the network trains on.
    pub device: Device,
}

impl Trainer {
    pub fn new(config: TransformerConfig, loss: PerceptualLoss, lr: f64, device: &Device) -> Self {
        let device = device.clone().autodiff();
        Trainer {
            net: config.init(&device),
            adam: Adam::new(lr),
            loss,
            config,
            device,
        }
    }

    /// One Adam step on `content` ([n, 3, s, s], 0..1); with `teacher` the loss compares
    /// against the teacher's outputs instead of the content.
    pub fn step(&mut self, content: Tensor<4>, teacher: Option<Tensor<4>>) -> LossTerms {
        let target = teacher.clone().unwrap_or_else(|| content.clone()).inner();
        let targets = self.loss.content_targets(target);
        let output = self.net.forward(content.inner().autodiff());
        let (total, terms) = self.loss.loss(output, &targets, teacher.map(|t| t.inner()));
        let grads = total.backward();
        self.net = self.adam.step(self.net.clone(), &grads);
        terms
    }

    pub fn save(&self, path: &std::path::Path) -> Result<(), CheckpointError> {
        let meta = CheckpointMeta {
            step: self.adam.step,
            network: network_json(&self.config),
            lr: self.adam.lr,
        };
        checkpoint::save(path, &self.net, &self.adam, &meta)
    }

    /// Continues from a checkpoint written by [`Trainer::save`] for the same network.
    pub fn resume(&mut self, path: &std::path::Path) -> Result<(), TrainError> {
        let ck = checkpoint::read(path)?;
        let wanted = network_json(&self.config);
        if ck.meta.network != wanted {
            return Err(TrainError::Network {
                path: ck.path,
                found: ck.meta.network,
                wanted,
            });
        }
        let (net, adam) = ck.restore(self.net.clone(), &self.device.clone().inner())?;
        self.net = net;
        let lr = self.adam.lr;
        self.adam = adam;
        self.adam.lr = lr;
        Ok(())
    }
}

pub fn network_json(config: &TransformerConfig) -> String {
    serde_json::to_string(config).unwrap_or_default()
}

/// A teacher for distillation: an ONNX image model run on each crop.
pub struct Teacher {
    pub model: OnnxImageModel,
}

impl Teacher {
    pub fn outputs(&mut self, batch: &Tensor<4>) -> Result<Tensor<4>, TeacherError> {
        let [n, c, h, w] = batch.dims();
        let data: Vec<f32> = batch
            .clone()
            .inner()
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap_or_default();
        let frame = c * h * w;
        let mut out = Vec::with_capacity(data.len());
        for i in 0..n {
            out.extend(
                self.model
                    .run(&data[i * frame..(i + 1) * frame], [1, c, h, w])?,
            );
        }
        Ok(Tensor::from_data(
            TensorData::new(out, [n, c, h, w]),
            &batch.device(),
        ))
    }
}

/// The schedule of a training run.
pub struct Schedule {
    pub data: PathBuf,
    pub size: u32,
    pub batch: usize,
    pub steps: u64,
    pub seed: u64,
    pub progress: Progress,
}

/// Runs `schedule` to its last step; returns the last loss terms.
pub fn run(
    trainer: &mut Trainer,
    mut teacher: Option<Teacher>,
    s: &Schedule,
) -> Result<LossTerms, TrainError> {
    let plain = trainer.device.clone().inner();
    let mut sampler = CropSampler::open(&s.data, s.size, s.seed)?;
    if let Some(ck) = s.progress.resume_from() {
        trainer.resume(ck)?;
        eprintln!(
            "resumed from {} at step {}",
            ck.display(),
            trainer.adam.step
        );
        // Skip the crops the earlier run already used so the sequence continues.
        for _ in 0..trainer.adam.step as usize * s.batch {
            sampler.crop();
        }
    }
    eprintln!(
        "{} training images, {}x{} crops, batch {}",
        sampler.len(),
        s.size,
        s.size,
        s.batch
    );
    let mut last = LossTerms::default();
    let (mut images, mut since) = (0usize, Instant::now());
    while trainer.adam.step < s.steps {
        let (_, content) = sampler.batch(s.batch, &plain);
        let target = match teacher.as_mut() {
            Some(t) => Some(t.outputs(&content)?),
            None => None,
        };
        last = trainer.step(content.clone(), target.clone());
        images += s.batch;
        let step = trainer.adam.step;
        if s.progress.log_at(step, s.steps) {
            let rate = images as f64 / since.elapsed().as_secs_f64();
            eprintln!(
                "step {step}/{}  loss {:.4}  content {:.4}  style {:.4}  tv {:.4}  pixel {:.4}  {rate:.2} img/s",
                s.steps, last.total, last.content, last.style, last.tv, last.pixel
            );
            (images, since) = (0, Instant::now());
        }
        if s.progress.checkpoint_at(step, s.steps) {
            trainer.save(&s.progress.checkpoint)?;
        }
        if let Some(p) = s.progress.preview_at(step, s.steps) {
            let output = trainer.net.valid().forward(content.clone());
            let mut tiles = Vec::new();
            for i in 0..s.batch {
                tiles.push(data::to_image(&content, i));
                if let Some(t) = &target {
                    tiles.push(data::to_image(t, i));
                }
                tiles.push(data::to_image(&output, i));
            }
            let columns = if target.is_some() { 3 } else { 2 };
            data::save_png(&data::grid(&tiles, columns), p)?;
        }
    }
    Ok(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::LossConfig;
    use crate::lossnet::LossNet;

    /// A tiny trainer; the loss network is passed in so two trainers can share it exactly
    /// (the global RNG is shared with tests running in parallel).
    fn tiny_trainer(net: LossNet) -> Trainer {
        let device = Device::flex();
        let config = LossConfig {
            style_weight: 10.0,
            ..LossConfig::default()
        }
        .resolve(&net)
        .unwrap();
        let style = data::to_tensor(&CropSampler::synthetic(1, 16), &device);
        let loss = PerceptualLoss::new(config, net, Some(style));
        Trainer::new(
            TransformerConfig::preset("tiny").unwrap(),
            loss,
            1e-2,
            &device,
        )
    }

    fn tiny_loss_net() -> LossNet {
        LossNet::load("tiny", &Device::flex()).unwrap()
    }

    fn batches() -> Vec<Tensor<4>> {
        let mut s = CropSampler::from_images(CropSampler::synthetic(3, 24), 16, 7);
        (0..4).map(|_| s.batch(2, &Device::flex()).1).collect()
    }

    #[test]
    fn thirty_steps_lower_the_loss() {
        let mut t = tiny_trainer(tiny_loss_net());
        let b = batches();
        let first = t.step(b[0].clone(), None).total;
        let mut last = first;
        for i in 1..30 {
            last = t.step(b[i % b.len()].clone(), None).total;
        }
        // Evaluate both ends on the same batch.
        let end = t.step(b[0].clone(), None).total;
        assert!(
            end < first * 0.8,
            "loss went from {first} to {end} (last {last})"
        );
    }

    #[test]
    fn resuming_a_checkpoint_takes_the_same_next_step() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ck.safetensors");
        let b = batches();
        let net = tiny_loss_net();
        let mut a = tiny_trainer(net.clone());
        for x in &b[..3] {
            a.step(x.clone(), None);
        }
        a.save(&path).unwrap();
        let next = a.step(b[3].clone(), None);
        let after: Vec<f32> = a
            .net
            .output
            .conv
            .weight
            .val()
            .inner()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();

        let mut r = tiny_trainer(net); // other initial weights, replaced by the checkpoint
        r.resume(&path).unwrap();
        assert_eq!(r.adam.step, 3);
        let again = r.step(b[3].clone(), None);
        let after_r: Vec<f32> = r
            .net
            .output
            .conv
            .weight
            .val()
            .inner()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert!(
            (next.total - again.total).abs() <= 1e-6 * next.total.abs().max(1.0),
            "{next:?} vs {again:?}"
        );
        let worst = after
            .iter()
            .zip(&after_r)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max);
        assert!(
            worst < 1e-6,
            "weights after the resumed step differ by {worst}"
        );
    }
}
