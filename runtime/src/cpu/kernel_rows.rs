//! Kernel-row packing for narrow binary convs. The plan's layout gives every tap its own
//! `words_for(C)` words, so a 16-channel 3x3 conv reads 9 words per output pixel with 16 bits
//! used in each. Here the `K` taps of one kernel row share `R = words_for(K * C)` words: tap
//! `kx`'s channels are bits `kx * C ..` of the row (LSB first across the row's words), so that
//! conv reads 3 words (48 of 64 bits used). Unused and padded bits are zero in the activations
//! and the filters alike, as in the plan's layout, so every popcount, and with it every output,
//! is exactly what the per-tap layout gives (see [`crate::bit_layout`]).
//!
//! A conv runs in two steps: [`pack_rows`] gathers, for each input row and output column, the
//! `K` taps of that kernel row into `R` words (once per input row, not once per output pixel
//! and kernel row), then [`gather`] copies `K` such rows per output pixel into the GEMM's
//! im2col.

use rayon::prelude::*;

use crate::bit_layout::{words_for, PanelLayout, PANEL, WORD_BITS};
use crate::plan::{BinaryConv, Window};

/// Row groups packed per parallel task: enough words to pay for waking a thread.
const ROWS_PER_TASK: usize = 64;

/// A conv's filters in the kernel-row layout: the plan's panel layout with `depth = K * R`
/// words, word `ky * R + b / 64` holding bit `b % 64` of kernel row `ky`, `b = kx * C + c`.
#[derive(Debug, Clone, PartialEq)]
pub struct KernelRowFilters {
    /// `R`: words per kernel row.
    pub row_words: usize,
    /// The packed filters, `panels * K * R * PANEL` words.
    pub filters: Vec<u64>,
}

impl KernelRowFilters {
    /// The filters of `conv` re-laid out, or `None` when the layout saves no GEMM work (a 1x1
    /// conv, or channels that fill whole words: `R == K * words_for(C)`).
    pub fn pack(conv: &BinaryConv) -> Option<KernelRowFilters> {
        let w = &conv.window;
        let (k, c) = (w.kernel, w.in_channels);
        let row_words = words_for(k * c);
        if k == 1 || row_words >= k * words_for(c) {
            return None;
        }
        let depth = k * row_words;
        let panels = w.out_channels.div_ceil(PANEL);
        let mut filters = vec![0u64; panels * depth * PANEL];
        let layout = PanelLayout::new(c, w.taps());
        for o in 0..w.out_channels {
            let (panel, lane) = (o / PANEL, o % PANEL);
            for ci in 0..c {
                for tap in 0..w.taps() {
                    let i = (o * c + ci) * w.taps() + tap;
                    if layout.sign(&conv.filters, i) > 0.0 {
                        let (ky, kx) = (tap / k, tap % k);
                        let bit = kx * c + ci;
                        let word = ky * row_words + bit / WORD_BITS;
                        filters[(panel * depth + word) * PANEL + lane] |= 1 << (bit % WORD_BITS);
                    }
                }
            }
        }
        Some(KernelRowFilters { row_words, filters })
    }
}

/// ORs the `bits` low bits of `src` (LSB first across its words; higher bits are zero) into
/// `dst` starting at bit `offset`.
#[inline]
fn or_bits(dst: &mut [u64], offset: usize, src: &[u64], bits: usize) {
    for (j, &value) in src.iter().enumerate().take(words_for(bits)) {
        let at = offset + j * WORD_BITS;
        let (word, shift) = (at / WORD_BITS, at % WORD_BITS);
        dst[word] |= value << shift;
        if shift != 0 && shift + (bits - j * WORD_BITS).min(WORD_BITS) > WORD_BITS {
            dst[word + 1] |= value >> (WORD_BITS - shift);
        }
    }
}

/// Packs the kernel rows of `batch` samples of the packed input (`words_for(C)` words per
/// pixel) into `rows`: entry `(sample * in_h + iy) * out_w + ox` holds, in `row_words` words,
/// the taps `kx = 0..K` of input row `iy` that output column `ox` reads (zero where padded).
pub(super) fn pack_rows(w: &Window, row_words: usize, packed: &[u64], batch: usize, rows: &mut Vec<u64>) {
    let ((in_h, in_w), out_w) = (w.input, w.output.1);
    let (c, words) = (w.in_channels, words_for(w.in_channels));
    rows.clear();
    rows.resize(batch * in_h * out_w * row_words, 0);
    let group = out_w * row_words;
    rows.par_chunks_mut(group).enumerate().with_min_len(ROWS_PER_TASK).for_each(|(line, out)| {
        let input_line = &packed[line * in_w * words..][..in_w * words];
        for (ox, row) in out.chunks_exact_mut(row_words).enumerate() {
            for kx in 0..w.kernel {
                let Some(ix) = w.source(ox, kx, in_w) else { continue };
                // Most narrow convs: one word in, one word out, a shift.
                if words == 1 && row_words == 1 {
                    row[0] |= input_line[ix] << (kx * c);
                } else {
                    or_bits(row, kx * c, &input_line[ix * words..][..words], c);
                }
            }
        }
    });
}

