//! Portable kernels: the reference every SIMD path is tested against, and the fallback on CPUs
//! without one.

use super::float_conv::ConvGemm;
use super::float_tile::{self, Lanes};
use super::generic::{self, PanelRow};
use super::{words_for, PANEL, WORD_BITS};

/// Rows per register block.
const MR: usize = 4;

/// One activation bit: the folded BatchNorm + sign, NaN -> 0. Shared with the SIMD tails so that
/// they cannot drift from the reference.
#[inline(always)]
pub(super) fn activation_bit(x: f32, sign: f32, threshold: f32) -> bool {
    sign * x >= threshold
}

/// [`super::pack_activations`]; `out` holds `x.len() / channels` pixels.
pub(super) fn pack_activations(x: &[f32], channels: usize, sign: &[f32], threshold: &[f32], out: &mut [u64]) {
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

/// One output of [`super::scale_counts`]; shared with the SIMD tails.
#[inline(always)]
pub(super) fn scale_count(base: i32, count: u32, alpha: f32, floor: f32) -> f32 {
    (alpha * (base - 2 * count as i32) as f32).max(floor)
}

/// [`super::scale_counts`]; the slices have `y`'s length.
pub(super) fn scale_counts(base: &[i32], counts: &[u32], alpha: &[f32], floor: f32, y: &mut [f32]) {
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

/// [`super::xnor_gemm`] in portable Rust.
///
/// # Safety
/// The slice lengths and `depth` are those [`super::xnor_gemm`] checks.
pub(super) unsafe fn xnor_gemm(
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

/// Float rows per register block.
const FLOAT_ROWS: usize = 4;

/// 16 float lanes as an array.
#[derive(Clone, Copy)]
struct ScalarLanes([f32; PANEL]);

impl Lanes for ScalarLanes {
    #[inline(always)]
    unsafe fn zero() -> Self {
        Self([0.0; PANEL])
    }

    #[inline(always)]
    unsafe fn load(ptr: *const f32) -> Self {
        // SAFETY: the caller guarantees 16 readable floats; [f32; 16] has f32's alignment.
        Self(unsafe { ptr.cast::<[f32; PANEL]>().read() })
    }

    #[inline(always)]
    unsafe fn add(mut a: Self, b: Self) -> Self {
        a.0.iter_mut().zip(b.0).for_each(|(a, b)| *a += b);
        a
    }

    #[inline(always)]
    unsafe fn mul(mut a: Self, b: Self) -> Self {
        a.0.iter_mut().zip(b.0).for_each(|(a, b)| *a *= b);
        a
    }

    #[inline(always)]
    unsafe fn relu(mut a: Self) -> Self {
        a.0.iter_mut().for_each(|a| *a = a.max(0.0));
        a
    }

    #[inline(always)]
    unsafe fn mul_add(x: f32, w: Self, mut acc: Self) -> Self {
        for (acc, w) in acc.0.iter_mut().zip(w.0) {
            *acc = x.mul_add(w, *acc);
        }
        acc
    }

    #[inline(always)]
    unsafe fn store(self, out: *mut f32) {
        // SAFETY: the caller guarantees 16 writable floats; [f32; 16] has f32's alignment.
        unsafe { out.cast::<[f32; PANEL]>().write(self.0) }
    }
}

/// [`super::float_conv::conv_gemm`] in portable Rust.
///
/// # Safety
/// `gemm` and `out` passed that function's checks.
pub(super) unsafe fn conv_gemm(gemm: &ConvGemm, packed: &mut Vec<f32>, out: &mut [f32]) {
    // `f32::mul_add` is a slow library call unless FMA is compiled in: use it where the CPU has it
    // (the same fused arithmetic, so the same bits).
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("fma") {
        // SAFETY: forwarded from the caller; the CPU supports FMA (checked just above).
        return unsafe { conv_gemm_fma(gemm, packed, out) };
    }
    // SAFETY: forwarded from the caller; ScalarLanes needs no CPU feature.
    unsafe { float_tile::conv_gemm::<ScalarLanes, FLOAT_ROWS, 1>(gemm, packed, out) }
}

/// [`conv_gemm`] compiled with FMA, so that `f32::mul_add` is one instruction.
///
/// # Safety
/// As for [`conv_gemm`]; the CPU supports FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "fma")]
unsafe fn conv_gemm_fma(gemm: &ConvGemm, packed: &mut Vec<f32>, out: &mut [f32]) {
    // SAFETY: forwarded from the caller; ScalarLanes needs no CPU feature beyond FMA.
    unsafe { float_tile::conv_gemm::<ScalarLanes, FLOAT_ROWS, 1>(gemm, packed, out) }
}
