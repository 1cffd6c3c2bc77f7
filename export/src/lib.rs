//! Export of trained BNAS checkpoints.
//!
//! Converts a trained network, described by `bnas-models`, into the `.bnas` format that
//! `bnas-runtime` executes (bit-packed binary weights plus the full-precision layers) and into
//! ONNX for other runtimes. It reads checkpoints directly and does not depend on libtorch.