/// Gathers the im2col of output pixels `first..first + count` (over the whole batch) from the
/// kernel rows of [`pack_rows`]: `K * row_words` words per pixel, zero for padded kernel rows.
pub(super) fn gather<'a>(
    w: &Window,
    row_words: usize,
    rows: &[u64],
    first: usize,
    count: usize,
    columns: &'a mut Vec<u64>,
) -> &'a mut [u64] {
    let ((in_h, _), (out_h, out_w)) = (w.input, w.output);
    let depth = w.kernel * row_words;
    if columns.len() < count * depth {
        columns.resize(count * depth, 0);
    }
    let columns = &mut columns[..count * depth];
    if count == 0 {
        return columns;
    }
    // Walk (sample, oy, ox) along the rows: no division per pixel.
    let (mut sample, mut oy, mut ox) = (first / (out_h * out_w), first / out_w % out_h, first % out_w);
    for column in columns.chunks_exact_mut(depth) {
        let line = |iy: usize| ((sample * in_h + iy) * out_w + ox) * row_words;
        for (ky, dst) in column.chunks_exact_mut(row_words).enumerate() {
            match w.source(oy, ky, in_h) {
                Some(iy) if row_words == 1 => dst[0] = rows[line(iy)],
                Some(iy) => dst.copy_from_slice(&rows[line(iy)..][..row_words]),
                None => dst.fill(0),
            }
        }
        ox += 1;
        if ox == out_w {
            (ox, oy) = (0, oy + 1);
            if oy == out_h {
                (oy, sample) = (0, sample + 1);
            }
        }
    }
    columns
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::super::binary::{self, Packed};
    use super::*;
    use crate::bit_layout::pack_filters;
    use crate::kernels::{self, Isa};
    use crate::plan::{Binarize, PaddingCorrection};

    /// A conv with random ±1 filters and a plain sign binarization.
    fn conv(
        rng: &mut StdRng,
        c: usize,
        o: usize,
        k: usize,
        stride: usize,
        dilation: usize,
        size: usize,
    ) -> BinaryConv {
        let padding = dilation * (k - 1) / 2;
        let out = (size + 2 * padding - dilation * (k - 1) - 1) / stride + 1;
        let window = Window {
            in_channels: c,
            out_channels: o,
            kernel: k,
            stride,
            padding,
            dilation,
            input: (size, size),
            output: (out, out),
        };
        let weights: Vec<f32> = (0..o * c * k * k).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let filters = pack_filters(&weights, o, c, k);
        BinaryConv {
            window,
            binarize: Binarize { sign: vec![1.0; c], threshold: vec![0.0; c] },
            correction: PaddingCorrection::new(&window, &filters),
            filters: filters.into(),
            alpha: vec![1.0; o].into(),
            relu: false,
        }
    }

    #[test]
    fn kernel_rows_give_the_per_tap_dot_products() {
        let mut rng = StdRng::seed_from_u64(3);
        let isa = kernels::select().expect("a supported ISA");
        // Channel counts around the word boundaries, both kernels, strides and dilations.
        for (c, k, stride, dilation) in [
            (1, 3, 1, 1),
            (16, 3, 1, 1),
            (16, 5, 1, 2),
            (21, 3, 2, 1),
            (32, 3, 1, 2),
            (36, 3, 1, 1),
            (36, 5, 2, 1),
            (48, 5, 1, 1),
            (72, 3, 1, 1),
            (100, 5, 1, 2),
        ] {
            let conv = conv(&mut rng, c, 20, k, stride, dilation, 9);
            let filters = KernelRowFilters::pack(&conv).expect("a narrow conv");
            let batch = 2;
            let input: Vec<f32> =
                (0..batch * conv.window.input_pixels() * c).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let mut pixels = Vec::new();
            binary::pack_input(&conv, isa, &input, batch, &mut pixels);
            let mut rows = Vec::new();
            pack_rows(&conv.window, filters.row_words, &pixels, batch, &mut rows);
            let per_tap = binary::integer_outputs(&conv, isa, Packed { pixels: &pixels, rows: None }, batch);
            let by_rows = binary::integer_outputs(
                &conv,
                isa,
                Packed { pixels: &pixels, rows: Some((&filters, &rows)) },
                batch,
            );
            assert_eq!(by_rows, per_tap, "C={c} K={k} stride {stride} dilation {dilation}");
            // And both match the scalar kernels on the same packed rows.
            let scalar = binary::integer_outputs(
                &conv,
                Isa::Scalar,
                Packed { pixels: &pixels, rows: Some((&filters, &rows)) },
                batch,
            );
            assert_eq!(scalar, per_tap, "C={c} K={k}: scalar GEMM on kernel rows");
        }
    }

    #[test]
    fn wide_and_pointwise_convs_keep_the_plan_layout() {
        let mut rng = StdRng::seed_from_u64(4);
        assert!(
            KernelRowFilters::pack(&conv(&mut rng, 64, 16, 3, 1, 1, 5)).is_none(),
            "64 channels fill words"
        );
        assert!(KernelRowFilters::pack(&conv(&mut rng, 16, 16, 1, 1, 1, 5)).is_none(), "1x1");
        assert!(KernelRowFilters::pack(&conv(&mut rng, 128, 16, 5, 1, 1, 5)).is_none(), "128 channels");
    }
}
