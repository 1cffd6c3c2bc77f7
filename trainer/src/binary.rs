//! Binarization (reference §1): the sign activation with its straight-through gradient, and XNOR-Net
//! weight binarization with the reference's rewritten weight gradient, applied around each
//! optimizer step as the reference's `BinOp` does.
//!
//! The project's sign maps x >= 0 to +1 and x < 0 to -1, for activations and weights alike.

use tch::{Kind, Tensor};

/// The project's sign: +1 where `x >= 0`, -1 elsewhere, in `x`'s kind. No gradient.
pub fn sign(x: &Tensor) -> Tensor {
    Tensor::where_scalar(&x.ge(0.0), 1.0, -1.0).to_kind(x.kind())
}

/// Sign activation with the straight-through estimator: the forward value is [`sign`]`(x)`,
/// the gradient passes unchanged where |x| < 1 and is zero elsewhere.
///
/// tch has no custom autograd functions, so the gradient comes from a term that is exactly
/// zero in value: `sign(x) + (h - detach(h))` with `h = hardtanh(x)`, whose derivative is
/// 1 where -1 < x < 1 and 0 elsewhere (PyTorch's `hardtanh_backward`).
pub fn sign_ste(x: &Tensor) -> Tensor {
    let forward = sign(x);
    if !x.requires_grad() {
        return forward;
    }
    let clipped = x.hardtanh();
    forward + (&clipped - clipped.detach())
}

/// The latent weight as the reference keeps it: mean-centred over the input-channel axis, then
/// clamped to [-1, 1].
pub fn center_and_clamp(weight: &Tensor) -> Tensor {
    (weight - weight.mean_dim(1, true, Kind::Float)).clamp(-1.0, 1.0)
}

/// One scale per output channel: the mean |W| over each filter, shaped `[out, 1, 1, 1]`.
pub fn filter_scale(weight: &Tensor) -> Tensor {
    weight.abs().mean_dim([1i64, 2, 3].as_slice(), true, Kind::Float)
}

/// The binarized weight `sign(W) * alpha[o]` of a (centred and clamped) latent weight.
pub fn binarize_weight(latent: &Tensor) -> Tensor {
    sign(latent) * filter_scale(latent)
}

/// The weight binarization of inference and export: centre and clamp a stored latent weight,
/// then binarize it (reference §7).
pub fn inference_weight(latent: &Tensor) -> Tensor {
    binarize_weight(&center_and_clamp(latent))
}

/// The reference's weight gradient (reference §1): with `W` the latent weight and `g` the gradient
/// with respect to the binarized weight,
/// `g' = (alpha * 1{|W| <= 1} * g + sign(W) * mean(sign(W) * g over the filter)) * (1 - 1/C_in) * n`,
/// `n` the number of elements of one filter.
pub fn latent_gradient(latent: &Tensor, grad: &Tensor) -> Tensor {
    let size = latent.size();
    let in_channels = size[1] as f64;
    let n = (size[1] * size[2] * size[3]) as f64;
    let inside = latent.abs().le(1.0).to_kind(latent.kind());
    let scaled = filter_scale(latent) * inside * grad;
    let s = sign(latent);
    let correlation = (&s * grad).sum_dim_intlist([1i64, 2, 3].as_slice(), true, Kind::Float) / n;
    (scaled + s * correlation) * ((1.0 - 1.0 / in_channels) * n)
}

/// The binary conv weights of a network, binarized before each forward pass and restored after
/// the backward pass, as the reference's `BinOp`.
#[derive(Debug)]
pub struct WeightBinarizer {
    weights: Vec<Tensor>,
    saved: Vec<Option<Tensor>>,
}

impl WeightBinarizer {
    /// Manages `weights` (variables shared with the model).
    pub fn new(weights: Vec<Tensor>) -> WeightBinarizer {
        let saved = weights.iter().map(|_| None).collect();
        WeightBinarizer { weights, saved }
    }

    /// Training: replaces each latent weight by its centred and clamped form (kept), then
    /// writes the binarized weight into the variable for the forward pass.
    pub fn binarize_for_training(&mut self) {
        tch::no_grad(|| {
            for (weight, saved) in self.weights.iter().zip(&mut self.saved) {
                let latent = center_and_clamp(weight);
                weight.shallow_clone().copy_(&binarize_weight(&latent));
                *saved = Some(latent);
            }
        });
    }

    /// Inference: writes the binarized weights, keeping the latent weights unchanged for
    /// [`restore`](Self::restore).
    pub fn binarize_for_inference(&mut self) {
        tch::no_grad(|| {
            for (weight, saved) in self.weights.iter().zip(&mut self.saved) {
                *saved = Some(weight.copy());
                weight.shallow_clone().copy_(&inference_weight(weight));
            }
        });
    }

