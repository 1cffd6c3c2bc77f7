//! PyTorch checkpoint reader, without libtorch and without running Python.
//!
//! [`read_state_dict`] reads a `torch.save` file in either serialization: the legacy one of
//! PyTorch before 1.6 (`legacy`; the reference's released checkpoints) and the zip archive of
//! later versions (`zip_archive`). Both carry a pickle, which a small virtual machine
//! (`pickle`) turns into inert data (it runs no code and imports nothing); the tensors of the
//! state dict are then rebuilt from their storages (`state_dict`, `tensor`).
//!
//! ```no_run
//! use bnas_export::torch::read_state_dict;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! for (key, tensor) in read_state_dict("weights.pt".as_ref())? {
//!     println!("{key}: {:?} {}", tensor.shape, tensor.dtype());
//! }
//! # Ok(()) }
//! ```
//!
//! Malformed input gives a [`TorchError`], never a panic, and allocations stay proportional to
//! the file's length.

mod error;
mod legacy;
mod pickle;
mod state_dict;
mod tensor;
mod value;
mod zip_archive;

use std::path::Path;

pub use error::{StorageFailure, Stream, TorchError};
pub use tensor::{TorchDType, TorchTensor, TorchValues};

/// Reads the state dict of a `torch.save` file.
///
/// The file may use either serialization (legacy or zip). The state dict is the top-level dict
/// of tensors, or the dict under the key `state_dict` when the top level is a dict holding one
/// (the reference's ImageNet checkpoints also hold `amp`, `optimizer`, `scheduler`, `epoch` and
/// `best_acc_top1`, which are ignored). Keys come in file order and unchanged: a `module.`
/// prefix from `DataParallel` is the caller's to strip. Every value of the state dict must be a
/// tensor; parameters and tensors of any stride, storage offset or shared storage are returned
/// contiguous, row-major.
pub fn read_state_dict(path: &Path) -> Result<Vec<(String, TorchTensor)>, TorchError> {
    let bytes = std::fs::read(path).map_err(|source| TorchError::Io { path: path.to_owned(), source })?;
    read_state_dict_bytes(&bytes)
}

/// [`read_state_dict`] on the bytes of a checkpoint.
pub fn read_state_dict_bytes(bytes: &[u8]) -> Result<Vec<(String, TorchTensor)>, TorchError> {
    match bytes {
        // A zip local file header (or, for an empty archive, its end record).
        [b'P', b'K', 3, 4, ..] | [b'P', b'K', 5, 6, ..] => zip_archive::read(bytes),
        // PROTO (protocol 2 and later) or the text LONG of protocols 0 and 1: a legacy file
        // starts with a pickle of the magic number.
        [0x80, ..] | [b'L', ..] => legacy::read(bytes),
        _ => Err(TorchError::NotACheckpoint { found: bytes.iter().take(4).copied().collect() }),
    }
}
