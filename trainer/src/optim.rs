//! SGD with momentum and Adam written on tensors, so that their state (momentum buffers, Adam
//! moments and step count) can be saved in a checkpoint and restored exactly. Both follow
//! `torch.optim`'s update rules, weight decay as L2 added to the gradient.

use tch::Tensor;

use crate::error::{Result, TrainerError};

/// Named optimizer state tensors (for safetensors), e.g. `momentum.<param>`.
pub type NamedTensors = Vec<(String, Tensor)>;

/// Stochastic gradient descent with momentum (PyTorch's `SGD`, dampening 0, no Nesterov).
#[derive(Debug)]
pub struct Sgd {
    params: Vec<(String, Tensor)>,
    buffers: Vec<Option<Tensor>>,
    weight_decay: f64,
}

impl Sgd {
    /// An optimizer over named `params` with L2 `weight_decay`.
    pub fn new(params: Vec<(String, Tensor)>, weight_decay: f64) -> Sgd {
        let buffers = params.iter().map(|_| None).collect();
        Sgd { params, buffers, weight_decay }
    }

    /// Clears every parameter's gradient.
    pub fn zero_grad(&mut self) {
        zero_grad(&mut self.params);
    }

    /// One update: `d = g + wd * p`; `buf = momentum * buf + d` (`d` on the first step);
    /// `p -= lr * buf`. Parameters without a gradient are left alone.
    pub fn step(&mut self, lr: f64, momentum: f64) {
        tch::no_grad(|| {
            for ((_, param), buffer) in self.params.iter().zip(&mut self.buffers) {
                let grad = param.grad();
                if !grad.defined() {
                    continue;
                }
                let direction =
                    if self.weight_decay != 0.0 { &grad + param * self.weight_decay } else { grad };
                let update = match buffer.take() {
                    Some(buf) if momentum != 0.0 => buf * momentum + direction,
                    _ => direction,
                };
                let _ = param.shallow_clone().f_sub_(&(&update * lr));
                *buffer = Some(update);
            }
        });
    }

    /// The momentum buffers, named `momentum.<param>`.
    pub fn state(&self) -> NamedTensors {
        self.params
            .iter()
            .zip(&self.buffers)
            .filter_map(|((name, _), buf)| buf.as_ref().map(|b| (format!("momentum.{name}"), b.copy())))
            .collect()
    }

    /// Restores buffers saved by [`state`](Self::state); parameters without one start fresh.
    /// A buffer whose shape is not its parameter's is an error.
    pub fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        for ((name, param), buffer) in self.params.iter().zip(&mut self.buffers) {
            *buffer = stored(state, &format!("momentum.{name}"), param)?;
        }
        Ok(())
    }
}

/// Adam (PyTorch's `Adam`, L2 weight decay, no AMSGrad).
#[derive(Debug)]
pub struct Adam {
    params: Vec<(String, Tensor)>,
    moments: Vec<Option<(Tensor, Tensor)>>,
    betas: (f64, f64),
    eps: f64,
    weight_decay: f64,
    steps: u64,
}

impl Adam {
    /// An optimizer over named `params`.
    pub fn new(params: Vec<(String, Tensor)>, betas: (f64, f64), weight_decay: f64) -> Adam {
        let moments = params.iter().map(|_| None).collect();
        Adam { params, moments, betas, eps: 1e-8, weight_decay, steps: 0 }
    }

