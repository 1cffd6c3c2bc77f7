//! Round-trip property tests and one malformed-file test per reachable error variant.

use bnas_models::NetworkConfig;
use proptest::prelude::*;

use super::*;
use crate::data::{ColorMode, Preprocess, Resize};

/// A small real network: BNAS-A cut to 3 cells of 4 channels, CIFAR-10 input.
fn metadata() -> Metadata {
    let mut config = NetworkConfig::named("bnas-a").expect("bnas-a is registered");
    config.layers = 3;
    config.channels = 4;
    Metadata {
        config,
        preprocess: Preprocess {
            color: ColorMode::Rgb,
            height: 32,
            width: 32,
            resize: Resize::None,
            mean: vec![0.4914, 0.4822, 0.4465],
            std: vec![0.2470, 0.2435, 0.2616],
        },
        class_names: (0..10).map(|i| format!("class{i}")).collect(),
        bn_eps: 1e-5,
        provenance: Provenance { producer: "format tests".into(), source: "memory".into(), created_unix: 7 },
        training: None,
    }
}

fn filter_words(o: usize, c: usize, k: usize) -> usize {
    crate::bit_layout::filter_words(o, c, k).unwrap()
}

/// Three tensors, one per dtype.
fn sample() -> Vec<u8> {
    let mut writer = Writer::new(metadata()).unwrap();
    let weights: Vec<f32> = (0..12 * 3 * 9).map(|i| i as f32 * 0.5).collect();
    writer.add_float("stem.op.0.weight", &[12, 3, 3, 3], &weights, FloatStorage::F32).unwrap();
    writer.add_float("classifier.bias", &[10], &[1.5; 10], FloatStorage::F16).unwrap();
    // Small values: the padding bits of the second word (channels 70..128) stay clear.
    let words: Vec<u64> = (0..filter_words(8, 70, 3) as u64).map(|i| i % 64).collect();
    writer
        .add_binary_filters("cells.0._ops.1.op.0.weight", [8, 70, 3, 3], words, FilterLayout::Panels)
        .unwrap();
    writer.to_bytes()
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
}

