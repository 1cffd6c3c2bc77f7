//! Opens `.bnas` files: memory-mapped or from a heap buffer, validated in full on open, with
//! tensors handed out as [`Floats`] and [`Words`] that view the storage in place when they can.

use std::fmt;
use std::fs::File;
use std::marker::PhantomData;
use std::ops::{Deref, Range};
use std::path::Path;
use std::sync::Arc;

use bytemuck::Pod;
use memmap2::Mmap;

use super::error::{FormatError, Section};
use super::header::{Header, SectionRange};
use super::index::{Dtype, Index, TensorInfo};
use super::metadata::Metadata;
use super::TRAILER_LEN;

/// The bytes of an open file.
enum Storage {
    /// A read-only memory map.
    Mapped(Mmap),
    /// A copy in a buffer of u64 words, so that it is 8-byte aligned; `len` bytes are used.
    Heap { words: Vec<u64>, len: usize },
}

impl Storage {
    fn bytes(&self) -> &[u8] {
        match self {
            Storage::Mapped(map) => map,
            Storage::Heap { words, len } => {
                let bytes: &[u8] = bytemuck::cast_slice(words);
                bytes.get(..*len).unwrap_or(bytes)
            }
        }
    }
}

impl fmt::Debug for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Storage::Mapped(map) => write!(f, "Mapped({} bytes)", map.len()),
            Storage::Heap { len, .. } => write!(f, "Heap({len} bytes)"),
        }
    }
}

/// The bytes of a section (`Header::decode` checked that it lies inside the file).
fn section(file: &[u8], section: Section, range: SectionRange) -> Result<&[u8], FormatError> {
    usize::try_from(range.offset)
        .ok()
        .zip(usize::try_from(range.length).ok())
        .and_then(|(start, len)| file.get(start..start.checked_add(len)?))
        .ok_or(FormatError::SectionOutOfBounds {
            section,
            offset: range.offset,
            length: range.length,
            body_end: file.len().saturating_sub(TRAILER_LEN) as u64,
        })
}

/// A tensor's values: a view into the file's storage (kept alive by an [`Arc`], so it outlives
/// the [`BnasFile`]) or, when the stored form differs from `T` (f16, misaligned, big-endian host),
/// a converted copy. Derefs to `[T]`.
pub struct TensorData<T> {
    repr: Repr<T>,
}

enum Repr<T> {
    /// `bytes` of `storage`, checked at construction to cast to `[T]`.
    View {
        storage: Arc<Storage>,
        bytes: Range<usize>,
        element: PhantomData<T>,
    },
    Owned(Vec<T>),
}

/// Float tensor values (f32 in place, f16 converted).
pub type Floats = TensorData<f32>;

/// Packed binary filter words.
pub type Words = TensorData<u64>;

impl<T: Pod> TensorData<T> {
    /// Views `bytes` of `storage` as `[T]` if the host is little-endian and the bytes are aligned
    /// for `T`; otherwise decodes a copy with `decode`.
    fn view_or_decode(storage: &Arc<Storage>, bytes: Range<usize>, decode: fn(&[u8]) -> T) -> TensorData<T> {
        let slice = storage.bytes().get(bytes.clone()).unwrap_or_default();
        if cfg!(target_endian = "little") && bytemuck::try_cast_slice::<u8, T>(slice).is_ok() {
            let storage = Arc::clone(storage);
            return TensorData { repr: Repr::View { storage, bytes, element: PhantomData } };
        }
        let values = slice.chunks_exact(std::mem::size_of::<T>()).map(decode).collect();
        TensorData { repr: Repr::Owned(values) }
    }

    /// Whether the values are viewed in place rather than copied.
    pub fn is_view(&self) -> bool {
        matches!(self.repr, Repr::View { .. })
    }
}

impl<T: Pod> Deref for TensorData<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        match &self.repr {
            Repr::View { storage, bytes, .. } => storage
                .bytes()
                .get(bytes.clone())
                .and_then(|b| bytemuck::try_cast_slice(b).ok())
                .expect("range and alignment checked when the view was made; storage is immutable"),
            Repr::Owned(values) => values,
        }
    }
}

impl<T> From<Vec<T>> for TensorData<T> {
    /// Owned values, e.g. weights computed at load time or in a benchmark.
    fn from(values: Vec<T>) -> Self {
        TensorData { repr: Repr::Owned(values) }
    }
}

