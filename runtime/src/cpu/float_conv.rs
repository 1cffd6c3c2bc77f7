//! Float convolution on the CPU: input transform (BatchNorm, ReLU or sign), im2col in the
//! weights' `(c, ky, kx)` order, a GEMM from `matrixmultiply`, then bias, BatchNorm and ReLU.

use rayon::prelude::*;

use crate::plan::{FloatConv, Window};

/// Output pixels per parallel task: each task packs the whole weight matrix for its GEMM, so
/// tasks are as few as the threads allow, within bounds that keep the im2col block small.
fn rows_per_task(rows: usize) -> usize {
    rows.div_ceil(rayon::current_num_threads()).clamp(32, 512)
}

/// Runs the conv on NHWC `input`; writes NHWC `output`. `scratch` holds the transformed input.
pub(super) fn run(conv: &FloatConv, input: &[f32], batch: usize, scratch: &mut Vec<f32>, output: &mut [f32]) {
    let w = &conv.window;
    let input = transform_input(conv, &input[..batch * w.input_pixels() * w.in_channels], scratch);
    let rows = batch * w.output_pixels();
    let depth = w.in_channels * w.taps();
    let output = &mut output[..rows * w.out_channels];
    // The GEMM reads the weight through a raw pointer: this is the length its SAFETY rests on.
    assert_eq!(conv.weight.len(), w.out_channels * depth, "float conv weight must be [out, in, k, k]");
    let task_rows = rows_per_task(rows);
    output.par_chunks_mut(task_rows * w.out_channels).enumerate().for_each_init(
        Vec::new,
        |columns, (task, out)| {
            let first = task * task_rows;
            let n = out.len() / w.out_channels;
            im2col(w, input, first, n, columns);
            // SAFETY: `columns` is n x depth row-major, the weight is out_channels x depth row-major
            // (read transposed through its strides) and `out` is n x out_channels row-major; all
            // three lengths match those dimensions.
            unsafe {
                matrixmultiply::sgemm(
                    n,
                    depth,
                    w.out_channels,
                    1.0,
                    columns.as_ptr(),
                    depth as isize,
                    1,
                    conv.weight.as_ptr(),
                    1,
                    depth as isize,
                    0.0,
                    out.as_mut_ptr(),
                    w.out_channels as isize,
                    1,
                );
            }
            for y in out.chunks_exact_mut(w.out_channels) {
                finish(conv, y);
            }
        },
    );
}

/// Bias, output BatchNorm and ReLU on one output pixel.
fn finish(conv: &FloatConv, y: &mut [f32]) {
    if let Some(bias) = &conv.bias {
        y.iter_mut().zip(bias.iter()).for_each(|(y, b)| *y += b);
    }
    if let Some(bn) = &conv.output_bn {
        for ((y, s), t) in y.iter_mut().zip(&bn.scale).zip(&bn.shift) {
            *y = *y * s + t;
        }
    }
    if conv.relu {
        y.iter_mut().for_each(|y| *y = y.max(0.0));
    }
}

/// The input after BatchNorm and ReLU, or after sign (+1 / -1) for compat convs. Zero padding
/// is applied afterwards, by im2col.
fn transform_input<'a>(conv: &FloatConv, input: &'a [f32], scratch: &'a mut Vec<f32>) -> &'a [f32] {
    if conv.input_bn.is_none() && !conv.input_relu && conv.binarize.is_none() {
        return input;
    }
    let channels = conv.window.in_channels;
    scratch.clear();
    scratch.extend_from_slice(input);
    scratch.par_chunks_mut(channels * 256).for_each(|block| {
        for pixel in block.chunks_exact_mut(channels) {
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

/// Rows `first..first + rows` of the im2col matrix: column `(c * k + ky) * k + kx`, the order
/// of an `[out, in, k, k]` weight's row; padded taps are 0.
fn im2col(w: &Window, input: &[f32], first: usize, rows: usize, columns: &mut Vec<f32>) {
    let taps = w.taps();
    columns.clear();
    columns.resize(rows * w.in_channels * taps, 0.0);
    for (r, row) in columns.chunks_exact_mut(w.in_channels * taps).enumerate() {
        for (tap, pixel) in w.valid_taps(first + r) {
            let src = &input[pixel * w.in_channels..][..w.in_channels];
            for (c, &x) in src.iter().enumerate() {
                row[c * taps + tap] = x;
            }
        }
    }
}
