//! Readers against real data (Fashion-MNIST from the Debian package, the CIFAR-10 test images
//! that `scripts/setup.sh` extracts from the foolbox wheel) and against corrupt files.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use image::{GrayImage, ImageFormat, RgbImage};
use tempfile::TempDir;

use super::file::read_capped;
use super::*;

const CIFAR_NAMES: [&str; 10] =
    ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

// --- fixtures ---------------------------------------------------------------------------------

const SETUP_HINT: &str = "run `bash scripts/setup.sh` from the workspace root";

fn fashion_mnist_root() -> PathBuf {
    let root = DatasetKind::FashionMnist.default_root().unwrap();
    assert!(
        root.join("t10k-images-idx3-ubyte.gz").is_file(),
        "Fashion-MNIST is missing from {} (Debian package dataset-fashion-mnist): {SETUP_HINT}",
        root.display()
    );
    root
}

/// The 20 foolbox CIFAR-10 test images, `cifar10_<index>_<label>.png`, in index order.
fn cifar_samples() -> Vec<(PathBuf, usize)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.deps/cifar10-samples");
    let mut samples: Vec<(PathBuf, usize)> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}; the CIFAR-10 samples are missing: {SETUP_HINT}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter_map(|path| {
            let stem = path.file_stem()?.to_str()?.strip_prefix("cifar10_")?.to_owned();
            let label = stem.split('_').nth(1)?.parse().ok()?;
            Some((path, label))
        })
        .collect();
    assert_eq!(samples.len(), 20, "expected 20 cifar10_*.png in {}: {SETUP_HINT}", dir.display());
    samples.sort();
    samples
}

