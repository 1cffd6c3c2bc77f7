//! The inner loops written once over a small lane trait and instantiated per ISA inside that
//! ISA's `#[target_feature]` entry point: the XNOR-popcount GEMM ([`binary`]) and the float conv
//! GEMM ([`float`]).

pub(super) mod binary;
pub(super) mod float;
