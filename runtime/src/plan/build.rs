//! Builds a [`Plan`] from a network spec and the tensors of a `.bnas` file.

use bnas_models::{BatchNorm, ConvSpec, CostKind, Layer, LayerOp, Liveness, NetworkSpec, Precision};

use super::fold::BatchNormParams;
use super::slots::{SlotId, SlotPlanner};
use super::{BinaryConv, ConcatPart, FloatConv, Linear, PaddingCorrection, Plan, Step, StepOp, Window};
use crate::error::RuntimeError;
use crate::format::{alpha_name, BnasFile, Floats};

impl Plan {
    /// Plans the live layers of `spec` with the weights of `file`; `bn_eps` is the BatchNorm
    /// epsilon the weights were trained with.
    pub fn build(spec: &NetworkSpec, file: &BnasFile, bn_eps: f32) -> Result<Plan, RuntimeError> {
        let layers = &spec.layers;
        // Sums and concats leave statically zero inputs out; any other reader needs them stored.
        let operands = |layer: &Layer| -> Vec<usize> {
            let skips_zeros = matches!(layer.op, LayerOp::Add | LayerOp::Concat);
            let zero = |id: usize| layers[id].liveness == Liveness::Zero;
            layer.inputs.iter().copied().filter(|&i| !(skips_zeros && zero(i))).collect()
        };
        let mut stored_zero = vec![false; layers.len()];
        let mut last_use = vec![0usize; layers.len()];
        for (id, layer) in layers.iter().enumerate().filter(|(_, l)| l.liveness == Liveness::Live) {
            for input in operands(layer) {
                stored_zero[input] |= layers[input].liveness == Liveness::Zero;
                last_use[input] = id;
            }
        }
        let mut planner = SlotPlanner::default();
        let mut slot_of: Vec<Option<SlotId>> = vec![None; layers.len()];
        let input_slot = planner.allocate(spec.layers[0].output.numel() as usize);
        slot_of[0] = Some(input_slot);
        let mut steps = Vec::new();
        for (id, layer) in layers.iter().enumerate().skip(1) {
            if layer.liveness != Liveness::Live && !stored_zero[id] {
                continue;
            }
            let (op, readable) = if stored_zero[id] {
                (StepOp::Zeros, Vec::new())
            } else {
                (step_op(spec, layer, file, bn_eps)?, operands(layer))
            };
            let inputs: Vec<SlotId> =
                readable.iter().map(|&i| slot_of[i].expect("operands run before their readers")).collect();
            let output = planner.allocate(layer.output.numel() as usize);
            slot_of[id] = Some(output);
            steps.push(Step {
                layer: id,
                name: layer.name.clone(),
                op,
                inputs,
                output,
                shape: layer.output,
                float_macs: layer.count(CostKind::FloatMac),
                binary_macs: layer.count(CostKind::BinaryMac),
            });
            for &input in readable.iter().filter(|&&i| last_use[i] == id) {
                planner.release(slot_of[input].expect("operands run before their readers"));
            }
        }
        let output_slot = slot_of[layers.len() - 1].expect("the classifier is always live");
        Ok(Plan {
            input: layers[0].output,
            input_slot,
            steps,
            slots: planner.capacity,
            output_slot,
            classes: spec.config.classes,
        })
    }
}

fn step_op(spec: &NetworkSpec, layer: &Layer, file: &BnasFile, eps: f32) -> Result<StepOp, RuntimeError> {
    let input_shape = |i: usize| spec.layers[layer.inputs[i]].output;
    Ok(match &layer.op {
        LayerOp::Input | LayerOp::Zero { .. } => {
            return Err(RuntimeError::Unsupported {
                layer: layer.name.clone(),
                problem: "input and Zeroise layers are never computed".into(),
            })
        }
        LayerOp::Conv(conv) => {
            let input = input_shape(0);
            let window = Window {
                in_channels: conv.in_channels,
                out_channels: conv.out_channels,
                kernel: conv.kernel,
                stride: conv.stride,
                padding: conv.padding,
                dilation: conv.dilation,
                input: (input.height, input.width),
                output: (layer.output.height, layer.output.width),
            };
            conv_op(layer, conv, window, file, eps)?
        }
        LayerOp::MaxPool { kernel, stride, padding } | LayerOp::AvgPool { kernel, stride, padding } => {
            let input = input_shape(0);
            let window = Window {
                in_channels: input.channels,
                out_channels: input.channels,
                kernel: *kernel,
                stride: *stride,
                padding: *padding,
                dilation: 1,
                input: (input.height, input.width),
                output: (layer.output.height, layer.output.width),
            };
            if matches!(layer.op, LayerOp::MaxPool { .. }) {
                StepOp::MaxPool(window)
            } else {
                StepOp::AvgPool(window)
            }
        }
        LayerOp::Add => StepOp::Add,
        LayerOp::Concat => StepOp::Concat(
            layer
                .inputs
                .iter()
                .map(|&i| {
                    let channels = spec.layers[i].output.channels;
                    if spec.layers[i].liveness == Liveness::Zero {
                        ConcatPart::Zeros(channels)
                    } else {
                        ConcatPart::Input(channels)
                    }
                })
                .collect(),
        ),
        LayerOp::GlobalAvgPool => {
            let input = input_shape(0);
            StepOp::GlobalAvgPool { pixels: input.height * input.width }
        }
        LayerOp::Linear { weight, bias } => {
            let (out_features, in_features) = (layer.output.channels, input_shape(0).channels);
            StepOp::Linear(Linear {
                in_features,
                out_features,
                weight: finite(file, weight, &[out_features, in_features])?,
                bias: finite(file, bias, &[out_features])?,
            })
        }
    })
}

