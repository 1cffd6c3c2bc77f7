//! The fixed 64-byte header and the CRC-32 trailer: encoding, and the structural checks (magic,
//! version, reserved bits, section bounds, overlap, alignment, checksum) that run before any
//! section is parsed.

use super::error::{FormatError, Section};
use super::{is_aligned, ALIGN, HEADER_LEN, MAGIC, MAX_GRAPH_LEN, TRAILER_LEN, VERSION};

/// Byte offset of the version field.
const VERSION_AT: usize = 8;
/// Byte offset of the flags field.
const FLAGS_AT: usize = 12;
/// Byte offset of the section table: (offset u64, length u64) for graph, index, data.
const TABLE_AT: usize = 16;

/// Where a section lies in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SectionRange {
    /// Absolute byte offset.
    pub(crate) offset: u64,
    /// Length in bytes.
    pub(crate) length: u64,
}

/// A decoded header whose sections were checked against the file they came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    /// The metadata JSON.
    pub(crate) graph: SectionRange,
    /// The tensor records.
    pub(crate) index: SectionRange,
    /// The tensor payloads.
    pub(crate) data: SectionRange,
}

impl Header {
    /// The header bytes for these sections, with the current magic and version.
    pub(crate) fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        let mut fields: Vec<u8> = Vec::with_capacity(HEADER_LEN);
        fields.extend_from_slice(&MAGIC);
        fields.extend_from_slice(&VERSION.to_le_bytes());
        fields.extend_from_slice(&0u32.to_le_bytes());
        for section in [self.graph, self.index, self.data] {
            fields.extend_from_slice(&section.offset.to_le_bytes());
            fields.extend_from_slice(&section.length.to_le_bytes());
        }
        out.copy_from_slice(&fields);
        out
    }

    /// Decodes and checks the header of a whole file, including its trailer checksum.
    pub(crate) fn decode(file: &[u8]) -> Result<Header, FormatError> {
        let have = file.len() as u64;
        if let Some(found) = array::<8>(file, 0) {
            if found != MAGIC {
                return Err(FormatError::BadMagic { found, expected: MAGIC });
            }
        }
        let min = (HEADER_LEN + TRAILER_LEN) as u64;
        let (Some(version), Some(flags)) = (u32_at(file, VERSION_AT), u32_at(file, FLAGS_AT)) else {
            return Err(FormatError::Truncated { need: min, have });
        };
        if version != VERSION {
            return Err(FormatError::UnsupportedVersion { found: version, supported: VERSION });
        }
        if flags != 0 {
            return Err(FormatError::NonzeroReserved { offset: FLAGS_AT as u64, found: flags });
        }
        let mut table = [SectionRange { offset: 0, length: 0 }; 3];
        for (i, slot) in table.iter_mut().enumerate() {
            let at = TABLE_AT + 16 * i;
            match (u64_at(file, at), u64_at(file, at + 8)) {
                (Some(offset), Some(length)) => *slot = SectionRange { offset, length },
                _ => return Err(FormatError::Truncated { need: min, have }),
            }
        }
        let header = Header { graph: table[0], index: table[1], data: table[2] };
        header.check_layout(have)?;
        check_crc(file)?;
        Ok(header)
    }

    /// The sections with their names, in table order.
    fn sections(&self) -> [(Section, SectionRange); 3] {
        [(Section::Graph, self.graph), (Section::Index, self.index), (Section::Data, self.data)]
    }

    /// Section bounds, truncation, overlap, alignment and the graph size cap.
    fn check_layout(&self, have: u64) -> Result<(), FormatError> {
        let mut body_end = HEADER_LEN as u64;
        for (section, range) in self.sections() {
            let end = range.offset.checked_add(range.length);
            match end {
                Some(end) if range.offset >= HEADER_LEN as u64 => body_end = body_end.max(end),
                _ => {
                    return Err(FormatError::SectionOutOfBounds {
                        section,
                        offset: range.offset,
                        length: range.length,
                        body_end: have.saturating_sub(TRAILER_LEN as u64),
                    })
                }
            }
        }
        if self.graph.length > MAX_GRAPH_LEN {
            return Err(FormatError::GraphTooLarge { length: self.graph.length, max: MAX_GRAPH_LEN });
        }
        let need = body_end.saturating_add(TRAILER_LEN as u64);
        if need > have {
            return Err(FormatError::Truncated { need, have });
        }
        let sections = self.sections();
        for (i, (a, ra)) in sections.iter().enumerate() {
            for (b, rb) in sections.iter().skip(i + 1) {
                // Ends fit in u64 (checked above); empty sections overlap nothing.
                let overlap = ra.length > 0
                    && rb.length > 0
                    && ra.offset < rb.offset + rb.length
                    && rb.offset < ra.offset + ra.length;
                if overlap {
                    let (first, second) = if ra.offset <= rb.offset { (*a, *b) } else { (*b, *a) };
                    return Err(FormatError::SectionsOverlap { first, second });
                }
            }
        }
        if !is_aligned(self.data.offset) {
            return Err(FormatError::MisalignedSection {
                section: Section::Data,
                offset: self.data.offset,
                align: ALIGN,
            });
        }
        Ok(())
    }
}

/// The CRC-32 trailer of a file whose body is `body`.
pub(crate) fn trailer(body: &[u8]) -> [u8; TRAILER_LEN] {
    crc32fast::hash(body).to_le_bytes()
}

/// Compares the trailer with the CRC-32 of everything before it.
fn check_crc(file: &[u8]) -> Result<(), FormatError> {
    let have = file.len() as u64;
    let split = file.len().checked_sub(TRAILER_LEN);
    let Some((body, tail)) = split.and_then(|at| Some((file.get(..at)?, file.get(at..)?))) else {
        return Err(FormatError::Truncated { need: (HEADER_LEN + TRAILER_LEN) as u64, have });
    };
    let expected = tail.try_into().map(u32::from_le_bytes).unwrap_or_default();
    let found = crc32fast::hash(body);
    if expected != found {
        return Err(FormatError::ChecksumMismatch { expected, found });
    }
    Ok(())
}

/// `N` bytes at `at`, if the file has them.
fn array<const N: usize>(bytes: &[u8], at: usize) -> Option<[u8; N]> {
    bytes.get(at..at.checked_add(N)?)?.try_into().ok()
}

/// A little-endian u32 at `at`.
fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    array(bytes, at).map(u32::from_le_bytes)
}

/// A little-endian u64 at `at`.
fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    array(bytes, at).map(u64::from_le_bytes)
}
