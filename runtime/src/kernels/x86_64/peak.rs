//! The x86-64 lanes of the peak measurement ([`crate::kernels::peak`]): scalar POPCNT, AVX2's
//! nibble-lookup popcount (the AVX2 kernel's own instruction mix), AVX-512 VPOPCNTQ, and 256- and
//! 512-bit FP32 FMA.

use std::arch::asm;
use std::arch::x86_64::*;

use super::avx2::xor_popcount_bytes_add;
use crate::kernels::peak::{
    fma_loop, fma_peak, operands, popcount_peak, scalar_xor_popcount, xor_popcount_loop, FmaLane, FmaPeak,
    PopcountLane, PopcountPeak, SCALAR_ACCUMULATORS,
};
use crate::kernels::Isa;

/// Popcount accumulators per AVX2 step: with the lookup table, the nibble mask, the operands and
/// temporaries they fill the 16 ymm registers.
const AVX2_ACCUMULATORS: usize = 4;
/// Popcount accumulators per AVX-512 step (of 32 zmm registers).
const AVX512_ACCUMULATORS: usize = 8;
/// Independent FMA chains: at least latency (4) x FMA pipes (2) on current cores.
const FMA_CHAINS: usize = 12;

/// `v`, opaque to the compiler, in its ymm register.
///
/// # Safety
/// The CPU supports AVX.
#[target_feature(enable = "avx")]
#[inline]
unsafe fn opaque_ymm(mut v: __m256i) -> __m256i {
    // SAFETY: an empty template: the register is left as it is.
    unsafe { asm!("/* {0} */", inout(ymm_reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// `v`, opaque to the compiler, in its zmm register.
///
/// # Safety
/// The CPU supports AVX-512F.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn opaque_zmm(mut v: __m512i) -> __m512i {
    // SAFETY: an empty template: the register is left as it is.
    unsafe { asm!("/* {0} */", inout(zmm_reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// Four u64 lanes counted per byte, as the AVX2 kernel does.
#[derive(Clone, Copy)]
struct Avx2Lane(__m256i);

impl PopcountLane for Avx2Lane {
    type Acc = __m256i;
    const BITS: u64 = 256;
    /// `vpxor`, `vpand` x2, `vpsrlw`, `vpshufb` x2, `vpaddb` x2.
    const INSTRUCTIONS: u64 = 8;
    /// A step adds at most 8 to a byte counter: 31 * 8 = 248 fits in a u8.
    const FLUSH_STEPS: usize = 31;

    #[inline(always)]
    unsafe fn splat(word: u64) -> Self {
        // SAFETY: the caller guarantees AVX2.
        Self(unsafe { _mm256_set1_epi64x(word as i64) })
    }

    #[inline(always)]
    unsafe fn zero() -> __m256i {
        // SAFETY: the caller guarantees AVX2.
        unsafe { _mm256_setzero_si256() }
    }

    #[inline(always)]
    unsafe fn xor_popcount_add(acc: __m256i, a: Self, b: Self) -> __m256i {
        // SAFETY: the caller guarantees AVX2.
        unsafe { xor_popcount_bytes_add(acc, a.0, b.0) }
    }

    #[inline(always)]
    unsafe fn sum(acc: __m256i) -> u64 {
        // SAFETY: the caller guarantees AVX2.
        unsafe {
            let words = _mm256_sad_epu8(acc, _mm256_setzero_si256());
            let pair = _mm_add_epi64(_mm256_castsi256_si128(words), _mm256_extracti128_si256::<1>(words));
            (_mm_cvtsi128_si64(pair) + _mm_extract_epi64::<1>(pair)) as u64
        }
    }

    #[inline(always)]
    unsafe fn opaque(self) -> Self {
        // SAFETY: the caller guarantees AVX2.
        Self(unsafe { opaque_ymm(self.0) })
    }
}

/// Eight u64 lanes counted by VPOPCNTQ.
#[derive(Clone, Copy)]
struct Avx512Lane(__m512i);

impl PopcountLane for Avx512Lane {
    type Acc = __m512i;
    const BITS: u64 = 512;
    /// `vpxorq`, `vpopcntq`, `vpaddq`.
    const INSTRUCTIONS: u64 = 3;
    const FLUSH_STEPS: usize = 256;

    #[inline(always)]
    unsafe fn splat(word: u64) -> Self {
        // SAFETY: the caller guarantees AVX-512F.
        Self(unsafe { _mm512_set1_epi64(word as i64) })
    }

    #[inline(always)]
    unsafe fn zero() -> __m512i {
        // SAFETY: the caller guarantees AVX-512F.
        unsafe { _mm512_setzero_si512() }
    }

    #[inline(always)]
    unsafe fn xor_popcount_add(acc: __m512i, a: Self, b: Self) -> __m512i {
        // SAFETY: the caller guarantees AVX-512F and VPOPCNTDQ.
        unsafe { _mm512_add_epi64(acc, _mm512_popcnt_epi64(_mm512_xor_si512(a.0, b.0))) }
    }

    #[inline(always)]
    unsafe fn sum(acc: __m512i) -> u64 {
        // SAFETY: the caller guarantees AVX-512F.
        unsafe { _mm512_reduce_add_epi64(acc) as u64 }
    }

    #[inline(always)]
    unsafe fn opaque(self) -> Self {
        // SAFETY: the caller guarantees AVX-512F.
        Self(unsafe { opaque_zmm(self.0) })
    }
}

impl FmaLane for __m256 {
    const LANES: u64 = 8;

    #[inline(always)]
    unsafe fn splat(value: f32) -> Self {
        // SAFETY: the caller guarantees AVX.
        unsafe { _mm256_set1_ps(value) }
    }

    #[inline(always)]
    unsafe fn fma(acc: Self, a: Self, b: Self) -> Self {
        // SAFETY: the caller guarantees FMA.
        unsafe { _mm256_fmadd_ps(acc, a, b) }
    }

    #[inline(always)]
    unsafe fn sum(self) -> f32 {
        let mut lanes = [0f32; 8];
        // SAFETY: the caller guarantees AVX; storeu writes 8 floats into the 8-float array.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), self) };
        lanes.iter().sum()
    }
}

impl FmaLane for __m512 {
    const LANES: u64 = 16;

    #[inline(always)]
    unsafe fn splat(value: f32) -> Self {
        // SAFETY: the caller guarantees AVX-512F.
        unsafe { _mm512_set1_ps(value) }
    }

    #[inline(always)]
    unsafe fn fma(acc: Self, a: Self, b: Self) -> Self {
        // SAFETY: the caller guarantees AVX-512F.
        unsafe { _mm512_fmadd_ps(acc, a, b) }
    }

    #[inline(always)]
    unsafe fn sum(self) -> f32 {
        // SAFETY: the caller guarantees AVX-512F.
        unsafe { _mm512_reduce_add_ps(self) }
    }
}

/// The scalar loop compiled with POPCNT.
///
/// # Safety
/// The CPU supports POPCNT.
#[target_feature(enable = "popcnt")]
unsafe fn popcnt_xor_popcount(a: u64, b: [u64; SCALAR_ACCUMULATORS], blocks: u64) -> u64 {
    // SAFETY: the portable lane needs nothing; POPCNT is enabled here.
    unsafe { xor_popcount_loop::<u64, SCALAR_ACCUMULATORS>(a, b, blocks) }
}

/// The AVX2 XOR+popcount loop.
///
/// # Safety
/// The CPU supports AVX2.
#[target_feature(enable = "avx2")]
unsafe fn avx2_xor_popcount(a: u64, b: [u64; AVX2_ACCUMULATORS], blocks: u64) -> u64 {
    // SAFETY: AVX2 is enabled here and guaranteed by the caller.
    unsafe { xor_popcount_loop::<Avx2Lane, AVX2_ACCUMULATORS>(a, b, blocks) }
}

/// The AVX-512 XOR+popcount loop.
///
/// # Safety
/// The CPU supports AVX-512F and VPOPCNTDQ.
#[target_feature(enable = "avx512f,avx512vpopcntdq")]
unsafe fn avx512_xor_popcount(a: u64, b: [u64; AVX512_ACCUMULATORS], blocks: u64) -> u64 {
    // SAFETY: the features are enabled here and guaranteed by the caller.
    unsafe { xor_popcount_loop::<Avx512Lane, AVX512_ACCUMULATORS>(a, b, blocks) }
}

/// The 256-bit FMA loop.
///
/// # Safety
/// The CPU supports AVX and FMA.
#[target_feature(enable = "avx,fma")]
unsafe fn fma256(steps: u64) -> f32 {
    // SAFETY: the features are enabled here and guaranteed by the caller.
    unsafe { fma_loop::<__m256, FMA_CHAINS>(0.999, 0.001, steps) }
}

/// The 512-bit FMA loop.
///
/// # Safety
/// The CPU supports AVX-512F.
#[target_feature(enable = "avx512f")]
unsafe fn fma512(steps: u64) -> f32 {
    // SAFETY: AVX-512F is enabled here and guaranteed by the caller.
    unsafe { fma_loop::<__m512, FMA_CHAINS>(0.999, 0.001, steps) }
}

/// Measures the instruction sets this CPU supports: scalar (with POPCNT if present), AVX2 and
/// AVX-512 XOR+popcount, 256- and 512-bit FMA.
pub(in crate::kernels) fn measure(clock_hz: f64, popcount: &mut Vec<PopcountPeak>, fma: &mut Vec<FmaPeak>) {
    const S: usize = SCALAR_ACCUMULATORS;
    let (a, b) = operands::<S>();
    popcount.push(if is_x86_feature_detected!("popcnt") {
        popcount_peak::<u64, S>("scalar", "xor, popcnt, add (r64)", clock_hz, |n| {
            // SAFETY: POPCNT is supported (checked above).
            unsafe { popcnt_xor_popcount(a, b, n) }
        })
    } else {
        popcount_peak::<u64, S>("scalar", "xor, software popcount, add", clock_hz, |n| {
            scalar_xor_popcount(a, b, n)
        })
    });
    if Isa::Avx2.is_supported() {
        const N: usize = AVX2_ACCUMULATORS;
        let (a, b) = operands::<N>();
        let body = "vpxor, 2 vpand, vpsrlw, 2 vpshufb, 2 vpaddb (ymm)";
        popcount.push(popcount_peak::<Avx2Lane, N>("avx2", body, clock_hz, |n| {
            // SAFETY: AVX2 is supported (checked above).
            unsafe { avx2_xor_popcount(a, b, n) }
        }));
    }
    if Isa::Avx512.is_supported() {
        const N: usize = AVX512_ACCUMULATORS;
        let (a, b) = operands::<N>();
        let body = "vpxorq, vpopcntq, vpaddq (zmm)";
        popcount.push(popcount_peak::<Avx512Lane, N>("avx512", body, clock_hz, |n| {
            // SAFETY: AVX-512F and VPOPCNTDQ are supported (checked above).
            unsafe { avx512_xor_popcount(a, b, n) }
        }));
    }
    if is_x86_feature_detected!("avx") && is_x86_feature_detected!("fma") {
        fma.push(fma_peak::<__m256, FMA_CHAINS>("avx2", clock_hz, |n| {
            // SAFETY: AVX and FMA are supported (checked above).
            unsafe { fma256(n) }
        }));
    }
    if is_x86_feature_detected!("avx512f") {
        fma.push(fma_peak::<__m512, FMA_CHAINS>("avx512", clock_hz, |n| {
            // SAFETY: AVX-512F is supported (checked above).
            unsafe { fma512(n) }
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::peak::expected_count;

    #[test]
    fn every_supported_popcount_loop_counts_every_bit() {
        let (a, b) = operands::<SCALAR_ACCUMULATORS>();
        if is_x86_feature_detected!("popcnt") {
            // SAFETY: POPCNT is supported.
            let count = unsafe { popcnt_xor_popcount(a, b, 2) };
            assert_eq!(count, expected_count::<SCALAR_ACCUMULATORS>(256, 2));
        }
        if Isa::Avx2.is_supported() {
            let (a, b) = operands::<AVX2_ACCUMULATORS>();
            // SAFETY: AVX2 is supported. Every u64 lane of the vector holds the word: 4 per ymm.
            let count = unsafe { avx2_xor_popcount(a, b, 3) };
            assert_eq!(count, 4 * expected_count::<AVX2_ACCUMULATORS>(31, 3));
        }
        if Isa::Avx512.is_supported() {
            let (a, b) = operands::<AVX512_ACCUMULATORS>();
            // SAFETY: AVX-512F and VPOPCNTDQ are supported; 8 u64 lanes per zmm.
            let count = unsafe { avx512_xor_popcount(a, b, 2) };
            assert_eq!(count, 8 * expected_count::<AVX512_ACCUMULATORS>(256, 2));
        }
    }

    #[test]
    fn the_fma_loops_converge_to_their_fixed_point() {
        // acc = 0.999 acc + 0.001 tends to 1 in every lane (to within f32 rounding over 1 - 0.999).
        if is_x86_feature_detected!("fma") {
            // SAFETY: AVX and FMA are supported.
            let sum = unsafe { fma256(20_000) };
            assert!((sum / (8 * FMA_CHAINS) as f32 - 1.0).abs() < 1e-3, "{sum}");
        }
        if is_x86_feature_detected!("avx512f") {
            // SAFETY: AVX-512F is supported.
            let sum = unsafe { fma512(20_000) };
            assert!((sum / (16 * FMA_CHAINS) as f32 - 1.0).abs() < 1e-3, "{sum}");
        }
    }
}