fn gunzip(path: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    GzDecoder::new(fs::File::open(path).unwrap()).read_to_end(&mut bytes).unwrap();
    bytes
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn idx_images(magic: u32, count: u32, rows: u32, cols: u32, payload: usize) -> Vec<u8> {
    let mut bytes: Vec<u8> = [magic, count, rows, cols].iter().flat_map(|v| v.to_be_bytes()).collect();
    bytes.extend((0..payload).map(|i| i as u8));
    bytes
}

fn idx_labels(magic: u32, labels: &[u8]) -> Vec<u8> {
    let mut bytes: Vec<u8> = [magic, labels.len() as u32].iter().flat_map(|v| v.to_be_bytes()).collect();
    bytes.extend_from_slice(labels);
    bytes
}

/// Writes a t10k IDX pair (plain files) into a new folder.
fn idx_pair(images: &[u8], labels: &[u8]) -> TempDir {
    let dir = TempDir::new().unwrap();
    fs::write(dir.path().join("t10k-images-idx3-ubyte"), images).unwrap();
    fs::write(dir.path().join("t10k-labels-idx1-ubyte"), labels).unwrap();
    dir
}

fn open_err(kind: DatasetKind, root: &Path, split: Split) -> DataError {
    match open(kind, root, split) {
        Ok(dataset) => panic!("expected an error, opened {} examples", dataset.len()),
        Err(e) => e,
    }
}

/// A CIFAR-10 record: label, then the R, G and B planes of an RGB image.
fn cifar_record(label: u8, image: &RgbImage) -> Vec<u8> {
    let mut record = vec![label];
    for c in 0..3 {
        record.extend(image.pixels().map(|p| p.0[c]));
    }
    record
}

// --- IDX: real Fashion-MNIST ------------------------------------------------------------------

#[test]
fn fashion_mnist_test_split_matches_a_hand_decode() {
    let root = fashion_mnist_root();
    let images = gunzip(&root.join("t10k-images-idx3-ubyte.gz"));
    let labels = gunzip(&root.join("t10k-labels-idx1-ubyte.gz"));
    // Header by hand: magic 0x803, 10000 images of 28x28; magic 0x801, 10000 labels.
    assert_eq!(images[..16], [0, 0, 8, 3, 0, 0, 0x27, 0x10, 0, 0, 0, 28, 0, 0, 0, 28]);
    assert_eq!(labels[..8], [0, 0, 8, 1, 0, 0, 0x27, 0x10]);
    assert_eq!(labels[8], 9, "the first Fashion-MNIST test image is an ankle boot");

    let dataset = open(DatasetKind::FashionMnist, &root, Split::Test).unwrap();
    assert_eq!(dataset.len(), 10000);
    assert_eq!(dataset.kind(), DatasetKind::FashionMnist);
    assert_eq!(dataset.class_names()[9], "Ankle boot");
    for index in [0, 1, 9999] {
        let example = dataset.get(index).unwrap();
        assert_eq!(example.label, usize::from(labels[8 + index]));
        assert_eq!((example.image.width, example.image.height, example.image.channels), (28, 28, 1));
        assert_eq!(example.image.pixels, images[16 + index * 784..16 + (index + 1) * 784]);
    }
    assert_eq!(dataset.get(0).unwrap().label, 9);
    // The test split is balanced: 1000 examples per class.
    let mut counts = [0; 10];
    (0..dataset.len()).for_each(|i| counts[dataset.get(i).unwrap().label] += 1);
    assert_eq!(counts, [1000; 10]);
    assert!(matches!(dataset.get(10000), Err(DataError::IndexOutOfRange { index: 10000, len: 10000 })));
}

#[test]
fn fashion_mnist_train_split_has_60000_examples() {
    let dataset = open(DatasetKind::FashionMnist, &fashion_mnist_root(), Split::Train).unwrap();
    assert_eq!(dataset.len(), 60000);
    let mut counts = [0; 10];
    (0..dataset.len()).for_each(|i| counts[dataset.get(i).unwrap().label] += 1);
    assert_eq!(counts, [6000; 10]);
}

#[test]
fn png_of_fashion_mnist_test_image_0_gives_the_reader_tensor() {
    let dataset = open(DatasetKind::FashionMnist, &fashion_mnist_root(), Split::Test).unwrap();
    let example = dataset.get(0).unwrap();
    let dir = TempDir::new().unwrap();
    let png = dir.path().join("test0.png");
    GrayImage::from_raw(28, 28, example.image.pixels.clone()).unwrap().save(&png).unwrap();

    let decoded = decode_image(&png).unwrap();
    assert_eq!(decoded, example.image);
    let pre = DatasetKind::FashionMnist.preprocess();
    let tensor = pre.apply(&decoded).unwrap();
    assert_eq!(tensor, pre.apply(&example.image).unwrap());
    assert_eq!(tensor.len(), 784);
    // batch() gives the same tensor.
    let (tensors, labels) = batch(dataset.as_ref(), &pre, &[0]).unwrap();
    assert_eq!((tensors, labels), (tensor, vec![9]));
}

// --- CIFAR-10 from the foolbox test images ----------------------------------------------------

#[test]
fn cifar_batch_built_from_the_foolbox_pngs_matches_the_png_path() {
    let samples = cifar_samples();
    let dir = TempDir::new().unwrap();
    let batch_dir = dir.path().join("cifar-10-batches-bin");
    fs::create_dir(&batch_dir).unwrap();
    let mut bin = Vec::new();
    for (path, label) in &samples {
        let image = image::open(path).unwrap().into_rgb8();
        assert_eq!(image.dimensions(), (32, 32));
        bin.extend(cifar_record(*label as u8, &image));
    }
    fs::write(batch_dir.join("test_batch.bin"), &bin).unwrap();

    // ROOT/cifar-10-batches-bin is found from ROOT; without batches.meta.txt the names are standard.
    let dataset = open(DatasetKind::Cifar10, dir.path(), Split::Test).unwrap();
    assert_eq!(dataset.len(), 20);
    assert_eq!(dataset.class_names(), CIFAR_NAMES);
    let pre = DatasetKind::Cifar10.preprocess();
    let mut expected = Vec::new();
    for (index, (path, label)) in samples.iter().enumerate() {
        let example = dataset.get(index).unwrap();
        assert_eq!(example.label, *label, "{}", path.display());
        let decoded = decode_image(path).unwrap();
        assert_eq!(example.image, decoded, "{}", path.display());
        let tensor = pre.apply(&decoded).unwrap();
        assert_eq!(pre.apply(&example.image).unwrap(), tensor, "{}", path.display());
        expected.extend(tensor);
    }
    // The first 20 CIFAR-10 test labels: cat, ship, ship, airplane, frog, ...
    let labels: Vec<usize> = samples.iter().map(|s| s.1).collect();
    assert_eq!(labels, [3, 8, 8, 0, 6, 6, 1, 6, 3, 1, 0, 9, 5, 7, 9, 8, 5, 7, 8, 6]);
    let indices: Vec<usize> = (0..20).collect();
    assert_eq!(batch(dataset.as_ref(), &pre, &indices).unwrap(), (expected, labels));

    // Class names from batches.meta.txt, read from ROOT itself as well.
    let names: String = CIFAR_NAMES.iter().map(|n| format!("{}\n", n.to_uppercase())).collect();
    fs::write(batch_dir.join("batches.meta.txt"), format!("{names}\n\n")).unwrap();
    let dataset = open(DatasetKind::Cifar10, &batch_dir, Split::Test).unwrap();
    assert_eq!(dataset.class_names()[9], "TRUCK");
    assert_eq!(dataset.len(), 20);
}

#[test]
fn class_folder_tree_from_the_foolbox_pngs() {
    let samples = cifar_samples();
    let dir = TempDir::new().unwrap();
    for (path, label) in &samples {
        let class_dir = dir.path().join("val").join(CIFAR_NAMES[*label]);
        fs::create_dir_all(&class_dir).unwrap();
        fs::copy(path, class_dir.join(path.file_name().unwrap())).unwrap();
    }
    // A train split with one class, and a stray file that is not an image.
    fs::create_dir_all(dir.path().join("train/cat")).unwrap();
    fs::copy(&samples[0].0, dir.path().join("train/cat/a.PNG")).unwrap();
    fs::write(dir.path().join("train/cat/notes.txt"), "x").unwrap();

    let dataset = open(DatasetKind::Folder, dir.path(), Split::Test).unwrap();
    assert_eq!(dataset.len(), 20);
    // Sorted class names: the 8 classes among the samples (no bird, no deer).
    let mut present: Vec<&str> = samples.iter().map(|s| CIFAR_NAMES[s.1]).collect();
    present.sort();
    present.dedup();
    assert_eq!(dataset.class_names(), present);
    let pre = Preprocess::cifar10();
    let mut seen = Vec::new();
    for index in 0..dataset.len() {
        let example = dataset.get(index).unwrap();
        let class = &dataset.class_names()[example.label];
        // Files are sorted within a class, so the sample is found by its pixels.
        let (path, label) = samples.iter().find(|(p, _)| decode_image(p).unwrap() == example.image).unwrap();
        assert_eq!(class, CIFAR_NAMES[*label]);
        assert_eq!(pre.apply(&example.image).unwrap(), pre.apply(&decode_image(path).unwrap()).unwrap());
        seen.push(path.clone());
    }
    seen.sort();
    assert_eq!(seen, samples.iter().map(|s| s.0.clone()).collect::<Vec<_>>());

    let train = open(DatasetKind::Folder, dir.path(), Split::Train).unwrap();
    assert_eq!((train.len(), train.class_names()), (1, &["cat".to_owned()][..]));
    // ImageNet preprocessing upsamples the 32x32 image (shorter side 256) and crops 224x224.
    let (tensors, labels) = batch(train.as_ref(), &Preprocess::imagenet(), &[0, 0]).unwrap();
    assert_eq!((tensors.len(), labels), (2 * 3 * 224 * 224, vec![0, 0]));

    // Without a split folder, ROOT holds the class folders.
    let flat = open(DatasetKind::Folder, &dir.path().join("val"), Split::Train).unwrap();
    assert_eq!(flat.len(), 20);
}

// --- corrupt and missing files ----------------------------------------------------------------

#[test]
fn idx_bad_magic() {
    let dir = idx_pair(&idx_images(0x804, 1, 2, 2, 4), &idx_labels(0x801, &[1]));
    match open_err(DatasetKind::Mnist, dir.path(), Split::Test) {
        DataError::BadMagic { path, expected: 0x803, found: 0x804 } => {
            assert!(path.ends_with("t10k-images-idx3-ubyte"))
        }
        e => panic!("{e}"),
    }
    let dir = idx_pair(&idx_images(0x803, 1, 2, 2, 4), &idx_labels(0x803, &[1]));
    assert!(matches!(
        open_err(DatasetKind::Mnist, dir.path(), Split::Test),
        DataError::BadMagic { expected: 0x801, found: 0x803, .. }
    ));
}

#[test]
fn idx_truncated_trailing_and_mismatched_counts() {
    let labels = idx_labels(0x801, &[1, 2]);
    let dir = idx_pair(&idx_images(0x803, 2, 2, 3, 11), &labels);
    assert!(matches!(
        open_err(DatasetKind::Mnist, dir.path(), Split::Test),
        DataError::Truncated { expected: 28, actual: 27, .. }
    ));
    let dir = idx_pair(&idx_images(0x803, 2, 2, 3, 13), &labels);
    assert!(matches!(
        open_err(DatasetKind::Mnist, dir.path(), Split::Test),
        DataError::TrailingBytes { expected: 28, actual: 29, .. }
    ));
    // A header cut short.
    let dir = idx_pair(&idx_images(0x803, 2, 2, 3, 0)[..10], &labels);
    assert!(matches!(
        open_err(DatasetKind::Mnist, dir.path(), Split::Test),
        DataError::Truncated { expected: 16, actual: 10, .. }
    ));
    let dir = idx_pair(&idx_images(0x803, 3, 2, 3, 18), &labels);
    assert!(matches!(
        open_err(DatasetKind::Mnist, dir.path(), Split::Test),
        DataError::CountMismatch { image_count: 3, label_count: 2, .. }
    ));
    // Huge dimensions: a payload the file cannot hold, and one past u64.
    let dir = idx_pair(&idx_images(0x803, u32::MAX, 1000, 1000, 0), &labels);
    assert!(matches!(open_err(DatasetKind::Mnist, dir.path(), Split::Test), DataError::Truncated { .. }));
    let dir = idx_pair(&idx_images(0x803, u32::MAX, u32::MAX, u32::MAX, 0), &labels);
    assert!(matches!(open_err(DatasetKind::Mnist, dir.path(), Split::Test), DataError::BadHeader { .. }));
    let dir = idx_pair(&idx_images(0x803, 2, 0, 3, 0), &labels);
    assert!(matches!(open_err(DatasetKind::Mnist, dir.path(), Split::Test), DataError::BadHeader { .. }));
}

#[test]
fn idx_label_out_of_range() {
    let dir = idx_pair(&idx_images(0x803, 3, 1, 1, 3), &idx_labels(0x801, &[9, 0, 10]));
    match open_err(DatasetKind::Mnist, dir.path(), Split::Test) {
        DataError::LabelOutOfRange { path, index: 2, label: 10, classes: 10 } => {
            assert!(path.ends_with("t10k-labels-idx1-ubyte"))
        }
        e => panic!("{e}"),
    }
}

#[test]
fn idx_gzip_files_and_truncated_gzip() {
    let dir = TempDir::new().unwrap();
    let images = gzip(&idx_images(0x803, 2, 2, 2, 8));
    fs::write(dir.path().join("t10k-images-idx3-ubyte.gz"), &images).unwrap();
    fs::write(dir.path().join("t10k-labels-idx1-ubyte.gz"), gzip(&idx_labels(0x801, &[4, 7]))).unwrap();
    let dataset = open(DatasetKind::Mnist, dir.path(), Split::Test).unwrap();
    assert_eq!(dataset.class_names()[7], "7");
    let example = dataset.get(1).unwrap();
    assert_eq!((example.label, example.image.pixels), (7, vec![4, 5, 6, 7]));

    fs::write(dir.path().join("t10k-images-idx3-ubyte.gz"), &images[..images.len() / 2]).unwrap();
    match open_err(DatasetKind::Mnist, dir.path(), Split::Test) {
        DataError::Gzip { path, .. } => assert!(path.ends_with("t10k-images-idx3-ubyte.gz")),
        e => panic!("{e}"),
    }
}

#[test]
fn gzip_bombs_and_oversized_files_are_refused() {
    let dir = TempDir::new().unwrap();
    let bomb = dir.path().join("bomb.gz");
    fs::write(&bomb, gzip(&vec![0; 100_000])).unwrap();
    assert!(fs::metadata(&bomb).unwrap().len() < 1000);
    assert!(matches!(read_capped(&bomb, true, 10_000), Err(DataError::TooLarge { limit: 10_000, .. })));
    assert_eq!(read_capped(&bomb, true, 100_000).unwrap().len(), 100_000);
    let plain = dir.path().join("plain");
    fs::write(&plain, [1; 11]).unwrap();
    assert!(matches!(read_capped(&plain, false, 10), Err(DataError::TooLarge { .. })));
    assert_eq!(read_capped(&plain, false, 11).unwrap(), [1; 11]);
}

#[test]
fn missing_files_are_named() {
    let dir = TempDir::new().unwrap();
    match open_err(DatasetKind::FashionMnist, dir.path(), Split::Train) {
        DataError::MissingFile { path, .. } => assert!(path.ends_with("train-images-idx3-ubyte")),
        e => panic!("{e}"),
    }
    fs::write(dir.path().join("data_batch_1.bin"), [0; 3073]).unwrap();
    fs::write(dir.path().join("data_batch_2.bin"), [0; 3073]).unwrap();
    match open_err(DatasetKind::Cifar10, dir.path(), Split::Train) {
        DataError::MissingFile { path, .. } => assert!(path.ends_with("data_batch_3.bin")),
        e => panic!("{e}"),
    }
    let nowhere = dir.path().join("nowhere");
    assert!(matches!(open_err(DatasetKind::Folder, &nowhere, Split::Test), DataError::MissingFile { .. }));
    assert!(matches!(decode_image(&nowhere), Err(DataError::Io { .. })));
}

#[test]
fn cifar_bad_size_labels_and_class_names() {
    let dir = TempDir::new().unwrap();
    let test_batch = dir.path().join("test_batch.bin");
    fs::write(&test_batch, vec![0; 3073 * 2 + 5]).unwrap();
    match open_err(DatasetKind::Cifar10, dir.path(), Split::Test) {
        DataError::RecordSize { path, len: 6151, record: 3073 } => assert_eq!(path, test_batch),
        e => panic!("{e}"),
    }
    let mut records = vec![0; 3073 * 3];
    records[3073] = 10;
    fs::write(&test_batch, &records).unwrap();
    match open_err(DatasetKind::Cifar10, dir.path(), Split::Test) {
        DataError::LabelOutOfRange { path, index: 1, label: 10, classes: 10 } => assert_eq!(path, test_batch),
        e => panic!("{e}"),
    }
    fs::write(&test_batch, []).unwrap();
    assert!(matches!(
        open_err(DatasetKind::Cifar10, dir.path(), Split::Test),
        DataError::EmptyDataset { .. }
    ));
    fs::write(&test_batch, [0; 3073]).unwrap();
    fs::write(dir.path().join("batches.meta.txt"), "cat\ndog\n").unwrap();
    assert!(matches!(
        open_err(DatasetKind::Cifar10, dir.path(), Split::Test),
        DataError::ClassNames { expected: 10, found: 2, .. }
    ));
}

#[test]
fn undecodable_images_and_empty_trees() {
    let dir = TempDir::new().unwrap();
    assert!(matches!(open_err(DatasetKind::Folder, dir.path(), Split::Test), DataError::EmptyDataset { .. }));
    let class_dir = dir.path().join("val/cat");
    fs::create_dir_all(&class_dir).unwrap();
    assert!(matches!(open_err(DatasetKind::Folder, dir.path(), Split::Test), DataError::EmptyClass { .. }));

    let bad = class_dir.join("broken.png");
    fs::write(&bad, b"\x89PNG\r\n\x1a\nnot really a png").unwrap();
    let dataset = open(DatasetKind::Folder, dir.path(), Split::Test).unwrap();
    match dataset.get(0) {
        Err(DataError::Decode { path, .. }) => assert_eq!(path, bad),
        other => panic!("{other:?}"),
    }
    fs::write(&bad, b"plain text").unwrap();
    assert!(matches!(decode_image(&bad), Err(DataError::Decode { .. })));
}

#[test]
fn oversized_images_are_refused_before_decoding() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("wide.png");
    // A valid PNG header declaring 20000x1 pixels; the limit stops it before the pixel data.
    GrayImage::new(20000, 1).save_with_format(&path, ImageFormat::Png).unwrap();
    match decode_image(&path) {
        Err(DataError::Decode { source: image::ImageError::Limits(_), .. }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn decoding_keeps_grey_and_makes_everything_else_rgb() {
    let dir = TempDir::new().unwrap();
    let rgba = dir.path().join("rgba.png");
    image::RgbaImage::from_pixel(2, 1, image::Rgba([1, 2, 3, 0])).save(&rgba).unwrap();
    assert_eq!(
        decode_image(&rgba).unwrap(),
        RawImage { width: 2, height: 1, channels: 3, pixels: vec![1, 2, 3, 1, 2, 3] }
    );
    let grey_alpha = dir.path().join("la.png");
    image::GrayAlphaImage::from_pixel(1, 2, image::LumaA([9, 255])).save(&grey_alpha).unwrap();
    assert_eq!(
        decode_image(&grey_alpha).unwrap(),
        RawImage { width: 1, height: 2, channels: 1, pixels: vec![9, 9] }
    );
    let jpeg = dir.path().join("grey.jpg");
    GrayImage::from_pixel(8, 8, image::Luma([128])).save(&jpeg).unwrap();
    let decoded = decode_image(&jpeg).unwrap();
    assert_eq!((decoded.width, decoded.height, decoded.channels), (8, 8, 1));
}

#[test]
fn wrong_image_size_without_resize() {
    let img = RawImage { width: 32, height: 32, channels: 3, pixels: vec![0; 3072] };
    assert!(matches!(
        Preprocess::fashion_mnist().apply(&img),
        Err(DataError::SizeMismatch {
            expected_width: 28,
            expected_height: 28,
            actual_width: 32,
            actual_height: 32
        })
    ));
}

// --- names and serialized form ----------------------------------------------------------------

#[test]
fn dataset_kind_names_round_trip() {
    for kind in [DatasetKind::FashionMnist, DatasetKind::Mnist, DatasetKind::Cifar10, DatasetKind::Folder] {
        assert_eq!(kind.to_string().parse::<DatasetKind>().unwrap(), kind);
        assert_eq!(kind.preprocess().input_shape().channels, kind.preprocess().mean.len());
    }
    assert_eq!("fashion-mnist".parse::<DatasetKind>().unwrap(), DatasetKind::FashionMnist);
    assert!(matches!("imagenet".parse::<DatasetKind>(), Err(DataError::UnknownDataset { .. })));
    assert_eq!(DatasetKind::Mnist.default_root(), None);
}

#[test]
fn preprocess_serialized_form_is_unchanged() {
    let json = serde_json::to_value(Preprocess::imagenet()).unwrap();
    let expected = serde_json::json!({
        "color": "rgb", "height": 224, "width": 224,
        "resize": { "kind": "shorter_then_center_crop", "shorter": 256 },
        "mean": [0.485f32, 0.456f32, 0.406f32], "std": [0.229f32, 0.224f32, 0.225f32],
    });
    assert_eq!(json, expected);
    let grey = serde_json::to_value(Preprocess::fashion_mnist()).unwrap();
    assert_eq!(
        (&grey["color"], &grey["resize"]),
        (&serde_json::json!("grey"), &serde_json::json!({"kind": "none"}))
    );
}
