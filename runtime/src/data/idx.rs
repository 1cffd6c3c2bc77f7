//! MNIST and Fashion-MNIST in the IDX format: `{train,t10k}-{images-idx3,labels-idx1}-ubyte`,
//! each plain or gzip-compressed (`.gz`). Headers are big-endian, as the format defines.

use std::path::{Path, PathBuf};

use super::file::{read_capped, MAX_DATASET_BYTES};
use super::{DataError, Dataset, DatasetKind, Example, RawImage, Split};

const IMAGES_MAGIC: u32 = 0x0000_0803;
const LABELS_MAGIC: u32 = 0x0000_0801;
const IMAGES_HEADER: usize = 16;
const LABELS_HEADER: usize = 8;
pub(super) const CLASSES: usize = 10;

pub(super) const FASHION_MNIST_CLASSES: [&str; CLASSES] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// A whole IDX split in memory; examples are sliced out of the image file's bytes.
pub(super) struct IdxDataset {
    kind: DatasetKind,
    /// The image file, header included.
    images: Vec<u8>,
    /// The label file, header included.
    labels: Vec<u8>,
    rows: usize,
    cols: usize,
    class_names: Vec<String>,
}

impl IdxDataset {
    /// Reads and validates the image and label files of `split` under `root`.
    pub(super) fn open(kind: DatasetKind, root: &Path, split: Split) -> Result<Self, DataError> {
        let prefix = match split {
            Split::Train => "train",
            Split::Test => "t10k",
        };
        let (images_path, gzip) = locate(root, &format!("{prefix}-images-idx3-ubyte"))?;
        let images = read_capped(&images_path, gzip, MAX_DATASET_BYTES)?;
        let (image_count, rows, cols) = parse_images_header(&images_path, &images)?;

        let (labels_path, gzip) = locate(root, &format!("{prefix}-labels-idx1-ubyte"))?;
        let labels = read_capped(&labels_path, gzip, MAX_DATASET_BYTES - images.len() as u64)?;
        let label_count = parse_labels(&labels_path, &labels)?;
        if image_count != label_count {
            return Err(DataError::CountMismatch {
                images: images_path,
                image_count,
                labels: labels_path,
                label_count,
            });
        }
        let class_names = kind.class_names().expect("IDX data sets have fixed class names");
        Ok(IdxDataset { kind, images, labels, rows, cols, class_names })
    }
}

impl Dataset for IdxDataset {
    fn len(&self) -> usize {
        self.labels.len() - LABELS_HEADER
    }

    fn get(&self, index: usize) -> Result<Example, DataError> {
        let out_of_range = || DataError::IndexOutOfRange { index, len: self.len() };
        let label = *self.labels.get(LABELS_HEADER + index).ok_or_else(out_of_range)?;
        let size = self.rows * self.cols;
        let start = IMAGES_HEADER + index * size;
        let pixels = self.images.get(start..start + size).ok_or_else(out_of_range)?.to_vec();
        let image = RawImage { width: self.cols, height: self.rows, channels: 1, pixels };
        Ok(Example { image, label: usize::from(label) })
    }

    fn class_names(&self) -> &[String] {
        &self.class_names
    }

    fn kind(&self) -> DatasetKind {
        self.kind
    }
}

/// `root/name` if it exists, else `root/name.gz`; the flag says which (true: gzip).
fn locate(root: &Path, name: &str) -> Result<(PathBuf, bool), DataError> {
    let plain = root.join(name);
    if plain.is_file() {
        return Ok((plain, false));
    }
    let gzip = root.join(format!("{name}.gz"));
    if gzip.is_file() {
        return Ok((gzip, true));
    }
    Err(DataError::MissingFile { path: plain, hint: " (nor its .gz)" })
}

/// Big-endian u32 number `field` of the header; the header length was checked.
fn header_u32(bytes: &[u8], field: usize) -> u32 {
    let mut word = [0; 4];
    word.copy_from_slice(bytes.get(field * 4..field * 4 + 4).unwrap_or(&[0; 4]));
    u32::from_be_bytes(word)
}

/// Checks the header length and magic of an IDX file; returns its dimensions (field 1 onwards).
fn parse_header<const N: usize>(path: &Path, bytes: &[u8], magic: u32) -> Result<[usize; N], DataError> {
    let header = 4 * (N + 1);
    if bytes.len() < header {
        return Err(DataError::Truncated {
            path: path.to_owned(),
            expected: header as u64,
            actual: bytes.len() as u64,
        });
    }
    let found = header_u32(bytes, 0);
    if found != magic {
        return Err(DataError::BadMagic { path: path.to_owned(), expected: magic, found });
    }
    Ok(std::array::from_fn(|i| header_u32(bytes, i + 1) as usize))
}

/// Checks that `bytes` is exactly `header + payload` bytes long.
fn check_length(path: &Path, bytes: &[u8], header: usize, dims: &[usize]) -> Result<(), DataError> {
    let payload = dims.iter().try_fold(1u64, |n, &d| n.checked_mul(d as u64));
    let expected = payload.and_then(|p| p.checked_add(header as u64)).ok_or_else(|| {
        DataError::BadHeader { path: path.to_owned(), reason: format!("dimensions {dims:?} overflow") }
    })?;
    let actual = bytes.len() as u64;
    let path = path.to_owned();
    match actual.cmp(&expected) {
        std::cmp::Ordering::Less => Err(DataError::Truncated { path, expected, actual }),
        std::cmp::Ordering::Greater => Err(DataError::TrailingBytes { path, expected, actual }),
        std::cmp::Ordering::Equal => Ok(()),
    }
}

/// Validates an `idx3` image file; returns (count, rows, cols).
fn parse_images_header(path: &Path, bytes: &[u8]) -> Result<(usize, usize, usize), DataError> {
    let [count, rows, cols] = parse_header::<3>(path, bytes, IMAGES_MAGIC)?;
    if rows == 0 || cols == 0 {
        return Err(DataError::BadHeader {
            path: path.to_owned(),
            reason: format!("image size {rows}x{cols} has a zero side"),
        });
    }
    check_length(path, bytes, IMAGES_HEADER, &[count, rows, cols])?;
    Ok((count, rows, cols))
}

/// Validates an `idx1` label file and its labels; returns the count.
fn parse_labels(path: &Path, bytes: &[u8]) -> Result<usize, DataError> {
    let [count] = parse_header::<1>(path, bytes, LABELS_MAGIC)?;
    check_length(path, bytes, LABELS_HEADER, &[count])?;
    let labels = bytes.get(LABELS_HEADER..).unwrap_or_default();
    if let Some((index, &label)) = labels.iter().enumerate().find(|(_, &l)| usize::from(l) >= CLASSES) {
        return Err(DataError::LabelOutOfRange {
            path: path.to_owned(),
            index,
            label: usize::from(label),
            classes: CLASSES,
        });
    }
    Ok(count)
}
