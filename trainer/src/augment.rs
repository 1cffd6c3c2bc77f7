//! Training augmentations of reference §5, on 8-bit images before the shared preprocessing, so that
//! they see the same pixels torchvision's transforms see (zero padding is black, before
//! normalization). Each example's randomness comes from its own seed, so a batch is the same
//! whatever the thread count and a resumed run sees the same images.

use bnas_runtime::data::{DatasetKind, RawImage};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// How training images are perturbed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Augment {
    /// Used as stored.
    None,
    /// Zero-pad by `pad` pixels, crop back to the original size at a random offset, and flip
    /// horizontally with probability 1/2 when `flip` (CIFAR-10: pad 4 with flip).
    CropFlip {
        /// Padding on each side.
        pad: usize,
        /// Whether to flip.
        flip: bool,
    },
    /// ImageNet's: torchvision's `RandomResizedCrop` (area 8%..100%, aspect 3/4..4/3), a
    /// horizontal flip and `ColorJitter(0.4, 0.4, 0.4, 0.2)`; the crop is then stretched to the
    /// input size by the preprocessing.
    ResizedCropFlipJitter,
}

impl Augment {
    /// The spec's augmentation for a data set: CIFAR-10 crops 32 with padding 4 and flips;
    /// Fashion-MNIST the same scaled to 28 pixels (padding 2, clothes may be mirrored); MNIST
    /// crops without flipping (digits may not be mirrored); class folders take ImageNet's random
    /// resized crop, flip and colour jitter.
    pub fn for_dataset(kind: DatasetKind) -> Augment {
        match kind {
            DatasetKind::Cifar10 => Augment::CropFlip { pad: 4, flip: true },
            DatasetKind::FashionMnist => Augment::CropFlip { pad: 2, flip: true },
            DatasetKind::Mnist => Augment::CropFlip { pad: 2, flip: false },
            DatasetKind::Folder => Augment::ResizedCropFlipJitter,
        }
    }

    /// Whether the output keeps the input's size (else it must be resized afterwards).
    pub fn keeps_size(&self) -> bool {
        !matches!(self, Augment::ResizedCropFlipJitter)
    }

    /// A perturbed copy of `image`.
    pub fn apply(&self, image: &RawImage, rng: &mut StdRng) -> RawImage {
        match *self {
            Augment::None => image.clone(),
            Augment::CropFlip { pad, flip } => {
                let top = rng.gen_range(0..=2 * pad);
                let left = rng.gen_range(0..=2 * pad);
                let mirrored = flip && rng.gen_bool(0.5);
                let (w, h) = (image.width, image.height);
                // Window origin in the unpadded image, possibly negative.
                let (y0, x0) = (top as isize - pad as isize, left as isize - pad as isize);
                crop(image, x0, y0, w, h, mirrored)
            }
            Augment::ResizedCropFlipJitter => {
                let (x, y, w, h) = resized_crop_window(image.width, image.height, rng);
                let mirrored = rng.gen_bool(0.5);
                let mut out = crop(image, x as isize, y as isize, w, h, mirrored);
                color_jitter(&mut out, rng);
                out
            }
        }
    }
}

/// The `w x h` window at (`x0`, `y0`) of `image`, zero outside it, optionally mirrored.
fn crop(image: &RawImage, x0: isize, y0: isize, w: usize, h: usize, mirrored: bool) -> RawImage {
    let c = image.channels;
    let mut pixels = vec![0u8; w * h * c];
    for y in 0..h {
        let sy = y0 + y as isize;
        if sy < 0 || sy >= image.height as isize {
            continue;
        }
        for x in 0..w {
            let dx = if mirrored { w - 1 - x } else { x };
            let sx = x0 + dx as isize;
            if sx < 0 || sx >= image.width as isize {
                continue;
            }
            let src = (sy as usize * image.width + sx as usize) * c;
            let dst = (y * w + x) * c;
            pixels[dst..dst + c].copy_from_slice(&image.pixels[src..src + c]);
        }
    }
    RawImage { width: w, height: h, channels: c, pixels }
}

