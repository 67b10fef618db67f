//! The `live` student (issue 13): only what ONNX Runtime runs fast on x86 CPUs (dense 3x3
//! convs with fused ReLU and residual Add, NCHWc kernels). Stride-2 3x3 conv to C1 at 1/2,
//! stride-2 3x3 conv to C2 at 1/4, N residual blocks (conv-ReLU-conv + skip) at 1/4, a
//! pixel-shuffle decoder (conv to 4*C1, shuffle, add the 1/2-resolution encoder features;
//! conv to 4*C0, shuffle) and a last 3x3 conv to RGB with a sigmoid. No normalization layers,
//! zero padding inside the convs, so the ONNX graph holds only Conv, Relu, Add, DepthToSpace
//! and Sigmoid. Height and width must be multiples of 4.
//!
//! With `live_context` K > 0 the network also sees the whole frame, as the teacher's instance
//! norm does (its colours follow whole-frame statistics no local network can see): the frame
//! average-pooled 4x4, three stride-2 3x3 convs to K channels, a global average, a 1x1 conv,
//! then per point a 1x1 conv to a per-channel scale and another to a shift (FiLM), applied to
//! the 1/4-resolution features after the encoder and after each residual block. In training
//! the context comes from the whole frame while the rest sees a crop of it. ONNX adds only
//! AveragePool, GlobalAveragePool, Mul and Add on tiny tensors (and the broadcast Mul/Add).

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{PaddingConfig2d, PixelShuffle, PixelShuffleConfig};
use burn::prelude::*;
use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::module::avg_pool2d;
use burn::tensor::ops::AvgPoolOptions;

mod grid;

/// Width and depth of a live network.
#[derive(Config, Debug)]
pub struct LiveConfig {
    /// Channels at 1/2 and at 1/4 resolution (C1, C2).
    pub live_channels: [usize; 2],
    /// Residual blocks at 1/4 resolution.
    pub live_blocks: usize,
    /// Full-resolution channels before the last conv (C0); 0: the second shuffle yields
    /// RGB directly (conv to 12 channels) and there is no full-resolution conv.
    #[config(default = 8)]
    pub live_out: usize,
    /// Dilate the convs of residual block i by 2^i (1, 2, 4, ...): a wider receptive field
    /// (the teacher's colour choices depend on wide context) at the same FLOPs.
    #[config(default = false)]
    pub live_dilate: bool,
    /// Channels of the whole-frame context branch (FiLM); 0: none.
    #[config(default = 0)]
    pub live_context: usize,
    /// Channels of a 1/8-resolution level (C3; 0: none): a stride-2 conv from the 1/4
    /// features, one residual block, a conv to 4*C2 shuffled back to 1/4 and added after the
    /// residual blocks, for large-scale tone. Frames must then be multiples of 8.
    #[config(default = 0)]
    pub live_deep: usize,
    /// Styles of a conditional student (0: one style): the teacher's style vector of this
    /// length goes, next to the context's global average, into the context branch's 1x1
    /// conv, so the per-channel scales and shifts follow the style (and blends of styles) as
    /// the teacher's conditional instance norm does. Needs a context branch.
    #[config(default = 0)]
    pub live_styles: usize,
    /// A spatial context (needs a context branch): from the context's 1/32-resolution map
    /// (and its global features) a coarse map of per-channel scales and shifts, bilinearly
    /// upsampled to the 1/4-resolution features and applied after the last residual block,
    /// so the tone can differ across the frame (a sky darker than the ground) where the
    /// per-channel FiLM gives one answer for the whole frame.
    #[config(default = false)]
    pub live_grid: bool,
}

/// The named sizes the CLI offers as `--arch`.
pub const LIVE_PRESETS: [&str; 3] = ["live-s", "live-m", "live-l"];

impl LiveConfig {
    /// `live-s` 16/32 x2 and `live-m` 16/32 x3, both shuffling straight to RGB (C0 = 0);
    /// `live-l` 16/32 x4 with an 8-channel full-resolution conv (see the README's sweep).
    pub fn preset(name: &str) -> Option<Self> {
        Some(match name {
            "live-s" => Self::new([16, 32], 2).with_live_out(0),
            "live-m" => Self::new([16, 32], 3).with_live_out(0),
            "live-l" => Self::new([16, 32], 4),
            _ => return None,
        })
    }

