//! The preprocessing a model expects, stored in its `.bnas` metadata: colour conversion,
//! resizing, scaling to [0, 1] and per-channel normalization. [`Preprocess::apply`] is the only
//! image-to-tensor path: prediction, evaluation and training all go through it, so an image file
//! and the data set record it came from give the same tensor.

use std::borrow::Cow;

use bnas_models::InputShape;
use image::imageops::{self, FilterType};
use image::{ImageBuffer, Luma, Pixel, Rgb};
use serde::{Deserialize, Serialize};

use super::raw_image::MAX_SIDE;
use super::{DataError, RawImage};

/// The colour space the network reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColorMode {
    /// One luma channel.
    Grey,
    /// Three channels, R, G, B.
    Rgb,
}

impl ColorMode {
    /// Number of channels.
    pub fn channels(self) -> usize {
        match self {
            ColorMode::Grey => 1,
            ColorMode::Rgb => 3,
        }
    }
}

/// How an image is brought to the network's input size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Resize {
    /// Images must already have the input size (datasets like MNIST and CIFAR-10).
    None,
    /// Stretch to the input size, bilinear.
    Stretch,
    /// Resize the shorter side to `shorter` pixels (bilinear, aspect kept), then centre-crop to
    /// the input size: ImageNet's "resize 256, centre crop 224".
    ShorterThenCenterCrop {
        /// Target length of the shorter side.
        shorter: u32,
    },
}

/// Image to tensor: colour conversion, resize, scale to [0, 1], then `(x - mean) / std` per
/// channel. The result is CHW f32.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preprocess {
    /// Colour space of the network input.
    pub color: ColorMode,
    /// Input height.
    pub height: usize,
    /// Input width.
    pub width: usize,
    /// How images of another size are handled.
    pub resize: Resize,
    /// Per-channel mean, after scaling to [0, 1].
    pub mean: Vec<f32>,
    /// Per-channel standard deviation, after scaling to [0, 1].
    pub std: Vec<f32>,
}

impl Preprocess {
    /// Fashion-MNIST: grey 28x28, mean 0.2860, std 0.3530.
    pub fn fashion_mnist() -> Self {
        Self::fixed(ColorMode::Grey, 28, vec![0.2860], vec![0.3530])
    }

    /// MNIST: grey 28x28, mean 0.1307, std 0.3081.
    pub fn mnist() -> Self {
        Self::fixed(ColorMode::Grey, 28, vec![0.1307], vec![0.3081])
    }

    /// CIFAR-10: RGB 32x32 with the reference's (reference §5) mean and std.
    pub fn cifar10() -> Self {
        Self::fixed(ColorMode::Rgb, 32, vec![0.4914, 0.4822, 0.4465], vec![0.2470, 0.2435, 0.2616])
    }

    /// ImageNet evaluation: resize the shorter side to 256, centre-crop 224x224 RGB, ImageNet
    /// mean and std.
    pub fn imagenet() -> Self {
        Preprocess {
            color: ColorMode::Rgb,
            height: 224,
            width: 224,
            resize: Resize::ShorterThenCenterCrop { shorter: 256 },
            mean: vec![0.485, 0.456, 0.406],
            std: vec![0.229, 0.224, 0.225],
        }
    }

    fn fixed(color: ColorMode, side: usize, mean: Vec<f32>, std: Vec<f32>) -> Self {
        Preprocess { color, height: side, width: side, resize: Resize::None, mean, std }
    }

    /// The shape of the tensor [`apply`](Self::apply) returns.
    pub fn input_shape(&self) -> InputShape {
        InputShape { channels: self.color.channels(), height: self.height, width: self.width }
    }

    /// Number of values in the tensor [`apply`](Self::apply) returns (channels x height x width).
    pub fn tensor_len(&self) -> usize {
        self.color.channels().saturating_mul(self.height).saturating_mul(self.width)
    }

