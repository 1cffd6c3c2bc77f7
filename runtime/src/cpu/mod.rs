//! The CPU backend: runs a [`Plan`] with the SIMD kernels of [`crate::kernels`] (binary and
//! float convolutions) and rayon for threads (the caller's pool).

mod binary_conv;
mod float_conv;
mod pool;
mod tensor_ops;

use std::time::{Duration, Instant};

use crate::kernels::Isa;
use crate::plan::{BinaryConv, FloatConv, Plan, Step, StepOp};

pub(crate) use tensor_ops::nhwc_to_nchw;

/// The buffers of one run at one batch size, reused across runs.
#[derive(Debug)]
pub struct Arena {
    batch: usize,
    slots: Vec<Vec<f32>>,
    packed: Vec<u64>,
    scratch: Vec<f32>,
}

impl Arena {
    /// Allocates the plan's slots for `batch` samples; `None` when they do not fit in memory
    /// (a hostile file can describe an enormous network).
    pub fn new(plan: &Plan, batch: usize) -> Option<Arena> {
        let slots = plan
            .slots
            .iter()
            .map(|&len| {
                let len = len.checked_mul(batch)?;
                let mut slot = Vec::new();
                slot.try_reserve_exact(len).ok()?;
                slot.resize(len, 0.0);
                Some(slot)
            })
            .collect::<Option<_>>()?;
        Some(Arena { batch, slots, packed: Vec::new(), scratch: Vec::new() })
    }

    /// The batch size it was allocated for.
    pub fn batch(&self) -> usize {
        self.batch
    }
}

/// Watches a run step by step (profiling, tracing).
pub trait Observer: Send {
    /// Called after each step with its NHWC output and its wall time.
    fn step_done(&mut self, step: &Step, output: &[f32], elapsed: Duration);

    /// Whether [`binary_conv`](Self::binary_conv) should be called (it costs a second pass).
    fn wants_binary_detail(&self) -> bool {
        false
    }

    /// Called for each binary conv with its packed input (pixels x words, NHWC) and its
    /// integer outputs `sum_valid sign(x) * sign(w)` (NHWC).
    fn binary_conv(&mut self, _step: &Step, _packed: &[u64], _integer_outputs: Vec<i32>) {}
}

/// Runs one binary conv on NHWC `input` of `batch` samples into NHWC `output`; `packed`
/// receives the bit-packed input. Runs on the current rayon pool.
pub fn binary_conv(
    conv: &BinaryConv,
    isa: Isa,
    input: &[f32],
    batch: usize,
    packed: &mut Vec<u64>,
    output: &mut [f32],
) {
    binary_conv::pack_input(conv, isa, input, batch, packed);
    binary_conv::run(conv, isa, packed, batch, output);
}

/// Runs one float conv on NHWC `input` of `batch` samples into NHWC `output`; `scratch` holds
/// the transformed input. Runs on the current rayon pool.
pub fn float_conv(
    conv: &FloatConv,
    isa: Isa,
    input: &[f32],
    batch: usize,
    scratch: &mut Vec<f32>,
    output: &mut [f32],
) {
    float_conv::run(conv, isa, input, batch, scratch, output);
}

/// Runs `plan` on an NCHW input of `arena.batch()` samples (already checked for size) and
/// returns the logits, `batch x classes`. Call it inside the thread pool to use.
pub fn execute<'a>(
    plan: &Plan,
    isa: Isa,
    arena: &'a mut Arena,
    input: &[f32],
    mut observer: Option<&mut dyn Observer>,
) -> &'a [f32] {
    let batch = arena.batch;
    let shape = plan.input;
    tensor_ops::nchw_to_nhwc(
        input,
        shape.channels,
        shape.height * shape.width,
        &mut arena.slots[plan.input_slot],
    );
    for step in &plan.steps {
        let started = Instant::now();
        let mut output = std::mem::take(&mut arena.slots[step.output]);
        let inputs: Vec<&[f32]> = step.inputs.iter().map(|&s| arena.slots[s].as_slice()).collect();
        debug_assert!(!step.inputs.contains(&step.output), "a step never writes a slot it reads");
        let out_pixels = batch * step.shape.height * step.shape.width;
        match &step.op {
            StepOp::BinaryConv(conv) => {
                binary_conv(conv, isa, inputs[0], batch, &mut arena.packed, &mut output)
            }
            StepOp::FloatConv(conv) => {
                float_conv(conv, isa, inputs[0], batch, &mut arena.scratch, &mut output)
            }
            StepOp::MaxPool(window) => pool::run(window, pool::Reduce::Max, inputs[0], batch, &mut output),
            StepOp::AvgPool(window) => pool::run(window, pool::Reduce::Mean, inputs[0], batch, &mut output),
            StepOp::Add => tensor_ops::add(&inputs, &mut output[..out_pixels * step.shape.channels]),
            StepOp::Concat(parts) => tensor_ops::concat(parts, &inputs, out_pixels, &mut output),
            StepOp::GlobalAvgPool { pixels } => {
                tensor_ops::global_avg_pool(inputs[0], batch, *pixels, step.shape.channels, &mut output)
            }
            StepOp::Linear(linear) => tensor_ops::linear(linear, inputs[0], batch, &mut output),
            StepOp::Zeros => output[..out_pixels * step.shape.channels].fill(0.0),
        }
        let elapsed = started.elapsed();
        if let Some(observer) = observer.as_deref_mut() {
            if let (StepOp::BinaryConv(conv), true) = (&step.op, observer.wants_binary_detail()) {
                let integer = binary_conv::integer_outputs(conv, isa, &arena.packed, batch);
                observer.binary_conv(step, &arena.packed, integer);
            }
            observer.step_done(step, &output[..out_pixels * step.shape.channels], elapsed);
        }
        arena.slots[step.output] = output;
    }
    &arena.slots[plan.output_slot][..batch * plan.classes]
}
