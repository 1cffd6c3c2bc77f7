//! BNAS architecture search and training on libtorch, through [`tch`].
//!
//! This crate holds everything that needs autograd: the search over binary cell architectures
//! and the training of the networks it finds. It runs on the CPU by default; with the `cuda`
//! feature it uses a CUDA device when libtorch sees one (see [`device::select_device`]).
//!
//! libtorch 2.11.0 comes from `scripts/setup.sh`, which installs it into `.deps/libtorch`;
//! `.cargo/config.toml` points `LIBTORCH` there and the crate's build script embeds its run
//! path, so tests and binaries start without `LD_LIBRARY_PATH`.
#![warn(missing_docs)]

pub mod device;

pub use device::select_device;
