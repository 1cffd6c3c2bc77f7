//! The search supernet (reference §4): a CIFAR-style network whose cell edges are MixedOps, the
//! softmax(alpha)-weighted sum of the 7 ops. Cell preprocessing is float (BN -> conv -> ReLU,
//! no sign); the MixedOp convolutions are binary; every BatchNorm is non-affine except the stem's
//! and the residual projection's, and pools are followed by a non-affine BatchNorm.
//!
//! Variable names follow the reference's module tree (`cells.<i>._ops.<edge>._ops.<op>...`);
//! the alphas live in their own VarStore as `alphas_normal` and `alphas_reduce`.

use bnas_models::{BatchNorm as BnSpec, ConvSpec, OpKind, Precision};
use tch::{nn, Kind, Tensor};

use super::derive::{NODES, SUPERNET_EDGES};
use crate::batch_norm::BatchNorm;
use crate::error::{Result, TrainerError};
use crate::names::sub_path;
use crate::network::{default_init, ConvBlock};

/// Supernet size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SupernetShape {
    /// Input channels.
    pub input_channels: usize,
    /// Cells.
    pub layers: usize,
    /// Initial channels C.
    pub channels: usize,
    /// Classes.
    pub classes: usize,
}

fn conv_spec(
    prefix: &str,
    cin: usize,
    cout: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
) -> ConvSpec {
    ConvSpec {
        in_channels: cin,
        out_channels: cout,
        kernel,
        stride,
        padding: dilation * (kernel - 1) / 2,
        dilation,
        weight: format!("{prefix}.op.0.weight"),
        bias: None,
        input_bn: Some(BnSpec { prefix: format!("{prefix}.bn"), channels: cin, affine: false }),
        input_relu: false,
        output_bn: None,
        output_relu: true,
    }
}

enum Candidate {
    Zero,
    MaxPool(BatchNorm, i64),
    AvgPool(BatchNorm, i64),
    Conv(ConvBlock),
}

struct MixedOp {
    candidates: Vec<Candidate>,
}

impl MixedOp {
    fn new(root: &nn::Path, prefix: &str, c: usize, stride: usize, binary: &mut Vec<Tensor>) -> MixedOp {
        let candidates = OpKind::ALL
            .iter()
            .enumerate()
            .map(|(k, op)| {
                let name = format!("{prefix}._ops.{k}");
                let pool_bn = || BatchNorm::new(root, &format!("{name}.1"), c, false);
                match op.conv_geometry() {
                    Some((kernel, dilation)) => {
                        let block = ConvBlock::new(
                            root,
                            &conv_spec(&name, c, c, kernel, stride, dilation),
                            Precision::Binary,
                        );
                        binary.push(block.weight().shallow_clone());
                        Candidate::Conv(block)
                    }
                    None => match op {
                        OpKind::MaxPool3x3 => Candidate::MaxPool(pool_bn(), stride as i64),
                        OpKind::AvgPool3x3 => Candidate::AvgPool(pool_bn(), stride as i64),
                        _ => Candidate::Zero,
                    },
                }
            })
            .collect();
        MixedOp { candidates }
    }

    /// `sum_k w[k] * op_k(x)`; Zeroise contributes exactly zero (to the value and to every
    /// gradient), so it is not computed.
    fn forward(&self, x: &Tensor, weights: &Tensor, train: bool) -> Option<Tensor> {
        let mut sum: Option<Tensor> = None;
        for (k, candidate) in self.candidates.iter().enumerate() {
            let out = match candidate {
                Candidate::Zero => continue,
                Candidate::MaxPool(bn, s) => {
                    bn.forward(&x.max_pool2d([3, 3], [*s; 2], [1, 1], [1, 1], false), train)
                }
                Candidate::AvgPool(bn, s) => {
                    bn.forward(&x.avg_pool2d([3, 3], [*s; 2], [1, 1], false, false, None), train)
                }
                Candidate::Conv(conv) => conv.forward(x, train),
            };
            let term = out * weights.get(k as i64);
            sum = Some(match sum {
                Some(s) => s + term,
                None => term,
            });
        }
        sum
    }
}

struct Cell {
    reduction: bool,
    preprocess0: ConvBlock,
    preprocess1: ConvBlock,
    residual: Option<ConvBlock>,
    first: bool,
    ops: Vec<MixedOp>,
}

/// The supernet's weights (one VarStore) and the forward pass given the alphas.
pub struct Supernet {
    stem: ConvBlock,
    cells: Vec<Cell>,
    classifier: (Tensor, Tensor),
    binary: Vec<Tensor>,
    input_channels: i64,
}

impl std::fmt::Debug for Supernet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supernet").field("cells", &self.cells.len()).finish()
    }
}

