//! The network spec: every layer in execution order with its shapes, parameters, precision,
//! cost and liveness. Trainer, export and runtime all build their networks from it.

mod builder;
mod liveness;
mod memory;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::config::NetworkConfig;
use crate::cost::{self, Cost, CostKind};

/// Index of a layer in [`NetworkSpec::layers`].
pub type LayerId = usize;

/// A per-sample activation shape: channels x height x width (1x1 after global pooling).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Shape {
    /// Channels (or features).
    pub channels: usize,
    /// Height.
    pub height: usize,
    /// Width.
    pub width: usize,
}

impl Shape {
    /// Number of elements.
    pub fn numel(&self) -> u64 {
        (self.channels * self.height * self.width) as u64
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}x{}", self.channels, self.height, self.width)
    }
}

/// How a layer computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// Float inputs and weights (stems, residual projections, classifier, pools, sums).
    Float,
    /// Sign-binarized inputs and weights: XNOR/popcount.
    Binary,
    /// Sign-binarized inputs with float weights: the reference's conv-selection quirk
    /// (`reference_compat`). Its MACs count as float.
    #[serde(rename = "compat")]
    BinaryInputFloatWeight,
}

impl Precision {
    /// Whether the layer's input is sign-binarized (after its input BatchNorm).
    pub fn binarizes_input(self) -> bool {
        matches!(self, Precision::Binary | Precision::BinaryInputFloatWeight)
    }

    /// Short name used in reports.
    pub fn label(self) -> &'static str {
        match self {
            Precision::Float => "float",
            Precision::Binary => "binary",
            Precision::BinaryInputFloatWeight => "compat",
        }
    }
}

/// What a layer does after dead-layer analysis (reference §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Liveness {
    /// Computed: its output reaches the logits.
    Live,
    /// Pruned: its output is statically zero (Zeroise, or a sum of Zeroise outputs).
    Zero,
    /// Pruned: its output reaches the logits only through Zeroise edges.
    Dead,
}

/// A BatchNorm2d inside a conv block, under its canonical parameter prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchNorm {
    /// Canonical name prefix, e.g. `cells.3.preprocess0.bn`.
    pub prefix: String,
    /// Normalized channels.
    pub channels: usize,
    /// Whether it has gamma/beta (the CIFAR stride-2 preprocess0 does not).
    pub affine: bool,
}

/// A convolution block: `[BN] [ReLU] [sign] conv [BN] [ReLU]`. Whether the input is
/// sign-binarized is the layer's [`Precision`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConvSpec {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Square kernel size.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Zero padding on each side.
    pub padding: usize,
    /// Dilation.
    pub dilation: usize,
    /// Canonical name of the weight, `[out, in, k, k]`.
    pub weight: String,
    /// Canonical name of the bias, if the conv has one.
    pub bias: Option<String>,
    /// BatchNorm applied to the block's input.
    pub input_bn: Option<BatchNorm>,
    /// ReLU applied to the block's input (ImageNet `stem1`).
    pub input_relu: bool,
    /// BatchNorm applied to the conv output.
    pub output_bn: Option<BatchNorm>,
    /// ReLU applied last.
    pub output_relu: bool,
}

/// The operation of a layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LayerOp {
    /// The network input.
    Input,
    /// A convolution block.
    Conv(ConvSpec),
    /// Max pool, padded with -inf.
    MaxPool {
        /// Window size.
        kernel: usize,
        /// Stride.
        stride: usize,
        /// Padding.
        padding: usize,
    },
    /// Average pool; padded positions are not counted.
    AvgPool {
        /// Window size.
        kernel: usize,
        /// Stride.
        stride: usize,
        /// Padding.
        padding: usize,
    },
    /// Zeroise: zeros of the input's shape, subsampled by the stride.
    Zero {
        /// Stride.
        stride: usize,
    },
    /// Elementwise sum of the inputs (a cell node, or the inter-cell residual).
    Add,
    /// Channel concatenation of the inputs.
    Concat,
    /// Average over the whole map (CIFAR's adaptive pool; ImageNet's 7x7 pool on a 7x7 map).
    GlobalAvgPool,
    /// Fully connected classifier.
    Linear {
        /// Canonical name of the weight, `[out, in]`.
        weight: String,
        /// Canonical name of the bias.
        bias: String,
    },
}

impl LayerOp {
    /// Short name used in reports.
    pub fn label(&self) -> String {
        match self {
            LayerOp::Input => "input".to_owned(),
            LayerOp::Conv(c) if c.dilation > 1 => {
                format!("conv{k}x{k} d{} s{}", c.dilation, c.stride, k = c.kernel)
            }
            LayerOp::Conv(c) => format!("conv{k}x{k} s{}", c.stride, k = c.kernel),
            LayerOp::MaxPool { kernel, stride, .. } => format!("maxpool{kernel}x{kernel} s{stride}"),
            LayerOp::AvgPool { kernel, stride, .. } => format!("avgpool{kernel}x{kernel} s{stride}"),
            LayerOp::Zero { stride } => format!("zero s{stride}"),
            LayerOp::Add => "add".to_owned(),
            LayerOp::Concat => "concat".to_owned(),
            LayerOp::GlobalAvgPool => "global_avgpool".to_owned(),
            LayerOp::Linear { .. } => "linear".to_owned(),
        }
    }
}

