//! The cheap layers: sums, concatenation, global average pooling, the classifier, and the
//! NCHW <-> NHWC conversions at the network's edges.

use rayon::prelude::*;

use crate::plan::{ConcatPart, Linear};

/// `output = sum(inputs)`.
pub(super) fn add(inputs: &[&[f32]], output: &mut [f32]) {
    // Per 16 outputs: a load per input and a store.
    let chunk = 16 * super::min_task_len(inputs.len() + 1);
    output.par_chunks_mut(chunk).enumerate().for_each(|(task, out)| {
        let start = task * chunk;
        out.copy_from_slice(&inputs[0][start..start + out.len()]);
        for input in &inputs[1..] {
            out.iter_mut().zip(&input[start..]).for_each(|(y, x)| *y += x);
        }
    });
}

/// Concatenates NHWC maps along channels; zero parts are filled with zeros.
pub(super) fn concat(parts: &[ConcatPart], inputs: &[&[f32]], pixels: usize, output: &mut [f32]) {
    let channels: usize = parts
        .iter()
        .map(|p| match p {
            ConcatPart::Input(c) | ConcatPart::Zeros(c) => c,
        })
        .sum();
    let min_pixels = super::min_task_len(2 * channels.div_ceil(16));
    output[..pixels * channels].par_chunks_mut(channels).enumerate().with_min_len(min_pixels).for_each(
        |(pixel, out)| {
            let (mut offset, mut next) = (0, 0);
            for part in parts {
                match *part {
                    ConcatPart::Input(c) => {
                        out[offset..offset + c].copy_from_slice(&inputs[next][pixel * c..][..c]);
                        next += 1;
                        offset += c;
                    }
                    ConcatPart::Zeros(c) => {
                        out[offset..offset + c].fill(0.0);
                        offset += c;
                    }
                }
            }
        },
    );
}

/// Mean over the `pixels` of each sample, per channel.
pub(super) fn global_avg_pool(
    input: &[f32],
    batch: usize,
    pixels: usize,
    channels: usize,
    output: &mut [f32],
) {
    let scale = 1.0 / pixels as f32;
    output[..batch * channels].par_chunks_mut(channels).enumerate().for_each(|(sample, out)| {
        out.fill(0.0);
        for x in input[sample * pixels * channels..][..pixels * channels].chunks_exact(channels) {
            out.iter_mut().zip(x).for_each(|(y, x)| *y += x);
        }
        out.iter_mut().for_each(|y| *y *= scale);
    });
}

/// `output[n] = W input[n] + b` for each sample, as one dot product per output: every sample
/// gets the same arithmetic whatever the batch size (a GEMM would round differently by batch,
/// and at small batches spend its time packing the weights).
pub(super) fn linear(layer: &Linear, input: &[f32], batch: usize, output: &mut [f32]) {
    let k = layer.in_features;
    let output = &mut output[..batch * layer.out_features];
    output.par_chunks_mut(layer.out_features).zip(input.par_chunks(k)).for_each(|(y, x)| {
        y.par_iter_mut()
            .zip(layer.weight.par_chunks_exact(k))
            .zip(&layer.bias[..])
            .with_min_len(super::min_task_len(k.div_ceil(16)))
            .for_each(|((y, w), b)| *y = b + dot(w, x));
    });
}

/// A dot product in 16 independent lanes, so that it vectorizes.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 16];
    let (a_blocks, b_blocks) = (a.chunks_exact(16), b.chunks_exact(16));
    let tail: f32 = a_blocks.remainder().iter().zip(b_blocks.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in a_blocks.zip(b_blocks) {
        for i in 0..16 {
            lanes[i] += x[i] * y[i];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// NCHW (the API's layout) to NHWC (the executor's).
pub(crate) fn nchw_to_nhwc(input: &[f32], channels: usize, pixels: usize, output: &mut [f32]) {
    output[..input.len()]
        .par_chunks_mut(pixels * channels)
        .zip(input.par_chunks(pixels * channels))
        .for_each(|(out, x)| {
            for c in 0..channels {
                for p in 0..pixels {
                    out[p * channels + c] = x[c * pixels + p];
                }
            }
        });
}
