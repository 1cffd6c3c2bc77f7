//! The tensor index: one binary record per tensor (name, dtype, shape, offset, size in bits),
//! its encoding, and the checks that make every record safe to view: caps, sizes, alignment,
//! bounds and overlap.

use std::collections::HashMap;

use super::error::FormatError;
use super::{is_aligned, ALIGN, MAX_NAME_LEN, MAX_RANK, MAX_TENSORS};

/// Largest logical bit count `O*C*K*K` of one binary filter tensor. The cost model rejects layers
/// beyond 2^48 MACs, so real filters are far below it, and the packed word count computed from
/// such a shape cannot overflow.
const MAX_FILTER_BITS: u64 = 1 << 48;

/// How a tensor's elements are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dtype {
    /// IEEE-754 binary32, little-endian.
    F32,
    /// IEEE-754 binary16, little-endian; read back as f32.
    F16,
    /// Bit-packed `[O, C, K, K]` binary filters in the kernels' panel layout of little-endian
    /// u64 words ([`filter_words`](crate::bit_layout::filter_words) of them).
    BinaryFilters,
    /// Bit-packed `[O, C, K, K]` binary filters stored bit-dense in OIHW order, in little-endian
    /// u64 words ([`dense_filter_words`](crate::bit_layout::dense_filter_words) of them); re-laid
    /// out into the panel layout when read. The compact storage, with no padding bits.
    DenseFilters,
}

impl Dtype {
    /// The code stored in an index record.
    pub fn code(self) -> u8 {
        match self {
            Dtype::F32 => 1,
            Dtype::F16 => 2,
            Dtype::BinaryFilters => 3,
            Dtype::DenseFilters => 4,
        }
    }

    /// Whether this dtype holds binary filters (either layout).
    pub fn is_filters(self) -> bool {
        matches!(self, Dtype::BinaryFilters | Dtype::DenseFilters)
    }

    /// The dtype of a record's code, if this version defines it.
    pub fn from_code(code: u8) -> Option<Dtype> {
        match code {
            1 => Some(Dtype::F32),
            2 => Some(Dtype::F16),
            3 => Some(Dtype::BinaryFilters),
            4 => Some(Dtype::DenseFilters),
            _ => None,
        }
    }
}

/// One tensor of a `.bnas` file, as its index record describes it. Only a validated record
/// becomes a `TensorInfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// Unique name, e.g. `cells.0._ops.1.op.0.weight`.
    pub name: String,
    /// Element storage.
    pub dtype: Dtype,
    /// Logical shape (`[O, C, K, K]` for binary filters).
    pub shape: Vec<usize>,
    /// Byte offset relative to the start of the data section, a multiple of [`ALIGN`].
    pub offset: u64,
    /// Stored size in bits, equal to what the dtype and shape require.
    pub size_bits: u64,
}

impl TensorInfo {
    /// Stored size in bytes.
    pub fn byte_len(&self) -> u64 {
        self.size_bits / 8
    }
}

/// Bits a tensor of this dtype and shape occupies, or `None` when the count overflows, exceeds
/// this platform's address space, or (for binary filters) the shape is not `[O, C, K, K]` with
/// positive sizes.
pub(crate) fn expected_bits(dtype: Dtype, shape: &[u64]) -> Option<u64> {
    let elements = shape.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d))?;
    let bits = match dtype {
        Dtype::F32 => elements.checked_mul(32)?,
        Dtype::F16 => elements.checked_mul(16)?,
        Dtype::BinaryFilters | Dtype::DenseFilters => {
            let &[o, c, k, k2] = shape else { return None };
            if k != k2 || elements == 0 || elements > MAX_FILTER_BITS {
                return None;
            }
            let words = match dtype {
                Dtype::BinaryFilters => crate::bit_layout::filter_words,
                _ => crate::bit_layout::dense_filter_words,
            };
            let words = words(usize::try_from(o).ok()?, usize::try_from(c).ok()?, usize::try_from(k).ok()?)?;
            u64::try_from(words).ok()?.checked_mul(64)?
        }
    };
    // Every stored tensor must be addressable as a byte slice here.
    usize::try_from(bits / 8).ok()?;
    Some(bits)
}

/// Appends the index record of one tensor.
pub(crate) fn encode_record(
    out: &mut Vec<u8>,
    name: &str,
    dtype: Dtype,
    shape: &[u64],
    offset: u64,
    bits: u64,
) {
    // The writer checked the name against MAX_NAME_LEN (< u16::MAX) and the rank against MAX_RANK.
    out.extend_from_slice(&(name.len() as u16).to_le_bytes());
    out.extend_from_slice(name.as_bytes());
    out.push(dtype.code());
    out.push(shape.len() as u8);
    for &d in shape {
        out.extend_from_slice(&d.to_le_bytes());
    }
    out.extend_from_slice(&offset.to_le_bytes());
    out.extend_from_slice(&bits.to_le_bytes());
}

/// The index section: a u32 record count, then the records.
#[derive(Debug)]
pub(crate) struct Index {
    /// The tensors in record order.
    pub(crate) tensors: Vec<TensorInfo>,
    /// Name to position in `tensors`.
    pub(crate) by_name: HashMap<String, usize>,
}

