//! The profiled run behind `bnas-run bench` and `bnas bench`: each plan step's median wall time
//! over several passes, taken from passes of their own (on the GPU each step is then submitted
//! and waited for alone, which a latency pass must not pay for).

use std::time::Duration;

use crate::plan::{Step, StepOp};
use crate::trace::Observer;
use crate::{Model, RuntimeError};

/// Per-step wall times of every pass.
struct StepTimes {
    passes: Vec<Vec<Duration>>,
}

impl Observer for StepTimes {
    fn step_done(&mut self, _step: &Step, _output: &[f32], elapsed: Duration) {
        self.passes.last_mut().expect("a pass was started").push(elapsed);
    }
}

/// The median wall time of each of `model`'s plan steps over `passes` observed passes of
/// `batch` samples of `input` (NCHW).
pub fn step_medians(
    model: &Model,
    input: &[f32],
    batch: usize,
    passes: usize,
) -> Result<Vec<Duration>, RuntimeError> {
    let steps = model.plan().steps.len();
    let mut times = StepTimes { passes: Vec::with_capacity(passes) };
    for _ in 0..passes {
        times.passes.push(Vec::with_capacity(steps));
        model.run_observed(input, batch, Some(&mut times))?;
    }
    Ok((0..steps)
        .map(|i| quantile(&mut times.passes.iter().map(|pass| pass[i]).collect::<Vec<_>>(), 0.5))
        .collect())
}

/// The `q`-quantile (0..=1) of `values`, nearest rank; zero for no values.
pub fn quantile(values: &mut [Duration], q: f64) -> Duration {
    if values.is_empty() {
        return Duration::ZERO;
    }
    values.sort_unstable();
    let rank = ((values.len() as f64 * q).ceil() as usize).clamp(1, values.len());
    values[rank - 1]
}

/// A step's kind as a report names it: `binary conv`, `float conv`, `max pool`, ...
pub fn op_name(op: &StepOp) -> &'static str {
    match op {
        StepOp::BinaryConv(_) => "binary conv",
        StepOp::FloatConv(_) => "float conv",
        StepOp::MaxPool(_) => "max pool",
        StepOp::AvgPool(_) => "avg pool",
        StepOp::Add => "add",
        StepOp::Concat(_) => "concat",
        StepOp::GlobalAvgPool { .. } => "global pool",
        StepOp::Linear(_) => "linear",
        StepOp::Zeros => "zeros",
    }
}
