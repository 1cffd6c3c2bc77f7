//! The float conv GEMM with AVX-512F: 16 lanes are one zmm register, summed with
//! `vfmadd231ps`, one rounding per term like the portable path.

use std::arch::x86_64::*;

use crate::kernels::float_conv::ConvGemm;
use crate::kernels::generic::float::{self, Lanes};

/// AVX-512 register block: 6 rows x 2 panels of zmm accumulators plus 2 of weights and a
/// broadcast (more rows measured no faster, and waste more on the last block of a small layer).
const AVX512_ROWS: usize = 6;

/// 16 lanes as one zmm register.
#[derive(Clone, Copy)]
struct Avx512Lanes(__m512);

impl Lanes for Avx512Lanes {
    #[inline(always)]
    unsafe fn zero() -> Self {
        // SAFETY: the caller guarantees AVX-512F.
        unsafe { Self(_mm512_setzero_ps()) }
    }

    #[inline(always)]
    unsafe fn load(ptr: *const f32) -> Self {
        // SAFETY: the caller guarantees 16 readable floats and AVX-512F; loadu is unaligned.
        unsafe { Self(_mm512_loadu_ps(ptr)) }
    }

    #[inline(always)]
    unsafe fn add(a: Self, b: Self) -> Self {
        // SAFETY: the caller guarantees AVX-512F.
        unsafe { Self(_mm512_add_ps(a.0, b.0)) }
    }

    #[inline(always)]
    unsafe fn mul(a: Self, b: Self) -> Self {
        // SAFETY: the caller guarantees AVX-512F.
        unsafe { Self(_mm512_mul_ps(a.0, b.0)) }
    }

    #[inline(always)]
    unsafe fn relu(a: Self) -> Self {
        // SAFETY: the caller guarantees AVX-512F; maxps returns its second operand (0) for NaN.
        unsafe { Self(_mm512_max_ps(a.0, _mm512_setzero_ps())) }
    }

    #[inline(always)]
    unsafe fn mul_add(x: f32, w: Self, acc: Self) -> Self {
        // SAFETY: the caller guarantees AVX-512F.
        unsafe { Self(_mm512_fmadd_ps(_mm512_set1_ps(x), w.0, acc.0)) }
    }

    #[inline(always)]
    unsafe fn store(self, out: *mut f32) {
        // SAFETY: the caller guarantees 16 writable floats and AVX-512F; storeu is unaligned.
        unsafe { _mm512_storeu_ps(out, self.0) }
    }
}

/// [`crate::kernels::float_conv::conv_gemm`] with AVX-512F.
///
/// # Safety
/// `gemm` and `out` passed that function's checks; the CPU supports AVX-512F.
#[target_feature(enable = "avx512f")]
pub(in crate::kernels) unsafe fn conv_gemm(gemm: &ConvGemm, packed: &mut Vec<f32>, out: &mut [f32]) {
    // SAFETY: forwarded from the caller, who guarantees the features Avx512Lanes uses.
    unsafe { float::conv_gemm::<Avx512Lanes, AVX512_ROWS, 2>(gemm, packed, out) }
}
