//! The zip serialization of `torch.save` (PyTorch 1.6 and later).
//!
//! All entries sit under one directory, `<name>/`: `data.pkl` (the object, each storage a
//! persistent id `('storage', class, key, location, numel)`), `data/<key>` (a storage's raw
//! bytes), `byteorder` (`little` or `big`; absent in files older than PyTorch 1.13, which were
//! little-endian) and `version`. PyTorch writes stored (uncompressed) entries; deflated ones,
//! from archives repacked by other tools, are read too.

use std::collections::HashMap;
use std::io::{self, Cursor, Read, Seek};

use zip::result::ZipError;
use zip::{CompressionMethod, ZipArchive};

use super::error::{Stream, TorchError};
use super::pickle::unpickle;
use super::state_dict::{read_state_dict, StorageSource};
use super::tensor::TorchTensor;
use super::value::Heap;

/// The largest ratio of uncompressed to compressed size deflate can reach (1032:1), plus
/// slack for tiny entries: entries claiming more are refused before any allocation.
const MAX_DEFLATE_RATIO: u64 = 1032;
const DEFLATE_SLACK: u64 = 1024;
/// The longest `byteorder` entry read.
const MAX_BYTEORDER_LEN: u64 = 64;

/// Reads the state dict of a zip checkpoint.
pub(crate) fn read(bytes: &[u8]) -> Result<Vec<(String, TorchTensor)>, TorchError> {
    let mut archive = ZipArchive::new(Cursor::new(bytes)).map_err(TorchError::Zip)?;
    let prefix = archive_prefix(&archive)?;
    let input_len = bytes.len() as u64;

    let byteorder_name = format!("{prefix}byteorder");
    let big_endian = match read_entry(&mut archive, &byteorder_name, input_len) {
        Ok(order) if order.len() as u64 <= MAX_BYTEORDER_LEN => {
            match String::from_utf8_lossy(&order).trim() {
                "little" => false,
                "big" => true,
                other => return Err(TorchError::UnsupportedByteOrder { found: other.to_owned() }),
            }
        }
        Ok(order) => {
            return Err(TorchError::TooLarge {
                what: "byteorder entry",
                size: order.len() as u64,
                limit: MAX_BYTEORDER_LEN,
            })
        }
        Err(TorchError::MissingEntry { .. }) => false,
        Err(e) => return Err(e),
    };

    let pickle = read_entry(&mut archive, &format!("{prefix}data.pkl"), input_len)?;
    let mut heap = Heap::new();
    let object = unpickle(&pickle, 0, Stream::DataPkl, &mut heap)?;
    let mut source = ZipStorages { archive, prefix, cache: HashMap::new(), big_endian, input_len };
    read_state_dict(&heap, &object.value, &mut source)
}

/// `<name>/`, the directory of the entry that is `<name>/data.pkl`.
///
/// PyTorch takes the directory of the first entry; the first `data.pkl` one directory deep is
/// taken here, which is the same for PyTorch's files and tolerates reordered archives.
fn archive_prefix<R: Read + Seek>(archive: &ZipArchive<R>) -> Result<String, TorchError> {
    archive
        .file_names()
        .filter_map(Result::ok)
        .find_map(|name| {
            let dir = name.strip_suffix("data.pkl")?;
            let top = dir.strip_suffix('/')?;
            (!top.contains('/')).then(|| dir.to_owned())
        })
        .ok_or_else(|| TorchError::MissingEntry { name: "<archive>/data.pkl".into() })
}

/// Reads one entry whole, refusing declared sizes the archive cannot back.
fn read_entry<R: Read + Seek>(
    archive: &mut ZipArchive<R>,
    name: &str,
    input_len: u64,
) -> Result<Vec<u8>, TorchError> {
    let mut file = match archive.by_name(name) {
        Ok(file) => file,
        Err(ZipError::FileNotFound) => return Err(TorchError::MissingEntry { name: name.into() }),
        Err(e) => return Err(TorchError::Zip(e)),
    };
    let compressed = file.compressed_size();
    if compressed > input_len {
        return Err(TorchError::TooLarge {
            what: "compressed zip entry",
            size: compressed,
            limit: input_len,
        });
    }
    let limit = match file.compression() {
        CompressionMethod::Stored => compressed,
        _ => compressed.saturating_mul(MAX_DEFLATE_RATIO).saturating_add(DEFLATE_SLACK),
    };
    let declared = file.size();
    if declared > limit {
        return Err(TorchError::TooLarge { what: "zip entry", size: declared, limit });
    }
    let entry_error = |source: io::Error| TorchError::ZipEntry { name: name.into(), source };
    let capacity = usize::try_from(declared).map_err(|_| TorchError::TooLarge {
        what: "zip entry",
        size: declared,
        limit: usize::MAX as u64,
    })?;
    let mut data = Vec::new();
    data.try_reserve_exact(capacity).map_err(|_| TorchError::TooLarge {
        what: "zip entry",
        size: declared,
        limit,
    })?;
    // One byte more than declared: reaching the end makes the reader check the CRC, and a
    // longer entry shows up as such.
    (&mut file).take(declared.saturating_add(1)).read_to_end(&mut data).map_err(entry_error)?;
    if data.len() as u64 != declared {
        return Err(entry_error(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} bytes, {declared} declared", data.len()),
        )));
    }
    Ok(data)
}

struct ZipStorages<'a> {
    archive: ZipArchive<Cursor<&'a [u8]>>,
    prefix: String,
    /// Storages read so far; tensors that share a storage read it once.
    cache: HashMap<String, Vec<u8>>,
    big_endian: bool,
    input_len: u64,
}

impl StorageSource for ZipStorages<'_> {
    fn bytes(&mut self, key: &str) -> Result<&[u8], TorchError> {
        if !self.cache.contains_key(key) {
            let name = format!("{}data/{key}", self.prefix);
            let data = read_entry(&mut self.archive, &name, self.input_len).map_err(|e| match e {
                TorchError::MissingEntry { .. } => TorchError::MissingStorage { key: key.to_owned() },
                other => other,
            })?;
            self.cache.insert(key.to_owned(), data);
        }
        Ok(self.cache.get(key).map(Vec::as_slice).unwrap_or_default())
    }

    fn big_endian(&self) -> bool {
        self.big_endian
    }

    fn input_len(&self) -> u64 {
        self.input_len
    }
}
