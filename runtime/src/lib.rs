//! Inference for BNAS binary networks without libtorch.
//!
//! Binary convolutions run as XNOR and popcount over bit-packed weights and activations; the
//! layers kept in full precision run as ordinary float kernels. Models are loaded from the
//! `.bnas` format, whose layout follows the network description in `bnas-models`. This crate
//! must not depend on libtorch, so that deployed inference carries no PyTorch runtime.
