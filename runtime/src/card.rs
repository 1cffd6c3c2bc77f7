//! `model.json`, the model card of a training checkpoint directory: what the trainer writes next
//! to the weights and what the exporter reads to build a `.bnas` without libtorch.

use std::path::PathBuf;

use bnas_models::NetworkConfig;
use serde::{Deserialize, Serialize};

use crate::data::Preprocess;

/// The card's format tag.
pub const FORMAT: &str = "bnas-checkpoint";
/// The card's format version.
pub const VERSION: u32 = 1;

/// The data a model was trained on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetInfo {
    /// Format name: fashion-mnist, mnist, cifar10 or folder.
    pub kind: String,
    /// Directory it was read from.
    pub root: PathBuf,
}

/// `model.json`: everything needed to rebuild the network and feed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCard {
    /// Always [`FORMAT`].
    pub format: String,
    /// Always [`VERSION`].
    pub version: u32,
    /// The network configuration (its genotype in JSON form).
    pub config: NetworkConfig,
    /// The genotype in the reference's notation.
    pub genotype: String,
    /// The image-to-tensor preprocessing.
    pub preprocess: Preprocess,
    /// Class names by label.
    pub class_names: Vec<String>,
    /// The training data.
    pub dataset: DatasetInfo,
}

impl ModelCard {
    /// A card for `config` trained on `dataset`.
    pub fn new(
        config: NetworkConfig,
        preprocess: Preprocess,
        class_names: Vec<String>,
        dataset: DatasetInfo,
    ) -> ModelCard {
        let genotype = config.genotype.to_reference();
        ModelCard {
            format: FORMAT.to_owned(),
            version: VERSION,
            config,
            genotype,
            preprocess,
            class_names,
            dataset,
        }
    }

    /// Why the card is not one this version reads, if it is not.
    pub fn format_problem(&self) -> Option<String> {
        (self.format != FORMAT || self.version != VERSION).then(|| {
            format!("format {} version {}, expected {FORMAT} version {VERSION}", self.format, self.version)
        })
    }
}
