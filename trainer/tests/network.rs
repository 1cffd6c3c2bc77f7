//! The network built from a `bnas-models` spec: its VarStore holds exactly the spec's
//! state_dict under the canonical names, and a binary block computes what plain loops compute.

use std::collections::BTreeMap;

use bnas_models::{BatchNorm as BnSpec, ConvSpec, InputShape, NetworkConfig, Overrides, Precision};
use bnas_trainer::binary::WeightBinarizer;
use bnas_trainer::network::{ConvBlock, Network};
use tch::{nn, Device, Kind, Tensor};

#[test]
fn varstore_names_and_shapes_are_the_spec_state_dict() {
    let overrides = Overrides {
        layers: Some(6),
        channels: Some(4),
        input: Some(InputShape { channels: 1, height: 28, width: 28 }),
        ..Overrides::default()
    };
    let config = NetworkConfig::resolve("bnas-a", &overrides).unwrap();
    let spec = config.spec().unwrap();
    let vs = nn::VarStore::new(Device::Cpu);
    let _network = Network::new(&vs.root(), spec.clone());
    let stored: BTreeMap<String, Vec<i64>> = vs.variables().into_iter().map(|(n, t)| (n, t.size())).collect();
    let expected: BTreeMap<String, Vec<i64>> =
        spec.params().map(|p| (p.name.clone(), p.shape.iter().map(|&d| d as i64).collect())).collect();
    assert_eq!(stored, expected);
    // A few names spelled out, as the reference's state_dict has them.
    for name in [
        "stem.bn.num_batches_tracked",
        "stem.op.0.weight",
        "cells.2.preprocess0.op.0.weight",
        "cells.2.preprocess_res.1.bias",
        "classifier.weight",
    ] {
        assert!(stored.contains_key(name), "{name}");
    }
    // CIFAR's stride-2 preprocess0 (after a reduction) has a non-affine BatchNorm.
    assert!(stored.contains_key("cells.3.preprocess0.bn.running_mean"));
    assert!(!stored.contains_key("cells.3.preprocess0.bn.weight"));
    let learnable: i64 = vs.trainable_variables().iter().map(Tensor::numel).map(|n| n as i64).sum();
    assert_eq!(learnable as u64, spec.param_count());
}

/// Values of a tensor as f64, row-major.
fn values(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(t.to_kind(Kind::Double).flatten(0, -1)).unwrap()
}

/// `bn (eval) -> sign (x >= 0 -> +1) -> conv with sign(W') * alpha, zero padding -> ReLU`,
/// W' = clamp(W - mean over inputs, -1, 1), with plain loops.
#[allow(clippy::too_many_arguments)]
fn plain_binary_block(
    x: &[f64],
    (n, cin, h, w): (usize, usize, usize, usize),
    bn: (&[f64], &[f64], &[f64], &[f64]),
    weight: &[f64],
    (cout, k): (usize, usize),
    (stride, pad, dil): (usize, usize, usize),
) -> Vec<f64> {
    let (gamma, beta, mean, var) = bn;
    let signs: Vec<f64> = x
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let c = (i / (h * w)) % cin;
            let y = (v - mean[c]) / (var[c] + 1e-5).sqrt() * gamma[c] + beta[c];
            if y >= 0.0 {
                1.0
            } else {
                -1.0
            }
        })
        .collect();
    let filter = cin * k * k;
    let mut binarized = vec![0.0; weight.len()];
    for o in 0..cout {
        let mut latent = vec![0.0; filter];
        for i in 0..cin {
            for p in 0..k * k {
                let m: f64 = (0..cin).map(|j| weight[o * filter + j * k * k + p]).sum::<f64>() / cin as f64;
                latent[i * k * k + p] = (weight[o * filter + i * k * k + p] - m).clamp(-1.0, 1.0);
            }
        }
        let alpha = latent.iter().map(|v| v.abs()).sum::<f64>() / filter as f64;
        for (j, v) in latent.iter().enumerate() {
            binarized[o * filter + j] = if *v >= 0.0 { alpha } else { -alpha };
        }
    }
    let span = dil * (k - 1) + 1;
    let (oh, ow) = ((h + 2 * pad - span) / stride + 1, (w + 2 * pad - span) / stride + 1);
    let mut out = vec![0.0; n * cout * oh * ow];
    for b in 0..n {
        for o in 0..cout {
            for y in 0..oh {
                for xx in 0..ow {
                    let mut acc = 0.0;
                    for i in 0..cin {
                        for ky in 0..k {
                            for kx in 0..k {
                                let iy = (y * stride + ky * dil) as isize - pad as isize;
                                let ix = (xx * stride + kx * dil) as isize - pad as isize;
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                    continue; // zero padding contributes 0
                                }
                                let s = signs[((b * cin + i) * h + iy as usize) * w + ix as usize];
                                acc += s * binarized[o * filter + (i * k + ky) * k + kx];
                            }
                        }
                    }
                    out[((b * cout + o) * oh + y) * ow + xx] = acc.max(0.0);
                }
            }
        }
    }
    out
}