fn put_u32(bytes: &mut [u8], at: usize, value: u32) {
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

fn put_u64(bytes: &mut [u8], at: usize, value: u64) {
    bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

/// Recomputes the trailer after a test edits the body.
fn reseal(bytes: &mut [u8]) {
    let body = bytes.len() - TRAILER_LEN;
    let crc = crc32fast::hash(&bytes[..body]);
    bytes[body..].copy_from_slice(&crc.to_le_bytes());
}

/// Header field offsets of the section table.
const GRAPH_OFFSET: usize = 16;
const GRAPH_LEN: usize = 24;
const INDEX_OFFSET: usize = 32;
const DATA_OFFSET: usize = 48;
const DATA_LEN: usize = 56;

/// A file from raw sections, laid out as the writer does, with a valid header and checksum.
fn assemble(graph: &[u8], index: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; HEADER_LEN];
    out[..8].copy_from_slice(&MAGIC);
    put_u32(&mut out, 8, VERSION);
    out.extend_from_slice(graph);
    let index_at = out.len().next_multiple_of(8);
    out.resize(index_at, 0);
    out.extend_from_slice(index);
    let data_at = out.len().next_multiple_of(64);
    out.resize(data_at, 0);
    out.extend_from_slice(data);
    out.extend_from_slice(&[0; TRAILER_LEN]);
    for (at, value) in [
        (GRAPH_OFFSET, HEADER_LEN),
        (GRAPH_LEN, graph.len()),
        (INDEX_OFFSET, index_at),
        (INDEX_OFFSET + 8, index.len()),
        (DATA_OFFSET, data_at),
        (DATA_LEN, data.len()),
    ] {
        put_u64(&mut out, at, value as u64);
    }
    reseal(&mut out);
    out
}

fn graph() -> Vec<u8> {
    serde_json::to_vec(&metadata()).unwrap()
}

/// One index record, encoded independently of the writer.
fn record(name: &[u8], code: u8, dims: &[u64], offset: u64, bits: u64) -> Vec<u8> {
    let mut out = (name.len() as u16).to_le_bytes().to_vec();
    out.extend_from_slice(name);
    out.push(code);
    out.push(dims.len() as u8);
    dims.iter().for_each(|d| out.extend_from_slice(&d.to_le_bytes()));
    out.extend_from_slice(&offset.to_le_bytes());
    out.extend_from_slice(&bits.to_le_bytes());
    out
}

/// An index section of these records.
fn index_of(records: &[Vec<u8>]) -> Vec<u8> {
    let mut out = (records.len() as u32).to_le_bytes().to_vec();
    records.iter().for_each(|r| out.extend_from_slice(r));
    out
}

/// Opens a file with one index of `records` over `data_len` zero bytes of data.
fn open_records(records: &[Vec<u8>], data_len: usize) -> Result<BnasFile, FormatError> {
    BnasFile::from_slice(&assemble(&graph(), &index_of(records), &vec![0; data_len]))
}

fn err(result: Result<BnasFile, FormatError>) -> FormatError {
    result.expect_err("malformed file was accepted")
}

#[test]
fn format_sample_round_trips_and_views_in_place() {
    let bytes = sample();
    let file = BnasFile::from_slice(&bytes).unwrap();
    assert_eq!(file.metadata(), &metadata());
    assert_eq!(file.tensors().len(), 3);
    let weights = file.floats_shaped("stem.op.0.weight", &[12, 3, 3, 3]).unwrap();
    assert!(weights.is_view());
    assert_eq!(weights[5], 2.5);
    assert_eq!(&*file.floats("classifier.bias").unwrap(), &[1.5; 10]);
    let words = file.filters_shaped("cells.0._ops.1.op.0.weight", &[8, 70, 3, 3]).unwrap();
    assert!(words.is_view());
    assert_eq!(words.len(), filter_words(8, 70, 3));
    assert_eq!(words[3], 3);
    // Views keep the storage alive after the file is dropped.
    drop(file);
    assert_eq!(weights[1], 0.5);
    // Every tensor starts 64-byte aligned in the file.
    let data_offset = u64_at(&bytes, DATA_OFFSET);
    assert_eq!(data_offset % 64, 0);
}

#[test]
fn format_open_maps_the_written_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.bnas");
    let mut writer = Writer::new(metadata()).unwrap();
    writer.add_float("a", &[3], &[1.0, 2.0, 3.0], FloatStorage::F32).unwrap();
    writer.write(&path).unwrap();
    // No temporary file is left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    let file = BnasFile::open(&path).unwrap();
    let a = file.floats("a").unwrap();
    assert!(a.is_view());
    assert_eq!(&*a, &[1.0, 2.0, 3.0]);
    assert_eq!(std::fs::read(&path).unwrap(), writer.to_bytes());
}

#[test]
fn format_empty_file_list_is_valid() {
    let file = BnasFile::from_bytes(Writer::new(metadata()).unwrap().to_bytes()).unwrap();
    assert!(file.tensors().is_empty());
}

// ---- header ----

#[test]
fn format_bad_magic() {
    let mut bytes = sample();
    bytes[0] ^= 0xff;
    assert!(
        matches!(err(BnasFile::from_slice(&bytes)), FormatError::BadMagic { found, .. } if found[0] == 0x76)
    );
}

#[test]
fn format_unsupported_version() {
    let mut bytes = sample();
    put_u32(&mut bytes, 8, 2);
    reseal(&mut bytes);
    assert!(matches!(
        err(BnasFile::from_slice(&bytes)),
        FormatError::UnsupportedVersion { found: 2, supported: 1 }
    ));
}

