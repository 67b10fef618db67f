//! The building blocks of the transformer networks: a reflection-padded (optionally
//! depthwise-separable) convolution, conv + instance norm + ReLU, the residual block and the
//! two upsampling blocks (nearest + conv, and sub-pixel conv). Each block is one burn
//! `Module` with a `Config` whose `init` builds it. Blocks know nothing of losses, data or
//! ONNX (export.rs walks their public fields).

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{InstanceNorm, InstanceNormConfig, PixelShuffle, PixelShuffleConfig};
use burn::prelude::*;
use burn::tensor::activation::relu;
use burn::tensor::ops::PadMode;

/// A `kernel`x`kernel` convolution on a reflection-padded input, as in Johnson et al.; with
/// `separable` it is a depthwise `kernel`x`kernel` conv followed by a 1x1 pointwise conv.
#[derive(Config, Debug)]
pub struct ConvLayerConfig {
    pub in_channels: usize,
    pub out_channels: usize,
    pub kernel: usize,
    #[config(default = 1)]
    pub stride: usize,
    #[config(default = false)]
    pub separable: bool,
}

#[derive(Module, Debug)]
pub struct ConvLayer {
    /// Reflection padding on each side (kernel / 2).
    pub pad: usize,
    pub depthwise: Option<Conv2d>,
    /// The full conv, or the 1x1 pointwise conv when `depthwise` is set.
    pub conv: Conv2d,
}

impl ConvLayerConfig {
    pub fn init(&self, device: &Device) -> ConvLayer {
        let k = self.kernel;
        let (depthwise, conv) = if self.separable {
            let dw = Conv2dConfig::new([self.in_channels, self.in_channels], [k, k])
                .with_stride([self.stride, self.stride])
                .with_groups(self.in_channels)
                .init(device);
            let pw = Conv2dConfig::new([self.in_channels, self.out_channels], [1, 1]).init(device);
            (Some(dw), pw)
        } else {
            let c = Conv2dConfig::new([self.in_channels, self.out_channels], [k, k])
                .with_stride([self.stride, self.stride])
                .init(device);
            (None, c)
        };
        ConvLayer {
            pad: k / 2,
            depthwise,
            conv,
        }
    }
}

impl ConvLayer {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let p = self.pad;
        let x = if p > 0 {
            x.pad((p, p, p, p), PadMode::Reflect)
        } else {
            x
        };
        let x = match &self.depthwise {
            Some(dw) => dw.forward(x),
            None => x,
        };
        self.conv.forward(x)
    }

    /// Multiply-accumulates x2 for an input of `h`x`w`; returns (flops, out_h, out_w).
    pub fn flops(&self, h: usize, w: usize) -> (u64, usize, usize) {
        let mut total = 0u64;
        let (mut h, mut w) = (h, w);
        let convs = self.depthwise.iter().chain(std::iter::once(&self.conv));
        for c in convs {
            let [out_c, in_per_group, kh, kw] = c.weight.dims();
            let s = c.stride[0];
            // Padding is applied once, before the first conv; 1x1 convs keep the size.
            (h, w) = (
                (h + if kh > 1 { 2 * self.pad } else { 0 } - kh) / s + 1,
                (w + if kw > 1 { 2 * self.pad } else { 0 } - kw) / s + 1,
            );
            total += 2 * (out_c * in_per_group * kh * kw * h * w) as u64;
        }
        (total, h, w)
    }
}

/// ConvLayer -> InstanceNorm -> ReLU, the unit of Johnson's encoder.
#[derive(Config, Debug)]
pub struct ConvNormReluConfig {
    pub conv: ConvLayerConfig,
}

#[derive(Module, Debug)]
pub struct ConvNormRelu {
    pub conv: ConvLayer,
    pub norm: InstanceNorm,
}

impl ConvNormReluConfig {
    pub fn init(&self, device: &Device) -> ConvNormRelu {
        ConvNormRelu {
            conv: self.conv.init(device),
            norm: InstanceNormConfig::new(self.conv.out_channels).init(device),
        }
    }
}

impl ConvNormRelu {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        relu(self.norm.forward(self.conv.forward(x)))
    }
}

/// Two 3x3 ConvLayer + InstanceNorm with a ReLU between and the input added back
/// (Johnson et al., supplementary Fig. 1, without the cropping: padding keeps the size).
#[derive(Config, Debug)]
pub struct ResidualBlockConfig {
    pub channels: usize,
    #[config(default = false)]
    pub separable: bool,
}

#[derive(Module, Debug)]
pub struct ResidualBlock {
    pub first: ConvNormRelu,
    pub second: ConvLayer,
    pub norm: InstanceNorm,
}

impl ResidualBlockConfig {
    pub fn init(&self, device: &Device) -> ResidualBlock {
        let conv =
            ConvLayerConfig::new(self.channels, self.channels, 3).with_separable(self.separable);
        ResidualBlock {
            first: ConvNormReluConfig::new(conv.clone()).init(device),
            second: conv.init(device),
            norm: InstanceNormConfig::new(self.channels).init(device),
        }
    }
}

