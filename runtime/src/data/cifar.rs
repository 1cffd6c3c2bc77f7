//! CIFAR-10 in its binary version: `data_batch_{1..5}.bin` (train) and `test_batch.bin` (test),
//! each a run of 3073-byte records (a label byte, then the 1024 R, 1024 G and 1024 B bytes of a
//! row-major 32x32 image), in ROOT or ROOT/cifar-10-batches-bin.

use std::path::{Path, PathBuf};

use super::file::{read_capped, MAX_DATASET_BYTES};
use super::{DataError, Dataset, DatasetKind, Example, RawImage, Split};

const SIDE: usize = 32;
const PLANE: usize = SIDE * SIDE;
/// Bytes per record: label, then three planes.
pub(super) const RECORD: usize = 1 + 3 * PLANE;
const CLASSES: usize = 10;
const SUBDIR: &str = "cifar-10-batches-bin";
const META: &str = "batches.meta.txt";
const MAX_META_BYTES: u64 = 64 * 1024;
pub(super) const STANDARD_CLASSES: [&str; CLASSES] =
    ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

/// A whole CIFAR-10 split in memory: the batch files' records, concatenated.
pub(super) struct CifarDataset {
    records: Vec<u8>,
    class_names: Vec<String>,
}

impl CifarDataset {
    /// Reads and validates the batch files of `split` and the class names.
    pub(super) fn open(root: &Path, split: Split) -> Result<Self, DataError> {
        let nested = root.join(SUBDIR);
        let dir = if nested.is_dir() { nested } else { root.to_owned() };
        let files: Vec<PathBuf> = match split {
            Split::Train => (1..=5).map(|i| dir.join(format!("data_batch_{i}.bin"))).collect(),
            Split::Test => vec![dir.join("test_batch.bin")],
        };
        let mut records = Vec::new();
        for path in &files {
            let bytes = read_capped(path, false, MAX_DATASET_BYTES - records.len() as u64)?;
            check_records(path, &bytes)?;
            records.extend_from_slice(&bytes);
        }
        if records.is_empty() {
            return Err(DataError::EmptyDataset { path: dir });
        }
        let class_names = read_class_names(&dir.join(META))?;
        Ok(CifarDataset { records, class_names })
    }
}

impl Dataset for CifarDataset {
    fn len(&self) -> usize {
        self.records.len() / RECORD
    }

    fn get(&self, index: usize) -> Result<Example, DataError> {
        let out_of_range = || DataError::IndexOutOfRange { index, len: self.len() };
        let start = index.checked_mul(RECORD).ok_or_else(out_of_range)?;
        let record = self.records.get(start..start + RECORD).ok_or_else(out_of_range)?;
        let (label, planes) = record.split_first().ok_or_else(out_of_range)?;
        let (red, rest) = planes.split_at(PLANE);
        let (green, blue) = rest.split_at(PLANE);
        let pixels = red.iter().zip(green).zip(blue).flat_map(|((&r, &g), &b)| [r, g, b]).collect();
        let image = RawImage { width: SIDE, height: SIDE, channels: 3, pixels };
        Ok(Example { image, label: usize::from(*label) })
    }

    fn class_names(&self) -> &[String] {
        &self.class_names
    }

    fn kind(&self) -> DatasetKind {
        DatasetKind::Cifar10
    }
}

/// Checks that a batch file is whole records with labels below 10.
fn check_records(path: &Path, bytes: &[u8]) -> Result<(), DataError> {
    if !bytes.len().is_multiple_of(RECORD) {
        return Err(DataError::RecordSize {
            path: path.to_owned(),
            len: bytes.len() as u64,
            record: RECORD as u64,
        });
    }
    let labels = bytes.chunks_exact(RECORD).map(|record| record.first().copied().unwrap_or_default());
    if let Some((index, label)) = labels.enumerate().find(|&(_, l)| usize::from(l) >= CLASSES) {
        return Err(DataError::LabelOutOfRange {
            path: path.to_owned(),
            index,
            label: usize::from(label),
            classes: CLASSES,
        });
    }
    Ok(())
}

/// The names in `batches.meta.txt` (one a line, blank lines ignored), or the standard ones when
/// the file is absent.
fn read_class_names(path: &Path) -> Result<Vec<String>, DataError> {
    if !path.exists() {
        return Ok(STANDARD_CLASSES.iter().map(|&n| n.to_owned()).collect());
    }
    let bytes = read_capped(path, false, MAX_META_BYTES)?;
    let names: Vec<String> = String::from_utf8_lossy(&bytes)
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect();
    if names.len() != CLASSES {
        return Err(DataError::ClassNames { path: path.to_owned(), expected: CLASSES, found: names.len() });
    }
    Ok(names)
}
