//! Decoded 8-bit images, as data sets yield them and as image files decode to.

use std::io::{BufRead, Cursor, Seek};
use std::path::Path;

use image::{DynamicImage, ImageReader, Limits};

use super::DataError;

/// The largest image side, in pixels, that decoding and resizing accept, so that a hostile file
/// cannot make them allocate without bound.
pub const MAX_SIDE: usize = 16384;

/// An 8-bit image in HWC order: `pixels[(y * width + x) * channels + c]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawImage {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// 1 (grey) or 3 (R, G, B).
    pub channels: usize,
    /// `height * width * channels` bytes.
    pub pixels: Vec<u8>,
}

impl RawImage {
    /// Checks that the sizes are non-zero, `channels` is 1 or 3 and `pixels` has
    /// `width * height * channels` bytes.
    pub fn validate(&self) -> Result<(), DataError> {
        let expected = self.width.checked_mul(self.height).and_then(|n| n.checked_mul(self.channels));
        if self.width == 0
            || self.height == 0
            || !matches!(self.channels, 1 | 3)
            || expected != Some(self.pixels.len())
        {
            return Err(DataError::InvalidImage {
                width: self.width,
                height: self.height,
                channels: self.channels,
                len: self.pixels.len(),
            });
        }
        Ok(())
    }
}

/// Decodes a PNG or JPEG file (the format is guessed from the content). Images without colour
/// stay one channel; all others become RGB. Alpha is dropped, not composited, as PIL's
/// `convert("RGB")` does. Sides over [`MAX_SIDE`] are refused before decoding.
pub fn decode_image(path: &Path) -> Result<RawImage, DataError> {
    let io_error = |source| DataError::Io { path: path.to_owned(), source };
    decode(ImageReader::open(path).map_err(io_error)?.with_guessed_format().map_err(io_error)?, path)
}

/// [`decode_image`] for an image already in memory, e.g. an upload; errors call it `name`.
pub fn decode_image_bytes(bytes: &[u8], name: &Path) -> Result<RawImage, DataError> {
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|source| DataError::Io { path: name.to_owned(), source })?;
    decode(reader, name)
}

/// Decodes within the side limit.
fn decode<R: BufRead + Seek>(mut reader: ImageReader<R>, path: &Path) -> Result<RawImage, DataError> {
    let mut limits = Limits::default();
    let max_side = u32::try_from(MAX_SIDE).unwrap_or(u32::MAX);
    limits.max_image_width = Some(max_side);
    limits.max_image_height = Some(max_side);
    reader.limits(limits);
    let decoded = reader.decode().map_err(|source| DataError::Decode { path: path.to_owned(), source })?;
    Ok(from_dynamic(decoded))
}

fn from_dynamic(decoded: DynamicImage) -> RawImage {
    // u32 -> usize is lossless on the 32- and 64-bit targets this crate builds for.
    let (width, height) = (decoded.width() as usize, decoded.height() as usize);
    if decoded.color().has_color() {
        RawImage { width, height, channels: 3, pixels: decoded.into_rgb8().into_raw() }
    } else {
        RawImage { width, height, channels: 1, pixels: decoded.into_luma8().into_raw() }
    }
}