impl Supernet {
    /// Builds the supernet in `root`.
    pub fn new(root: &nn::Path, shape: SupernetShape) -> Supernet {
        let c = shape.channels;
        let float = |prefix: &str, cin, cout, kernel, stride, affine| {
            let mut spec = conv_spec(prefix, cin, cout, kernel, stride, 1);
            spec.input_bn = Some(BnSpec { prefix: format!("{prefix}.bn"), channels: cin, affine });
            ConvBlock::new(root, &spec, Precision::Float)
        };
        let stem = float("stem", shape.input_channels, 3 * c, 3, 1, true);
        let mut binary = Vec::new();
        let (mut c_pp, mut c_p, mut c_cur) = (3 * c, 3 * c, c);
        let mut reduction_prev = false;
        let mut cells = Vec::with_capacity(shape.layers);
        for index in 0..shape.layers {
            let reduction = index == shape.layers / 3 || index == 2 * shape.layers / 3;
            if reduction {
                c_cur *= 2;
            }
            let prefix = format!("cells.{index}");
            let preprocess0 = if reduction_prev {
                float(&format!("{prefix}.preprocess0"), c_pp, c_cur, 3, 2, false)
            } else {
                float(&format!("{prefix}.preprocess0"), c_pp, c_cur, 1, 1, false)
            };
            let preprocess1 = float(&format!("{prefix}.preprocess1"), c_p, c_cur, 1, 1, false);
            let residual = reduction.then(|| {
                let name = format!("{prefix}.preprocess_res");
                let spec = ConvSpec {
                    in_channels: c_p,
                    out_channels: 4 * c_cur,
                    kernel: 2,
                    stride: 2,
                    padding: 0,
                    dilation: 1,
                    weight: format!("{name}.1.weight"),
                    bias: Some(format!("{name}.1.bias")),
                    input_bn: Some(BnSpec { prefix: format!("{name}.0"), channels: c_p, affine: true }),
                    input_relu: false,
                    output_bn: None,
                    output_relu: false,
                };
                ConvBlock::new(root, &spec, Precision::Float)
            });
            let mut ops = Vec::with_capacity(SUPERNET_EDGES);
            for node in 0..NODES {
                for state in 0..node + 2 {
                    let stride = if reduction && state < 2 { 2 } else { 1 };
                    let name = format!("{prefix}._ops.{}", ops.len());
                    ops.push(MixedOp::new(root, &name, c_cur, stride, &mut binary));
                }
            }
            cells.push(Cell { reduction, preprocess0, preprocess1, residual, first: index == 0, ops });
            reduction_prev = reduction;
            (c_pp, c_p) = (c_p, 4 * c_cur);
        }
        let path = sub_path(root, "classifier");
        let weight = path.var("weight", &[shape.classes as i64, c_p as i64], default_init(c_p));
        let bias = path.var("bias", &[shape.classes as i64], default_init(c_p));
        Supernet {
            stem,
            cells,
            classifier: (weight, bias),
            binary,
            input_channels: shape.input_channels as i64,
        }
    }

    /// The MixedOp conv weights, binarized around each step.
    pub fn binary_weights(&self) -> Vec<Tensor> {
        self.binary.iter().map(Tensor::shallow_clone).collect()
    }

    /// Logits of `input` given the softmaxed alphas of each cell kind, `[14, 7]` each.
    pub fn forward(&self, input: &Tensor, normal: &Tensor, reduce: &Tensor, train: bool) -> Result<Tensor> {
        let size = input.size();
        if size.len() != 4 || size[1] != self.input_channels {
            return Err(TrainerError::DataMismatch {
                data: format!("input batches of shape {size:?}"),
                network: format!("N x {} x H x W", self.input_channels),
            });
        }
        let stem = self.stem.forward(input, train);
        let (mut s0, mut s1) = (stem.shallow_clone(), stem);
        for cell in &self.cells {
            let weights = if cell.reduction { reduce } else { normal };
            let mut states = vec![cell.preprocess0.forward(&s0, train), cell.preprocess1.forward(&s1, train)];
            let mut edge = 0;
            for _ in 0..NODES {
                let mut node: Option<Tensor> = None;
                for state in &states {
                    if let Some(out) = cell.ops[edge].forward(state, &weights.get(edge as i64), train) {
                        node = Some(match node {
                            Some(n) => n + out,
                            None => out,
                        });
                    }
                    edge += 1;
                }
                let node = node.ok_or_else(|| TrainerError::InvalidSetting {
                    field: "supernet",
                    reason: "a node without ops".to_owned(),
                })?;
                states.push(node);
            }
            let mut out = Tensor::cat(&states[2..], 1);
            if !cell.first {
                out = match &cell.residual {
                    Some(projection) => out + projection.forward(&s1, train),
                    None => out + &s1,
                };
            }
            (s0, s1) = (s1, out);
        }
        let pooled = s1.mean_dim([2i64, 3].as_slice(), false, Kind::Float);
        Ok(pooled.linear(&self.classifier.0, Some(&self.classifier.1)))
    }
}