fn conv_op(
    layer: &Layer,
    conv: &ConvSpec,
    window: Window,
    file: &BnasFile,
    eps: f32,
) -> Result<StepOp, RuntimeError> {
    let weight_shape = [conv.out_channels, conv.in_channels, conv.kernel, conv.kernel];
    let output_bn = conv.output_bn.as_ref().map(|bn| StoredBatchNorm::read(file, bn, eps)).transpose()?;
    let bias = conv.bias.as_ref().map(|b| finite(file, b, &[conv.out_channels])).transpose()?;
    if layer.precision.binarizes_input() && conv.input_relu {
        return Err(RuntimeError::Unsupported {
            layer: layer.name.clone(),
            problem: "a ReLU before a binarized input".into(),
        });
    }
    let input_bn = conv.input_bn.as_ref().map(|bn| StoredBatchNorm::read(file, bn, eps)).transpose()?;
    Ok(match layer.precision {
        Precision::Binary => {
            let (Some(bn), None, None) = (&input_bn, &output_bn, &bias) else {
                return Err(RuntimeError::Unsupported {
                    layer: layer.name.clone(),
                    problem: "a binary conv is BN -> sign -> conv -> [ReLU], without bias or output BN"
                        .into(),
                });
            };
            let filters = file.filters_shaped(&conv.weight, &weight_shape)?;
            let alpha = finite(file, &alpha_name(&conv.weight), &[conv.out_channels])?;
            let correction = PaddingCorrection::new(&window, &filters);
            StepOp::BinaryConv(BinaryConv {
                window,
                binarize: bn.params().binarize(),
                filters,
                alpha,
                correction,
                relu: conv.output_relu,
            })
        }
        Precision::Float | Precision::BinaryInputFloatWeight => {
            let compat = layer.precision == Precision::BinaryInputFloatWeight;
            let binarize = match (&input_bn, compat) {
                (Some(bn), true) => Some(bn.params().binarize()),
                (None, true) => {
                    return Err(RuntimeError::Unsupported {
                        layer: layer.name.clone(),
                        problem: "a binarized input needs an input BatchNorm".into(),
                    })
                }
                (_, false) => None,
            };
            let weight = finite(file, &conv.weight, &weight_shape)?;
            StepOp::FloatConv(FloatConv {
                window,
                input_bn: if compat { None } else { input_bn.map(|bn| bn.params().affine()) },
                input_relu: conv.input_relu,
                binarize,
                weight,
                bias,
                output_bn: output_bn.map(|bn| bn.params().affine()),
                relu: conv.output_relu,
            })
        }
    })
}

/// A BatchNorm's stored tensors, checked (finite, no negative variance).
#[derive(Debug)]
pub struct StoredBatchNorm {
    gamma: Option<Floats>,
    beta: Option<Floats>,
    mean: Floats,
    var: Floats,
    eps: f32,
}

impl StoredBatchNorm {
    /// Reads the tensors of `bn` from `file`; `eps` is the epsilon it was trained with.
    pub fn read(file: &BnasFile, bn: &BatchNorm, eps: f32) -> Result<StoredBatchNorm, RuntimeError> {
        let shape = [bn.channels];
        let tensor = |field: &str| finite(file, &format!("{}.{field}", bn.prefix), &shape);
        let (gamma, beta) =
            if bn.affine { (Some(tensor("weight")?), Some(tensor("bias")?)) } else { (None, None) };
        let var_name = format!("{}.running_var", bn.prefix);
        let var = tensor("running_var")?;
        if let Some(c) = var.iter().position(|&v| v < 0.0) {
            return Err(RuntimeError::BadTensor {
                name: var_name,
                problem: format!("negative variance at channel {c}"),
            });
        }
        Ok(StoredBatchNorm { gamma, beta, mean: tensor("running_mean")?, var, eps })
    }

    /// Its statistics, to fold.
    pub fn params(&self) -> BatchNormParams<'_> {
        BatchNormParams {
            gamma: self.gamma.as_deref(),
            beta: self.beta.as_deref(),
            mean: &self.mean,
            var: &self.var,
            eps: self.eps,
        }
    }
}

/// A float tensor of the given shape whose values are all finite.
fn finite(file: &BnasFile, name: &str, shape: &[usize]) -> Result<Floats, RuntimeError> {
    let values = file.floats_shaped(name, shape)?;
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(RuntimeError::BadTensor {
            name: name.to_owned(),
            problem: format!("non-finite value at {i}"),
        });
    }
    Ok(values)
}