#[test]
fn format_nonzero_reserved() {
    let mut bytes = sample();
    put_u32(&mut bytes, 12, 4);
    reseal(&mut bytes);
    assert!(matches!(
        err(BnasFile::from_slice(&bytes)),
        FormatError::NonzeroReserved { offset: 12, found: 4 }
    ));
}

#[test]
fn format_truncated_at_every_offset() {
    let bytes = sample();
    for cut in 0..bytes.len() {
        match err(BnasFile::from_slice(&bytes[..cut])) {
            FormatError::Truncated { have, .. } => assert_eq!(have, cut as u64),
            other => panic!("cut at {cut}: {other}"),
        }
    }
}

#[test]
fn format_truncated_file_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.bnas");
    std::fs::write(&path, &sample()[..100]).unwrap();
    assert!(matches!(err(BnasFile::open(&path)), FormatError::Truncated { have: 100, .. }));
    std::fs::write(&path, b"").unwrap();
    assert!(matches!(err(BnasFile::open(&path)), FormatError::Truncated { have: 0, .. }));
}

#[test]
fn format_missing_file_is_io_error_with_path() {
    let error = err(BnasFile::open("/nonexistent/dir/model.bnas"));
    assert!(matches!(&error, FormatError::Io { path, .. } if path.ends_with("model.bnas")));
}

#[test]
fn format_section_out_of_bounds() {
    let mut bytes = sample();
    put_u64(&mut bytes, GRAPH_OFFSET, 10);
    reseal(&mut bytes);
    assert!(matches!(
        err(BnasFile::from_slice(&bytes)),
        FormatError::SectionOutOfBounds { section: Section::Graph, offset: 10, .. }
    ));
    let mut bytes = sample();
    put_u64(&mut bytes, DATA_LEN, u64::MAX);
    reseal(&mut bytes);
    assert!(matches!(
        err(BnasFile::from_slice(&bytes)),
        FormatError::SectionOutOfBounds { section: Section::Data, length: u64::MAX, .. }
    ));
}

#[test]
fn format_sections_overlap() {
    let mut bytes = sample();
    let graph_offset = u64_at(&bytes, GRAPH_OFFSET);
    put_u64(&mut bytes, INDEX_OFFSET, graph_offset + 8);
    reseal(&mut bytes);
    assert!(matches!(
        err(BnasFile::from_slice(&bytes)),
        FormatError::SectionsOverlap { first: Section::Graph, second: Section::Index }
    ));
}

#[test]
fn format_misaligned_data_section() {
    let mut bytes = sample();
    let (offset, len) = (u64_at(&bytes, DATA_OFFSET), u64_at(&bytes, DATA_LEN));
    put_u64(&mut bytes, DATA_OFFSET, offset + 8);
    put_u64(&mut bytes, DATA_LEN, len - 8);
    reseal(&mut bytes);
    assert!(matches!(
        err(BnasFile::from_slice(&bytes)),
        FormatError::MisalignedSection { section: Section::Data, align: 64, .. }
    ));
}

#[test]
fn format_checksum_mismatch_on_any_corrupted_byte() {
    let bytes = sample();
    // Past the header's structural fields: any flipped bit is caught by the CRC alone.
    for at in (HEADER_LEN..bytes.len()).step_by(7) {
        let mut corrupt = bytes.clone();
        corrupt[at] ^= 0x10;
        assert!(
            matches!(err(BnasFile::from_slice(&corrupt)), FormatError::ChecksumMismatch { .. }),
            "byte {at}"
        );
    }
}

#[test]
fn format_graph_too_large() {
    let mut bytes = sample();
    put_u64(&mut bytes, GRAPH_LEN, MAX_GRAPH_LEN + 1);
    reseal(&mut bytes);
    assert!(matches!(
        err(BnasFile::from_slice(&bytes)),
        FormatError::GraphTooLarge { length, max: MAX_GRAPH_LEN } if length == MAX_GRAPH_LEN + 1
    ));
}

