//! Max and average pooling over NHWC maps. Max pooling ignores padding; average pooling
//! divides by the number of real (unpadded) inputs in the window.

use rayon::prelude::*;

use crate::plan::Window;

/// The two pooling reductions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reduce {
    Max,
    Mean,
}

/// Pools `batch` samples of `input` into `output`.
pub(super) fn run(w: &Window, reduce: Reduce, input: &[f32], batch: usize, output: &mut [f32]) {
    let channels = w.in_channels;
    let output = &mut output[..batch * w.output_pixels() * channels];
    let pixel_ops = w.taps() * channels.div_ceil(16);
    output.par_chunks_mut(channels).enumerate().with_min_len(super::min_task_len(pixel_ops)).for_each(
        |(row, y)| {
            y.fill(if reduce == Reduce::Max { f32::NEG_INFINITY } else { 0.0 });
            let mut count = 0usize;
            w.for_each_valid_tap(row, |_, pixel| {
                let x = &input[pixel * channels..][..channels];
                count += 1;
                match reduce {
                    Reduce::Max => y.iter_mut().zip(x).for_each(|(y, &x)| *y = y.max(x)),
                    Reduce::Mean => y.iter_mut().zip(x).for_each(|(y, &x)| *y += x),
                }
            });
            if reduce == Reduce::Mean {
                let scale = 1.0 / count as f32;
                y.iter_mut().for_each(|y| *y *= scale);
            }
        },
    );
}
