//! The graph section: the network description, its preprocessing and provenance, stored as JSON,
//! and the consistency checks every file must pass before its tensors are trusted.

use bnas_models::NetworkConfig;
use serde::{Deserialize, Serialize};

use super::error::FormatError;
use crate::data::Preprocess;

/// Everything a `.bnas` file says besides its tensors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    /// The network; its spec names and shapes the tensors.
    pub config: NetworkConfig,
    /// How an image becomes the network input.
    pub preprocess: Preprocess,
    /// One name per output class, in logit order.
    pub class_names: Vec<String>,
    /// The epsilon of every BatchNorm layer.
    pub bn_eps: f32,
    /// Who wrote the file, from what.
    pub provenance: Provenance,
    /// How a trained model was trained and how it scored; absent for random weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training: Option<TrainingRecord>,
}

/// The training behind a model, as its checkpoint recorded it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingRecord {
    /// The data set: fashion-mnist, mnist, cifar10 or folder.
    pub dataset: String,
    /// Epochs completed.
    pub epochs: usize,
    /// Test top-1 accuracy (0..1) the trainer measured on the checkpoint, if it did.
    pub top1: Option<f64>,
    /// Test top-5 accuracy (0..1), if measured.
    pub top5: Option<f64>,
}

/// Where a `.bnas` file came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// The program that wrote it, e.g. `bnas-export 0.1.0`.
    pub producer: String,
    /// What it was made from, e.g. a checkpoint path.
    pub source: String,
    /// Creation time, seconds since the Unix epoch.
    pub created_unix: u64,
}

impl Metadata {
    /// Checks that the config builds a network and that the other fields agree with it: one class
    /// name per class, preprocessing producing the config's input shape, one finite mean and one
    /// finite positive std per channel, and a finite positive `bn_eps`.
    pub fn validate(&self) -> Result<(), FormatError> {
        let config = &self.config;
        config.spec().map_err(|source| FormatError::InvalidConfig { source })?;
        let inconsistent = |what: String| Err(FormatError::InconsistentMetadata { what });
        if self.class_names.len() != config.classes {
            return inconsistent(format!(
                "{} class names for {} classes",
                self.class_names.len(),
                config.classes
            ));
        }
        let pre = &self.preprocess;
        let channels = pre.color.channels();
        let input = config.input;
        if (channels, pre.height, pre.width) != (input.channels, input.height, input.width) {
            return inconsistent(format!(
                "preprocessing gives {channels}x{}x{} but the network input is {input}",
                pre.height, pre.width
            ));
        }
        if let Err(e) = pre.validate() {
            return inconsistent(format!("preprocessing: {e}"));
        }
        if !(self.bn_eps.is_finite() && self.bn_eps > 0.0) {
            return inconsistent(format!("bn_eps {} is not finite and positive", self.bn_eps));
        }
        Ok(())
    }

    /// Parses and validates a graph section.
    pub(crate) fn from_json(bytes: &[u8]) -> Result<Metadata, FormatError> {
        let metadata: Metadata =
            serde_json::from_slice(bytes).map_err(|e| FormatError::GraphJson { message: e.to_string() })?;
        metadata.validate()?;
        Ok(metadata)
    }
}
