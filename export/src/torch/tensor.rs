//! The tensors the reader returns, and their assembly from storage bytes: strides and offsets
//! applied, elements decoded from the checkpoint's byte order into a row-major vector.

use std::fmt;

use half::{bf16, f16};

use super::error::TorchError;

/// The most dimensions a tensor may have (PyTorch's own limit is 64 too).
pub(crate) const MAX_RANK: usize = 64;

/// How many times larger than its file (or storage, whichever is larger) one tensor may be.
/// A tensor is larger than its storage only when it repeats elements through zero strides
/// (`expand`); the cap keeps a few bytes from asking for an absurd allocation.
pub(crate) const MAX_EXPANSION: u64 = 16;

/// The element type of a [`TorchTensor`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TorchDType {
    /// `torch.float32`.
    F32,
    /// `torch.float64`.
    F64,
    /// `torch.float16`.
    F16,
    /// `torch.bfloat16`.
    BF16,
    /// `torch.int64`.
    I64,
    /// `torch.int32`.
    I32,
    /// `torch.int16`.
    I16,
    /// `torch.int8`.
    I8,
    /// `torch.uint8`.
    U8,
    /// `torch.bool`.
    Bool,
}

impl TorchDType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            TorchDType::F64 | TorchDType::I64 => 8,
            TorchDType::F32 | TorchDType::I32 => 4,
            TorchDType::F16 | TorchDType::BF16 | TorchDType::I16 => 2,
            TorchDType::I8 | TorchDType::U8 | TorchDType::Bool => 1,
        }
    }

    /// Whether the type is a floating-point one.
    pub fn is_float(self) -> bool {
        matches!(self, TorchDType::F32 | TorchDType::F64 | TorchDType::F16 | TorchDType::BF16)
    }

    /// PyTorch's name, as in `torch.float32`.
    pub fn name(self) -> &'static str {
        match self {
            TorchDType::F32 => "float32",
            TorchDType::F64 => "float64",
            TorchDType::F16 => "float16",
            TorchDType::BF16 => "bfloat16",
            TorchDType::I64 => "int64",
            TorchDType::I32 => "int32",
            TorchDType::I16 => "int16",
            TorchDType::I8 => "int8",
            TorchDType::U8 => "uint8",
            TorchDType::Bool => "bool",
        }
    }

    /// The dtype a `torch.<name>` global names (`torch.float32`, `torch.float`, ...).
    pub(crate) fn from_torch_name(name: &str) -> Option<TorchDType> {
        Some(match name {
            "float32" | "float" => TorchDType::F32,
            "float64" | "double" => TorchDType::F64,
            "float16" | "half" => TorchDType::F16,
            "bfloat16" => TorchDType::BF16,
            "int64" | "long" => TorchDType::I64,
            "int32" | "int" => TorchDType::I32,
            "int16" | "short" => TorchDType::I16,
            "int8" => TorchDType::I8,
            "uint8" => TorchDType::U8,
            "bool" => TorchDType::Bool,
            _ => return None,
        })
    }
}

impl fmt::Display for TorchDType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A storage class of a persistent id (`torch.FloatStorage`, `torch.cuda.HalfStorage`,
/// `torch.UntypedStorage`...): its element size, and its dtype when the reader converts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StorageClass {
    pub element_size: usize,
    pub dtype: Option<TorchDType>,
}

impl StorageClass {
    /// The class named `name` (without its module). Classes the reader does not convert
    /// (complex, quantized) still have an element size, so a legacy file can skip their data.
    pub(crate) fn from_name(name: &str) -> Option<StorageClass> {
        let (element_size, dtype) = match name {
            "FloatStorage" => (4, Some(TorchDType::F32)),
            "DoubleStorage" => (8, Some(TorchDType::F64)),
            "HalfStorage" => (2, Some(TorchDType::F16)),
            "BFloat16Storage" => (2, Some(TorchDType::BF16)),
            "LongStorage" => (8, Some(TorchDType::I64)),
            "IntStorage" => (4, Some(TorchDType::I32)),
            "ShortStorage" => (2, Some(TorchDType::I16)),
            "CharStorage" => (1, Some(TorchDType::I8)),
            "ByteStorage" | "UntypedStorage" => (1, Some(TorchDType::U8)),
            "BoolStorage" => (1, Some(TorchDType::Bool)),
            "ComplexFloatStorage" => (8, None),
            "ComplexDoubleStorage" => (16, None),
            "QInt8Storage" | "QUInt8Storage" | "QUInt4x2Storage" | "QUInt2x4Storage" => (1, None),
            "QInt32Storage" => (4, None),
            _ => return None,
        };
        Some(StorageClass { element_size, dtype })
    }
}