    /// Reads a config from a checkpoint's JSON, filling the fields added after it was
    /// written with their defaults (the derived deserializer wants every field).
    pub fn from_json(json: &str) -> Option<Self> {
        let mut v: serde_json::Value = serde_json::from_str(json).ok()?;
        let obj = v.as_object_mut()?;
        obj.entry("live_out").or_insert(8.into());
        obj.entry("live_dilate").or_insert(false.into());
        obj.entry("live_context").or_insert(0.into());
        obj.entry("live_deep").or_insert(0.into());
        obj.entry("live_styles").or_insert(0.into());
        obj.entry("live_grid").or_insert(false.into());
        serde_json::from_value(v).ok()
    }

    /// The same network as the checkpoint JSON `json`?
    pub fn same_as_json(&self, json: &str) -> bool {
        Self::from_json(json)
            .is_some_and(|c| serde_json::to_string(&c).ok() == serde_json::to_string(self).ok())
    }

    /// Parses `C1,C2` (e.g. `16,32`).
    pub fn parse_channels(s: &str) -> Option<[usize; 2]> {
        let v: Vec<usize> = s
            .split(',')
            .map(|x| x.trim().parse().ok())
            .collect::<Option<_>>()?;
        match v.as_slice() {
            [a, b] if *a > 0 && *b > 0 => Some([*a, *b]),
            _ => None,
        }
    }

    /// What frame and crop sides must be multiples of: 8 with the 1/8 level, else 4.
    pub fn frame_multiple(&self) -> u32 {
        if self.live_deep > 0 { 8 } else { 4 }
    }

    /// A short label such as `16/32x4 c8`.
    pub fn label(&self) -> String {
        let [c1, c2] = self.live_channels;
        let d = if self.live_dilate { " dilated" } else { "" };
        let k = match self.live_context {
            0 => String::new(),
            k => format!(" context {k}"),
        };
        let deep = match self.live_deep {
            0 => String::new(),
            c => format!(" deep {c}"),
        };
        let styles = match self.live_styles {
            0 => String::new(),
            s => format!(" {s} styles"),
        };
        let grid = if self.live_grid { " grid" } else { "" };
        format!(
            "{c1}/{c2}x{} c{}{d}{k}{grid}{deep}{styles}",
            self.live_blocks, self.live_out
        )
    }

    pub fn init(&self, device: &Device) -> LiveNet {
        let [c1, c2] = self.live_channels;
        let dconv = |i: usize, o: usize, stride: usize, d: usize| {
            Conv2dConfig::new([i, o], [3, 3])
                .with_stride([stride, stride])
                .with_dilation([d, d])
                .with_padding(PaddingConfig2d::Explicit(d, d, d, d))
                .init(device)
        };
        let conv = |i: usize, o: usize, stride: usize| dconv(i, o, stride, 1);
        // A new leaf (detached) scaled by `k`, so the optimizer sees a parameter, not a product.
        let scaled = |c: Conv2d, k: f32| Conv2d {
            weight: c.weight.map(|w| {
                let grad = w.is_require_grad();
                let w = (w * k).detach();
                if grad { w.require_grad() } else { w }
            }),
            bias: c.bias.map(|b| {
                b.map(|b| {
                    let grad = b.is_require_grad();
                    let b = (b * k).detach();
                    if grad { b.require_grad() } else { b }
                })
            }),
            ..c
        };
        let k = self.live_context;
        let context = (k > 0).then(|| {
            let one = |i: usize, o: usize| Conv2dConfig::new([i, o], [1, 1]).init(device);
            // Scale and shift start at zero: the network starts as the plain one.
            let film = || {
                (0..=self.live_blocks)
                    .map(|_| scaled(one(k, c2), 0.0))
                    .collect()
            };
            // The grid's output starts at zero too.
            let grid = self.live_grid.then(|| LiveGrid {
                local: one(k, k),
                global: Conv2dConfig::new([k, k], [1, 1])
                    .with_bias(false)
                    .init(device),
                out: scaled(one(k, 2 * c2), 0.0),
            });
            LiveContext {
                convs: vec![conv(3, k, 2), conv(k, k, 2), conv(k, k, 2)],
                fc: one(k + self.live_styles, k),
                scale: film(),
                shift: film(),
                grid,
            }
        });
        let blocks = (0..self.live_blocks)
            .map(|b| {
                let d = if self.live_dilate { 1 << b.min(3) } else { 1 };
                // Start each residual branch near identity (no norm layers to tame it).
                let second = dconv(c2, c2, 1, d);
                let second = Conv2d {
                    bias: second.bias.clone(),
                    ..scaled(second, 0.1)
                };
                LiveBlock {
                    first: dconv(c2, c2, 1, d),
                    second,
                }
            })
            .collect();
        let c3 = self.live_deep;
        // The level's output conv starts at zero: the network starts as the plain one.
        let deep = (c3 > 0).then(|| LiveDeep {
            down: conv(c2, c3, 2),
            block: LiveBlock {
                first: conv(c3, c3, 1),
                second: scaled(conv(c3, c3, 1), 0.1),
            },
            up: scaled(conv(c3, 4 * c2, 1), 0.0),
        });
        let (up2_out, output) = if self.live_out == 0 {
            (12, None)
        } else {
            (4 * self.live_out, Some(conv(self.live_out, 3, 1)))
        };
        LiveNet {
            down1: conv(3, c1, 2),
            down2: conv(c1, c2, 2),
            blocks,
            up1: conv(c2, 4 * c1, 1),
            up2: conv(c1, up2_out, 1),
            output,
            shuffle: PixelShuffleConfig::new(2).init(),
            context,
            deep,
        }
    }
}

