//! x86-64 kernels, each behind run-time feature detection: a released binary targets baseline
//! x86-64 and enables AVX2 or AVX-512 per function.

pub(super) mod avx2;
pub(super) mod avx512;
pub(super) mod peak;

/// Whether this CPU runs [`avx2`] (which also needs FMA).
pub(super) fn avx2_detected() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
}

/// Whether this CPU runs [`avx512`]: AVX-512F plus the 64-bit vector popcount.
pub(super) fn avx512_detected() -> bool {
    is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vpopcntdq")
}
