//! The CPU kernels: XNOR/popcount for binary convolutions (binarize-and-pack, the binary GEMM,
//! the output transform) and the float conv GEMM, over the bit layout of
//! [`crate::bit_layout`].
//!
//! Every kernel takes an explicit [`Isa`], so tests and benches can run each path in one
//! process; [`select`] probes the CPU once and picks the best ([`isa`]). The public entry points
//! ([`binary`], [`float_conv`]) check their operands and dispatch. The inner loops are written
//! once over a small lane trait ([`generic`]) and instantiated per ISA: [`scalar`] (portable),
//! `x86_64/{avx2,avx512}/{binary,float}.rs`, the memchr and tract layout. [`peak`] measures
//! what this machine's cores can retire, so that the kernels' rates can be stated as a share of
//! it.

mod binary;
pub mod float_conv;
mod generic;
mod isa;
pub mod peak;
mod scalar;
#[cfg(test)]
mod tests;
#[cfg(target_arch = "x86_64")]
mod x86_64;

pub use binary::{pack_activations, scale_counts, xnor_gemm};
pub use isa::{select, Isa, KernelError, FORCE_ISA_ENV};
