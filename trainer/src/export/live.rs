//! The live students' ONNX graph (issue 13): Conv, Relu, Add and DepthToSpace, with the
//! context branch's pools, broadcast Mul and Add, and a conditional student's style input
//! (Reshape, Concat).

use std::ops::Range;

use burn::nn::conv::Conv2d;

use super::*;
use crate::live::{GRID_UP, LiveBlock, LiveNet};

/// The 1x1 conv `c` restricted to its output channels `rows`, with `plus` added to their
/// biases (a FiLM scale's 1), on `x`.
fn conv_rows(g: &mut Graph, c: &Conv2d, rows: Range<usize>, plus: f32, x: &str) -> String {
    let (wd, w) = host(&c.weight);
    let bias = match &c.bias {
        Some(b) => host(b).1,
        None => vec![0.0; wd[0] as usize],
    };
    let per = w.len() / wd[0] as usize;
    let dims = vec![rows.len() as i64, wd[1], wd[2], wd[3]];
    let w = g.floats("w", dims, w[rows.start * per..rows.end * per].to_vec());
    let b = bias[rows.clone()].iter().map(|v| v + plus).collect();
    let b = g.floats("b", vec![rows.len() as i64], b);
    g.node("Conv", &[x, &w, &b], vec![])
}

impl ToOnnx for LiveNet {
    fn pad_multiple(&self) -> u32 {
        if self.deep.is_some() { 8 } else { 4 }
    }

    fn styles(&self) -> usize {
        self.styles()
    }

    fn to_onnx(&self, name: &str) -> Vec<u8> {
        let mut g = Graph::default();
        let conv = |g: &mut Graph, c: &Conv2d, x: &str| g.conv_padded(c, x, 1);
        let shuffle = |g: &mut Graph, x: &str| {
            g.node(
                "DepthToSpace",
                &[x],
                vec![attr_int("blocksize", 2), attr_str("mode", "CRD")],
            )
        };
        // The context branch: (scale, shift) per FiLM point, each [1, C2, 1, 1].
        let mut film = Vec::new();
        let mut grid = None;
        if let Some(c) = &self.context {
            let mut y = g.node(
                "AveragePool",
                &[INPUT],
                vec![
                    attr_ints("kernel_shape", &[4, 4]),
                    attr_ints("strides", &[4, 4]),
                ],
            );
            for cv in &c.convs {
                let z = conv(&mut g, cv, &y);
                y = g.node("Relu", &[&z], vec![]);
            }
            let map = y.clone();
            let mut y = g.node("GlobalAveragePool", &[&y], vec![]);
            if self.styles() > 0 {
                // The style vector [S] as [1, S, 1, 1] after the global average.
                let shape = g.ints("shape", vec![1, self.styles() as i64, 1, 1]);
                let s = g.node("Reshape", &[STYLE_INPUT, &shape], vec![]);
                y = g.node("Concat", &[&y, &s], vec![attr_int("axis", 1)]);
            }
            let y = g.conv(&c.fc, &y);
            let h = g.node("Relu", &[&y], vec![]);
            if let Some(gr) = &c.grid {
                // GridMap: ReLU(local(map) + global(h)), then to 2 * C2 channels.
                let a = g.conv(&gr.local, &map);
                let b = g.conv(&gr.global, &h);
                let z = g.node("Add", &[&a, &b], vec![]);
                let z = g.node("Relu", &[&z], vec![]);
                // The out conv as two: to 1 + scale (the 1 in the bias) and to the shift.
                let half = gr.out.weight.dims()[0] / 2;
                let scale = conv_rows(&mut g, &gr.out, 0..half, 1.0, &z);
                let shift = conv_rows(&mut g, &gr.out, half..2 * half, 0.0, &z);
                grid = Some((scale, shift));
            }
            for (s, b) in c.scale.iter().zip(&c.shift) {
                // 1 + scale: the 1 goes into the conv's bias.
                let scale = conv_rows(&mut g, s, 0..s.weight.dims()[0], 1.0, &h);
                let shift = g.conv(b, &h);
                film.push((scale, shift));
            }
        }
        let apply = |g: &mut Graph, x: String, i: usize| match film.get(i) {
            Some((s, b)) => {
                let y = g.node("Mul", &[&x, s], vec![]);
                g.node("Add", &[&y, b], vec![])
            }
            None => x,
        };
        let y = conv(&mut g, &self.down1, INPUT);
        let x1 = g.node("Relu", &[&y], vec![]);
        let y = conv(&mut g, &self.down2, &x1);
        let y = g.node("Relu", &[&y], vec![]);
        // LiveBlock::forward: conv, ReLU, conv, plus the input.
        let block = |g: &mut Graph, b: &LiveBlock, x: &str| {
            let y = conv(g, &b.first, x);
            let y = g.node("Relu", &[&y], vec![]);
            let y = conv(g, &b.second, &y);
            g.node("Add", &[x, &y], vec![])
        };
        let mut x = apply(&mut g, y, 0);
        for (i, b) in self.blocks.iter().enumerate() {
            let y = block(&mut g, b, &x);
            x = apply(&mut g, y, i + 1);
        }
        if let Some((sc, sh)) = &grid {
            // GridMap::at for the whole frame: each map x8 linear half-pixel, cut to the
            // features' size from the top-left corner.
            let up = GRID_UP as f32;
            let scales = g.floats("scales", vec![4], vec![1.0, 1.0, up, up]);
            let shape = g.node("Shape", &[&x], vec![]);
            let (two, four) = (g.ints("start", vec![2]), g.ints("end", vec![4]));
            let hw = g.node("Slice", &[&shape, &two, &four], vec![]);
            let zero = g.ints("zero", vec![0, 0]);
            let axes = g.ints("axes", vec![2, 3]);
            let full = |g: &mut Graph, m: &str| {
                let m = g.node(
                    "Resize",
                    &[m, "", &scales],
                    vec![
                        attr_str("mode", "linear"),
                        attr_str("coordinate_transformation_mode", "half_pixel"),
                    ],
                );
                g.node("Slice", &[&m, &zero, &hw, &axes], vec![])
            };
            let (s, b) = (full(&mut g, sc), full(&mut g, sh));
            let y = g.node("Mul", &[&x, &s], vec![]);
            x = g.node("Add", &[&y, &b], vec![]);
        }
        if let Some(d) = &self.deep {
            let z = conv(&mut g, &d.down, &x);
            let z = g.node("Relu", &[&z], vec![]);
            let z = block(&mut g, &d.block, &z);
            let z = g.node("Relu", &[&z], vec![]);
            let y = conv(&mut g, &d.up, &z);
            let y = shuffle(&mut g, &y);
            x = g.node("Add", &[&x, &y], vec![]);
        }
        let y = conv(&mut g, &self.up1, &x);
        let y = g.node("Relu", &[&y], vec![]);
        let y = shuffle(&mut g, &y);
        let y = g.node("Add", &[&y, &x1], vec![]);
        let y = conv(&mut g, &self.up2, &y);
        let y = match &self.output {
            Some(out) => {
                let y = g.node("Relu", &[&y], vec![]);
                let y = shuffle(&mut g, &y);
                conv(&mut g, out, &y)
            }
            None => shuffle(&mut g, &y),
        };
        g.node("Sigmoid", &[&y], vec![]);
        let mut inputs = vec![image_value(INPUT)];
        if self.styles() > 0 {
            let s = dimension::Value::DimValue(self.styles() as i64);
            inputs.push(value(STYLE_INPUT, vec![s]));
        }
        finish(g, name, inputs)
    }
}