// ---- graph ----

#[test]
fn format_graph_json_invalid() {
    for graph in [&b"{\"config\": 3"[..], b"\xff\xfe", b"[]", b""] {
        let bytes = assemble(graph, &index_of(&[]), &[]);
        assert!(matches!(err(BnasFile::from_slice(&bytes)), FormatError::GraphJson { .. }));
    }
}

/// The metadata JSON with one field replaced.
fn graph_with(path: &[&str], value: serde_json::Value) -> Vec<u8> {
    let mut json = serde_json::to_value(metadata()).unwrap();
    let (last, parents) = path.split_last().unwrap();
    let target = parents.iter().fold(&mut json, |v, key| &mut v[*key]);
    target[*last] = value;
    serde_json::to_vec(&json).unwrap()
}

#[test]
fn format_invalid_config() {
    let bytes = assemble(&graph_with(&["config", "layers"], 1.into()), &index_of(&[]), &[]);
    assert!(matches!(err(BnasFile::from_slice(&bytes)), FormatError::InvalidConfig { .. }));
}

#[test]
fn format_inconsistent_metadata() {
    let cases = [
        graph_with(&["class_names"], serde_json::json!(["a", "b"])),
        graph_with(&["preprocess", "height"], 28.into()),
        graph_with(&["preprocess", "color"], "grey".into()),
        graph_with(&["preprocess", "mean"], serde_json::json!([0.5, 0.5])),
        graph_with(&["preprocess", "std"], serde_json::json!([0.5, 0.0, 0.5])),
        graph_with(&["bn_eps"], 0.into()),
        graph_with(&["bn_eps"], (-1e-5).into()),
    ];
    for graph in cases {
        let bytes = assemble(&graph, &index_of(&[]), &[]);
        assert!(matches!(err(BnasFile::from_slice(&bytes)), FormatError::InconsistentMetadata { .. }));
    }
    let mut bad = metadata();
    bad.preprocess.mean[1] = f32::NAN;
    assert!(matches!(Writer::new(bad), Err(FormatError::InconsistentMetadata { .. })));
}

// ---- index ----

#[test]
fn format_too_many_tensors() {
    let index = ((MAX_TENSORS + 1) as u32).to_le_bytes();
    let bytes = assemble(&graph(), &index, &[]);
    assert!(matches!(err(BnasFile::from_slice(&bytes)), FormatError::TooManyTensors { .. }));
}

#[test]
fn format_index_truncated_in_any_record() {
    let records = [record(b"a", 1, &[2], 0, 64), record(b"bb", 2, &[3, 1], 64, 48)];
    let index = index_of(&records);
    for cut in 0..index.len() {
        let bytes = assemble(&graph(), &index[..cut], &[0; 128]);
        let expected_record = if cut < 4 + records[0].len() { 0 } else { 1 };
        match err(BnasFile::from_slice(&bytes)) {
            FormatError::IndexTruncated { record, .. } => assert_eq!(record, expected_record, "cut {cut}"),
            other => panic!("cut {cut}: {other}"),
        }
    }
}

#[test]
fn format_index_trailing_bytes() {
    let mut index = index_of(&[record(b"a", 1, &[2], 0, 64)]);
    index.push(0);
    let bytes = assemble(&graph(), &index, &[0; 8]);
    assert!(matches!(err(BnasFile::from_slice(&bytes)), FormatError::IndexTrailingBytes { extra: 1 }));
}

