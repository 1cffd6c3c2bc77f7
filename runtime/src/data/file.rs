//! Reading whole data files, plain or gzip-compressed, with a size cap.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;

use super::DataError;

/// The most bytes one data set may occupy in memory (after decompression): 1 GiB, which refuses
/// gzip bombs while holding any of the supported data sets (CIFAR-10's train split is 154 MB).
pub(super) const MAX_DATASET_BYTES: u64 = 1 << 30;

/// Reads `path` whole, decompressing it when `gzip`; more than `limit` bytes is an error.
pub(super) fn read_capped(path: &Path, gzip: bool, limit: u64) -> Result<Vec<u8>, DataError> {
    let file = File::open(path).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => DataError::MissingFile { path: path.to_owned(), hint: "" },
        _ => DataError::Io { path: path.to_owned(), source },
    })?;
    let too_large = || DataError::TooLarge { path: path.to_owned(), limit };
    let mut bytes = Vec::new();
    // One byte past the limit tells "exactly at the limit" from "over it".
    let cap = limit.saturating_add(1);
    if gzip {
        MultiGzDecoder::new(BufReader::new(file))
            .take(cap)
            .read_to_end(&mut bytes)
            .map_err(|source| DataError::Gzip { path: path.to_owned(), source })?;
    } else {
        let len = file.metadata().map_err(|source| DataError::Io { path: path.to_owned(), source })?.len();
        if len > limit {
            return Err(too_large());
        }
        bytes.reserve_exact(usize::try_from(len).map_err(|_| too_large())?);
        file.take(cap)
            .read_to_end(&mut bytes)
            .map_err(|source| DataError::Io { path: path.to_owned(), source })?;
    }
    if bytes.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(bytes)
}
