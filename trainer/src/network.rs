//! The trainable network, built layer by layer from a `bnas-models` [`NetworkSpec`], with its
//! parameters in a VarStore under the spec's canonical names.
//!
//! Layers the spec marks as statically zero are not computed; layers it marks dead (their
//! output reaches the logits only through Zeroise) are skipped too: their gradients are zero in
//! the reference, so skipping them changes nothing but their BatchNorm running statistics,
//! which no live layer reads.

use bnas_models::{ConvSpec, LayerOp, Liveness, NetworkSpec, Precision, Shape};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tch::{nn, Device, Kind, Tensor};

use crate::batch_norm::BatchNorm;
use crate::binary::sign_ste;
use crate::error::{Result, TrainerError};
use crate::names::path_for;

/// Drop-path (reference §3): each cell op's output is zeroed per sample with probability `prob`
/// and the survivors rescaled by `1 / (1 - prob)`. The masks come from a seeded generator, so a
/// run is reproducible and a resumed run draws the same masks.
#[derive(Debug)]
pub struct DropPath {
    prob: f64,
    rng: StdRng,
}

impl DropPath {
    /// Drop probability `prob` (in [0, 1)), masks drawn from `seed`.
    pub fn new(prob: f64, seed: u64) -> DropPath {
        DropPath { prob, rng: StdRng::seed_from_u64(seed) }
    }

    fn apply(&mut self, x: &Tensor) -> Tensor {
        if self.prob <= 0.0 {
            return x.shallow_clone();
        }
        let keep = 1.0 - self.prob;
        let batch = x.size()[0];
        let mask: Vec<f32> = (0..batch).map(|_| f32::from(u8::from(self.rng.gen::<f64>() < keep))).collect();
        let mask = Tensor::from_slice(&mask).reshape([batch, 1, 1, 1]).to_device(x.device());
        x / keep * mask
    }
}

/// Uniform initialization with bound `1 / sqrt(fan_in)`: PyTorch's default for Conv2d and Linear
/// weights and biases.
pub(crate) fn default_init(fan_in: usize) -> nn::Init {
    let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
    nn::Init::Uniform { lo: -bound, up: bound }
}

/// A convolution block `[BN] [ReLU] [sign] conv [BN] [ReLU]`.
#[derive(Debug)]
pub struct ConvBlock {
    input_bn: Option<BatchNorm>,
    input_relu: bool,
    sign_input: bool,
    weight: Tensor,
    bias: Option<Tensor>,
    stride: i64,
    padding: i64,
    dilation: i64,
    output_bn: Option<BatchNorm>,
    output_relu: bool,
}

impl ConvBlock {
    /// Registers the block's parameters under their canonical names.
    pub fn new(root: &nn::Path, conv: &ConvSpec, precision: Precision) -> ConvBlock {
        let bn = |bn: &Option<bnas_models::BatchNorm>| {
            bn.as_ref().map(|bn| BatchNorm::new(root, &bn.prefix, bn.channels, bn.affine))
        };
        let input_bn = bn(&conv.input_bn);
        let fan_in = conv.in_channels * conv.kernel * conv.kernel;
        let k = conv.kernel as i64;
        let (path, last) = path_for(root, &conv.weight);
        let weight =
            path.var(last, &[conv.out_channels as i64, conv.in_channels as i64, k, k], default_init(fan_in));
        let bias = conv.bias.as_ref().map(|name| {
            let (path, last) = path_for(root, name);
            path.var(last, &[conv.out_channels as i64], default_init(fan_in))
        });
        ConvBlock {
            input_bn,
            input_relu: conv.input_relu,
            sign_input: precision.binarizes_input(),
            weight,
            bias,
            stride: conv.stride as i64,
            padding: conv.padding as i64,
            dilation: conv.dilation as i64,
            output_bn: bn(&conv.output_bn),
            output_relu: conv.output_relu,
        }
    }

    /// The conv weight variable.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// Runs the block.
    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let mut h = match &self.input_bn {
            Some(bn) => bn.forward(x, train),
            None => x.shallow_clone(),
        };
        if self.input_relu {
            h = h.relu();
        }
        if self.sign_input {
            h = sign_ste(&h);
        }
        h = h.conv2d(
            &self.weight,
            self.bias.as_ref(),
            [self.stride; 2],
            [self.padding; 2],
            [self.dilation; 2],
            1,
        );
        if let Some(bn) = &self.output_bn {
            h = bn.forward(&h, train);
        }
        if self.output_relu {
            h = h.relu();
        }
        h
    }
}

