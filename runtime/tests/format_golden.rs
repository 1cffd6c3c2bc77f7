//! The `.bnas` v1 golden file: `tests/golden/format_v1/tiny.bnas` must keep opening with the same
//! metadata and values, and the writer must keep producing it byte for byte. A change of the
//! layout breaks these tests; it needs a new format version and a new golden directory, not a
//! regenerated v1 file. See `tests/golden/format_v1/README.md`.

use bnas_models::NetworkConfig;
use bnas_runtime::bit_layout::pack_filters;
use bnas_runtime::data::{ColorMode, Preprocess, Resize};
use bnas_runtime::format::{
    BnasFile, Dtype, FilterLayout, FloatStorage, Metadata, Provenance, Writer, MAGIC,
};

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/format_v1/tiny.bnas");

const CLASSES: [&str; 10] =
    ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

const STEM: &str = "stem.op.0.weight";
const STEM_SHAPE: [usize; 4] = [12, 3, 3, 3];
const BIAS: &str = "classifier.bias";
const FILTERS: &str = "cells.0._ops.1.op.0.weight";
const FILTER_SHAPE: [usize; 4] = [20, 70, 3, 3];

/// BNAS-A cut to 3 cells of 4 channels, CIFAR-10 preprocessing.
fn golden_metadata() -> Metadata {
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
            std: vec![0.247, 0.2435, 0.2616],
        },
        class_names: CLASSES.iter().map(|c| c.to_string()).collect(),
        bn_eps: 1e-5,
        provenance: Provenance {
            producer: "bnas-runtime tests/format_golden.rs".into(),
            source: "formulas in tests/golden/format_v1/README.md".into(),
            created_unix: 1_700_000_000,
        },
        training: None,
    }
}

/// F32 stem weights: value i = i * 0.25.
fn stem_value(i: usize) -> f32 {
    i as f32 * 0.25
}

/// F16 classifier bias: value i = (i - 4.5) * 0.5, exact in binary16.
fn bias_value(i: usize) -> f32 {
    (i as f32 - 4.5) * 0.5
}

/// Binary filter signs: +1 iff (o + 2c + 3ky + 5kx) % 3 == 0, packed by the kernels.
fn filter_words() -> Vec<u64> {
    let [o, c, k, _] = FILTER_SHAPE;
    let mut weights = Vec::with_capacity(o * c * k * k);
    for o in 0..o {
        for c in 0..c {
            for ky in 0..k {
                for kx in 0..k {
                    weights.push(if (o + 2 * c + 3 * ky + 5 * kx) % 3 == 0 { 1.0 } else { -1.0 });
                }
            }
        }
    }
    pack_filters(&weights, o, c, k)
}

fn golden_bytes() -> Vec<u8> {
    let mut writer = Writer::new(golden_metadata()).unwrap();
    let stem: Vec<f32> = (0..STEM_SHAPE.iter().product()).map(stem_value).collect();
    writer.add_float(STEM, &STEM_SHAPE, &stem, FloatStorage::F32).unwrap();
    let bias: Vec<f32> = (0..10).map(bias_value).collect();
    writer.add_float(BIAS, &[10], &bias, FloatStorage::F16).unwrap();
    writer.add_binary_filters(FILTERS, FILTER_SHAPE, filter_words(), FilterLayout::Panels).unwrap();
    writer.to_bytes()
}

/// Writes the golden file. Run only to create a new golden directory:
/// `cargo test -p bnas-runtime --test format_golden -- --ignored format_golden_generate`.
#[test]
#[ignore = "writes tests/golden/format_v1/tiny.bnas"]
fn format_golden_generate() {
    std::fs::write(GOLDEN, golden_bytes()).unwrap();
}

fn le_u64(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
}

#[test]
fn format_golden_v1_header_layout() {
    let bytes = std::fs::read(GOLDEN).unwrap();
    assert_eq!(bytes.len(), GOLDEN_LEN);
    assert_eq!(bytes[..8], MAGIC);
    assert_eq!(bytes[..8], *b"\x89BNAS\r\n\x1a");
    assert_eq!(u32::from_le_bytes(bytes[8..12].try_into().unwrap()), 1, "version");
    assert_eq!(u32::from_le_bytes(bytes[12..16].try_into().unwrap()), 0, "flags");
    let table: Vec<u64> = (0..6).map(|i| le_u64(&bytes, 16 + 8 * i)).collect();
    assert_eq!(table, GOLDEN_SECTIONS);
    let crc = u32::from_le_bytes(bytes[bytes.len() - 4..].try_into().unwrap());
    assert_eq!(crc, GOLDEN_CRC);
    assert_eq!(crc, crc32fast::hash(&bytes[..bytes.len() - 4]));
}

#[test]
fn format_golden_v1_contents() {
    let file = BnasFile::open(GOLDEN).unwrap();
    assert_eq!(file.metadata(), &golden_metadata());
    assert_eq!(file.metadata().config.name, "bnas-a");
    assert_eq!(file.metadata().class_names[9], "truck");

    let listing: Vec<(&str, Dtype, &[usize], u64, u64)> = file
        .tensors()
        .iter()
        .map(|t| (t.name.as_str(), t.dtype, t.shape.as_slice(), t.offset, t.size_bits))
        .collect();
    assert_eq!(
        listing,
        [
            (STEM, Dtype::F32, &STEM_SHAPE[..], 0, 324 * 32),
            (BIAS, Dtype::F16, &[10][..], 1344, 10 * 16),
            // 2 panels of 16 outputs x 9 taps x 2 words of 64 channels x 16 lanes.
            (FILTERS, Dtype::BinaryFilters, &FILTER_SHAPE[..], 1408, 576 * 64),
        ]
    );

    let stem = file.floats_shaped(STEM, &STEM_SHAPE).unwrap();
    assert_eq!(stem[..4], [0.0, 0.25, 0.5, 0.75]);
    assert_eq!(stem[323], 80.75);
    assert!(stem.iter().enumerate().all(|(i, &v)| v == stem_value(i)));

    let bias = file.floats_shaped(BIAS, &[10]).unwrap();
    assert_eq!(&*bias, &[-2.25, -1.75, -1.25, -0.75, -0.25, 0.25, 0.75, 1.25, 1.75, 2.25]);

    let words = file.filters_shaped(FILTERS, &FILTER_SHAPE).unwrap();
    assert_eq!(words.len(), 576);
    assert_eq!(words[..3], GOLDEN_FIRST_WORDS);
    assert_eq!(&*words, &filter_words()[..]);
}

#[test]
fn format_golden_v1_writer_is_byte_stable() {
    assert!(std::fs::read(GOLDEN).unwrap() == golden_bytes(), "the writer no longer produces tiny.bnas");
}

/// Facts of the committed file, written down when it was generated.
const GOLDEN_LEN: usize = 7172;
/// (offset, length) of the graph, index and data sections.
const GOLDEN_SECTIONS: [u64; 6] = [64, 848, 912, 193, 1152, 6016];
const GOLDEN_CRC: u32 = 0x6691_7d47;
const GOLDEN_FIRST_WORDS: [u64; 3] = [0x9249_2492_4924_9249, 0x2492_4924_9249_2492, 0x4924_9249_2492_4924];
