//! Every way an ONNX export can fail, with the layer and tensor that caused it.

use std::io;
use std::path::PathBuf;

use bnas_models::SpecError;
use bnas_runtime::format::FormatError;

/// Why a `.bnas` file could not be exported to ONNX.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OnnxError {
    /// The file's network config does not build a network spec.
    #[error("the file's network config is invalid")]
    Spec {
        /// Why the spec could not be built.
        #[source]
        source: Box<SpecError>,
    },
    /// A tensor a layer needs is missing from the file, or has the wrong dtype or shape.
    #[error("layer {layer}: tensor {tensor}")]
    Tensor {
        /// The layer being exported.
        layer: String,
        /// The tensor's canonical name.
        tensor: String,
        /// What the file reader said.
        #[source]
        source: Box<FormatError>,
    },
    /// A tensor's values cannot be used (non-finite values, a negative variance, a wrong length).
    #[error("layer {layer}: tensor {tensor}: {problem}")]
    BadTensor {
        /// The layer being exported.
        layer: String,
        /// The tensor's canonical name.
        tensor: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A layer's ONNX operator would not produce the shape the network spec gives it.
    #[error("layer {layer}: ONNX {op} gives {onnx}, the network spec says {spec}")]
    ShapeMismatch {
        /// The layer being exported.
        layer: String,
        /// The ONNX operator.
        op: &'static str,
        /// The per-sample shape (CxHxW) the ONNX operator produces.
        onnx: String,
        /// The per-sample shape in the network spec.
        spec: String,
    },
    /// A layer whose structure the exporter does not handle.
    #[error("layer {layer}: {problem}")]
    Unsupported {
        /// The layer being exported.
        layer: String,
        /// What is not supported.
        problem: String,
    },
    /// Two graph values, nodes or initializers got the same name (an exporter bug).
    #[error("duplicate name {name:?} in the ONNX graph")]
    DuplicateName {
        /// The name.
        name: String,
    },
    /// The serialized model would exceed protobuf's 2 GiB message limit.
    #[error("the ONNX model would be {bytes} bytes, over protobuf's limit of {limit} bytes")]
    TooLarge {
        /// Serialized size.
        bytes: u64,
        /// The largest protobuf message.
        limit: u64,
    },
    /// Serializing the protobuf message failed.
    #[error("serializing the ONNX model")]
    Encode {
        /// The protobuf error.
        #[source]
        source: protobuf::Error,
    },
    /// Writing the output file failed.
    #[error("writing {}", path.display())]
    Io {
        /// The output file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}
