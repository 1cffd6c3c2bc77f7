//! The float conv GEMM with AVX2 + FMA: 16 lanes are two ymm registers, summed with
//! `vfmadd231ps`, one rounding per term like the portable path.

use std::arch::x86_64::*;

use crate::kernels::float_conv::ConvGemm;
use crate::kernels::generic::float::{self, Lanes};

/// AVX2 register block: 6 rows x 2 ymm accumulators plus 2 ymm of weights and a broadcast, 15 of
/// the 16 registers.
const AVX2_ROWS: usize = 6;

/// 16 lanes as two ymm registers.
#[derive(Clone, Copy)]
struct Avx2Lanes([__m256; 2]);

impl Lanes for Avx2Lanes {
    #[inline(always)]
    unsafe fn zero() -> Self {
        // SAFETY: the caller guarantees AVX2.
        unsafe { Self([_mm256_setzero_ps(); 2]) }
    }

    #[inline(always)]
    unsafe fn load(ptr: *const f32) -> Self {
        // SAFETY: the caller guarantees 16 readable floats and AVX2; loadu has no alignment need.
        unsafe { Self([_mm256_loadu_ps(ptr), _mm256_loadu_ps(ptr.add(8))]) }
    }

    #[inline(always)]
    unsafe fn add(a: Self, b: Self) -> Self {
        // SAFETY: the caller guarantees AVX2.
        unsafe { Self([_mm256_add_ps(a.0[0], b.0[0]), _mm256_add_ps(a.0[1], b.0[1])]) }
    }

    #[inline(always)]
    unsafe fn mul(a: Self, b: Self) -> Self {
        // SAFETY: the caller guarantees AVX2.
        unsafe { Self([_mm256_mul_ps(a.0[0], b.0[0]), _mm256_mul_ps(a.0[1], b.0[1])]) }
    }

    #[inline(always)]
    unsafe fn relu(a: Self) -> Self {
        // SAFETY: the caller guarantees AVX2; maxps returns its second operand (0) for NaN.
        unsafe {
            let zero = _mm256_setzero_ps();
            Self([_mm256_max_ps(a.0[0], zero), _mm256_max_ps(a.0[1], zero)])
        }
    }

    #[inline(always)]
    unsafe fn mul_add(x: f32, w: Self, acc: Self) -> Self {
        // SAFETY: the caller guarantees AVX2 and FMA.
        unsafe {
            let x = _mm256_set1_ps(x);
            Self([_mm256_fmadd_ps(x, w.0[0], acc.0[0]), _mm256_fmadd_ps(x, w.0[1], acc.0[1])])
        }
    }

    #[inline(always)]
    unsafe fn store(self, out: *mut f32) {
        // SAFETY: the caller guarantees 16 writable floats and AVX2; storeu is unaligned.
        unsafe {
            _mm256_storeu_ps(out, self.0[0]);
            _mm256_storeu_ps(out.add(8), self.0[1]);
        }
    }
}

/// [`crate::kernels::float_conv::conv_gemm`] with AVX2 and FMA.
///
/// # Safety
/// `gemm` and `out` passed that function's checks; the CPU supports AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(in crate::kernels) unsafe fn conv_gemm(gemm: &ConvGemm, packed: &mut Vec<f32>, out: &mut [f32]) {
    // SAFETY: forwarded from the caller, who guarantees the features Avx2Lanes uses.
    unsafe { float::conv_gemm::<Avx2Lanes, AVX2_ROWS, 1>(gemm, packed, out) }
}