#[test]
fn format_name_checks() {
    let long = vec![b'x'; MAX_NAME_LEN + 1];
    assert!(matches!(
        err(open_records(&[record(&long, 1, &[1], 0, 32)], 4)),
        FormatError::NameTooLong { record: 0, length: 257, .. }
    ));
    assert!(matches!(
        err(open_records(&[record(b"ok", 1, &[1], 0, 32), record(b"\xff", 1, &[1], 64, 32)], 68)),
        FormatError::NameNotUtf8 { record: 1, .. }
    ));
    assert!(matches!(
        err(open_records(&[record(b"w", 1, &[1], 0, 32), record(b"w", 1, &[1], 64, 32)], 68)),
        FormatError::DuplicateName { name } if name == "w"
    ));
    // The longest allowed name is fine.
    let longest = vec![b'y'; MAX_NAME_LEN];
    assert!(open_records(&[record(&longest, 1, &[1], 0, 32)], 4).is_ok());
}

#[test]
fn format_rank_too_large() {
    let dims = [1u64; MAX_RANK + 1];
    assert!(matches!(
        err(open_records(&[record(b"r", 1, &dims, 0, 32)], 4)),
        FormatError::RankTooLarge { rank: 9, .. }
    ));
}

#[test]
fn format_unknown_dtype() {
    for code in [0u8, 5, 255] {
        assert!(matches!(
            err(open_records(&[record(b"d", code, &[1], 0, 32)], 4)),
            FormatError::UnknownDtype { code: c, .. } if c == code
        ));
    }
}

#[test]
fn format_invalid_filter_shape() {
    for dims in [&[4u64, 4, 3][..], &[4, 4, 3, 1], &[0, 4, 3, 3], &[4, 4, 0, 0]] {
        assert!(matches!(
            err(open_records(&[record(b"f", 3, dims, 0, 64)], 8)),
            FormatError::InvalidFilterShape { .. }
        ));
    }
}

#[test]
fn format_shape_overflow() {
    for (code, dims) in
        [(1u8, &[u64::MAX, 2][..]), (2, &[1 << 62]), (3, &[1 << 20, 1 << 20, 1 << 10, 1 << 10])]
    {
        assert!(matches!(
            err(open_records(&[record(b"s", code, dims, 0, 64)], 8)),
            FormatError::ShapeOverflow { .. }
        ));
    }
}

#[test]
fn format_size_mismatch() {
    assert!(matches!(
        err(open_records(&[record(b"m", 2, &[3], 0, 96)], 16)),
        FormatError::SizeMismatch { expected_bits: 48, found_bits: 96, .. }
    ));
    let words = filter_words(4, 64, 3) as u64;
    assert!(matches!(
        err(open_records(&[record(b"f", 3, &[4, 64, 3, 3], 0, words * 64 - 1)], 8 * words as usize)),
        FormatError::SizeMismatch { .. }
    ));
}

#[test]
fn format_misaligned_offset() {
    assert!(matches!(
        err(open_records(&[record(b"a", 1, &[1], 8, 32)], 64)),
        FormatError::MisalignedOffset { offset: 8, align: 64, .. }
    ));
}

#[test]
fn format_tensor_out_of_bounds() {
    assert!(matches!(
        err(open_records(&[record(b"a", 1, &[4], 0, 128)], 15)),
        FormatError::TensorOutOfBounds { bytes: 16, data_len: 15, .. }
    ));
    assert!(matches!(
        err(open_records(&[record(b"a", 1, &[4], u64::MAX - 63, 128)], 16)),
        FormatError::TensorOutOfBounds { .. }
    ));
}

#[test]
fn format_tensors_overlap() {
    let records =
        [record(b"a", 1, &[20], 0, 640), record(b"b", 1, &[1], 64, 32), record(b"c", 1, &[1], 256, 32)];
    assert!(matches!(
        err(open_records(&records, 260)),
        FormatError::TensorsOverlap { first, second } if first == "a" && second == "b"
    ));
    // Empty tensors overlap nothing.
    assert!(open_records(&[record(b"e", 1, &[0], 0, 0), record(b"f", 1, &[1], 0, 32)], 4).is_ok());
}

// ---- accessors and writer misuse ----

