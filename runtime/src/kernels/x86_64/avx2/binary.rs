//! AVX2 kernels: a panel row is four ymm registers popcounted by a nibble lookup (`vpshufb`) into
//! byte counters, summed per lane by `vpsadbw` only when the accumulator is flushed; activations
//! are compared 8 channels at a time and gathered by `vmovmskps`.

use std::arch::x86_64::*;

use crate::bit_layout::words_for;
use crate::kernels::generic::binary::{self as generic, PanelRow};
use crate::kernels::scalar::{activation_bit, scale_count};

/// Rows per register block: 2 rows x 4 byte accumulators, plus the lookup constants and
/// temporaries, fit the 16 ymm registers.
const MR: usize = 2;

/// A panel row: lanes 0..4, 4..8, 8..12 and 12..16.
#[derive(Clone, Copy)]
struct Avx2Row([__m256i; 4]);

impl PanelRow for Avx2Row {
    /// Per-byte popcounts; each u64 lane's count is the sum of its 8 bytes.
    type Acc = [__m256i; 4];

    /// A step adds at most 8 to a byte counter: 31 * 8 = 248 still fits in a u8.
    const FLUSH_STEPS: usize = 31;

    #[inline(always)]
    unsafe fn load(ptr: *const u64) -> Self {
        // SAFETY: the caller guarantees 16 readable words and AVX2; loadu has no alignment need.
        unsafe {
            Self([
                _mm256_loadu_si256(ptr.cast()),
                _mm256_loadu_si256(ptr.add(4).cast()),
                _mm256_loadu_si256(ptr.add(8).cast()),
                _mm256_loadu_si256(ptr.add(12).cast()),
            ])
        }
    }

    #[inline(always)]
    unsafe fn zero() -> Self::Acc {
        // SAFETY: the caller guarantees AVX2.
        unsafe { [_mm256_setzero_si256(); 4] }
    }

    #[inline(always)]
    unsafe fn xor_popcount_add(mut acc: Self::Acc, a: u64, row: Self) -> Self::Acc {
        // SAFETY: the caller guarantees AVX2.
        unsafe {
            let a = _mm256_set1_epi64x(a as i64);
            for (acc, w) in acc.iter_mut().zip(row.0) {
                *acc = xor_popcount_bytes_add(*acc, a, w);
            }
        }
        acc
    }

    #[inline(always)]
    unsafe fn store(acc: Self::Acc, out: *mut u32) {
        // SAFETY: the caller guarantees 16 writable counts and AVX2; storeu is unaligned.
        unsafe {
            let [low, high] = narrow(acc);
            _mm256_storeu_si256(out.cast(), low);
            _mm256_storeu_si256(out.add(8).cast(), high);
        }
    }

    #[inline(always)]
    unsafe fn accumulate(acc: Self::Acc, out: *mut u32) {
        // SAFETY: the caller guarantees 16 readable and writable counts and AVX2.
        unsafe {
            let [low, high] = narrow(acc);
            let low = _mm256_add_epi32(_mm256_loadu_si256(out.cast()), low);
            let high = _mm256_add_epi32(_mm256_loadu_si256(out.add(8).cast()), high);
            _mm256_storeu_si256(out.cast(), low);
            _mm256_storeu_si256(out.add(8).cast(), high);
        }
    }
}

/// `acc + popcount(a ^ w)` per byte: a nibble lookup (`vpshufb`) on each half of every byte.
/// Shared with the peak measurement, so that the peak is this kernel's own instruction mix.
///
/// # Safety
/// The CPU supports AVX2.
#[inline(always)]
pub(in crate::kernels) unsafe fn xor_popcount_bytes_add(acc: __m256i, a: __m256i, w: __m256i) -> __m256i {
    // SAFETY: the caller guarantees AVX2.
    unsafe {
        let lookup = _mm256_setr_epi8(
            0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, //
            0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
        );
        let nibble = _mm256_set1_epi8(0x0f);
        let v = _mm256_xor_si256(a, w);
        let low = _mm256_shuffle_epi8(lookup, _mm256_and_si256(v, nibble));
        let high = _mm256_shuffle_epi8(lookup, _mm256_and_si256(_mm256_srli_epi16::<4>(v), nibble));
        _mm256_add_epi8(acc, _mm256_add_epi8(low, high))
    }
}

