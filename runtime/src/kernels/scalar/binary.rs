//! Portable binary kernels: the reference every SIMD path is tested against, and the fallback
//! on CPUs without one.

use crate::bit_layout::{words_for, PANEL, WORD_BITS};
use crate::kernels::generic::binary::{self as generic, PanelRow};

/// Rows per register block.
const MR: usize = 4;

/// One activation bit: the folded BatchNorm + sign, NaN -> 0. Shared with the SIMD tails so that
/// they cannot drift from the reference.
#[inline(always)]
pub(in crate::kernels) fn activation_bit(x: f32, sign: f32, threshold: f32) -> bool {
    sign * x >= threshold
}

/// [`crate::kernels::pack_activations`]; `out` holds `x.len() / channels` pixels.
pub(in crate::kernels) fn pack_activations(
    x: &[f32],
    channels: usize,
    sign: &[f32],
    threshold: &[f32],
    out: &mut [u64],
) {
    let words = words_for(channels);
    if words == 0 {
        return;
    }
    for (pixel, out) in x.chunks_exact(channels).zip(out.chunks_exact_mut(words)) {
        out.fill(0);
        for (c, ((&x, &s), &t)) in pixel.iter().zip(sign).zip(threshold).enumerate() {
            out[c / WORD_BITS] |= u64::from(activation_bit(x, s, t)) << (c % WORD_BITS);
        }
    }
}

/// One output of [`crate::kernels::scale_counts`]; shared with the SIMD tails.
#[inline(always)]
pub(in crate::kernels) fn scale_count(base: i32, count: u32, alpha: f32, floor: f32) -> f32 {
    (alpha * (base - 2 * count as i32) as f32).max(floor)
}

/// [`crate::kernels::scale_counts`]; the slices have `y`'s length.
pub(in crate::kernels) fn scale_counts(
    base: &[i32],
    counts: &[u32],
    alpha: &[f32],
    floor: f32,
    y: &mut [f32],
) {
    for (((y, &base), &count), &alpha) in y.iter_mut().zip(base).zip(counts).zip(alpha) {
        *y = scale_count(base, count, alpha, floor);
    }
}

/// A panel row as plain words.
#[derive(Clone, Copy)]
struct ScalarRow([u64; PANEL]);

impl PanelRow for ScalarRow {
    type Acc = [u32; PANEL];

    /// u32 counters hold any depth the caller allows (`depth * 64 <= u32::MAX`).
    const FLUSH_STEPS: usize = usize::MAX;

    #[inline(always)]
    unsafe fn load(ptr: *const u64) -> Self {
        // SAFETY: the caller guarantees 16 readable words; [u64; 16] has u64's alignment.
        Self(unsafe { ptr.cast::<[u64; PANEL]>().read() })
    }

    #[inline(always)]
    unsafe fn zero() -> Self::Acc {
        [0; PANEL]
    }

    #[inline(always)]
    unsafe fn xor_popcount_add(mut acc: Self::Acc, a: u64, row: Self) -> Self::Acc {
        for (acc, w) in acc.iter_mut().zip(row.0) {
            *acc += (a ^ w).count_ones();
        }
        acc
    }

    #[inline(always)]
    unsafe fn store(acc: Self::Acc, out: *mut u32) {
        // SAFETY: the caller guarantees 16 writable counts; [u32; 16] has u32's alignment.
        unsafe { out.cast::<[u32; PANEL]>().write(acc) }
    }

    #[inline(always)]
    unsafe fn accumulate(acc: Self::Acc, out: *mut u32) {
        for (lane, count) in acc.into_iter().enumerate() {
            // SAFETY: lane < 16 and the caller guarantees 16 readable and writable counts.
            unsafe { *out.add(lane) += count };
        }
    }
}

/// [`crate::kernels::xnor_gemm`] in portable Rust.
///
/// # Safety
/// The slice lengths and `depth` are those [`crate::kernels::xnor_gemm`] checks.
pub(in crate::kernels) unsafe fn xnor_gemm(
    a: &[u64],
    rows: usize,
    depth: usize,
    panels: &[u64],
    panel_count: usize,
    out: &mut [u32],
) {
    // SAFETY: forwarded from the caller; ScalarRow needs no CPU feature.
    unsafe { generic::xnor_gemm::<ScalarRow, MR>(a, rows, depth, panels, panel_count, out) }
}
