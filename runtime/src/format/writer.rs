//! Builds `.bnas` files. Every tensor is checked when it is added and the metadata when the writer
//! is made, so whatever [`Writer::to_bytes`] returns opens with [`BnasFile`](super::BnasFile).

use std::collections::HashSet;
use std::fmt;
use std::path::Path;

use super::error::FormatError;
use super::header::{trailer, Header, SectionRange};
use super::index::{encode_record, expected_bits, shape_error, Dtype};
use super::metadata::Metadata;
use super::{ALIGN, HEADER_LEN, MAX_GRAPH_LEN, MAX_NAME_LEN, MAX_RANK, MAX_TENSORS, TRAILER_LEN};
use crate::atomic_file::write_atomic;

/// How [`Writer::add_float`] stores a float tensor. Either way the runtime computes in f32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FloatStorage {
    /// Exact.
    F32,
    /// Half the size; values are rounded to the nearest binary16.
    F16,
}

/// How [`Writer::add_binary_filters`] stores binary filters. Either way readers get the panel
/// layout the kernels use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FilterLayout {
    /// The kernels' panel layout, viewed in place from a memory map; channel counts that are not
    /// multiples of 64 leave padding bits.
    Panels,
    /// Bit-dense OIHW order with no padding bits, re-laid out when the file is read.
    Dense,
}

impl FloatStorage {
    /// The compact file layout goes with fp16 floats: bit-dense filters; otherwise panels.
    pub fn filter_layout(self) -> FilterLayout {
        match self {
            FloatStorage::F32 => FilterLayout::Panels,
            FloatStorage::F16 => FilterLayout::Dense,
        }
    }
}

/// A tensor waiting to be written.
struct Pending {
    name: String,
    dtype: Dtype,
    shape: Vec<u64>,
    bits: u64,
    bytes: Vec<u8>,
}

/// Collects metadata and tensors, then lays out a `.bnas` file.
///
/// ```no_run
/// # fn demo(metadata: bnas_runtime::format::Metadata) -> Result<(), bnas_runtime::format::FormatError> {
/// use bnas_runtime::format::{FloatStorage, Writer};
/// let mut writer = Writer::new(metadata)?;
/// writer.add_float("classifier.bias", &[10], &[0.0; 10], FloatStorage::F32)?;
/// writer.write("model.bnas")?;
/// # Ok(()) }
/// ```
pub struct Writer {
    graph: Vec<u8>,
    tensors: Vec<Pending>,
    names: HashSet<String>,
}

impl fmt::Debug for Writer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Writer")
            .field("graph_bytes", &self.graph.len())
            .field("tensors", &self.tensors.iter().map(|t| t.name.as_str()).collect::<Vec<_>>())
            .finish()
    }
}

impl Writer {
    /// A writer for a file with this metadata, which must pass [`Metadata::validate`] and
    /// serialize to at most [`MAX_GRAPH_LEN`] bytes.
    pub fn new(metadata: Metadata) -> Result<Writer, FormatError> {
        metadata.validate()?;
        let graph =
            serde_json::to_vec(&metadata).map_err(|e| FormatError::GraphJson { message: e.to_string() })?;
        let length = graph.len() as u64;
        if length > MAX_GRAPH_LEN {
            return Err(FormatError::GraphTooLarge { length, max: MAX_GRAPH_LEN });
        }
        Ok(Writer { graph, tensors: Vec::new(), names: HashSet::new() })
    }

    /// Adds a float tensor of `shape` (row-major `values`), stored as `storage`.
    pub fn add_float(
        &mut self,
        name: &str,
        shape: &[usize],
        values: &[f32],
        storage: FloatStorage,
    ) -> Result<(), FormatError> {
        let dtype = match storage {
            FloatStorage::F32 => Dtype::F32,
            FloatStorage::F16 => Dtype::F16,
        };
        let (shape, bits) = self.check(name, dtype, shape)?;
        let elements = shape.iter().product::<u64>() as usize;
        if values.len() != elements {
            return Err(FormatError::ValueCountMismatch {
                name: name.to_owned(),
                expected: elements,
                found: values.len(),
            });
        }
        let bytes = match storage {
            FloatStorage::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            FloatStorage::F16 => values.iter().flat_map(|&v| half::f16::from_f32(v).to_le_bytes()).collect(),
        };
        self.push(Pending { name: name.to_owned(), dtype, shape, bits, bytes });
        Ok(())
    }