impl ResidualBlock {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = self.first.forward(x.clone());
        x + self.norm.forward(self.second.forward(y))
    }
}

/// Doubles the resolution: nearest-neighbour upsampling then conv (Odena et al.'s fix for
/// checkerboard artefacts), or with `shuffle` a conv to 4x channels then pixel shuffle
/// (Shi et al.'s sub-pixel convolution). Either way followed by InstanceNorm + ReLU.
#[derive(Config, Debug)]
pub struct UpsampleBlockConfig {
    pub in_channels: usize,
    pub out_channels: usize,
    #[config(default = 3)]
    pub kernel: usize,
    #[config(default = false)]
    pub shuffle: bool,
    #[config(default = false)]
    pub separable: bool,
}

#[derive(Module, Debug)]
pub struct UpsampleBlock {
    pub conv: ConvLayer,
    pub shuffle: Option<PixelShuffle>,
    pub norm: InstanceNorm,
}

impl UpsampleBlockConfig {
    pub fn init(&self, device: &Device) -> UpsampleBlock {
        let conv_out = if self.shuffle {
            self.out_channels * 4
        } else {
            self.out_channels
        };
        UpsampleBlock {
            conv: ConvLayerConfig::new(self.in_channels, conv_out, self.kernel)
                .with_separable(self.separable)
                .init(device),
            shuffle: self.shuffle.then(|| PixelShuffleConfig::new(2).init()),
            norm: InstanceNormConfig::new(self.out_channels).init(device),
        }
    }
}

/// Nearest-neighbour 2x upsampling by repeating each pixel (exact, and exported to ONNX as
/// Resize with `nearest`/`asymmetric`/`floor`).
pub fn upsample_nearest2x(x: Tensor<4>) -> Tensor<4> {
    let [n, c, h, w] = x.dims();
    x.reshape([n, c, h, 1, w, 1])
        .expand([n, c, h, 2, w, 2])
        .reshape([n, c, 2 * h, 2 * w])
}

impl UpsampleBlock {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = match &self.shuffle {
            Some(ps) => ps.forward(self.conv.forward(x)),
            None => self.conv.forward(upsample_nearest2x(x)),
        };
        relu(self.norm.forward(y))
    }

    pub fn flops(&self, h: usize, w: usize) -> (u64, usize, usize) {
        if self.shuffle.is_some() {
            let (f, h, w) = self.conv.flops(h, w);
            (f, 2 * h, 2 * w)
        } else {
            self.conv.flops(2 * h, 2 * w)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t4(v: Vec<f32>, shape: [usize; 4]) -> Tensor<4> {
        Tensor::from_data(TensorData::new(v, shape), &Device::flex())
    }
    fn values(t: Tensor<4>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn reflection_pad_mirrors_without_repeating_the_edge() {
        let x = t4(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [1, 1, 2, 3]);
        let y = x.pad((1, 1, 1, 1), PadMode::Reflect);
        assert_eq!(y.dims(), [1, 1, 4, 5]);
        #[rustfmt::skip]
        let want = vec![
            5.0, 4.0, 5.0, 6.0, 5.0,
            2.0, 1.0, 2.0, 3.0, 2.0,
            5.0, 4.0, 5.0, 6.0, 5.0,
            2.0, 1.0, 2.0, 3.0, 2.0,
        ];
        assert_eq!(values(y), want);
    }

    #[test]
    fn instance_norm_normalizes_each_channel_of_each_image() {
        let norm = InstanceNormConfig::new(2).init(&Device::flex());
        let x = t4(
            vec![1.0, 2.0, 3.0, 4.0, 10.0, 10.0, 10.0, 10.0],
            [1, 2, 2, 2],
        );
        let y = values(norm.forward(x));
        // Channel 0: mean 2.5, variance 1.25 (biased); channel 1 is constant -> 0.
        let s = (1.25f32 + 1e-5).sqrt();
        for (got, want) in y
            .iter()
            .zip([-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s, 0.0, 0.0, 0.0, 0.0])
        {
            assert!((got - want).abs() < 1e-5, "{y:?}");
        }
    }

    #[test]
    fn pixel_shuffle_moves_channels_to_a_2x2_block() {
        let ps = PixelShuffleConfig::new(2).init();
        let y = ps.forward(t4(vec![1.0, 2.0, 3.0, 4.0], [1, 4, 1, 1]));
        assert_eq!(y.dims(), [1, 1, 2, 2]);
        assert_eq!(values(y), vec![1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn nearest_upsampling_repeats_each_pixel() {
        let y = upsample_nearest2x(t4(vec![1.0, 2.0], [1, 1, 1, 2]));
        assert_eq!(values(y), vec![1.0, 1.0, 2.0, 2.0, 1.0, 1.0, 2.0, 2.0]);
    }
}
