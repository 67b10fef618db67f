//! The feed-forward image transformation networks: Johnson et al.'s net, its sub-pixel
//! (pixel shuffle) decoder variant and the slim depthwise-separable variant for the Jetson
//! budget, all built from blocks.rs by one `TransformerConfig`, plus their FLOPs per frame.
//! Input and output are RGB in 0..1, NCHW, height and width multiples of 4.

use burn::prelude::*;
use burn::tensor::activation::sigmoid;

use crate::blocks::{
    ConvLayer, ConvLayerConfig, ConvNormRelu, ConvNormReluConfig, ResidualBlock,
    ResidualBlockConfig, UpsampleBlock, UpsampleBlockConfig,
};

/// Hyper-parameters of a transformer network. The presets are `johnson`, `shuffle`, `slim`
/// and `tiny` (tests only).
#[derive(Config, Debug)]
pub struct TransformerConfig {
    /// Channels after the first conv and after each of the two strided convs.
    pub channels: [usize; 3],
    pub residual_blocks: usize,
    /// Kernel of the first and the last conv (9 in Johnson et al.).
    #[config(default = 9)]
    pub outer_kernel: usize,
    /// Depthwise-separable convs everywhere except the first and last layer.
    #[config(default = false)]
    pub separable: bool,
    /// Pixel-shuffle decoder instead of nearest upsample + conv.
    #[config(default = false)]
    pub shuffle: bool,
}

/// The named network shapes the CLI offers.
pub const ARCHITECTURES: [&str; 4] = ["johnson", "shuffle", "slim", "tiny"];

impl TransformerConfig {
    /// Looks a preset up by name (see [`ARCHITECTURES`]).
    pub fn preset(name: &str) -> Option<Self> {
        Some(match name {
            "johnson" => Self::new([32, 64, 128], 5),
            "shuffle" => Self::new([32, 64, 128], 5).with_shuffle(true),
            // Sized for 30 ms at 640x360 on Xavier at 15 W: 3.0 GFLOPs/frame
            // (`stylerd-train flops`), against 70.9 for johnson at that size.
            "slim" => Self::new([16, 32, 64], 4)
                .with_outer_kernel(5)
                .with_separable(true),
            "tiny" => Self::new([4, 8, 8], 1).with_outer_kernel(3),
            _ => return None,
        })
    }

    pub fn init(&self, device: &Device) -> TransformerNet {
        let [c1, c2, c3] = self.channels;
        let sep = self.separable;
        let encoder = vec![
            ConvNormReluConfig::new(ConvLayerConfig::new(3, c1, self.outer_kernel)).init(device),
            ConvNormReluConfig::new(
                ConvLayerConfig::new(c1, c2, 3)
                    .with_stride(2)
                    .with_separable(sep),
            )
            .init(device),
            ConvNormReluConfig::new(
                ConvLayerConfig::new(c2, c3, 3)
                    .with_stride(2)
                    .with_separable(sep),
            )
            .init(device),
        ];
        let residuals = (0..self.residual_blocks)
            .map(|_| {
                ResidualBlockConfig::new(c3)
                    .with_separable(sep)
                    .init(device)
            })
            .collect();
        let up = |i, o| {
            UpsampleBlockConfig::new(i, o)
                .with_shuffle(self.shuffle)
                .with_separable(sep)
                .init(device)
        };
        TransformerNet {
            encoder,
            residuals,
            decoder: vec![up(c3, c2), up(c2, c1)],
            output: ConvLayerConfig::new(c1, 3, self.outer_kernel).init(device),
        }
    }
}

#[derive(Module, Debug)]
pub struct TransformerNet {
    pub encoder: Vec<ConvNormRelu>,
    pub residuals: Vec<ResidualBlock>,
    pub decoder: Vec<UpsampleBlock>,
    pub output: ConvLayer,
}

impl TransformerNet {
    /// RGB 0..1 in, stylized RGB 0..1 out (a sigmoid keeps it in range).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut x = x;
        for block in &self.encoder {
            x = block.forward(x);
        }
        for block in &self.residuals {
            x = block.forward(x);
        }
        for block in &self.decoder {
            x = block.forward(x);
        }
        sigmoid(self.output.forward(x))
    }

    /// Floating-point operations (2 per multiply-accumulate, convolutions only: norms and
    /// activations add well under 1%) for one `width`x`height` frame.
    pub fn flops(&self, width: usize, height: usize) -> u64 {
        let (mut h, mut w) = (height, width);
        let mut total = 0;
        let mut add = |(f, nh, nw): (u64, usize, usize), h: &mut usize, w: &mut usize| {
            total += f;
            (*h, *w) = (nh, nw);
        };
        for b in &self.encoder {
            add(b.conv.flops(h, w), &mut h, &mut w);
        }
        for b in &self.residuals {
            let f1 = b.first.conv.flops(h, w);
            add(f1, &mut h, &mut w);
            add(b.second.flops(h, w), &mut h, &mut w);
        }
        for b in &self.decoder {
            add(b.flops(h, w), &mut h, &mut w);
        }
        add(self.output.flops(h, w), &mut h, &mut w);
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_keeps_the_frame_size() {
        let device = Device::flex();
        let net = TransformerConfig::preset("tiny").unwrap().init(&device);
        let x = Tensor::<4>::random([1, 3, 16, 20], burn::tensor::Distribution::Default, &device);
        assert_eq!(net.forward(x).dims(), [1, 3, 16, 20]);
        for name in ["shuffle", "slim"] {
            let mut cfg = TransformerConfig::preset(name).unwrap();
            cfg.channels = [4, 8, 8];
            let net = cfg.init(&device);
            let x =
                Tensor::<4>::random([1, 3, 8, 12], burn::tensor::Distribution::Default, &device);
            assert_eq!(net.forward(x).dims(), [1, 3, 8, 12], "{name}");
        }
    }

    #[test]
    fn johnson_flops_match_the_hand_count() {
        let device = Device::flex();
        let net = TransformerConfig::preset("johnson").unwrap().init(&device);
        // Hand count at 256x256 (MACs): 9x9 convs 2 * 81*3*32*65536, strided 3x3 convs
        // 9*32*64*128^2 + 9*64*128*64^2, 10 residual convs 9*128*128*64^2, upsample convs
        // 9*128*64*128^2 + 9*64*32*256^2.
        let macs: u64 = 2 * 81 * 3 * 32 * 65536
            + 9 * 32 * 64 * 16384
            + 9 * 64 * 128 * 4096
            + 10 * 9 * 128 * 128 * 4096
            + 9 * 128 * 64 * 16384
            + 9 * 64 * 32 * 65536;
        assert_eq!(net.flops(256, 256), 2 * macs);
    }
}
