//! BNAS architecture search and training on libtorch, through [`tch`].
//!
//! This crate holds everything that needs autograd: the search over binary cell architectures
//! ([`search`]) and the training of the networks it finds ([`train`]), with the binary layers of
//! reference §1 ([`binary`]), the network built from a `bnas-models` spec ([`network`]), optimizers
//! whose state can be saved ([`optim`]), learning-rate schedules ([`schedule`]), training
//! augmentations ([`augment`]) and self-contained checkpoint directories ([`checkpoint`]).
//! It runs on the CPU by default; with the `cuda` feature it uses a CUDA device when libtorch
//! sees one (see [`device`]).
//!
//! libtorch 2.11.0 comes from `scripts/setup.sh`, which installs it into `.deps/libtorch`;
//! `.cargo/config.toml` points `LIBTORCH` there and the crate's build script embeds its run
//! path, so tests and binaries start without `LD_LIBRARY_PATH`.
#![warn(missing_docs)]

pub mod augment;
pub mod batch_norm;
pub mod binary;
pub mod checkpoint;
pub mod device;
mod error;
pub mod eval;
pub mod loader;
pub mod metrics;
mod names;
pub mod network;
pub mod optim;
pub mod schedule;
pub mod search;
pub mod train;

pub use device::{select_device, DeviceChoice};
pub use error::{Result, TrainerError};
