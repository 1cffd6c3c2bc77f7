//! Trainer checkpoints to `.bnas`: a checkpoint directory (`model.json`, `weights.safetensors`,
//! `state.json`) alone is enough; it is read without libtorch.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use bnas_runtime::assemble::assemble;
use bnas_runtime::card::ModelCard;
use bnas_runtime::format::{FloatStorage, Metadata, Provenance, TrainingRecord, Writer};
use bnas_runtime::init::BN_EPS;
use safetensors::{Dtype, SafeTensors};
use serde::Deserialize;

use crate::error::ExportError;

/// The fields of the trainer's `state.json` that the export records.
#[derive(Debug, Deserialize)]
struct RunState {
    epochs_done: usize,
    step: usize,
    top1: Option<f64>,
    top5: Option<f64>,
}

fn read(path: &Path) -> Result<Vec<u8>, ExportError> {
    std::fs::read(path).map_err(|source| ExportError::Io { path: path.to_owned(), source })
}

fn json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, ExportError> {
    serde_json::from_slice(&read(path)?)
        .map_err(|e| ExportError::Checkpoint { path: path.to_owned(), reason: e.to_string() })
}

/// Seconds since the Unix epoch, for provenance.
pub(crate) fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A writer holding the model of the checkpoint in `dir`: binary convs binarized from their latent
/// weights as training evaluates them, float layers and BatchNorm statistics as stored (float
/// weights in `storage`), and the card's network, preprocessing, class names and data set, with
/// the accuracy `state.json` recorded.
pub fn from_checkpoint(dir: &Path, storage: FloatStorage) -> Result<Writer, ExportError> {
    let card_path = dir.join("model.json");
    if !card_path.is_file() {
        return Err(ExportError::Checkpoint {
            path: dir.to_owned(),
            reason: "no model.json: not a checkpoint directory".into(),
        });
    }
    let card: ModelCard = json(&card_path)?;
    if let Some(reason) = card.format_problem() {
        return Err(ExportError::Checkpoint { path: card_path, reason });
    }
    let state: RunState = json(&dir.join("state.json"))?;
    let weights_path = dir.join("weights.safetensors");
    let bytes = read(&weights_path)?;
    let tensors = SafeTensors::deserialize(&bytes)
        .map_err(|e| ExportError::Checkpoint { path: weights_path.clone(), reason: e.to_string() })?;
    let accuracy = state.top1.map_or(String::new(), |t| format!(", test top-1 {:.2}%", 100.0 * t));
    let metadata = Metadata {
        config: card.config,
        preprocess: card.preprocess,
        class_names: card.class_names,
        bn_eps: BN_EPS,
        provenance: Provenance {
            producer: format!("bnas-export {}", env!("CARGO_PKG_VERSION")),
            source: format!(
                "checkpoint {} (epoch {}, step {}{accuracy}; genotype {})",
                dir.display(),
                state.epochs_done,
                state.step,
                card.genotype
            ),
            created_unix: now_unix(),
        },
        training: Some(TrainingRecord {
            dataset: card.dataset.kind,
            epochs: state.epochs_done,
            top1: state.top1,
            top5: state.top5,
        }),
    };
    assemble(metadata, storage, |_, param| tensor_f32(&tensors, &param.name, &param.shape, &weights_path))
}

/// Tensor `name` as f32 values, checked against `shape`.
fn tensor_f32(
    tensors: &SafeTensors,
    name: &str,
    shape: &[usize],
    path: &Path,
) -> Result<Vec<f32>, ExportError> {
    let bad =
        |problem: String| ExportError::BadTensor { path: path.to_owned(), name: name.to_owned(), problem };
    let view = tensors
        .tensor(name)
        .map_err(|_| ExportError::MissingTensor { path: path.to_owned(), name: name.to_owned() })?;
    if view.shape() != shape {
        return Err(bad(format!("shape {:?}, the network needs {shape:?}", view.shape())));
    }
    match view.dtype() {
        Dtype::F32 => {
            Ok(view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
        }
        other => Err(bad(format!("dtype {other:?}, expected F32"))),
    }
}
