//! Learning-rate (and momentum) schedules as pure functions of the step, so a resumed run
//! only needs the step count.

use std::f64::consts::PI;

use serde::{Deserialize, Serialize};

/// A schedule, evaluated per optimizer step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Schedule {
    /// The reference's CIFAR one-cycle (`utils.OneCycleLR`): over the first 90% of the steps
    /// the learning rate rises linearly from `min_lr` to `max_lr` and falls back while the
    /// momentum falls from 0.95 to 0.85 and rises back; over the last 10% the learning rate
    /// is annihilated to 1% of `min_lr`, the momentum stays at 0.95.
    OneCycle {
        /// Total steps.
        total_steps: usize,
        /// Starting (and end-of-cycle) learning rate.
        min_lr: f64,
        /// Peak learning rate.
        max_lr: f64,
    },
    /// Cosine annealing with warm restarts (the reference's ImageNet schedule), stepped per
    /// iteration: `lr = max_lr * (1 + cos(pi * (step mod period) / period)) / 2`.
    CosineRestarts {
        /// Steps per period.
        period_steps: usize,
        /// Learning rate at the start of each period.
        max_lr: f64,
        /// Constant momentum.
        momentum: f64,
    },
    /// Cosine annealing from `max_lr` to `min_lr` over `total_steps` (the search's weights).
    Cosine {
        /// Total steps.
        total_steps: usize,
        /// Starting learning rate.
        max_lr: f64,
        /// Final learning rate.
        min_lr: f64,
        /// Constant momentum.
        momentum: f64,
    },
}

/// One-cycle momentum range (the reference's defaults).
const MIN_MOMENTUM: f64 = 0.85;
const MAX_MOMENTUM: f64 = 0.95;
/// Fraction of the steps spent annihilating the learning rate.
const ANNIHILATION: f64 = 0.1;
/// The annihilation's end point, as a fraction of `min_lr`.
const REDUCE_FACTOR: f64 = 0.01;

impl Schedule {
    /// (learning rate, momentum) for the optimizer step with 0-based index `step`.
    pub fn at(&self, step: usize) -> (f64, f64) {
        match *self {
            Schedule::OneCycle { total_steps, min_lr, max_lr } => {
                let cycle = (total_steps as f64 * (1.0 - ANNIHILATION)) as usize;
                let half = cycle / 2;
                if step <= half {
                    let scale = if half == 0 { 1.0 } else { step as f64 / half as f64 };
                    (min_lr + (max_lr - min_lr) * scale, MAX_MOMENTUM - (MAX_MOMENTUM - MIN_MOMENTUM) * scale)
                } else if step <= cycle {
                    let scale = (step - half) as f64 / (cycle - half) as f64;
                    (max_lr - (max_lr - min_lr) * scale, MIN_MOMENTUM + (MAX_MOMENTUM - MIN_MOMENTUM) * scale)
                } else {
                    let scale = ((step - cycle) as f64 / (total_steps - cycle).max(1) as f64).min(1.0);
                    (min_lr - (min_lr - min_lr * REDUCE_FACTOR) * scale, MAX_MOMENTUM)
                }
            }
            Schedule::CosineRestarts { period_steps, max_lr, momentum } => {
                let t = (step % period_steps.max(1)) as f64 / period_steps.max(1) as f64;
                (max_lr * (1.0 + (PI * t).cos()) / 2.0, momentum)
            }
            Schedule::Cosine { total_steps, max_lr, min_lr, momentum } => {
                let t = (step as f64 / total_steps.max(1) as f64).min(1.0);
                (min_lr + (max_lr - min_lr) * (1.0 + (PI * t).cos()) / 2.0, momentum)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_cycle_matches_the_reference_shape() {
        // 100 steps: cycle 90, half 45.
        let s = Schedule::OneCycle { total_steps: 100, min_lr: 0.0025, max_lr: 0.05 };
        assert_eq!(s.at(0), (0.0025, 0.95));
        let (lr, m) = s.at(45);
        assert!((lr - 0.05).abs() < 1e-12 && (m - 0.85).abs() < 1e-12);
        let (lr, m) = s.at(90);
        assert!((lr - 0.0025).abs() < 1e-12 && (m - 0.95).abs() < 1e-12);
        let (lr, m) = s.at(100);
        assert!((lr - 0.000025).abs() < 1e-12 && m == 0.95);
    }

    #[test]
    fn cosine_restarts_and_cosine() {
        let s = Schedule::CosineRestarts { period_steps: 10, max_lr: 0.1, momentum: 0.9 };
        assert_eq!(s.at(0).0, 0.1);
        assert!((s.at(5).0 - 0.05).abs() < 1e-12);
        assert_eq!(s.at(10).0, 0.1);
        let s = Schedule::Cosine { total_steps: 4, max_lr: 0.025, min_lr: 0.001, momentum: 0.9 };
        assert_eq!(s.at(0).0, 0.025);
        assert!((s.at(2).0 - 0.013).abs() < 1e-12);
        assert!((s.at(4).0 - 0.001).abs() < 1e-12);
    }
}
