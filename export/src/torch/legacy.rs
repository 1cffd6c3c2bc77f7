//! The legacy serialization of `torch.save` (PyTorch before 1.6, and later ones with
//! `_use_new_zipfile_serialization=False`), which the reference's checkpoints use.
//!
//! The file is a sequence of pickles: the magic number, the serialization protocol (1001), a
//! `sys_info` dict (byte order, type sizes), the object itself with a persistent id per storage,
//! and the list of storage keys. The storages' records follow in that list's order, each an
//! element count (u64, in the writer's byte order) and then the elements. A record's byte length
//! depends on its element size, which only the persistent ids tell, so the records are located
//! after the object has been read.

use std::collections::HashMap;
use std::ops::Range;

use super::error::{StorageFailure, Stream, TorchError};
use super::pickle::{int_from_le, unpickle};
use super::state_dict::{parse_storage_pid, read_state_dict, StorageSource};
use super::tensor::TorchTensor;
use super::value::{text, Heap, Value};

/// `torch.serialization.MAGIC_NUMBER` (0x1950a86a20f9469cfc6c), as LONG1 pickles it:
/// little-endian two's complement.
const MAGIC_NUMBER: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
/// `torch.serialization.PROTOCOL_VERSION`.
const PROTOCOL_VERSION: i64 = 1001;

/// Reads the state dict of a legacy checkpoint.
pub(crate) fn read(bytes: &[u8]) -> Result<Vec<(String, TorchTensor)>, TorchError> {
    let mut heap = Heap::new();
    let magic = unpickle(bytes, 0, Stream::File, &mut heap)?;
    if magic.value != int_from_le(&MAGIC_NUMBER) {
        return Err(TorchError::BadMagic { found: heap.describe(&magic.value) });
    }
    let version = unpickle(bytes, magic.end, Stream::File, &mut heap)?;
    if version.value != Value::Int(PROTOCOL_VERSION) {
        return Err(TorchError::UnsupportedVersion { found: heap.describe(&version.value) });
    }
    let sys_info = unpickle(bytes, version.end, Stream::File, &mut heap)?;
    let big_endian = matches!(heap.lookup(&sys_info.value, "little_endian"), Some(Value::Bool(false)));
    let object = unpickle(bytes, sys_info.end, Stream::File, &mut heap)?;
    let keys = unpickle(bytes, object.end, Stream::File, &mut heap)?;
    let key_list: Vec<&str> = heap
        .sequence(&keys.value)
        .and_then(|items| items.iter().map(text).collect::<Option<Vec<_>>>())
        .ok_or_else(|| TorchError::BadStorageKeys {
            offset: object.end as u64,
            found: heap.describe(&keys.value),
        })?;

    // Element sizes by storage key, from the persistent ids; the first one wins.
    let mut element_sizes: HashMap<String, usize> = HashMap::new();
    for pid in &object.persistent_ids {
        if let Ok(storage) = parse_storage_pid(&heap, pid) {
            if let Some(class) = storage.class {
                element_sizes.entry(storage.key).or_insert(class.element_size);
            }
        }
    }
    let records = locate_records(bytes, keys.end, &key_list, &element_sizes, big_endian);
    let mut source = LegacyStorages { bytes, records, big_endian };
    read_state_dict(&heap, &object.value, &mut source)
}

/// Where each storage's elements lie in the file, or why they cannot be located.
type Records = HashMap<String, Result<Range<usize>, StorageFailure>>;

fn locate_records(
    bytes: &[u8],
    start: usize,
    keys: &[&str],
    element_sizes: &HashMap<String, usize>,
    big_endian: bool,
) -> Records {
    let mut records = Records::new();
    let mut position = start;
    let mut first_failure: Option<String> = None;
    for &key in keys {
        if let Some(first) = &first_failure {
            records.insert(key.to_owned(), Err(StorageFailure::AfterFailure { first: first.clone() }));
            continue;
        }
        match locate_record(bytes, position, element_sizes.get(key).copied(), big_endian) {
            Ok(range) => {
                position = range.end;
                records.insert(key.to_owned(), Ok(range));
            }
            Err(failure) => {
                first_failure = Some(key.to_owned());
                records.insert(key.to_owned(), Err(failure));
            }
        }
    }
    records
}