impl<T: Clone> Clone for TensorData<T> {
    fn clone(&self) -> Self {
        let repr = match &self.repr {
            Repr::View { storage, bytes, .. } => {
                Repr::View { storage: Arc::clone(storage), bytes: bytes.clone(), element: PhantomData }
            }
            Repr::Owned(values) => Repr::Owned(values.clone()),
        };
        TensorData { repr }
    }
}

impl<T> fmt::Debug for TensorData<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::View { bytes, .. } => {
                write!(f, "TensorData::View({} bytes at {})", bytes.len(), bytes.start)
            }
            Repr::Owned(values) => write!(f, "TensorData::Owned({} values)", values.len()),
        }
    }
}

/// Rejects packed filters with bits set beyond their last input channel.
pub(super) fn check_padding_bits(name: &str, words: &[u64], in_channels: usize) -> Result<(), FormatError> {
    match crate::bit_layout::first_nonzero_padding(words, in_channels) {
        Some(word) => Err(FormatError::NonzeroPaddingBits { name: name.to_owned(), word }),
        None => Ok(()),
    }
}

/// An open, fully validated `.bnas` file.
#[derive(Debug)]
pub struct BnasFile {
    storage: Arc<Storage>,
    metadata: Metadata,
    index: Index,
    /// Absolute offset of the data section.
    data_start: usize,
}

impl BnasFile {
    /// Memory-maps and validates the file at `path`. Nothing is copied; tensor views point into
    /// the map.
    pub fn open(path: impl AsRef<Path>) -> Result<BnasFile, FormatError> {
        let path = path.as_ref();
        let io = |source| FormatError::Io { path: path.to_owned(), source };
        let file = File::open(path).map_err(io)?;
        // SAFETY: the map is read-only and lives in an `Arc` owned by this `BnasFile` and the
        // tensor views it hands out. As with every memmap-based loader, we assume that no other
        // process truncates or rewrites the file while it is mapped: a truncation would fault
        // (SIGBUS) on access and a rewrite would change bytes after validation. `Writer::write`
        // never modifies a file in place (it renames a new file over the old one), so files
        // produced by this crate keep their mapped contents.
        let map = unsafe { Mmap::map(&file) }.map_err(io)?;
        BnasFile::from_storage(Storage::Mapped(map))
    }

