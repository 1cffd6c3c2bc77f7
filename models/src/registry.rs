//! Built-in cells and the named networks of the paper (reference §6).

use crate::config::{InputShape, Topology};
use crate::genotype::Genotype;

/// The zeroise cell of BNAS-A, as the reference writes it (`latest_cell_zeroise`).
const ZEROISE: &str = "Genotype(normal=[('none', 1), ('bin_dil_conv_3x3', 0), ('bin_conv_3x3', 1), \
    ('none', 2), ('none', 2), ('none', 3), ('none', 3), ('none', 4)], normal_concat=range(2, 6), \
    reduce=[('max_pool_3x3', 0), ('none', 1), ('max_pool_3x3', 0), ('none', 2), ('none', 3), \
    ('none', 2), ('none', 3), ('none', 4)], reduce_concat=range(2, 6))";

/// The dense cell of BNAS-D..H, as the reference writes it (`latest_cell`).
const DENSE: &str = "Genotype(normal=[('bin_conv_3x3', 1), ('bin_dil_conv_3x3', 0), ('bin_conv_3x3', 1), \
    ('bin_conv_3x3', 2), ('bin_conv_3x3', 2), ('bin_dil_conv_3x3', 1), ('bin_dil_conv_3x3', 1), \
    ('bin_conv_3x3', 0)], normal_concat=range(2, 6), reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), \
    ('max_pool_3x3', 0), ('bin_conv_3x3', 2), ('max_pool_3x3', 0), ('bin_dil_conv_3x3', 3), \
    ('max_pool_3x3', 0), ('bin_dil_conv_3x3', 4)], reduce_concat=range(2, 6))";

/// Built-in cell names, with the reference's own names as aliases.
const CELLS: [(&str, &str, &str); 2] =
    [("zeroise", "latest_cell_zeroise", ZEROISE), ("dense", "latest_cell", DENSE)];

/// The names of the built-in cells.
pub fn cell_names() -> Vec<&'static str> {
    CELLS.iter().map(|(name, _, _)| *name).collect()
}

/// A built-in cell by name (`zeroise`, `dense`, or the reference's `latest_cell_zeroise`,
/// `latest_cell`).
pub fn cell(name: &str) -> Option<Genotype> {
    let (_, _, text) = CELLS.iter().find(|(short, long, _)| *short == name || *long == name)?;
    Some(Genotype::from_reference(text).expect("built-in cells are valid"))
}

/// A network of the paper with its published results.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NamedModel {
    /// Registry name, e.g. `bnas-a`.
    pub name: &'static str,
    /// CIFAR or ImageNet topology.
    pub topology: Topology,
    /// Built-in cell name.
    pub cell: &'static str,
    /// Number of cells L.
    pub layers: usize,
    /// Initial channels C.
    pub channels: usize,
    /// Published top-1 accuracy, percent.
    pub top1: f32,
    /// Published top-5 accuracy, percent (ImageNet only).
    pub top5: Option<f32>,
}

impl NamedModel {
    /// Output classes: 10 on CIFAR-10, 1000 on ImageNet.
    pub fn classes(&self) -> usize {
        self.topology.default_classes()
    }

    /// Input shape: 3x32x32 on CIFAR-10, 3x224x224 on ImageNet.
    pub fn input(&self) -> InputShape {
        self.topology.default_input()
    }
}

/// BNAS-A and BNAS-D..H (reference §6).
pub const MODELS: [NamedModel; 6] = [
    model("bnas-a", Topology::Cifar, "zeroise", 20, 36, 92.70, None),
    model("bnas-d", Topology::Imagenet, "dense", 12, 64, 57.69, Some(79.89)),
    model("bnas-e", Topology::Imagenet, "dense", 12, 68, 58.76, Some(80.61)),
    model("bnas-f", Topology::Imagenet, "dense", 15, 68, 58.99, Some(80.85)),
    model("bnas-g", Topology::Imagenet, "dense", 11, 74, 59.81, Some(81.61)),
    model("bnas-h", Topology::Imagenet, "dense", 16, 128, 63.51, Some(83.91)),
];

const fn model(
    name: &'static str,
    topology: Topology,
    cell: &'static str,
    layers: usize,
    channels: usize,
    top1: f32,
    top5: Option<f32>,
) -> NamedModel {
    NamedModel { name, topology, cell, layers, channels, top1, top5 }
}

/// A named model by its registry name.
pub fn named(name: &str) -> Option<&'static NamedModel> {
    MODELS.iter().find(|m| m.name == name)
}

/// The registry names, comma-separated, for error messages.
pub fn model_names() -> String {
    MODELS.map(|m| m.name).join(", ")
}
