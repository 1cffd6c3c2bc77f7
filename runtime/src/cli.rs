//! Command-line flags shared by the `bnas` and `bnas-run` tools: which network to build, which
//! data set, and how a benchmark runs.

use std::path::PathBuf;

use bnas_models::{load_genotype, InputShape, NetworkConfig, Overrides, SpecError, Topology};
use clap::Args;

use crate::data::DatasetKind;

/// The forward passes of a benchmark: the `--batch`, `--iters` and `--warmup` flags of `bnas-run
/// bench` and `bnas bench`.
#[derive(Debug, Clone, Args)]
pub struct PassArgs {
    /// Samples per forward pass.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Timed forward passes (per engine).
    #[arg(long, default_value_t = 50)]
    pub iters: usize,
    /// Untimed forward passes first.
    #[arg(long, default_value_t = 5)]
    pub warmup: usize,
}

/// Which data set: the `--data` and `--root` flags of `bnas-run eval` and of the trainer's
/// `bnas search`, `bnas train` and `bnas eval`.
#[derive(Debug, Clone, Args)]
pub struct DataArgs {
    /// Data set format: fashion-mnist, mnist, cifar10 or folder.
    #[arg(long, default_value = "fashion-mnist")]
    pub data: DatasetKind,
    /// Data set directory (default for fashion-mnist: /usr/share/datasets/fashion-mnist).
    #[arg(long)]
    pub root: Option<PathBuf>,
}

/// Which network: a named model or a genotype, with field overrides.
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// Named model (bnas-a, bnas-d..bnas-h), built-in cell (zeroise, dense) or genotype file
    /// (JSON or the reference's `Genotype(...)` notation).
    // Not `required`: clap then lets `bnas summary` flatten these flags as an optional group.
    #[arg(long, short, required = false)]
    pub model: String,
    /// Network skeleton: cifar or imagenet.
    #[arg(long)]
    pub topology: Option<Topology>,
    /// Replace the genotype: a built-in cell or a genotype file.
    #[arg(long)]
    pub genotype: Option<String>,
    /// Number of cells L.
    #[arg(long)]
    pub layers: Option<usize>,
    /// Initial channels C.
    #[arg(long)]
    pub channels: Option<usize>,
    /// Number of classes.
    #[arg(long)]
    pub classes: Option<usize>,
    /// Input shape CxHxW, e.g. 1x28x28.
    #[arg(long)]
    pub input: Option<InputShape>,
    /// Reproduce the reference's conv-selection quirk (float weights on its last convs).
    #[arg(long)]
    pub reference_compat: bool,
}

impl ModelArgs {
    /// Resolves the flags into a network configuration.
    pub fn config(&self) -> Result<NetworkConfig, SpecError> {
        let genotype = self.genotype.as_deref().map(load_genotype).transpose()?;
        let overrides = Overrides {
            topology: self.topology,
            genotype,
            layers: self.layers,
            channels: self.channels,
            classes: self.classes,
            input: self.input,
            reference_compat: self.reference_compat,
        };
        NetworkConfig::resolve(&self.model, &overrides)
    }
}
