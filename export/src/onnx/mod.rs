//! ONNX export of `.bnas` models: the float-equivalent network, for ONNX Runtime and other
//! engines (and for reading the graph in Netron).
//!
//! Every binary layer becomes ordinary float operators that compute what the XNOR/popcount
//! runtime computes (the f64 reference of `runtime/tests/backends.rs`):
//!
//! - a binary conv is `BatchNormalization -> Where(GreaterOrEqual(x, 0), +1, -1) -> Conv` with
//!   the +1/-1 weights unpacked from the 1-bit filters, then `Mul` by the per-channel alpha
//!   (`[1, O, 1, 1]`) and `Relu`. The sign maps 0 to +1 (reference §1), which ONNX `Sign` does not;
//!   zero padding is applied after the sign, so padded taps contribute exactly 0;
//! - compat convs (`reference_compat`) binarize their input and keep float weights; stems and
//!   residual projections are float `Conv`s with their bias and BatchNorms;
//! - max pools ignore padding, average pools do not count it (`count_include_pad = 0`);
//! - statically zero layers (Zeroise) are left out of sums, as in the runtime, and
//!   materialized for the batch (`ConstantOfShape`) where a concat or a conv reads them; layers
//!   that reach the logits only through Zeroise are not exported;
//! - global average pooling, `Flatten` and `Gemm` (`transB = 1`) give `logits`.
//!
//! The graph has one input, `input` (float `[batch, C, H, W]`, `batch` symbolic), and one
//! output, `logits` (float `[batch, classes]`). Opset 17 of the default domain, IR version 8,
//! fp32 weights. Nodes and initializers are named after the spec's layers
//! (`cells.3._ops.1/bn`, `cells.3._ops.1/sign`, `cells.3._ops.1/conv`, `cells.3._ops.1/alpha`),
//! each layer's output value after the layer itself, and initializers' doc strings name the
//! `.bnas` tensors they come from. The model's `metadata_props` carry the model name, genotype,
//! network config, preprocessing, class names and BatchNorm epsilon (keys `bnas.*`) and the
//! producer.

mod error;
mod graph;
mod layers;
#[cfg(test)]
mod tests;

use std::path::Path;

use bnas_runtime::format::BnasFile;
use bnas_runtime::AtomicFile;
use onnx_protobuf::{ModelProto, OperatorSetIdProto, StringStringEntryProto};
use protobuf::{Message, MessageField};

pub use error::OnnxError;
pub use layers::unpack_filters;

/// The opset of the default (`ai.onnx`) domain the graph uses.
pub const OPSET: i64 = 17;

/// The ONNX IR version written (IR 8 goes with opset 17).
pub const IR_VERSION: i64 = 8;

/// `producer_name` of exported models; `producer_version` is this crate's version.
pub const PRODUCER: &str = "bnas-export";

/// Largest serialized model: protobuf messages are limited to 2 GiB.
const MAX_MODEL_BYTES: u64 = i32::MAX as u64;

/// The float-equivalent ONNX model of the network in `file`.
///
/// Reads every tensor the live layers need; a missing or malformed one is an
/// [`OnnxError::Tensor`] or [`OnnxError::BadTensor`] naming the layer and the tensor.
pub fn to_onnx(file: &BnasFile) -> Result<ModelProto, OnnxError> {
    let metadata = file.metadata();
    let config = &metadata.config;
    let spec = config.spec().map_err(|source| OnnxError::Spec { source: Box::new(source) })?;
    let graph = layers::lower(file, &spec)?;
    let doc = format!(
        "BNAS network {} ({} topology, {} cells, C={}, {} classes, input {}): the float-equivalent \
         of the binary network. Binary convs: BatchNormalization, sign as Where(x >= 0, +1, -1), \
         Conv with +1/-1 weights, Mul by the per-channel alpha, Relu.",
        config.name, config.topology, config.layers, config.channels, config.classes, config.input
    );
    let mut model = model(graph.finish(&config.name, &doc), metadata_props(file)?);
    model.doc_string = format!(
        "{} exported by {PRODUCER} {} from a .bnas file written by {} ({})",
        config.name,
        env!("CARGO_PKG_VERSION"),
        metadata.provenance.producer,
        metadata.provenance.source
    );
    Ok(model)
}

/// Serializes [`to_onnx`]'s model to `path` atomically (a temporary file beside it, renamed
/// into place once complete); returns the bytes written.
pub fn write_onnx(file: &BnasFile, path: &Path) -> Result<u64, OnnxError> {
    let model = to_onnx(file)?;
    let bytes = model.compute_size();
    if bytes > MAX_MODEL_BYTES {
        return Err(OnnxError::TooLarge { bytes, limit: MAX_MODEL_BYTES });
    }
    let io = |source| OnnxError::Io { path: path.to_owned(), source };
    let mut out = AtomicFile::create(path).map_err(io)?;
    // A failed write leaves nothing behind: the temporary file is removed when `out` drops.
    model.write_to_writer(&mut out).map_err(|source| OnnxError::Encode { source })?;
    out.commit().map_err(io)?;
    Ok(bytes)
}

/// A model around `graph` with this crate's opset, IR version and producer.
fn model(graph: onnx_protobuf::GraphProto, metadata_props: Vec<StringStringEntryProto>) -> ModelProto {
    ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
            ..Default::default()
        }],
        producer_name: PRODUCER.to_owned(),
        producer_version: env!("CARGO_PKG_VERSION").to_owned(),
        graph: MessageField::some(graph),
        metadata_props,
        ..ModelProto::default()
    }
}

/// The `bnas.*` metadata: what the network is and how to feed it.
fn metadata_props(file: &BnasFile) -> Result<Vec<StringStringEntryProto>, OnnxError> {
    let metadata = file.metadata();
    let config = &metadata.config;
    let json = |what: &str, value: Result<String, serde_json::Error>| {
        value.map_err(|e| OnnxError::Unsupported {
            layer: "metadata".into(),
            problem: format!("{what} does not serialize: {e}"),
        })
    };
    let props = [
        ("producer", format!("{PRODUCER} {}", env!("CARGO_PKG_VERSION"))),
        ("bnas.model", config.name.clone()),
        ("bnas.genotype", json("the genotype", serde_json::to_string(&config.genotype))?),
        ("bnas.topology", config.topology.to_string()),
        ("bnas.config", json("the network config", serde_json::to_string(config))?),
        ("bnas.preprocess", json("the preprocessing", serde_json::to_string(&metadata.preprocess))?),
        ("bnas.class_names", json("the class names", serde_json::to_string(&metadata.class_names))?),
        ("bnas.bn_eps", metadata.bn_eps.to_string()),
        ("bnas.source", format!("{} ({})", metadata.provenance.producer, metadata.provenance.source)),
    ];
    Ok(props
        .into_iter()
        .map(|(key, value)| StringStringEntryProto { key: key.to_owned(), value, ..Default::default() })
        .collect())
}
