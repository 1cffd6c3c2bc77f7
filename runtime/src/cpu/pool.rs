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
    let pixels = batch * w.output_pixels();
    let output = &mut output[..pixels * channels];
    let pixel_ops = w.taps() * channels.div_ceil(16);
    let task_pixels =
        pixels.div_ceil(2 * rayon::current_num_threads()).max(super::min_task_len(pixel_ops)).max(1);
    output.par_chunks_mut(task_pixels * channels).enumerate().for_each_init(
        Vec::new,
        |counts, (task, out)| {
            let (first, n) = (task * task_pixels, out.len() / channels);
            out.fill(if reduce == Reduce::Max { f32::NEG_INFINITY } else { 0.0 });
            counts.clear();
            counts.resize(n, 0u32);
            w.for_each_valid_tap_in(first..first + n, |r, _, pixel| {
                let (x, y) = (&input[pixel * channels..][..channels], &mut out[r * channels..][..channels]);
                counts[r] += 1;
                match reduce {
                    Reduce::Max => y.iter_mut().zip(x).for_each(|(y, &x)| *y = y.max(x)),
                    Reduce::Mean => y.iter_mut().zip(x).for_each(|(y, &x)| *y += x),
                }
            });
            if reduce == Reduce::Mean {
                for (y, &count) in out.chunks_exact_mut(channels).zip(counts.iter()) {
                    let scale = 1.0 / count as f32;
                    y.iter_mut().for_each(|y| *y *= scale);
                }
            }
        },
    );
}
