//! XNOR/popcount convolution on the CPU: binarize and pack the input once, then per block of
//! output pixels gather a packed im2col, run the popcount GEMM and apply the fused output
//! transform (padding correction, alpha scale, ReLU). Narrow convs gather kernel rows instead of
//! taps ([`super::kernel_rows`]).

use rayon::prelude::*;

use super::kernel_rows::{self, KernelRowFilters};
use crate::bit_layout::{words_for, PANEL};
use crate::kernels::{self, Isa};
use crate::plan::BinaryConv;

/// The packed input of a conv as its GEMM reads it: per pixel (the plan's tap layout, `rows`
/// unused) or per kernel row (`rows` from [`kernel_rows::pack_rows`] and the matching filters).
#[derive(Debug, Clone, Copy)]
pub(super) struct Packed<'a> {
    /// Pixels x `words_for(C)` words.
    pub pixels: &'a [u64],
    /// Kernel-row filters and the packed kernel rows, for convs that use them.
    pub rows: Option<(&'a KernelRowFilters, &'a [u64])>,
}

/// Output pixels per parallel task: about two tasks per thread for balance, each a whole
/// number of the kernels' 8-row register blocks, small enough to stay in cache and large enough
/// to pay for a thread (`row_ops` vector instructions per row).
fn rows_per_task(rows: usize, row_ops: usize) -> usize {
    let balanced = rows.div_ceil(2 * rayon::current_num_threads()).clamp(8, 256);
    balanced.max(super::min_task_len(row_ops)).next_multiple_of(8)
}

/// Input values packed per parallel task.
const PACK_VALUES_PER_TASK: usize = 1 << 17;

/// Packs the NHWC input of `batch` samples into `packed` (pixels x words, bit 1 = +1).
pub(super) fn pack_input(conv: &BinaryConv, isa: Isa, input: &[f32], batch: usize, packed: &mut Vec<u64>) {
    let channels = conv.window.in_channels;
    let words = words_for(channels);
    let pixels = batch * conv.window.input_pixels();
    packed.clear();
    packed.resize(pixels * words, 0);
    let input = &input[..pixels * channels];
    // Packing is a compare per value: a task needs many values to pay for waking a thread.
    let pixels_per_task = (PACK_VALUES_PER_TASK / channels.max(1)).max(1);
    packed
        .par_chunks_mut(pixels_per_task * words)
        .zip(input.par_chunks(pixels_per_task * channels))
        .for_each(|(out, x)| {
            let b = &conv.binarize;
            kernels::pack_activations(isa, x, x.len() / channels, channels, &b.sign, &b.threshold, out);
        });
}

/// Runs the conv on the packed input; writes NHWC `output`.
pub(super) fn run(conv: &BinaryConv, isa: Isa, packed: Packed<'_>, batch: usize, output: &mut [f32]) {
    let w = &conv.window;
    let out_channels = w.out_channels;
    let rows = batch * w.output_pixels();
    let output = &mut output[..rows * out_channels];
    // Per row: the GEMM's XOR, popcount and add per 8 words, and the output transform.
    let panels = out_channels.div_ceil(PANEL);
    let depth = packed.rows.map_or(w.taps() * words_for(w.in_channels), |(f, _)| w.kernel * f.row_words);
    let task_rows = rows_per_task(rows, 3 * depth * panels * PANEL / 8 + 2 * out_channels.div_ceil(16));
    output.par_chunks_mut(task_rows * out_channels).enumerate().for_each_init(
        || (Vec::new(), Vec::new()),
        |(columns, counts), (task, out)| {
            let alpha = &conv.alpha[..];
            let floor = if conv.relu { 0.0 } else { f32::NEG_INFINITY };
            dots(
                conv,
                isa,
                packed,
                task * task_rows,
                out.len() / out_channels,
                columns,
                counts,
                |row, base, counts| {
                    let y = &mut out[row * out_channels..][..out_channels];
                    kernels::scale_counts(isa, base, counts, alpha, floor, y);
                },
            );
        },
    );
}

