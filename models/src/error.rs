//! Typed errors: each names what is wrong and where.

use std::path::PathBuf;

use crate::genotype::CellKind;

/// A genotype that cannot be read or is not a valid BNAS cell pair.
#[derive(Debug, thiserror::Error)]
pub enum GenotypeError {
    /// An op name outside the 7-op BNAS space.
    #[error("{cell} cell, edge {edge}: unknown op '{op}' (the BNAS ops are {known})")]
    UnknownOp {
        /// Which cell of the genotype.
        cell: CellKind,
        /// Edge position in the cell's list (0-based).
        edge: usize,
        /// The name that was given.
        op: String,
        /// The valid names, comma-separated.
        known: String,
    },
    /// A cell without exactly two edges for each of its four nodes.
    #[error("{cell} cell has {found} edges; a BNAS cell has exactly 8 (two for each node 2..5)")]
    EdgeCount {
        /// Which cell of the genotype.
        cell: CellKind,
        /// How many edges were given.
        found: usize,
    },
    /// An edge that reads a state not computed yet (or a negative index).
    #[error(
        "{cell} cell, edge {edge}: node {node} reads state {input}, but it may only read states 0..={last}",
        last = node - 1
    )]
    ForwardEdge {
        /// Which cell of the genotype.
        cell: CellKind,
        /// Edge position in the cell's list (0-based).
        edge: usize,
        /// The node the edge feeds (2..=5).
        node: usize,
        /// The state index that was given.
        input: i64,
    },
    /// A concat other than nodes 2..5.
    #[error(
        "{cell}_concat is {found:?}; BNAS cells concatenate nodes [2, 3, 4, 5], since the inter-cell residual needs 4C channels"
    )]
    Concat {
        /// Which cell of the genotype.
        cell: CellKind,
        /// The concat that was given.
        found: Vec<i64>,
    },
    /// Malformed genotype JSON.
    #[error("genotype JSON, line {line} column {column}: {message}")]
    Json {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What serde_json reported.
        message: String,
    },
    /// Malformed reference notation (`Genotype(normal=[...], ...)`).
    #[error("genotype notation, line {line} column {column}: expected {expected}, found {found}")]
    Notation {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the parser was looking for.
        expected: String,
        /// What it found instead.
        found: String,
    },
    /// A genotype file that cannot be read.
    #[error("cannot read genotype file {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A genotype file larger than any genotype.
    #[error("genotype file {} is larger than {limit} bytes; a genotype is a few hundred", path.display())]
    FileTooLarge {
        /// The file.
        path: PathBuf,
        /// The largest accepted size.
        limit: u64,
    },
}

/// A network configuration that cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// A `--model` that is neither a named model, a built-in cell nor a genotype file.
    #[error("unknown model '{name}': not a named model ({known}) nor a genotype file")]
    UnknownModel {
        /// What was given.
        name: String,
        /// The named models, comma-separated.
        known: String,
    },
    /// A genotype name that is neither a built-in cell nor a genotype file.
    #[error("unknown genotype '{name}': not a built-in cell ({known}) nor a genotype file")]
    UnknownGenotype {
        /// What was given.
        name: String,
        /// The built-in cells, comma-separated.
        known: String,
    },
    /// A topology name other than `cifar` or `imagenet`.
    #[error("unknown topology '{0}' (expected cifar or imagenet)")]
    UnknownTopology(String),
    /// An input shape that is not `CxHxW` with positive integers.
    #[error("input shape '{0}' is not CxHxW with positive sizes, e.g. 3x32x32")]
    InputShape(String),
    /// A size field that is zero.
    #[error("{field} must be at least {min}, got {value}")]
    TooSmall {
        /// The field (`layers`, `channels`, `classes`, ...).
        field: &'static str,
        /// Its smallest valid value.
        min: usize,
        /// The value given.
        value: usize,
    },
    /// A size field beyond what the cost model can count.
    #[error("{field} must be at most {max}, got {value}")]
    TooLarge {
        /// The field (`layers`, `channels`, `classes`, ...).
        field: &'static str,
        /// Its largest accepted value.
        max: usize,
        /// The value given.
        value: usize,
    },
    /// A layer whose MAC count is beyond the per-layer limit (2^48), so totals cannot overflow.
    #[error("layer {layer}: more than 2^48 MACs per sample, beyond the cost model's per-layer limit")]
    CostOverflow {
        /// Layer name.
        layer: String,
    },
    /// A reduction whose stride-2 ops and 2x2 residual projection disagree on the output size.
    #[error(
        "cell {cell} is a reduction cell at {height}x{width}: its stride-2 ops give {ceil_h}x{ceil_w} but the 2x2 residual projection gives {floor_h}x{floor_w}; choose an input size that stays even at every reduction",
        ceil_h = height.div_ceil(2), ceil_w = width.div_ceil(2), floor_h = height / 2, floor_w = width / 2
    )]
    OddReduction {
        /// Cell index.
        cell: usize,
        /// Height of the cell's input.
        height: usize,
        /// Width of the cell's input.
        width: usize,
    },
    /// An ImageNet network whose final map is not the 7x7 its average pool needs.
    #[error(
        "the ImageNet topology ends in a 7x7 average pool, but this input gives a {height}x{width} final map; use a 224x224 input"
    )]
    FinalMap {
        /// Final map height.
        height: usize,
        /// Final map width.
        width: usize,
    },
    /// A layer whose input map is smaller than its (dilated) kernel window.
    #[error("layer {layer}: its {height}x{width} input is smaller than its {window}x{window} window")]
    MapTooSmall {
        /// Layer name.
        layer: String,
        /// Input height.
        height: usize,
        /// Input width.
        width: usize,
        /// Effective window size (padding included).
        window: usize,
    },
    /// A sum whose inputs disagree in shape.
    #[error("layer {layer}: cannot add a {left} map to a {right} map")]
    ShapeMismatch {
        /// Layer name.
        layer: String,
        /// First input's shape.
        left: String,
        /// Mismatching input's shape.
        right: String,
    },
    /// A genotype that could not be loaded.
    #[error(transparent)]
    Genotype(#[from] GenotypeError),
}
