//! AVX-512 kernels: binary with VPOPCNTDQ ([`binary`]) and float ([`float`]).

mod binary;
mod float;

pub(in crate::kernels) use binary::{pack_activations, scale_counts, xnor_gemm};
pub(in crate::kernels) use float::conv_gemm;