    /// Adds binary filters of logical shape `[O, C, K, K]`, already packed in the kernels' panel
    /// layout: `words.len()` must be [`crate::bit_layout::filter_words`]`(O, C, K)`. They are stored
    /// as `layout` says.
    pub fn add_binary_filters(
        &mut self,
        name: &str,
        shape: [usize; 4],
        words: Vec<u64>,
        layout: FilterLayout,
    ) -> Result<(), FormatError> {
        let [o, c, k, _] = shape;
        let (shape, bits) = self.check(name, Dtype::BinaryFilters, &shape)?;
        let expected = (bits / 64) as usize;
        if words.len() != expected {
            return Err(FormatError::ValueCountMismatch {
                name: name.to_owned(),
                expected,
                found: words.len(),
            });
        }
        super::reader::check_padding_bits(name, &words, c)?;
        let (dtype, bits, words) = match layout {
            FilterLayout::Panels => (Dtype::BinaryFilters, bits, words),
            FilterLayout::Dense => {
                let dense = crate::bit_layout::dense_from_panels(&words, o, c, k);
                (Dtype::DenseFilters, dense.len() as u64 * 64, dense)
            }
        };
        let bytes = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        self.push(Pending { name: name.to_owned(), dtype, shape, bits, bytes });
        Ok(())
    }

    /// Name, count, rank and size checks shared by the `add_*` methods; returns the shape as
    /// stored and the tensor's size in bits.
    fn check(&self, name: &str, dtype: Dtype, shape: &[usize]) -> Result<(Vec<u64>, u64), FormatError> {
        let record = self.tensors.len() as u64;
        if record >= MAX_TENSORS {
            return Err(FormatError::TooManyTensors { count: record + 1, max: MAX_TENSORS });
        }
        if name.len() > MAX_NAME_LEN {
            return Err(FormatError::NameTooLong { record, length: name.len() as u64, max: MAX_NAME_LEN });
        }
        if self.names.contains(name) {
            return Err(FormatError::DuplicateName { name: name.to_owned() });
        }
        if shape.len() > MAX_RANK {
            return Err(FormatError::RankTooLarge {
                name: name.to_owned(),
                rank: shape.len(),
                max: MAX_RANK,
            });
        }
        let shape: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
        match expected_bits(dtype, &shape) {
            Some(bits) => Ok((shape, bits)),
            None => Err(shape_error(name.to_owned(), dtype, shape)),
        }
    }

    fn push(&mut self, tensor: Pending) {
        self.names.insert(tensor.name.clone());
        self.tensors.push(tensor);
    }

    /// The complete file: header, graph JSON, index (8-byte aligned), data (64-byte aligned, each
    /// tensor at a multiple of 64, zero padding between) and the CRC-32 trailer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let graph = SectionRange { offset: HEADER_LEN as u64, length: self.graph.len() as u64 };
        let mut offsets = Vec::with_capacity(self.tensors.len());
        let mut data_len = 0u64;
        for tensor in &self.tensors {
            let offset = data_len.next_multiple_of(ALIGN);
            offsets.push(offset);
            data_len = offset + tensor.bytes.len() as u64;
        }
        let mut index_bytes = Vec::new();
        index_bytes.extend_from_slice(&(self.tensors.len() as u32).to_le_bytes());
        for (tensor, &offset) in self.tensors.iter().zip(&offsets) {
            encode_record(&mut index_bytes, &tensor.name, tensor.dtype, &tensor.shape, offset, tensor.bits);
        }
        let index = SectionRange {
            offset: (graph.offset + graph.length).next_multiple_of(8),
            length: index_bytes.len() as u64,
        };
        let data =
            SectionRange { offset: (index.offset + index.length).next_multiple_of(ALIGN), length: data_len };
        let header = Header { graph, index, data };

        let mut out = Vec::with_capacity((data.offset + data.length) as usize + TRAILER_LEN);
        out.extend_from_slice(&header.encode());
        out.extend_from_slice(&self.graph);
        out.resize(index.offset as usize, 0);
        out.extend_from_slice(&index_bytes);
        for (tensor, &offset) in self.tensors.iter().zip(&offsets) {
            out.resize((data.offset + offset) as usize, 0);
            out.extend_from_slice(&tensor.bytes);
        }
        out.resize((data.offset + data.length) as usize, 0);
        let crc = trailer(&out);
        out.extend_from_slice(&crc);
        out
    }

    /// Writes the file to `path` atomically: into a new temporary file in the same directory,
    /// synced, then renamed over `path`, so readers never see a half-written model.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<(), FormatError> {
        let path = path.as_ref();
        write_atomic(path, &self.to_bytes())
            .map_err(|source| FormatError::Io { path: path.to_owned(), source })
    }
}