/// The whole-frame context branch: per-channel scales and shifts for the 1/4-resolution
/// features (one pair after the encoder and one after each residual block).
#[derive(Module, Debug)]
pub struct LiveContext {
    /// Stride-2 3x3 convs on the 4x4-pooled frame, each followed by ReLU.
    pub convs: Vec<Conv2d>,
    /// 1x1 conv on the global average (and, for a conditional student, the style vector
    /// after it), followed by ReLU.
    pub fc: Conv2d,
    /// 1x1 convs to `1 + scale` (the 1 is added in forward) and to the shift.
    pub scale: Vec<Conv2d>,
    pub shift: Vec<Conv2d>,
    /// The spatial context (`live_grid`).
    pub grid: Option<LiveGrid>,
}

pub use grid::{GRID_UP, GridMap, LiveGrid};

/// The input of the context branch: the frame average-pooled 4x4 (ONNX AveragePool).
pub fn context_input(frame: Tensor<4>) -> Tensor<4> {
    let mut o = AvgPoolOptions::new([4, 4]);
    o.stride = [4, 4];
    avg_pool2d(frame, o)
}

impl LiveContext {
    /// (scale, shift) per FiLM point, each [n, C2, 1, 1], from a pooled frame and, for a
    /// conditional student, the style vectors `styles` [n, S, 1, 1] (None: all zero); and
    /// with a spatial context its map.
    pub fn film(
        &self,
        pooled: Tensor<4>,
        styles: Option<Tensor<4>>,
    ) -> (Vec<(Tensor<4>, Tensor<4>)>, Option<GridMap>) {
        let mut c = pooled;
        for conv in &self.convs {
            c = relu(conv.forward(c));
        }
        let g = c.clone().mean_dim(2).mean_dim(3);
        let [n, k, _, _] = g.dims();
        let extra = self.fc.weight.dims()[1].saturating_sub(k);
        let g = match (extra, styles) {
            (0, _) => g,
            (_, Some(s)) => Tensor::cat(vec![g, s], 1),
            (s, None) => {
                let zeros = Tensor::zeros([n, s, 1, 1], &g.device());
                Tensor::cat(vec![g, zeros], 1)
            }
        };
        let h = relu(self.fc.forward(g));
        let grid = self.grid.as_ref().map(|gr| {
            let z = gr.local.forward(c) + gr.global.forward(h.clone());
            GridMap::new(gr.out.forward(relu(z)))
        });
        let film = self
            .scale
            .iter()
            .zip(&self.shift)
            .map(|(s, b)| (s.forward(h.clone()) + 1.0, b.forward(h.clone())))
            .collect();
        (film, grid)
    }
}

