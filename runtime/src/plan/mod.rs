//! The execution plan: a network's live layers as a list of steps (what to compute, with
//! which weights, reading and writing which arena slots). It is built once per model from the
//! `bnas-models` spec and the `.bnas` tensors, and any backend can run it.
//!
//! Activations are NHWC f32 (`batch x height x width x channels`) in arena slots that the
//! planner reuses once their last reader has run. Weights stay in the file's layouts: float
//! weights `[out, in, k, k]`, binary filters in the panels of [`crate::bit_layout`] (u64 words,
//! which a GPU reads as u32 pairs); the padding correction table is backend-neutral too (one
//! base per border class and output channel). A backend builds whatever else it wants at load
//! (the CPU packs float filters, the GPU uploads buffers).

mod build;
mod fold;
mod padding;
mod slots;

use bnas_models::{LayerId, Shape};

use crate::format::{Floats, Words};

pub use build::StoredBatchNorm;
pub use fold::{BatchNormParams, Binarize, ChannelAffine};
pub use padding::PaddingCorrection;
pub use slots::SlotId;

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
    /// Float MACs per sample (reference §8).
    pub float_macs: u64,
    /// Binary MACs per sample, full kernel window (reference §8).
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

    /// Calls `f(row - rows.start, tap, pixel)` for each tap of output pixels `rows` (counted over
    /// the whole batch), in order, that reads real input: tap `ky * kernel + kx`, input pixel
    /// counted over the whole batch. Padded taps are skipped. Walks the rows without a division
    /// per row.
    #[inline]
    pub fn for_each_valid_tap_in(
        &self,
        rows: std::ops::Range<usize>,
        mut f: impl FnMut(usize, usize, usize),
    ) {
        let ((in_h, in_w), (out_h, out_w)) = (self.input, self.output);
        if rows.is_empty() || out_h * out_w == 0 {
            return;
        }
        let (mut sample, pixel) = (rows.start / (out_h * out_w), rows.start % (out_h * out_w));
        let (mut oy, mut ox) = (pixel / out_w, pixel % out_w);
        let mut ky_valid = self.valid_offsets(oy, in_h);
        for r in 0..rows.len() {
            let kx_valid = self.valid_offsets(ox, in_w);
            let top_left = (sample * in_h + oy * self.stride) * in_w + ox * self.stride;
            for ky in ky_valid.clone() {
                for kx in kx_valid.clone() {
                    // In range: valid_offsets keeps the row and column inside the input.
                    let pixel = top_left + (ky * in_w + kx) * self.dilation - self.padding * (in_w + 1);
                    f(r, ky * self.kernel + kx, pixel);
                }
            }
            ox += 1;
            if ox == out_w {
                (ox, oy) = (0, oy + 1);
                if oy == out_h {
                    (oy, sample) = (0, sample + 1);
                }
                ky_valid = self.valid_offsets(oy, in_h);
            }
        }
    }

    /// The kernel offsets `k` at which output position `out` reads a real input row (or
    /// column) of a `size`-long axis: those [`Window::source`] maps to `Some`, a contiguous
    /// range.
    fn valid_offsets(&self, out: usize, size: usize) -> std::ops::Range<usize> {
        let start = out * self.stride;
        // Dilation 1 (almost every conv) needs no division.
        let offsets =
            |distance: usize| if self.dilation == 1 { distance } else { distance.div_ceil(self.dilation) };
        let first = offsets(self.padding.saturating_sub(start));
        let end = offsets((size + self.padding).saturating_sub(start)).min(self.kernel);
        first..end.max(first)
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
    /// Weights, `[out, in, k, k]` (each backend packs its own copy at load).
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

#[cfg(test)]
mod tests {
    use super::Window;

    #[test]
    fn valid_taps_are_those_that_source_maps_inside_the_input() {
        for (kernel, stride, padding, dilation) in
            [(3, 1, 1, 1), (3, 2, 1, 1), (5, 1, 4, 2), (2, 2, 0, 1), (7, 3, 3, 1)]
        {
            let input = (9, 7);
            let out = |size: usize| (size + 2 * padding - dilation * (kernel - 1) - 1) / stride + 1;
            let w = Window {
                in_channels: 1,
                out_channels: 1,
                kernel,
                stride,
                padding,
                dilation,
                input,
                output: (out(input.0), out(input.1)),
            };
            // Rows 3.. walked in one go give the same taps as one at a time.
            let mut all = Vec::new();
            for row in 3..2 * w.output_pixels() {
                let (sample, pixel) = (row / w.output_pixels(), row % w.output_pixels());
                let (oy, ox) = (pixel / w.output.1, pixel % w.output.1);
                let want: Vec<(usize, usize)> = (0..kernel * kernel)
                    .filter_map(|tap| {
                        let iy = w.source(oy, tap / kernel, input.0)?;
                        let ix = w.source(ox, tap % kernel, input.1)?;
                        Some((tap, (sample * input.0 + iy) * input.1 + ix))
                    })
                    .collect();
                let mut got = Vec::new();
                w.for_each_valid_tap_in(row..row + 1, |_, tap, pixel| got.push((tap, pixel)));
                assert_eq!(got, want, "k{kernel} s{stride} p{padding} d{dilation} row {row}");
                all.extend(want.into_iter().map(|(tap, pixel)| (row - 3, tap, pixel)));
            }
            let mut walked = Vec::new();
            w.for_each_valid_tap_in(3..2 * w.output_pixels(), |r, tap, pixel| walked.push((r, tap, pixel)));
            assert_eq!(walked, all, "k{kernel} s{stride} p{padding} d{dilation}: rows walked in one go");
        }
    }
}
