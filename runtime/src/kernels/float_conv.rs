//! The float convolution kernel: an indirect GEMM over NHWC pixels and pre-packed filter panels.
//!
//! Layout. Float filters are packed once, at load, into panels of [`PANEL`] output channels in
//! the order the kernel reads them, [`PANEL_GROUP`] panels side by side: for `O` outputs, `C`
//! inputs, `taps = K * K` (`tap = ky * K + kx`) and depth step `k = c * taps + tap`, float
//! `((group * C * taps + k) * PANEL_GROUP + p) * PANEL + lane` is the weight of output
//! `(group * PANEL_GROUP + p) * PANEL + lane`, input `c`, at that tap (the outputs' OIHW rows side
//! by side). Lanes past `O` are zero, and the panel count is rounded up to a multiple of
//! [`PANEL_GROUP`], so a register block of a group's panels reads one stream.
//!
//! Indirect GEMM. Each output pixel names, per tap, the offset of the input pixel (`C`
//! contiguous floats, NHWC) that the tap reads, or [`PADDING`] for a zero-padded tap. A register
//! block reads its rows' pixels in place, or, for wide inputs (512 channels or more), from a copy
//! of its rows interleaved into one stream: many wide NHWC pixels read side by side alias in the
//! L1 cache. It broadcasts each value against one panel row.
//!
//! Numerics. Every output is `sum over c, then tap, of x * w` (the order of an OIHW row, which
//! is also the im2col order of PyTorch and ONNX Runtime): runs of 256 terms, each accumulated
//! from 0 with one fused multiply-add per term, are added to the output one after the other, as
//! ONNX Runtime's SGEMM does. A binary network amplifies rounding differences (a sign flips), so
//! agreeing with the float frameworks' order matters. The order does not depend on the ISA, the
//! register block or the split of rows across threads: every ISA gives bit-identical results,
//! and a batch gives exactly what its samples give one at a time.

use super::isa::assert_supported;
use super::Isa;
use crate::bit_layout::PANEL;

/// Panels per register block: packed panel counts are a multiple of it.
pub const PANEL_GROUP: usize = 2;

/// The source offset of a zero-padded tap.
pub const PADDING: usize = usize::MAX;

/// Packed float panels for `out_channels` outputs: `ceil(O / 16)` rounded up to a multiple of
/// [`PANEL_GROUP`].
pub fn panel_count(out_channels: usize) -> usize {
    out_channels.div_ceil(PANEL).next_multiple_of(PANEL_GROUP)
}

/// Packs OIHW float weights into the panel layout of the module docs.
///
/// # Panics
/// If `weights.len() != out_channels * in_channels * kernel * kernel`.
pub fn pack_filters(weights: &[f32], out_channels: usize, in_channels: usize, kernel: usize) -> Vec<f32> {
    let taps = kernel * kernel;
    assert_eq!(
        weights.len(),
        out_channels * in_channels * taps,
        "float pack_filters: weights must be OIHW {out_channels}x{in_channels}x{kernel}x{kernel}"
    );
    let depth = taps * in_channels;
    let mut packed = vec![0.0; panel_count(out_channels) * depth * PANEL];
    for (i, &w) in weights.iter().enumerate() {
        let (k, o) = (i % depth, i / depth);
        let (group, p) = (o / PANEL / PANEL_GROUP, o / PANEL % PANEL_GROUP);
        packed[((group * depth + k) * PANEL_GROUP + p) * PANEL + o % PANEL] = w;
    }
    packed
}

/// The operands of [`conv_gemm`]: `rows = sources.len() / taps` output pixels of a conv.
#[derive(Debug, Clone, Copy)]
pub struct ConvGemm<'a> {
    /// NHWC input pixels, `channels` floats each.
    pub input: &'a [f32],
    /// Input channels.
    pub channels: usize,
    /// Per output pixel and tap, the offset in `input` of the pixel the tap reads, or
    /// [`PADDING`]: `rows x taps`.
    pub sources: &'a [usize],
    /// Kernel taps.
    pub taps: usize,
    /// The weights, from [`pack_filters`].
    pub panels: &'a [f32],
    /// Output channels.
    pub out_channels: usize,
    /// What follows the sums.
    pub epilogue: Epilogue<'a>,
}

/// What follows a conv's sums, per output channel `o`, in this order: `y += bias[o]`, then
/// `y = y * scale[o] + shift[o]` (a multiply and an add, not fused), then `y = max(y, 0)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Epilogue<'a> {
    /// Bias per output.
    pub bias: Option<&'a [f32]>,
    /// Scale and shift per output (a folded BatchNorm).
    pub affine: Option<(&'a [f32], &'a [f32])>,
    /// Whether a ReLU comes last.
    pub relu: bool,
}

