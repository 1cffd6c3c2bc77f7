//! What `GET /v1/model` says about the served model: computed once, at start.

use std::path::Path;

use bnas_models::Summary;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::error::ServeError;
use crate::data::Preprocess;
use crate::Model;

/// The model's identity, input and cost, and how it runs.
#[derive(Debug, Clone, Serialize)]
pub(super) struct ModelInfo {
    /// The network's name, e.g. `bnas-a`.
    name: String,
    /// The `.bnas` file as given on the command line.
    file: String,
    /// SHA-256 of the file, as `sha256sum` prints it.
    sha256: String,
    /// Class names in logit order.
    classes: Vec<String>,
    /// `[C, H, W]` of one input sample (what `/v1/predict/tensor` takes).
    input_shape: [usize; 3],
    /// How an image becomes that input.
    preprocess: Preprocess,
    /// Per-sample cost, as `bnas-run summary` counts it.
    float_macs: u64,
    binary_macs: u64,
    ops: f64,
    params: u64,
    /// CPU kernels or GPU adapter.
    backend: String,
    threads: usize,
}

impl ModelInfo {
    /// Describes `model`, loaded from `path` (read again here to hash it).
    pub(super) fn new(model: &Model, path: &Path) -> Result<ModelInfo, ServeError> {
        let bytes =
            std::fs::read(path).map_err(|source| ServeError::ModelFile { path: path.to_owned(), source })?;
        let metadata = model.metadata();
        let input = metadata.config.input;
        let totals = Summary::of(model.spec()).totals;
        Ok(ModelInfo {
            name: metadata.config.name.clone(),
            file: path.display().to_string(),
            sha256: format!("{:x}", Sha256::digest(&bytes)),
            classes: metadata.class_names.clone(),
            input_shape: [input.channels, input.height, input.width],
            preprocess: metadata.preprocess.clone(),
            float_macs: totals.float_macs,
            binary_macs: totals.binary_macs,
            ops: totals.ops,
            params: totals.params,
            backend: model.backend().to_string(),
            threads: model.threads(),
        })
    }
}