    /// Clears every parameter's gradient.
    pub fn zero_grad(&mut self) {
        zero_grad(&mut self.params);
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// One update with learning rate `lr`.
    pub fn step(&mut self, lr: f64) {
        self.steps += 1;
        let (b1, b2) = self.betas;
        let t = self.steps as i32;
        let (correction1, correction2) = (1.0 - b1.powi(t), 1.0 - b2.powi(t));
        tch::no_grad(|| {
            for ((_, param), moments) in self.params.iter().zip(&mut self.moments) {
                let grad = param.grad();
                if !grad.defined() {
                    continue;
                }
                let grad = if self.weight_decay != 0.0 { &grad + param * self.weight_decay } else { grad };
                let (m, v) = moments.take().unwrap_or_else(|| (grad.zeros_like(), grad.zeros_like()));
                let m = m * b1 + &grad * (1.0 - b1);
                let v = v * b2 + &grad * &grad * (1.0 - b2);
                let denom = v.sqrt() / correction2.sqrt() + self.eps;
                let _ = param.shallow_clone().f_sub_(&(&m / denom * (lr / correction1)));
                *moments = Some((m, v));
            }
        });
    }

    /// The first and second moments, named `adam_m.<param>` and `adam_v.<param>`.
    pub fn state(&self) -> NamedTensors {
        self.params
            .iter()
            .zip(&self.moments)
            .filter_map(|((name, _), mv)| mv.as_ref().map(|mv| (name, mv)))
            .flat_map(|(name, (m, v))| {
                [(format!("adam_m.{name}"), m.copy()), (format!("adam_v.{name}"), v.copy())]
            })
            .collect()
    }

    /// Restores moments saved by [`state`](Self::state) and the step count. A moment whose
    /// shape is not its parameter's is an error.
    pub fn load_state(&mut self, state: &[(String, Tensor)], steps: u64) -> Result<()> {
        for ((name, param), moments) in self.params.iter().zip(&mut self.moments) {
            let m = stored(state, &format!("adam_m.{name}"), param)?;
            let v = stored(state, &format!("adam_v.{name}"), param)?;
            *moments = m.zip(v);
        }
        self.steps = steps;
        Ok(())
    }
}

/// The tensor named `key` in `state`, on `param`'s device and kind, if present and shaped like
/// `param`.
fn stored(state: &[(String, Tensor)], key: &str, param: &Tensor) -> Result<Option<Tensor>> {
    let Some((_, tensor)) = state.iter().find(|(n, _)| n == key) else { return Ok(None) };
    if tensor.size() != param.size() {
        return Err(TrainerError::TensorShape {
            name: key.to_owned(),
            expected: param.size(),
            found: tensor.size(),
        });
    }
    Ok(Some(tensor.to_device(param.device()).to_kind(param.kind())))
}

fn zero_grad(params: &mut [(String, Tensor)]) {
    for (_, param) in params {
        let mut grad = param.grad();
        if grad.defined() {
            let _ = grad.detach_();
            let _ = grad.zero_();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    fn param(values: &[f32]) -> Tensor {
        Tensor::from_slice(values).set_requires_grad(true)
    }

    fn value(t: &Tensor) -> Vec<f64> {
        Vec::<f32>::try_from(t.detach()).unwrap().into_iter().map(f64::from).collect()
    }

    #[test]
    fn sgd_momentum_matches_hand_computation() {
        // Loss = sum(p * 2): gradient 2 everywhere. p = 1, wd 0.5, lr 0.1, momentum 0.9.
        let p = param(&[1.0]);
        let mut sgd = Sgd::new(vec![("p".into(), p.shallow_clone())], 0.5);
        (&p * 2.0).sum(Kind::Float).backward();
        sgd.step(0.1, 0.9);
        // d = 2 + 0.5 * 1 = 2.5; buf = 2.5; p = 1 - 0.25 = 0.75.
        assert!((value(&p)[0] - 0.75).abs() < 1e-7);
        sgd.zero_grad();
        (&p * 2.0).sum(Kind::Float).backward();
        sgd.step(0.1, 0.9);
        // d = 2 + 0.375 = 2.375; buf = 0.9 * 2.5 + 2.375 = 4.625; p = 0.75 - 0.4625 = 0.2875.
        assert!((value(&p)[0] - 0.2875).abs() < 1e-6, "{:?}", value(&p));
        let state = sgd.state();
        assert_eq!(state.len(), 1);
        assert_eq!(state[0].0, "momentum.p");
        assert!((value(&state[0].1)[0] - 4.625).abs() < 1e-6);

        // Restoring into a fresh optimizer continues identically; a misshapen buffer is refused.
        let q = param(&[0.2875]);
        let mut restored = Sgd::new(vec![("p".into(), q.shallow_clone())], 0.5);
        restored.load_state(&state).unwrap();
        (&q * 2.0).sum(Kind::Float).backward();
        restored.step(0.1, 0.9);
        (&p * 2.0).sum(Kind::Float).backward();
        sgd.zero_grad();
        (&p * 2.0).sum(Kind::Float).backward();
        sgd.step(0.1, 0.9);
        assert_eq!(value(&q), value(&p));
        let bad = vec![("momentum.p".to_owned(), Tensor::from_slice(&[1.0f32, 2.0]))];
        let err = restored.load_state(&bad).unwrap_err().to_string();
        assert!(err.contains("momentum.p") && err.contains("[1]") && err.contains("[2]"), "{err}");
    }

    #[test]
    fn adam_first_steps_match_hand_computation() {
        // With a constant gradient g the bias-corrected first step is lr * g / (|g| + eps').
        let p = param(&[0.0, 0.0]);
        let mut adam = Adam::new(vec![("a".into(), p.shallow_clone())], (0.5, 0.999), 0.0);
        (&p * Tensor::from_slice(&[3.0f32, -0.5])).sum(Kind::Float).backward();
        adam.step(0.01);
        let got = value(&p);
        assert!((got[0] + 0.01).abs() < 1e-6 && (got[1] - 0.01).abs() < 1e-6, "{got:?}");
        // Second step, same gradient: m_hat = g and v_hat = g^2 again, so another lr * sign(g).
        adam.step(0.01);
        let got = value(&p);
        assert!((got[0] + 0.02).abs() < 1e-6 && (got[1] - 0.02).abs() < 1e-6, "{got:?}");
        assert_eq!(adam.steps(), 2);
        assert_eq!(adam.state().len(), 2);
    }
}