#[derive(Debug)]
enum Block {
    Input,
    Conv(ConvBlock),
    MaxPool {
        kernel: i64,
        stride: i64,
        padding: i64,
    },
    AvgPool {
        kernel: i64,
        stride: i64,
        padding: i64,
    },
    Add,
    Concat,
    GlobalAvgPool,
    Linear {
        weight: Tensor,
        bias: Tensor,
    },
    /// Statically zero (Zeroise, or a sum of Zeroise outputs).
    Zero,
    /// Dead: never read by a computed layer.
    Skipped,
}

/// A layer's output during a forward pass.
enum Value {
    Tensor(Tensor),
    Zero,
    Released,
}

/// A BNAS network on libtorch.
#[derive(Debug)]
pub struct Network {
    spec: NetworkSpec,
    blocks: Vec<Block>,
    drop_path: Vec<bool>,
    last_use: Vec<usize>,
    binary_weights: Vec<Tensor>,
}

impl Network {
    /// Builds the network of `spec`, registering every tensor of its state_dict in `root`
    /// (use the VarStore's root so that the variable names are the canonical names).
    pub fn new(root: &nn::Path, spec: NetworkSpec) -> Network {
        let mut binary_weights = Vec::new();
        let blocks: Vec<Block> = spec
            .layers
            .iter()
            .map(|layer| {
                let live = layer.liveness == Liveness::Live;
                match &layer.op {
                    LayerOp::Conv(conv) => {
                        // Dead convs keep their parameters: checkpoints hold the full state_dict.
                        let block = ConvBlock::new(root, conv, layer.precision);
                        if layer.precision == Precision::Binary {
                            binary_weights.push(block.weight.shallow_clone());
                        }
                        if live {
                            Block::Conv(block)
                        } else {
                            Block::Skipped
                        }
                    }
                    LayerOp::Linear { weight, bias } => {
                        let (classes, features) = (layer.params[0].shape[0], layer.params[0].shape[1]);
                        let (path, last) = path_for(root, weight);
                        let w = path.var(last, &[classes as i64, features as i64], default_init(features));
                        let (path, last) = path_for(root, bias);
                        let b = path.var(last, &[classes as i64], default_init(features));
                        Block::Linear { weight: w, bias: b }
                    }
                    _ if layer.liveness == Liveness::Zero => Block::Zero,
                    _ if layer.liveness == Liveness::Dead => Block::Skipped,
                    LayerOp::Input => Block::Input,
                    LayerOp::MaxPool { kernel, stride, padding } => Block::MaxPool {
                        kernel: *kernel as i64,
                        stride: *stride as i64,
                        padding: *padding as i64,
                    },
                    LayerOp::AvgPool { kernel, stride, padding } => Block::AvgPool {
                        kernel: *kernel as i64,
                        stride: *stride as i64,
                        padding: *padding as i64,
                    },
                    LayerOp::Zero { .. } => Block::Zero,
                    LayerOp::Add => Block::Add,
                    LayerOp::Concat => Block::Concat,
                    LayerOp::GlobalAvgPool => Block::GlobalAvgPool,
                }
            })
            .collect();
        // Drop-path acts on the cell ops, the layers named `cells.<i>._ops.<j>`.
        let drop_path = spec.layers.iter().map(|l| l.name.contains("._ops.")).collect();
        let mut last_use: Vec<usize> = (0..spec.layers.len()).collect();
        for (index, layer) in spec.layers.iter().enumerate() {
            for &input in &layer.inputs {
                last_use[input] = last_use[input].max(index);
            }
        }
        Network { spec, blocks, drop_path, last_use, binary_weights }
    }

    /// The spec the network was built from.
    pub fn spec(&self) -> &NetworkSpec {
        &self.spec
    }

    /// The weights that are binarized (precision [`Precision::Binary`]), shared with the
    /// VarStore.
    pub fn binary_weights(&self) -> Vec<Tensor> {
        self.binary_weights.iter().map(Tensor::shallow_clone).collect()
    }

