//! The binary kernels' entry points: binarize-and-pack, the XNOR-popcount GEMM and the output
//! transform, each checking its operands and dispatching to the chosen ISA.

use super::isa::assert_supported;
#[cfg(target_arch = "x86_64")]
use super::x86_64;
use super::{scalar, Isa};
use crate::bit_layout::{words_for, PANEL, WORD_BITS};

/// Binarizes and packs pixel-major activations (the folded BatchNorm + sign).
///
/// `x` is `pixels x channels` (NHWC) and `out` is `pixels x words_for(channels)`. Bit `(p, c)` is
/// set iff `sign[c] * x[p * channels + c] >= threshold[c]`, evaluated in f32 exactly so (`sign` is
/// +1, -1 or 0; a NaN product or threshold gives 0). Padding bits are 0. Every ISA is bit-identical.
///
/// # Panics
/// If a slice length disagrees with `pixels` and `channels`, or `isa` is not supported here.
pub fn pack_activations(
    isa: Isa,
    x: &[f32],
    pixels: usize,
    channels: usize,
    sign: &[f32],
    threshold: &[f32],
    out: &mut [u64],
) {
    assert_eq!(Some(x.len()), pixels.checked_mul(channels), "pack_activations: x must be pixels x channels");
    assert_eq!(sign.len(), channels, "pack_activations: sign must have one entry per channel");
    assert_eq!(threshold.len(), channels, "pack_activations: threshold must have one entry per channel");
    assert_eq!(
        Some(out.len()),
        pixels.checked_mul(words_for(channels)),
        "pack_activations: out must be pixels x words_for(channels)"
    );
    assert_supported(isa);
    match isa {
        Isa::Scalar => scalar::pack_activations(x, channels, sign, threshold, out),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU supports AVX2 (asserted above); the lengths are checked above.
        Isa::Avx2 => unsafe { x86_64::avx2::pack_activations(x, channels, sign, threshold, out) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU supports AVX-512F (asserted above); the lengths are checked above.
        Isa::Avx512 => unsafe { x86_64::avx512::pack_activations(x, channels, sign, threshold, out) },
        #[cfg(not(target_arch = "x86_64"))]
        Isa::Avx2 | Isa::Avx512 => unreachable!("asserted supported"),
    }
}

/// The XNOR-popcount GEMM: `out[r * (panel_count * PANEL) + p * PANEL + lane]` is the sum over
/// `l < depth` of `popcount(a[r * depth + l] ^ panels[(p * depth + l) * PANEL + lane])`.
///
/// `a` is `rows x depth` words, row-major (an im2col of packed activations); `panels` holds
/// `panel_count` filter panels in the layout of [`pack_filters`]. Single-threaded: callers split
/// rows across threads.
///
/// # Panics
/// If a slice length disagrees with the sizes, `depth * 64` exceeds `u32::MAX`, or `isa` is not
/// supported here.
pub fn xnor_gemm(
    isa: Isa,
    a: &[u64],
    rows: usize,
    depth: usize,
    panels: &[u64],
    panel_count: usize,
    out: &mut [u32],
) {
    assert_eq!(Some(a.len()), rows.checked_mul(depth), "xnor_gemm: a must be rows x depth words");
    assert_eq!(
        Some(panels.len()),
        panel_count.checked_mul(depth).and_then(|n| n.checked_mul(PANEL)),
        "xnor_gemm: panels must be panel_count x depth x PANEL words"
    );
    assert_eq!(
        Some(out.len()),
        rows.checked_mul(panel_count).and_then(|n| n.checked_mul(PANEL)),
        "xnor_gemm: out must be rows x panel_count x PANEL counts"
    );
    assert!(depth <= u32::MAX as usize / WORD_BITS, "xnor_gemm: depth {depth} overflows u32 counts");
    assert_supported(isa);
    match isa {
        // SAFETY: the lengths and the depth bound are checked above.
        Isa::Scalar => unsafe { scalar::xnor_gemm(a, rows, depth, panels, panel_count, out) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU supports AVX2 (asserted above); lengths and depth are checked above.
        Isa::Avx2 => unsafe { x86_64::avx2::xnor_gemm(a, rows, depth, panels, panel_count, out) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU supports AVX-512F + VPOPCNTDQ (asserted above); lengths and depth are
        // checked above.
        Isa::Avx512 => unsafe { x86_64::avx512::xnor_gemm(a, rows, depth, panels, panel_count, out) },
        #[cfg(not(target_arch = "x86_64"))]
        Isa::Avx2 | Isa::Avx512 => unreachable!("asserted supported"),
    }
}

/// The binary conv's output transform on one pixel: `y[o] = max(alpha[o] * (base[o] - 2 *
/// counts[o]), floor)` for every `o < y.len()`, the dot product `base - 2 * popcount` converted
/// exactly to f32 (|dot| < 2^24) and scaled with one rounding. Every ISA is bit-identical.
///
/// # Panics
/// If `base`, `counts` or `alpha` is shorter than `y`, or `isa` is not supported here.
pub fn scale_counts(isa: Isa, base: &[i32], counts: &[u32], alpha: &[f32], floor: f32, y: &mut [f32]) {
    let n = y.len();
    let (base, counts, alpha) = (&base[..n], &counts[..n], &alpha[..n]);
    assert_supported(isa);
    match isa {
        Isa::Scalar => scalar::scale_counts(base, counts, alpha, floor, y),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU supports AVX2 (asserted above); the slices have y's length.
        Isa::Avx2 => unsafe { x86_64::avx2::scale_counts(base, counts, alpha, floor, y) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU supports AVX-512F (asserted above); the slices have y's length.
        Isa::Avx512 => unsafe { x86_64::avx512::scale_counts(base, counts, alpha, floor, y) },
        #[cfg(not(target_arch = "x86_64"))]
        Isa::Avx2 | Isa::Avx512 => unreachable!("asserted supported"),
    }
}