/// The 1/8-resolution level: stride-2 conv + ReLU, a residual block, ReLU, conv to 4*C2,
/// pixel shuffle back to 1/4.
#[derive(Module, Debug)]
pub struct LiveDeep {
    pub down: Conv2d,
    pub block: LiveBlock,
    pub up: Conv2d,
}

/// conv3x3 -> ReLU -> conv3x3, plus the input.
#[derive(Module, Debug)]
pub struct LiveBlock {
    pub first: Conv2d,
    pub second: Conv2d,
}

impl LiveBlock {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        x.clone() + self.second.forward(relu(self.first.forward(x)))
    }
}

#[derive(Module, Debug)]
pub struct LiveNet {
    pub down1: Conv2d,
    pub down2: Conv2d,
    pub blocks: Vec<LiveBlock>,
    pub up1: Conv2d,
    pub up2: Conv2d,
    /// The full-resolution conv to RGB (absent when `live_out` is 0).
    pub output: Option<Conv2d>,
    pub shuffle: PixelShuffle,
    /// The whole-frame context branch (`live_context` > 0).
    pub context: Option<LiveContext>,
    /// The 1/8-resolution level (`live_deep` > 0).
    pub deep: Option<LiveDeep>,
}

impl LiveNet {
    /// Length of a conditional student's style vector (0: a one-style student).
    pub fn styles(&self) -> usize {
        self.context.as_ref().map_or(0, |c| {
            let k = c.fc.weight.dims()[0];
            c.fc.weight.dims()[1].saturating_sub(k)
        })
    }

