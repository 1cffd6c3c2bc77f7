//! The execution plan: a network's live layers as a list of steps (what to compute, with
//! which weights, reading and writing which arena slots). It is built once per model from the
//! `bnas-models` spec and the `.bnas` tensors, and any backend can run it.
//!
//! Activations are NHWC f32 (`batch x height x width x channels`) in arena slots that the
//! planner reuses once their last reader has run. Weights stay in the file's layouts: float
//! weights `[out, in, k, k]`, binary filters in the kernels' 16-lane panels (u64 words, which a
//! GPU reads as u32 pairs), so another backend consumes the same plan; the padding correction
//! table is backend-neutral too (one base per border class and output channel).

mod arena;
mod build;
mod fold;
mod padding;

use bnas_models::{LayerId, Shape};

use crate::format::{Floats, Words};

pub use arena::SlotId;
pub use fold::{BatchNormParams, Binarize, ChannelAffine};
pub use padding::PaddingCorrection;

/// A runnable network: steps in execution order over a planned arena.
#[derive(Debug)]
pub struct Plan {
    /// Per-sample network input (the spec's input layer).
    pub input: Shape,
    /// The slot the input is written to.
    pub input_slot: SlotId,
    /// The steps, in execution order.
    pub steps: Vec<Step>,
    /// Per-sample capacity (f32 values) of each arena slot.
    pub slots: Vec<usize>,
    /// The slot holding the logits after the last step.
    pub output_slot: SlotId,
    /// Number of classes (the logits per sample).
    pub classes: usize,
}

/// One layer to compute.
#[derive(Debug)]
pub struct Step {
    /// The spec layer it computes.
    pub layer: LayerId,
    /// The layer's name.
    pub name: String,
    /// What to compute.
    pub op: StepOp,
    /// The slots it reads, in the op's order.
    pub inputs: Vec<SlotId>,
    /// The slot it writes.
    pub output: SlotId,
    /// Per-sample output shape.
    pub shape: Shape,
    /// Float MACs per sample (spec §8).
    pub float_macs: u64,
    /// Binary MACs per sample, full kernel window (spec §8).
    pub binary_macs: u64,
}

/// Geometry of a convolution or pooling window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels (equal to `in_channels` for pooling).
    pub out_channels: usize,
    /// Square kernel size.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Zero padding on each side.
    pub padding: usize,
    /// Dilation.
    pub dilation: usize,
    /// Input height and width.
    pub input: (usize, usize),
    /// Output height and width.
    pub output: (usize, usize),
}

impl Window {
    /// Input row (or column) read by output position `out` at kernel offset `k`, if it is not
    /// padding.
    pub fn source(&self, out: usize, k: usize, size: usize) -> Option<usize> {
        (out * self.stride + k * self.dilation).checked_sub(self.padding).filter(|&i| i < size)
    }

    /// The taps of output pixel `row` (counted over the whole batch) that read real input, as
    /// (tap `ky * kernel + kx`, input pixel counted over the whole batch); padded taps are left
    /// out.
    pub fn valid_taps(&self, row: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
        let (in_h, in_w) = self.input;
        let (sample, pixel) = (row / self.output_pixels(), row % self.output_pixels());
        let (oy, ox) = (pixel / self.output.1, pixel % self.output.1);
        (0..self.kernel).filter_map(move |ky| self.source(oy, ky, in_h).map(|iy| (ky, iy))).flat_map(
            move |(ky, iy)| {
                (0..self.kernel).filter_map(move |kx| {
                    let ix = self.source(ox, kx, in_w)?;
                    Some((ky * self.kernel + kx, (sample * in_h + iy) * in_w + ix))
                })
            },
        )
    }

    /// Kernel taps, `kernel * kernel`.
    pub fn taps(&self) -> usize {
        self.kernel * self.kernel
    }

    /// Output pixels per sample.
    pub fn output_pixels(&self) -> usize {
        self.output.0 * self.output.1
    }

    /// Input pixels per sample.
    pub fn input_pixels(&self) -> usize {
        self.input.0 * self.input.1
    }
}

/// What a step computes.
#[derive(Debug)]
pub enum StepOp {
    /// XNOR/popcount convolution.
    BinaryConv(BinaryConv),
    /// Float convolution (stems, residual projections, compat convs).
    FloatConv(FloatConv),
    /// Max pool, padding ignored.
    MaxPool(Window),
    /// Average pool, padding not counted.
    AvgPool(Window),
    /// Elementwise sum of the inputs (statically zero inputs are left out).
    Add,
    /// Channel concatenation.
    Concat(Vec<ConcatPart>),
    /// Mean over the map.
    GlobalAvgPool {
        /// Pixels of the input map.
        pixels: usize,
    },
    /// Fully connected layer.
    Linear(Linear),
    /// A statically zero output that a conv reads (BN + sign makes a constant of it).
    Zeros,
}

/// One block of channels of a concat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConcatPart {
    /// The next input slot, with its channel count.
    Input(usize),
    /// Statically zero channels.
    Zeros(usize),
}

/// `y[o] = relu?(alpha[o] * sum_valid sign(bn(x)) * sign(w))` by XNOR and popcount.
#[derive(Debug)]
pub struct BinaryConv {
    /// Geometry.
    pub window: Window,
    /// The input BatchNorm + sign, as thresholds.
    pub binarize: Binarize,
    /// Bit-packed filters in the kernels' panel layout.
    pub filters: Words,
    /// Per-output-channel scale.
    pub alpha: Floats,
    /// The zero padding correction per border position.
    pub correction: PaddingCorrection,
    /// Whether a ReLU follows.
    pub relu: bool,
}

/// `[BN] [ReLU] [sign] conv (+bias) [BN] [ReLU]` in float.
#[derive(Debug)]
pub struct FloatConv {
    /// Geometry.
    pub window: Window,
    /// Input BatchNorm (absent for compat convs, whose BatchNorm is folded into `binarize`).
    pub input_bn: Option<ChannelAffine>,
    /// ReLU on the input.
    pub input_relu: bool,
    /// Sign-binarized input with float weights (the reference's compat convs).
    pub binarize: Option<Binarize>,
    /// Weights, `[out, in, k, k]`.
    pub weight: Floats,
    /// Bias, `[out]`.
    pub bias: Option<Floats>,
    /// Output BatchNorm.
    pub output_bn: Option<ChannelAffine>,
    /// Whether a ReLU comes last.
    pub relu: bool,
}

/// `y = W x + b`.
#[derive(Debug)]
pub struct Linear {
    /// Input features.
    pub in_features: usize,
    /// Outputs.
    pub out_features: usize,
    /// `[out, in]`.
    pub weight: Floats,
    /// `[out]`.
    pub bias: Floats,
}
