//! Inference for BNAS binary networks without libtorch.
//!
//! Binary convolutions run as XNOR and popcount over bit-packed weights and activations
//! ([`kernels`]: scalar, AVX2, AVX-512 VPOPCNTDQ); the layers kept in full precision run as
//! float kernels. A model is a `.bnas` file ([`format`](mod@format)) whose graph section holds the
//! `bnas-models` network description; [`plan`] turns it into steps over a planned arena and
//! [`cpu`] runs them with rayon, or the wgpu backend (the `gpu` feature, [`Device::Gpu`]) with
//! WGSL compute kernels. [`data`] reads the data sets and owns the one preprocessing
//! function that training, `predict` and `eval` share. This crate must not depend on libtorch,
//! so that deployed inference carries no PyTorch runtime.
//!
//! ```no_run
//! use bnas_runtime::{data, Model};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let model = Model::load("bnas-a.bnas")?;
//! let image = data::decode_image("cat.png".as_ref())?;
//! for p in model.predict(&image, 5)? {
//!     println!("{} {:.3}", p.label, p.score);
//! }
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod arena_cache;
pub mod assemble;
mod atomic_file;
pub mod binarize;
pub mod bit_layout;
pub mod card;
#[cfg(feature = "cli")]
pub mod cli;
pub mod cpu;
pub mod data;
mod device;
pub mod diagnostics;
mod error;
pub mod format;
#[cfg(feature = "gpu")]
mod gpu;
pub mod init;
pub mod kernels;
mod model;
pub mod plan;
pub mod report;
#[cfg(feature = "serve")]
pub mod serve;
mod trace;

pub use atomic_file::{write_atomic, AtomicFile};
pub use device::{Backend, Device, GpuAdapter, GpuError};
pub use error::RuntimeError;
pub use model::{Model, Options, Prediction};
pub use trace::{BinaryTrace, LayerTrace, Observer, Trace};