/// The elements of the record at `position`: a u64 element count, then the elements.
fn locate_record(
    bytes: &[u8],
    position: usize,
    element_size: Option<usize>,
    big_endian: bool,
) -> Result<Range<usize>, StorageFailure> {
    let element_size = element_size.ok_or(StorageFailure::UnknownElementSize)?;
    let available = bytes.len().saturating_sub(position) as u64;
    let truncated = |needed: u64| StorageFailure::Truncated { offset: position as u64, needed, available };
    let header = position
        .checked_add(8)
        .and_then(|end| bytes.get(position..end))
        .and_then(|h| <[u8; 8]>::try_from(h).ok())
        .ok_or_else(|| truncated(8))?;
    let count = if big_endian { u64::from_be_bytes(header) } else { u64::from_le_bytes(header) };
    let len = count.checked_mul(element_size as u64).and_then(|len| len.checked_add(8));
    match len {
        Some(len) if len <= available => {
            // len <= available, so these fit in usize and in the file.
            let start = position + 8;
            Ok(start..position + len as usize)
        }
        _ => Err(truncated(len.unwrap_or(u64::MAX))),
    }
}

struct LegacyStorages<'a> {
    bytes: &'a [u8],
    records: Records,
    big_endian: bool,
}

impl StorageSource for LegacyStorages<'_> {
    fn bytes(&mut self, key: &str) -> Result<&[u8], TorchError> {
        match self.records.get(key) {
            Some(Ok(range)) => self
                .bytes
                .get(range.clone())
                .ok_or_else(|| TorchError::MissingStorage { key: key.to_owned() }),
            Some(Err(reason)) => Err(TorchError::StorageData { key: key.to_owned(), reason: reason.clone() }),
            None => Err(TorchError::MissingStorage { key: key.to_owned() }),
        }
    }

    fn big_endian(&self) -> bool {
        self.big_endian
    }

    fn input_len(&self) -> u64 {
        self.bytes.len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_number_bytes() {
        let magic: u128 = 0x1950_a86a_20f9_469c_fc6c;
        assert_eq!(magic.to_le_bytes()[..10], MAGIC_NUMBER);
        assert_eq!(magic, 119_547_037_146_038_801_333_356);
    }

    #[test]
    fn records_are_located_in_key_order() {
        let mut file = vec![0xaa; 3];
        file.extend_from_slice(&2u64.to_le_bytes());
        file.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        file.extend_from_slice(&1u64.to_le_bytes());
        file.extend_from_slice(&[9]);
        let sizes = HashMap::from([("a".to_owned(), 4), ("b".to_owned(), 1)]);
        let records = locate_records(&file, 3, &["a", "b"], &sizes, false);
        assert_eq!(records["a"], Ok(11..19));
        assert_eq!(records["b"], Ok(27..28));
        // A record longer than the file, and the records after it.
        let wide = HashMap::from([("a".to_owned(), 16), ("b".to_owned(), 1)]);
        let records = locate_records(&file, 3, &["a", "b"], &wide, false);
        assert!(matches!(records["a"], Err(StorageFailure::Truncated { .. })));
        assert_eq!(records["b"], Err(StorageFailure::AfterFailure { first: "a".into() }));
        // An unknown element size.
        let records = locate_records(&file, 3, &["c", "a"], &sizes, false);
        assert_eq!(records["c"], Err(StorageFailure::UnknownElementSize));
        // A count whose byte length overflows.
        file[3..11].copy_from_slice(&u64::MAX.to_le_bytes());
        let records = locate_records(&file, 3, &["a"], &sizes, false);
        assert!(matches!(records["a"], Err(StorageFailure::Truncated { .. })));
    }
}
