//! The CPU backend: runs a [`Plan`] with the SIMD kernels of [`crate::kernels`] (binary and
//! float convolutions) and rayon for threads (the caller's pool). It owns the weights that its
//! kernels want in another layout than the plan's ([`PackedWeights`]) and the buffers of each
//! batch size ([`Arena`]). Independent steps next to each other in the plan (the ops of one cell
//! node, say) run side by side ([`schedule`]).

mod binary;
mod float;
mod kernel_rows;
mod pool;
mod schedule;
mod tensor_ops;

use std::time::Instant;

pub use kernel_rows::KernelRowFilters;

use crate::kernels::float_conv::pack_filters;
use crate::kernels::Isa;
use crate::plan::{BinaryConv, FloatConv, Plan, Step, StepOp};
use crate::trace::Observer;

/// Vector instructions (one 16-float or 8-word operation each, roughly) that a parallel task
/// must hold to pay for handing it to another thread: waking a rayon worker and joining it
/// costs about as much as this much work on one core (a few microseconds). Below it a layer runs
/// on the calling thread alone, which is what keeps small models from getting slower with a
/// second thread.
const MIN_TASK_VECTOR_OPS: usize = 1 << 14;

/// The fewest items per parallel task for items of `vector_ops` each (see
/// [`MIN_TASK_VECTOR_OPS`]).
fn min_task_len(vector_ops: usize) -> usize {
    (MIN_TASK_VECTOR_OPS / vector_ops.max(1)).max(1)
}

/// The buffers of one run at one batch size, reused across runs.
#[derive(Debug)]
pub struct Arena {
    batch: usize,
    slots: Vec<Vec<f32>>,
    /// One set per step that runs at the same time as others (at least one).
    scratch: Vec<StepScratch>,
}

/// The working buffers of one running step.
#[derive(Debug, Default)]
struct StepScratch {
    /// A binary conv's packed input.
    packed: BinaryScratch,
    /// A float conv's transformed input.
    float: Vec<f32>,
}

