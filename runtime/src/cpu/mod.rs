//! The CPU backend: runs a [`Plan`] with the SIMD kernels of [`crate::kernels`] (binary and
//! float convolutions) and rayon for threads (the caller's pool). It owns the weights that its
//! kernels want in another layout than the plan's ([`PackedWeights`]) and the buffers of each
//! batch size ([`Arena`]).

mod binary;
mod float;
mod pool;
mod tensor_ops;

use std::time::Instant;

use crate::kernels::float_conv::pack_filters;
use crate::kernels::Isa;
use crate::plan::{BinaryConv, FloatConv, Plan, StepOp};
use crate::trace::Observer;

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

impl crate::arena_cache::Arena for Arena {
    fn batch(&self) -> usize {
        self.batch
    }
}

/// A float conv's weights packed for the CPU's conv GEMM ([`pack_filters`]).
#[derive(Debug, Clone, PartialEq)]
pub struct FloatFilters(Vec<f32>);

impl FloatFilters {
    /// Packs the OIHW weights of `conv`.
    pub fn pack(conv: &FloatConv) -> FloatFilters {
        let w = &conv.window;
        FloatFilters(pack_filters(&conv.weight, w.out_channels, w.in_channels, w.kernel))
    }
}

/// The CPU's own weights for a plan, built at load: the packed filters of each float conv,
/// indexed by step (binary filters are used in the plan's layout).
#[derive(Debug)]
pub struct PackedWeights {
    float_filters: Vec<Option<FloatFilters>>,
}

impl PackedWeights {
    /// Packs the float convs of `plan`.
    pub fn pack(plan: &Plan) -> PackedWeights {
        let float_filters = plan
            .steps
            .iter()
            .map(|step| match &step.op {
                StepOp::FloatConv(conv) => Some(FloatFilters::pack(conv)),
                _ => None,
            })
            .collect();
        PackedWeights { float_filters }
    }
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
    binary::pack_input(conv, isa, input, batch, packed);
    binary::run(conv, isa, packed, batch, output);
}

/// Runs one float conv, with its `filters`, on NHWC `input` of `batch` samples into NHWC
/// `output`; `scratch` holds the transformed input. Runs on the current rayon pool.
///
/// # Panics
/// If `filters` were packed for another shape.
pub fn float_conv(
    conv: &FloatConv,
    filters: &FloatFilters,
    isa: Isa,
    input: &[f32],
    batch: usize,
    scratch: &mut Vec<f32>,
    output: &mut [f32],
) {
    float::run(conv, &filters.0, isa, input, batch, scratch, output);
}

/// Runs `plan` with its packed `weights` on an NCHW input of `arena.batch()` samples (already
/// checked for size) and returns the logits, `batch x classes`. Call it inside the thread pool
/// to use.
///
/// # Panics
/// If `weights` were packed for another plan.
pub fn execute<'a>(
    plan: &Plan,
    weights: &PackedWeights,
    isa: Isa,
    arena: &'a mut Arena,
    input: &[f32],
    mut observer: Option<&mut dyn Observer>,
) -> &'a [f32] {
    assert_eq!(weights.float_filters.len(), plan.steps.len(), "execute: weights of another plan");
    let batch = arena.batch;
    let shape = plan.input;
    tensor_ops::nchw_to_nhwc(
        input,
        shape.channels,
        shape.height * shape.width,
        &mut arena.slots[plan.input_slot],
    );
    for (step, filters) in plan.steps.iter().zip(&weights.float_filters) {
        let started = Instant::now();
        let mut output = std::mem::take(&mut arena.slots[step.output]);
        let inputs: Vec<&[f32]> = step.inputs.iter().map(|&s| arena.slots[s].as_slice()).collect();
        debug_assert!(!step.inputs.contains(&step.output), "a step never writes a slot it reads");
        let out_pixels = batch * step.shape.height * step.shape.width;
        match (&step.op, filters) {
            (StepOp::BinaryConv(conv), _) => {
                binary_conv(conv, isa, inputs[0], batch, &mut arena.packed, &mut output)
            }
            (StepOp::FloatConv(conv), Some(filters)) => {
                float_conv(conv, filters, isa, inputs[0], batch, &mut arena.scratch, &mut output)
            }
            (StepOp::FloatConv(_), None) => unreachable!("PackedWeights::pack packs every float conv"),
            (StepOp::MaxPool(window), _) => {
                pool::run(window, pool::Reduce::Max, inputs[0], batch, &mut output)
            }
            (StepOp::AvgPool(window), _) => {
                pool::run(window, pool::Reduce::Mean, inputs[0], batch, &mut output)
            }
            (StepOp::Add, _) => tensor_ops::add(&inputs, &mut output[..out_pixels * step.shape.channels]),
            (StepOp::Concat(parts), _) => tensor_ops::concat(parts, &inputs, out_pixels, &mut output),
            (StepOp::GlobalAvgPool { pixels }, _) => {
                tensor_ops::global_avg_pool(inputs[0], batch, *pixels, step.shape.channels, &mut output)
            }
            (StepOp::Linear(linear), _) => tensor_ops::linear(linear, inputs[0], batch, &mut output),
            (StepOp::Zeros, _) => output[..out_pixels * step.shape.channels].fill(0.0),
        }
        let elapsed = started.elapsed();
        if let Some(observer) = observer.as_deref_mut() {
            if let (StepOp::BinaryConv(conv), true) = (&step.op, observer.wants_binary_detail()) {
                let integer = binary::integer_outputs(conv, isa, &arena.packed, batch);
                observer.binary_conv(step, &arena.packed, integer);
            }
            observer.step_done(step, &output[..out_pixels * step.shape.channels], elapsed);
        }
        arena.slots[step.output] = output;
    }
    &arena.slots[plan.output_slot][..batch * plan.classes]
}
