//! The MobileNetV2 loss-net tests: the block layout, the real predictor's trunk and its
//! features against ONNX Runtime, the loss-net taps, and a model without the trunk refused.

use super::*;

fn load() -> Option<MobileNetV2> {
    let path = predictor_path();
    if !path.exists() {
        stylerd_testkit::skip(
            stylerd_testkit::Kind::Setup,
            &format!("{} missing (run `make deps models`)", path.display()),
        );
        return None;
    }
    Some(MobileNetV2::from_onnx(&path, &Device::flex()).unwrap())
}

#[test]
fn layout_is_mobilenetv2_with_strides_2_4_8_16_32() {
    let l = block_layout();
    assert_eq!(l.len(), 17);
    let strides: Vec<usize> = l.iter().map(|b| b.stride).collect();
    assert_eq!(strides.iter().filter(|&&s| s == 2).count(), 4);
    assert_eq!(
        [l[1].stride, l[3].stride, l[6].stride, l[13].stride],
        [2; 4]
    );
    assert_eq!(l[16].out_c, 320);
    assert_eq!(l[0].hidden, 32);
}

#[test]
fn predictor_trunk_loads_with_the_right_layers_and_shapes() {
    let Some(net) = load() else { return };
    assert_eq!(net.stem.weight.dims(), [32, 3, 3, 3]);
    assert_eq!(net.blocks.len(), 17);
    for (blk, b) in net.blocks.iter().zip(block_layout()) {
        assert_eq!(blk.expand.is_some(), b.hidden != b.in_c);
        if let Some(e) = &blk.expand {
            assert_eq!(e.weight.dims(), [b.hidden, b.in_c, 1, 1]);
        }
        assert_eq!(blk.depthwise.weight.dims(), [b.hidden, 1, 3, 3]);
        assert_eq!(blk.project.weight.dims(), [b.out_c, b.hidden, 1, 1]);
        assert_eq!(blk.residual, b.stride == 1 && b.in_c == b.out_c);
    }
    let residuals = net.blocks.iter().filter(|b| b.residual).count();
    assert_eq!(residuals, 10, "the predictor has 10 Add nodes");
}

#[test]
fn predictor_features_match_onnx_runtime() {
    let Some(net) = load() else { return };
    // Reference: ONNX Runtime 1.x on arbitrary_predict.onnx with the activation
    // Quantize/DequantizeLinear pairs made Identity (weights still dequantized by the
    // graph), input resized to 64x64, the tap tensors exposed as outputs; this image.
    let s = 64;
    let img: Vec<f32> = (0..3)
        .flat_map(|c| {
            (0..s).flat_map(move |y| {
                (0..s).map(move |x| ((x * 3 + y * 5 + c * 7) % 11) as f32 / 10.0)
            })
        })
        .collect();
    let device = Device::flex();
    let x = Tensor::<4>::from_data(TensorData::new(img, [1, 3, s, s]), &device);
    let taps: Vec<String> = ["conv", "block0", "block2", "block5", "block12"]
        .iter()
        .map(|t| t.to_string())
        .collect();
    let f = net.features(x, &taps);
    #[allow(clippy::type_complexity)]
    let expected: [(&str, [usize; 4], f64, [(usize, f32); 4]); 5] = [
        (
            "conv",
            [1, 32, 32, 32],
            50967.3475,
            [(0, 1.8709), (17, 2.39523), (10922, 0.0), (32763, 5.03163)],
        ),
        (
            "block0",
            [1, 16, 32, 32],
            11760.5638,
            [
                (0, -2.55975),
                (17, 4.92012),
                (5461, -13.75929),
                (16379, 6.33319),
            ],
        ),
        (
            "block2",
            [1, 24, 16, 16],
            7329.0057,
            [
                (0, 1.16718),
                (17, 0.45916),
                (2048, -0.74156),
                (6139, -0.78163),
            ],
        ),
        (
            "block5",
            [1, 32, 8, 8],
            -2828.8340,
            [
                (0, 2.92854),
                (17, 1.09924),
                (682, -2.24966),
                (2043, -2.3631),
            ],
        ),
        (
            "block12",
            [1, 96, 4, 4],
            1387.7859,
            [
                (0, -1.469),
                (17, -0.03566),
                (512, -3.63542),
                (1531, 4.63127),
            ],
        ),
    ];
    for (tap, dims, sum, values) in expected {
        assert_eq!(f[tap].dims(), dims, "{tap}");
        let v: Vec<f32> = f[tap].clone().into_data().try_to_vec::<f32>().unwrap();
        let got: f64 = v.iter().map(|&x| x as f64).sum();
        assert!((got - sum).abs() < 0.05, "{tap}: sum {got}, expected {sum}");
        for (i, want) in values {
            assert!(
                (v[i] - want).abs() < 1e-3,
                "{tap}[{i}] = {}, ONNX Runtime {want}",
                v[i]
            );
        }
    }
}

#[test]
fn loss_net_mobilenetv2_defaults_name_existing_taps() {
    if load().is_none() {
        return;
    }
    let net = crate::lossnet::LossNet::load("mobilenetv2", &Device::flex()).unwrap();
    let (content, style) = net.default_layers();
    let taps = net.tap_names();
    assert!(content.iter().chain(&style).all(|l| taps.contains(l)));
    let x = Tensor::<4>::ones([1, 3, 32, 32], &Device::flex()) * 0.5;
    let f = net.features(x, &style);
    assert_eq!(f["block12"].dims(), [1, 96, 2, 2]);
}

#[test]
fn a_model_without_the_trunk_is_refused_with_the_missing_scope() {
    let path = predictor_path().with_file_name("multistyle26.onnx");
    if !path.exists() {
        stylerd_testkit::skip(
            stylerd_testkit::Kind::Setup,
            &format!("{} missing (run `make models`)", path.display()),
        );
        return;
    }
    let err = MobileNetV2::from_onnx(&path, &Device::flex())
        .unwrap_err()
        .to_string();
    assert!(err.contains("`MobilenetV2/Conv/`"), "{err}");
}
