//! The exporter's error type.

use std::path::PathBuf;

use bnas_runtime::RuntimeError;

use crate::torch::TorchError;

/// Everything that can go wrong turning a checkpoint into a deployable model.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A checkpoint directory or file that is not what it should be.
    #[error("checkpoint {path}: {reason}")]
    Checkpoint {
        /// The file or directory.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A tensor the network needs is not in the checkpoint.
    #[error("{path}: tensor `{name}` is missing")]
    MissingTensor {
        /// The checkpoint.
        path: PathBuf,
        /// Its canonical name.
        name: String,
    },
    /// A tensor with the wrong shape or type.
    #[error("{path}: tensor `{name}`: {problem}")]
    BadTensor {
        /// The checkpoint.
        path: PathBuf,
        /// Its name.
        name: String,
        /// What is wrong.
        problem: String,
    },
    /// A PyTorch file could not be read.
    #[error(transparent)]
    Torch(#[from] TorchError),
    /// The runtime refused the model (its format writer or network description).
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}
