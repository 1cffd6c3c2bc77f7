//! Every way reading a PyTorch checkpoint can fail, one variant each, with the offset, key or
//! name needed to find the problem in the file.

use std::fmt;
use std::io;
use std::path::PathBuf;

use super::tensor::TorchDType;

/// Which part of a checkpoint an offset counts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    /// A legacy (pre-1.6) checkpoint: offsets are positions in the file.
    File,
    /// A zip checkpoint: offsets are positions in the `data.pkl` entry.
    DataPkl,
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stream::File => "file",
            Stream::DataPkl => "data.pkl",
        })
    }
}

/// A checkpoint that cannot be read, or whose state dict cannot be produced.
///
/// Offsets are byte positions in the [`Stream`] a variant names.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TorchError {
    /// Reading the file failed.
    #[error("{}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The bytes are neither a zip archive nor a pickle stream.
    #[error("not a PyTorch checkpoint: starts with {found:02x?}")]
    NotACheckpoint {
        /// The first bytes (at most four).
        found: Vec<u8>,
    },
    /// The input ends inside an opcode, a string or a storage.
    #[error("{stream} truncated at byte {offset}: {what} needs {needed} bytes, {available} left")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Where it starts.
        stream: Stream,
        /// Its offset.
        offset: u64,
        /// Bytes it needs.
        needed: u64,
        /// Bytes left.
        available: u64,
    },
    /// A byte that is no pickle opcode.
    #[error("unknown pickle opcode {opcode:#04x} at byte {offset} of the {stream}")]
    UnknownOpcode {
        /// The byte.
        opcode: u8,
        /// The stream.
        stream: Stream,
        /// Its offset.
        offset: u64,
    },
    /// A pickle that a Python unpickler would reject too: stack underflow, a missing MARK or memo
    /// entry, an operand of the wrong type, an unparsable text operand.
    #[error("malformed pickle at byte {offset} of the {stream} (opcode {opcode:#04x}): {what}")]
    MalformedPickle {
        /// What is wrong.
        what: String,
        /// The opcode being run.
        opcode: u8,
        /// The stream.
        stream: Stream,
        /// The opcode's offset.
        offset: u64,
    },
    /// A valid pickle feature this reader does not implement (a protocol above 5, out-of-band
    /// buffers).
    #[error("unsupported pickle feature at byte {offset} of the {stream}: {what}")]
    UnsupportedPickle {
        /// The feature.
        what: &'static str,
        /// The stream.
        stream: Stream,
        /// Its offset.
        offset: u64,
    },
    /// A size beyond what the input can hold.
    #[error("{what} of {size} exceeds the limit of {limit}")]
    TooLarge {
        /// What was measured.
        what: &'static str,
        /// The size.
        size: u64,
        /// The limit (derived from the file length).
        limit: u64,
    },
    /// A legacy checkpoint whose first pickle is not PyTorch's magic number.
    #[error("legacy checkpoint: the first pickle is {found}, not PyTorch's magic number")]
    BadMagic {
        /// A short description of what was found.
        found: String,
    },
    /// A legacy checkpoint whose serialization protocol is not 1001.
    #[error("legacy checkpoint: serialization protocol {found}, expected 1001")]
    UnsupportedVersion {
        /// A short description of what was found.
        found: String,
    },
    /// A byte order other than `little` or `big`.
    #[error("unsupported byte order {found:?}")]
    UnsupportedByteOrder {
        /// The recorded byte order.
        found: String,
    },
    /// The zip archive cannot be opened.
    #[error("zip archive")]
    Zip(#[source] zip::result::ZipError),
    /// A zip entry the checkpoint needs is absent.
    #[error("zip archive has no entry {name}")]
    MissingEntry {
        /// The entry's name.
        name: String,
    },
    /// A zip entry cannot be read (bad compressed data, checksum mismatch, short entry).
    #[error("zip entry {name}")]
    ZipEntry {
        /// The entry's name.
        name: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The storage key list of a legacy checkpoint is not a list of strings.
    #[error("legacy checkpoint: storage key list at byte {offset}: {found}")]
    BadStorageKeys {
        /// Offset of the pickle.
        offset: u64,
        /// A short description of what was found.
        found: String,
    },
    /// A tensor refers to a storage whose data is not in the checkpoint.
    #[error("storage {key} is not in the checkpoint")]
    MissingStorage {
        /// The storage key.
        key: String,
    },
    /// A legacy storage whose data cannot be located: its record is truncated, or an earlier
    /// record of unknown element size hides where it starts.
    #[error("storage {key}: data unreadable ({reason})")]
    StorageData {
        /// The storage key.
        key: String,
        /// Why.
        reason: StorageFailure,
    },
    /// A storage holds fewer bytes than its persistent id declares.
    #[error("storage {key} holds {available} bytes, {needed} declared")]
    StorageTooSmall {
        /// The storage key.
        key: String,
        /// Bytes declared.
        needed: u64,
        /// Bytes present.
        available: u64,
    },
    /// A storage persistent id that is not `('storage', type, key, location, numel[, view])`.
    #[error("bad storage persistent id: {what}")]
    BadPersistentId {
        /// What is wrong.
        what: String,
    },
    /// A storage class this reader does not know.
    #[error("unknown storage type {name}")]
    UnknownStorageType {
        /// `module.name` of the class.
        name: String,
    },
    /// A tensor element type this reader does not convert (complex, quantized, float8...).
    #[error("unsupported dtype {name}")]
    UnsupportedDtype {
        /// The storage class or dtype name.
        name: String,
    },
    /// The checkpoint's top level (or its `state_dict`) is not a dict.
    #[error("the checkpoint holds {found}, not a dict of tensors")]
    NotAStateDict {
        /// A short description of what was found.
        found: String,
    },
    /// A state dict key that is not a string.
    #[error("state dict entry {index} has key {found}, not a string")]
    BadKey {
        /// Position of the entry.
        index: usize,
        /// A short description of the key.
        found: String,
    },
    /// A state dict value that is not a tensor.
    #[error("{found} is not a tensor")]
    NotATensor {
        /// A short description of the value.
        found: String,
    },
    /// A tensor rebuilt by a function this reader does not implement (sparse, quantized, nested,
    /// meta or wrapper-subclass tensors).
    #[error("unsupported tensor kind {function}")]
    UnsupportedTensor {
        /// `module.name` of the rebuild function.
        function: String,
    },
    /// Arguments of a tensor rebuild function that are missing or of the wrong type.
    #[error("bad tensor arguments: {what}")]
    BadTensorArgs {
        /// What is wrong.
        what: String,
    },
    /// A tensor whose size, stride and offset reach outside its storage.
    #[error(
        "tensor view out of bounds: elements up to {end} of {element_size} bytes, storage has {storage_bytes} bytes"
    )]
    ViewOutOfBounds {
        /// One past the last element index the view reaches (offset included).
        end: u64,
        /// Bytes per element.
        element_size: u64,
        /// Bytes in the storage.
        storage_bytes: u64,
    },
    /// Tensors wrapped in more rebuild calls than the reader follows.
    #[error("tensor rebuild calls nested deeper than {limit}")]
    TooDeep {
        /// The limit.
        limit: usize,
    },
    /// An error inside one state dict entry.
    #[error("tensor {key:?}")]
    Tensor {
        /// The state dict key.
        key: String,
        /// What went wrong.
        #[source]
        source: Box<TorchError>,
    },
    /// A conversion asked of a tensor whose element type does not allow it.
    #[error("a {dtype} tensor cannot be read as {target}")]
    WrongDtype {
        /// The tensor's element type.
        dtype: TorchDType,
        /// The type asked for.
        target: &'static str,
    },
}

/// Why a legacy storage's data cannot be located.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StorageFailure {
    /// The record (an element count and the elements) runs past the end of the file.
    Truncated {
        /// Offset of the record.
        offset: u64,
        /// Bytes it needs.
        needed: u64,
        /// Bytes left.
        available: u64,
    },
    /// The storage's element size is unknown (no persistent id names it, or its class is
    /// unknown), so neither it nor the records after it can be located.
    UnknownElementSize,
    /// An earlier record could not be located, so this one cannot be either.
    AfterFailure {
        /// The storage that failed first.
        first: String,
    },
}

impl fmt::Display for StorageFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageFailure::Truncated { offset, needed, available } => {
                write!(f, "record at byte {offset} needs {needed} bytes, {available} left")
            }
            StorageFailure::UnknownElementSize => f.write_str("unknown element size"),
            StorageFailure::AfterFailure { first } => {
                write!(f, "follows storage {first}, which could not be read")
            }
        }
    }
}

impl TorchError {
    /// Attaches a state dict key to an error.
    pub(crate) fn in_tensor(self, key: &str) -> TorchError {
        TorchError::Tensor { key: key.to_owned(), source: Box::new(self) }
    }
}
