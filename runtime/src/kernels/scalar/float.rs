//! The portable float conv GEMM: the reference of the SIMD paths, and the fallback on CPUs
//! without them. Compiled with FMA where the CPU has it, and without it elsewhere; both are
//! tested, since `f32::mul_add` gives the same bits either way (a library call without FMA).

use crate::bit_layout::PANEL;
use crate::kernels::float_conv::ConvGemm;
use crate::kernels::generic::float::{self, Lanes};

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

/// [`crate::kernels::float_conv::conv_gemm`] in portable Rust.
///
/// # Safety
/// `gemm` and `out` passed that function's checks.
pub(in crate::kernels) unsafe fn conv_gemm(gemm: &ConvGemm, packed: &mut Vec<f32>, out: &mut [f32]) {
    // `f32::mul_add` is a slow library call unless FMA is compiled in: use it where the CPU has it
    // (the same fused arithmetic, so the same bits).
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("fma") {
        // SAFETY: forwarded from the caller; the CPU supports FMA (checked just above).
        return unsafe { conv_gemm_fma(gemm, packed, out) };
    }
    // SAFETY: forwarded from the caller.
    unsafe { conv_gemm_portable(gemm, packed, out) }
}

/// [`conv_gemm`] compiled for baseline x86-64 (or any other CPU): what a CPU without FMA runs.
///
/// # Safety
/// As for [`conv_gemm`].
pub(in crate::kernels) unsafe fn conv_gemm_portable(gemm: &ConvGemm, packed: &mut Vec<f32>, out: &mut [f32]) {
    // SAFETY: forwarded from the caller; ScalarLanes needs no CPU feature.
    unsafe { float::conv_gemm::<ScalarLanes, FLOAT_ROWS, 1>(gemm, packed, out) }
}

/// [`conv_gemm`] compiled with FMA, so that `f32::mul_add` is one instruction.
///
/// # Safety
/// As for [`conv_gemm`]; the CPU supports FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "fma")]
unsafe fn conv_gemm_fma(gemm: &ConvGemm, packed: &mut Vec<f32>, out: &mut [f32]) {
    // SAFETY: forwarded from the caller; ScalarLanes needs no CPU feature beyond FMA.
    unsafe { float::conv_gemm::<ScalarLanes, FLOAT_ROWS, 1>(gemm, packed, out) }
}
