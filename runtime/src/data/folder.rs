//! Class-folder data sets (ImageNet style): `ROOT/<split>/<class>/<image>`, where `<split>` is
//! `train` or `val` and ROOT itself holds the class folders when that folder is absent. Classes
//! and files are sorted by name, as torchvision's `ImageFolder` does; images are decoded on
//! demand.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::{decode_image, DataError, Dataset, DatasetKind, Example, Split};

const EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];

/// The image paths and their class indices.
pub(super) struct FolderDataset {
    files: Vec<(PathBuf, usize)>,
    class_names: Vec<String>,
}

impl FolderDataset {
    /// Lists the classes and images of `split` under `root`; decodes nothing.
    pub(super) fn open(root: &Path, split: Split) -> Result<Self, DataError> {
        let split_dir = root.join(match split {
            Split::Train => "train",
            Split::Test => "val",
        });
        let dir = if split_dir.is_dir() { split_dir } else { root.to_owned() };
        let mut class_dirs: Vec<PathBuf> = list(&dir)?.into_iter().filter(|p| p.is_dir()).collect();
        class_dirs.sort();
        let mut files = Vec::new();
        let mut class_names = Vec::with_capacity(class_dirs.len());
        for (label, class_dir) in class_dirs.iter().enumerate() {
            let mut images: Vec<PathBuf> = list(class_dir)?.into_iter().filter(|p| is_image(p)).collect();
            if images.is_empty() {
                return Err(DataError::EmptyClass { path: class_dir.clone() });
            }
            images.sort();
            files.extend(images.into_iter().map(|path| (path, label)));
            let name = class_dir.file_name().unwrap_or_default().to_string_lossy().into_owned();
            class_names.push(name);
        }
        if files.is_empty() {
            return Err(DataError::EmptyDataset { path: dir });
        }
        Ok(FolderDataset { files, class_names })
    }
}

impl Dataset for FolderDataset {
    fn len(&self) -> usize {
        self.files.len()
    }

    fn get(&self, index: usize) -> Result<Example, DataError> {
        let (path, label) =
            self.files.get(index).ok_or(DataError::IndexOutOfRange { index, len: self.files.len() })?;
        Ok(Example { image: decode_image(path)?, label: *label })
    }

    fn class_names(&self) -> &[String] {
        &self.class_names
    }

    fn kind(&self) -> DatasetKind {
        DatasetKind::Folder
    }
}

/// The entries of a folder.
fn list(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let error = |source: io::Error| match source.kind() {
        io::ErrorKind::NotFound => DataError::MissingFile { path: dir.to_owned(), hint: "" },
        _ => DataError::Io { path: dir.to_owned(), source },
    };
    fs::read_dir(dir).map_err(error)?.map(|entry| entry.map(|e| e.path()).map_err(error)).collect()
}

/// A regular file (or a link to one) ending in .jpg, .jpeg or .png, in any case.
fn is_image(path: &Path) -> bool {
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or_default();
    path.is_file() && EXTENSIONS.iter().any(|e| extension.eq_ignore_ascii_case(e))
}
