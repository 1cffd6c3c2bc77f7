//! Every way reading or writing a `.bnas` file can fail, one variant each, with the offsets,
//! names and expected/found values needed to locate the problem.

use std::fmt;
use std::io;
use std::path::PathBuf;

use bnas_models::SpecError;

use super::index::Dtype;

/// The three sections named by the header's section table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Section {
    /// The metadata JSON.
    Graph,
    /// The binary tensor records.
    Index,
    /// The tensor payloads.
    Data,
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Section::Graph => "graph",
            Section::Index => "index",
            Section::Data => "data",
        })
    }
}

/// A `.bnas` file that cannot be read, or a [`Writer`](super::Writer) used inconsistently.
///
/// Offsets are absolute byte positions in the file unless a field says otherwise.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// Opening, mapping, writing or renaming a file failed.
    #[error("{}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The file does not start with [`MAGIC`](super::MAGIC).
    #[error("not a .bnas file: magic {found:02x?}, expected {expected:02x?}")]
    BadMagic {
        /// The first eight bytes.
        found: [u8; 8],
        /// [`MAGIC`](super::MAGIC).
        expected: [u8; 8],
    },
    /// A format version this reader does not know.
    #[error("unsupported .bnas version {found} (this reader supports {supported})")]
    UnsupportedVersion {
        /// The version in the header.
        found: u32,
        /// [`VERSION`](super::VERSION).
        supported: u32,
    },
    /// The header's flags field, reserved in version 1, is not zero.
    #[error("reserved header field at offset {offset} is {found:#x}, must be 0")]
    NonzeroReserved {
        /// Offset of the field.
        offset: u64,
        /// Its value.
        found: u32,
    },
    /// The file ends before the header, a section or the trailer does.
    #[error("file truncated: need {need} bytes, have {have}")]
    Truncated {
        /// Bytes the header says the file has, at least.
        need: u64,
        /// Bytes it has.
        have: u64,
    },
    /// A section starts inside the header, or its end overflows.
    #[error(
        "{section} section at offset {offset} with length {length} is outside the file body [64, {body_end})"
    )]
    SectionOutOfBounds {
        /// Which section.
        section: Section,
        /// Its offset.
        offset: u64,
        /// Its length.
        length: u64,
        /// Where the trailer starts.
        body_end: u64,
    },
    /// Two sections share bytes.
    #[error("{first} and {second} sections overlap")]
    SectionsOverlap {
        /// The section that starts first.
        first: Section,
        /// The other one.
        second: Section,
    },
    /// A section that must be aligned is not.
    #[error("{section} section offset {offset} is not a multiple of {align}")]
    MisalignedSection {
        /// Which section.
        section: Section,
        /// Its offset.
        offset: u64,
        /// The required alignment.
        align: u64,
    },
    /// The trailer's CRC-32 does not match the bytes before it.
    #[error("checksum mismatch: trailer says {expected:#010x}, bytes give {found:#010x}")]
    ChecksumMismatch {
        /// The CRC-32 stored in the trailer.
        expected: u32,
        /// The CRC-32 of the file.
        found: u32,
    },
    /// The graph section is larger than [`MAX_GRAPH_LEN`](super::MAX_GRAPH_LEN).
    #[error("graph section is {length} bytes, more than the {max} allowed")]
    GraphTooLarge {
        /// Its length.
        length: u64,
        /// The cap.
        max: u64,
    },
    /// The graph section is not valid UTF-8 JSON of [`Metadata`](super::Metadata).
    #[error("graph section is not valid metadata JSON: {message}")]
    GraphJson {
        /// serde_json's message, with line and column.
        message: String,
    },
    /// The network configuration in the metadata does not build a network.
    #[error("metadata network config is invalid")]
    InvalidConfig {
        /// Why the spec cannot be built.
        #[source]
        source: SpecError,
    },
    /// Metadata fields that disagree with each other or are out of range.
    #[error("inconsistent metadata: {what}")]
    InconsistentMetadata {
        /// What disagrees.
        what: String,
    },
    /// More tensors than [`MAX_TENSORS`](super::MAX_TENSORS).
    #[error("{count} tensors, more than the {max} allowed")]
    TooManyTensors {
        /// The count.
        count: u64,
        /// The cap.
        max: u64,
    },
    /// The index section ends inside a record.
    #[error("index truncated in record {record} at offset {offset}")]
    IndexTruncated {
        /// Record number, from 0.
        record: u64,
        /// Where the missing field starts.
        offset: u64,
    },
    /// Bytes left in the index section after the last record.
    #[error("{extra} unexpected bytes after the last index record")]
    IndexTrailingBytes {
        /// How many.
        extra: u64,
    },
    /// A tensor name longer than [`MAX_NAME_LEN`](super::MAX_NAME_LEN).
    #[error("tensor name of record {record} is {length} bytes, more than the {max} allowed")]
    NameTooLong {
        /// Record number, from 0.
        record: u64,
        /// The name's length in bytes.
        length: u64,
        /// The cap.
        max: usize,
    },
    /// A tensor name that is not UTF-8.
    #[error("tensor name of record {record} at offset {offset} is not UTF-8")]
    NameNotUtf8 {
        /// Record number, from 0.
        record: u64,
        /// Where the name starts.
        offset: u64,
    },
    /// Two tensors with one name.
    #[error("duplicate tensor name '{name}'")]
    DuplicateName {
        /// The name.
        name: String,
    },
    /// A rank above [`MAX_RANK`](super::MAX_RANK).
    #[error("tensor '{name}' has rank {rank}, more than the {max} allowed")]
    RankTooLarge {
        /// Tensor name.
        name: String,
        /// Its rank.
        rank: usize,
        /// The cap.
        max: usize,
    },
    /// A dtype code this version does not define.
    #[error("tensor '{name}' has unknown dtype code {code}")]
    UnknownDtype {
        /// Tensor name.
        name: String,
        /// The code.
        code: u8,
    },
    /// Binary filters whose shape is not `[O, C, K, K]` with positive sizes.
    #[error("binary filters '{name}' have shape {shape:?}, expected [O, C, K, K] with positive sizes")]
    InvalidFilterShape {
        /// Tensor name.
        name: String,
        /// The shape.
        shape: Vec<u64>,
    },
    /// A shape whose element or bit count overflows, or exceeds what this platform can address.
    #[error("tensor '{name}' shape {shape:?} is too large")]
    ShapeOverflow {
        /// Tensor name.
        name: String,
        /// The shape.
        shape: Vec<u64>,
    },
    /// Packed filters with bits set beyond their last input channel (panel layout) or beyond
    /// their last element (bit-dense layout).
    #[error("tensor '{name}': word {word} sets padding bits beyond the last input channel or element")]
    NonzeroPaddingBits {
        /// Tensor name.
        name: String,
        /// Index of the first offending u64 word.
        word: usize,
    },
    /// The stored size in bits is not what the dtype and shape require.
    #[error("tensor '{name}' stores {found_bits} bits, its dtype and shape need {expected_bits}")]
    SizeMismatch {
        /// Tensor name.
        name: String,
        /// Bits the dtype and shape need.
        expected_bits: u64,
        /// Bits the index records.
        found_bits: u64,
    },
    /// A tensor offset that is not a multiple of [`ALIGN`](super::ALIGN).
    #[error("tensor '{name}' offset {offset} (in the data section) is not a multiple of {align}")]
    MisalignedOffset {
        /// Tensor name.
        name: String,
        /// Its offset, relative to the data section.
        offset: u64,
        /// The required alignment.
        align: u64,
    },
    /// A tensor that extends past the end of the data section.
    #[error("tensor '{name}' at {offset} with {bytes} bytes ends past the data section ({data_len} bytes)")]
    TensorOutOfBounds {
        /// Tensor name.
        name: String,
        /// Its offset, relative to the data section.
        offset: u64,
        /// Its length in bytes.
        bytes: u64,
        /// Length of the data section.
        data_len: u64,
    },
    /// Two tensors share bytes.
    #[error("tensors '{first}' and '{second}' overlap")]
    TensorsOverlap {
        /// The tensor that starts first.
        first: String,
        /// The other one.
        second: String,
    },
    /// No tensor has this name.
    #[error("no tensor named '{name}'")]
    MissingTensor {
        /// The name asked for.
        name: String,
    },
    /// The tensor has another dtype than the accessor reads.
    #[error("tensor '{name}' is {found:?}, expected {expected}")]
    WrongDtype {
        /// Tensor name.
        name: String,
        /// What the accessor reads.
        expected: &'static str,
        /// The stored dtype.
        found: Dtype,
    },
    /// The tensor has another shape than the caller expects.
    #[error("tensor '{name}' has shape {found:?}, expected {expected:?}")]
    ShapeMismatch {
        /// Tensor name.
        name: String,
        /// The caller's shape.
        expected: Vec<usize>,
        /// The stored shape.
        found: Vec<usize>,
    },
    /// Writer misuse: the values given do not match the shape.
    #[error("tensor '{name}': shape needs {expected} values, got {found}")]
    ValueCountMismatch {
        /// Tensor name.
        name: String,
        /// Values (floats or words) the shape needs.
        expected: usize,
        /// Values given.
        found: usize,
    },
}
