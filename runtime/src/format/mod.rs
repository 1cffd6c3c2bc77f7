//! The `.bnas` deployment format: one file holding a network description with its preprocessing
//! (the graph section) and its weight tensors, written once by [`Writer`] (export and the CLI both
//! call it) and read by [`BnasFile`].
//!
//! Layout, in file order (the byte-exact definition is `docs/format.md`):
//!
//! ```text
//! 0       header: magic, version, flags, section table      64 bytes, little-endian
//! 64      graph section: UTF-8 JSON of `Metadata`            <= 16 MiB
//!         index section: u32 count + binary tensor records   8-byte aligned (by the writer)
//!         data section: tensor payloads                      64-byte aligned, each tensor too
//! len-4   trailer: CRC-32 of bytes [0, len-4)                4 bytes
//! ```
//!
//! Every field is decoded with `from_le_bytes` through `.get(..)`, all size arithmetic is checked,
//! and the whole file (checksum, metadata, index, every tensor's bounds and alignment) is validated
//! when it is opened, before any tensor is viewed. Malformed input yields a [`FormatError`], never
//! a panic.
#![warn(missing_docs)]

mod error;
mod header;
mod index;
mod metadata;
mod reader;
mod writer;

#[cfg(test)]
mod tests;

/// Name of the per-output-channel scale stored next to a binary conv's packed filters:
/// `cells.0._ops.1.op.0.weight` -> `cells.0._ops.1.op.0.alpha`.
pub fn alpha_name(weight: &str) -> String {
    format!("{}.alpha", weight.strip_suffix(".weight").unwrap_or(weight))
}

pub use error::{FormatError, Section};
pub use index::{Dtype, TensorInfo};
pub use metadata::{Metadata, Provenance, TrainingRecord};
pub use reader::{BnasFile, Floats, TensorData, Words};
pub use writer::{FilterLayout, FloatStorage, Writer};

/// The first eight bytes of every `.bnas` file. The high first byte and the CR LF / SUB bytes
/// catch a file mangled by a text-mode transfer, as in PNG.
pub const MAGIC: [u8; 8] = *b"\x89BNAS\r\n\x1a";

/// The format version this crate writes and the only one it reads.
pub const VERSION: u32 = 1;

/// Size of the fixed header.
pub const HEADER_LEN: usize = 64;

/// Size of the trailer (the CRC-32) at the end of the file.
pub const TRAILER_LEN: usize = 4;

/// Alignment, in bytes, of the data section within the file and of every tensor within it. A
/// memory map is page-aligned, so tensors can be viewed in place as `f32` or `u64`.
pub const ALIGN: u64 = 64;

/// Whether `offset` is a multiple of [`ALIGN`] (a power of two).
pub(crate) const fn is_aligned(offset: u64) -> bool {
    offset & (ALIGN - 1) == 0
}

/// Longest tensor name, in bytes of UTF-8.
pub const MAX_NAME_LEN: usize = 256;

/// Largest tensor rank.
pub const MAX_RANK: usize = 8;

/// Most tensors in one file.
pub const MAX_TENSORS: u64 = 1 << 20;

/// Largest graph section (the metadata JSON), in bytes.
pub const MAX_GRAPH_LEN: u64 = 16 << 20;
