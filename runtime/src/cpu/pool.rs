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
    let (in_h, in_w) = w.input;
    let (out_h, out_w) = w.output;
    let output = &mut output[..batch * out_h * out_w * channels];
    output.par_chunks_mut(out_w * channels).enumerate().for_each(|(row, out)| {
        let (sample, oy) = (row / out_h, row % out_h);
        for (ox, y) in out.chunks_exact_mut(channels).enumerate() {
            y.fill(if reduce == Reduce::Max { f32::NEG_INFINITY } else { 0.0 });
            let mut count = 0usize;
            for iy in (0..w.kernel).filter_map(|ky| w.source(oy, ky, in_h)) {
                for ix in (0..w.kernel).filter_map(|kx| w.source(ox, kx, in_w)) {
                    let x = &input[((sample * in_h + iy) * in_w + ix) * channels..][..channels];
                    count += 1;
                    match reduce {
                        Reduce::Max => y.iter_mut().zip(x).for_each(|(y, &x)| *y = y.max(x)),
                        Reduce::Mean => y.iter_mut().zip(x).for_each(|(y, &x)| *y += x),
                    }
                }
            }
            if reduce == Reduce::Mean {
                let scale = 1.0 / count as f32;
                y.iter_mut().for_each(|y| *y *= scale);
            }
        }
    });
}