/// One tensor of a checkpoint, contiguous, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct TorchTensor {
    /// The size of each dimension; empty for a scalar.
    pub shape: Vec<usize>,
    /// The elements in row-major order.
    pub values: TorchValues,
}

/// The elements of a [`TorchTensor`], in its element type.
#[derive(Debug, Clone, PartialEq)]
pub enum TorchValues {
    /// `torch.float32`.
    F32(Vec<f32>),
    /// `torch.float64`.
    F64(Vec<f64>),
    /// `torch.float16`.
    F16(Vec<f16>),
    /// `torch.bfloat16`.
    BF16(Vec<bf16>),
    /// `torch.int64`.
    I64(Vec<i64>),
    /// `torch.int32`.
    I32(Vec<i32>),
    /// `torch.int16`.
    I16(Vec<i16>),
    /// `torch.int8`.
    I8(Vec<i8>),
    /// `torch.uint8`.
    U8(Vec<u8>),
    /// `torch.bool`.
    Bool(Vec<bool>),
}

impl TorchValues {
    /// The element type.
    pub fn dtype(&self) -> TorchDType {
        match self {
            TorchValues::F32(_) => TorchDType::F32,
            TorchValues::F64(_) => TorchDType::F64,
            TorchValues::F16(_) => TorchDType::F16,
            TorchValues::BF16(_) => TorchDType::BF16,
            TorchValues::I64(_) => TorchDType::I64,
            TorchValues::I32(_) => TorchDType::I32,
            TorchValues::I16(_) => TorchDType::I16,
            TorchValues::I8(_) => TorchDType::I8,
            TorchValues::U8(_) => TorchDType::U8,
            TorchValues::Bool(_) => TorchDType::Bool,
        }
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        match self {
            TorchValues::F32(v) => v.len(),
            TorchValues::F64(v) => v.len(),
            TorchValues::F16(v) => v.len(),
            TorchValues::BF16(v) => v.len(),
            TorchValues::I64(v) => v.len(),
            TorchValues::I32(v) => v.len(),
            TorchValues::I16(v) => v.len(),
            TorchValues::I8(v) => v.len(),
            TorchValues::U8(v) => v.len(),
            TorchValues::Bool(v) => v.len(),
        }
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl TorchTensor {
    /// The element type.
    pub fn dtype(&self) -> TorchDType {
        self.values.dtype()
    }

    /// The number of elements (the product of the shape).
    pub fn numel(&self) -> usize {
        self.values.len()
    }

    /// The elements as `f32`, for floating-point tensors only: f16 and bf16 widen exactly,
    /// f64 rounds to the nearest f32. Integer and bool tensors (such as BatchNorm's
    /// `num_batches_tracked`) give [`TorchError::WrongDtype`]; read them with
    /// [`to_i64`](Self::to_i64).
    pub fn to_f32(&self) -> Result<Vec<f32>, TorchError> {
        Ok(match &self.values {
            TorchValues::F32(v) => v.clone(),
            TorchValues::F64(v) => v.iter().map(|&x| x as f32).collect(),
            TorchValues::F16(v) => v.iter().map(|x| x.to_f32()).collect(),
            TorchValues::BF16(v) => v.iter().map(|x| x.to_f32()).collect(),
            _ => return Err(TorchError::WrongDtype { dtype: self.dtype(), target: "f32" }),
        })
    }

    /// The elements as `i64`, for integer and bool tensors only (bools read as 0 and 1).
    /// Floating-point tensors give [`TorchError::WrongDtype`].
    pub fn to_i64(&self) -> Result<Vec<i64>, TorchError> {
        Ok(match &self.values {
            TorchValues::I64(v) => v.clone(),
            TorchValues::I32(v) => v.iter().map(|&x| i64::from(x)).collect(),
            TorchValues::I16(v) => v.iter().map(|&x| i64::from(x)).collect(),
            TorchValues::I8(v) => v.iter().map(|&x| i64::from(x)).collect(),
            TorchValues::U8(v) => v.iter().map(|&x| i64::from(x)).collect(),
            TorchValues::Bool(v) => v.iter().map(|&x| i64::from(x)).collect(),
            _ => return Err(TorchError::WrongDtype { dtype: self.dtype(), target: "i64" }),
        })
    }
}

/// Where a tensor's elements lie in its storage, in elements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    pub offset: u64,
    pub shape: Vec<usize>,
    pub stride: Vec<u64>,
}

/// Copies a tensor's elements out of its storage bytes into a contiguous row-major tensor.
///
/// `base_len` is the length of the file, which with the storage bounds the output size
/// ([`MAX_EXPANSION`]).
pub(crate) fn gather(
    storage: &[u8],
    dtype: TorchDType,
    layout: &Layout,
    big_endian: bool,
    base_len: u64,
) -> Result<TorchTensor, TorchError> {
    let element_size = dtype.size() as u64;
    let limit = (storage.len() as u64).max(base_len).saturating_mul(MAX_EXPANSION);
    let numel =
        layout.shape.iter().try_fold(1u64, |n, &d| n.checked_mul(d as u64)).ok_or(TorchError::TooLarge {
            what: "tensor element count",
            size: u64::MAX,
            limit: limit / element_size,
        })?;
    let out_bytes = numel.checked_mul(element_size).filter(|&b| b <= limit).ok_or(TorchError::TooLarge {
        what: "tensor bytes",
        size: numel.saturating_mul(element_size),
        limit,
    })?;
    let out_len = usize::try_from(out_bytes).map_err(|_| TorchError::TooLarge {
        what: "tensor bytes",
        size: out_bytes,
        limit: usize::MAX as u64,
    })?;

    // A dimension of size 1 never moves the position, so its stride is irrelevant; zeroing it
    // bounds every remaining stride by the extent checked below.
    let stride: Vec<u64> =
        layout.shape.iter().zip(&layout.stride).map(|(&d, &s)| if d == 1 { 0 } else { s }).collect();

    let mut bytes = Vec::with_capacity(out_len);
    if numel > 0 {
        let out_of_bounds =
            |end: u64| TorchError::ViewOutOfBounds { end, element_size, storage_bytes: storage.len() as u64 };
        // One past the furthest element the view reaches.
        let extent = layout
            .shape
            .iter()
            .zip(&stride)
            .try_fold(layout.offset, |acc, (&d, &s)| (d as u64 - 1).checked_mul(s)?.checked_add(acc))
            .and_then(|last| last.checked_add(1))
            .ok_or_else(|| out_of_bounds(u64::MAX))?;
        if extent.checked_mul(element_size).is_none_or(|end| end > storage.len() as u64) {
            return Err(out_of_bounds(extent));
        }
        // Every position below is < extent, so byte offsets fit in usize.
        let es = element_size as usize;
        let element = |position: u64| {
            let start = position as usize * es;
            storage.get(start..start + es).ok_or_else(|| out_of_bounds(position + 1))
        };
        if is_contiguous(&layout.shape, &stride) {
            let start = layout.offset as usize * es;
            let run = storage.get(start..start + out_len).ok_or_else(|| out_of_bounds(extent))?;
            bytes.extend_from_slice(run);
        } else {
            let rank = layout.shape.len();
            let mut index = vec![0usize; rank];
            let mut position = layout.offset;
            for _ in 0..numel {
                bytes.extend_from_slice(element(position)?);
                // Odometer over the dimensions, last fastest.
                for dim in (0..rank).rev() {
                    let (Some(i), Some(&d), Some(&s)) =
                        (index.get_mut(dim), layout.shape.get(dim), stride.get(dim))
                    else {
                        break;
                    };
                    *i += 1;
                    position += s;
                    if *i < d {
                        break;
                    }
                    *i = 0;
                    position -= s * d as u64;
                }
            }
        }
    }
    Ok(TorchTensor { shape: layout.shape.clone(), values: decode(bytes, dtype, big_endian) })
}

/// Whether the strides are those of a row-major tensor of this shape (sizes 1 ignored).
fn is_contiguous(shape: &[usize], stride: &[u64]) -> bool {
    let mut expected = 1u64;
    for (&d, &s) in shape.iter().zip(stride).rev() {
        if d != 1 && s != expected {
            return false;
        }
        expected = expected.saturating_mul(d as u64);
    }
    true
}

/// Decodes packed elements in the file's byte order.
fn decode(mut bytes: Vec<u8>, dtype: TorchDType, big_endian: bool) -> TorchValues {
    let size = dtype.size();
    if big_endian && size > 1 {
        for element in bytes.chunks_exact_mut(size) {
            element.reverse();
        }
    }
    match dtype {
        TorchDType::F32 => TorchValues::F32(le(&bytes, f32::from_le_bytes)),
        TorchDType::F64 => TorchValues::F64(le(&bytes, f64::from_le_bytes)),
        TorchDType::F16 => TorchValues::F16(le(&bytes, |b| f16::from_bits(u16::from_le_bytes(b)))),
        TorchDType::BF16 => TorchValues::BF16(le(&bytes, |b| bf16::from_bits(u16::from_le_bytes(b)))),
        TorchDType::I64 => TorchValues::I64(le(&bytes, i64::from_le_bytes)),
        TorchDType::I32 => TorchValues::I32(le(&bytes, i32::from_le_bytes)),
        TorchDType::I16 => TorchValues::I16(le(&bytes, i16::from_le_bytes)),
        TorchDType::I8 => TorchValues::I8(bytes.iter().map(|&b| b as i8).collect()),
        TorchDType::U8 => TorchValues::U8(bytes),
        TorchDType::Bool => TorchValues::Bool(bytes.iter().map(|&b| b != 0).collect()),
    }
}

fn le<T, const N: usize>(bytes: &[u8], from: impl Fn([u8; N]) -> T) -> Vec<T> {
    bytes.chunks_exact(N).map(|chunk| from(<[u8; N]>::try_from(chunk).unwrap_or([0; N]))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f32_storage(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    #[test]
    fn transposed_view_is_made_contiguous() {
        let storage = f32_storage(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        let layout = Layout { offset: 0, shape: vec![3, 2], stride: vec![1, 3] };
        let t = gather(&storage, TorchDType::F32, &layout, false, 0).unwrap();
        assert_eq!(t.shape, vec![3, 2]);
        assert_eq!(t.values, TorchValues::F32(vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]));
    }

    #[test]
    fn offset_and_zero_strides() {
        let storage = f32_storage(&[9.0, 1.0, 2.0]);
        let layout = Layout { offset: 1, shape: vec![2, 3], stride: vec![1, 0] };
        let t = gather(&storage, TorchDType::F32, &layout, false, 0).unwrap();
        assert_eq!(t.values, TorchValues::F32(vec![1.0, 1.0, 1.0, 2.0, 2.0, 2.0]));
    }

    #[test]
    fn size_one_dimensions_ignore_huge_strides() {
        let storage = f32_storage(&[7.0, 8.0]);
        let layout = Layout { offset: 0, shape: vec![1, 2], stride: vec![u64::MAX, 1] };
        let t = gather(&storage, TorchDType::F32, &layout, false, 0).unwrap();
        assert_eq!(t.values, TorchValues::F32(vec![7.0, 8.0]));
    }

    #[test]
    fn views_outside_the_storage_are_errors() {
        let storage = f32_storage(&[1.0, 2.0]);
        for (offset, shape, stride) in [
            (2, vec![1], vec![1]),
            (0, vec![3], vec![1]),
            (0, vec![2, 2], vec![1, 1]),
            (u64::MAX, vec![1], vec![1]),
            (0, vec![2], vec![u64::MAX]),
        ] {
            let layout = Layout { offset, shape, stride };
            let err = gather(&storage, TorchDType::F32, &layout, false, 0).unwrap_err();
            assert!(matches!(err, TorchError::ViewOutOfBounds { .. }), "{layout:?}: {err}");
        }
    }

    #[test]
    fn absurd_expansion_is_refused() {
        let storage = f32_storage(&[1.0]);
        let layout = Layout { offset: 0, shape: vec![1 << 40, 1 << 30], stride: vec![0, 0] };
        let err = gather(&storage, TorchDType::F32, &layout, false, 1000).unwrap_err();
        assert!(matches!(err, TorchError::TooLarge { .. }), "{err}");
    }

    #[test]
    fn empty_tensors_need_no_storage() {
        let layout = Layout { offset: 100, shape: vec![0, 3], stride: vec![3, 1] };
        let t = gather(&[], TorchDType::F64, &layout, false, 0).unwrap();
        assert_eq!(t.values, TorchValues::F64(vec![]));
    }

    #[test]
    fn big_endian_elements_are_swapped() {
        let storage: Vec<u8> = [1.5f32, -2.0].iter().flat_map(|v| v.to_be_bytes()).collect();
        let layout = Layout { offset: 0, shape: vec![2], stride: vec![1] };
        let t = gather(&storage, TorchDType::F32, &layout, true, 0).unwrap();
        assert_eq!(t.values, TorchValues::F32(vec![1.5, -2.0]));
    }

    #[test]
    fn conversions() {
        let t = TorchTensor {
            shape: vec![2],
            values: TorchValues::F16(vec![f16::from_f32(0.5), f16::from_f32(-3.0)]),
        };
        assert_eq!(t.to_f32().unwrap(), vec![0.5, -3.0]);
        assert!(matches!(t.to_i64(), Err(TorchError::WrongDtype { dtype: TorchDType::F16, .. })));
        let n = TorchTensor { shape: vec![], values: TorchValues::I64(vec![7]) };
        assert_eq!(n.to_i64().unwrap(), vec![7]);
        assert!(n.to_f32().is_err());
    }
}
