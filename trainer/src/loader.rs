//! Batches for training and evaluation: examples read, augmented and preprocessed in parallel
//! with rayon, then stacked into one NCHW tensor. Shuffling and augmentation draw from seeds
//! derived from (run seed, epoch, example), never from shared generator state.

use bnas_runtime::data::{Dataset, Preprocess, Resize};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rayon::prelude::*;
use tch::{Device, Tensor};

use crate::augment::Augment;
use crate::error::Result;

/// A seed derived from a run seed and stream coordinates (SplitMix64 finalizer), so that
/// neighbouring coordinates give unrelated generators.
pub fn derive_seed(seed: u64, stream: u64, index: u64) -> u64 {
    let mut z = seed
        ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03).rotate_left(17);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Random-stream identifiers, so shuffling, augmentation and drop-path never share seeds.
#[derive(Debug, Clone, Copy)]
#[repr(u64)]
pub enum Stream {
    /// Epoch order of the training examples.
    Shuffle = 1,
    /// Per-example augmentation.
    Augment = 2,
    /// Drop-path masks of one step.
    DropPath = 3,
    /// Order of the architecture half in search.
    SearchShuffle = 4,
}

/// `indices` in a random order fixed by (`seed`, `stream`, `epoch`).
pub fn shuffled(indices: &[usize], seed: u64, stream: Stream, epoch: usize) -> Vec<usize> {
    let mut order = indices.to_vec();
    order.shuffle(&mut StdRng::seed_from_u64(derive_seed(seed, stream as u64, epoch as u64)));
    order
}

/// Reads batches from one data set.
pub struct Loader<'a> {
    dataset: &'a dyn Dataset,
    preprocess: Preprocess,
    augment: Augment,
    seed: u64,
    device: Device,
}

impl std::fmt::Debug for Loader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loader").field("augment", &self.augment).field("seed", &self.seed).finish()
    }
}

impl<'a> Loader<'a> {
    /// A loader of `dataset` with `preprocess`, augmenting training batches with `augment`.
    pub fn new(
        dataset: &'a dyn Dataset,
        preprocess: Preprocess,
        augment: Augment,
        seed: u64,
        device: Device,
    ) -> Loader<'a> {
        Loader { dataset, preprocess, augment, seed, device }
    }

    /// The examples at `indices` as (`[N, C, H, W]` float, `[N]` int64) tensors on the device.
    /// With `epoch`, each example is augmented with its own seed for that epoch.
    pub fn batch(&self, indices: &[usize], epoch: Option<usize>) -> Result<(Tensor, Tensor)> {
        self.preprocess.validate()?;
        let stretched = Preprocess { resize: Resize::Stretch, ..self.preprocess.clone() };
        let examples = indices
            .par_iter()
            .map(|&index| {
                let example = self.dataset.get(index)?;
                let tensor = match epoch {
                    Some(epoch) if self.augment != Augment::None => {
                        let stream = derive_seed(self.seed, Stream::Augment as u64, epoch as u64);
                        let mut rng = StdRng::seed_from_u64(derive_seed(stream, 0, index as u64));
                        let image = self.augment.apply(&example.image, &mut rng);
                        let pre = if self.augment.keeps_size() { &self.preprocess } else { &stretched };
                        pre.apply(&image)?
                    }
                    _ => self.preprocess.apply(&example.image)?,
                };
                Ok((tensor, example.label as i64))
            })
            .collect::<Result<Vec<_>>>()?;
        let shape = self.preprocess.input_shape();
        let (tensors, labels): (Vec<Vec<f32>>, Vec<i64>) = examples.into_iter().unzip();
        let flat: Vec<f32> = tensors.concat();
        let n = indices.len() as i64;
        let input = Tensor::from_slice(&flat)
            .reshape([n, shape.channels as i64, shape.height as i64, shape.width as i64])
            .to_device(self.device);
        Ok((input, Tensor::from_slice(&labels).to_device(self.device)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffles_are_permutations_fixed_by_seed_and_epoch() {
        let all: Vec<usize> = (0..50).collect();
        let a = shuffled(&all, 1, Stream::Shuffle, 0);
        assert_eq!(a, shuffled(&all, 1, Stream::Shuffle, 0));
        assert_ne!(a, shuffled(&all, 1, Stream::Shuffle, 1));
        assert_ne!(a, shuffled(&all, 2, Stream::Shuffle, 0));
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, all);
    }
}
