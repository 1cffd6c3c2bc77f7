//! Weight binarization as the reference's evaluation does it (reference §1, §7): from a latent
//! float filter bank to packed sign bits and one scale per output channel.

use crate::bit_layout;

/// A binary conv's deployable weights.
#[derive(Debug, Clone, PartialEq)]
pub struct BinaryWeights {
    /// Sign bits in the kernels' panel layout (bit 1 = +1).
    pub filters: Vec<u64>,
    /// `alpha[o] = mean |W'[o]|`.
    pub alpha: Vec<f32>,
}

/// Binarizes latent weights `[out, in, k, k]`: `W' = clamp(W - mean over in, -1, 1)`,
/// `alpha[o] = mean |W'[o]|`, weight = `sign(W') * alpha` with sign(0) = +1.
///
/// # Panics
/// If `latent.len()` is not `out_channels * in_channels * kernel * kernel`.
pub fn binarize_latent(
    latent: &[f32],
    out_channels: usize,
    in_channels: usize,
    kernel: usize,
) -> BinaryWeights {
    let taps = kernel * kernel;
    let filter_len = in_channels * taps;
    assert_eq!(latent.len(), out_channels * filter_len, "latent weights must be [out, in, k, k]");
    let mut centred = latent.to_vec();
    let mut alpha = Vec::with_capacity(out_channels);
    for filter in centred.chunks_exact_mut(filter_len) {
        for tap in 0..taps {
            let mean =
                (0..in_channels).map(|c| f64::from(filter[c * taps + tap])).sum::<f64>() / in_channels as f64;
            for c in 0..in_channels {
                let w = &mut filter[c * taps + tap];
                *w = ((f64::from(*w) - mean) as f32).clamp(-1.0, 1.0);
            }
        }
        alpha.push((filter.iter().map(|w| f64::from(w.abs())).sum::<f64>() / filter_len as f64) as f32);
    }
    BinaryWeights { filters: bit_layout::pack_filters(&centred, out_channels, in_channels, kernel), alpha }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_filter() {
        // One output, two input channels, 1x1: W = [0.5, 2.5]; mean 1.5 -> [-1, 1] -> clamp
        // [-1, 1]; alpha = 1; signs -, +.
        let weights = binarize_latent(&[0.5, 2.5], 1, 2, 1);
        assert_eq!(weights.alpha, vec![1.0]);
        assert_eq!(weights.filters[0], 0b10);
        // A zero after centring binarizes to +1.
        let zero = binarize_latent(&[0.25, 0.25], 1, 2, 1);
        assert_eq!(zero.alpha, vec![0.0]);
        assert_eq!(zero.filters[0], 0b11);
    }
}
