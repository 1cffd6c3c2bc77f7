//! The runtime's error type.

use bnas_models::SpecError;

use crate::data::DataError;
use crate::device::GpuError;
use crate::format::FormatError;
use crate::kernels::KernelError;

/// Everything that can go wrong loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The `.bnas` file is malformed.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// An input image or dataset could not be read.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The GPU backend cannot run the model.
    #[error(transparent)]
    Gpu(#[from] GpuError),
    /// The requested kernels are not available.
    #[error(transparent)]
    Kernel(#[from] KernelError),
    /// The stored network description does not build.
    #[error("the model's network description does not build")]
    Spec(#[from] SpecError),
    /// A tensor holds values the network cannot use.
    #[error("tensor `{name}`: {problem}")]
    BadTensor {
        /// Tensor name.
        name: String,
        /// What is wrong.
        problem: String,
    },
    /// A layer the planner cannot run.
    #[error("layer `{layer}`: {problem}")]
    Unsupported {
        /// Layer name.
        layer: String,
        /// What is not supported.
        problem: String,
    },
    /// The input buffer does not match the model's input shape.
    #[error("input has {found} values, expected {expected} ({batch} x {shape})")]
    InputSize {
        /// Values given.
        found: usize,
        /// Values expected.
        expected: usize,
        /// Batch size.
        batch: usize,
        /// Per-sample shape, `CxHxW`.
        shape: String,
    },
    /// The activation arena does not fit in memory.
    #[error(
        "the activations of a batch of {batch} need {values} f32 values, more than this machine can allocate"
    )]
    OutOfMemory {
        /// Batch size.
        batch: usize,
        /// Values the arena needs.
        values: u128,
    },
    /// A batch of zero samples.
    #[error("the batch is empty")]
    EmptyBatch,
    /// The worker threads could not be started.
    #[error("cannot start {threads} worker threads: {message}")]
    Threads {
        /// Requested thread count.
        threads: usize,
        /// The cause.
        message: String,
    },
}