/// The conv GEMM: for each row `r` (an output pixel) and output `o < out_channels`,
/// `out[r * out_channels + o] = sum over c < channels, tap < taps of
/// input[sources[r * taps + tap] + c] * w(o, c, tap)`, where a [`PADDING`] source reads zeros
/// (see the module docs for the order of the sum), then the epilogue. `scratch` may receive the
/// rows' input, packed. Single-threaded: callers split rows across threads.
///
/// # Panics
/// If a slice length disagrees with the sizes, a source other than [`PADDING`] reads past
/// `input`, an epilogue parameter is too short, or `isa` is not supported here.
pub fn conv_gemm(isa: Isa, gemm: &ConvGemm, scratch: &mut Vec<f32>, out: &mut [f32]) {
    let ConvGemm { input, channels, sources, taps, panels, out_channels, epilogue } = *gemm;
    assert!(taps > 0 && sources.len().is_multiple_of(taps), "conv_gemm: sources must be rows x taps");
    let rows = sources.len() / taps;
    assert_eq!(
        Some(panels.len()),
        panel_count(out_channels).checked_mul(taps * channels * PANEL),
        "conv_gemm: panels must be packed for {out_channels} outputs, {taps} taps, {channels} channels"
    );
    assert_eq!(Some(out.len()), rows.checked_mul(out_channels), "conv_gemm: out must be rows x out_channels");
    assert!(
        sources
            .iter()
            .all(|&s| s == PADDING || s.checked_add(channels).is_some_and(|end| end <= input.len())),
        "conv_gemm: a source pixel lies outside the input"
    );
    for values in epilogue.bias.into_iter().chain(epilogue.affine.into_iter().flat_map(|(s, t)| [s, t])) {
        assert!(
            values.len() >= out_channels,
            "conv_gemm: an epilogue parameter has fewer than {out_channels} values"
        );
    }
    assert_supported(isa);
    match isa {
        // SAFETY: the lengths and sources are checked above.
        Isa::Scalar => unsafe { super::scalar::conv_gemm(gemm, scratch, out) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU supports AVX2 and FMA (asserted above); lengths and sources are checked.
        Isa::Avx2 => unsafe { super::x86_64::avx2::conv_gemm(gemm, scratch, out) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU supports AVX-512F (asserted above); lengths and sources are checked.
        Isa::Avx512 => unsafe { super::x86_64::avx512::conv_gemm(gemm, scratch, out) },
        #[cfg(not(target_arch = "x86_64"))]
        Isa::Avx2 | Isa::Avx512 => unreachable!("asserted supported"),
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::kernels::tests::assert_isas_agree;

    /// A conv geometry: square input `size`, `kernel`, `stride`, `padding`, `dilation`.
    struct Geometry {
        size: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        dilation: usize,
    }

    impl Geometry {
        fn out_size(&self) -> usize {
            (self.size + 2 * self.padding - self.dilation * (self.kernel - 1) - 1) / self.stride + 1
        }

        /// The input pixel that output `(oy, ox)` reads at `(ky, kx)`, if not padding.
        fn source(&self, oy: usize, ox: usize, ky: usize, kx: usize) -> Option<usize> {
            let at = |o: usize, k: usize| {
                (o * self.stride + k * self.dilation).checked_sub(self.padding).filter(|&i| i < self.size)
            };
            Some(at(oy, ky)? * self.size + at(ox, kx)?)
        }
    }

    /// The conv in f64, straight from OIHW weights and NHWC input.
    fn naive(g: &Geometry, input: &[f32], weights: &[f32], in_c: usize, out_c: usize) -> Vec<f64> {
        let n = g.out_size();
        let mut out = vec![0.0; n * n * out_c];
        for (pixel, out) in out.chunks_exact_mut(out_c).enumerate() {
            for (o, out) in out.iter_mut().enumerate() {
                for c in 0..in_c {
                    for ky in 0..g.kernel {
                        for kx in 0..g.kernel {
                            if let Some(p) = g.source(pixel / n, pixel % n, ky, kx) {
                                let w = weights[((o * in_c + c) * g.kernel + ky) * g.kernel + kx];
                                *out += f64::from(input[p * in_c + c]) * f64::from(w);
                            }
                        }
                    }
                }
            }
        }
        out
    }

    #[test]
    fn conv_gemm_matches_a_naive_conv_and_isas_agree_bit_for_bit() {
        let mut rng = StdRng::seed_from_u64(11);
        let cases = [
            (Geometry { size: 7, kernel: 3, stride: 1, padding: 1, dilation: 1 }, 3, 5),
            (Geometry { size: 9, kernel: 3, stride: 2, padding: 1, dilation: 1 }, 17, 40),
            (Geometry { size: 8, kernel: 2, stride: 2, padding: 0, dilation: 1 }, 64, 33),
            (Geometry { size: 9, kernel: 5, stride: 1, padding: 4, dilation: 2 }, 6, 16),
            (Geometry { size: 4, kernel: 1, stride: 1, padding: 0, dilation: 1 }, 1, 1),
        ];
        for (g, in_c, out_c) in cases {
            let taps = g.kernel * g.kernel;
            let input: Vec<f32> = (0..g.size * g.size * in_c).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let weights: Vec<f32> = (0..out_c * in_c * taps).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let n = g.out_size();
            let sources: Vec<usize> = (0..n * n)
                .flat_map(|p| (0..taps).map(move |t| (p, t)))
                .map(|(p, t)| {
                    g.source(p / n, p % n, t / g.kernel, t % g.kernel).map_or(PADDING, |pixel| pixel * in_c)
                })
                .collect();
            let panels = pack_filters(&weights, out_c, in_c, g.kernel);
            let case = format!("{in_c}->{out_c} k{} s{} p{} d{}", g.kernel, g.stride, g.padding, g.dilation);
            let gemm = ConvGemm {
                input: &input,
                channels: in_c,
                sources: &sources,
                taps,
                panels: &panels,
                out_channels: out_c,
                epilogue: Epilogue::default(),
            };
            let got = assert_isas_agree(&case, |isa| {
                let mut out = vec![f32::NAN; n * n * out_c];
                conv_gemm(isa, &gemm, &mut Vec::new(), &mut out);
                out
            });
            // What a CPU without FMA runs (`Isa::Scalar` above is compiled with FMA here).
            let mut portable = vec![f32::NAN; n * n * out_c];
            // SAFETY: the same operands passed conv_gemm's checks for every ISA above.
            unsafe {
                crate::kernels::scalar::float::conv_gemm_portable(&gemm, &mut Vec::new(), &mut portable)
            };
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&portable), bits(&got), "{case}: the portable build without FMA differs");
            for (i, (&got, want)) in got.iter().zip(naive(&g, &input, &weights, in_c, out_c)).enumerate() {
                let bound = 1e-5 * (in_c * taps) as f64;
                assert!((f64::from(got) - want).abs() <= bound, "{case}: output {i} is {got}, want {want}");
            }
        }
    }

    #[test]
    fn rows_give_the_same_bits_alone_as_in_a_block() {
        let (in_c, out_c, taps) = (40, 48, 4);
        let mut rng = StdRng::seed_from_u64(5);
        let input: Vec<f32> = (0..13 * in_c).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let weights: Vec<f32> = (0..out_c * in_c * taps).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let panels = pack_filters(&weights, out_c, in_c, 2);
        let sources: Vec<usize> =
            (0..13 * taps).map(|i| if i % 7 == 3 { PADDING } else { (i * 5 % 13) * in_c }).collect();
        for isa in Isa::supported() {
            let mut all = vec![0.0; 13 * out_c];
            let gemm = ConvGemm {
                input: &input,
                channels: in_c,
                sources: &sources,
                taps,
                panels: &panels,
                out_channels: out_c,
                epilogue: Epilogue::default(),
            };
            conv_gemm(isa, &gemm, &mut Vec::new(), &mut all);
            for (row, want) in sources.chunks_exact(taps).zip(all.chunks_exact(out_c)) {
                let mut alone = vec![0.0; out_c];
                conv_gemm(isa, &ConvGemm { sources: row, ..gemm }, &mut Vec::new(), &mut alone);
                assert_eq!(alone, want, "{isa}: a row alone differs from the same row in a block");
            }
        }
    }

    #[test]
    fn the_epilogue_is_bias_then_scale_and_shift_then_relu() {
        let (in_c, out_c) = (5, 37);
        let mut rng = StdRng::seed_from_u64(9);
        let mut values = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect() };
        let (input, weights) = (values(3 * in_c), values(out_c * in_c));
        let (bias, scale, shift) = (values(out_c), values(out_c), values(out_c));
        let panels = pack_filters(&weights, out_c, in_c, 1);
        let sources = [0, in_c, 2 * in_c];
        let plain = ConvGemm {
            input: &input,
            channels: in_c,
            sources: &sources,
            taps: 1,
            panels: &panels,
            out_channels: out_c,
            epilogue: Epilogue::default(),
        };
        let mut sums = vec![0.0; 3 * out_c];
        conv_gemm(Isa::Scalar, &plain, &mut Vec::new(), &mut sums);
        let epilogue = Epilogue { bias: Some(&bias), affine: Some((&scale, &shift)), relu: true };
        let got = assert_isas_agree("epilogue", |isa| {
            let mut out = vec![f32::NAN; 3 * out_c];
            conv_gemm(isa, &ConvGemm { epilogue, ..plain }, &mut Vec::new(), &mut out);
            out
        });
        for (i, (&got, &sum)) in got.iter().zip(&sums).enumerate() {
            let o = i % out_c;
            assert_eq!(got, ((sum + bias[o]) * scale[o] + shift[o]).max(0.0), "output {i}");
        }
    }

    #[test]
    #[should_panic(expected = "outside the input")]
    fn conv_gemm_rejects_a_source_past_the_input() {
        let panels = pack_filters(&[1.0; 4], 1, 4, 1);
        let gemm = ConvGemm {
            input: &[0.0; 4],
            channels: 4,
            sources: &[1],
            taps: 1,
            panels: &panels,
            out_channels: 1,
            epilogue: Epilogue::default(),
        };
        conv_gemm(Isa::Scalar, &gemm, &mut Vec::new(), &mut [0.0]);
    }
}
