//! AVX-512 kernels: a panel row is two zmm registers popcounted with VPOPCNTQ, and activations
//! are compared 16 channels at a time into a mask register.

use std::arch::x86_64::*;

use crate::bit_layout::words_for;
use crate::kernels::generic::binary::{self as generic, PanelRow};

/// Rows per register block: 8 rows x 2 zmm accumulators leaves half the 32 registers free.
const MR: usize = 8;

/// A panel row: lanes 0..8 and 8..16.
#[derive(Clone, Copy)]
struct Avx512Row([__m512i; 2]);

impl PanelRow for Avx512Row {
    /// u64 counts per lane.
    type Acc = [__m512i; 2];

    /// u64 counters never overflow before the u32 output does.
    const FLUSH_STEPS: usize = usize::MAX;

    #[inline(always)]
    unsafe fn load(ptr: *const u64) -> Self {
        // SAFETY: the caller guarantees 16 readable words and AVX-512F; loadu has no alignment need.
        unsafe { Self([_mm512_loadu_si512(ptr.cast()), _mm512_loadu_si512(ptr.add(8).cast())]) }
    }

    #[inline(always)]
    unsafe fn zero() -> Self::Acc {
        // SAFETY: the caller guarantees AVX-512F.
        unsafe { [_mm512_setzero_si512(); 2] }
    }

    #[inline(always)]
    unsafe fn xor_popcount_add(acc: Self::Acc, a: u64, row: Self) -> Self::Acc {
        // SAFETY: the caller guarantees AVX-512F and VPOPCNTDQ.
        unsafe {
            let a = _mm512_set1_epi64(a as i64);
            [
                _mm512_add_epi64(acc[0], _mm512_popcnt_epi64(_mm512_xor_si512(a, row.0[0]))),
                _mm512_add_epi64(acc[1], _mm512_popcnt_epi64(_mm512_xor_si512(a, row.0[1]))),
            ]
        }
    }

    #[inline(always)]
    unsafe fn store(acc: Self::Acc, out: *mut u32) {
        // SAFETY: the caller guarantees 16 writable counts and AVX-512F; storeu is unaligned.
        unsafe { _mm512_storeu_si512(out.cast(), narrow(acc)) }
    }

    #[inline(always)]
    unsafe fn accumulate(acc: Self::Acc, out: *mut u32) {
        // SAFETY: the caller guarantees 16 readable and writable counts and AVX-512F.
        unsafe {
            let sum = _mm512_add_epi32(_mm512_loadu_si512(out.cast()), narrow(acc));
            _mm512_storeu_si512(out.cast(), sum);
        }
    }
}

/// The 16 u64 counts as 16 u32 lanes (each count fits: `depth * 64 <= u32::MAX`).
///
/// # Safety
/// The CPU supports AVX-512F.
#[inline(always)]
unsafe fn narrow(acc: [__m512i; 2]) -> __m512i {
    // SAFETY: the caller guarantees AVX-512F.
    unsafe {
        let low = _mm512_castsi256_si512(_mm512_cvtepi64_epi32(acc[0]));
        _mm512_inserti64x4::<1>(low, _mm512_cvtepi64_epi32(acc[1]))
    }
}

/// [`crate::kernels::xnor_gemm`] with AVX-512.
///
/// # Safety
/// The slice lengths and `depth` are those [`crate::kernels::xnor_gemm`] checks; the CPU supports
/// AVX-512F and AVX-512 VPOPCNTDQ.
#[target_feature(enable = "avx512f,avx512vpopcntdq")]
pub(in crate::kernels) unsafe fn xnor_gemm(
    a: &[u64],
    rows: usize,
    depth: usize,
    panels: &[u64],
    panel_count: usize,
    out: &mut [u32],
) {
    // SAFETY: forwarded from the caller, who guarantees the features Avx512Row uses.
    unsafe { generic::xnor_gemm::<Avx512Row, MR>(a, rows, depth, panels, panel_count, out) }
}

/// [`crate::kernels::pack_activations`] with AVX-512: 16 channels per ordered `>=` compare, tails
/// by masked loads.
///
/// # Safety
/// The slice lengths are those [`crate::kernels::pack_activations`] checks; the CPU supports
/// AVX-512F.
#[target_feature(enable = "avx512f")]
pub(in crate::kernels) unsafe fn pack_activations(
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
        for (w, out) in out.iter_mut().enumerate() {
            let mut word = 0u64;
            for quarter in 0..4 {
                let c = w * 64 + quarter * 16;
                if c >= channels {
                    break;
                }
                let n = (channels - c).min(16);
                let mask: __mmask16 = if n == 16 { u16::MAX } else { (1 << n) - 1 };
                // SAFETY: c < channels, so the pointers stay in (or one past) their slices, and the
                // mask enables only channels c..c + n <= channels; masked-off lanes are not read.
                let bits = unsafe {
                    let x = _mm512_maskz_loadu_ps(mask, pixel.as_ptr().add(c));
                    let s = _mm512_maskz_loadu_ps(mask, sign.as_ptr().add(c));
                    let t = _mm512_maskz_loadu_ps(mask, threshold.as_ptr().add(c));
                    _mm512_mask_cmp_ps_mask::<_CMP_GE_OQ>(mask, _mm512_mul_ps(s, x), t)
                };
                word |= u64::from(bits) << (quarter * 16);
            }
            *out = word;
        }
    }
}

/// [`crate::kernels::scale_counts`] with AVX-512: 16 outputs per step, the tail by masks.
///
/// # Safety
/// The slices have `y`'s length; the CPU supports AVX-512F.
#[target_feature(enable = "avx512f")]
pub(in crate::kernels) unsafe fn scale_counts(
    base: &[i32],
    counts: &[u32],
    alpha: &[f32],
    floor: f32,
    y: &mut [f32],
) {
    let floor = _mm512_set1_ps(floor);
    for start in (0..y.len()).step_by(16) {
        let n = (y.len() - start).min(16);
        let mask: __mmask16 = if n == 16 { u16::MAX } else { (1 << n) - 1 };
        // SAFETY: start < len, and the mask enables only lanes start..start + n <= len of each
        // slice (all have y's length); masked-off lanes are neither read nor written.
        unsafe {
            let base = _mm512_maskz_loadu_epi32(mask, base.as_ptr().add(start));
            let counts = _mm512_maskz_loadu_epi32(mask, counts.as_ptr().add(start).cast());
            let alpha = _mm512_maskz_loadu_ps(mask, alpha.as_ptr().add(start));
            let dot = _mm512_cvtepi32_ps(_mm512_sub_epi32(base, _mm512_add_epi32(counts, counts)));
            _mm512_mask_storeu_ps(
                y.as_mut_ptr().add(start),
                mask,
                _mm512_max_ps(_mm512_mul_ps(alpha, dot), floor),
            );
        }
    }
}
