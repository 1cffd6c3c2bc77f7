//! Export of trained BNAS checkpoints.
//!
//! Converts a trained network, described by `bnas-models`, into the `.bnas` format that
//! `bnas-runtime` executes (bit-packed binary weights plus the full-precision layers) and into
//! ONNX for other runtimes. It reads checkpoints directly and does not depend on libtorch.

// The ONNX unit tests share the integration tests' support module, which names this crate.
#[cfg(test)]
extern crate self as bnas_export;

pub mod checkpoint;
mod error;
pub mod onnx;
pub mod onnx_runtime;
pub mod reference;
pub mod torch;

pub use checkpoint::from_checkpoint;
pub use error::ExportError;
pub use reference::from_reference;