    /// RGB 0..1 in, stylized RGB 0..1 out.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let pooled = self.context.as_ref().map(|_| context_input(x.clone()));
        self.forward_with(x, pooled)
    }

    /// `x` (a crop, or the whole frame) with the context branch fed `pooled`, the whole
    /// frame's [`context_input`] (ignored without a context branch).
    pub fn forward_with(&self, x: Tensor<4>, pooled: Option<Tensor<4>>) -> Tensor<4> {
        self.forward_styled(x, pooled, None)
    }

    /// [`Self::forward_with`] for a conditional student: `styles` [n, S, 1, 1] are the style
    /// vectors (None: all zero; ignored by a one-style student).
    pub fn forward_styled(
        &self,
        x: Tensor<4>,
        pooled: Option<Tensor<4>>,
        styles: Option<Tensor<4>>,
    ) -> Tensor<4> {
        self.forward_at(x, pooled, styles, &[])
    }

    /// [`Self::forward_styled`] for crops: `at[i]` is crop i's top-left corner in the
    /// whole frame (rows, columns; multiples of 4), where a spatial context cuts its map
    /// (empty: the whole frame).
    pub fn forward_at(
        &self,
        x: Tensor<4>,
        pooled: Option<Tensor<4>>,
        styles: Option<Tensor<4>>,
        at: &[[usize; 2]],
    ) -> Tensor<4> {
        let (film, grid) = match (&self.context, pooled) {
            (Some(c), Some(p)) => c.film(p, styles),
            _ => (Vec::new(), None),
        };
        let apply = |x: Tensor<4>, i: usize| match film.get(i) {
            Some((s, b)) => x * s.clone() + b.clone(),
            None => x,
        };
        let x1 = relu(self.down1.forward(x));
        let mut x = apply(relu(self.down2.forward(x1.clone())), 0);
        for (i, b) in self.blocks.iter().enumerate() {
            x = apply(b.forward(x), i + 1);
        }
        if let Some(grid) = &grid {
            let [_, _, h4, w4] = x.dims();
            let at: Vec<[usize; 2]> = at.iter().map(|&[y, x]| [y / 4, x / 4]).collect();
            let (s, b) = grid.at(h4, w4, &at);
            x = x * s + b;
        }
        if let Some(d) = &self.deep {
            let z = d.block.forward(relu(d.down.forward(x.clone())));
            x = x + self.shuffle.forward(d.up.forward(relu(z)));
        }
        let y = self.shuffle.forward(relu(self.up1.forward(x))) + x1;
        let y = self.up2.forward(y);
        let y = match &self.output {
            Some(out) => out.forward(self.shuffle.forward(relu(y))),
            None => self.shuffle.forward(y),
        };
        sigmoid(y)
    }

    /// Floating-point operations of the convolutions (2 per multiply-add) for one
    /// `width`x`height` frame.
    pub fn flops(&self, width: usize, height: usize) -> u64 {
        let macs = |c: &Conv2d, h: usize, w: usize| {
            let [o, i, kh, kw] = c.weight.dims();
            (o * i * kh * kw * h * w) as u64
        };
        let (h2, w2, h4, w4) = (height / 2, width / 2, height / 4, width / 4);
        let mut m = macs(&self.down1, h2, w2) + macs(&self.down2, h4, w4);
        for b in &self.blocks {
            m += macs(&b.first, h4, w4) + macs(&b.second, h4, w4);
        }
        m += macs(&self.up1, h4, w4) + macs(&self.up2, h2, w2);
        if let Some(out) = &self.output {
            m += macs(out, height, width);
        }
        if let Some(d) = &self.deep {
            let (h8, w8) = (height / 8, width / 8);
            m += macs(&d.down, h8, w8) + macs(&d.block.first, h8, w8);
            m += macs(&d.block.second, h8, w8) + macs(&d.up, h8, w8);
        }
        if let Some(c) = &self.context {
            let (mut h, mut w) = (height / 4, width / 4);
            for conv in &c.convs {
                (h, w) = (h.div_ceil(2), w.div_ceil(2));
                m += macs(conv, h, w);
            }
            if let Some(g) = &c.grid {
                m += macs(&g.local, h, w) + macs(&g.out, h, w);
            }
        }
        2 * m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_keeps_the_frame_size_and_counts_its_flops() {
        let device = Device::flex();
        for cfg in [
            LiveConfig::new([4, 8], 1),
            LiveConfig::new([4, 8], 3)
                .with_live_out(0)
                .with_live_dilate(true),
            LiveConfig::new([4, 8], 2).with_live_context(4),
            LiveConfig::new([4, 8], 2)
                .with_live_context(4)
                .with_live_grid(true),
        ] {
            let net = cfg.init(&device);
            let x =
                Tensor::<4>::random([2, 3, 8, 12], burn::tensor::Distribution::Default, &device);
            assert_eq!(net.forward(x).dims(), [2, 3, 8, 12], "{}", cfg.label());
        }
        // 16/32 x4 C0 8 at 640x360, by hand (MACs): 9 * (3*16*320*180 + 16*32*160*90
        // + 8*32*32*160*90 + 32*64*160*90 + 16*32*320*180 + 8*3*640*360).
        let net = LiveConfig::new([16, 32], 4).init(&device);
        let macs: u64 = 9
            * (3 * 16 * 57600
                + 16 * 32 * 14400
                + 8 * 32 * 32 * 14400
                + 32 * 64 * 14400
                + 16 * 32 * 57600
                + 8 * 3 * 230400);
        assert_eq!(net.flops(640, 360), 2 * macs);
        // A 1/8 level of 64 channels at 640x360 (80x45): stride-2 conv 32->64, two 64->64
        // convs, a conv 64->128; on frames that are multiples of 8.
        let deep = LiveConfig::new([16, 32], 4)
            .with_live_deep(64)
            .init(&device);
        let level: u64 = 9 * 3600 * (64 * 32 + 2 * 64 * 64 + 128 * 64);
        assert_eq!(deep.flops(640, 360), 2 * (macs + level));
        let x = Tensor::<4>::random([1, 3, 16, 24], burn::tensor::Distribution::Default, &device);
        assert_eq!(deep.forward(x).dims(), [1, 3, 16, 24]);
        assert_eq!(LiveConfig::parse_channels("16, 32"), Some([16, 32]));
        assert_eq!(LiveConfig::parse_channels("16"), None);
        // A checkpoint written before `live_dilate` existed still reads (and matches).
        let old = r#"{"live_channels":[16,32],"live_blocks":3,"live_out":0}"#;
        let c = LiveConfig::from_json(old).unwrap();
        assert!(!c.live_dilate && c.same_as_json(old));
        assert!(LiveConfig::from_json(r#"{"channels":[4,8,8],"residual_blocks":1}"#).is_none());
    }
}
