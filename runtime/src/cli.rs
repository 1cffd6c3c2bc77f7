//! Command-line flags shared by the `bnas` and `bnas-run` tools, declared once so that they mean
//! the same in both: `--model` (a network name or a file), `--threads`, `--top`, the data set
//! and the forward passes of a benchmark. `--device` defaults to `cpu` in both tools.

use std::io::Read;
use std::path::{Path, PathBuf};

use bnas_models::{load_genotype, InputShape, NetworkConfig, Overrides, SpecError, Topology};
use clap::Args;

use crate::data::DatasetKind;
use crate::format::{BnasFile, FormatError, MAGIC};

/// Layers a profile table lists by default, slowest first (`--top`).
pub const TOP_LAYERS: usize = 15;

/// Parses `--threads`: a worker count of at least 1.
pub fn parse_threads(value: &str) -> Result<usize, String> {
    match value.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("not a thread count: {e}")),
    }
}

/// What a `--model` argument names, after Hugging Face's `model_name_or_path`: a `.bnas` file
/// (trained or random weights), or a network to build (a named model, a built-in cell or a
/// genotype file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    /// A `.bnas` model file.
    File(PathBuf),
    /// A network description for [`NetworkConfig::resolve`].
    Network(String),
}

/// Why a `--model` argument cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ModelSourceError {
    /// A command that needs trained weights was given a network.
    #[error(
        "`{network}` names a network, but `{command}` needs a model file with weights: make one with \
         `bnas-run init --model {network} --out model.bnas` (random weights) or `bnas export` (a \
         trained checkpoint)"
    )]
    NeedsWeights {
        /// The command.
        command: &'static str,
        /// The `--model` argument.
        network: String,
    },
    /// The network could not be resolved.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The model file could not be read.
    #[error("reading {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: FormatError,
    },
}

impl ModelSource {
    /// A file when `arg` ends in `.bnas` or names a regular file that starts with the format's
    /// magic; a network otherwise (genotype files are JSON or the reference's notation).
    pub fn parse(arg: &str) -> ModelSource {
        let path = Path::new(arg);
        let is_bnas =
            path.extension().is_some_and(|e| e.eq_ignore_ascii_case("bnas")) || starts_with_magic(path);
        if is_bnas {
            ModelSource::File(path.to_owned())
        } else {
            ModelSource::Network(arg.to_owned())
        }
    }

    /// The model file, for a `command` that needs weights.
    pub fn weights_file(&self, command: &'static str) -> Result<PathBuf, ModelSourceError> {
        match self {
            ModelSource::File(path) => Ok(path.clone()),
            ModelSource::Network(network) => {
                Err(ModelSourceError::NeedsWeights { command, network: network.clone() })
            }
        }
    }

    /// The network it describes, `overrides` applied: a file's own configuration, or the
    /// resolved description.
    pub fn config(&self, overrides: &Overrides) -> Result<NetworkConfig, ModelSourceError> {
        match self {
            ModelSource::File(path) => {
                let file = BnasFile::open(path)
                    .map_err(|source| ModelSourceError::File { path: path.clone(), source })?;
                Ok(file.metadata().config.clone().with(overrides))
            }
            ModelSource::Network(network) => Ok(NetworkConfig::resolve(network, overrides)?),
        }
    }
}

/// Whether `path` is a regular file (never a FIFO or a device, which could block) whose first
/// bytes are the `.bnas` magic.
fn starts_with_magic(path: &Path) -> bool {
    let mut head = [0u8; MAGIC.len()];
    path.metadata().is_ok_and(|m| m.is_file())
        && std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut head)).is_ok()
        && head == MAGIC
}

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
    /// Named model (bnas-a, bnas-d..bnas-h), built-in cell (zeroise, dense), genotype file
    /// (JSON or the reference's `Genotype(...)` notation) or `.bnas` file (its network).
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
    pub fn config(&self) -> Result<NetworkConfig, ModelSourceError> {
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
        ModelSource::parse(&self.model).config(&overrides)
    }
}
