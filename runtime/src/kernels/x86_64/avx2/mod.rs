//! AVX2 (with FMA) kernels: binary ([`binary`]) and float ([`float`]).

mod binary;
mod float;

pub(in crate::kernels) use binary::{pack_activations, scale_counts, xnor_gemm, xor_popcount_bytes_add};
pub(in crate::kernels) use float::conv_gemm;
