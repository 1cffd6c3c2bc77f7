//! The trainer's one error type: every failure says which file, tensor or setting is at fault.

use std::io;
use std::path::PathBuf;

use bnas_models::{GenotypeError, SpecError};
use bnas_runtime::data::DataError;
use thiserror::Error;

/// Why a search, a training run or an evaluation could not proceed.
#[derive(Debug, Error)]
pub enum TrainerError {
    /// libtorch reported an error.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    /// The network description is invalid.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// A genotype could not be built or read.
    #[error(transparent)]
    Genotype(#[from] GenotypeError),
    /// A data set could not be read.
    #[error(transparent)]
    Data(#[from] DataError),
    /// Reading or writing a file failed.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A JSON file of a checkpoint could not be parsed.
    #[error("{}: {message}", .path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
    /// A checkpoint directory is incomplete or inconsistent.
    #[error("checkpoint {}: {reason}", .path.display())]
    Checkpoint {
        /// The checkpoint directory.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A stored tensor is missing.
    #[error("{}: no tensor named {name}", .path.display())]
    MissingTensor {
        /// The safetensors file.
        path: PathBuf,
        /// The canonical name looked for.
        name: String,
    },
    /// A stored tensor has the wrong shape.
    #[error("tensor {name}: expected shape {expected:?}, found {found:?}")]
    TensorShape {
        /// The canonical name.
        name: String,
        /// The shape the network needs.
        expected: Vec<i64>,
        /// The stored shape.
        found: Vec<i64>,
    },
    /// A setting is out of range.
    #[error("invalid {field}: {reason}")]
    InvalidSetting {
        /// The setting (as its command-line flag).
        field: &'static str,
        /// Why it is refused.
        reason: String,
    },
    /// The data set does not fit the network.
    #[error("the data set has {data}, but the network expects {network}")]
    DataMismatch {
        /// What the data set provides (classes or image shape).
        data: String,
        /// What the network needs.
        network: String,
    },
    /// CUDA was asked for but libtorch sees no CUDA device.
    #[error("--device cuda: {reason}")]
    CudaUnavailable {
        /// Why no CUDA device can be used.
        reason: String,
    },
    /// The loss stopped being a finite number.
    #[error("the loss became {value} at epoch {epoch}, step {step}: lower the learning rate")]
    Diverged {
        /// The loss value.
        value: f64,
        /// The epoch (0-based).
        epoch: usize,
        /// The global step.
        step: usize,
    },
}

impl TrainerError {
    /// An [`Io`](Self::Io) error for `path`.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> TrainerError {
        let path = path.into();
        move |source| TrainerError::Io { path, source }
    }
}

/// The trainer's result type.
pub type Result<T, E = TrainerError> = std::result::Result<T, E>;
