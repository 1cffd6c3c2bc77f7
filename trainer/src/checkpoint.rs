//! Self-contained checkpoint directories:
//!
//! - `weights.safetensors`: every tensor of the state_dict under its canonical name (latent
//!   float conv weights, BatchNorm running statistics and step counters included), as the
//!   export stage reads them;
//! - `optimizer.safetensors`: the optimizer's buffers (`momentum.<param>`, `adam_m.<param>`,
//!   `adam_v.<param>`) and a `checkpoint.step` scalar that ties it to `state.json`;
//! - `model.json`: the network configuration (genotype, topology, depth, width, classes, input
//!   shape), the genotype in the reference notation, the preprocessing, class names and data set;
//! - `state.json`: where the run stands (epoch, step, schedule, seeds, settings, accuracies).
//!
//! Every file is written to a temporary name, synced and renamed into place; `state.json` goes
//! last, so a reader that finds it finds the files it describes (its step is checked against the
//! optimizer file's).

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use bnas_models::NetworkSpec;
pub use bnas_runtime::card::{DatasetInfo, ModelCard};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tch::Tensor;

use crate::error::{Result, TrainerError};

/// Weights file name.
pub const WEIGHTS: &str = "weights.safetensors";
/// Optimizer state file name.
pub const OPTIMIZER: &str = "optimizer.safetensors";
/// Model description file name.
pub const MODEL: &str = "model.json";
/// Run state file name.
pub const STATE: &str = "state.json";
/// Metrics log file name.
pub const METRICS: &str = "metrics.jsonl";
/// The optimizer file's step marker.
const STEP_TENSOR: &str = "checkpoint.step";

/// Writes `tensors` as safetensors at `path`, atomically.
pub fn write_tensors(path: &Path, tensors: &[(String, Tensor)]) -> Result<()> {
    let temp = temp_name(path);
    let contiguous: Vec<(&str, Tensor)> =
        tensors.iter().map(|(n, t)| (n.as_str(), t.to_device(tch::Device::Cpu).contiguous())).collect();
    let written = Tensor::write_safetensors(&contiguous, &temp).map_err(TrainerError::from).and_then(|()| {
        File::open(&temp).and_then(|f| f.sync_all()).map_err(TrainerError::io(&temp))?;
        fs::rename(&temp, path).map_err(TrainerError::io(path))
    });
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written
}

/// Reads every tensor of a safetensors file.
pub fn read_tensors(path: &Path) -> Result<Vec<(String, Tensor)>> {
    if !path.is_file() {
        return Err(TrainerError::Checkpoint { path: path.to_owned(), reason: "file not found".to_owned() });
    }
    Ok(Tensor::read_safetensors(path)?)
}

/// Writes `value` as pretty JSON at `path`, atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| TrainerError::Json { path: path.to_owned(), message: e.to_string() })?;
    bnas_runtime::write_atomic(path, format!("{text}\n").as_bytes()).map_err(TrainerError::io(path))
}

/// Reads a JSON file.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = fs::read_to_string(path).map_err(TrainerError::io(path))?;
    serde_json::from_str(&text)
        .map_err(|e| TrainerError::Json { path: path.to_owned(), message: e.to_string() })
}

/// Saves a whole checkpoint into `dir` (created if needed); `state` is written last.
pub fn save<S: Serialize>(
    dir: &Path,
    card: &ModelCard,
    weights: &[(String, Tensor)],
    optimizer: &[(String, Tensor)],
    step: usize,
    state: &S,
) -> Result<()> {
    fs::create_dir_all(dir).map_err(TrainerError::io(dir))?;
    write_tensors(&dir.join(WEIGHTS), weights)?;
    let mut optimizer: Vec<(String, Tensor)> =
        optimizer.iter().map(|(n, t)| (n.clone(), t.shallow_clone())).collect();
    optimizer.push((STEP_TENSOR.to_owned(), Tensor::from(step as i64)));
    write_tensors(&dir.join(OPTIMIZER), &optimizer)?;
    write_json(&dir.join(MODEL), card)?;
    write_json(&dir.join(STATE), state)
}

/// Reads and checks `model.json`.
pub fn load_card(dir: &Path) -> Result<ModelCard> {
    let path = dir.join(MODEL);
    if !path.is_file() {
        return Err(TrainerError::Checkpoint {
            path: dir.to_owned(),
            reason: format!("no {MODEL}: not a checkpoint directory"),
        });
    }
    let card: ModelCard = read_json(&path)?;
    match card.format_problem() {
        Some(reason) => Err(TrainerError::Checkpoint { path, reason }),
        None => Ok(card),
    }
}

/// Reads the optimizer tensors, checking that they belong to the checkpoint at `step`.
pub fn load_optimizer(dir: &Path, step: usize) -> Result<Vec<(String, Tensor)>> {
    let path = dir.join(OPTIMIZER);
    let mut tensors = read_tensors(&path)?;
    let marker = tensors.iter().position(|(n, _)| n == STEP_TENSOR).map(|i| tensors.remove(i).1);
    match marker.and_then(|t| t.f_int64_value(&[]).ok()) {
        Some(found) if found == step as i64 => Ok(tensors),
        found => Err(TrainerError::Checkpoint {
            path: path.clone(),
            reason: format!(
                "written at step {found:?} but {STATE} says step {step}: the checkpoint was interrupted \
                 while being written"
            ),
        }),
    }
}

/// Copies the weights file's tensors into the network's variables (by canonical name), checking
/// that every tensor of `spec` is present with its shape.
pub fn load_weights(dir: &Path, spec: &NetworkSpec, variables: &[(String, Tensor)]) -> Result<()> {
    let path = dir.join(WEIGHTS);
    let stored = read_tensors(&path)?;
    for param in spec.params() {
        let Some((_, source)) = stored.iter().find(|(n, _)| *n == param.name) else {
            return Err(TrainerError::MissingTensor { path: path.clone(), name: param.name.clone() });
        };
        let Some((_, target)) = variables.iter().find(|(n, _)| *n == param.name) else {
            return Err(TrainerError::MissingTensor { path: path.clone(), name: param.name.clone() });
        };
        if source.size() != target.size() {
            return Err(TrainerError::TensorShape {
                name: param.name.clone(),
                expected: target.size(),
                found: source.size(),
            });
        }
        tch::no_grad(|| target.shallow_clone().f_copy_(&source.to_kind(target.kind())))?;
    }
    Ok(())
}

/// The network's tensors in state_dict order, as (canonical name, tensor).
pub fn named_tensors(spec: &NetworkSpec, vs: &tch::nn::VarStore) -> Vec<(String, Tensor)> {
    let variables = vs.variables();
    spec.params()
        .filter_map(|p| variables.get(&p.name).map(|t| (p.name.clone(), t.shallow_clone())))
        .collect()
}

fn temp_name(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}
