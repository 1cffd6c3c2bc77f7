//! Assembling a `.bnas` model from a network's latent tensors: the one place where the trained
//! (or random) weights become the file's. Binary conv weights are binarized as the reference's
//! evaluation does (reference §1, [`binarize_latent`]) and packed, with their alpha scales. Float
//! tensors (weights, biases, BatchNorm statistics, alphas) go in the chosen storage, and with
//! fp16 the filters are stored bit-dense (the compact file); dead layers and step counters are
//! left out. Random models (`init`) and exported checkpoints share it.

use bnas_models::{Layer, ParamKind, ParamSpec, Precision};

use crate::binarize::binarize_latent;
use crate::error::RuntimeError;
use crate::format::{alpha_name, FloatStorage, FormatError, Metadata, Writer};

/// A writer holding the model of `metadata`, whose tensors `tensor(layer, param)` provides in
/// state_dict order (latent float values, `param.numel()` of them); its errors pass through.
pub fn assemble<E: From<RuntimeError>>(
    metadata: Metadata,
    storage: FloatStorage,
    mut tensor: impl FnMut(&Layer, &ParamSpec) -> Result<Vec<f32>, E>,
) -> Result<Writer, E> {
    let spec = metadata.config.spec().map_err(RuntimeError::from)?;
    let mut writer = Writer::new(metadata).map_err(RuntimeError::from)?;
    for layer in spec.live_layers() {
        for param in &layer.params {
            if param.kind == ParamKind::NumBatchesTracked {
                continue;
            }
            let values = tensor(layer, param)?;
            if values.len() as u64 != param.numel() {
                return Err(RuntimeError::BadTensor {
                    name: param.name.clone(),
                    problem: format!("{} values for shape {:?}", values.len(), param.shape),
                }
                .into());
            }
            add(&mut writer, layer, param, &values, storage).map_err(RuntimeError::from)?;
        }
    }
    Ok(writer)
}

/// Adds one tensor, binarizing binary conv weights.
fn add(
    writer: &mut Writer,
    layer: &Layer,
    param: &ParamSpec,
    values: &[f32],
    storage: FloatStorage,
) -> Result<(), FormatError> {
    match param.kind {
        ParamKind::Weight if layer.precision == Precision::Binary => {
            let [o, c, k, _] = param.shape[..] else { unreachable!("conv weights are 4-d") };
            let binary = binarize_latent(values, o, c, k);
            writer.add_binary_filters(&param.name, [o, c, k, k], binary.filters, storage.filter_layout())?;
            writer.add_float(&alpha_name(&param.name), &[o], &binary.alpha, storage)
        }
        _ => writer.add_float(&param.name, &param.shape, values, storage),
    }
}
