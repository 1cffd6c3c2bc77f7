//! The pickle machine's input cursor and memo.

use std::collections::HashMap;

use crate::torch::error::{Stream, TorchError};
use crate::torch::value::Value;

/// The bytes of a pickle with a cursor; every read is checked.
pub(super) struct Input<'a> {
    pub(super) data: &'a [u8],
    pub(super) pos: usize,
    pub(super) stream: Stream,
}

impl<'a> Input<'a> {
    pub(super) fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    pub(super) fn truncated(&self, what: &'static str, needed: u64) -> TorchError {
        TorchError::Truncated {
            what,
            stream: self.stream,
            offset: self.pos as u64,
            needed,
            available: self.remaining() as u64,
        }
    }

    pub(super) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], TorchError> {
        let bytes = self
            .pos
            .checked_add(n)
            .and_then(|end| self.data.get(self.pos..end))
            .ok_or_else(|| self.truncated(what, n as u64))?;
        self.pos += n;
        Ok(bytes)
    }

    /// `len` bytes, `len` read from the input (so checked before any conversion).
    pub(super) fn take_u64(&mut self, len: u64, what: &'static str) -> Result<&'a [u8], TorchError> {
        match usize::try_from(len) {
            Ok(n) if n <= self.remaining() => self.take(n, what),
            _ => Err(self.truncated(what, len)),
        }
    }

    pub(super) fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], TorchError> {
        let bytes = self.take(N, what)?;
        <[u8; N]>::try_from(bytes).map_err(|_| self.truncated(what, N as u64))
    }

    pub(super) fn u8(&mut self, what: &'static str) -> Result<u8, TorchError> {
        Ok(self.array::<1>(what)?[0])
    }

    pub(super) fn u16(&mut self, what: &'static str) -> Result<u16, TorchError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    pub(super) fn u32(&mut self, what: &'static str) -> Result<u32, TorchError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    pub(super) fn i32(&mut self, what: &'static str) -> Result<i32, TorchError> {
        Ok(i32::from_le_bytes(self.array(what)?))
    }

    pub(super) fn u64(&mut self, what: &'static str) -> Result<u64, TorchError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A text operand up to its newline, which is consumed but not returned.
    pub(super) fn line(&mut self, what: &'static str) -> Result<&'a [u8], TorchError> {
        let rest = self.data.get(self.pos..).unwrap_or_default();
        match rest.iter().position(|&b| b == b'\n') {
            Some(n) => {
                let line = rest.get(..n).unwrap_or_default();
                self.pos += n + 1;
                Ok(line)
            }
            None => Err(self.truncated(what, rest.len() as u64 + 1)),
        }
    }
}

/// Pickle's memo: objects stored by key for later GETs.
pub(super) struct Memo {
    pub(super) dense: Vec<Option<Value>>,
    pub(super) dense_limit: usize,
    pub(super) sparse: HashMap<u64, Value>,
    /// The number of keys stored, which MEMOIZE uses as its key.
    pub(super) len: u64,
}

impl Memo {
    pub(super) fn new(dense_limit: usize) -> Memo {
        Memo { dense: Vec::new(), dense_limit, sparse: HashMap::new(), len: 0 }
    }

    pub(super) fn get(&self, key: u64) -> Option<&Value> {
        match usize::try_from(key) {
            Ok(i) if i < self.dense_limit => self.dense.get(i)?.as_ref(),
            _ => self.sparse.get(&key),
        }
    }

    pub(super) fn insert(&mut self, key: u64, value: Value) {
        let old = match usize::try_from(key) {
            Ok(i) if i < self.dense_limit => {
                if i >= self.dense.len() {
                    self.dense.resize(i + 1, None);
                }
                self.dense.get_mut(i).and_then(|slot| slot.replace(value))
            }
            _ => self.sparse.insert(key, value),
        };
        if old.is_none() {
            self.len += 1;
        }
    }
}