/// The byte counters as lanes 0..8 and 8..16 of u32 counts.
///
/// # Safety
/// The CPU supports AVX2.
#[inline(always)]
unsafe fn narrow(acc: [__m256i; 4]) -> [__m256i; 2] {
    // SAFETY: the caller guarantees AVX2.
    unsafe {
        let zero = _mm256_setzero_si256();
        [
            interleave_low_halves(_mm256_sad_epu8(acc[0], zero), _mm256_sad_epu8(acc[1], zero)),
            interleave_low_halves(_mm256_sad_epu8(acc[2], zero), _mm256_sad_epu8(acc[3], zero)),
        ]
    }
}

/// The low u32 of each u64 lane of `first`, then of `second`, in lane order.
///
/// # Safety
/// The CPU supports AVX2.
#[inline(always)]
unsafe fn interleave_low_halves(first: __m256i, second: __m256i) -> __m256i {
    // SAFETY: the caller guarantees AVX2.
    unsafe {
        // Per 128-bit half: first's two low u32s, then second's; the permute restores lane order.
        let halves =
            _mm256_shuffle_ps::<0b10_00_10_00>(_mm256_castsi256_ps(first), _mm256_castsi256_ps(second));
        _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_castps_si256(halves))
    }
}

/// [`crate::kernels::xnor_gemm`] with AVX2.
///
/// # Safety
/// The slice lengths and `depth` are those [`crate::kernels::xnor_gemm`] checks; the CPU supports
/// AVX2.
#[target_feature(enable = "avx2")]
pub(in crate::kernels) unsafe fn xnor_gemm(
    a: &[u64],
    rows: usize,
    depth: usize,
    panels: &[u64],
    panel_count: usize,
    out: &mut [u32],
) {
    // SAFETY: forwarded from the caller, who guarantees the AVX2 that Avx2Row uses.
    unsafe { generic::xnor_gemm::<Avx2Row, MR>(a, rows, depth, panels, panel_count, out) }
}

/// [`crate::kernels::pack_activations`] with AVX2: 8 channels per ordered `>=` compare, the last
/// `channels % 8` by the scalar rule.
///
/// # Safety
/// The slice lengths are those [`crate::kernels::pack_activations`] checks; the CPU supports AVX2.
#[target_feature(enable = "avx2")]
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
            let end = channels.min((w + 1) * 64);
            let mut word = 0u64;
            let mut c = w * 64;
            while c + 8 <= end {
                // SAFETY: c + 8 <= channels, so 8 floats are readable in each slice; loadu has no
                // alignment need.
                let bits = unsafe {
                    let x = _mm256_loadu_ps(pixel.as_ptr().add(c));
                    let s = _mm256_loadu_ps(sign.as_ptr().add(c));
                    let t = _mm256_loadu_ps(threshold.as_ptr().add(c));
                    _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_GE_OQ>(_mm256_mul_ps(s, x), t))
                };
                word |= u64::from(bits as u8) << (c % 64);
                c += 8;
            }
            for c in c..end {
                word |= u64::from(activation_bit(pixel[c], sign[c], threshold[c])) << (c % 64);
            }
            *out = word;
        }
    }
}

/// [`crate::kernels::scale_counts`] with AVX2: 8 outputs per step, the tail in scalar.
///
/// # Safety
/// The slices have `y`'s length; the CPU supports AVX2.
#[target_feature(enable = "avx2")]
pub(in crate::kernels) unsafe fn scale_counts(
    base: &[i32],
    counts: &[u32],
    alpha: &[f32],
    floor: f32,
    y: &mut [f32],
) {
    let body = y.len() / 8 * 8;
    let floor_v = _mm256_set1_ps(floor);
    for start in (0..body).step_by(8) {
        // SAFETY: start + 8 <= body <= len of each slice (all have y's length).
        unsafe {
            let base = _mm256_loadu_si256(base.as_ptr().add(start).cast());
            let counts = _mm256_loadu_si256(counts.as_ptr().add(start).cast());
            let alpha = _mm256_loadu_ps(alpha.as_ptr().add(start));
            let dot = _mm256_cvtepi32_ps(_mm256_sub_epi32(base, _mm256_add_epi32(counts, counts)));
            _mm256_storeu_ps(y.as_mut_ptr().add(start), _mm256_max_ps(_mm256_mul_ps(alpha, dot), floor_v));
        }
    }
    for i in body..y.len() {
        y[i] = scale_count(base[i], counts[i], alpha[i], floor);
    }
}