    /// Checks that mean and std have one finite entry per channel, std is positive, the sizes are
    /// in 1..=[`MAX_SIDE`], and a centre crop fits inside the resized image.
    pub fn validate(&self) -> Result<(), DataError> {
        let invalid = |reason: String| Err(DataError::InvalidPreprocess { reason });
        let channels = self.color.channels();
        if self.mean.len() != channels || self.std.len() != channels {
            return invalid(format!(
                "{channels} channels but {} mean and {} std values",
                self.mean.len(),
                self.std.len()
            ));
        }
        if let Some(m) = self.mean.iter().find(|m| !m.is_finite()) {
            return invalid(format!("mean {m} is not finite"));
        }
        if let Some(s) = self.std.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return invalid(format!("std {s} is not a positive finite number"));
        }
        for (name, side) in [("height", self.height), ("width", self.width)] {
            if side == 0 || side > MAX_SIDE {
                return invalid(format!("{name} {side} is not in 1..={MAX_SIDE}"));
            }
        }
        if let Resize::ShorterThenCenterCrop { shorter } = self.resize {
            let shorter = shorter as usize;
            if shorter < self.height.max(self.width) || shorter > MAX_SIDE {
                return invalid(format!(
                    "shorter side {shorter} must be in {}..={MAX_SIDE} to hold the {}x{} crop",
                    self.height.max(self.width),
                    self.width,
                    self.height
                ));
            }
        }
        Ok(())
    }

    /// Turns an image into a CHW f32 tensor of [`input_shape`](Self::input_shape):
    ///
    /// 1. colour conversion on the 8-bit pixels: RGB to grey with PIL's ITU-R 601-2 luma in
    ///    fixed point, `(R*19595 + G*38470 + B*7471 + 0x8000) >> 16` (the coefficients 0.299,
    ///    0.587, 0.114, rounded; what torchvision's `Grayscale` computes on PIL images); grey to
    ///    RGB replicates the channel;
    /// 2. resizing per [`Resize`], with `image`'s bilinear (triangle) filter, which widens its
    ///    support when shrinking as PIL's bilinear does; the result is rounded to 8 bits;
    /// 3. `(x / 255 - mean[c]) / std[c]` in f32, as torchvision's `ToTensor` then `Normalize`.
    pub fn apply(&self, img: &RawImage) -> Result<Vec<f32>, DataError> {
        self.validate()?;
        let mut out = vec![0.0; self.tensor_len()];
        self.write_tensor(img, &mut out)?;
        Ok(out)
    }

    /// [`apply`](Self::apply) into `out`, which must hold [`tensor_len`](Self::tensor_len)
    /// values; the caller has validated `self`.
    pub(super) fn write_tensor(&self, img: &RawImage, out: &mut [f32]) -> Result<(), DataError> {
        debug_assert_eq!(out.len(), self.tensor_len());
        img.validate()?;
        let channels = self.color.channels();
        let pixels = convert_color(img, channels);
        let (resized_width, resized_height, left, top) = self.geometry(img.width, img.height)?;
        let pixels = if (resized_width, resized_height) == (img.width, img.height) {
            pixels
        } else {
            let source = (img.width, img.height, channels);
            Cow::Owned(resize(&pixels, source, resized_width, resized_height)?)
        };
        let (height, width) = (self.height, self.width);
        let planes = out.chunks_exact_mut(height * width);
        for (c, ((plane, &mean), &std)) in planes.zip(&self.mean).zip(&self.std).enumerate() {
            for (y, row) in plane.chunks_exact_mut(width).enumerate() {
                let start = ((top + y) * resized_width + left) * channels + c;
                let source = pixels.get(start..).unwrap_or_default().iter().step_by(channels);
                for (value, &byte) in row.iter_mut().zip(source) {
                    *value = (f32::from(byte) / 255.0 - mean) / std;
                }
            }
        }
        Ok(())
    }

    /// The size to resize an image to, and the top-left corner of the crop within it.
    fn geometry(&self, width: usize, height: usize) -> Result<(usize, usize, usize, usize), DataError> {
        match self.resize {
            Resize::None if (width, height) == (self.width, self.height) => Ok((width, height, 0, 0)),
            Resize::None => Err(DataError::SizeMismatch {
                expected_width: self.width,
                expected_height: self.height,
                actual_width: width,
                actual_height: height,
            }),
            Resize::Stretch => Ok((self.width, self.height, 0, 0)),
            Resize::ShorterThenCenterCrop { shorter } => {
                // torchvision's Resize(int): the shorter side becomes `shorter`, the longer one
                // int(shorter * long / short).
                let (w, h, s) = (width as u64, height as u64, u64::from(shorter));
                let (new_w, new_h) = if w <= h { (s, s * h / w) } else { (s * w / h, s) };
                let max = MAX_SIDE as u64;
                if new_w > max || new_h > max {
                    return Err(DataError::ResizeTooLarge { width: new_w, height: new_h, max: MAX_SIDE });
                }
                // Lossless: both are at most MAX_SIDE; validate() ensured the crop fits.
                let (new_w, new_h) = (new_w as usize, new_h as usize);
                Ok((new_w, new_h, crop_offset(new_w, self.width), crop_offset(new_h, self.height)))
            }
        }
    }
}