/// The role of a stored tensor, which fixes its dtype and whether it is learnable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamKind {
    /// Conv or Linear weight.
    Weight,
    /// Conv or Linear bias.
    Bias,
    /// BatchNorm gamma.
    BnWeight,
    /// BatchNorm beta.
    BnBias,
    /// BatchNorm running mean (buffer).
    RunningMean,
    /// BatchNorm running variance (buffer).
    RunningVar,
    /// BatchNorm step counter (int64 scalar buffer).
    NumBatchesTracked,
}

impl ParamKind {
    /// Whether the reference counts it as a parameter (buffers are not).
    pub fn learnable(self) -> bool {
        matches!(self, ParamKind::Weight | ParamKind::Bias | ParamKind::BnWeight | ParamKind::BnBias)
    }
}

/// One tensor of the state_dict, under its canonical name (the reference's key without `module.`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamSpec {
    /// Canonical name, e.g. `cells.3._ops.1.op.0.weight`.
    pub name: String,
    /// Shape (empty for the scalar `num_batches_tracked`).
    pub shape: Vec<usize>,
    /// Role.
    pub kind: ParamKind,
}

impl ParamSpec {
    /// Number of elements (1 for a scalar).
    pub fn numel(&self) -> u64 {
        self.shape.iter().map(|&d| d as u64).product()
    }
}

/// One layer of the network.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Layer {
    /// Unique name; for blocks with parameters, the reference's module prefix.
    pub name: String,
    /// What it computes.
    pub op: LayerOp,
    /// The layers whose outputs it reads, in order.
    pub inputs: Vec<LayerId>,
    /// Per-sample output shape.
    pub output: Shape,
    /// How it computes.
    pub precision: Precision,
    /// Its tensors in state_dict order, buffers included.
    pub params: Vec<ParamSpec>,
    /// Its cost per sample, as (kind, count) pairs; counted whether or not it is pruned.
    pub cost: Vec<Cost>,
    /// Whether it is computed.
    pub liveness: Liveness,
}

impl Layer {
    /// Learnable parameters of the layer, as the reference counts them.
    pub fn param_count(&self) -> u64 {
        self.params.iter().filter(|p| p.kind.learnable()).map(ParamSpec::numel).sum()
    }

    /// Learnable values stored as 1 bit: the weights of a binary conv.
    pub fn binary_weight_count(&self) -> u64 {
        if self.precision != Precision::Binary {
            return 0;
        }
        self.params.iter().filter(|p| p.kind == ParamKind::Weight).map(ParamSpec::numel).sum()
    }

    /// Bits of its learnable parameters when packed: 1 per binary weight, 32 for the rest.
    pub fn packed_param_bits(&self) -> u64 {
        let binary = self.binary_weight_count();
        binary + 32 * (self.param_count() - binary)
    }

    /// Whether it is pruned (dead or statically zero).
    pub fn pruned(&self) -> bool {
        self.liveness != Liveness::Live
    }

    /// Its count of one cost kind.
    pub fn count(&self, kind: CostKind) -> u64 {
        cost::sum_kind(&self.cost, kind)
    }

    /// The conv block, if the layer is one.
    pub fn conv(&self) -> Option<&ConvSpec> {
        match &self.op {
            LayerOp::Conv(conv) => Some(conv),
            _ => None,
        }
    }
}

/// A whole network, layers in a valid execution order (the reference's module registration
/// order); the last layer is the classifier. Serialized for reports only: stored models keep
/// their [`NetworkConfig`] and rebuild the spec from it, so there is one authority.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NetworkSpec {
    /// The configuration it was built from.
    pub config: NetworkConfig,
    /// Every layer, inputs before consumers; layer 0 is the input.
    pub layers: Vec<Layer>,
}

impl NetworkSpec {
    /// Every tensor of the state_dict in the reference's order.
    pub fn params(&self) -> impl Iterator<Item = &ParamSpec> {
        self.layers.iter().flat_map(|l| l.params.iter())
    }

    /// Learnable parameters, counted as the reference counts them (pruned layers included, so
    /// checkpoints match).
    pub fn param_count(&self) -> u64 {
        self.layers.iter().map(Layer::param_count).sum()
    }

    /// A layer by name.
    pub fn layer(&self, name: &str) -> Option<&Layer> {
        self.layers.iter().find(|l| l.name == name)
    }

    /// Total count of one cost kind over live layers.
    pub fn total(&self, kind: CostKind) -> u64 {
        self.live_layers().map(|l| l.count(kind)).sum()
    }

    /// `ops` = float MACs + binary MACs / 64 over live layers.
    pub fn ops(&self) -> f64 {
        cost::ops(self.total(CostKind::FloatMac), self.total(CostKind::BinaryMac))
    }

    /// Layers that are computed.
    pub fn live_layers(&self) -> impl Iterator<Item = &Layer> {
        self.layers.iter().filter(|l| !l.pruned())
    }

    /// The classifier's output shape.
    pub fn output(&self) -> Shape {
        self.layers.last().expect("a spec always has layers").output
    }
}
