//! The one error type of the data module: every failure names the file (or the sizes) involved,
//! so a bad data set is diagnosed from the message alone.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

/// Why a data set could not be read or an image could not be turned into a tensor.
#[derive(Debug, Error)]
pub enum DataError {
    /// Opening or reading a file or folder failed.
    #[error("{}", .path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A file the data set needs does not exist.
    #[error("{}: file not found{hint}", .path.display())]
    MissingFile {
        /// The file that was looked for.
        path: PathBuf,
        /// What else was tried, e.g. " (nor its .gz)"; may be empty.
        hint: &'static str,
    },
    /// A gzip stream is corrupt or truncated.
    #[error("{}: corrupt or truncated gzip stream", .path.display())]
    Gzip {
        /// The `.gz` file.
        path: PathBuf,
        /// The decompressor's error.
        #[source]
        source: io::Error,
    },
    /// A file (after decompression) is larger than the data module accepts, e.g. a gzip bomb.
    #[error("{}: more than {limit} bytes (after decompression)", .path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit in bytes.
        limit: u64,
    },
    /// A file starts with the wrong magic number.
    #[error("{}: bad magic number {found:#010x}, expected {expected:#010x}", .path.display())]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// The magic number of this kind of file.
        expected: u32,
        /// The number found.
        found: u32,
    },
    /// A file is shorter than its header says.
    #[error("{}: truncated: expected {expected} bytes, found {actual}", .path.display())]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Bytes the header implies.
        expected: u64,
        /// Bytes present.
        actual: u64,
    },
    /// A file is longer than its header says.
    #[error("{}: trailing bytes: expected {expected} bytes, found {actual}", .path.display())]
    TrailingBytes {
        /// The file.
        path: PathBuf,
        /// Bytes the header implies.
        expected: u64,
        /// Bytes present.
        actual: u64,
    },
    /// A header field is invalid (zero or overflowing dimensions).
    #[error("{}: invalid header: {reason}", .path.display())]
    BadHeader {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An IDX image file and its label file disagree on the number of examples.
    #[error(
        "{} holds {image_count} images but {} holds {label_count} labels",
        .images.display(),
        .labels.display()
    )]
    CountMismatch {
        /// The image file.
        images: PathBuf,
        /// Number of images.
        image_count: usize,
        /// The label file.
        labels: PathBuf,
        /// Number of labels.
        label_count: usize,
    },
    /// A label is not a valid class index.
    #[error("{}: record {index} has label {label}, but there are {classes} classes", .path.display())]
    LabelOutOfRange {
        /// The file.
        path: PathBuf,
        /// Index of the record within the file.
        index: usize,
        /// The label found.
        label: usize,
        /// Number of classes.
        classes: usize,
    },
    /// A CIFAR-10 batch file's size is not a whole number of records.
    #[error("{}: {len} bytes is not a multiple of the {record}-byte record", .path.display())]
    RecordSize {
        /// The file.
        path: PathBuf,
        /// Its size in bytes.
        len: u64,
        /// The record size in bytes.
        record: u64,
    },
    /// A class-name file lists the wrong number of classes.
    #[error("{}: expected {expected} class names, found {found}", .path.display())]
    ClassNames {
        /// The file.
        path: PathBuf,
        /// Number of classes the data set has.
        expected: usize,
        /// Number of names found.
        found: usize,
    },
    /// A data set folder holds no examples.
    #[error("{}: no examples found", .path.display())]
    EmptyDataset {
        /// The folder.
        path: PathBuf,
    },
    /// A class folder holds no `.jpg`, `.jpeg` or `.png` file.
    #[error("{}: class folder holds no .jpg, .jpeg or .png file", .path.display())]
    EmptyClass {
        /// The class folder.
        path: PathBuf,
    },
    /// An image file could not be decoded (unknown format, corrupt, over the size limits).
    #[error("{}: cannot decode image", .path.display())]
    Decode {
        /// The image file.
        path: PathBuf,
        /// The decoder's error.
        #[source]
        source: image::ImageError,
    },
    /// An image does not have the input size, and the preprocessing does not resize.
    #[error(
        "image is {actual_width}x{actual_height} (WxH) but the input is \
         {expected_width}x{expected_height} and the preprocessing does not resize"
    )]
    SizeMismatch {
        /// Input width.
        expected_width: usize,
        /// Input height.
        expected_height: usize,
        /// Image width.
        actual_width: usize,
        /// Image height.
        actual_height: usize,
    },
    /// A [`RawImage`](super::RawImage)'s fields are inconsistent.
    #[error("invalid image: {width}x{height} with {channels} channels but {len} bytes")]
    InvalidImage {
        /// Width.
        width: usize,
        /// Height.
        height: usize,
        /// Channels (must be 1 or 3).
        channels: usize,
        /// Length of the pixel buffer.
        len: usize,
    },
    /// Resizing would produce an image with a side over the limit (an extreme aspect ratio).
    #[error("resizing to {width}x{height} (WxH) exceeds the {max}-pixel side limit")]
    ResizeTooLarge {
        /// Resized width.
        width: u64,
        /// Resized height.
        height: u64,
        /// The side limit.
        max: usize,
    },
    /// A [`Preprocess`](super::Preprocess) is inconsistent.
    #[error("invalid preprocessing: {reason}")]
    InvalidPreprocess {
        /// What is wrong.
        reason: String,
    },
    /// A batch's tensor would not fit in memory's address space.
    #[error("a batch of {examples} tensors of {tensor_len} values is too large")]
    BatchTooLarge {
        /// Examples in the batch.
        examples: usize,
        /// Values per example.
        tensor_len: usize,
    },
    /// An example index past the end of the data set.
    #[error("index {index} is out of range for a data set of {len} examples")]
    IndexOutOfRange {
        /// The index asked for.
        index: usize,
        /// Number of examples.
        len: usize,
    },
    /// A data set name that is not one of `fashion-mnist`, `mnist`, `cifar10`, `folder`.
    #[error("unknown data set {name:?}: expected fashion-mnist, mnist, cifar10 or folder")]
    UnknownDataset {
        /// The name given.
        name: String,
    },
}