    /// Logits `[N, classes]` of a batch `[N, C, H, W]`. `train` selects batch statistics and
    /// enables `drop_path`.
    pub fn forward(
        &self,
        input: &Tensor,
        train: bool,
        mut drop_path: Option<&mut DropPath>,
    ) -> Result<Tensor> {
        let expected = self.spec.layers[0].output;
        let size = input.size();
        if size.len() != 4
            || size[1..] != [expected.channels, expected.height, expected.width].map(|d| d as i64)
        {
            return Err(TrainerError::DataMismatch {
                data: format!("input batches of shape {size:?}"),
                network: format!("N x {expected}"),
            });
        }
        let batch = size[0];
        let device = input.device();
        let mut values: Vec<Value> = Vec::with_capacity(self.blocks.len());
        for (index, (block, layer)) in self.blocks.iter().zip(&self.spec.layers).enumerate() {
            let out = {
                let arg = |i: usize| -> Tensor {
                    materialize(
                        &values[layer.inputs[i]],
                        &self.spec.layers[layer.inputs[i]].output,
                        batch,
                        device,
                    )
                };
                match block {
                    Block::Input => Value::Tensor(input.shallow_clone()),
                    Block::Zero | Block::Skipped => Value::Zero,
                    Block::Conv(conv) => Value::Tensor(conv.forward(&arg(0), train)),
                    Block::MaxPool { kernel, stride, padding } => Value::Tensor(arg(0).max_pool2d(
                        [*kernel; 2],
                        [*stride; 2],
                        [*padding; 2],
                        [1, 1],
                        false,
                    )),
                    Block::AvgPool { kernel, stride, padding } => Value::Tensor(arg(0).avg_pool2d(
                        [*kernel; 2],
                        [*stride; 2],
                        [*padding; 2],
                        false,
                        false,
                        None,
                    )),
                    Block::Add => {
                        let terms: Vec<&Tensor> = layer
                            .inputs
                            .iter()
                            .filter_map(|&i| match &values[i] {
                                Value::Tensor(t) => Some(t),
                                _ => None,
                            })
                            .collect();
                        match terms.split_first() {
                            None => Value::Zero,
                            Some((first, rest)) => {
                                Value::Tensor(rest.iter().fold(first.shallow_clone(), |sum, t| sum + *t))
                            }
                        }
                    }
                    Block::Concat => {
                        let parts: Vec<Tensor> = (0..layer.inputs.len()).map(arg).collect();
                        Value::Tensor(Tensor::cat(&parts, 1))
                    }
                    Block::GlobalAvgPool => {
                        Value::Tensor(arg(0).mean_dim([2i64, 3].as_slice(), true, Kind::Float))
                    }
                    Block::Linear { weight, bias } => {
                        Value::Tensor(arg(0).flatten(1, -1).linear(weight, Some(bias)))
                    }
                }
            };
            let out = match (out, drop_path.as_deref_mut()) {
                (Value::Tensor(t), Some(drop)) if train && self.drop_path[index] => {
                    Value::Tensor(drop.apply(&t))
                }
                (out, _) => out,
            };
            values.push(out);
            for &input in &layer.inputs {
                if self.last_use[input] == index {
                    values[input] = Value::Released;
                }
            }
        }
        match values.pop() {
            Some(Value::Tensor(logits)) => Ok(logits),
            _ => Ok(Tensor::zeros([batch, self.spec.output().channels as i64], (Kind::Float, device))),
        }
    }
}

/// A layer's output as a tensor: zeros of its shape when it is statically zero.
fn materialize(value: &Value, shape: &Shape, batch: i64, device: Device) -> Tensor {
    match value {
        Value::Tensor(t) => t.shallow_clone(),
        Value::Zero | Value::Released => Tensor::zeros(
            [batch, shape.channels as i64, shape.height as i64, shape.width as i64],
            (Kind::Float, device),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_path_zeroes_whole_samples_and_rescales_the_rest() {
        let x = Tensor::ones([64, 2, 3, 3], (Kind::Float, Device::Cpu));
        let mut drop = DropPath::new(0.25, 5);
        let y = drop.apply(&x);
        let per_sample = Vec::<f32>::try_from(y.reshape([64 * 18])).unwrap();
        let mut kept = 0;
        for sample in per_sample.chunks(18) {
            let first = sample[0];
            assert!(sample.iter().all(|&v| v == first), "one decision per sample");
            assert!(first == 0.0 || (first - 1.0 / 0.75).abs() < 1e-6, "{first}");
            kept += usize::from(first != 0.0);
        }
        // 64 Bernoulli(0.75) draws: between 32 and 62 survivors with overwhelming probability.
        assert!((32..=62).contains(&kept), "{kept}");
        let mut same = DropPath::new(0.25, 5);
        assert!(same.apply(&x).equal(&y), "masks are fixed by the seed");
    }
}
