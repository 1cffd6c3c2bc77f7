//! Portable kernels, any CPU: binary ([`binary`]) and float ([`float`]).

pub(super) mod binary;
pub(super) mod float;

pub(super) use binary::{activation_bit, pack_activations, scale_count, scale_counts, xnor_gemm};
pub(super) use float::conv_gemm;
