//! BatchNorm folding: inference-time BatchNorm as a per-channel affine map, and BatchNorm
//! followed by sign as a per-channel threshold with a sign flip (reference §1).

/// `y[c] = x[c] * scale[c] + shift[c]`: an inference BatchNorm.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelAffine {
    /// Per-channel multiplier, `gamma / sqrt(var + eps)`.
    pub scale: Vec<f32>,
    /// Per-channel offset, `beta - mean * scale`.
    pub shift: Vec<f32>,
}

/// BatchNorm then sign with the project's convention (`bn(x) >= 0 -> +1`), folded into
/// `bit = sign[c] * x >= threshold[c]`: `sign` is +1 (gamma > 0), -1 (gamma < 0, the flip) or 0
/// (gamma = 0, a constant output decided by beta).
#[derive(Debug, Clone, PartialEq)]
pub struct Binarize {
    /// Per-channel sign of gamma: 1, -1 or 0.
    pub sign: Vec<f32>,
    /// Per-channel threshold, already multiplied by `sign`.
    pub threshold: Vec<f32>,
}

/// Raw BatchNorm statistics of one layer; `gamma`/`beta` are absent for a non-affine one.
#[derive(Debug, Clone, Copy)]
pub struct BatchNormParams<'a> {
    /// Scale, if affine.
    pub gamma: Option<&'a [f32]>,
    /// Offset, if affine.
    pub beta: Option<&'a [f32]>,
    /// Running mean.
    pub mean: &'a [f32],
    /// Running variance.
    pub var: &'a [f32],
    /// The epsilon added to the variance.
    pub eps: f32,
}

impl BatchNormParams<'_> {
    /// (gamma, beta, mean, sqrt(var + eps)) of channel `c`, in f64.
    fn channel(&self, c: usize) -> (f64, f64, f64, f64) {
        let gamma = self.gamma.map_or(1.0, |g| f64::from(g[c]));
        let beta = self.beta.map_or(0.0, |b| f64::from(b[c]));
        let std = (f64::from(self.var[c]) + f64::from(self.eps)).sqrt();
        (gamma, beta, f64::from(self.mean[c]), std)
    }

    /// `bn(x)` of channel `c`, computed in f64 from the stored statistics.
    pub fn apply(&self, c: usize, x: f64) -> f64 {
        let (gamma, beta, mean, std) = self.channel(c);
        gamma * (x - mean) / std + beta
    }

    /// The affine form.
    pub fn affine(&self) -> ChannelAffine {
        let (scale, shift) = (0..self.mean.len())
            .map(|c| {
                let (gamma, beta, mean, std) = self.channel(c);
                let scale = gamma / std;
                (scale as f32, (beta - mean * scale) as f32)
            })
            .unzip();
        ChannelAffine { scale, shift }
    }

    /// The threshold form of BatchNorm followed by sign: `bn(x) >= 0` iff
    /// `x >= mean - beta * std / gamma` for gamma > 0, `<=` for gamma < 0.
    pub fn binarize(&self) -> Binarize {
        let (sign, threshold) = (0..self.mean.len())
            .map(|c| {
                let (gamma, beta, mean, std) = self.channel(c);
                if gamma == 0.0 {
                    // bn(x) = beta everywhere: 0 * x >= 0 holds, 0 * x >= 1 never does.
                    (0.0, if beta >= 0.0 { 0.0 } else { 1.0 })
                } else {
                    let sign = gamma.signum();
                    (sign as f32, (sign * (mean - beta * std / gamma)) as f32)
                }
            })
            .unzip();
        Binarize { sign, threshold }
    }
}

impl Binarize {
    /// The sign decision for value `x` of channel `c`: true means +1.
    pub fn bit(&self, c: usize, x: f32) -> bool {
        self.sign[c] * x >= self.threshold[c]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bn(x: f64, gamma: f64, beta: f64, mean: f64, var: f64, eps: f64) -> f64 {
        gamma * (x - mean) / (var + eps).sqrt() + beta
    }

    #[test]
    fn threshold_matches_batch_norm_sign_away_from_zero() {
        let gamma = [1.5f32, -0.7, 0.0, 0.0, 2.0];
        let beta = [0.3f32, 0.2, 0.5, -0.5, -1.0];
        let mean = [0.1f32, -0.4, 3.0, 3.0, 0.0];
        let var = [0.8f32, 2.0, 1.0, 1.0, 0.25];
        let params =
            BatchNormParams { gamma: Some(&gamma), beta: Some(&beta), mean: &mean, var: &var, eps: 1e-5 };
        let folded = params.binarize();
        let affine = params.affine();
        for c in 0..gamma.len() {
            for i in -400..=400 {
                let x = i as f32 * 0.01;
                let y = bn(x.into(), gamma[c].into(), beta[c].into(), mean[c].into(), var[c].into(), 1e-5);
                assert!((params.apply(c, x.into()) - y).abs() < 1e-9, "apply channel {c}, x {x}");
                if y.abs() > 1e-5 {
                    assert_eq!(folded.bit(c, x), y >= 0.0, "channel {c}, x {x}, bn {y}");
                    let via_affine = f64::from(x * affine.scale[c] + affine.shift[c]);
                    assert!((via_affine - y).abs() < 1e-5, "affine channel {c}, x {x}");
                }
            }
        }
    }

    #[test]
    fn exact_zero_of_batch_norm_is_plus_one_for_either_sign_of_gamma() {
        // mean 2, beta 0: bn(2) = 0 exactly, which binarizes to +1 (x >= 0 -> +1).
        for gamma in [1.0f32, -1.0] {
            let params = BatchNormParams {
                gamma: Some(&[gamma]),
                beta: Some(&[0.0]),
                mean: &[2.0],
                var: &[1.0],
                eps: 0.0,
            };
            let folded = params.binarize();
            assert!(folded.bit(0, 2.0));
            assert_eq!(folded.bit(0, 3.0), gamma > 0.0);
        }
    }

    #[test]
    fn non_affine_threshold_is_the_running_mean() {
        let params = BatchNormParams { gamma: None, beta: None, mean: &[0.25], var: &[4.0], eps: 1e-5 };
        assert_eq!(params.binarize(), Binarize { sign: vec![1.0], threshold: vec![0.25] });
    }
}