/// torchvision's `center_crop` offset, `int(round((size - crop) / 2))`, with Python's
/// round-half-to-even.
fn crop_offset(size: usize, crop: usize) -> usize {
    let excess = size - crop;
    let half = excess / 2;
    if excess % 2 == 1 && half % 2 == 1 {
        half + 1
    } else {
        half
    }
}

/// The pixels with `channels` channels: borrowed when the image already has them.
fn convert_color(img: &RawImage, channels: usize) -> Cow<'_, [u8]> {
    match (img.channels, channels) {
        (3, 1) => Cow::Owned(
            img.pixels
                .chunks_exact(3)
                .map(|p| {
                    let luma = u32::from(p[0]) * 19595 + u32::from(p[1]) * 38470 + u32::from(p[2]) * 7471;
                    // At most 255 * 65536 + 0x8000 before the shift, so it fits a byte after.
                    ((luma + 0x8000) >> 16) as u8
                })
                .collect(),
        ),
        (1, 3) => Cow::Owned(img.pixels.iter().flat_map(|&v| [v, v, v]).collect()),
        _ => Cow::Borrowed(&img.pixels),
    }
}

/// Bilinear resize of HWC 8-bit pixels of `(width, height, channels)`.
fn resize(
    pixels: &[u8],
    (width, height, channels): (usize, usize, usize),
    new_width: usize,
    new_height: usize,
) -> Result<Vec<u8>, DataError> {
    let invalid = || DataError::InvalidImage { width, height, channels, len: pixels.len() };
    let side = |n: usize| u32::try_from(n).map_err(|_| invalid());
    let (w, h, new_w, new_h) = (side(width)?, side(height)?, side(new_width)?, side(new_height)?);
    match channels {
        1 => resize_as::<Luma<u8>>(pixels, (w, h), (new_w, new_h)),
        _ => resize_as::<Rgb<u8>>(pixels, (w, h), (new_w, new_h)),
    }
    .ok_or_else(invalid)
}

