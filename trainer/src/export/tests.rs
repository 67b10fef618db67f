//! The ONNX export tests: ONNX Runtime on the exported graph matches the burn forward pass, the live graphs hold only the fast ops, the context branch counts.

use super::*;
use crate::live::LiveNet;
use crate::teacher::OnnxImageModel;
use crate::transformer::TransformerConfig;

fn round_trip(cfg: TransformerConfig, label: &str) {
    let net = cfg.init(&Device::flex());
    round_trip_net(&net, |x| net.forward(x), label);
}

fn round_trip_net<N: ToOnnx>(net: &N, forward: impl Fn(Tensor<4>) -> Tensor<4>, label: &str) {
    round_trip_at(net, forward, label, [12, 16]);
}

/// The round trip on a `[h, w]` frame.
fn round_trip_at<N: ToOnnx>(
    net: &N,
    forward: impl Fn(Tensor<4>) -> Tensor<4>,
    label: &str,
    [h, w]: [usize; 2],
) {
    let device = Device::flex();
    let dir = tempfile::tempdir().unwrap();
    let info = ManifestInfo {
        name: "roundtrip",
        description: "test",
        provenance: "test",
        student_of: None,
        styles: &[],
    };
    // A missing output folder is made.
    let out = dir.path().join("new");
    export(net, &out, &info).unwrap();
    let manifest = std::fs::read_to_string(out.join("roundtrip.toml")).unwrap();
    let pad = format!("pad-multiple = {}", net.pad_multiple());
    assert!(manifest.contains("input = \"image\"") && manifest.contains(&pad));
    let what = format!("onnx round trip ({label})");
    let Some(mut model) = OnnxImageModel::open_or_skip(&out.join("roundtrip.onnx"), &what) else {
        return;
    };
    let x = Tensor::<4>::random([1, 3, h, w], burn::tensor::Distribution::Default, &device);
    let want: Vec<f32> = forward(x.clone()).into_data().try_to_vec::<f32>().unwrap();
    let input: Vec<f32> = x.into_data().try_to_vec::<f32>().unwrap();
    let got = model.run(&input, [1, 3, h, w]).unwrap();
    let worst = max_diff(&got, &want);
    assert!(worst < 1e-4, "{label}: max |onnx - burn| = {worst}");
}

/// The op type of every node, in graph order.
fn op_types(model: &ModelProto) -> Vec<&str> {
    model
        .graph
        .node
        .iter()
        .map(|n| n.op_type.as_str())
        .collect()
}

/// The largest difference between two outputs of the same shape.
fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn onnx_export_matches_the_burn_forward_pass() {
    let tiny = TransformerConfig::preset("tiny").unwrap();
    round_trip(tiny.clone(), "nearest");
    round_trip(tiny.clone().with_shuffle(true), "shuffle");
    let mut sep = tiny.with_separable(true);
    sep.residual_blocks = 2;
    round_trip(sep, "separable");
}

#[test]
fn live_onnx_export_matches_the_burn_forward_pass_with_only_fast_ops() {
    use crate::live::LiveConfig;
    for cfg in [
        LiveConfig::new([4, 8], 2),
        LiveConfig::new([8, 8], 3)
            .with_live_out(0)
            .with_live_dilate(true),
    ] {
        let net = cfg.init(&Device::flex());
        let bytes = net.to_onnx("live");
        let model = ModelProto::parse_from_bytes(&bytes).unwrap();
        for n in &model.graph.node {
            assert!(
                ["Conv", "Relu", "Add", "DepthToSpace", "Sigmoid"].contains(&n.op_type.as_str()),
                "{}: unexpected op {}",
                cfg.label(),
                n.op_type
            );
        }
        round_trip_net(&net, |x| net.forward(x), &cfg.label());
    }
}

/// Gives a live net's context branch random weights so the FiLM path counts (its scales and
/// shifts start at zero). The same weights every run (the seed is global: other tests
/// drawing at the same time can still shift it, so the biases below also keep the checks
/// from depending on luck): the context convs and the 1x1 conv get biases around 0.5, so
/// their ReLUs pass most of the input and the scales really vary with the frame (centred at
/// 0, a draw could zero a whole layer and cut the context off).
fn randomize_context(net: &mut LiveNet, device: &Device) {
    device.seed(13);
    let random = |c: Conv2d, bias_mean: f64| Conv2d {
        weight: c.weight.map(|w| {
            Tensor::random(
                w.dims(),
                burn::tensor::Distribution::Normal(0.0, 0.5),
                device,
            )
        }),
        bias: c.bias.map(|b| {
            b.map(|b| {
                Tensor::random(
                    b.dims(),
                    burn::tensor::Distribution::Normal(bias_mean, 0.25),
                    device,
                )
            })
        }),
        ..c
    };
    let ctx = net.context.take().unwrap();
    net.context = Some(crate::live::LiveContext {
        convs: ctx.convs.into_iter().map(|c| random(c, 0.5)).collect(),
        fc: random(ctx.fc, 0.5),
        scale: ctx.scale.into_iter().map(|c| random(c, 0.0)).collect(),
        shift: ctx.shift.into_iter().map(|c| random(c, 0.0)).collect(),
        grid: ctx.grid.map(|g| crate::live::LiveGrid {
            local: random(g.local, 0.5),
            global: random(g.global, 0.0),
            out: random(g.out, 0.0),
        }),
    });
}