    /// Validates `bytes`, copied into an aligned heap buffer.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<BnasFile, FormatError> {
        BnasFile::from_slice(&bytes)
    }

    /// Validates a copy of `bytes` in an aligned heap buffer.
    pub fn from_slice(bytes: &[u8]) -> Result<BnasFile, FormatError> {
        let mut words = vec![0u64; bytes.len().div_ceil(8)];
        let target: &mut [u8] = bytemuck::cast_slice_mut(&mut words);
        if let Some(prefix) = target.get_mut(..bytes.len()) {
            prefix.copy_from_slice(bytes);
        }
        BnasFile::from_storage(Storage::Heap { words, len: bytes.len() })
    }

    /// Checks header, checksum, metadata and index before anything is viewed.
    fn from_storage(storage: Storage) -> Result<BnasFile, FormatError> {
        let bytes = storage.bytes();
        let header = Header::decode(bytes)?;
        let graph = section(bytes, Section::Graph, header.graph)?;
        let index_bytes = section(bytes, Section::Index, header.index)?;
        let data_start = section(bytes, Section::Data, header.data).map(|_| header.data.offset as usize)?;
        let metadata = Metadata::from_json(graph)?;
        let index = Index::parse(index_bytes, header.index.offset, header.data.length)?;
        let file = BnasFile { storage: Arc::new(storage), metadata, index, data_start };
        for info in file.tensors() {
            match info.dtype {
                Dtype::BinaryFilters => {
                    check_padding_bits(&info.name, &file.filters(&info.name)?, info.shape[1])?
                }
                // Panels re-laid out from dense bits have no padding bits: only the stored tail.
                Dtype::DenseFilters => drop(file.dense_words(info)?),
                _ => {}
            }
        }
        Ok(file)
    }

    /// The network, preprocessing, class names and provenance.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// Every tensor, in index order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.index.tensors
    }

    /// The tensor called `name`.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.index.by_name.get(name).and_then(|&i| self.index.tensors.get(i))
    }

    /// The tensor called `name`, or [`FormatError::MissingTensor`].
    fn info(&self, name: &str) -> Result<&TensorInfo, FormatError> {
        self.tensor(name).ok_or_else(|| FormatError::MissingTensor { name: name.to_owned() })
    }

    /// Absolute byte range of a validated tensor.
    fn byte_range(&self, info: &TensorInfo) -> Result<Range<usize>, FormatError> {
        let range = usize::try_from(info.offset)
            .ok()
            .and_then(|offset| self.data_start.checked_add(offset))
            .and_then(|start| Some(start..start.checked_add(usize::try_from(info.byte_len()).ok()?)?));
        match range {
            Some(range) if range.end <= self.storage.bytes().len() => Ok(range),
            _ => Err(FormatError::TensorOutOfBounds {
                name: info.name.clone(),
                offset: info.offset,
                bytes: info.byte_len(),
                data_len: self.storage.bytes().len().saturating_sub(self.data_start) as u64,
            }),
        }
    }

    /// The values of float tensor `name` as f32: F32 viewed in place, F16 converted.
    pub fn floats(&self, name: &str) -> Result<Floats, FormatError> {
        let info = self.info(name)?;
        let range = self.byte_range(info)?;
        match info.dtype {
            Dtype::F32 => Ok(Floats::view_or_decode(&self.storage, range, |b| {
                f32::from_le_bytes(b.try_into().unwrap_or_default())
            })),
            Dtype::F16 => {
                let bytes = self.storage.bytes().get(range).unwrap_or_default();
                let values = bytes
                    .chunks_exact(2)
                    .map(|b| half::f16::from_le_bytes(b.try_into().unwrap_or_default()).to_f32())
                    .collect();
                Ok(TensorData { repr: Repr::Owned(values) })
            }
            found => Err(FormatError::WrongDtype { name: name.to_owned(), expected: "F32 or F16", found }),
        }
    }

    /// [`floats`](Self::floats), after checking that the tensor has exactly `shape`.
    pub fn floats_shaped(&self, name: &str, shape: &[usize]) -> Result<Floats, FormatError> {
        self.check_shape(name, shape)?;
        self.floats(name)
    }

    /// The packed words of binary filter tensor `name` in the kernels' panel layout: viewed in
    /// place when stored so, re-laid out from the bit-dense storage otherwise.
    pub fn filters(&self, name: &str) -> Result<Words, FormatError> {
        let info = self.info(name)?;
        match info.dtype {
            Dtype::BinaryFilters => Ok(self.stored_words(info)?),
            Dtype::DenseFilters => {
                let &[o, c, k, _] = &info.shape[..] else {
                    unreachable!("the index checked the filter shape")
                };
                let panels = crate::bit_layout::panels_from_dense(&self.dense_words(info)?, o, c, k);
                Ok(TensorData { repr: Repr::Owned(panels) })
            }
            found => Err(FormatError::WrongDtype {
                name: name.to_owned(),
                expected: "BinaryFilters or DenseFilters",
                found,
            }),
        }
    }

    /// A tensor's stored bytes as little-endian u64 words.
    fn stored_words(&self, info: &TensorInfo) -> Result<Words, FormatError> {
        let range = self.byte_range(info)?;
        Ok(Words::view_or_decode(&self.storage, range, |b| {
            u64::from_le_bytes(b.try_into().unwrap_or_default())
        }))
    }

    /// The stored words of bit-dense filters, after checking that the bits after the last
    /// element are 0.
    fn dense_words(&self, info: &TensorInfo) -> Result<Words, FormatError> {
        let dense = self.stored_words(info)?;
        let used = info.shape.iter().product::<usize>() % 64;
        if let Some(&last) = dense.last().filter(|_| used != 0) {
            if last >> used != 0 {
                return Err(FormatError::NonzeroPaddingBits {
                    name: info.name.clone(),
                    word: dense.len() - 1,
                });
            }
        }
        Ok(dense)
    }

    /// [`filters`](Self::filters), after checking that the logical shape `[O, C, K, K]` is `shape`.
    pub fn filters_shaped(&self, name: &str, shape: &[usize]) -> Result<Words, FormatError> {
        self.check_shape(name, shape)?;
        self.filters(name)
    }

    fn check_shape(&self, name: &str, expected: &[usize]) -> Result<(), FormatError> {
        let info = self.info(name)?;
        if info.shape != expected {
            return Err(FormatError::ShapeMismatch {
                name: name.to_owned(),
                expected: expected.to_vec(),
                found: info.shape.clone(),
            });
        }
        Ok(())
    }
}
