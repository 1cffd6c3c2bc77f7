//! Random-weight models (`bnas-run init`): every tensor drawn at random, BatchNorm statistics
//! included, so that benchmarks and tests exercise realistic thresholds without training.

use std::time::{SystemTime, UNIX_EPOCH};

use bnas_models::{Layer, NetworkConfig, ParamKind, ParamSpec, Precision, Topology};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal, StandardNormal, Uniform};

use crate::assemble::assemble;
use crate::data::DatasetKind;
use crate::error::RuntimeError;
use crate::format::{FloatStorage, Metadata, Provenance, Writer};

/// The BatchNorm epsilon of the reference (PyTorch's default).
pub const BN_EPS: f32 = 1e-5;

/// The data set whose preprocessing and class names a network's input suggests: ImageNet
/// folders for the ImageNet topology, CIFAR-10 for RGB and Fashion-MNIST for grey inputs.
pub fn dataset_for(config: &NetworkConfig) -> DatasetKind {
    match (config.topology, config.input.channels) {
        (Topology::Imagenet, _) => DatasetKind::Folder,
        (Topology::Cifar, 1) => DatasetKind::FashionMnist,
        (Topology::Cifar, _) => DatasetKind::Cifar10,
    }
}

/// Metadata for `config` with the preprocessing of [`dataset_for`] (at the config's input size)
/// and its class names when the class count matches, else `class <i>`.
pub fn metadata_for(config: &NetworkConfig, provenance: Provenance) -> Metadata {
    let kind = dataset_for(config);
    let mut preprocess = kind.preprocess();
    preprocess.height = config.input.height;
    preprocess.width = config.input.width;
    let known = kind.class_names().filter(|names| names.len() == config.classes);
    let class_names = known.unwrap_or_else(|| (0..config.classes).map(|i| format!("class {i}")).collect());
    Metadata { config: config.clone(), preprocess, class_names, bn_eps: BN_EPS, provenance, training: None }
}

/// A benchmark input: `values` standard-normal floats from a fixed seed (every engine and every
/// run sees the same input), or `None` when they do not fit in memory.
pub fn random_input(values: usize) -> Option<Vec<f32>> {
    let mut input = Vec::new();
    input.try_reserve_exact(values).ok()?;
    let mut rng = StdRng::seed_from_u64(0);
    input.extend((0..values).map(|_| -> f32 { StandardNormal.sample(&mut rng) }));
    Some(input)
}

/// A writer holding a random-weight model of `config`. Binary filters are binarized from
/// random latent weights as the reference does; dead layers are left out.
pub fn random_model(
    config: &NetworkConfig,
    seed: u64,
    storage: FloatStorage,
) -> Result<Writer, RuntimeError> {
    let created_unix = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let provenance = Provenance {
        producer: format!("bnas-runtime {}", env!("CARGO_PKG_VERSION")),
        source: format!("random weights, seed {seed}"),
        created_unix,
    };
    let mut rng = StdRng::seed_from_u64(seed);
    assemble(metadata_for(config, provenance), storage, |layer, param| {
        Ok::<_, RuntimeError>(random_values(layer, param, &mut rng))
    })
}

/// Random values for one tensor of `layer`.
fn random_values(layer: &Layer, param: &ParamSpec, rng: &mut StdRng) -> Vec<f32> {
    let unit = Normal::new(0.0f32, 1.0).expect("unit normal");
    let n = param.numel() as usize;
    let mut draw =
        |scale: f32, offset: f32| -> Vec<f32> { (0..n).map(|_| offset + scale * unit.sample(rng)).collect() };
    match param.kind {
        ParamKind::Weight if layer.precision == Precision::Binary => draw(1.0, 0.0),
        // He initialization keeps float activations in a sane range layer after layer.
        ParamKind::Weight => draw((2.0 / (n / param.shape[0]) as f32).sqrt(), 0.0),
        ParamKind::Bias => draw(0.1, 0.0),
        // gamma: magnitude in [0.5, 1.5], negative one time in ten (a sign flip).
        ParamKind::BnWeight => {
            let magnitude = Uniform::new(0.5f32, 1.5);
            (0..n)
                .map(|_| {
                    let m = magnitude.sample(rng);
                    if rng.gen_bool(0.1) {
                        -m
                    } else {
                        m
                    }
                })
                .collect()
        }
        ParamKind::BnBias => draw(0.3, 0.0),
        ParamKind::RunningMean => draw(0.5, 0.0),
        ParamKind::RunningVar => {
            let var = Uniform::new(0.5f32, 2.0);
            (0..n).map(|_| var.sample(rng)).collect()
        }
        ParamKind::NumBatchesTracked => vec![0.0; n],
    }
}
