//! Network configuration: a topology and genotype with its depth, width, classes and input.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::SpecError;
use crate::genotype::Genotype;
use crate::registry;
use crate::spec::NetworkSpec;

/// The two network skeletons of the reference (reference §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Topology {
    /// Float 3x3 stem (3C channels), cells, global average pool, Linear.
    Cifar,
    /// Three stride-2 float stem convs, cells, a 7x7 average pool, Linear.
    Imagenet,
}

impl Topology {
    /// Number of stem convs, which stay float (`num_skip` in the reference).
    pub fn stem_convs(self) -> usize {
        match self {
            Topology::Cifar => 1,
            Topology::Imagenet => 3,
        }
    }

    /// (layers, channels) of the topology's first named model: BNAS-A or BNAS-D.
    fn defaults(self) -> (usize, usize) {
        let model = registry::MODELS.iter().find(|m| m.topology == self).expect("each topology has a model");
        (model.layers, model.channels)
    }

    /// Classes of the topology's dataset (CIFAR-10 or ImageNet).
    pub fn default_classes(self) -> usize {
        match self {
            Topology::Cifar => 10,
            Topology::Imagenet => 1000,
        }
    }

    /// Input shape of the topology's dataset.
    pub fn default_input(self) -> InputShape {
        match self {
            Topology::Cifar => InputShape { channels: 3, height: 32, width: 32 },
            Topology::Imagenet => InputShape { channels: 3, height: 224, width: 224 },
        }
    }
}

impl fmt::Display for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Topology::Cifar => "cifar",
            Topology::Imagenet => "imagenet",
        })
    }
}

impl FromStr for Topology {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cifar" => Ok(Topology::Cifar),
            "imagenet" => Ok(Topology::Imagenet),
            other => Err(SpecError::UnknownTopology(other.to_owned())),
        }
    }
}

/// A network input: channels x height x width, written `CxHxW`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct InputShape {
    /// Channels (3 for RGB, 1 for grayscale).
    pub channels: usize,
    /// Height in pixels.
    pub height: usize,
    /// Width in pixels.
    pub width: usize,
}

impl fmt::Display for InputShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}x{}", self.channels, self.height, self.width)
    }
}

impl FromStr for InputShape {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let dims: Vec<usize> = s
            .split('x')
            .map(|d| d.trim().parse().ok().filter(|&d| d > 0))
            .collect::<Option<_>>()
            .ok_or_else(|| SpecError::InputShape(s.to_owned()))?;
        match dims[..] {
            [channels, height, width] => Ok(InputShape { channels, height, width }),
            _ => Err(SpecError::InputShape(s.to_owned())),
        }
    }
}

/// Everything that determines a network's structure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkConfig {
    /// Display name: a registry name, a cell name or a genotype file name.
    pub name: String,
    /// CIFAR or ImageNet skeleton.
    pub topology: Topology,
    /// The cells.
    pub genotype: Genotype,
    /// Number of cells L; reductions sit at L/3 and 2L/3.
    pub layers: usize,
    /// Initial channels C.
    pub channels: usize,
    /// Classifier outputs.
    pub classes: usize,
    /// Input shape.
    pub input: InputShape,
    /// Reproduce the reference's conv-selection quirk (reference §1): its last convs keep float
    /// weights on binary inputs. Needed to run the reference's released checkpoints.
    #[serde(default)]
    pub reference_compat: bool,
}

/// Field overrides, as given on a command line (`--topology --layers --channels ...`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    /// Replace the topology (for a custom genotype, its defaults apply too).
    pub topology: Option<Topology>,
    /// Replace the genotype.
    pub genotype: Option<Genotype>,
    /// Replace the number of cells.
    pub layers: Option<usize>,
    /// Replace the initial channels.
    pub channels: Option<usize>,
    /// Replace the number of classes.
    pub classes: Option<usize>,
    /// Replace the input shape.
    pub input: Option<InputShape>,
    /// Turn on the reference's conv-selection quirk.
    pub reference_compat: bool,
}