fn resize_as<P: Pixel<Subpixel = u8> + 'static>(
    pixels: &[u8],
    (width, height): (u32, u32),
    (new_width, new_height): (u32, u32),
) -> Option<Vec<u8>> {
    let source = ImageBuffer::<P, &[u8]>::from_raw(width, height, pixels)?;
    Some(imageops::resize(&source, new_width, new_height, FilterType::Triangle).into_raw())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rgb(width: usize, height: usize, pixels: Vec<u8>) -> RawImage {
        RawImage { width, height, channels: 3, pixels }
    }

    fn grey_unit(height: usize, width: usize, resize: Resize) -> Preprocess {
        Preprocess { color: ColorMode::Grey, height, width, resize, mean: vec![0.5], std: vec![0.25] }
    }

    #[test]
    fn rgb_pixel_to_grey_then_normalized_by_hand() {
        // L = 0.299*200 + 0.587*100 + 0.114*50 = 59.8 + 58.7 + 5.7 = 124.2 -> 124;
        // 124/255 = 0.486275, (0.486275 - 0.5) / 0.25 = -0.054902.
        let out = grey_unit(1, 1, Resize::None).apply(&rgb(1, 1, vec![200, 100, 50])).unwrap();
        assert_eq!(out, vec![(124.0 / 255.0 - 0.5) / 0.25]);
        assert!((out[0] - -0.054902).abs() < 1e-6, "{out:?}");
        // PIL rounds: 0.587 * 1 -> 1 (truncation would give 0); 0.299*255 = 76.2 -> 76.
        let out = grey_unit(1, 2, Resize::None).apply(&rgb(2, 1, vec![0, 1, 0, 255, 0, 0])).unwrap();
        assert_eq!(out, vec![(1.0 / 255.0 - 0.5) / 0.25, (76.0 / 255.0 - 0.5) / 0.25]);
    }

    #[test]
    fn output_is_chw_with_per_channel_normalization() {
        let pre = Preprocess {
            color: ColorMode::Rgb,
            height: 1,
            width: 2,
            resize: Resize::None,
            mean: vec![0.0, 0.5, 1.0],
            std: vec![1.0, 0.5, 2.0],
        };
        let out = pre.apply(&rgb(2, 1, vec![0, 51, 255, 255, 102, 0])).unwrap();
        assert_eq!(out, vec![0.0, 1.0, (0.2 - 0.5) / 0.5, (0.4 - 0.5) / 0.5, 0.0, -0.5]);
        // Grey replicates into all three channels.
        let grey = RawImage { width: 2, height: 1, channels: 1, pixels: vec![255, 0] };
        assert_eq!(pre.apply(&grey).unwrap(), vec![1.0, 0.0, 1.0, -1.0, 0.0, -0.5]);
    }

    #[test]
    fn shorter_then_center_crop_sizes_and_offsets() {
        let pre = Preprocess::imagenet();
        // 300x200 (WxH): the shorter side 200 -> 256, the longer int(256 * 300 / 200) = 384;
        // the 224 crop starts at ((384 - 224) / 2, (256 - 224) / 2) = (80, 16).
        assert_eq!(pre.geometry(300, 200).unwrap(), (384, 256, 80, 16));
        assert_eq!(pre.geometry(200, 300).unwrap(), (256, 384, 16, 80));
        let out = pre.apply(&rgb(300, 200, [10, 20, 30].repeat(300 * 200))).unwrap();
        assert_eq!(out.len(), 3 * 224 * 224);
        assert_eq!(pre.input_shape(), InputShape { channels: 3, height: 224, width: 224 });
        // A constant image stays constant through the bilinear resize.
        for (c, plane) in out.chunks_exact(224 * 224).enumerate() {
            let expected = (f32::from(10 * (c as u8 + 1)) / 255.0 - pre.mean[c]) / pre.std[c];
            assert!(plane.iter().all(|&v| v == expected), "channel {c}");
        }
        // An extreme aspect ratio would need an oversized intermediate image.
        assert!(matches!(pre.geometry(MAX_SIDE, 1), Err(DataError::ResizeTooLarge { .. })));
    }

    #[test]
    fn crop_offset_rounds_half_to_even_like_python() {
        assert_eq!(crop_offset(256, 224), 16);
        assert_eq!(crop_offset(257, 224), 16); // round(16.5) = 16
        assert_eq!(crop_offset(255, 224), 16); // round(15.5) = 16
        assert_eq!(crop_offset(258, 224), 17);
        assert_eq!(crop_offset(224, 224), 0);
    }

    #[test]
    fn stretch_resizes_and_none_refuses_other_sizes() {
        let img = RawImage { width: 3, height: 2, channels: 1, pixels: vec![51; 6] };
        let out = grey_unit(5, 4, Resize::Stretch).apply(&img).unwrap();
        assert_eq!(out, vec![(0.2 - 0.5) / 0.25; 20]);
        match grey_unit(5, 4, Resize::None).apply(&img) {
            Err(DataError::SizeMismatch {
                expected_width: 4,
                expected_height: 5,
                actual_width: 3,
                actual_height: 2,
            }) => {}
            other => panic!("expected SizeMismatch, got {other:?}"),
        }
    }

    #[test]
    fn validate_rejects_inconsistent_settings() {
        for pre in
            [Preprocess::fashion_mnist(), Preprocess::mnist(), Preprocess::cifar10(), Preprocess::imagenet()]
        {
            pre.validate().unwrap();
        }
        let broken = [
            Preprocess { mean: vec![0.5, 0.5], ..Preprocess::mnist() },
            Preprocess { std: vec![0.0], ..Preprocess::mnist() },
            Preprocess { std: vec![f32::NAN], ..Preprocess::mnist() },
            Preprocess { mean: vec![f32::INFINITY], ..Preprocess::mnist() },
            Preprocess { height: 0, ..Preprocess::mnist() },
            Preprocess { width: MAX_SIDE + 1, ..Preprocess::mnist() },
            Preprocess { resize: Resize::ShorterThenCenterCrop { shorter: 200 }, ..Preprocess::imagenet() },
        ];
        for pre in broken {
            assert!(matches!(pre.validate(), Err(DataError::InvalidPreprocess { .. })), "{pre:?}");
            assert!(pre.apply(&rgb(1, 1, vec![0; 3])).is_err());
        }
    }

    #[test]
    fn inconsistent_raw_images_are_errors() {
        let pre = Preprocess::mnist();
        for (width, height, channels, len) in [(28, 28, 1, 783), (28, 28, 2, 1568), (0, 28, 1, 0)] {
            let img = RawImage { width, height, channels, pixels: vec![0; len] };
            assert!(matches!(pre.apply(&img), Err(DataError::InvalidImage { .. })), "{img:?}");
        }
    }
}