impl Index {
    /// Parses and validates the index section `bytes`, which starts at `section_offset` in the
    /// file, against a data section of `data_len` bytes.
    pub(crate) fn parse(bytes: &[u8], section_offset: u64, data_len: u64) -> Result<Index, FormatError> {
        let mut cursor = Cursor { bytes, pos: 0, section_offset, record: 0 };
        let count = u64::from(cursor.u32()?);
        if count > MAX_TENSORS {
            return Err(FormatError::TooManyTensors { count, max: MAX_TENSORS });
        }
        // A record is at least 20 bytes: don't let a forged count reserve more than the section.
        let capacity = usize::try_from(count.min(bytes.len() as u64 / 20)).unwrap_or(0);
        let mut tensors = Vec::with_capacity(capacity);
        let mut by_name = HashMap::with_capacity(capacity);
        for record in 0..count {
            cursor.record = record;
            let info = cursor.record_info(data_len)?;
            if by_name.insert(info.name.clone(), tensors.len()).is_some() {
                return Err(FormatError::DuplicateName { name: info.name });
            }
            tensors.push(info);
        }
        let extra = bytes.len().saturating_sub(cursor.pos) as u64;
        if extra > 0 {
            return Err(FormatError::IndexTrailingBytes { extra });
        }
        check_overlap(&tensors)?;
        Ok(Index { tensors, by_name })
    }
}

/// Fails when two non-empty tensors share bytes.
fn check_overlap(tensors: &[TensorInfo]) -> Result<(), FormatError> {
    let mut order: Vec<&TensorInfo> = tensors.iter().filter(|t| t.size_bits > 0).collect();
    order.sort_by_key(|t| t.offset);
    for pair in order.windows(2) {
        if let [a, b] = pair {
            // Validated: offset + byte_len <= data_len, so no overflow.
            if a.offset + a.byte_len() > b.offset {
                return Err(FormatError::TensorsOverlap { first: a.name.clone(), second: b.name.clone() });
            }
        }
    }
    Ok(())
}

/// Reads index fields through `.get(..)`, reporting where a record is cut short.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    section_offset: u64,
    record: u64,
}

impl<'a> Cursor<'a> {
    /// The next `n` bytes.
    fn take(&mut self, n: usize) -> Result<&'a [u8], FormatError> {
        let taken = self.pos.checked_add(n).and_then(|end| self.bytes.get(self.pos..end));
        let Some(taken) = taken else {
            return Err(FormatError::IndexTruncated {
                record: self.record,
                offset: self.section_offset.saturating_add(self.pos as u64),
            });
        };
        self.pos += n;
        Ok(taken)
    }

    /// The next `N` bytes as an array.
    fn array<const N: usize>(&mut self) -> Result<[u8; N], FormatError> {
        let bytes = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, FormatError> {
        self.array::<1>().map(|[b]| b)
    }

    fn u16(&mut self) -> Result<u16, FormatError> {
        self.array().map(u16::from_le_bytes)
    }

    fn u32(&mut self) -> Result<u32, FormatError> {
        self.array().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, FormatError> {
        self.array().map(u64::from_le_bytes)
    }

    /// One record, validated against a data section of `data_len` bytes.
    fn record_info(&mut self, data_len: u64) -> Result<TensorInfo, FormatError> {
        let record = self.record;
        let name_len = self.u16()?;
        if usize::from(name_len) > MAX_NAME_LEN {
            return Err(FormatError::NameTooLong { record, length: name_len.into(), max: MAX_NAME_LEN });
        }
        let name_at = self.section_offset.saturating_add(self.pos as u64);
        let name = std::str::from_utf8(self.take(name_len.into())?)
            .map_err(|_| FormatError::NameNotUtf8 { record, offset: name_at })?
            .to_owned();
        let code = self.u8()?;
        let Some(dtype) = Dtype::from_code(code) else {
            return Err(FormatError::UnknownDtype { name, code });
        };
        let rank = usize::from(self.u8()?);
        if rank > MAX_RANK {
            return Err(FormatError::RankTooLarge { name, rank, max: MAX_RANK });
        }
        let mut dims = Vec::with_capacity(rank);
        for _ in 0..rank {
            dims.push(self.u64()?);
        }
        let offset = self.u64()?;
        let found_bits = self.u64()?;
        let shape: Option<Vec<usize>> = dims.iter().map(|&d| usize::try_from(d).ok()).collect();
        let (Some(shape), Some(expected_bits)) = (shape, expected_bits(dtype, &dims)) else {
            return Err(shape_error(name, dtype, dims));
        };
        if found_bits != expected_bits {
            return Err(FormatError::SizeMismatch { name, expected_bits, found_bits });
        }
        if !is_aligned(offset) {
            return Err(FormatError::MisalignedOffset { name, offset, align: ALIGN });
        }
        let bytes = expected_bits / 8;
        if offset.checked_add(bytes).is_none_or(|end| end > data_len) {
            return Err(FormatError::TensorOutOfBounds { name, offset, bytes, data_len });
        }
        Ok(TensorInfo { name, dtype, shape, offset, size_bits: expected_bits })
    }
}

/// The error for a shape that [`expected_bits`] rejects.
pub(crate) fn shape_error(name: String, dtype: Dtype, shape: Vec<u64>) -> FormatError {
    let filter_shape_ok = match shape.as_slice() {
        &[o, c, k, k2] => o > 0 && c > 0 && k > 0 && k == k2,
        _ => false,
    };
    if dtype.is_filters() && !filter_shape_ok {
        FormatError::InvalidFilterShape { name, shape }
    } else {
        FormatError::ShapeOverflow { name, shape }
    }
}