/// The buffers of a binary conv: its packed input pixels and, for kernel-row convs, its packed
/// kernel rows.
#[derive(Debug, Default)]
pub struct BinaryScratch {
    pixels: Vec<u64>,
    rows: Vec<u64>,
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
        Some(Arena { batch, slots, scratch: vec![StepScratch::default()] })
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

/// The CPU's own weights of one step, built at load.
#[derive(Debug)]
enum StepWeights {
    /// A float conv's packed filters.
    Float(FloatFilters),
    /// A narrow binary conv's kernel-row filters.
    KernelRows(KernelRowFilters),
    /// Nothing: the step reads the plan's tensors as they are.
    Plan,
}

/// The CPU's own weights for a plan, built at load: the packed filters of each float conv and
/// the kernel-row filters of each narrow binary conv, indexed by step (other binary filters are
/// used in the plan's layout).
#[derive(Debug)]
pub struct PackedWeights {
    steps: Vec<StepWeights>,
}

impl StepWeights {
    /// A binary conv's kernel-row filters, if it has them.
    fn kernel_rows(&self) -> Option<&KernelRowFilters> {
        match self {
            StepWeights::KernelRows(filters) => Some(filters),
            _ => None,
        }
    }
}

impl PackedWeights {
    /// Packs the convs of `plan`.
    pub fn pack(plan: &Plan) -> PackedWeights {
        let steps = plan
            .steps
            .iter()
            .map(|step| match &step.op {
                StepOp::FloatConv(conv) => StepWeights::Float(FloatFilters::pack(conv)),
                StepOp::BinaryConv(conv) => {
                    KernelRowFilters::pack(conv).map_or(StepWeights::Plan, StepWeights::KernelRows)
                }
                _ => StepWeights::Plan,
            })
            .collect();
        PackedWeights { steps }
    }
}

/// Runs one binary conv on NHWC `input` of `batch` samples into NHWC `output`, with its
/// kernel-row filters if it has them ([`KernelRowFilters::pack`]); `packed` receives the
/// bit-packed input. Runs on the current rayon pool.
pub fn binary_conv(
    conv: &BinaryConv,
    kernel_rows: Option<&KernelRowFilters>,
    isa: Isa,
    input: &[f32],
    batch: usize,
    packed: &mut BinaryScratch,
    output: &mut [f32],
) {
    binary::pack_input(conv, isa, input, batch, &mut packed.pixels);
    if let Some(filters) = kernel_rows {
        kernel_rows::pack_rows(&conv.window, filters.row_words, &packed.pixels, batch, &mut packed.rows);
    }
    binary::run(conv, isa, packed.view(kernel_rows), batch, output);
}

impl BinaryScratch {
    /// The packed input as the GEMM of a conv with `kernel_rows` reads it.
    fn view<'a>(&'a self, kernel_rows: Option<&'a KernelRowFilters>) -> binary::Packed<'a> {
        binary::Packed { pixels: &self.pixels, rows: kernel_rows.map(|f| (f, &self.rows[..])) }
    }
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
/// to use. With an `observer`, steps run one at a time (it wants each step's own time).
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
    assert_eq!(weights.steps.len(), plan.steps.len(), "execute: weights of another plan");
    let batch = arena.batch;
    let shape = plan.input;
    tensor_ops::nchw_to_nhwc(
        input,
        shape.channels,
        shape.height * shape.width,
        &mut arena.slots[plan.input_slot],
    );
    let width = if observer.is_some() { 1 } else { rayon::current_num_threads() };
    let mut first = 0;
    while first < plan.steps.len() {
        let len = schedule::independent_run(&plan.steps[first..], width);
        let (steps, weights) = (&plan.steps[first..first + len], &weights.steps[first..first + len]);
        if len == 1 {
            run_observed(&steps[0], &weights[0], isa, arena, observer.as_deref_mut());
        } else {
            run_side_by_side(steps, weights, isa, arena);
        }
        first += len;
    }
    &arena.slots[plan.output_slot][..batch * plan.classes]
}

/// Runs one step alone and reports it to `observer`.
fn run_observed<'o>(
    step: &Step,
    weights: &StepWeights,
    isa: Isa,
    arena: &mut Arena,
    observer: Option<&mut (dyn Observer + 'o)>,
) {
    let started = Instant::now();
    let mut output = std::mem::take(&mut arena.slots[step.output]);
    let inputs: Vec<&[f32]> = step.inputs.iter().map(|&s| arena.slots[s].as_slice()).collect();
    let scratch = &mut arena.scratch[0];
    run_step(step, weights, isa, arena.batch, &inputs, &mut output, scratch);
    let elapsed = started.elapsed();
    if let Some(observer) = observer {
        if let (StepOp::BinaryConv(conv), true) = (&step.op, observer.wants_binary_detail()) {
            let packed = scratch.packed.view(weights.kernel_rows());
            let integer = binary::integer_outputs(conv, isa, packed, arena.batch);
            observer.binary_conv(step, &scratch.packed.pixels, integer);
        }
        let len = arena.batch * step.shape.height * step.shape.width * step.shape.channels;
        observer.step_done(step, &output[..len], elapsed);
    }
    arena.slots[step.output] = output;
}

/// Runs mutually independent `steps` at the same time, each as a task of the current pool
/// (whose idle threads also take parts of the larger steps).
fn run_side_by_side(steps: &[Step], weights: &[StepWeights], isa: Isa, arena: &mut Arena) {
    if arena.scratch.len() < steps.len() {
        arena.scratch.resize_with(steps.len(), StepScratch::default);
    }
    let mut outputs: Vec<Vec<f32>> =
        steps.iter().map(|step| std::mem::take(&mut arena.slots[step.output])).collect();
    let (slots, batch) = (&arena.slots, arena.batch);
    rayon::scope(|scope| {
        for (((step, weights), output), scratch) in
            steps.iter().zip(weights).zip(&mut outputs).zip(&mut arena.scratch)
        {
            let inputs: Vec<&[f32]> = step.inputs.iter().map(|&s| slots[s].as_slice()).collect();
            scope.spawn(move |_| run_step(step, weights, isa, batch, &inputs, output, scratch));
        }
    });
    for (step, output) in steps.iter().zip(outputs) {
        arena.slots[step.output] = output;
    }
}

/// Computes `step` of `batch` samples from its `inputs` into `output`.
fn run_step(
    step: &Step,
    weights: &StepWeights,
    isa: Isa,
    batch: usize,
    inputs: &[&[f32]],
    output: &mut [f32],
    scratch: &mut StepScratch,
) {
    debug_assert!(!step.inputs.contains(&step.output), "a step never writes a slot it reads");
    let out_pixels = batch * step.shape.height * step.shape.width;
    match (&step.op, weights) {
        (StepOp::BinaryConv(conv), _) => {
            binary_conv(conv, weights.kernel_rows(), isa, inputs[0], batch, &mut scratch.packed, output)
        }
        (StepOp::FloatConv(conv), StepWeights::Float(filters)) => {
            float_conv(conv, filters, isa, inputs[0], batch, &mut scratch.float, output)
        }
        (StepOp::FloatConv(_), _) => unreachable!("PackedWeights::pack packs every float conv"),
        (StepOp::MaxPool(window), _) => pool::run(window, pool::Reduce::Max, inputs[0], batch, output),
        (StepOp::AvgPool(window), _) => pool::run(window, pool::Reduce::Mean, inputs[0], batch, output),
        (StepOp::Add, _) => tensor_ops::add(inputs, &mut output[..out_pixels * step.shape.channels]),
        (StepOp::Concat(parts), _) => tensor_ops::concat(parts, inputs, out_pixels, output),
        (StepOp::GlobalAvgPool { pixels }, _) => {
            tensor_ops::global_avg_pool(inputs[0], batch, *pixels, step.shape.channels, output)
        }
        (StepOp::Linear(linear), _) => tensor_ops::linear(linear, inputs[0], batch, output),
        (StepOp::Zeros, _) => output[..out_pixels * step.shape.channels].fill(0.0),
    }
}