#[test]
fn format_accessor_errors() {
    let file = BnasFile::from_slice(&sample()).unwrap();
    assert!(matches!(file.floats("nope"), Err(FormatError::MissingTensor { name }) if name == "nope"));
    assert!(matches!(
        file.floats("cells.0._ops.1.op.0.weight"),
        Err(FormatError::WrongDtype { found: Dtype::BinaryFilters, .. })
    ));
    assert!(matches!(
        file.filters("classifier.bias"),
        Err(FormatError::WrongDtype { found: Dtype::F16, .. })
    ));
    assert!(matches!(
        file.floats_shaped("classifier.bias", &[1, 10]),
        Err(FormatError::ShapeMismatch { expected, found, .. }) if expected == [1, 10] && found == [10]
    ));
    assert!(matches!(
        file.filters_shaped("cells.0._ops.1.op.0.weight", &[8, 70, 1, 1]),
        Err(FormatError::ShapeMismatch { .. })
    ));
}

#[test]
fn format_writer_misuse() {
    let mut writer = Writer::new(metadata()).unwrap();
    assert!(matches!(
        writer.add_float("a", &[2, 3], &[0.0; 5], FloatStorage::F32),
        Err(FormatError::ValueCountMismatch { expected: 6, found: 5, .. })
    ));
    assert!(matches!(
        writer.add_binary_filters("f", [4, 64, 3, 3], vec![0; 3], FilterLayout::Panels),
        Err(FormatError::ValueCountMismatch { found: 3, .. })
    ));
    assert!(matches!(
        writer.add_binary_filters("f", [4, 64, 3, 1], vec![], FilterLayout::Panels),
        Err(FormatError::InvalidFilterShape { .. })
    ));
    assert!(matches!(
        writer.add_float(&"n".repeat(MAX_NAME_LEN + 1), &[], &[0.0], FloatStorage::F32),
        Err(FormatError::NameTooLong { .. })
    ));
    assert!(matches!(
        writer.add_float("r", &[1; MAX_RANK + 1], &[0.0], FloatStorage::F32),
        Err(FormatError::RankTooLarge { .. })
    ));
    writer.add_float("a", &[], &[1.0], FloatStorage::F32).unwrap();
    assert!(matches!(
        writer.add_float("a", &[1], &[1.0], FloatStorage::F16),
        Err(FormatError::DuplicateName { .. })
    ));
    // Failed adds leave nothing behind.
    let file = BnasFile::from_bytes(writer.to_bytes()).unwrap();
    assert_eq!(file.tensors().len(), 1);
    assert_eq!(file.tensor("a").unwrap().shape, Vec::<usize>::new());
}

#[test]
fn format_write_failure_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let writer = Writer::new(metadata()).unwrap();
    let target = dir.path().join("missing").join("model.bnas");
    assert!(matches!(writer.write(&target), Err(FormatError::Io { .. })));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

// ---- round trip ----

/// A tensor to write: name suffix, dtype, shape and a seed for its values.
#[derive(Debug, Clone)]
struct Case {
    dtype: Dtype,
    shape: Vec<usize>,
    seed: u64,
}

fn case() -> impl Strategy<Value = Case> {
    let float_shape = prop::collection::vec(0usize..6, 0..5);
    let filter_shape = (1usize..6, 1usize..140, 1usize..4).prop_map(|(o, c, k)| vec![o, c, k, k]);
    prop_oneof![
        (float_shape.clone(), any::<u64>()).prop_map(|(shape, seed)| Case { dtype: Dtype::F32, shape, seed }),
        (float_shape, any::<u64>()).prop_map(|(shape, seed)| Case { dtype: Dtype::F16, shape, seed }),
        (filter_shape.clone(), any::<u64>()).prop_map(|(shape, seed)| Case {
            dtype: Dtype::BinaryFilters,
            shape,
            seed
        }),
        (filter_shape, any::<u64>()).prop_map(|(shape, seed)| Case {
            dtype: Dtype::DenseFilters,
            shape,
            seed
        }),
    ]
}

