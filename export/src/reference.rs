//! The reference's PyTorch checkpoints to `.bnas` (reference §7): a state_dict saved from a
//! DataParallel wrapper (`module.` keys) or a dict holding one under `state_dict`, in the legacy
//! or the zip serialization. The network is built in `reference_compat` mode, which reproduces
//! the reference's choice of float-weight convs, and every key must match the spec's canonical
//! names and shapes.

use std::collections::HashMap;
use std::path::Path;

use bnas_models::NetworkConfig;
use bnas_runtime::assemble::assemble;
use bnas_runtime::format::{FloatStorage, Provenance, Writer};
use bnas_runtime::init::metadata_for;

use crate::checkpoint::now_unix;
use crate::error::ExportError;
use crate::torch::{self, TorchTensor};

/// The prefix DataParallel and DistributedDataParallel put on every key.
const DATA_PARALLEL_PREFIX: &str = "module.";

/// A writer holding the model of the reference checkpoint at `path`, for the network `config`
/// (switched to `reference_compat`), with the preprocessing and class names its input suggests.
pub fn from_reference(
    path: &Path,
    config: &NetworkConfig,
    storage: FloatStorage,
) -> Result<Writer, ExportError> {
    let mut config = config.clone();
    config.reference_compat = true;
    let spec = config.spec().map_err(bnas_runtime::RuntimeError::from)?;
    let mut tensors: HashMap<String, TorchTensor> = torch::read_state_dict(path)?
        .into_iter()
        .map(|(key, tensor)| (key.strip_prefix(DATA_PARALLEL_PREFIX).unwrap_or(&key).to_owned(), tensor))
        .collect();
    // Every stored key must be one of the network's: anything else means another architecture.
    let known: std::collections::HashSet<&str> = spec.params().map(|p| p.name.as_str()).collect();
    let mut unknown: Vec<&String> = tensors.keys().filter(|k| !known.contains(k.as_str())).collect();
    unknown.sort();
    if let Some(first) = unknown.first() {
        return Err(ExportError::Checkpoint {
            path: path.to_owned(),
            reason: format!(
                "{} keys are not in the {} network (first: `{first}`): check --model and the network flags",
                unknown.len(),
                config.name
            ),
        });
    }
    let provenance = Provenance {
        producer: format!("bnas-export {}", env!("CARGO_PKG_VERSION")),
        source: format!("reference checkpoint {}", path.display()),
        created_unix: now_unix(),
    };
    assemble(metadata_for(&config, provenance), storage, |_, param| {
        let tensor = tensors
            .remove(&param.name)
            .ok_or_else(|| ExportError::MissingTensor { path: path.to_owned(), name: param.name.clone() })?;
        if tensor.shape != param.shape {
            return Err(ExportError::BadTensor {
                path: path.to_owned(),
                name: param.name.clone(),
                problem: format!("shape {:?}, the network needs {:?}", tensor.shape, param.shape),
            });
        }
        Ok(tensor.to_f32()?)
    })
}