fn check_block(kernel: usize, stride: usize, dilation: usize) {
    let (n, cin, h, w, cout) = (2, 3, 7, 6, 4);
    let padding = dilation * (kernel - 1) / 2;
    let spec = ConvSpec {
        in_channels: cin,
        out_channels: cout,
        kernel,
        stride,
        padding,
        dilation,
        weight: "block.op.0.weight".into(),
        bias: None,
        input_bn: Some(BnSpec { prefix: "block.bn".into(), channels: cin, affine: true }),
        input_relu: false,
        output_bn: None,
        output_relu: true,
    };
    tch::manual_seed(11);
    let vs = nn::VarStore::new(Device::Cpu);
    let block = ConvBlock::new(&vs.root(), &spec, Precision::Binary);
    // Non-trivial BatchNorm state, so the threshold is not at 0.
    let bn = |name: &str, v: &[f32]| {
        let t = vs.variables()[&format!("block.bn.{name}")].shallow_clone();
        tch::no_grad(|| t.shallow_clone().copy_(&Tensor::from_slice(v)));
    };
    let (gamma, beta, mean, var) = ([1.5, -0.7, 0.9], [0.1, 0.2, -0.3], [0.05, -0.1, 0.2], [0.8, 1.3, 0.5]);
    bn("weight", &gamma);
    bn("bias", &beta);
    bn("running_mean", &mean);
    bn("running_var", &var);
    let x = Tensor::randn([n as i64, cin as i64, h as i64, w as i64], (Kind::Float, Device::Cpu));
    let latent = values(block.weight());
    let mut binarizer = WeightBinarizer::new(vec![block.weight().shallow_clone()]);
    binarizer.binarize_for_inference();
    let got = tch::no_grad(|| values(&block.forward(&x, false)));
    binarizer.restore(false);
    assert_eq!(values(block.weight()), latent, "latent weights restored");
    let f = |a: [f32; 3]| a.map(f64::from);
    let want = plain_binary_block(
        &values(&x),
        (n, cin, h, w),
        (&f(gamma), &f(beta), &f(mean), &f(var)),
        &latent,
        (cout, kernel),
        (stride, padding, dilation),
    );
    assert_eq!(got.len(), want.len());
    for (i, (g, e)) in got.iter().zip(&want).enumerate() {
        assert!((g - e).abs() < 1e-4, "output {i}: libtorch {g} vs loops {e}");
    }
}

#[test]
fn binary_conv3x3_matches_plain_loops() {
    check_block(3, 1, 1);
}

#[test]
fn binary_dilated_strided_conv5x5_matches_plain_loops() {
    check_block(5, 2, 2);
}

#[test]
fn imagenet_topology_forward_and_backward_reach_every_live_parameter() {
    // BNAS-D's ImageNet skeleton (three float stem convs, `_red` preprocessing), reduced to 3
    // cells and C = 8 at 224x224.
    let overrides = Overrides { layers: Some(3), channels: Some(8), ..Overrides::default() };
    let spec = NetworkConfig::resolve("bnas-d", &overrides).unwrap().spec().unwrap();
    tch::manual_seed(3);
    let vs = nn::VarStore::new(Device::Cpu);
    let network = Network::new(&vs.root(), spec.clone());
    let mut binarizer = WeightBinarizer::new(network.binary_weights());
    binarizer.binarize_for_training();
    let input = Tensor::randn([2, 3, 224, 224], (Kind::Float, Device::Cpu));
    let logits = network.forward(&input, true, None).unwrap();
    assert_eq!(logits.size(), [2, 1000]);
    logits.sum(Kind::Float).backward();
    binarizer.restore(true);
    let variables = vs.variables();
    for layer in &spec.layers {
        for param in layer.params.iter().filter(|p| p.kind.learnable()) {
            let grad = variables[&param.name].grad();
            let live = layer.liveness == bnas_models::Liveness::Live;
            assert_eq!(grad.defined(), live, "{} ({:?})", param.name, layer.liveness);
            if live {
                assert!(grad.isfinite().all().int64_value(&[]) == 1, "{}", param.name);
            }
        }
    }
    // A wrongly shaped batch is an error, not a panic.
    let err = network.forward(&Tensor::zeros([1, 1, 28, 28], (Kind::Float, Device::Cpu)), false, None);
    assert!(err.unwrap_err().to_string().contains("N x 3x224x224"));
}