/// torchvision's `RandomResizedCrop.get_params`: ten tries at a window of random area
/// (8%..100%) and log-uniform aspect ratio (3/4..4/3), else the centre crop of the clamped ratio.
fn resized_crop_window(width: usize, height: usize, rng: &mut StdRng) -> (usize, usize, usize, usize) {
    let area = (width * height) as f64;
    let (log_lo, log_hi) = ((3.0f64 / 4.0).ln(), (4.0f64 / 3.0).ln());
    for _ in 0..10 {
        let target = area * rng.gen_range(0.08..=1.0);
        let ratio = rng.gen_range(log_lo..=log_hi).exp();
        let w = (target * ratio).sqrt().round() as usize;
        let h = (target / ratio).sqrt().round() as usize;
        if (1..=width).contains(&w) && (1..=height).contains(&h) {
            return (rng.gen_range(0..=width - w), rng.gen_range(0..=height - h), w, h);
        }
    }
    let ratio = width as f64 / height as f64;
    let (w, h) = if ratio < 3.0 / 4.0 {
        (width, ((width as f64) / (3.0 / 4.0)).round() as usize)
    } else if ratio > 4.0 / 3.0 {
        (((height as f64) * (4.0 / 3.0)).round() as usize, height)
    } else {
        (width, height)
    };
    let (w, h) = (w.clamp(1, width), h.clamp(1, height));
    ((width - w) / 2, (height - h) / 2, w, h)
}

/// ImageNet's colour jitter: brightness, contrast and saturation factors in [0.6, 1.4] and a
/// hue shift in [-0.2, 0.2] turns, applied in a random order, each rounded back to 8 bits as
/// torchvision does on PIL images. Grey images get brightness and contrast only.
fn color_jitter(image: &mut RawImage, rng: &mut StdRng) {
    const STRENGTH: f32 = 0.4;
    const HUE: f32 = 0.2;
    let mut order = [0usize, 1, 2, 3];
    order.shuffle(rng);
    for transform in order {
        match transform {
            0 => {
                let factor = rng.gen_range(1.0 - STRENGTH..=1.0 + STRENGTH);
                image.pixels.iter_mut().for_each(|p| *p = to_byte(f32::from(*p) * factor));
            }
            1 => {
                let factor = rng.gen_range(1.0 - STRENGTH..=1.0 + STRENGTH);
                let grey: Vec<f32> = luma(image);
                let mean = grey.iter().sum::<f32>() / grey.len().max(1) as f32;
                let mean = mean.round();
                image
                    .pixels
                    .iter_mut()
                    .for_each(|p| *p = to_byte(f32::from(*p) * factor + mean * (1.0 - factor)));
            }
            2 if image.channels == 3 => {
                let factor = rng.gen_range(1.0 - STRENGTH..=1.0 + STRENGTH);
                let grey = luma(image);
                for (pixel, g) in image.pixels.chunks_exact_mut(3).zip(grey) {
                    pixel
                        .iter_mut()
                        .for_each(|p| *p = to_byte(f32::from(*p) * factor + g.round() * (1.0 - factor)));
                }
            }
            3 if image.channels == 3 => {
                let shift = rng.gen_range(-HUE..=HUE);
                for pixel in image.pixels.chunks_exact_mut(3) {
                    let [r, g, b] = [pixel[0], pixel[1], pixel[2]].map(|v| f32::from(v) / 255.0);
                    let (h, s, v) = rgb_to_hsv(r, g, b);
                    let (r, g, b) = hsv_to_rgb((h + shift).rem_euclid(1.0), s, v);
                    pixel.copy_from_slice(&[r, g, b].map(|c| to_byte(c * 255.0)));
                }
            }
            _ => {}
        }
    }
}

fn to_byte(value: f32) -> u8 {
    value.round().clamp(0.0, 255.0) as u8
}

/// ITU-R 601-2 luma per pixel (the channel itself for grey images).
fn luma(image: &RawImage) -> Vec<f32> {
    if image.channels == 1 {
        return image.pixels.iter().map(|&p| f32::from(p)).collect();
    }
    image
        .pixels
        .chunks_exact(3)
        .map(|p| 0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2]))
        .collect()
}