/// splitmix64: deterministic values from a seed.
/// Random packed filters with the padding bits beyond channel `c` clear.
fn filter_values(seed: u64, o: usize, c: usize, k: usize) -> Vec<u64> {
    let words = crate::bit_layout::words_for(c);
    let mut filters = values(seed, filter_words(o, c, k));
    if !c.is_multiple_of(64) {
        for (i, word) in filters.iter_mut().enumerate() {
            if (i / crate::bit_layout::PANEL) % words == words - 1 {
                *word &= (1 << (c % 64)) - 1;
            }
        }
    }
    filters
}

#[test]
fn format_padding_bits_must_be_clear() {
    let name = "cells.0._ops.1.op.0.weight";
    let mut writer = Writer::new(metadata()).unwrap();
    let mut words = vec![0u64; filter_words(8, 70, 3)];
    // Word 16 is the second (last) word of tap 0 for lane 0: bit 6 is channel 70, padding.
    words[16] = 1 << 6;
    assert!(matches!(
        writer.add_binary_filters(name, [8, 70, 3, 3], words.clone(), FilterLayout::Panels),
        Err(FormatError::NonzeroPaddingBits { word: 16, .. })
    ));
    words[16] = 1 << 5;
    writer.add_binary_filters(name, [8, 70, 3, 3], words, FilterLayout::Panels).unwrap();
    let mut bytes = writer.to_bytes();
    // Set the padding bit in the stored file and reseal it.
    let data = u64_at(&bytes, 48) as usize;
    let at = data + 16 * 8;
    assert_eq!(bytes[at], 1 << 5);
    bytes[at] |= 1 << 6;
    reseal(&mut bytes);
    assert!(matches!(err(BnasFile::from_slice(&bytes)), FormatError::NonzeroPaddingBits { word: 16, .. }));
}

#[test]
fn dense_filter_bits_after_the_last_element_must_be_clear() {
    let mut writer = Writer::new(metadata()).unwrap();
    // 1 * 3 * 3 * 3 = 27 filter bits: one word, bits 27.. are padding.
    let words = crate::bit_layout::pack_filters(&[1.0; 27], 1, 3, 3);
    writer.add_binary_filters("f", [1, 3, 3, 3], words, FilterLayout::Dense).unwrap();
    let mut bytes = writer.to_bytes();
    let file = BnasFile::from_slice(&bytes).unwrap();
    assert_eq!(file.tensors()[0].dtype, Dtype::DenseFilters);
    assert_eq!(file.tensors()[0].size_bits, 64);
    let data = u64_at(&bytes, 48) as usize;
    assert_eq!(u64_at(&bytes, data), (1 << 27) - 1);
    bytes[data + 3] |= 1 << 4; // bit 28
    reseal(&mut bytes);
    assert!(matches!(err(BnasFile::from_slice(&bytes)), FormatError::NonzeroPaddingBits { word: 0, .. }));
}