#[test]
fn live_grid_onnx_export_matches_the_burn_forward_pass() {
    use crate::live::LiveConfig;
    let device = Device::flex();
    let cfg = LiveConfig::new([4, 8], 2)
        .with_live_out(0)
        .with_live_context(6)
        .with_live_grid(true);
    let mut net = cfg.init(&device);
    randomize_context(&mut net, &device);
    // Scales and shifts a tenth of randomize_context's, nearer trained ones: at its scales
    // the features reach ~1e4 and float rounding alone (x * (1 + s) in ONNX against
    // x * s + x in burn) moves the output by ~1e-4.
    let damp = |c: Conv2d| Conv2d {
        weight: c.weight.map(|w| w * 0.1),
        bias: c.bias.map(|b| b.map(|b| b * 0.1)),
        ..c
    };
    let mut ctx = net.context.take().unwrap();
    ctx.scale = ctx.scale.into_iter().map(damp).collect();
    ctx.shift = ctx.shift.into_iter().map(damp).collect();
    ctx.grid = ctx.grid.map(|g| crate::live::LiveGrid {
        out: damp(g.out),
        ..g
    });
    net.context = Some(ctx);
    let model = ModelProto::parse_from_bytes(&net.to_onnx("live")).unwrap();
    let ops = op_types(&model);
    // The grid adds a Resize per map (scale, shift) and the Shape and Slices that cut them.
    assert_eq!(ops.iter().filter(|o| **o == "Resize").count(), 2);
    assert_eq!(ops.iter().filter(|o| **o == "Mul").count(), 4);
    // The grid counts: the same net without it gives another picture.
    let x = Tensor::<4>::random([1, 3, 40, 72], burn::tensor::Distribution::Default, &device);
    let mut plain = net.clone();
    if let Some(c) = plain.context.as_mut() {
        c.grid = None;
    }
    let diff: f32 = (net.forward(x.clone()) - plain.forward(x))
        .abs()
        .max()
        .into_scalar();
    assert!(diff > 1e-3, "the grid changed nothing ({diff})");
    // 40x72: features 10x18, a 2x3 map upsampled to 16x24 and cut, so the Slice counts.
    round_trip_at(&net, |x| net.forward(x), "live grid", [40, 72]);
}

#[test]
fn live_context_onnx_export_matches_the_burn_forward_pass() {
    use crate::live::LiveConfig;
    let device = Device::flex();
    let cfg = LiveConfig::new([4, 8], 2).with_live_context(6);
    let mut net = cfg.init(&device);
    randomize_context(&mut net, &device);
    let model = ModelProto::parse_from_bytes(&net.to_onnx("live")).unwrap();
    let ops = op_types(&model);
    for op in &ops {
        assert!(
            [
                "Conv",
                "Relu",
                "Add",
                "Mul",
                "DepthToSpace",
                "Sigmoid",
                "AveragePool",
                "GlobalAveragePool"
            ]
            .contains(op),
            "unexpected op {op}"
        );
    }
    // One scale (Mul) per FiLM point: after the encoder and after each of 2 blocks.
    assert_eq!(ops.iter().filter(|o| **o == "Mul").count(), 3);
    // The output follows the context: the same pixels under a darker frame's context.
    let x = Tensor::<4>::random([1, 3, 16, 32], burn::tensor::Distribution::Default, &device);
    let darker = crate::live::context_input(x.clone() * 0.3);
    let own = net.forward(x.clone());
    let other = net.forward_with(x, Some(darker));
    let diff: f32 = (own - other).abs().max().into_scalar();
    assert!(diff > 1e-3, "the context branch changed nothing ({diff})");
    round_trip_net(&net, |x| net.forward(x), "live context");
}