/// RGB in [0, 1] to (hue in turns, saturation, value).
fn rgb_to_hsv(r: f32, g: f32, b: f32) -> (f32, f32, f32) {
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let delta = max - min;
    if delta <= 0.0 {
        return (0.0, 0.0, max);
    }
    let h = if max == r {
        ((g - b) / delta).rem_euclid(6.0)
    } else if max == g {
        (b - r) / delta + 2.0
    } else {
        (r - g) / delta + 4.0
    };
    (h / 6.0, delta / max, max)
}

/// (hue in turns, saturation, value) to RGB in [0, 1].
fn hsv_to_rgb(h: f32, s: f32, v: f32) -> (f32, f32, f32) {
    let sector = (h * 6.0).floor();
    let f = h * 6.0 - sector;
    let (p, q, t) = (v * (1.0 - s), v * (1.0 - s * f), v * (1.0 - s * (1.0 - f)));
    match sector as i32 % 6 {
        0 => (v, t, p),
        1 => (q, v, p),
        2 => (p, v, t),
        3 => (p, q, v),
        4 => (t, p, v),
        _ => (v, p, q),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn ramp(width: usize, height: usize) -> RawImage {
        let pixels = (0..width * height).map(|i| (i + 1) as u8).collect();
        RawImage { width, height, channels: 1, pixels }
    }

    #[test]
    fn crop_pads_with_zeros_and_mirrors() {
        let image = ramp(3, 2); // rows (1 2 3) (4 5 6)
                                // Window shifted one pixel left and up: a zero row and column come in.
        let shifted = crop(&image, -1, -1, 3, 2, false);
        assert_eq!(shifted.pixels, [0, 0, 0, 0, 1, 2]);
        let mirrored = crop(&image, 0, 0, 3, 2, true);
        assert_eq!(mirrored.pixels, [3, 2, 1, 6, 5, 4]);
    }

    #[test]
    fn augmentation_is_deterministic_under_a_seed_and_keeps_size() {
        let image = ramp(28, 28);
        let augment = Augment::for_dataset(DatasetKind::FashionMnist);
        let a = augment.apply(&image, &mut StdRng::seed_from_u64(7));
        let b = augment.apply(&image, &mut StdRng::seed_from_u64(7));
        assert_eq!(a, b);
        assert_eq!((a.width, a.height), (28, 28));
        let window = resized_crop_window(100, 50, &mut StdRng::seed_from_u64(3));
        assert!(window.0 + window.2 <= 100 && window.1 + window.3 <= 50);
    }

    #[test]
    fn hsv_round_trips_and_jitter_keeps_grey_grey() {
        for rgb in [(1.0, 0.0, 0.0), (0.2, 0.6, 0.4), (0.5, 0.5, 0.9), (0.3, 0.3, 0.3)] {
            let (h, s, v) = rgb_to_hsv(rgb.0, rgb.1, rgb.2);
            let back = hsv_to_rgb(h, s, v);
            assert!((back.0 - rgb.0).abs() < 1e-6 && (back.1 - rgb.1).abs() < 1e-6, "{rgb:?} {back:?}");
            assert!((back.2 - rgb.2).abs() < 1e-6, "{rgb:?} {back:?}");
        }
        // A grey RGB image has no hue or saturation to change: it stays grey under jitter.
        let mut image = RawImage {
            width: 4,
            height: 1,
            channels: 3,
            pixels: vec![10, 10, 10, 90, 90, 90, 160, 160, 160, 250, 250, 250],
        };
        color_jitter(&mut image, &mut StdRng::seed_from_u64(9));
        for pixel in image.pixels.chunks_exact(3) {
            assert!(pixel[0] == pixel[1] && pixel[1] == pixel[2], "{pixel:?}");
        }
        let augmented = Augment::ResizedCropFlipJitter.apply(&ramp(40, 30), &mut StdRng::seed_from_u64(1));
        assert!(augmented.width <= 40 && augmented.height <= 30);
    }
}
