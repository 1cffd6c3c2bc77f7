//! Batches: many examples read and preprocessed in parallel into one NCHW buffer.

use rayon::prelude::*;

use super::{DataError, Dataset, Preprocess};

/// Reads the examples at `indices` and preprocesses them with `pre`, in parallel, into one NCHW
/// buffer of `indices.len() * pre.tensor_len()` values; returns it with the labels, in the order
/// of `indices`.
pub fn batch(
    dataset: &dyn Dataset,
    pre: &Preprocess,
    indices: &[usize],
) -> Result<(Vec<f32>, Vec<usize>), DataError> {
    pre.validate()?;
    let tensor_len = pre.tensor_len();
    let total = tensor_len
        .checked_mul(indices.len())
        .ok_or(DataError::BatchTooLarge { examples: indices.len(), tensor_len })?;
    let mut tensors = vec![0.0; total];
    let labels = tensors
        .par_chunks_mut(tensor_len)
        .zip(indices.par_iter())
        .map(|(out, &index)| {
            let example = dataset.get(index)?;
            pre.write_tensor(&example.image, out)?;
            Ok(example.label)
        })
        .collect::<Result<Vec<_>, DataError>>()?;
    Ok((tensors, labels))
}