#[test]
fn live_deep_onnx_export_matches_the_burn_forward_pass() {
    use crate::live::LiveConfig;
    let device = Device::flex();
    let cfg = LiveConfig::new([4, 8], 2)
        .with_live_out(0)
        .with_live_deep(6);
    let mut net = cfg.init(&device);
    assert_eq!(net.pad_multiple(), 8);
    assert_eq!(
        cfg.init(&device)
            .forward(Tensor::zeros([1, 3, 16, 24], &device))
            .dims(),
        [1, 3, 16, 24]
    );
    // The level's output conv starts at zero; give it weights so the level counts.
    device.seed(17);
    let mut deep = net.deep.take().unwrap();
    deep.up.weight = deep.up.weight.map(|w| {
        Tensor::random(
            w.dims(),
            burn::tensor::Distribution::Normal(0.0, 0.5),
            &device,
        )
    });
    net.deep = Some(deep);
    let plain = LiveNet {
        deep: None,
        ..net.clone()
    };
    let x = Tensor::<4>::random([1, 3, 16, 24], burn::tensor::Distribution::Default, &device);
    let diff: f32 = (net.forward(x.clone()) - plain.forward(x))
        .abs()
        .max()
        .into_scalar();
    assert!(diff > 1e-3, "the 1/8 level changed nothing ({diff})");
    let model = ModelProto::parse_from_bytes(&net.to_onnx("live")).unwrap();
    for n in &model.graph.node {
        assert!(
            ["Conv", "Relu", "Add", "DepthToSpace", "Sigmoid"].contains(&n.op_type.as_str()),
            "unexpected op {}",
            n.op_type
        );
    }
    round_trip_at(&net, |x| net.forward(x), "live deep", [16, 24]);
}

/// A conditional student (`--teacher-style all`): the style vector goes into the context
/// branch, the ONNX graph takes it as `style_weights` [S] like the teacher, ONNX Runtime
/// matches burn with a blend fed, and the manifest names the styles.
#[test]
fn conditional_live_onnx_export_takes_the_style_vector() {
    use crate::live::LiveConfig;
    let device = Device::flex();
    let cfg = LiveConfig::new([4, 8], 2)
        .with_live_context(6)
        .with_live_styles(3);
    let mut net = cfg.init(&device);
    randomize_context(&mut net, &device);
    assert_eq!(net.styles(), 3);
    let names: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
    let dir = tempfile::tempdir().unwrap();
    let info = |styles| ManifestInfo {
        name: "cond",
        description: "test",
        provenance: "test",
        student_of: Some(("teacher", "all")),
        styles,
    };
    let e = export(&net, dir.path(), &info(&names[..2])).unwrap_err();
    assert_eq!(
        e.to_string(),
        "cond takes a vector of 3 styles but 2 style names were given"
    );
    export(&net, dir.path(), &info(&names)).unwrap();
    let manifest = stylerd_manifest::Manifest::parse(
        &std::fs::read_to_string(dir.path().join("cond.toml")).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest.style_input.as_deref(), Some(STYLE_INPUT));
    assert_eq!(manifest.styles, names);
    assert_eq!(manifest.student_style.as_deref(), Some("all"));
    let model = ModelProto::parse_from_bytes(&net.to_onnx("cond")).unwrap();
    let inputs: Vec<&str> = model.graph.input.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(inputs, [INPUT, STYLE_INPUT]);
    let (h, w) = (12, 16);
    let x = Tensor::<4>::random([1, 3, h, w], burn::tensor::Distribution::Default, &device);
    let styled = |v: [f32; 3]| {
        let s = Tensor::<1>::from_floats(v, &device).reshape([1, 3, 1, 1]);
        let pooled = crate::live::context_input(x.clone());
        net.forward_styled(x.clone(), Some(pooled), Some(s))
    };
    // The output follows the style vector.
    let diff: f32 = (styled([1.0, 0.0, 0.0]) - styled([0.0, 0.0, 1.0]))
        .abs()
        .max()
        .into_scalar();
    assert!(diff > 1e-3, "the style vector changed nothing ({diff})");
    let blend = [0.25, 0.75, 0.0];
    let want: Vec<f32> = styled(blend).into_data().try_to_vec::<f32>().unwrap();
    let onnx = dir.path().join("cond.onnx");
    let style = Some((STYLE_INPUT.into(), blend.to_vec()));
    let what = "conditional onnx round trip";
    let Some(mut model) = OnnxImageModel::open_styled_or_skip(&onnx, what, style) else {
        return;
    };
    let input: Vec<f32> = x.into_data().try_to_vec::<f32>().unwrap();
    let got = model.run(&input, [1, 3, h, w]).unwrap();
    let worst = max_diff(&got, &want);
    // float32 convs in two engines: summation order differs (as in round_trip_at).
    assert!(worst < 1e-4, "max |onnx - burn| = {worst}");
}