fn values(seed: u64, n: usize) -> Vec<u64> {
    let mut state = seed;
    (0..n)
        .map(|_| {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn format_round_trip(cases in prop::collection::vec(case(), 0..8), names in prop::collection::vec("[a-z0-9._]{0,12}", 8)) {
        let mut writer = Writer::new(metadata()).unwrap();
        let named: Vec<(String, &Case)> =
            cases.iter().enumerate().map(|(i, c)| (format!("{i}/{}", names[i]), c)).collect();
        for (name, c) in &named {
            let n = c.shape.iter().product::<usize>();
            match c.dtype {
                // Arbitrary bit patterns, NaNs included: F32 must come back bit-exact.
                Dtype::F32 => {
                    let v: Vec<f32> = values(c.seed, n).iter().map(|&b| f32::from_bits(b as u32)).collect();
                    writer.add_float(name, &c.shape, &v, FloatStorage::F32).unwrap();
                }
                Dtype::F16 => {
                    let v: Vec<f32> = values(c.seed, n).iter().map(|&b| (b as i32) as f32 / 1e5).collect();
                    writer.add_float(name, &c.shape, &v, FloatStorage::F16).unwrap();
                }
                Dtype::BinaryFilters | Dtype::DenseFilters => {
                    let [o, ch, k, _] = c.shape[..] else { unreachable!() };
                    let layout = if c.dtype == Dtype::DenseFilters { FilterLayout::Dense } else { FilterLayout::Panels };
                    writer.add_binary_filters(name, [o, ch, k, k], filter_values(c.seed, o, ch, k), layout).unwrap();
                }
            }
        }
        let bytes = writer.to_bytes();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.bnas");
        writer.write(&path).unwrap();
        for file in [BnasFile::from_slice(&bytes).unwrap(), BnasFile::open(&path).unwrap()] {
            prop_assert_eq!(file.metadata(), &metadata());
            prop_assert_eq!(file.tensors().len(), named.len());
            for (info, (name, c)) in file.tensors().iter().zip(&named) {
                prop_assert_eq!(&info.name, name);
                prop_assert_eq!(info.dtype, c.dtype);
                prop_assert_eq!(&info.shape, &c.shape);
                prop_assert!(is_aligned(info.offset));
                let n = c.shape.iter().product::<usize>();
                match c.dtype {
                    Dtype::F32 => {
                        let got = file.floats_shaped(name, &c.shape).unwrap();
                        let bits: Vec<u32> = got.iter().map(|v| v.to_bits()).collect();
                        let want: Vec<u32> = values(c.seed, n).iter().map(|&b| b as u32).collect();
                        prop_assert_eq!(bits, want);
                    }
                    Dtype::F16 => {
                        let got = file.floats(name).unwrap();
                        let want: Vec<f32> = values(c.seed, n)
                            .iter()
                            .map(|&b| half::f16::from_f32((b as i32) as f32 / 1e5).to_f32())
                            .collect();
                        prop_assert_eq!(&*got, &want[..]);
                    }
                    Dtype::BinaryFilters => {
                        let got = file.filters_shaped(name, &c.shape).unwrap();
                        let (o, ch, k) = (c.shape[0], c.shape[1], c.shape[2]);
                        prop_assert_eq!(&*got, &filter_values(c.seed, o, ch, k)[..]);
                    }
                    // Dense storage keeps every real filter bit; panel lanes past O come back 0.
                    Dtype::DenseFilters => {
                        let got = file.filters_shaped(name, &c.shape).unwrap();
                        let (o, ch, k) = (c.shape[0], c.shape[1], c.shape[2]);
                        let depth = k * k * crate::bit_layout::words_for(ch);
                        let mut want = filter_values(c.seed, o, ch, k);
                        for (i, word) in want.iter_mut().enumerate() {
                            let (panel, lane) = (i / (16 * depth), i % 16);
                            if panel * 16 + lane >= o {
                                *word = 0;
                            }
                        }
                        prop_assert_eq!(&*got, &want[..]);
                        prop_assert_eq!(info.size_bits, (o * ch * k * k).div_ceil(64) as u64 * 64);
                    }
                }
            }
        }
    }

    /// Arbitrary edits of a valid file are rejected or accepted, never a panic.
    #[test]
    fn format_mutations_never_panic(edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6), reseal_crc in any::<bool>()) {
        let mut bytes = sample();
        for (at, value) in edits {
            let i = at.index(bytes.len() - TRAILER_LEN);
            bytes[i] = value;
        }
        if reseal_crc {
            reseal(&mut bytes);
        }
        if let Ok(file) = BnasFile::from_slice(&bytes) {
            for info in file.tensors() {
                let _ = file.floats(&info.name).map(|f| f.len());
                let _ = file.filters(&info.name).map(|w| w.len());
            }
        }
    }
}