impl NetworkConfig {
    /// A network of the registry, at its published configuration.
    pub fn named(name: &str) -> Option<NetworkConfig> {
        let model = registry::named(name)?;
        Some(NetworkConfig {
            name: model.name.to_owned(),
            topology: model.topology,
            genotype: registry::cell(model.cell).expect("named models use built-in cells"),
            layers: model.layers,
            channels: model.channels,
            classes: model.classes(),
            input: model.input(),
            reference_compat: false,
        })
    }

    /// A custom network at its topology's default depth, width, classes and input.
    pub fn custom(name: &str, topology: Topology, genotype: Genotype) -> NetworkConfig {
        let (layers, channels) = topology.defaults();
        NetworkConfig {
            name: name.to_owned(),
            topology,
            genotype,
            layers,
            channels,
            classes: topology.default_classes(),
            input: topology.default_input(),
            reference_compat: false,
        }
    }

    /// Resolves a `--model` argument (a named model, a built-in cell or a genotype file in JSON
    /// or reference notation), then applies the overrides.
    pub fn resolve(model: &str, overrides: &Overrides) -> Result<NetworkConfig, SpecError> {
        let base = match NetworkConfig::named(model) {
            Some(named) => named,
            None => {
                let topology = overrides.topology.unwrap_or(Topology::Cifar);
                let genotype = load_genotype(model).map_err(|e| match e {
                    SpecError::UnknownGenotype { .. } => {
                        SpecError::UnknownModel { name: model.to_owned(), known: registry::model_names() }
                    }
                    other => other,
                })?;
                NetworkConfig::custom(&genotype_label(model), topology, genotype)
            }
        };
        Ok(base.with(overrides))
    }

    /// Applies overrides; a named model whose structure changes is renamed `<name>-custom`.
    /// A new topology brings its dataset's input shape and classes unless those are overridden.
    pub fn with(self, overrides: &Overrides) -> NetworkConfig {
        let topology = overrides.topology.unwrap_or(self.topology);
        let (input, classes) = if topology == self.topology {
            (self.input, self.classes)
        } else {
            (topology.default_input(), topology.default_classes())
        };
        let changed = NetworkConfig {
            topology,
            genotype: overrides.genotype.clone().unwrap_or_else(|| self.genotype.clone()),
            layers: overrides.layers.unwrap_or(self.layers),
            channels: overrides.channels.unwrap_or(self.channels),
            classes: overrides.classes.unwrap_or(classes),
            input: overrides.input.unwrap_or(input),
            reference_compat: self.reference_compat || overrides.reference_compat,
            name: self.name.clone(),
        };
        let structural = NetworkConfig { reference_compat: self.reference_compat, ..changed.clone() };
        if registry::named(&self.name).is_some() && structural != self {
            NetworkConfig { name: format!("{}-custom", self.name), ..changed }
        } else {
            changed
        }
    }

    /// Builds the layer-by-layer spec, checking that every size works out.
    pub fn spec(&self) -> Result<NetworkSpec, SpecError> {
        NetworkSpec::build(self.clone())
    }
}

/// Loads a genotype given as a built-in cell name or a file path.
pub fn load_genotype(name: &str) -> Result<Genotype, SpecError> {
    if let Some(cell) = registry::cell(name) {
        return Ok(cell);
    }
    let path = Path::new(name);
    if !path.exists() {
        return Err(SpecError::UnknownGenotype {
            name: name.to_owned(),
            known: registry::cell_names().join(", "),
        });
    }
    Ok(Genotype::from_file(path)?)
}

/// A custom network's name: the cell name, or the genotype file's name (with its extension, so
/// that `bnas-a.json` does not pass for the named model).
fn genotype_label(model: &str) -> String {
    Path::new(model).file_name().map_or_else(|| model.to_owned(), |s| s.to_string_lossy().into_owned())
}