    /// Puts the saved latent weights back; after training's backward pass, also rewrites each
    /// weight's gradient with [`latent_gradient`].
    pub fn restore(&mut self, rewrite_gradients: bool) {
        tch::no_grad(|| {
            for (weight, saved) in self.weights.iter().zip(&mut self.saved) {
                let Some(latent) = saved.take() else { continue };
                let mut weight = weight.shallow_clone();
                weight.copy_(&latent);
                let grad = weight.grad();
                if rewrite_gradients && grad.defined() {
                    grad.shallow_clone().copy_(&latent_gradient(&latent, &grad));
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(t: &Tensor) -> Vec<f32> {
        Vec::<f32>::try_from(t.flatten(0, -1)).unwrap()
    }

    #[test]
    fn sign_maps_zero_to_plus_one() {
        let x = Tensor::from_slice(&[-2.0f32, -0.0, 0.0, 0.5, 3.0]);
        assert_eq!(values(&sign(&x)), [-1.0, 1.0, 1.0, 1.0, 1.0]);
    }

    #[test]
    fn ste_passes_gradient_only_inside_the_unit_interval() {
        let x = Tensor::from_slice(&[-1.5f32, -1.0, -0.3, 0.0, 0.7, 1.0, 2.0]).set_requires_grad(true);
        let y = sign_ste(&x);
        assert_eq!(values(&y.detach()), [-1.0, -1.0, -1.0, 1.0, 1.0, 1.0, 1.0]);
        // Upstream gradient 1..=7: it passes at -0.3, 0.0 and 0.7 only (|x| < 1, strictly).
        let upstream = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]);
        (y * &upstream).sum(Kind::Float).backward();
        assert_eq!(values(&x.grad()), [0.0, 0.0, 3.0, 4.0, 5.0, 0.0, 0.0]);
    }

    #[test]
    fn weight_binarization_and_gradient_match_hand_computation() {
        // One filter [1 out, 2 in, 1x1]: w = (0.5, -0.25) -> centred over inputs (mean 0.125):
        // (0.375, -0.375); clamped: unchanged. alpha = 0.375; binarized = (0.375, -0.375).
        let w = Tensor::from_slice(&[0.5f32, -0.25]).reshape([1, 2, 1, 1]);
        let latent = center_and_clamp(&w);
        assert_eq!(values(&latent), [0.375, -0.375]);
        assert_eq!(values(&binarize_weight(&latent)), [0.375, -0.375]);

        // Gradient g = (1, 3): n = 2, C_in = 2, sign = (+1, -1).
        // scaled = alpha * g = (0.375, 1.125); mean(sign*g) = (1 - 3)/2 = -1;
        // sign * mean = (-1, 1); sum = (-0.625, 2.125); times (1 - 1/2) * 2 = 1.
        let g = Tensor::from_slice(&[1.0f32, 3.0]).reshape([1, 2, 1, 1]);
        assert_eq!(values(&latent_gradient(&latent, &g)), [-0.625, 2.125]);
    }

    #[test]
    fn clamping_and_filter_scale_per_output_channel() {
        // Two filters [2 out, 1 in, 1x2]: centring over one input channel is per position, so use
        // C_in = 2 with 1x1 kernels: filter 0 = (3, -1) -> mean 1 -> (2, -2) -> clamp (1, -1);
        // filter 1 = (0.2, 0.2) -> (0, 0). alpha = (1, 0); sign(0) = +1, so filter 1 -> (0, 0).
        let w = Tensor::from_slice(&[3.0f32, -1.0, 0.2, 0.2]).reshape([2, 2, 1, 1]);
        let latent = center_and_clamp(&w);
        let expected_latent = [1.0, -1.0, 0.0, 0.0];
        for (got, want) in values(&latent).iter().zip(expected_latent) {
            assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        }
        assert_eq!(values(&inference_weight(&w)), [1.0, -1.0, 0.0, 0.0]);
        // Gradient where |W| <= 1 everywhere (after the clamp), g = (1, 1, 2, -2):
        // filter 0: alpha 1, sign (1,-1): scaled (1, 1); mean(sign*g) = 0 -> (1, 1) * 1 = (1, 1).
        // filter 1: alpha 0, sign (1, 1): scaled 0; mean = 0 -> (0, 0).
        let g = Tensor::from_slice(&[1.0f32, 1.0, 2.0, -2.0]).reshape([2, 2, 1, 1]);
        let got = values(&latent_gradient(&latent, &g));
        for (got, want) in got.iter().zip([1.0, 1.0, 0.0, 0.0]) {
            assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        }
    }

    #[test]
    fn binarizer_restores_latent_and_rewrites_gradient() {
        let w = Tensor::from_slice(&[0.5f32, -0.25]).reshape([1, 2, 1, 1]).set_requires_grad(true);
        let mut binarizer = WeightBinarizer::new(vec![w.shallow_clone()]);
        binarizer.binarize_for_training();
        assert_eq!(values(&w.detach()), [0.375, -0.375]);
        // Loss = sum(w * (1, 3)): the gradient with respect to the binarized weight is (1, 3).
        let g = Tensor::from_slice(&[1.0f32, 3.0]).reshape([1, 2, 1, 1]);
        (&w * &g).sum(Kind::Float).backward();
        binarizer.restore(true);
        assert_eq!(values(&w.detach()), [0.375, -0.375]);
        assert_eq!(values(&w.grad()), [-0.625, 2.125]);

        let mut eval = WeightBinarizer::new(vec![w.shallow_clone()]);
        tch::no_grad(|| w.shallow_clone().copy_(&Tensor::from_slice(&[0.5f32, -0.25]).reshape([1, 2, 1, 1])));
        eval.binarize_for_inference();
        assert_eq!(values(&w.detach()), [0.375, -0.375]);
        eval.restore(false);
        assert_eq!(values(&w.detach()), [0.5, -0.25]);
    }
}
