//! The cost model's vocabulary (reference §8): every layer lists (kind, count) pairs, and every total
//! is a sum over those lists.

use serde::{Deserialize, Serialize};

/// What a counted operation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CostKind {
    /// A multiply-accumulate of a float Conv or Linear layer (compat-mode convs included).
    FloatMac,
    /// A multiply-accumulate of a binary convolution (a BOP), full kernel window counted.
    BinaryMac,
}

/// One (kind, count) entry of a layer's cost, per input sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cost {
    /// What is counted.
    pub kind: CostKind,
    /// How many, per sample.
    pub count: u64,
}

/// `ops` = float MACs + binary MACs / 64: what the binary-network papers call FLOPs.
pub fn ops(float_macs: u64, binary_macs: u64) -> f64 {
    float_macs as f64 + binary_macs as f64 / 64.0
}

/// Sums the counts of one kind over a list of costs.
pub fn sum_kind<'a>(costs: impl IntoIterator<Item = &'a Cost>, kind: CostKind) -> u64 {
    costs.into_iter().filter(|c| c.kind == kind).map(|c| c.count).sum()
}
