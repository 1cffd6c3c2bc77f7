//! BatchNorm2d with PyTorch's state_dict entries (`weight`, `bias`, `running_mean`,
//! `running_var`, `num_batches_tracked`), registered in a VarStore under a canonical prefix.

use tch::{nn, Kind, Tensor};

use crate::names::sub_path;

/// PyTorch's default running-statistics momentum.
const MOMENTUM: f64 = 0.1;
/// PyTorch's default epsilon.
const EPS: f64 = 1e-5;

/// A BatchNorm2d, affine (gamma and beta) or not.
#[derive(Debug)]
pub struct BatchNorm {
    weight: Option<Tensor>,
    bias: Option<Tensor>,
    running_mean: Tensor,
    running_var: Tensor,
    num_batches_tracked: Tensor,
}

impl BatchNorm {
    /// Registers `<prefix>.{weight,bias,}running_mean,running_var,num_batches_tracked` under
    /// `root` and initializes them as PyTorch does.
    pub fn new(root: &nn::Path, prefix: &str, channels: usize, affine: bool) -> BatchNorm {
        let c = channels as i64;
        let path = sub_path(root, prefix);
        let (weight, bias) = if affine {
            (Some(path.ones("weight", &[c])), Some(path.zeros("bias", &[c])))
        } else {
            (None, None)
        };
        let running_mean = path.zeros_no_train("running_mean", &[c]);
        let running_var = path.ones_no_train("running_var", &[c]);
        let counter = Tensor::zeros([] as [i64; 0], (Kind::Int64, path.device()));
        let num_batches_tracked = path.add("num_batches_tracked", counter, false);
        BatchNorm { weight, bias, running_mean, running_var, num_batches_tracked }
    }

    /// Normalizes `x` (NCHW): with batch statistics while training (updating the running
    /// ones), with the running statistics otherwise.
    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        if train {
            tch::no_grad(|| {
                let _ = self.num_batches_tracked.shallow_clone().f_add_scalar_(1);
            });
        }
        Tensor::batch_norm(
            x,
            self.weight.as_ref(),
            self.bias.as_ref(),
            Some(&self.running_mean),
            Some(&self.running_var),
            train,
            MOMENTUM,
            EPS,
            false,
        )
    }
}
