//! Dataset readers (IDX, CIFAR-10 binary, class folders) and the one shared preprocessing
//! function, so that evaluation needs no libtorch and training reuses the same code.
//!
//! A [`Dataset`] yields 8-bit [`RawImage`]s with labels; [`Preprocess::apply`] turns any
//! `RawImage`, from a data set or from [`decode_image`], into the network's CHW f32 tensor, and
//! [`batch`] does so for many examples in parallel. Readers validate every file before use and
//! report problems as [`DataError`]s, never panics.

mod cifar;
mod error;
mod file;
mod folder;
mod idx;
mod loader;
mod preprocess;
mod raw_image;
#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub use error::DataError;
pub use loader::batch;
pub use preprocess::{ColorMode, Preprocess, Resize};
pub use raw_image::{decode_image, decode_image_bytes, RawImage, MAX_SIDE};

/// The data set formats the readers understand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DatasetKind {
    /// Fashion-MNIST, IDX files (`fashion-mnist`).
    FashionMnist,
    /// MNIST, IDX files (`mnist`).
    Mnist,
    /// CIFAR-10, binary version (`cifar10`).
    Cifar10,
    /// One folder per class holding JPEG or PNG files, ImageNet style (`folder`).
    Folder,
}

impl DatasetKind {
    /// Where the data set is installed by default: Fashion-MNIST by the Debian package
    /// `dataset-fashion-mnist` (which `scripts/setup.sh` installs); `None` for the others,
    /// whose root must be given.
    pub fn default_root(self) -> Option<PathBuf> {
        match self {
            DatasetKind::FashionMnist => Some(PathBuf::from("/usr/share/datasets/fashion-mnist")),
            DatasetKind::Mnist | DatasetKind::Cifar10 | DatasetKind::Folder => None,
        }
    }

    /// The usual preprocessing for this data set; for class folders, ImageNet's evaluation one.
    pub fn preprocess(self) -> Preprocess {
        match self {
            DatasetKind::FashionMnist => Preprocess::fashion_mnist(),
            DatasetKind::Mnist => Preprocess::mnist(),
            DatasetKind::Cifar10 => Preprocess::cifar10(),
            DatasetKind::Folder => Preprocess::imagenet(),
        }
    }

    /// The data set's own class names (standard CIFAR-10 names, Fashion-MNIST's, digits for
    /// MNIST); `None` for class folders, whose names are their folder names.
    pub fn class_names(self) -> Option<Vec<String>> {
        let names: Vec<String> = match self {
            DatasetKind::FashionMnist => idx::FASHION_MNIST_CLASSES.iter().map(|&n| n.to_owned()).collect(),
            DatasetKind::Mnist => (0..idx::CLASSES).map(|d| d.to_string()).collect(),
            DatasetKind::Cifar10 => cifar::STANDARD_CLASSES.iter().map(|&n| n.to_owned()).collect(),
            DatasetKind::Folder => return None,
        };
        Some(names)
    }

    fn name(self) -> &'static str {
        match self {
            DatasetKind::FashionMnist => "fashion-mnist",
            DatasetKind::Mnist => "mnist",
            DatasetKind::Cifar10 => "cifar10",
            DatasetKind::Folder => "folder",
        }
    }
}

impl fmt::Display for DatasetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DatasetKind {
    type Err = DataError;

    /// Parses `fashion-mnist`, `mnist`, `cifar10` or `folder`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [DatasetKind::FashionMnist, DatasetKind::Mnist, DatasetKind::Cifar10, DatasetKind::Folder]
            .into_iter()
            .find(|kind| kind.name() == s)
            .ok_or_else(|| DataError::UnknownDataset { name: s.to_owned() })
    }
}

/// Which part of a data set to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Split {
    /// The training examples (`train-*`, `data_batch_*`, `train/`).
    Train,
    /// The held-out examples (`t10k-*`, `test_batch`, `val/`).
    Test,
}

/// One labelled image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    /// The image, as stored.
    pub image: RawImage,
    /// The class index, below `class_names().len()`.
    pub label: usize,
}

/// A random-access, labelled image data set. Shared across threads by [`batch`].
pub trait Dataset: Send + Sync {
    /// Number of examples.
    fn len(&self) -> usize;

    /// Whether there are no examples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Example `index` (below [`len`](Self::len)).
    fn get(&self, index: usize) -> Result<Example, DataError>;

    /// The class names, indexed by label.
    fn class_names(&self) -> &[String];

    /// The format this data set was read from.
    fn kind(&self) -> DatasetKind;
}

/// Opens split `split` of a `kind` data set under `root`. IDX and CIFAR-10 files are read and
/// validated whole now; class folders are listed now and their images decoded by
/// [`Dataset::get`].
pub fn open(kind: DatasetKind, root: &Path, split: Split) -> Result<Box<dyn Dataset>, DataError> {
    Ok(match kind {
        DatasetKind::FashionMnist | DatasetKind::Mnist => Box::new(idx::IdxDataset::open(kind, root, split)?),
        DatasetKind::Cifar10 => Box::new(cifar::CifarDataset::open(root, split)?),
        DatasetKind::Folder => Box::new(folder::FolderDataset::open(root, split)?),
    })
}
