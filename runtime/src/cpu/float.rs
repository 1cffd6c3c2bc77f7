//! Float convolution on the CPU: input transform (BatchNorm, ReLU or sign), then the indirect
//! conv GEMM of [`crate::kernels::float_conv`] on pre-packed weights with bias, BatchNorm and
//! ReLU in its epilogue.

use rayon::prelude::*;

use crate::kernels::float_conv::{conv_gemm, ConvGemm, Epilogue, PADDING};
use crate::kernels::Isa;
use crate::plan::{FloatConv, Window};

/// Output pixels per parallel task: an even share of the rows per thread, capped so that a
/// task's input rows (`depth` floats each) stay near 256 KiB, the size of a core's L2 share, and
/// large enough to pay for a thread (a row is `depth` FMAs per 16 of `out_channels`).
fn rows_per_task(rows: usize, depth: usize, out_channels: usize) -> usize {
    let cap = (64 * 1024 / depth.max(1)).max(64);
    let least = super::min_task_len(depth * out_channels.div_ceil(16));
    rows.div_ceil(rayon::current_num_threads()).clamp(1, cap).max(least)
}

/// Runs the conv on NHWC `input`; writes NHWC `output`. `scratch` holds the transformed input.
pub(super) fn run(
    conv: &FloatConv,
    panels: &[f32],
    isa: Isa,
    input: &[f32],
    batch: usize,
    scratch: &mut Vec<f32>,
    output: &mut [f32],
) {
    let w = &conv.window;
    let input = transform_input(conv, &input[..batch * w.input_pixels() * w.in_channels], scratch);
    let rows = batch * w.output_pixels();
    let output = &mut output[..rows * w.out_channels];
    let task_rows = rows_per_task(rows, w.in_channels * w.taps(), w.out_channels);
    output.par_chunks_mut(task_rows * w.out_channels).enumerate().for_each_init(
        || (Vec::new(), Vec::new()),
        |(sources, packed), (task, out)| {
            let first = task * task_rows;
            let n = out.len() / w.out_channels;
            tap_sources(w, first, n, sources);
            let gemm = ConvGemm {
                input,
                channels: w.in_channels,
                sources,
                taps: w.taps(),
                panels,
                out_channels: w.out_channels,
                epilogue: Epilogue {
                    bias: conv.bias.as_deref(),
                    affine: conv.output_bn.as_ref().map(|bn| (&bn.scale[..], &bn.shift[..])),
                    relu: conv.relu,
                },
            };
            conv_gemm(isa, &gemm, packed, out);
        },
    );
}

/// The input after BatchNorm and ReLU, or after sign (+1 / -1) for compat convs. Zero padding
/// is applied afterwards, by the GEMM's padded taps.
fn transform_input<'a>(conv: &FloatConv, input: &'a [f32], scratch: &'a mut Vec<f32>) -> &'a [f32] {
    if conv.input_bn.is_none() && !conv.input_relu && conv.binarize.is_none() {
        return input;
    }
    let channels = conv.window.in_channels;
    scratch.clear();
    scratch.resize(input.len(), 0.0);
    let block = channels * 256.max(super::min_task_len(3 * channels.div_ceil(16)));
    scratch.par_chunks_mut(block).zip(input.par_chunks(block)).for_each(|(block, x)| {
        for (pixel, x) in block.chunks_exact_mut(channels).zip(x.chunks_exact(channels)) {
            pixel.copy_from_slice(x);
            if let Some(bn) = &conv.input_bn {
                for ((x, s), t) in pixel.iter_mut().zip(&bn.scale).zip(&bn.shift) {
                    *x = *x * s + t;
                }
            }
            if conv.input_relu {
                pixel.iter_mut().for_each(|x| *x = x.max(0.0));
            }
            if let Some(binarize) = &conv.binarize {
                for (c, x) in pixel.iter_mut().enumerate() {
                    *x = if binarize.bit(c, *x) { 1.0 } else { -1.0 };
                }
            }
        }
    });
    scratch
}

/// For output pixels `first..first + rows`, the input offset each tap reads (`rows x taps`), or
/// [`PADDING`] where the tap falls on zero padding.
fn tap_sources(w: &Window, first: usize, rows: usize, sources: &mut Vec<usize>) {
    let taps = w.taps();
    sources.clear();
    sources.resize(rows * taps, PADDING);
    w.for_each_valid_tap_in(first..first + rows, |r, tap, pixel| {
        sources[r * taps + tap] = pixel * w.in_channels
    });
}
