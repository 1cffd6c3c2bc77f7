//! The architecture description that every other bnas crate obeys.
//!
//! - [`Genotype`]: a BNAS cell pair (normal and reduction), read from JSON or from the reference's
//!   `Genotype(normal=[...], ...)` notation.
//! - [`NetworkConfig`]: a topology (CIFAR or ImageNet), genotype, depth, width, classes and input
//!   shape; the named models BNAS-A and BNAS-D..H live in [`registry`].
//! - [`NetworkSpec`]: every layer in execution order with its shapes, its parameters under the
//!   reference's canonical state_dict names, its precision, its cost and whether it is pruned.
//! - [`Summary`]: the per-layer report and totals (`params`, `float_macs`, `binary_macs`, `ops`,
//!   sizes and peak activation memory) that the CLI prints.
#![warn(missing_docs)]

mod config;
mod cost;
mod error;
mod genotype;
mod op;
pub mod registry;
mod spec;
mod summary;

pub use config::{load_genotype, InputShape, NetworkConfig, Overrides, Topology};
pub use cost::{Cost, CostKind};
pub use error::{GenotypeError, SpecError};
pub use genotype::{CellKind, Edge, Genotype, CONCAT, EDGES_PER_CELL};
pub use op::OpKind;
pub use spec::{
    BatchNorm, ConvSpec, Layer, LayerId, LayerOp, Liveness, NetworkSpec, ParamKind, ParamSpec, Precision,
    Shape,
};
pub use summary::{LayerRow, Summary, Totals};