/// The integer dot products `sum_valid sign(x) * sign(w)` of every output (NHWC), for tests
/// and tracing.
pub(super) fn integer_outputs(conv: &BinaryConv, isa: Isa, packed: Packed<'_>, batch: usize) -> Vec<i32> {
    let out_channels = conv.window.out_channels;
    let rows = batch * conv.window.output_pixels();
    let mut all = vec![0; rows * out_channels];
    let (mut columns, mut counts) = (Vec::new(), Vec::new());
    dots(conv, isa, packed, 0, rows, &mut columns, &mut counts, |row, base, counts| {
        for ((dot, &base), &count) in
            all[row * out_channels..][..out_channels].iter_mut().zip(base).zip(counts)
        {
            *dot = base - 2 * count as i32;
        }
    });
    all
}

/// Runs the popcount GEMM for output rows `first..first + rows` (rows count pixels over the
/// whole batch) and hands each row to `emit(row - first, base, counts)`: the dot product of
/// output `o` is `base[o] - 2 * counts[o]` (see [`crate::plan::PaddingCorrection`]).
#[allow(clippy::too_many_arguments)]
fn dots(
    conv: &BinaryConv,
    isa: Isa,
    packed: Packed<'_>,
    first: usize,
    rows: usize,
    columns: &mut Vec<u64>,
    counts: &mut Vec<u32>,
    mut emit: impl FnMut(usize, &[i32], &[u32]),
) {
    let w = &conv.window;
    if rows == 0 {
        return;
    }
    let words = words_for(w.in_channels);
    let panels = w.out_channels.div_ceil(PANEL);
    let (a, depth, filters): (&[u64], usize, &[u64]) = match packed.rows {
        Some((kernel_rows, packed_rows)) => {
            let row_words = kernel_rows.row_words;
            let a = kernel_rows::gather(w, row_words, packed_rows, first, rows, columns);
            (a, w.kernel * row_words, &kernel_rows.filters)
        }
        // A 1x1 stride-1 conv reads the packed input as its own im2col.
        None if w.kernel == 1 && w.stride == 1 && w.padding == 0 => {
            (&packed.pixels[first * words..(first + rows) * words], words, &conv.filters)
        }
        None => (im2col(w, packed.pixels, first, rows, columns), w.taps() * words, &conv.filters),
    };
    // The GEMM writes every count: the buffer needs no clearing.
    let counts = grown(counts, rows * panels * PANEL);
    kernels::xnor_gemm(isa, a, rows, depth, filters, panels, counts);
    // Walk the output position along the rows: no division per row.
    let (out_h, out_w) = w.output;
    let pixel = first % (out_h * out_w);
    let (mut y, mut x) = (pixel / out_w, pixel % out_w);
    for (r, counts) in counts.chunks_exact(panels * PANEL).enumerate() {
        emit(r, conv.correction.base(y, x), &counts[..w.out_channels]);
        x += 1;
        if x == out_w {
            (x, y) = (0, y + 1);
            if y == out_h {
                y = 0;
            }
        }
    }
}

/// Gathers the packed taps of output rows `first..first + rows`; padded taps are zero words.
fn im2col<'a>(
    w: &crate::plan::Window,
    packed: &[u64],
    first: usize,
    rows: usize,
    columns: &'a mut Vec<u64>,
) -> &'a [u64] {
    let words = words_for(w.in_channels);
    let row_len = w.taps() * words;
    let columns = grown(columns, rows * row_len);
    // Rows are zeroed (for their padded taps) just before their first tap, while hot in cache.
    let mut zeroed = 0;
    w.for_each_valid_tap_in(first..first + rows, |r, tap, pixel| {
        if zeroed <= r {
            columns[zeroed * row_len..(r + 1) * row_len].fill(0);
            zeroed = r + 1;
        }
        let (dst, src) =
            (&mut columns[r * row_len + tap * words..][..words], &packed[pixel * words..][..words]);
        // Most rows are one word: a plain move beats a memcpy call.
        if words == 1 {
            dst[0] = src[0];
        } else {
            dst.copy_from_slice(src);
        }
    });
    columns[zeroed * row_len..].fill(0);
    columns
}

/// The first `len` elements of `buffer`, grown (with zeros) if it is shorter; the old contents
/// are left in place for the caller to overwrite.
fn grown<T: Copy + Default>(buffer: &mut Vec<T>, len: usize) -> &mut [T] {
    if buffer.len() < len {
        buffer.resize(len, T::default());
    }
    &mut buffer[..len]
}
